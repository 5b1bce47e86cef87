//! Load test: 64 concurrent clients use the real demo binary over HTTP,
//! verifying and refreshing, each one as the front-end SDK behaves. No
//! request may get a 5xx, and no client may ever be told `unauthorized` or
//! `token_theft_detected`: each acts in order, so only `try_refresh_token`
//! (an expired access token) is a legitimate 401, and the refresh that
//! follows it must succeed.
//!
//! Each client signs up its own user, then loops until the time is up:
//! mostly `GET /api/me`, sometimes `GET /api/sessions` or `PUT /api/me/info`
//! (anti-CSRF header), and now and then a refresh of its own accord. Access
//! tokens live 2 s, so every client also meets real expiry: on the
//! session-expired status with `try_refresh_token` it calls `POST /refresh/`
//! and retries the request, as `supertokens-website` does. Each client
//! keeps one HTTP connection alive (a browser would) and sends one request
//! at a time, so the concurrency is between sessions; races between two
//! requests of one session are covered by the stores' conformance suite.
//!
//! `TESSERA_SOAK_LOAD_SECS` sets the duration (default 5 s, what CI runs;
//! the soak run uses 60), `TESSERA_SOAK_BACKENDS` a comma-separated subset of
//! `sqlite,postgres,mysql` (default: every available one, one after another
//! so that their numbers do not mix). The numbers are printed on lines
//! starting with `load-soak:`.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::soak_backends;
use common::{env_number, Browser, Demo, NotAcknowledged, Reply, Rng};
use serde_json::json;
use tessera_sqlx::testing::{discard, fresh_url, Backend};

const CLIENTS: usize = 64;
const ACCESS_TOKEN_SECS: &str = "2";

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    by_status: BTreeMap<u16, u64>,
    try_refresh: u64,
    refreshes_after_expiry: u64,
    refreshes_own_accord: u64,
    expired_again: u64,
    failures: Vec<String>,
    failure_count: u64,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.latencies_us.extend(o.latencies_us);
        for (k, v) in o.by_status {
            *self.by_status.entry(k).or_default() += v;
        }
        self.try_refresh += o.try_refresh;
        self.refreshes_after_expiry += o.refreshes_after_expiry;
        self.refreshes_own_accord += o.refreshes_own_accord;
        self.expired_again += o.expired_again;
        self.failure_count += o.failure_count;
        self.failures.extend(o.failures.into_iter().take(5));
    }

    fn fail(&mut self, msg: String) {
        self.failure_count += 1;
        if self.failures.len() < 5 {
            self.failures.push(msg);
        }
    }
}

struct LoadClient {
    http: reqwest::Client,
    base: String,
    jar: Browser,
    tally: Tally,
}

impl LoadClient {
    /// One HTTP request, timed and counted.
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Reply, NotAcknowledged> {
        let t = Instant::now();
        let r = self
            .jar
            .try_send(&self.http, &self.base, method, path, body)
            .await;
        self.tally.latencies_us.push(t.elapsed().as_micros() as u64);
        if let Ok(reply) = &r {
            *self.tally.by_status.entry(reply.status).or_default() += 1;
            if reply.status >= 500 {
                self.tally
                    .fail(format!("{method} {path}: {} {}", reply.status, reply.body));
            }
        }
        r
    }

    /// `POST /refresh/`; `true` when it succeeded.
    async fn refresh(&mut self, after_expiry: bool) -> bool {
        match self.request("POST", "/refresh/", None).await {
            Ok(r) if r.status == 200 => {
                if after_expiry {
                    self.tally.refreshes_after_expiry += 1;
                } else {
                    self.tally.refreshes_own_accord += 1;
                }
                return true;
            }
            Ok(r) if r.status >= 500 => {}
            Ok(r) => self.tally.fail(format!(
                "refresh: {} {} (a client in order)",
                r.status, r.body
            )),
            Err(e) => self.tally.fail(format!("refresh: {}", e.0)),
        }
        false
    }

    /// A session route called as the SDK does: on `try_refresh_token`,
    /// refresh and retry. `supertokens-website` retries for as long as the
    /// refresh succeeds; a retry can meet an expired token again only when
    /// the round trip took longer than the token's 2 s life, so more than
    /// three refreshes for one call is a failure.
    async fn call(&mut self, method: &str, path: &str, body: Option<serde_json::Value>) {
        for attempt in 1..=4 {
            match self.request(method, path, body.clone()).await {
                Ok(r) if (200..300).contains(&r.status) => return,
                Ok(r) if r.status >= 500 => return,
                Ok(r)
                    if attempt < 4 && r.status == 401 && r.body["error"] == "try_refresh_token" =>
                {
                    self.tally.try_refresh += 1;
                    if attempt > 1 {
                        self.tally.expired_again += 1;
                    }
                    if !self.refresh(true).await {
                        return;
                    }
                }
                Ok(r) => {
                    self.tally.fail(format!(
                        "{method} {path} (attempt {attempt}): {} {}",
                        r.status, r.body
                    ));
                    return;
                }
                Err(e) => {
                    self.tally.fail(e.0);
                    return;
                }
            }
        }
    }

    async fn run(mut self, mut rng: Rng, until: Instant) -> Tally {
        let mut n = 0u64;
        while Instant::now() < until {
            n += 1;
            let r = rng.unit();
            if r < 0.85 {
                self.call("GET", "/api/me", None).await;
            } else if r < 0.90 {
                self.call("GET", "/api/sessions", None).await;
            } else if r < 0.95 {
                self.call("PUT", "/api/me/info", Some(json!({"info": {"n": n}})))
                    .await;
            } else {
                self.refresh(false).await;
            }
        }
        self.tally
    }
}

fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 * p).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    sorted_us[i] as f64 / 1000.0
}

async fn load(backend: Backend) {
    let secs: f64 = env_number("TESSERA_SOAK_LOAD_SECS", 5.0);
    let seed = Rng::seed_from_env("TESSERA_SOAK_SEED");
    let mut rng = Rng::new(seed);
    let db = fresh_url(backend).await;
    let demo = Demo::start_with_env(&db, &[], ACCESS_TOKEN_SECS, &[("RUST_LOG", "error")]);

    // Sign up every client (not measured).
    let mut signups = Vec::new();
    for k in 0..CLIENTS {
        let base = demo.base.clone();
        signups.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap();
            let mut jar = Browser::default();
            // 64 sign-ups at once are more than the password-hashing queue
            // holds: a busy server answers 503 and says when to come back.
            let mut r;
            let mut tries = 0;
            loop {
                r = jar
                    .try_send(
                        &http,
                        &base,
                        "POST",
                        "/api/signup",
                        Some(json!({"username": format!("load{k}"), "password": "load test password"})),
                    )
                    .await
                    .expect("sign-up");
                tries += 1;
                if r.status != 503 || tries == 100 {
                    break;
                }
                let secs = r.body["retryAfterSecs"].as_u64().expect("Retry-After");
                tokio::time::sleep(Duration::from_secs(secs)).await;
            }
            assert_eq!(r.status, 200, "sign-up: {}", r.body);
            LoadClient {
                http,
                base,
                jar,
                tally: Tally::default(),
            }
        }));
    }
    let mut clients = Vec::new();
    for s in signups {
        clients.push(s.await.expect("sign-up task"));
    }

    let started = Instant::now();
    let until = started + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in clients {
        tasks.push(tokio::spawn(c.run(Rng::new(rng.next_u64()), until)));
    }
    let mut total = Tally::default();
    for t in tasks {
        total.merge(t.await.expect("client task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(demo);

    let mut lat = std::mem::take(&mut total.latencies_us);
    lat.sort_unstable();
    let requests = lat.len();
    let statuses: Vec<String> = total
        .by_status
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect();
    let five_xx: u64 = total
        .by_status
        .iter()
        .filter(|(k, _)| **k >= 500)
        .map(|(_, v)| v)
        .sum();
    println!(
        "load-soak: backend={backend} clients={CLIENTS} secs={elapsed:.1} \
         access_token_secs={ACCESS_TOKEN_SECS} requests={requests} req_per_s={:.0} \
         p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2} by_status={{{}}} \
         try_refresh={} refreshes_after_expiry={} refreshes_own_accord={} expired_again_before_retry={} \
         status_5xx={five_xx} failures={} seed={seed}",
        requests as f64 / elapsed,
        percentile_ms(&lat, 0.50),
        percentile_ms(&lat, 0.90),
        percentile_ms(&lat, 0.99),
        lat.last().copied().unwrap_or(0) as f64 / 1000.0,
        statuses.join(","),
        total.try_refresh,
        total.refreshes_after_expiry,
        total.refreshes_own_accord,
        total.expired_again,
        total.failure_count,
    );
    assert!(
        total.failure_count == 0,
        "load-soak: backend={backend}: {} failure(s), e.g.:\n{}",
        total.failure_count,
        total.failures.join("\n")
    );
    assert!(
        total.refreshes_after_expiry > 0 || secs < 3.0,
        "access tokens expired and were refreshed during the run"
    );
    discard(backend, &db).await;
}

/// 64 concurrent clients, verifying and refreshing, on every available
/// backend in turn: no 5xx, no unexpected 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_clients_verify_and_refresh() {
    for backend in soak_backends("load-soak") {
        load(backend).await;
    }
}
