//! The change feed (docs/DISTRIBUTED.md, "The change feed").
//!
//! ```text
//! bench-feed [--quick] [--backends sqlite,postgres,mysql]
//! bench-feed --callgrind plain|feed N   # for valgrind; no report
//! ```
//!
//! 1. `get_session` with blacklisting answered from the feed's memory,
//!    against `get_session` without blacklisting and with blacklisting that
//!    asks the database (a SQLite file, and PostgreSQL / MariaDB when their
//!    URLs are set), interleaved in one run. Target: the feed's row within
//!    2x the row without blacklisting.
//! 2. Propagation, per backend: two instances (two pools) on one fresh
//!    database with the default feed settings (250 ms polls, 1 s bound).
//!    Instance A revokes a session; instance B verifies it every
//!    millisecond until it is refused; the time from A's return to B's first
//!    refusal is the propagation delay. Target: p99 within the bound. The
//!    same for a forced key rotation (until B stops accepting a token of the
//!    old key).

use std::hint::black_box;
use std::time::{Duration, Instant};

use http::HeaderMap;
use serde_json::json;
use tessera::{ChangeFeedSettings, Config, Error, SessionManager};
use tessera_bench::{
    compare, fmt_ns, machine_summary, multi_thread_runtime, request_with_cookies, set_cookie_value,
    Latencies, Micro, Opts, Report,
};
use tessera_sqlx::testing::{discard, fresh_url, Backend};

fn feed_settings(answer_blacklisting: bool) -> ChangeFeedSettings {
    ChangeFeedSettings {
        answer_blacklisting,
        ..ChangeFeedSettings::default()
    }
}

async fn manager(url: &str, blacklisting: bool, answer: bool) -> SessionManager {
    manager_with(url, blacklisting, feed_settings(answer)).await
}

async fn manager_with(url: &str, blacklisting: bool, feed: ChangeFeedSettings) -> SessionManager {
    let store = tessera_sqlx::connect(url).await.expect("connect");
    let config = Config::builder()
        .with_blacklisting(blacklisting)
        .with_change_feed(Some(feed))
        .build()
        .expect("config");
    SessionManager::new(config, store).await.expect("manager")
}

/// A browser's request to an API route for a new session on `m`.
async fn login(m: &SessionManager, user: &str) -> HeaderMap {
    let mut resp = HeaderMap::new();
    m.create_new_session(&mut resp, user, json!({"role": "user"}), json!(null))
        .await
        .expect("create");
    let access = set_cookie_value(&resp, "sAccessToken").expect("access cookie");
    let idr = set_cookie_value(&resp, "sIdRefreshToken").expect("id cookie");
    let mut req = request_with_cookies(&[("sAccessToken", &access), ("sIdRefreshToken", &idr)]);
    req.insert("anti-csrf", resp["anti-csrf"].clone());
    req
}

async fn wait_caught_up(m: &SessionManager) {
    let start = Instant::now();
    while !m.change_feed_caught_up() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the feed never caught up"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `--callgrind plain|feed N`: N `get_session` calls without blacklisting
/// or with blacklisting from the feed, on a current-thread runtime whose
/// only other task is the feed's, which cannot run while the loop (which
/// never yields) runs: so the counts are the request path's alone. The feed
/// caught up before the loop, and its bound is wide enough for valgrind's
/// pace. Run it for two N and take the difference (scripts/bench.sh does,
/// as for bench-core).
fn callgrind(op: &str, n: u64) {
    let rt = tessera_bench::current_thread_runtime();
    rt.block_on(async {
        let url = fresh_url(Backend::Sqlite).await;
        let wide = ChangeFeedSettings {
            bound: Duration::from_secs(600),
            ..feed_settings(true)
        };
        let m = match op {
            "plain" => manager(&url, false, false).await,
            "feed" => manager_with(&url, true, wide).await,
            other => panic!("unknown op {other:?}: plain or feed"),
        };
        let req = login(&m, "c").await;
        if op == "feed" {
            wait_caught_up(&m).await;
        }
        for _ in 0..n {
            let mut resp = HeaderMap::new();
            let s = m
                .get_session(black_box(&req), &mut resp, true)
                .await
                .expect("valid session");
            black_box(&s);
        }
        assert!(op == "plain" || m.change_feed_caught_up());
        drop(m);
        discard(Backend::Sqlite, &url).await;
    });
}

fn main() {
    let opts = Opts::from_args();
    if opts.rest.first().map(String::as_str) == Some("--callgrind") {
        let op = opts.rest.get(1).cloned().unwrap_or_default();
        let n = opts
            .rest
            .get(2)
            .and_then(|s| s.parse().ok())
            .expect("--callgrind OP N");
        callgrind(&op, n);
        return;
    }
    let rt = multi_thread_runtime();
    let mut report = Report::new();
    report.heading(3, "Change feed: blacklisting from memory, and propagation");

    // -- 1. the request path -------------------------------------------------
    let mut dirs = Vec::new();
    let (plain, from_feed, db_rows) = rt.block_on(async {
        let url = fresh_url(Backend::Sqlite).await;
        dirs.push((Backend::Sqlite, url.clone()));
        let plain = manager(&url, false, false).await;
        // A wide bound for this row: it measures the memory path, and on a
        // loaded machine a poll that is late by more than the default 1 s
        // would send some iterations to the database (by design) and
        // measure those instead. The propagation part below uses the
        // defaults.
        let wide = ChangeFeedSettings {
            bound: Duration::from_secs(30),
            ..feed_settings(true)
        };
        let from_feed = manager_with(&url, true, wide).await;
        let mut db_rows = vec![("SQLite file".to_owned(), manager(&url, true, false).await)];
        for backend in opts.backends() {
            let label = match backend {
                Backend::Postgres => "PostgreSQL",
                Backend::MySql => "MariaDB",
                _ => continue,
            };
            let url = fresh_url(backend).await;
            dirs.push((backend, url.clone()));
            db_rows.push((label.to_owned(), manager(&url, true, false).await));
        }
        wait_caught_up(&from_feed).await;
        (plain, from_feed, db_rows)
    });
    let requests: Vec<HeaderMap> = rt.block_on(async {
        let mut v = vec![login(&plain, "p").await, login(&from_feed, "f").await];
        for (_, m) in &db_rows {
            v.push(login(m, "d").await);
        }
        v
    });
    let run = |m: &SessionManager, req: &HeaderMap, n: u64| {
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..n {
                let mut resp = HeaderMap::new();
                let s = m
                    .get_session(black_box(req), &mut resp, true)
                    .await
                    .expect("valid session");
                black_box(&s);
            }
            start.elapsed()
        })
    };
    let mut benches = vec![
        Micro::new("get_session, no blacklisting (baseline)", |n| {
            run(&plain, &requests[0], n)
        }),
        Micro::new("get_session, blacklisting from the change feed", |n| {
            run(&from_feed, &requests[1], n)
        }),
    ];
    for (i, (label, m)) in db_rows.iter().enumerate() {
        let req = &requests[2 + i];
        benches.push(Micro::new(
            format!("get_session, blacklisting asks the database ({label})"),
            move |n| run(m, req, n),
        ));
    }
    let stats = compare(&mut benches, opts.sampling());
    // The feed row is only honest if the feed stayed within its bound
    // throughout (else it asked the database and measured that).
    assert!(
        from_feed.change_feed_caught_up(),
        "the feed fell behind during the measurement"
    );
    let base = stats[0].median;
    let rows: Vec<Vec<String>> = benches
        .iter()
        .zip(&stats)
        .map(|(b, s)| {
            vec![
                b.name.clone(),
                fmt_ns(s.median),
                fmt_ns(s.p90),
                format!("{:.2}×", s.median / base),
            ]
        })
        .collect();
    drop(benches);
    report.para(&format!(
        "Machine: {}. One process, a two-worker tokio runtime (the feed's task runs beside \
         the measuring thread), interleaved samples. The feed row's bound is widened to 30 s \
         so that it measures the memory path even if a poll is late on a loaded machine.",
        machine_summary()
    ));
    report.table(&["operation", "median", "p90", "median / baseline"], &rows);
    let ratio = stats[1].median / base;
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };

    // -- 2. propagation --------------------------------------------------------
    let trials = if opts.quick { 3 } else { 40 };
    let rotations = if opts.quick { 1 } else { 8 };
    let bound = ChangeFeedSettings::default().bound;
    let mut prop_rows = Vec::new();
    let mut worst_p99 = 0.0f64;
    let mut backends = vec![Backend::Sqlite];
    backends.extend(
        opts.backends()
            .into_iter()
            .filter(|b| *b != Backend::Sqlite),
    );
    for backend in backends {
        let (mut revoke, mut rotate) = rt.block_on(async {
            let url = fresh_url(backend).await;
            dirs.push((backend, url.clone()));
            let a = manager(&url, true, true).await;
            let b = manager(&url, true, true).await;
            wait_caught_up(&b).await;
            let mut revoke = Latencies::default();
            for i in 0..trials {
                let req = login(&a, &format!("u{i}")).await;
                let s = b
                    .get_session(&req, &mut HeaderMap::new(), true)
                    .await
                    .expect("live");
                let handle = s.handle().to_owned();
                assert!(a.revoke_session(&handle).await.expect("revoke"));
                let at = Instant::now();
                loop {
                    match b.get_session(&req, &mut HeaderMap::new(), true).await {
                        Ok(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                        Err(Error::Unauthorized { .. }) => break,
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
                revoke.0.push(at.elapsed().as_nanos() as u64);
                // Start the next trial at a different point of B's polls.
                tokio::time::sleep(Duration::from_millis(37)).await;
            }
            let mut rotate = Latencies::default();
            for i in 0..rotations {
                let req = login(&b, &format!("r{i}")).await;
                a.rotate_signing_key().await.expect("rotate");
                let at = Instant::now();
                loop {
                    match b.get_session(&req, &mut HeaderMap::new(), true).await {
                        Ok(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                        Err(Error::TryRefreshToken { .. }) => break,
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
                rotate.0.push(at.elapsed().as_nanos() as u64);
            }
            (revoke, rotate)
        });
        let (p50, p99, max) = revoke.p50_p99_max();
        let (k50, _, kmax) = rotate.p50_p99_max();
        worst_p99 = worst_p99.max(p99);
        let how = if backend == Backend::Postgres {
            "LISTEN/NOTIFY + polls"
        } else {
            "polls"
        };
        prop_rows.push(vec![
            format!("{backend} ({how})"),
            format!("{}", revoke.0.len()),
            fmt_ns(p50),
            fmt_ns(p99),
            fmt_ns(max),
            format!("{} / {}", fmt_ns(k50), fmt_ns(kmax)),
        ]);
    }
    report.para(&format!(
        "Propagation: instance A revokes, instance B (its own pool) verifies every \
         millisecond until refused; default feed settings (250 ms polls, {} bound), \
         {trials} revocations and {rotations} forced rotations per backend.",
        fmt_ns(bound.as_nanos() as f64)
    ));
    report.table(
        &[
            "backend",
            "revocations",
            "p50",
            "p99",
            "max",
            "rotation p50 / max",
        ],
        &prop_rows,
    );
    report.table(
        &["target", "measured", "verdict"],
        &[
            vec![
                "blacklisting from the feed ≤ 2 × no blacklisting (median)".into(),
                format!("{ratio:.2}×"),
                verdict(ratio <= 2.0).into(),
            ],
            vec![
                format!(
                    "revocation propagation p99 ≤ {} on every backend",
                    fmt_ns(bound.as_nanos() as f64)
                ),
                format!("worst p99 {}", fmt_ns(worst_p99)),
                verdict(worst_p99 <= bound.as_nanos() as f64).into(),
            ],
        ],
    );
    report.para(&format!(
        "<!-- feed-numbers from_feed_ratio={ratio:.3} worst_p99_ns={worst_p99:.0} -->"
    ));
    drop((plain, from_feed, db_rows));
    rt.block_on(async {
        for (backend, url) in dirs {
            discard(backend, &url).await;
        }
    });
    report.print();
}
