//! Database faults (issue 6), on PostgreSQL and MariaDB.
//!
//! Each test starts a PRIVATE server on a free port (see `faults/instance.rs`;
//! the shared servers on 5432 / 3306 are never touched), builds a
//! `SessionManager` over `tessera_sqlx::connect` with the default
//! `StoreOptions`, and then breaks the database under it:
//!
//! * `outage_*`: clients run a mix of create / get_session / refresh / revoke
//!   while the server is stopped (alternately a clean stop and a `kill -9` of
//!   every server process) and restarted. During the outage every call that
//!   needs the database fails with `Error::General` within [`ERROR_BOUND`],
//!   calls that need no database (verifying an access token without
//!   blacklisting) keep succeeding and fast, nothing panics or hangs, no call
//!   ever answers Unauthorized / TryRefreshToken / TokenTheftDetected to a
//!   client that followed the protocol; after the restart the same manager
//!   recovers by itself within [`RECOVERY_BOUND`], and then the state is
//!   checked: every acknowledged create exists, every acknowledged revoke is
//!   gone, every refresh row holds the client's last acknowledged refresh
//!   token or its legitimate parent (docs/PROTOCOL.md §8.1), and every client can
//!   verify, refresh and promote again.
//! * `frozen_*`: the same clients and checks, but the server is frozen
//!   (SIGSTOP to every server process) instead of stopped, then continued:
//!   connections stay open and nothing answers, as with a hung host or a
//!   network that drops packets. No acquire or lock timeout can fire on a
//!   statement already sent, so here calls fail at the store's call timeout
//!   (default 10 s), within [`ERROR_BOUND_FROZEN`].
//! * `locks_*`: a Tessera connection is killed (`pg_terminate_backend`,
//!   `KILL`) while it waits for a session row lock and while it holds the
//!   signing-key row lock between the two writes of a key rotation; an
//!   external lock holder is killed while Tessera waits; and a lock held
//!   forever is bounded by the store's lock timeout.
//!
//! `TESSERA_SOAK_FAULT_CYCLES` sets how many outage cycles each backend runs
//! (default 2: one clean stop and one `kill -9`; cycles alternate), and
//! half as many freeze cycles (default 1).
//! `TESSERA_FAULT_OUTAGE_SECS` sets how long each outage lasts (default 12,
//! at least 10: calls must fit wholly inside the outage, and a failing one
//! takes the 5 s acquire timeout).
//! Servers need `/usr/lib/postgresql/15/bin` and `mariadbd` /
//! `mariadb-install-db`; the tests run as root (PostgreSQL itself runs as the
//! `postgres` user).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::header::HeaderMap;
use serde_json::json;
use sqlx::{Connection, Executor, MySqlConnection, PgConnection, Row};
use tessera::{
    sha256_hex, Config, Error, ManualClock, SessionManager, SigningKeys, StoredKey,
    REFRESH_TOKEN_COOKIE,
};
use tessera_sqlx::{StoreOptions, DEFAULT_LOCK_TIMEOUT};

#[path = "faults/instance.rs"]
mod instance;
mod support;
use instance::{Instance, Kind, Stop};
use support::Browser;

/// Longest any call may take while the server is frozen: a call whose
/// statement gets no answer fails at the store's call timeout (default
/// 10 s), one that waits for a connection at the acquire timeout. Fixed
/// here, not derived from the defaults.
const ERROR_BOUND_FROZEN: Duration = Duration::from_millis(12_500);
/// Longest any call may take while the database is down: a call fails at
/// its first store call that cannot get a connection, one acquire timeout
/// (default 5 s). Fixed here, not derived from the store's defaults, so
/// that a longer default fails the test.
const ERROR_BOUND: Duration = Duration::from_millis(7_500);
/// The same while the signing keys are due for their periodic re-check: a
/// create may first wait for a key reload that is itself waiting out an
/// acquire timeout, hence two.
const ERROR_BOUND_KEYS_DUE: Duration = Duration::from_millis(11_500);
/// Longest a call that needs no database may take, outage or not.
const FAST_BOUND: Duration = Duration::from_millis(1000);
/// How soon after the server accepts connections again the manager must
/// serve a create.
const RECOVERY_BOUND: Duration = Duration::from_secs(10);
/// Longest a call may wait behind a lock held forever (the store's lock
/// timeout defaults to 5 s; fixed here for the same reason).
const LOCK_BOUND: Duration = Duration::from_secs(8);
/// How soon a call must fail (or go on) after its connection (or the lock
/// holder's) is killed.
const KILL_BOUND: Duration = Duration::from_secs(3);
/// A call still running after this is a hang: the test fails instead of
/// waiting for it.
const HANG: Duration = Duration::from_secs(60);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn h(x: &str) -> String {
    sha256_hex(x.as_bytes())
}

/// `H2` of a refresh token, as the row stores it.
fn h2(token: &str) -> String {
    h(&h(token))
}

// ---------------------------------------------------------------------------
// Setup

async fn wait_ready(inst: &Instance) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = match inst.kind {
            Kind::Postgres => match PgConnection::connect(&inst.admin_url()).await {
                Ok(c) => c.close().await.is_ok(),
                Err(_) => false,
            },
            Kind::MariaDb => match MySqlConnection::connect(&inst.admin_url()).await {
                Ok(c) => c.close().await.is_ok(),
                Err(_) => false,
            },
        };
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not answer within 60 s; log:\n{}",
            inst.kind,
            inst.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A private server, up, with an empty `tessera` database on MariaDB.
async fn private_instance(kind: Kind) -> Instance {
    let inst = tokio::task::block_in_place(|| Instance::start(kind));
    wait_ready(&inst).await;
    if kind == Kind::MariaDb {
        let mut c = MySqlConnection::connect(&inst.admin_url()).await.unwrap();
        c.execute("CREATE DATABASE tessera CHARACTER SET utf8mb4")
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    inst
}

async fn manager_on(inst: &Instance, clock: Arc<ManualClock>) -> SessionManager {
    let store = tessera_sqlx::connect_with(&inst.url(), StoreOptions::new())
        .await
        .expect("connect to the private server");
    // Tests move the clock past the key re-check; a day-long access token
    // stays valid through any of that (a TryRefreshToken would fail them).
    let config = Config::builder()
        .with_clock(clock)
        .with_access_token_validity(Duration::from_secs(86_400))
        .build()
        .unwrap();
    SessionManager::new(config, store).await.expect("manager")
}

/// The signing keys as stored (read under the row lock, nothing changed).
async fn stored_keys(m: &SessionManager) -> SigningKeys {
    let candidate = StoredKey {
        value: vec![0; 32],
        created_at_ms: 0,
    };
    m.store()
        .signing_keys(&candidate, &|_| None)
        .await
        .expect("read keys")
}

fn outcome_of<T>(r: &Result<T, Error>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(Error::General { .. }) => Outcome::General,
        Err(e) => Outcome::Other(format!("{e:?}")),
    }
}

// ---------------------------------------------------------------------------
// Scenario 1: outage mid-load

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Ok,
    General,
    /// Unauthorized, TryRefreshToken or TokenTheftDetected.
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Create,
    Verify,
    Refresh,
    Revoke,
}

#[derive(Debug, Clone)]
struct Record {
    client: usize,
    op: Op,
    needs_db: bool,
    start: Instant,
    took: Duration,
    outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    NoSession,
    Live,
    /// A revoke failed with a General error: its outcome is unknown, so the
    /// client revokes again before anything else.
    RevokePending,
}

/// One user agent and what the server acknowledged to it.
#[derive(Debug, Clone)]
struct Client {
    id: usize,
    browser: Browser,
    state: State,
    handle: Option<String>,
    /// The refresh token the client holds, and the one it was refreshed
    /// from (None for the token of a fresh login).
    refresh_parent: Option<String>,
    /// The access token carries a parent hash: its first use promotes.
    pending_promotion: bool,
    created: Vec<String>,
    revoked: Vec<String>,
    /// Only ever verifies (after logging in): many calls that need no
    /// database, during the outage too.
    verify_only: bool,
    rng: u64,
}

impl Client {
    fn new(id: usize) -> Client {
        Client {
            id,
            browser: Browser::default(),
            state: State::NoSession,
            handle: None,
            refresh_parent: None,
            pending_promotion: false,
            created: Vec::new(),
            revoked: Vec::new(),
            verify_only: false,
            rng: 0x9e37_79b9_7f4a_7c15 ^ (id as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d),
        }
    }

    fn next_rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn refresh_token(&self) -> String {
        self.browser
            .cookie(REFRESH_TOKEN_COOKIE)
            .expect("a live client holds a refresh token")
            .to_owned()
    }

    /// One operation, as a protocol-following front end would do it: it
    /// applies Ok responses and keeps its cookies on a General error.
    async fn step(&mut self, m: &SessionManager, forced: Option<Op>) -> Record {
        let op = forced.unwrap_or_else(|| match self.state {
            State::NoSession => Op::Create,
            State::RevokePending => Op::Revoke,
            State::Live if self.verify_only => Op::Verify,
            State::Live => match self.next_rand() % 20 {
                0..=10 => Op::Verify,
                11..=16 => Op::Refresh,
                _ => Op::Revoke,
            },
        });
        let needs_db = op != Op::Verify || self.pending_promotion;
        let start = Instant::now();
        let mut resp = HeaderMap::new();
        let outcome = match op {
            Op::Create => {
                let uid = format!("user-{}", self.id);
                let r = tokio::time::timeout(
                    HANG,
                    m.create_new_session(&mut resp, uid, json!({"c": self.id}), json!({})),
                )
                .await
                .expect("create_new_session hung");
                let o = outcome_of(&r);
                if let Ok(s) = r {
                    self.browser = Browser::default();
                    self.browser.absorb(&resp);
                    self.handle = Some(s.handle().to_owned());
                    self.created.push(s.handle().to_owned());
                    self.refresh_parent = None;
                    self.pending_promotion = false;
                    self.state = State::Live;
                }
                o
            }
            Op::Verify => {
                let r = tokio::time::timeout(
                    HANG,
                    m.get_session(&self.browser.request(), &mut resp, true),
                )
                .await
                .expect("get_session hung");
                let o = outcome_of(&r);
                if r.is_ok() && self.browser.absorb(&resp) {
                    self.pending_promotion = false;
                }
                o
            }
            Op::Refresh => {
                let before = self.refresh_token();
                let r = tokio::time::timeout(
                    HANG,
                    m.refresh_session(&self.browser.request(), &mut resp),
                )
                .await
                .expect("refresh_session hung");
                let o = outcome_of(&r);
                if r.is_ok() {
                    self.browser.absorb(&resp);
                    self.refresh_parent = Some(before);
                    self.pending_promotion = true;
                }
                o
            }
            Op::Revoke => {
                let handle = self.handle.clone().expect("a session to revoke");
                let r = tokio::time::timeout(HANG, m.revoke_session(&handle))
                    .await
                    .expect("revoke_session hung");
                let o = outcome_of(&r);
                match r {
                    Ok(_) => {
                        self.revoked.push(handle);
                        self.handle = None;
                        self.browser = Browser::default();
                        self.state = State::NoSession;
                    }
                    Err(_) => self.state = State::RevokePending,
                }
                o
            }
        };
        Record {
            client: self.id,
            op,
            needs_db,
            start,
            took: start.elapsed(),
            outcome,
        }
    }
}

/// Checks the database against what the clients were told (no half-written
/// state), then that each client can go on: verify, refresh, promote.
async fn check_state(m: &SessionManager, clients: &mut [Client], label: &str) {
    for c in clients.iter_mut() {
        for handle in &c.created {
            let row = m.store().load_session(handle).await.expect("load");
            if c.revoked.contains(handle) {
                assert!(
                    row.is_none(),
                    "{label}: acknowledged revoke of client {} came back",
                    c.id
                );
            } else if c.state == State::RevokePending && c.handle.as_deref() == Some(handle) {
                // Revoke outcome unknown: either is fine.
            } else {
                assert!(
                    row.is_some(),
                    "{label}: acknowledged create of client {} is missing",
                    c.id
                );
            }
        }
        if c.state == State::Live {
            let handle = c.handle.clone().unwrap();
            let row = m.store().load_session(&handle).await.unwrap().unwrap();
            // docs/PROTOCOL.md §8.1: the row commits either the client's refresh token
            // (a login token, or a child that was promoted) or, if the child
            // has not been promoted yet, the parent it was issued from.
            let mine = h2(&c.refresh_token());
            let parent = c.refresh_parent.as_deref().map(h2);
            assert!(
                row.refresh_token_hash_2 == mine
                    || parent.as_deref() == Some(row.refresh_token_hash_2.as_str()),
                "{label}: client {}: the row's refresh hash is neither the client's token nor its parent",
                c.id
            );
        }
    }
    // Every client can go on.
    for c in clients.iter_mut() {
        let ops: &[Op] = match c.state {
            State::Live => &[Op::Verify, Op::Refresh, Op::Verify, Op::Verify],
            State::RevokePending => &[Op::Revoke, Op::Create, Op::Verify],
            State::NoSession => &[Op::Create, Op::Verify],
        };
        for &op in ops {
            let r = c.step(m, Some(op)).await;
            assert_eq!(
                r.outcome,
                Outcome::Ok,
                "{label}: client {} {op:?} after recovery",
                c.id
            );
        }
        if c.state == State::Live {
            let row = m
                .store()
                .load_session(c.handle.as_deref().unwrap())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                row.refresh_token_hash_2,
                h2(&c.refresh_token()),
                "{label}: client {} verified after a refresh, so its token is committed",
                c.id
            );
            assert!(!c.pending_promotion);
        }
    }
}

fn summarize(records: &[Record]) -> String {
    let mut by: HashMap<(Op, bool), (usize, Duration)> = HashMap::new();
    for r in records {
        let e = by.entry((r.op, r.outcome == Outcome::Ok)).or_default();
        e.0 += 1;
        e.1 = e.1.max(r.took);
    }
    let mut v: Vec<String> = by
        .into_iter()
        .map(|((op, ok), (n, max))| {
            format!(
                "{op:?}/{}: {n} (max {} ms)",
                if ok { "ok" } else { "err" },
                max.as_millis()
            )
        })
        .collect();
    v.sort();
    v.join(", ")
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// What an outage cycle does to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Stopped (cleanly or with `kill -9`), then started again.
    Down(Stop),
    /// Frozen with SIGSTOP, then continued: connections stay open and
    /// nothing answers.
    Freeze,
}

async fn outage(kind: Kind, plan: &[Fault]) {
    let cycles = plan.len();
    let outage_for = Duration::from_secs(env_u64("TESSERA_FAULT_OUTAGE_SECS", 12).max(10));
    const CLIENTS: usize = 8;
    const VERIFIERS: usize = 2;
    let name = if plan.contains(&Fault::Freeze) {
        "frozen"
    } else {
        "outage"
    };
    eprintln!("faults {name}: backend {kind}, {cycles} cycles {plan:?}, outage {outage_for:?}");
    let mut inst = private_instance(kind).await;
    let clock = Arc::new(ManualClock::starting_now());
    let m = manager_on(&inst, clock.clone()).await;
    let mut clients: Vec<Client> = (0..CLIENTS + VERIFIERS)
        .map(|i| {
            let mut c = Client::new(i);
            c.verify_only = i >= CLIENTS;
            c
        })
        .collect();

    for (cycle, &fault) in plan.iter().enumerate() {
        let label = format!("{kind} cycle {cycle} ({fault:?})");
        // A frozen server fails calls at the call timeout (10 s): the outage
        // lasts long enough for whole failing calls to fit inside it.
        let (outage_for, error_bound) = match fault {
            Fault::Down(_) => (outage_for, ERROR_BOUND),
            Fault::Freeze => (outage_for.max(Duration::from_secs(15)), ERROR_BOUND_FROZEN),
        };
        let running = Arc::new(AtomicBool::new(true));
        let records = Arc::new(Mutex::new(Vec::<Record>::new()));
        let mut tasks = Vec::new();
        for mut c in std::mem::take(&mut clients) {
            let (m, running, records) = (m.clone(), running.clone(), records.clone());
            tasks.push(tokio::spawn(async move {
                while running.load(Ordering::Relaxed) {
                    let r = c.step(&m, None).await;
                    let failed = r.outcome != Outcome::Ok;
                    records.lock().unwrap().push(r);
                    // A failing front end backs off a little; a healthy one
                    // keeps the load up.
                    let pause = if failed {
                        100
                    } else if c.verify_only {
                        20
                    } else {
                        5
                    };
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                c
            }));
        }

        tokio::time::sleep(Duration::from_millis(1500)).await;
        // Before a freeze, one call is put deterministically in the middle of
        // a statement: its promotion UPDATE waits for a row lock held by
        // another connection when the server freezes. Only the store's call
        // timeout can end it then (the server's own lock timeout is frozen
        // too).
        let in_flight = if fault == Fault::Freeze {
            let c = client_with_pending_promotion(&m, 2000 + cycle).await;
            let handle = c.handle.clone().unwrap();
            let mut holder = Admin::open(&inst).await;
            begin(&mut holder).await;
            holder.exec(&lock_row_sql(kind, &handle)).await;
            let call = {
                let (m, mut c) = (m.clone(), c.clone());
                tokio::spawn(async move {
                    let r = c.step(&m, Some(Op::Verify)).await;
                    (r, c)
                })
            };
            Admin::open(&inst)
                .await
                .wait_for_waiter("UPDATE tessera_sessions")
                .await;
            Some((call, holder, c))
        } else {
            None
        };
        let stop_at = Instant::now();
        tokio::task::block_in_place(|| match fault {
            Fault::Down(how) => inst.stop(how),
            Fault::Freeze => inst.freeze(),
        });
        let down_at = Instant::now();
        tokio::time::sleep(outage_for).await;
        let restart_at = Instant::now();
        tokio::task::block_in_place(|| match fault {
            Fault::Down(_) => inst.restart(),
            Fault::Freeze => inst.thaw(),
        });
        wait_ready(&inst).await;
        let up_at = Instant::now();
        if let Some((call, mut holder, before)) = in_flight {
            let (r, mut c) = tokio::time::timeout(HANG, call)
                .await
                .expect("the in-flight call hung")
                .unwrap();
            assert_eq!(
                r.outcome,
                Outcome::General,
                "{label}: the call in flight when the server froze"
            );
            assert!(
                r.start + r.took < restart_at && r.took <= error_bound,
                "{label}: the call in flight when the server froze took {:?}: it must fail while \
                 the server is still frozen, within {error_bound:?}",
                r.took
            );
            holder.exec("ROLLBACK").await;
            // Whether the abandoned UPDATE ran after the thaw or not, the row
            // holds the client's token or its parent, and the client goes on.
            let handle = before.handle.clone().unwrap();
            let row = row_hash(&m, &handle).await;
            assert!(
                row == h2(&before.refresh_token())
                    || Some(row.clone()) == before.refresh_parent.as_deref().map(h2),
                "{label}: the abandoned promotion left a foreign hash"
            );
            for op in [Op::Verify, Op::Refresh, Op::Verify] {
                assert_eq!(
                    c.step(&m, Some(op)).await.outcome,
                    Outcome::Ok,
                    "{label}: {op:?}"
                );
            }
            assert_eq!(row_hash(&m, &handle).await, h2(&c.refresh_token()));
            eprintln!(
                "faults {name} {label}: the promotion in flight when the server froze failed \
                 with General after {} ms, {} ms before the thaw",
                r.took.as_millis(),
                (restart_at - (r.start + r.took)).as_millis()
            );
        }
        // The same manager, no restart of the application: how soon does it
        // serve a create again?
        let recovered_at = loop {
            let mut probe = Client::new(1000 + cycle);
            let r = probe.step(&m, Some(Op::Create)).await;
            if r.outcome == Outcome::Ok {
                break Instant::now();
            }
            assert!(
                up_at.elapsed() < RECOVERY_BOUND,
                "{label}: no recovery within {RECOVERY_BOUND:?} of the server's return: {:?}",
                r.outcome
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        tokio::time::sleep(Duration::from_millis(1500)).await;
        running.store(false, Ordering::Relaxed);
        for t in tasks {
            match tokio::time::timeout(HANG, t).await {
                Ok(Ok(c)) => clients.push(c),
                Ok(Err(e)) => panic!("{label}: a client task failed: {e}"),
                Err(_) => panic!("{label}: a client task hung"),
            }
        }
        clients.sort_by_key(|c| c.id);
        let records = std::mem::take(&mut *records.lock().unwrap());

        // --- what the calls answered ---
        let mut in_outage = Vec::new();
        let mut errors_in_outage = Vec::new();
        for r in &records {
            if let Outcome::Other(e) = &r.outcome {
                panic!("{label}: client {} {:?} answered {e}", r.client, r.op);
            }
            assert!(
                r.took <= error_bound,
                "{label}: client {} {:?} took {:?} (bound {error_bound:?}), {:?}",
                r.client,
                r.op,
                r.took,
                r.outcome
            );
            if !r.needs_db {
                assert_eq!(
                    r.outcome,
                    Outcome::Ok,
                    "{label}: verification without the database failed"
                );
                assert!(
                    r.took <= FAST_BOUND,
                    "{label}: verification without the database took {:?}",
                    r.took
                );
            }
            let end = r.start + r.took;
            if r.start >= down_at && end <= restart_at {
                in_outage.push(r);
                if r.needs_db {
                    assert_eq!(
                        r.outcome,
                        Outcome::General,
                        "{label}: client {} {:?} needs the database, which was down",
                        r.client,
                        r.op
                    );
                    errors_in_outage.push(r.took);
                }
            }
            if r.start >= recovered_at {
                assert_eq!(
                    r.outcome,
                    Outcome::Ok,
                    "{label}: client {} {:?} failed after recovery",
                    r.client,
                    r.op
                );
            }
        }
        let fast_ok = in_outage.iter().filter(|r| !r.needs_db).count();
        assert!(
            fast_ok > 0,
            "{label}: no verification ran during the outage; the test proved nothing"
        );
        assert!(
            !errors_in_outage.is_empty(),
            "{label}: no database call ran during the outage; the test proved nothing"
        );
        let max_no_db = in_outage
            .iter()
            .filter(|r| !r.needs_db)
            .map(|r| r.took)
            .max()
            .unwrap_or_default();
        eprintln!(
            "faults {name} {label}: stop took {} ms; {} calls during the outage: {} General errors \
             (latency p50 {} ms, p95 {} ms, max {} ms), {fast_ok} verifications without the \
             database ok (max {} µs); restart to ready {} ms, ready to first create {} ms; \
             all calls: {}",
            (down_at - stop_at).as_millis(),
            in_outage.len(),
            errors_in_outage.len(),
            percentile(errors_in_outage.clone(), 0.5).as_millis(),
            percentile(errors_in_outage.clone(), 0.95).as_millis(),
            percentile(errors_in_outage.clone(), 1.0).as_millis(),
            max_no_db.as_micros(),
            (up_at - restart_at).as_millis(),
            (recovered_at - up_at).as_millis(),
            summarize(&records),
        );

        // --- no half-written state; every client goes on ---
        check_state(&m, &mut clients, &label).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outage_postgres() {
    outage(Kind::Postgres, &stop_plan()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outage_mariadb() {
    outage(Kind::MariaDb, &stop_plan()).await;
}

/// `TESSERA_SOAK_FAULT_CYCLES` stop cycles (default 2), alternately clean
/// and `kill -9`.
fn stop_plan() -> Vec<Fault> {
    let cycles = env_u64("TESSERA_SOAK_FAULT_CYCLES", 2).max(1);
    (0..cycles)
        .map(|c| Fault::Down(if c % 2 == 0 { Stop::Clean } else { Stop::Kill9 }))
        .collect()
}

/// Half as many freeze cycles as stop cycles (default 1).
fn freeze_plan() -> Vec<Fault> {
    let cycles = env_u64("TESSERA_SOAK_FAULT_CYCLES", 2).max(1).div_ceil(2);
    vec![Fault::Freeze; cycles as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn frozen_postgres() {
    outage(Kind::Postgres, &freeze_plan()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn frozen_mariadb() {
    outage(Kind::MariaDb, &freeze_plan()).await;
}

// ---------------------------------------------------------------------------
// Scenario 2: connections killed around row locks

/// A plain connection to the private server, outside Tessera's pool.
enum Admin {
    Pg(PgConnection),
    My(MySqlConnection),
}

impl Admin {
    async fn open(inst: &Instance) -> Admin {
        match inst.kind {
            Kind::Postgres => Admin::Pg(PgConnection::connect(&inst.url()).await.unwrap()),
            Kind::MariaDb => Admin::My(MySqlConnection::connect(&inst.url()).await.unwrap()),
        }
    }

    async fn exec(&mut self, sql: &str) {
        match self {
            Admin::Pg(c) => c.execute(sql).await.map(|_| ()),
            Admin::My(c) => c.execute(sql).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Runs `sql`; whether it succeeded.
    async fn try_exec(&mut self, sql: &str) -> bool {
        match self {
            Admin::Pg(c) => c.execute(sql).await.is_ok(),
            Admin::My(c) => c.execute(sql).await.is_ok(),
        }
    }

    /// The server-side id of this connection.
    async fn id(&mut self) -> i64 {
        match self {
            Admin::Pg(c) => sqlx::query("SELECT pg_backend_pid()")
                .fetch_one(&mut *c)
                .await
                .unwrap()
                .get::<i32, _>(0)
                .into(),
            Admin::My(c) => sqlx::query("SELECT CONNECTION_ID()")
                .fetch_one(&mut *c)
                .await
                .unwrap()
                .get::<u64, _>(0) as i64,
        }
    }

    /// The connection whose current statement starts with `prefix` and waits
    /// for a lock, if there is one.
    async fn lock_waiter(&mut self, prefix: &str) -> Option<i64> {
        let pattern = format!("{prefix}%");
        match self {
            Admin::Pg(c) => sqlx::query(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                 AND query LIKE $1 AND pid <> pg_backend_pid()",
            )
            .bind(pattern)
            .fetch_optional(&mut *c)
            .await
            .unwrap()
            .map(|r| r.get::<i32, _>(0).into()),
            Admin::My(c) => sqlx::query(
                "SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX \
                 WHERE trx_state = 'LOCK WAIT' AND trx_query LIKE ?",
            )
            .bind(pattern)
            .fetch_optional(&mut *c)
            .await
            .unwrap()
            .map(|r| r.get::<u64, _>(0) as i64),
        }
    }

    async fn wait_for_waiter(&mut self, prefix: &str) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(4);
        loop {
            if let Some(id) = self.lock_waiter(prefix).await {
                return id;
            }
            if Instant::now() >= deadline {
                let seen = self.activity().await;
                panic!("no connection waits on a lock with `{prefix}…`; seen: {seen}");
            }
            // MariaDB refreshes its INNODB_TRX cache only when nobody has
            // read it for 100 ms: poll slower than that.
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// What the server's connections are doing (for failure messages).
    async fn activity(&mut self) -> String {
        let rows: Vec<String> = match self {
            Admin::Pg(c) => sqlx::query(
                "SELECT pid::text || ' ' || coalesce(wait_event_type, '-') || ' ' || \
                 coalesce(state, '-') || ' ' || left(query, 60) FROM pg_stat_activity",
            )
            .fetch_all(&mut *c)
            .await
            .map(|v| v.iter().map(|r| r.get::<String, _>(0)).collect())
            .unwrap_or_default(),
            Admin::My(c) => sqlx::query(
                "SELECT CONCAT(trx_mysql_thread_id, ' ', trx_state, ' ', \
                 COALESCE(LEFT(trx_query, 60), '-')) FROM information_schema.INNODB_TRX",
            )
            .fetch_all(&mut *c)
            .await
            .map(|v| v.iter().map(|r| r.get::<String, _>(0)).collect())
            .unwrap_or_default(),
        };
        rows.join(" | ")
    }

    /// Kills another connection, as an operator or a crash would.
    async fn kill(&mut self, id: i64) {
        match self {
            Admin::Pg(c) => {
                let done: bool = sqlx::query("SELECT pg_terminate_backend($1)")
                    .bind(id as i32)
                    .fetch_one(&mut *c)
                    .await
                    .unwrap()
                    .get(0);
                assert!(done, "pg_terminate_backend({id})");
            }
            Admin::My(c) => {
                c.execute(format!("KILL CONNECTION {id}").as_str())
                    .await
                    .unwrap();
            }
        }
    }
}

/// A logged-in client that refreshed once: its next verification promotes,
/// which is an `UPDATE` of the session row.
async fn client_with_pending_promotion(m: &SessionManager, id: usize) -> Client {
    let mut c = Client::new(id);
    assert_eq!(c.step(m, Some(Op::Create)).await.outcome, Outcome::Ok);
    assert_eq!(c.step(m, Some(Op::Refresh)).await.outcome, Outcome::Ok);
    assert!(c.pending_promotion);
    c
}

fn lock_row_sql(kind: Kind, handle: &str) -> String {
    // Handles are URL-safe base64: nothing to escape.
    assert!(handle
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    match kind {
        Kind::Postgres | Kind::MariaDb => format!(
            "SELECT session_handle FROM tessera_sessions WHERE session_handle = '{handle}' FOR UPDATE"
        ),
    }
}

async fn begin(a: &mut Admin) {
    a.exec("BEGIN").await;
}

async fn row_hash(m: &SessionManager, handle: &str) -> String {
    m.store()
        .load_session(handle)
        .await
        .unwrap()
        .expect("row")
        .refresh_token_hash_2
}

async fn locks(kind: Kind) {
    eprintln!("faults locks: backend {kind}");
    let inst = private_instance(kind).await;
    let clock = Arc::new(ManualClock::starting_now());
    let m = manager_on(&inst, clock.clone()).await;
    let mut admin = Admin::open(&inst).await;

    // (a) Tessera's connection is killed while its promotion UPDATE waits
    // for the session row lock.
    let mut c = client_with_pending_promotion(&m, 1).await;
    let handle = c.handle.clone().unwrap();
    let parent_hash = h2(c.refresh_parent.as_deref().unwrap());
    assert_eq!(row_hash(&m, &handle).await, parent_hash);
    let mut holder = Admin::open(&inst).await;
    begin(&mut holder).await;
    holder.exec(&lock_row_sql(kind, &handle)).await;
    let call = {
        let (m, mut c) = (m.clone(), c.clone());
        tokio::spawn(async move { c.step(&m, Some(Op::Verify)).await })
    };
    let tessera_conn = admin.wait_for_waiter("UPDATE tessera_sessions").await;
    let killed_at = Instant::now();
    admin.kill(tessera_conn).await;
    let r = tokio::time::timeout(HANG, call)
        .await
        .expect("hung")
        .unwrap();
    let after_kill = killed_at.elapsed();
    assert_eq!(r.outcome, Outcome::General, "killed connection → General");
    assert!(
        after_kill <= KILL_BOUND,
        "General came {after_kill:?} after the kill"
    );
    holder.exec("ROLLBACK").await;
    assert_eq!(
        row_hash(&m, &handle).await,
        parent_hash,
        "the killed UPDATE left the row as it was"
    );
    // The pool replaces the dead connection: the same client retries and
    // every later call succeeds.
    for _ in 0..3 {
        assert_eq!(c.step(&m, Some(Op::Verify)).await.outcome, Outcome::Ok);
    }
    assert!(!c.pending_promotion);
    assert_eq!(row_hash(&m, &handle).await, h2(&c.refresh_token()));
    for i in 0..12 {
        let mut other = Client::new(100 + i);
        assert_eq!(other.step(&m, Some(Op::Create)).await.outcome, Outcome::Ok);
        assert_eq!(other.step(&m, Some(Op::Refresh)).await.outcome, Outcome::Ok);
    }
    eprintln!(
        "faults locks {kind}: (a) Tessera connection killed while waiting on the row lock: \
         General after {} ms; row unchanged; retry and 24 calls ok",
        after_kill.as_millis()
    );

    // (b) The external lock holder is killed: the waiting call completes.
    let mut c2 = client_with_pending_promotion(&m, 2).await;
    let handle2 = c2.handle.clone().unwrap();
    let mut holder = Admin::open(&inst).await;
    let holder_id = holder.id().await;
    begin(&mut holder).await;
    holder.exec(&lock_row_sql(kind, &handle2)).await;
    let call = {
        let (m, mut c2) = (m.clone(), c2.clone());
        tokio::spawn(async move {
            let r = c2.step(&m, Some(Op::Verify)).await;
            (r, c2)
        })
    };
    admin.wait_for_waiter("UPDATE tessera_sessions").await;
    let killed_at = Instant::now();
    admin.kill(holder_id).await;
    let (r, done) = tokio::time::timeout(HANG, call)
        .await
        .expect("hung")
        .unwrap();
    let after_kill = killed_at.elapsed();
    assert_eq!(r.outcome, Outcome::Ok, "the waiting promotion goes on");
    assert!(after_kill <= KILL_BOUND);
    assert!(!done.pending_promotion, "a new access token was issued");
    c2 = done;
    assert_eq!(row_hash(&m, &handle2).await, h2(&c2.refresh_token()));
    drop(holder);
    eprintln!(
        "faults locks {kind}: (b) lock holder killed: the waiting promotion finished {} ms later",
        after_kill.as_millis()
    );

    // (c) A lock held forever: the call is bounded by the lock timeout, for
    // a promotion and for a revoke.
    let mut c3 = client_with_pending_promotion(&m, 3).await;
    let handle3 = c3.handle.clone().unwrap();
    let mut holder = Admin::open(&inst).await;
    begin(&mut holder).await;
    holder.exec(&lock_row_sql(kind, &handle3)).await;
    let started = Instant::now();
    let r = tokio::time::timeout(HANG, c3.clone().step(&m, Some(Op::Verify)))
        .await
        .expect("a promotion behind a stuck lock hung");
    let waited = started.elapsed();
    assert_eq!(r.outcome, Outcome::General);
    assert!(waited <= LOCK_BOUND, "waited {waited:?} behind the lock");
    let started = Instant::now();
    let revoke = tokio::time::timeout(HANG, m.revoke_session(&handle3))
        .await
        .expect("a revoke behind a stuck lock hung");
    let waited_revoke = started.elapsed();
    assert!(matches!(revoke, Err(Error::General { .. })), "{revoke:?}");
    // A lock wait that ran out is a timeout, which the caller may retry.
    assert_eq!(
        revoke.as_ref().err().and_then(Error::general_kind),
        Some(tessera::GeneralKind::Timeout),
        "{revoke:?}"
    );
    assert!(waited_revoke <= LOCK_BOUND);
    holder.exec("ROLLBACK").await;
    assert!(m.store().load_session(&handle3).await.unwrap().is_some());
    assert_eq!(c3.step(&m, Some(Op::Verify)).await.outcome, Outcome::Ok);
    assert_eq!(row_hash(&m, &handle3).await, h2(&c3.refresh_token()));
    eprintln!(
        "faults locks {kind}: (c) lock held forever: promotion failed after {} ms, revoke after \
         {} ms (lock timeout {DEFAULT_LOCK_TIMEOUT:?}); fine once released",
        waited.as_millis(),
        waited_revoke.as_millis()
    );

    // (d) Tessera is killed while it HOLDS the signing-key row lock, between
    // the two writes of a rotation (new current key written, previous key
    // not yet): the transaction must roll back, leaving the old keys.
    // An external transaction makes the second write wait: on PostgreSQL an
    // uncommitted insert of the previous-key row; on MariaDB a gap lock
    // where that row would go (Tessera's own locking read of the absent row
    // takes a compatible gap lock, its insert then waits).
    let before = stored_keys(&m).await;
    assert!(
        before.previous.is_none(),
        "fresh database: no previous key yet"
    );
    let block_previous_sql = match kind {
        Kind::Postgres => {
            "INSERT INTO tessera_keys (key_name, key_value, created_at) \
                           VALUES ('access_token_signing_key_previous', 'AAAA', 0)"
        }
        Kind::MariaDb => {
            "SELECT key_name FROM tessera_keys \
                          WHERE key_name = 'access_token_signing_key_previous' FOR UPDATE"
        }
    };
    let probe_current_sql = "SELECT key_name FROM tessera_keys \
                             WHERE key_name = 'access_token_signing_key' FOR UPDATE NOWAIT";
    let mut blocker = Admin::open(&inst).await;
    begin(&mut blocker).await;
    blocker.exec(block_previous_sql).await;
    let call = {
        let m = m.clone();
        tokio::spawn(async move { m.rotate_signing_key().await })
    };
    let tessera_conn = admin.wait_for_waiter("INSERT INTO tessera_keys").await;
    // Tessera holds the current-key row lock right now.
    let mut probe = Admin::open(&inst).await;
    begin(&mut probe).await;
    let held = !probe.try_exec(probe_current_sql).await;
    probe.exec("ROLLBACK").await;
    let killed_at = Instant::now();
    admin.kill(tessera_conn).await;
    let r = tokio::time::timeout(HANG, call)
        .await
        .expect("hung")
        .unwrap();
    let after_kill = killed_at.elapsed();
    assert!(matches!(r, Err(Error::General { .. })), "{r:?}");
    // A killed connection is an outage: retryable.
    assert!(r.as_ref().err().is_some_and(Error::is_retryable), "{r:?}");
    assert!(after_kill <= KILL_BOUND);
    blocker.exec("ROLLBACK").await;
    let after = stored_keys(&m).await;
    assert_eq!(
        after, before,
        "a rotation killed between its writes must leave the old keys (no half-written state)"
    );
    assert!(
        held,
        "Tessera should have held the current-key row lock while it waited"
    );
    // The lock was released with the rollback.
    begin(&mut probe).await;
    assert!(probe.try_exec(probe_current_sql).await);
    probe.exec("ROLLBACK").await;
    // Verification still works with the untouched key.
    let mut v = Client::new(4);
    assert_eq!(v.step(&m, Some(Op::Create)).await.outcome, Outcome::Ok);
    assert_eq!(v.step(&m, Some(Op::Verify)).await.outcome, Outcome::Ok);

    // (d2) The same, but the blocker is killed: the rotation completes, and
    // completely.
    let mut blocker = Admin::open(&inst).await;
    let blocker_id = blocker.id().await;
    begin(&mut blocker).await;
    blocker.exec(block_previous_sql).await;
    let call = {
        let m = m.clone();
        tokio::spawn(async move { m.rotate_signing_key().await })
    };
    admin.wait_for_waiter("INSERT INTO tessera_keys").await;
    let killed_at2 = Instant::now();
    admin.kill(blocker_id).await;
    let r = tokio::time::timeout(HANG, call)
        .await
        .expect("hung")
        .unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert!(killed_at2.elapsed() <= KILL_BOUND);
    let rotated = stored_keys(&m).await;
    assert_ne!(rotated.current, before.current);
    assert_eq!(rotated.previous.as_ref(), Some(&before.current));
    let mut v = Client::new(5);
    assert_eq!(v.step(&m, Some(Op::Create)).await.outcome, Outcome::Ok);
    assert_eq!(v.step(&m, Some(Op::Verify)).await.outcome, Outcome::Ok);
    eprintln!(
        "faults locks {kind}: (d) rotation killed while holding the key row lock between its \
         writes: General after {} ms, keys unchanged; (d2) blocker killed: rotation completed",
        after_kill.as_millis()
    );
    drop(inst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locks_postgres() {
    locks(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locks_mariadb() {
    locks(Kind::MariaDb).await;
}

// ---------------------------------------------------------------------------
// Scenario 1b: outage while the signing keys are due for their re-check

/// The key-reload path during an outage: with the keys due, every
/// verification schedules a background reload that fails, and must still
/// succeed at once with the cached keys; a login fails with General within
/// [`ERROR_BOUND_KEYS_DUE`]; after the restart the manager reloads its keys
/// and serves logins by itself.
async fn keys_due(kind: Kind) {
    eprintln!("faults keys_due: backend {kind}");
    let mut inst = private_instance(kind).await;
    let clock = Arc::new(ManualClock::starting_now());
    let m = manager_on(&inst, clock.clone()).await;
    let mut v = Client::new(0);
    assert_eq!(v.step(&m, Some(Op::Create)).await.outcome, Outcome::Ok);
    tokio::task::block_in_place(|| inst.stop(Stop::Kill9));
    clock.advance(tessera::KEY_RECHECK_INTERVAL + Duration::from_secs(1));
    let login = {
        let m = m.clone();
        tokio::spawn(async move { Client::new(1).step(&m, Some(Op::Create)).await })
    };
    let until = Instant::now() + Duration::from_secs(7);
    let (mut n, mut slowest) = (0, Duration::ZERO);
    while Instant::now() < until {
        let r = v.step(&m, Some(Op::Verify)).await;
        assert_eq!(
            r.outcome,
            Outcome::Ok,
            "verification with keys due, database down"
        );
        assert!(r.took <= FAST_BOUND, "verification took {:?}", r.took);
        slowest = slowest.max(r.took);
        n += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = tokio::time::timeout(HANG, login)
        .await
        .expect("hung")
        .unwrap();
    assert_eq!(r.outcome, Outcome::General);
    assert!(r.took <= ERROR_BOUND_KEYS_DUE, "login took {:?}", r.took);
    let restart_at = Instant::now();
    tokio::task::block_in_place(|| inst.restart());
    wait_ready(&inst).await;
    let up_at = Instant::now();
    loop {
        let r = Client::new(2).step(&m, Some(Op::Create)).await;
        if r.outcome == Outcome::Ok {
            break;
        }
        assert!(
            up_at.elapsed() < RECOVERY_BOUND,
            "no recovery: {:?}",
            r.outcome
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = up_at.elapsed();
    assert_eq!(v.step(&m, Some(Op::Verify)).await.outcome, Outcome::Ok);
    eprintln!(
        "faults keys_due {kind}: {n} verifications during the outage with keys due, all ok, \
         slowest {} µs; a login failed after {} ms; restart to ready {} ms, ready to first \
         login {} ms",
        slowest.as_micros(),
        r.took.as_millis(),
        (up_at - restart_at).as_millis(),
        recovered.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_due_postgres() {
    keys_due(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_due_mariadb() {
    keys_due(Kind::MariaDb).await;
}

// ---------------------------------------------------------------------------
// Known core issue (reported, not fixed here: crates/tessera/src/keys.rs)

/// Logins during an outage that coincides with the signing keys' periodic
/// re-check (every `KEY_RECHECK_INTERVAL`): each `create_new_session`
/// reloads the keys inline under `KeyManager`'s reload mutex. Tasks that
/// waited for the mutex while a reload ran share its outcome, so a burst of
/// logins fails after about one acquire timeout, not k × the timeout for the
/// k-th login (which is what happened before the core shared reloads).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outage_login_burst_with_keys_due_postgres() {
    let mut inst = private_instance(Kind::Postgres).await;
    let clock = Arc::new(ManualClock::starting_now());
    let m = manager_on(&inst, clock.clone()).await;
    tokio::task::block_in_place(|| inst.stop(Stop::Clean));
    clock.advance(tessera::KEY_RECHECK_INTERVAL + Duration::from_secs(1));
    let started = Instant::now();
    let logins: Vec<_> = (0..5)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move {
                let mut c = Client::new(i);
                c.step(&m, Some(Op::Create)).await
            })
        })
        .collect();
    let mut took = Vec::new();
    for l in logins {
        let r = tokio::time::timeout(HANG, l).await.expect("hung").unwrap();
        assert_eq!(r.outcome, Outcome::General);
        took.push(r.took.as_millis());
    }
    took.sort();
    eprintln!(
        "faults login burst: 5 concurrent logins during an outage with keys due failed after \
         {took:?} ms (total {} ms)",
        started.elapsed().as_millis()
    );
    assert!(
        took.iter().all(|&t| t <= ERROR_BOUND.as_millis()),
        "logins queued behind each other's key reloads: {took:?} ms"
    );
}
