//! Crash test: the real demo binary is killed with SIGKILL at random moments
//! while clients use it over HTTP, restarted on the same database, and then
//! checked against everything the clients were told before the kill.
//!
//! `TESSERA_SOAK_CRASH_CYCLES` sets the number of kill/restart cycles
//! (default 8, what CI runs; the soak run uses 200), `TESSERA_SOAK_SEED` the
//! seed (printed at the start, so a failure can be replayed; task scheduling
//! still varies between runs), `TESSERA_SOAK_CRASH_CLIENTS` the number of
//! client tasks (default 6) and `TESSERA_SOAK_BACKENDS` a comma-separated
//! subset of `sqlite,postgres,mysql`. SQLite (the demo's default embedded
//! file) always runs; PostgreSQL and MySQL/MariaDB run when
//! `TESSERA_TEST_POSTGRES_URL` / `TESSERA_TEST_MYSQL_URL` are set, each on a
//! fresh database from `tessera_sqlx::testing::fresh_url`.
//! The measured numbers are printed on lines starting with `crash-soak:`.
//!
//! # What a client may rely on, and why the checks are sound
//!
//! Each client is one user. It signs in (creates sessions), verifies
//! (`GET /api/me`, `GET /api/sessions`), edits the session info
//! (`PUT /api/me/info`), refreshes (`POST /refresh/`) and revokes
//! (`DELETE /api/sessions/{handle}` of another of its sessions, or
//! `POST /api/logout`), one request at a time, on up to four sessions. An
//! outcome counts only when it is **acknowledged**: the whole response
//! arrived with a 2xx status. Cookies change only with an acknowledged
//! response (`Browser::try_send`), so after a request cut short by the kill
//! a client holds exactly what it held before it.
//!
//! The server may have committed a request whose response never arrived. The
//! checks allow for that (docs/PROTOCOL.md §8.1):
//!
//! * The row's committed refresh token only ever moves to a *child* of the
//!   committed token, and only the presented token (a refresh) or the `rt`
//!   of the presented access token (first use after a refresh) is promoted.
//!   A client that keeps its last acknowledged cookies therefore holds either
//!   the committed token or its unpromoted child, whatever unacknowledged
//!   requests committed: both refresh successfully. So after a restart the
//!   last acknowledged refresh token of every live session **must refresh
//!   (200)**; `unauthorized` means the session was lost and
//!   `token_theft_detected` means the row went back behind an acknowledged
//!   promotion.
//! * A `200` to a refresh with token T means T is committed at that moment
//!   (it was, or it was just promoted). A 2xx to any session route after a
//!   refresh means the new refresh token is committed (the first use of the
//!   new access token promotes it, or finds it already promoted). When the
//!   client's current token C is known committed this way, its parent P is
//!   **superseded by an acknowledged promotion**: the committed token can
//!   never become P again. Presenting P after a restart **must** answer
//!   `token_theft_detected`. If the crash lost the acknowledged promotion, P
//!   would still be committed and refresh with 200: that is the failure this
//!   probe exists for. (A token superseded only by an *unacknowledged*
//!   refresh is never probed: the server may legitimately not have committed
//!   that refresh.) The probe revokes the session (the default
//!   revoke-on-theft), so it runs on a quarter of the eligible sessions per
//!   restart; the theft revocation is acknowledged by its 401 and is checked
//!   like any other revocation afterwards.
//! * An acknowledged creation must exist: its handle is listed by the admin
//!   command `tessera-demo sessions USER`, run while the server is down, and
//!   its refresh token works after the restart (above). Sessions whose
//!   revocation was sent but not acknowledged are dropped from the checks
//!   (the deletion may or may not have committed); sessions whose creation
//!   was not acknowledged are unknown to the client and may be listed.
//! * An acknowledged revocation (revoke, logout, theft) must stay: the handle
//!   is never listed again, and after the first restart that follows it the
//!   session's last refresh token gets `unauthorized` and its access token
//!   a 401.
//! * While running, a live session's request that gets a complete answer
//!   must get a 2xx (access tokens live an hour here, so a client acting in
//!   order is never told to refresh, let alone anything worse), and the
//!   user's session list must contain every live session and no revoked one.
//!
//! SIGKILL tests process crashes: whatever the database accepted before the
//! kill survives in the OS even without `fsync`. Power loss or a kernel crash
//! is not simulated here; that durability rests on the stores' settings
//! (SQLite WAL with `synchronous=FULL`, PostgreSQL `synchronous_commit=on`,
//! InnoDB `innodb_flush_log_at_trx_commit=1`).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::soak_backends;
use common::{admin, env_number, stderr, stdout, Browser, Demo, Rng};
use serde_json::{json, Value};
use tessera_sqlx::testing::{discard, fresh_urls, Backend};

const PASSWORD: &str = "crash test password";
const MAX_SESSIONS: usize = 4;
/// Share of the eligible sessions whose superseded token is presented after
/// a restart (the probe revokes the session).
const PROBE_SHARE: f64 = 0.25;
/// Longest time between the clients starting and the kill.
const MAX_KILL_DELAY_MS: u64 = 1500;

#[derive(Clone, Debug)]
struct Sess {
    handle: String,
    jar: Browser,
    /// Refresh tokens superseded by an acknowledged promotion, oldest first.
    superseded: Vec<String>,
    /// The token presented in the last acknowledged refresh (the current
    /// token's parent) until the current token is known committed.
    parent: Option<String>,
    /// The current refresh token is known to be the committed one.
    committed: bool,
}

impl Sess {
    fn new(handle: String, jar: Browser) -> Sess {
        Sess {
            handle,
            jar,
            superseded: Vec::new(),
            parent: None,
            committed: true,
        }
    }

    fn refresh_token(&self) -> String {
        self.jar
            .cookies
            .get("sRefreshToken")
            .cloned()
            .expect("a live session holds a refresh token")
    }

    /// A 2xx on a session route: the current refresh token is committed.
    fn acked_use(&mut self, stats: &mut Stats) {
        if !self.committed {
            self.committed = true;
            stats.promotions_acked += 1;
            if let Some(p) = self.parent.take() {
                self.superseded.push(p);
            }
        }
    }

    /// A 200 to a refresh that presented `presented`.
    fn acked_refresh(&mut self, presented: String, stats: &mut Stats) {
        self.acked_use(stats);
        self.parent = Some(presented);
        self.committed = false;
        stats.refreshes_acked += 1;
    }
}

#[derive(Default, Debug, Clone)]
struct Stats {
    creates_acked: u64,
    refreshes_acked: u64,
    promotions_acked: u64,
    verifies_acked: u64,
    listings_acked: u64,
    info_edits_acked: u64,
    revokes_acked: u64,
    not_acked: u64,
    not_acked_writes: u64,
    // checks after restarts
    listed_checked: u64,
    revoked_unlisted_checked: u64,
    revoked_tokens_checked: u64,
    holder_refreshes_checked: u64,
    superseded_probed: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.creates_acked += o.creates_acked;
        self.refreshes_acked += o.refreshes_acked;
        self.promotions_acked += o.promotions_acked;
        self.verifies_acked += o.verifies_acked;
        self.listings_acked += o.listings_acked;
        self.info_edits_acked += o.info_edits_acked;
        self.revokes_acked += o.revokes_acked;
        self.not_acked += o.not_acked;
        self.not_acked_writes += o.not_acked_writes;
        self.listed_checked += o.listed_checked;
        self.revoked_unlisted_checked += o.revoked_unlisted_checked;
        self.revoked_tokens_checked += o.revoked_tokens_checked;
        self.holder_refreshes_checked += o.holder_refreshes_checked;
        self.superseded_probed += o.superseded_probed;
    }
}

struct Client {
    name: String,
    rng: Rng,
    live: Vec<Sess>,
    /// Acknowledged revocations not yet checked after a restart.
    revoked_new: Vec<Sess>,
    /// Every handle whose revocation was acknowledged.
    revoked_handles: Vec<String>,
    /// Revocations sent but not acknowledged (outcome unknown).
    limbo: u64,
    stats: Stats,
    failures: Vec<String>,
}

fn creds(name: &str) -> Option<Value> {
    Some(json!({"username": name, "password": PASSWORD}))
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

impl Client {
    /// One user's traffic until the server dies (a request is not
    /// acknowledged) or `stop` is set.
    async fn run(&mut self, base: &str, stop: &AtomicBool) {
        let http = http_client();
        while !stop.load(Ordering::Relaxed) && self.failures.is_empty() {
            if !self.step(&http, base).await {
                return;
            }
        }
    }

    /// One operation; `false` once a request went unacknowledged.
    async fn step(&mut self, http: &reqwest::Client, base: &str) -> bool {
        // Sign in now and then; more often while the user has few sessions
        // (revocations and theft probes keep removing them).
        let want_more = if self.live.len() < 2 { 0.4 } else { 0.12 };
        if self.live.is_empty() || (self.live.len() < MAX_SESSIONS && self.rng.unit() < want_more) {
            let mut jar = Browser::default();
            return match jar
                .try_send(http, base, "POST", "/api/signin", creds(&self.name))
                .await
            {
                Ok(reply) if reply.status == 200 => {
                    let handle = reply.body["sessionHandle"].as_str().unwrap().to_owned();
                    self.live.push(Sess::new(handle, jar));
                    self.stats.creates_acked += 1;
                    true
                }
                Ok(reply) => {
                    self.fail(format!("sign-in answered {} {}", reply.status, reply.body));
                    true
                }
                Err(_) => self.not_acked(true),
            };
        }
        let r = self.rng.unit();
        let i = self.rng.below(self.live.len() as u64) as usize;
        if r < 0.35 {
            let mut s = self.live[i].clone();
            match s.jar.try_send(http, base, "GET", "/api/me", None).await {
                Ok(reply) if reply.status == 200 => {
                    if reply.body["sessionHandle"] != s.handle.as_str() {
                        self.fail(format!("/api/me of {} named {}", s.handle, reply.body));
                    }
                    s.acked_use(&mut self.stats);
                    self.stats.verifies_acked += 1;
                    self.live[i] = s;
                    true
                }
                Ok(reply) => {
                    self.fail(format!(
                        "live session: GET /api/me answered {} {}",
                        reply.status, reply.body
                    ));
                    true
                }
                // Even an unacknowledged verify may have promoted; nothing to record.
                Err(_) => self.not_acked(false),
            }
        } else if r < 0.72 {
            let mut s = self.live[i].clone();
            let presented = s.refresh_token();
            match s.jar.try_send(http, base, "POST", "/refresh/", None).await {
                Ok(reply) if reply.status == 200 => {
                    s.acked_refresh(presented, &mut self.stats);
                    self.live[i] = s;
                    true
                }
                Ok(reply) => {
                    self.fail(format!(
                        "live session: refresh answered {} {}",
                        reply.status, reply.body
                    ));
                    true
                }
                Err(_) => self.not_acked(true),
            }
        } else if r < 0.82 {
            let mut s = self.live[i].clone();
            match s
                .jar
                .try_send(http, base, "GET", "/api/sessions", None)
                .await
            {
                Ok(reply) if reply.status == 200 => {
                    s.acked_use(&mut self.stats);
                    self.stats.listings_acked += 1;
                    self.live[i] = s;
                    let listed: Vec<&str> = reply.body["sessions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x["handle"].as_str().unwrap())
                        .collect();
                    let missing: Vec<&String> = self
                        .live
                        .iter()
                        .map(|s| &s.handle)
                        .filter(|h| !listed.contains(&h.as_str()))
                        .collect();
                    let back: Vec<&String> = self
                        .revoked_handles
                        .iter()
                        .filter(|h| listed.contains(&h.as_str()))
                        .collect();
                    if !missing.is_empty() || !back.is_empty() {
                        let msg = format!(
                            "session list: {} live missing, {} revoked listed",
                            missing.len(),
                            back.len()
                        );
                        self.fail(msg);
                    }
                    true
                }
                Ok(reply) => {
                    self.fail(format!(
                        "live session: GET /api/sessions answered {} {}",
                        reply.status, reply.body
                    ));
                    true
                }
                Err(_) => self.not_acked(false),
            }
        } else if r < 0.89 && self.live.len() >= 2 {
            // Revoke another session of the user through this one.
            let j = (i + 1 + self.rng.below(self.live.len() as u64 - 1) as usize) % self.live.len();
            let target = self.live[j].clone();
            let mut s = self.live[i].clone();
            // From now on the target's fate is only known from the answer.
            self.live.remove(j);
            let i = if j < i { i - 1 } else { i };
            let path = format!("/api/sessions/{}", target.handle);
            match s.jar.try_send(http, base, "DELETE", &path, None).await {
                Ok(reply) if reply.status == 200 => {
                    s.acked_use(&mut self.stats);
                    self.live[i] = s;
                    if reply.body["revoked"] != true {
                        self.fail(format!("revoking a live session answered {}", reply.body));
                    }
                    self.acked_revocation(target);
                    true
                }
                Ok(reply) => {
                    self.fail(format!(
                        "live session: DELETE another answered {} {}",
                        reply.status, reply.body
                    ));
                    true
                }
                Err(_) => {
                    self.limbo += 1;
                    self.not_acked(true)
                }
            }
        } else if r < 0.93 {
            // Log out of this session.
            let s = self.live.remove(i);
            let mut after = s.jar.clone();
            match after
                .try_send(http, base, "POST", "/api/logout", None)
                .await
            {
                Ok(reply) if reply.status == 200 => {
                    // Keep the cookies from before the logout, to present later.
                    self.acked_revocation(s);
                    true
                }
                Ok(reply) => {
                    self.fail(format!(
                        "live session: logout answered {} {}",
                        reply.status, reply.body
                    ));
                    true
                }
                Err(_) => {
                    self.limbo += 1;
                    self.not_acked(true)
                }
            }
        } else {
            // Edit the session info (a write that must not disturb anything).
            let mut s = self.live[i].clone();
            let body = Some(json!({"info": {"n": self.rng.below(1000)}}));
            match s
                .jar
                .try_send(http, base, "PUT", "/api/me/info", body)
                .await
            {
                Ok(reply) if reply.status == 200 => {
                    s.acked_use(&mut self.stats);
                    self.stats.info_edits_acked += 1;
                    self.live[i] = s;
                    true
                }
                Ok(reply) => {
                    self.fail(format!(
                        "live session: PUT /api/me/info answered {} {}",
                        reply.status, reply.body
                    ));
                    true
                }
                Err(_) => self.not_acked(true),
            }
        }
    }

    fn acked_revocation(&mut self, s: Sess) {
        self.stats.revokes_acked += 1;
        self.revoked_handles.push(s.handle.clone());
        self.revoked_new.push(s);
    }

    fn not_acked(&mut self, write: bool) -> bool {
        self.stats.not_acked += 1;
        if write {
            self.stats.not_acked_writes += 1;
        }
        false
    }

    fn fail(&mut self, msg: String) {
        self.failures.push(format!("{}: {msg}", self.name));
    }

    /// The checks with the server down: the admin listing from the database.
    fn check_listing(&mut self, db: &str) {
        let out = admin(db, &["sessions", &self.name]);
        assert!(out.status.success(), "admin sessions: {}", stderr(&out));
        let text = stdout(&out);
        for s in &self.live {
            if !text.contains(&s.handle) {
                self.failures.push(format!(
                    "{}: acknowledged session {} is gone after the crash",
                    self.name, s.handle
                ));
            }
            self.stats.listed_checked += 1;
        }
        for h in &self.revoked_handles {
            if text.contains(h.as_str()) {
                self.failures.push(format!(
                    "{}: revoked session {h} is listed again after the crash",
                    self.name
                ));
            }
            self.stats.revoked_unlisted_checked += 1;
        }
    }

    /// The checks over HTTP on the restarted server.
    async fn check_tokens(&mut self, base: &str) {
        let http = http_client();
        for s in std::mem::take(&mut self.revoked_new) {
            let mut jar = s.jar.clone();
            let r = jar
                .try_send(&http, base, "POST", "/refresh/", None)
                .await
                .expect("the restarted server answers");
            if (r.status, r.body["error"].as_str()) != (401, Some("unauthorized")) {
                self.fail(format!(
                    "revoked session {}: its refresh token got {} {} after the crash",
                    s.handle, r.status, r.body
                ));
            }
            let mut jar = s.jar.clone();
            let r = jar
                .try_send(&http, base, "GET", "/api/me", None)
                .await
                .expect("the restarted server answers");
            if r.status != 401 {
                self.fail(format!(
                    "revoked session {}: its access token got {} {} after the crash",
                    s.handle, r.status, r.body
                ));
            }
            self.stats.revoked_tokens_checked += 1;
        }
        let mut keep = Vec::new();
        for mut s in std::mem::take(&mut self.live) {
            if !s.superseded.is_empty() && self.rng.unit() < PROBE_SHARE {
                // A refresh token superseded by an acknowledged promotion.
                let mut thief = s.jar.clone();
                let old = s.superseded.last().unwrap().clone();
                thief.cookies.insert("sRefreshToken".into(), old);
                let r = thief
                    .try_send(&http, base, "POST", "/refresh/", None)
                    .await
                    .expect("the restarted server answers");
                self.stats.superseded_probed += 1;
                if (r.status, r.body["error"].as_str()) != (401, Some("token_theft_detected")) {
                    self.fail(format!(
                        "session {}: a refresh token superseded by an acknowledged promotion \
                         got {} {} after the crash",
                        s.handle, r.status, r.body
                    ));
                    continue;
                }
                // Revoked on theft: the holder is out too.
                let mut holder = s.jar.clone();
                let r = holder
                    .try_send(&http, base, "POST", "/refresh/", None)
                    .await
                    .expect("the restarted server answers");
                if (r.status, r.body["error"].as_str()) != (401, Some("unauthorized")) {
                    self.fail(format!(
                        "session {}: after theft detection the holder's refresh got {} {}",
                        s.handle, r.status, r.body
                    ));
                }
                self.acked_revocation(s);
                continue;
            }
            let presented = s.refresh_token();
            let r = s
                .jar
                .try_send(&http, base, "POST", "/refresh/", None)
                .await
                .expect("the restarted server answers");
            self.stats.holder_refreshes_checked += 1;
            if r.status != 200 {
                self.fail(format!(
                    "session {}: its last acknowledged refresh token got {} {} after the crash",
                    s.handle, r.status, r.body
                ));
                continue;
            }
            s.acked_refresh(presented, &mut self.stats);
            let r = s
                .jar
                .try_send(&http, base, "GET", "/api/me", None)
                .await
                .expect("the restarted server answers");
            if r.status != 200 {
                self.fail(format!(
                    "session {}: GET /api/me after the refresh got {} {}",
                    s.handle, r.status, r.body
                ));
                continue;
            }
            s.acked_use(&mut self.stats);
            keep.push(s);
        }
        self.live = keep;
    }
}

async fn crash_cycles(backend: Backend) {
    let cycles: u64 = env_number("TESSERA_SOAK_CRASH_CYCLES", 8);
    let n_clients: usize = env_number("TESSERA_SOAK_CRASH_CLIENTS", 6);
    let seed = Rng::seed_from_env("TESSERA_SOAK_SEED");
    println!(
        "crash-soak: backend={backend} seed={seed} cycles={cycles} clients={n_clients} \
         (replay with TESSERA_SOAK_SEED={seed})"
    );
    let mut rng = Rng::new(seed);
    // On Galera one URL per node: each restart connects the demo to the
    // next node, so the instance that comes back is on another server than
    // the one that died (what a load balancer does after a crash).
    let urls = fresh_urls(backend).await;
    let db = urls[0].clone();
    let started = Instant::now();
    // Long-lived access tokens: a client acting in order never needs to refresh.
    let env = [("RUST_LOG", "error")];
    let mut demo = Demo::start_with_env(&db, &[], "3600", &env);

    let mut clients = Vec::new();
    {
        let http = http_client();
        for k in 0..n_clients {
            let name = format!("crash{k}");
            let mut jar = Browser::default();
            let r = jar
                .try_send(&http, &demo.base, "POST", "/api/signup", creds(&name))
                .await
                .expect("sign-up");
            assert_eq!(r.status, 200, "sign-up: {}", r.body);
            let handle = r.body["sessionHandle"].as_str().unwrap().to_owned();
            let mut stats = Stats::default();
            stats.creates_acked += 1;
            clients.push(Client {
                name,
                rng: Rng::new(rng.next_u64()),
                live: vec![Sess::new(handle, jar)],
                revoked_new: Vec::new(),
                revoked_handles: Vec::new(),
                limbo: 0,
                stats,
                failures: Vec::new(),
            });
        }
    }

    let mut kill_delays = Vec::new();
    for cycle in 1..=cycles {
        let stop = Arc::new(AtomicBool::new(false));
        let base = Arc::new(demo.base.clone());
        let mut tasks = Vec::new();
        for mut c in clients.drain(..) {
            let stop = stop.clone();
            let base = base.clone();
            tasks.push(tokio::spawn(async move {
                c.run(&base, &stop).await;
                c
            }));
        }
        let delay = rng.below(MAX_KILL_DELAY_MS + 1);
        kill_delays.push(delay);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        demo.sigkill();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            clients.push(t.await.expect("client task"));
        }
        let in_flight: u64 = clients.iter().map(|c| c.stats.not_acked).sum();

        // The server is down: what does the database hold?
        for c in &mut clients {
            c.check_listing(&db);
        }
        let node = &urls[cycle as usize % urls.len()];
        demo = Demo::start_with_env(node, &[], "3600", &env);
        for c in &mut clients {
            c.check_tokens(&demo.base).await;
        }
        let failures: Vec<&String> = clients.iter().flat_map(|c| &c.failures).collect();
        let live: usize = clients.iter().map(|c| c.live.len()).sum();
        eprintln!(
            "crash-cycle: backend={backend} cycle {cycle}/{cycles}: killed after {delay} ms, \
             {in_flight} requests unacknowledged so far, {live} live sessions; restarted on \
             server {} of {}",
            cycle as usize % urls.len() + 1,
            urls.len()
        );
        assert!(
            failures.is_empty(),
            "crash-soak: backend={backend} seed={seed} cycle {cycle} (killed after {delay} ms): \
             {} failure(s):\n{}",
            failures.len(),
            failures
                .iter()
                .take(20)
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    drop(demo);

    let mut total = Stats::default();
    for c in &clients {
        total.add(&c.stats);
    }
    let limbo: u64 = clients.iter().map(|c| c.limbo).sum();
    kill_delays.sort_unstable();
    let median_delay = kill_delays[kill_delays.len() / 2];
    println!(
        "crash-soak: backend={backend} seed={seed} cycles={cycles} clients={n_clients} \
         elapsed_s={:.1} kill_delay_ms_median={median_delay} \
         acked: creates={} refreshes={} promotions={} verifies={} listings={} info_edits={} revokes={} \
         unacked_in_flight={} (writes {}) unknown_revocations={limbo}",
        started.elapsed().as_secs_f64(),
        total.creates_acked,
        total.refreshes_acked,
        total.promotions_acked,
        total.verifies_acked,
        total.listings_acked,
        total.info_edits_acked,
        total.revokes_acked,
        total.not_acked,
        total.not_acked_writes,
    );
    println!(
        "crash-soak: backend={backend} checked after restarts: live sessions listed={} \
         revoked handles unlisted={} revoked tokens refused={} holder refreshes ok={} \
         superseded tokens refused as theft={} failures=0",
        total.listed_checked,
        total.revoked_unlisted_checked,
        total.revoked_tokens_checked,
        total.holder_refreshes_checked,
        total.superseded_probed,
    );
    assert!(cycles < 2 || (total.promotions_acked > 0 && total.revokes_acked > 0));
    discard(backend, &db).await;
}

/// Acknowledged state survives SIGKILL at random moments, on every
/// available backend (one after another, so their numbers do not mix).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_state_survives_sigkill() {
    for backend in soak_backends("crash-soak") {
        crash_cycles(backend).await;
    }
}
