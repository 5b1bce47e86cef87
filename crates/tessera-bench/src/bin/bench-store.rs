//! Store throughput: `create_new_session`, `refresh_session` and
//! `revoke_session` on SQLite, PostgreSQL and MariaDB, with 1, 2, 8 and 32
//! concurrent tasks.
//!
//! ```text
//! bench-store [--quick] [--backends sqlite,postgres,mysql] [--secs S] [--rounds R]
//! ```
//!
//! Each (backend, concurrency) cell gets a fresh database
//! (`tessera_sqlx::testing::fresh_url`) and a pool with as many connections
//! as tasks. A round is three phases, each with `c` tasks on a two-worker
//! Tokio runtime:
//!
//! 1. **create**: every task calls `create_new_session` in a loop for `S`
//!    seconds (one durable `INSERT` each);
//! 2. **refresh**: every task takes one of those sessions and refreshes it in
//!    a loop for `S` seconds, always presenting the refresh token the previous
//!    call returned. That is the rotation a client performs, and each call
//!    both reads the row and promotes the presented token (one `SELECT` and
//!    one durable compare-and-set `UPDATE`);
//! 3. **revoke**: the tasks share out every handle created in phase 1 and
//!    call `revoke_session(handle)` (one durable `DELETE` each) until none is
//!    left.
//!
//! Throughput is operations completed divided by the phase's wall time; we
//! report the median round and the spread, and latency percentiles over all
//! operations of all rounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderMap;
use serde_json::json;
use tessera::{Config, SessionManager, UserId};
use tessera_bench::{
    durability_note, fmt_ns, fmt_rate, machine_summary, multi_thread_runtime, request_with_cookies,
    set_cookie_value, Latencies, Opts, Report,
};
use tessera_sqlx::testing::{discard, fresh_url, Backend};
use tessera_sqlx::StoreOptions;

const CONCURRENCY: [usize; 4] = [1, 2, 8, 32];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Refresh,
    Revoke,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Create => "create_new_session",
            Op::Refresh => "refresh_session",
            Op::Revoke => "revoke_session",
        }
    }
}

/// A session as a client holds it.
#[derive(Clone)]
struct ClientSession {
    handle: String,
    refresh: String,
    id_refresh: String,
}

/// Results of one phase of one round.
struct Phase {
    ops: u64,
    elapsed: Duration,
    latencies: Latencies,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

async fn create_phase(
    manager: &SessionManager,
    tasks: usize,
    secs: Duration,
    round: usize,
) -> (Phase, Vec<ClientSession>) {
    let start = Instant::now();
    let deadline = start + secs;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let m = manager.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            let mut made = Vec::new();
            let mut i: i64 = 0;
            while Instant::now() < deadline {
                // Distinct users, as at a login burst.
                let user = (round as i64) * 1_000_000_000 + (t as i64) * 10_000_000 + i;
                i += 1;
                let mut response = HeaderMap::new();
                let t0 = Instant::now();
                let session = m
                    .create_new_session(
                        &mut response,
                        UserId::from(user),
                        json!({"role": "user"}),
                        json!({"cart": []}),
                    )
                    .await
                    .expect("create_new_session");
                lat.0.push(t0.elapsed().as_nanos() as u64);
                made.push(ClientSession {
                    handle: session.handle().to_owned(),
                    refresh: set_cookie_value(&response, "sRefreshToken").expect("refresh"),
                    id_refresh: set_cookie_value(&response, "sIdRefreshToken").expect("id refresh"),
                });
            }
            (lat, made)
        }));
    }
    let mut latencies = Latencies::default();
    let mut sessions = Vec::new();
    for h in handles {
        let (lat, made) = h.await.expect("task");
        latencies.extend(lat);
        sessions.extend(made);
    }
    let elapsed = start.elapsed();
    (
        Phase {
            ops: sessions.len() as u64,
            elapsed,
            latencies,
        },
        sessions,
    )
}

async fn refresh_phase(
    manager: &SessionManager,
    sessions: &[ClientSession],
    tasks: usize,
    secs: Duration,
) -> Phase {
    let start = Instant::now();
    let deadline = start + secs;
    let mut handles = Vec::new();
    for s in sessions.iter().take(tasks).cloned() {
        let m = manager.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            let mut refresh = s.refresh;
            let id_refresh = s.id_refresh;
            while Instant::now() < deadline {
                let request = request_with_cookies(&[
                    ("sRefreshToken", &refresh),
                    ("sIdRefreshToken", &id_refresh),
                ]);
                let mut response = HeaderMap::new();
                let t0 = Instant::now();
                m.refresh_session(&request, &mut response)
                    .await
                    .expect("refresh_session");
                lat.0.push(t0.elapsed().as_nanos() as u64);
                refresh = set_cookie_value(&response, "sRefreshToken").expect("child token");
            }
            lat
        }));
    }
    let mut latencies = Latencies::default();
    for h in handles {
        latencies.extend(h.await.expect("task"));
    }
    Phase {
        ops: latencies.0.len() as u64,
        elapsed: start.elapsed(),
        latencies,
    }
}

async fn revoke_phase(
    manager: &SessionManager,
    sessions: Vec<ClientSession>,
    tasks: usize,
) -> Phase {
    let queue = Arc::new(std::sync::Mutex::new(sessions));
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let m = manager.clone();
        let q = queue.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            loop {
                let next = q.lock().expect("queue").pop();
                let Some(s) = next else { break };
                let t0 = Instant::now();
                let removed = m.revoke_session(&s.handle).await.expect("revoke_session");
                lat.0.push(t0.elapsed().as_nanos() as u64);
                assert!(removed, "each handle is revoked once");
            }
            lat
        }));
    }
    let mut latencies = Latencies::default();
    for h in handles {
        latencies.extend(h.await.expect("task"));
    }
    Phase {
        ops: latencies.0.len() as u64,
        elapsed: start.elapsed(),
        latencies,
    }
}

/// One row of the report: an operation at one concurrency.
struct Cell {
    backend: Backend,
    tasks: usize,
    op: Op,
    rates: Vec<f64>,
    latencies: Latencies,
}

fn main() {
    let opts = Opts::from_args();
    let flag = |name: &str| {
        opts.rest
            .iter()
            .position(|a| a == name)
            .and_then(|i| opts.rest.get(i + 1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let secs =
        Duration::from_secs_f64(flag("--secs").unwrap_or(if opts.quick { 0.1 } else { 2.0 }));
    let rounds = flag("--rounds").unwrap_or(if opts.quick { 1.0 } else { 3.0 }) as usize;
    let rt = multi_thread_runtime();
    let mut cells: Vec<Cell> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    // TESSERA_BENCH_TASKS=1,8 runs only those concurrencies
    // (scripts/bench-baseline.sh).
    let concurrency: Vec<usize> = match std::env::var("TESSERA_BENCH_TASKS") {
        Ok(list) => list
            .split(',')
            .map(|t| t.trim().parse().expect("TESSERA_BENCH_TASKS: numbers"))
            .collect(),
        Err(_) => CONCURRENCY.to_vec(),
    };
    for backend in opts.backends() {
        for &tasks in &concurrency {
            eprintln!("bench-store: {backend}, {tasks} task(s)");
            let url = rt.block_on(fresh_url(backend));
            let result = rt.block_on(async {
                let store = tessera_sqlx::connect_with(
                    &url,
                    StoreOptions::new().max_connections(tasks.max(2) as u32),
                )
                .await
                .expect("connect");
                if tasks == concurrency[0] {
                    notes.push(durability_note(&store).await);
                }
                let manager =
                    SessionManager::new(Config::builder().build().expect("config"), store.clone())
                        .await
                        .expect("manager");
                let mut per_op: Vec<(Op, Vec<f64>, Latencies)> =
                    [Op::Create, Op::Refresh, Op::Revoke]
                        .into_iter()
                        .map(|op| (op, Vec::new(), Latencies::default()))
                        .collect();
                for round in 0..rounds {
                    let (created, sessions) = create_phase(&manager, tasks, secs, round).await;
                    let refreshed = refresh_phase(&manager, &sessions, tasks, secs).await;
                    let revoked = revoke_phase(&manager, sessions, tasks).await;
                    for (i, phase) in [created, refreshed, revoked].into_iter().enumerate() {
                        per_op[i].1.push(phase.rate());
                        per_op[i].2.extend(phase.latencies);
                    }
                }
                store.close().await;
                per_op
            });
            rt.block_on(discard(backend, &url));
            for (op, rates, latencies) in result {
                cells.push(Cell {
                    backend,
                    tasks,
                    op,
                    rates,
                    latencies,
                });
            }
        }
    }

    let mut report = Report::new();
    report.heading(3, "Store throughput: create, refresh, revoke");
    report.para(&format!(
        "Machine: {}. {} round(s) per cell; create and refresh phases last {:.1} s each, \
         the revoke phase removes every session the create phase made. Pool size = number \
         of tasks (at least 2). Durability as configured on each server:",
        machine_summary(),
        rounds,
        secs.as_secs_f64()
    ));
    for n in &notes {
        report.para(&format!("- {n}"));
    }
    for backend in opts.backends() {
        let rows: Vec<Vec<String>> = cells
            .iter_mut()
            .filter(|c| c.backend == backend)
            .map(|c| {
                let s = tessera_bench::summarize(c.rates.clone());
                let (p50, p99, _) = c.latencies.p50_p99_max();
                vec![
                    c.op.name().to_owned(),
                    c.tasks.to_string(),
                    fmt_rate(s.median),
                    format!(
                        "{}–{}",
                        fmt_rate(s.min),
                        fmt_rate(c.rates.iter().cloned().fold(0.0, f64::max))
                    ),
                    fmt_ns(p50),
                    fmt_ns(p99),
                ]
            })
            .collect();
        report.heading(4, &backend.to_string());
        report.table(
            &[
                "operation",
                "tasks",
                "ops/s (median round)",
                "range",
                "p50 latency",
                "p99 latency",
            ],
            &rows,
        );
    }
    let pg32 = |op: Op| {
        cells
            .iter()
            .find(|c| c.backend == Backend::Postgres && c.tasks == 32 && c.op == op)
            .map(|c| tessera_bench::summarize(c.rates.clone()).median)
    };
    if let (Some(create), Some(refresh)) = (pg32(Op::Create), pg32(Op::Refresh)) {
        let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
        report.table(
            &[
                "target (PostgreSQL, 32 tasks, durable commits)",
                "measured",
                "verdict",
            ],
            &[
                vec![
                    "≥ 5,000 creates/s".into(),
                    format!("{}/s", fmt_rate(create)),
                    verdict(create >= 5_000.0).into(),
                ],
                vec![
                    "≥ 3,000 refreshes/s".into(),
                    format!("{}/s", fmt_rate(refresh)),
                    verdict(refresh >= 3_000.0).into(),
                ],
            ],
        );
    }
    report.print();
}
