//! The protocol on a 3-node MariaDB Galera cluster (`scripts/galera.sh`),
//! with one Tessera instance per node. Runs when `TESSERA_TEST_GALERA_URLS`
//! holds the three node URLs (`bash scripts/galera.sh urls`); required when
//! `TESSERA_REQUIRE_GALERA` is set.
//!
//! * 64-way refresh races with the 64 tasks spread over three instances on
//!   three nodes: every refresh of one token succeeds; of 64 siblings'
//!   first uses exactly one promotes; of 64 siblings refreshed at once
//!   exactly one wins, theft is reported, and the revocation is seen on
//!   every node at once.
//! * Revocations made on one node are refused at once on the others
//!   (blacklisting; `wsrep_sync_wait` makes reads causal).
//! * Two nodes rotating the signing key at the same moment agree on one key.
//! * Node faults under load (only with `TESSERA_GALERA_FAULTS=1`, as they
//!   kill and freeze the cluster's nodes; run alone): a node SIGKILLed and
//!   restarted, a node SIGSTOPped then resumed.
//!
//! `TESSERA_SOAK_GALERA_ROUNDS` sets the race rounds (default 2) and
//! `TESSERA_SOAK_GALERA_FAULT_CYCLES` the fault cycles (default 1);
//! scripts/soak.sh turns both up.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tessera::{Error, SessionManager, SigningKeys, Store, UserId};
use tessera_testkit::store_suite::key;

use support::*;

fn env_number(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn cluster(test: &str) -> Option<Harness> {
    let h = Harness::new(Backend::Galera, "galera", test).await?;
    assert!(h.urls.len() >= 3, "the Galera tests need three node URLs");
    Some(h)
}

/// One manager per node, in node order.
async fn managers(
    h: &Harness,
    f: impl Fn(tessera::ConfigBuilder) -> tessera::ConfigBuilder,
) -> Vec<SessionManager> {
    let mut out = Vec::new();
    for _ in 0..h.urls.len() {
        out.push(h.manager(&f).await);
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Unauthorized,
    Theft,
}

fn outcome<T: std::fmt::Debug>(what: &str, r: Result<T, Error>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(Error::Unauthorized { .. }) => Outcome::Unauthorized,
        Err(Error::TokenTheftDetected { .. }) => Outcome::Theft,
        Err(e) => panic!("{what}: unexpected {e:?}"),
    }
}

/// Runs `op` for each browser at once, task `i` on manager `i % 3`.
async fn spread<F, Fut>(
    ms: &[SessionManager],
    browsers: Vec<Browser>,
    op: F,
) -> Vec<(Outcome, Browser)>
where
    F: Fn(SessionManager, Browser) -> Fut,
    Fut: std::future::Future<Output = (Outcome, Browser)> + Send + 'static,
{
    let tasks: Vec<_> = browsers
        .into_iter()
        .enumerate()
        .map(|(i, b)| tokio::spawn(op(ms[i % ms.len()].clone(), b)))
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task panicked"));
    }
    out
}

async fn refresh_spread(ms: &[SessionManager], bs: Vec<Browser>) -> Vec<(Outcome, Browser)> {
    spread(ms, bs, |m, mut b| async move {
        let r = refresh(&m, &mut b).await;
        (outcome("refresh", r), b)
    })
    .await
}

async fn verify_spread(ms: &[SessionManager], bs: Vec<Browser>) -> Vec<(Outcome, Browser)> {
    spread(ms, bs, |m, mut b| async move {
        let r = verify(&m, &mut b).await;
        (outcome("verify", r), b)
    })
    .await
}

fn count(rs: &[(Outcome, Browser)], o: Outcome) -> usize {
    rs.iter().filter(|(r, _)| *r == o).count()
}

const TASKS: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_way_refresh_races_across_three_nodes() {
    let Some(h) = cluster("races_across_nodes").await else {
        return;
    };
    let ms = managers(&h, |c| c.with_blacklisting(false).with_anti_csrf(true)).await;
    let rounds = env_number("TESSERA_SOAK_GALERA_ROUNDS", 2);
    let retries_before = tessera_sqlx::conflict_retries();
    let started = Instant::now();
    for round in 0..rounds {
        let user = UserId::from(format!("racer{round}"));
        let mut start = login(&ms[round % 3], user.clone(), json!({"round": round})).await;
        if round % 2 == 1 {
            refresh(&ms[0], &mut start).await.unwrap();
        }
        let children = refresh_spread(&ms, vec![start; TASKS]).await;
        assert_eq!(
            count(&children, Outcome::Ok),
            TASKS,
            "round {round}: step 1"
        );

        let verified = verify_spread(&ms, children.into_iter().map(|(_, b)| b).collect()).await;
        let (ok, unauth) = (
            count(&verified, Outcome::Ok),
            count(&verified, Outcome::Unauthorized),
        );
        assert_eq!(
            (ok, unauth),
            (1, TASKS - 1),
            "round {round}: step 2, one child commits"
        );
        let (_, mut winner) = verified
            .into_iter()
            .find(|(o, _)| *o == Outcome::Ok)
            .unwrap();
        for m in &ms {
            verify(m, &mut winner)
                .await
                .expect("the winner's session works on every node");
        }

        refresh(&ms[1], &mut winner)
            .await
            .expect("the winner refreshes");
        let same = verify_spread(&ms, vec![winner.clone(); TASKS]).await;
        assert_eq!(count(&same, Outcome::Ok), TASKS, "round {round}: step 3");

        let siblings = refresh_spread(&ms, vec![winner; TASKS]).await;
        assert_eq!(
            count(&siblings, Outcome::Ok),
            TASKS,
            "round {round}: step 4a"
        );
        let promoted = refresh_spread(&ms, siblings.into_iter().map(|(_, b)| b).collect()).await;
        let (ok, theft, unauth) = (
            count(&promoted, Outcome::Ok),
            count(&promoted, Outcome::Theft),
            count(&promoted, Outcome::Unauthorized),
        );
        assert_eq!(
            ok, 1,
            "round {round}: step 4b ({theft} theft, {unauth} unauthorized)"
        );
        assert!(theft >= 1, "round {round}: no theft reported");
        for (i, m) in ms.iter().enumerate() {
            assert!(
                m.get_all_session_handles_for_user(&user)
                    .await
                    .unwrap()
                    .is_empty(),
                "round {round}: node {} still lists the revoked session",
                i + 1
            );
        }
    }
    // Calls per round: 64 × 5 racing steps, the set-up and the checks.
    let calls = rounds * (TASKS * 5 + 6);
    let retried = tessera_sqlx::conflict_retries() - retries_before;
    eprintln!(
        "galera races: {rounds} rounds of {TASKS}-way races over 3 nodes in {:.1} s, {retried} conflict retries ({:.1} per 1,000 calls)",
        started.elapsed().as_secs_f64(),
        retried as f64 * 1000.0 / calls as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_node_is_refused_at_once_on_the_others() {
    let Some(h) = cluster("revocation_visible_everywhere").await else {
        return;
    };
    let ms = managers(&h, |c| c.with_blacklisting(true)).await;
    for i in 0..30 {
        let (a, b, c) = (&ms[i % 3], &ms[(i + 1) % 3], &ms[(i + 2) % 3]);
        let mut jar = login(a, format!("u{i}"), json!({})).await;
        let handle = verify(b, &mut jar).await.unwrap().handle().to_owned();
        assert!(c.revoke_session(&handle).await.unwrap());
        // Straight after the revoking call returned, on the two other nodes.
        assert_unauthorized(verify(a, &mut jar.clone()).await);
        assert_unauthorized(verify(b, &mut jar.clone()).await);
        assert_unauthorized(refresh(a, &mut jar.clone()).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_revoked_on_another_node_straight_after_its_create() {
    // A DELETE on a node that has not applied the INSERT yet would match
    // nothing and write nothing: the store's connections wait for the
    // cluster before UPDATE and DELETE too (wsrep_sync_wait bit 2).
    let Some(h) = cluster("revoke_right_after_create").await else {
        return;
    };
    let ms = managers(&h, |c| c.with_blacklisting(true)).await;
    let stores: Vec<_> = {
        let mut v = Vec::new();
        for url in &h.urls {
            v.push(tessera_sqlx::connect(url).await.unwrap());
        }
        v
    };
    let payload = "{}";
    let user = UserId::from("r");
    for i in 0..300 {
        let handle = format!("h{i}");
        let hash = "a".repeat(64);
        stores[i % 3]
            .insert_session(&tessera::NewSession {
                session_handle: &handle,
                user_id: &user,
                refresh_token_hash_2: &hash,
                session_info: payload,
                jwt_payload: payload,
                created_at_ms: 1,
                expires_at_ms: i64::MAX,
                user_agent: None,
                client_address: None,
                device_label: None,
            })
            .await
            .unwrap();
        assert!(
            ms[(i + 1) % 3].revoke_session(&handle).await.unwrap(),
            "round {i}: node {} did not find the session node {} had just created",
            (i + 1) % 3 + 1,
            i % 3 + 1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_rotating_at_once_agree_on_one_key() {
    let Some(h) = cluster("rotation_agreement").await else {
        return;
    };
    let a = Arc::new(tessera_sqlx::connect(&h.urls[0]).await.unwrap());
    let b = Arc::new(tessera_sqlx::connect(&h.urls[1]).await.unwrap());
    // First keys: both nodes insert their own candidate at once.
    let (ca, cb) = (key(1, 1_000), key(2, 1_000));
    let (ka, kb) = tokio::join!(
        a.signing_keys(&ca, &|_| None),
        b.signing_keys(&cb, &|_| None)
    );
    let (ka, kb) = (ka.unwrap(), kb.unwrap());
    assert_eq!(ka, kb, "one first key");
    // Then rotations at the same moment: rotate when the key is older than
    // the round's time; exactly one rotation per round, both see its key.
    for round in 0..10u8 {
        let at = 10_000 * (i64::from(round) + 1);
        let decide = move |mine: u8| {
            move |stored: &SigningKeys| {
                (stored.current.created_at_ms < at).then(|| SigningKeys {
                    current: key(mine, at),
                    previous: Some(stored.current.clone()),
                })
            }
        };
        let (da, db) = (decide(10 + round), decide(100 + round));
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let ta = {
            let (a, barrier) = (a.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                a.signing_keys(&key(0, 0), &da).await
            })
        };
        let tb = {
            let (b, barrier) = (b.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                b.signing_keys(&key(0, 0), &db).await
            })
        };
        let (ra, rb) = (ta.await.unwrap().unwrap(), tb.await.unwrap().unwrap());
        assert_eq!(ra, rb, "round {round}: the two nodes disagree");
        assert_eq!(ra.current.created_at_ms, at);
        let on_third = tessera_sqlx::connect(&h.urls[2])
            .await
            .unwrap()
            .signing_keys(&key(0, 0), &|_| None)
            .await
            .unwrap();
        assert_eq!(on_third, ra, "round {round}: the third node disagrees");
    }
    // Managers started at once on the three nodes share one key: a token
    // signed by one verifies on the others.
    let ms = managers(&h, |c| c).await;
    let mut jar = login(&ms[0], "k", json!({})).await;
    verify(&ms[1], &mut jar).await.unwrap();
    verify(&ms[2], &mut jar).await.unwrap();
}

// ---------------------------------------------------------------------------
// Node faults under load.

fn galera_script() -> String {
    format!("{}/../../scripts/galera.sh", env!("CARGO_MANIFEST_DIR"))
}

fn script(args: &[&str]) {
    let status = std::process::Command::new("bash")
        .arg(galera_script())
        .args(args)
        .status()
        .expect("running scripts/galera.sh");
    assert!(status.success(), "galera.sh {args:?} failed");
}

/// What the load saw, per node.
#[derive(Default)]
struct Tally {
    ok: [AtomicUsize; 3],
    general: [AtomicUsize; 3],
}

struct Ledger {
    /// Sessions whose create returned, per user.
    created: HashMap<String, HashSet<String>>,
    /// Sessions whose revocation returned `true`.
    revoked: HashSet<String>,
    /// Sessions whose revocation failed: revoked or not, unknown.
    unknown: HashSet<String>,
}

const OP_BOUND: Duration = Duration::from_secs(12);

/// One client of node `node` (0-based): create, verify, refresh, now and
/// then revoke on another node; a General error abandons the session
/// (bounded in time), anything else but success fails the test.
async fn client(
    ms: Arc<Vec<SessionManager>>,
    node: usize,
    id: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
    tally: Arc<Tally>,
    ledger: Arc<Mutex<Ledger>>,
) {
    let m = &ms[node];
    let user = format!("n{node}c{id}");
    let mut i = 0usize;
    let timed = |r: &Result<(), Error>, started: Instant, what: &str| match r {
        Ok(()) => {
            tally.ok[node].fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(e @ Error::General { .. }) => {
            assert!(
                started.elapsed() <= OP_BOUND,
                "node {}: {what} took {:?} to fail: {e}",
                node + 1,
                started.elapsed()
            );
            tally.general[node].fetch_add(1, Ordering::Relaxed);
            false
        }
        Err(e) => panic!("node {}: {what}: {e:?}", node + 1),
    };
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let t = Instant::now();
        let mut resp = http::HeaderMap::new();
        let created = m
            .create_new_session(&mut resp, user.as_str(), json!({}), json!({}))
            .await;
        let session = match created {
            Ok(s) => s,
            Err(e) => {
                let failed: Result<(), Error> = Err(e);
                timed(&failed, t, "create");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tally.ok[node].fetch_add(1, Ordering::Relaxed);
        let handle = session.handle().to_owned();
        ledger
            .lock()
            .unwrap()
            .created
            .entry(user.clone())
            .or_default()
            .insert(handle.clone());
        let mut jar = Browser::default();
        jar.absorb(&resp);
        let t = Instant::now();
        if !timed(&verify(m, &mut jar).await.map(drop), t, "verify") {
            continue;
        }
        let t = Instant::now();
        if !timed(&refresh(m, &mut jar).await.map(drop), t, "refresh") {
            continue;
        }
        if i % 3 == 0 {
            let other = &ms[(node + 1) % 3];
            let t = Instant::now();
            match other.revoke_session(&handle).await {
                Ok(true) => {
                    ledger.lock().unwrap().revoked.insert(handle);
                }
                Ok(false) => panic!("an acknowledged session was not found to revoke"),
                Err(e) => {
                    // The other node's fault; not this node's tally.
                    assert!(
                        t.elapsed() <= OP_BOUND,
                        "revoke took {:?}: {e}",
                        t.elapsed()
                    );
                    ledger.lock().unwrap().unknown.insert(handle);
                }
            }
        }
    }
}

fn snapshot(t: &Tally) -> [(usize, usize); 3] {
    std::array::from_fn(|i| {
        (
            t.ok[i].load(Ordering::Relaxed),
            t.general[i].load(Ordering::Relaxed),
        )
    })
}

/// Waits until node `node`'s instance succeeds again, at most `limit`.
async fn recovers(t: &Tally, node: usize, limit: Duration) -> Duration {
    let started = Instant::now();
    let base = t.ok[node].load(Ordering::Relaxed);
    while t.ok[node].load(Ordering::Relaxed) < base + 3 {
        assert!(
            started.elapsed() < limit,
            "node {}'s instance did not recover within {limit:?}",
            node + 1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_faults_under_load() {
    if std::env::var_os("TESSERA_GALERA_FAULTS").is_none() {
        eprintln!("galera node_faults_under_load: NOT RUN (set TESSERA_GALERA_FAULTS=1; it kills cluster nodes)");
        return;
    }
    let Some(h) = cluster("node_faults_under_load").await else {
        return;
    };
    let ms = Arc::new(managers(&h, |c| c.with_blacklisting(true)).await);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let ledger = Arc::new(Mutex::new(Ledger {
        created: HashMap::new(),
        revoked: HashSet::new(),
        unknown: HashSet::new(),
    }));
    let mut tasks = Vec::new();
    for node in 0..3 {
        for id in 0..4 {
            tasks.push(tokio::spawn(client(
                ms.clone(),
                node,
                id,
                stop.clone(),
                tally.clone(),
                ledger.clone(),
            )));
        }
    }
    let cycles = env_number("TESSERA_SOAK_GALERA_FAULT_CYCLES", 1);
    for cycle in 0..cycles {
        tokio::time::sleep(Duration::from_secs(2)).await;
        // SIGKILL node 3, keep it down, restart it.
        let before = snapshot(&tally);
        script(&["kill", "3"]);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let during = snapshot(&tally);
        for n in 0..2 {
            assert!(
                during[n].0 > before[n].0 + 5,
                "cycle {cycle}: node {} stopped serving while node 3 was down",
                n + 1
            );
        }
        assert!(
            during[2].1 > before[2].1,
            "cycle {cycle}: node 3's instance saw no error while its node was down"
        );
        tokio::task::spawn_blocking(|| script(&["start-node", "3"]))
            .await
            .unwrap();
        let back = recovers(&tally, 2, Duration::from_secs(60)).await;
        eprintln!(
            "galera faults cycle {cycle}: kill node 3: nodes 1/2 served {} / {} calls meanwhile, node 3 failed {} (bounded); node 3 back {:.1} s after restart",
            during[0].0 - before[0].0,
            during[1].0 - before[1].0,
            during[2].1 - before[2].1,
            back.as_secs_f64()
        );

        // SIGSTOP node 2 for 10 s (longer than the cluster's 6 s inactivity
        // timeout: it is evicted), then SIGCONT.
        let before = snapshot(&tally);
        script(&["freeze", "2"]);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let during = snapshot(&tally);
        script(&["thaw", "2"]);
        for n in [0, 2] {
            assert!(
                during[n].0 > before[n].0 + 5,
                "cycle {cycle}: node {} stopped serving while node 2 was frozen",
                n + 1
            );
        }
        let back = recovers(&tally, 1, Duration::from_secs(60)).await;
        eprintln!(
            "galera faults cycle {cycle}: freeze node 2: nodes 1/3 served {} / {} calls meanwhile ({} / {} General errors while node 2 was being evicted); node 2 back {:.1} s after SIGCONT",
            during[0].0 - before[0].0,
            during[2].0 - before[2].0,
            during[0].1 - before[0].1,
            during[2].1 - before[2].1,
            back.as_secs_f64()
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .expect("a client did not stop")
            .expect("a client failed");
    }
    // Nothing acknowledged is lost and no revocation comes back, on any node.
    let ledger = std::mem::replace(
        &mut *ledger.lock().unwrap(),
        Ledger {
            created: HashMap::new(),
            revoked: HashSet::new(),
            unknown: HashSet::new(),
        },
    );
    let (mut alive, mut revoked) = (0, 0);
    for (i, m) in ms.iter().enumerate() {
        for (user, created) in &ledger.created {
            let listed: HashSet<String> = m
                .get_all_session_handles_for_user(&UserId::from(user.as_str()))
                .await
                .unwrap()
                .into_iter()
                .collect();
            for handle in created {
                if ledger.unknown.contains(handle) {
                    continue;
                }
                if ledger.revoked.contains(handle) {
                    assert!(
                        !listed.contains(handle),
                        "node {}: a revoked session came back",
                        i + 1
                    );
                    revoked += 1;
                } else {
                    assert!(
                        listed.contains(handle),
                        "node {}: an acknowledged session was lost",
                        i + 1
                    );
                    alive += 1;
                }
            }
        }
    }
    let totals = snapshot(&tally);
    eprintln!(
        "galera faults: {} calls acknowledged, {} General errors; checked on 3 nodes: {} live sessions present, {} revocations absent",
        totals.iter().map(|t| t.0).sum::<usize>(),
        totals.iter().map(|t| t.1).sum::<usize>(),
        alive / 3,
        revoked / 3
    );
}

/// Captures what is logged while a test runs on its current thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_node_with_a_setting_off_is_named_in_a_warning() {
    use sqlx::{Connection, Executor};
    let Some(h) = cluster("settings_checked").await else {
        return;
    };
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let logged = || String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();

    tessera_sqlx::connect(&h.urls[0]).await.unwrap();
    assert!(
        !logged().contains("Galera node"),
        "a well set node: {}",
        logged()
    );

    let mut admin = sqlx::MySqlConnection::connect(&h.urls[2]).await.unwrap();
    admin
        .execute("SET GLOBAL innodb_flush_log_at_trx_commit = 2")
        .await
        .unwrap();
    let connected = tessera_sqlx::connect(&h.urls[2]).await;
    admin
        .execute("SET GLOBAL innodb_flush_log_at_trx_commit = 1")
        .await
        .unwrap();
    connected.unwrap();
    let text = logged();
    assert!(
        text.contains("WARN")
            && text.contains("innodb_flush_log_at_trx_commit is 2 but Tessera needs 1"),
        "{text}"
    );
    assert_eq!(
        text.matches("Galera node:").count(),
        1,
        "only that setting: {text}"
    );
}

// ---------------------------------------------------------------------------
// Throughput (BENCHMARKS.md, "Galera"): not a test, run by hand with
// `cargo test -p tessera-sqlx --test galera -- --ignored --nocapture throughput`.

/// Runs `op` on 32 tasks (task `i` on instance `i % 3`) for `secs`; returns
/// calls per second and conflict retries per thousand calls.
async fn rate<F, Fut>(ms: &[SessionManager], secs: u64, op: F) -> (f64, f64)
where
    F: Fn(SessionManager, usize) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = usize> + Send + 'static,
{
    let retries = tessera_sqlx::conflict_retries();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (m, op) = (ms[i % ms.len()].clone(), op.clone());
            tokio::spawn(async move {
                let mut done = 0;
                while Instant::now() < deadline {
                    done += op(m.clone(), i).await;
                }
                done
            })
        })
        .collect();
    let mut calls = 0;
    for t in tasks {
        calls += t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let retried = (tessera_sqlx::conflict_retries() - retries) as f64;
    (calls as f64 / elapsed, retried * 1000.0 / calls as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; see BENCHMARKS.md"]
async fn throughput_cluster_against_one_server() {
    let secs = env_number("TESSERA_BENCH_SECS", 10) as u64;
    let mut rows = Vec::new();
    for (label, backend) in [
        ("3-node Galera, one instance per node", Backend::Galera),
        ("one MariaDB server, three instances", Backend::MySql),
    ] {
        let Some(h) = Harness::new(backend, "throughput", label).await else {
            continue;
        };
        let mut ms = Vec::new();
        for _ in 0..3 {
            ms.push(h.manager(|c| c.with_anti_csrf(false)).await);
        }
        let (creates, create_retries) = rate(&ms, secs, |m, i| async move {
            let mut resp = http::HeaderMap::new();
            m.create_new_session(&mut resp, format!("c{i}"), json!({}), json!({}))
                .await
                .expect("create");
            1
        })
        .await;
        let jars: Arc<Vec<Mutex<Option<Browser>>>> =
            Arc::new((0..32).map(|_| Mutex::new(None)).collect());
        let (refreshes, refresh_retries) = rate(&ms, secs, move |m, i| {
            let jars = jars.clone();
            async move {
                let jar = jars[i].lock().unwrap().take();
                let mut jar = match jar {
                    Some(j) => j,
                    None => login(&m, format!("r{i}"), json!({})).await,
                };
                // Each refresh after the first presents an unpromoted child:
                // a compare-and-set write, as a client's refresh does.
                refresh(&m, &mut jar).await.expect("refresh");
                *jars[i].lock().unwrap() = Some(jar);
                1
            }
        })
        .await;
        rows.push(format!(
            "| {label} | {creates:.0} | {refreshes:.0} | {create_retries:.2} / {refresh_retries:.2} |"
        ));
    }
    println!("| 32 tasks, {secs} s each | creates/s | refreshes/s | conflict retries per 1,000 calls (create / refresh) |");
    println!("|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}
