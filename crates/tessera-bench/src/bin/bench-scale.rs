//! Scale: a table of 1,000,000 sessions.
//!
//! ```text
//! bench-scale [--quick] [--backends postgres,mysql,sqlite] [--rows N] [--serve-secs S]
//! ```
//!
//! Per backend, in a fresh database:
//!
//! 1. **Load** `N` rows (default 1,000,000) with one bulk SQL statement
//!    (`generate_series` on PostgreSQL, the `seq_1_to_N` sequence table on
//!    MariaDB, a recursive CTE on SQLite). User 42 owns 10,000 live sessions;
//!    the other rows belong to ~200,000 users (about 5 each). Exactly half of
//!    all rows (500,000), spread evenly through the table, are expired.
//! 2. **Query plans** of every statement the store runs on this table, from
//!    the database itself (`EXPLAIN`; on PostgreSQL `EXPLAIN ANALYZE` inside
//!    a rolled-back transaction, so the plans show real row counts).
//! 3. **Per-user operations**: `get_all_session_handles_for_user(42)`
//!    (10,000 handles) repeated, and `revoke_all_sessions_for_user(42)`
//!    (10,000 rows), re-inserted between rounds.
//! 4. **Cleanup while serving**: 4 tasks call `get_session` once a
//!    millisecond each and 4 tasks refresh in a closed loop; first for `S`
//!    seconds alone (the baseline), then while `remove_expired_sessions`
//!    deletes the 500,000 expired rows in batches of 5,000. Latency and
//!    throughput of both phases side by side.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use serde_json::json;
use sqlx::Row;
use tessera::{Config, SessionManager, UserId};
use tessera_bench::{
    fmt_dur, fmt_ns, fmt_rate, machine_summary, multi_thread_runtime, request_with_cookies,
    set_cookie_value, summarize, Latencies, Opts, Report,
};
use tessera_sqlx::testing::{discard, fresh_url, Backend};
use tessera_sqlx::{SqlStore, StoreOptions};

const HEAVY_USER: i64 = 42;
const CLEANUP_BATCH: u32 = 5_000;

struct Sizes {
    rows: i64,
    heavy: i64,
    expired: i64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// The bulk-load statement for `backend`: rows `from..=to` of the layout in
/// the module docs. `{now}` etc. are substituted as literals.
fn load_sql(backend: Backend, s: &Sizes, from: i64, to: i64, now: i64) -> String {
    let (n, h, e) = (s.rows, s.heavy, s.expired);
    let live = now + 100 * 86_400_000;
    // Row i is expired iff i > heavy and the running count of expired rows,
    // floor((i - heavy) * e / (n - heavy)), steps up at i: exactly e rows,
    // spread evenly through the table.
    let others = (n - h).max(1);
    match backend {
        Backend::Postgres => format!(
            "INSERT INTO tessera_sessions (session_handle, user_id, refresh_token_hash_2, \
             session_info, jwt_payload, created_at, expires_at) \
             SELECT md5(i::text)::uuid::text, \
                    CASE WHEN i <= {h} THEN '{HEAVY_USER}' ELSE ((i % 200000) + 1000)::text END, \
                    md5(i::text) || md5((i + 1)::text), '{{}}', '{{\"role\":\"user\"}}', \
                    {now} - ({n} - i) * 10, \
                    CASE WHEN i > {h} AND ((i - {h}) * {e}) / {others} > ((i - {h} - 1) * {e}) / {others} \
                         THEN {now} - 1000 - i ELSE {live} + i END \
             FROM generate_series({from}::bigint, {to}::bigint) AS i"
        ),
        Backend::MySql | Backend::Galera => format!(
            "INSERT INTO tessera_sessions (session_handle, user_id, refresh_token_hash_2, \
             session_info, jwt_payload, created_at, expires_at) \
             SELECT CONCAT(SUBSTR(m, 1, 8), '-', SUBSTR(m, 9, 4), '-', SUBSTR(m, 13, 4), '-', \
                           SUBSTR(m, 17, 4), '-', SUBSTR(m, 21, 12)), \
                    CASE WHEN i <= {h} THEN '{HEAVY_USER}' ELSE CAST((i % 200000) + 1000 AS CHAR) END, \
                    CONCAT(m, MD5(i + 1)), '{{}}', '{{\"role\":\"user\"}}', \
                    {now} - ({n} - i) * 10, \
                    CASE WHEN i > {h} AND ((i - {h}) * {e}) DIV {others} > ((i - {h} - 1) * {e}) DIV {others} \
                         THEN {now} - 1000 - i ELSE {live} + i END \
             FROM (SELECT seq AS i, MD5(seq) AS m FROM seq_{from}_to_{to}) AS g"
        ),
        Backend::Sqlite => format!(
            "WITH RECURSIVE g(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM g WHERE i < {to}) \
             INSERT INTO tessera_sessions (session_handle, user_id, refresh_token_hash_2, \
             session_info, jwt_payload, created_at, expires_at) \
             SELECT printf('%08x-0000-4000-8000-%012x', i, i * 2654435761 % 281474976710656), \
                    CASE WHEN i <= {h} THEN '{HEAVY_USER}' ELSE CAST((i % 200000) + 1000 AS TEXT) END, \
                    lower(hex(randomblob(32))), '{{}}', '{{\"role\":\"user\"}}', \
                    {now} - ({n} - i) * 10, \
                    CASE WHEN i > {h} AND ((i - {h}) * {e}) / {others} > ((i - {h} - 1) * {e}) / {others} \
                         THEN {now} - 1000 - i ELSE {live} + i END \
             FROM g"
        ),
    }
}

async fn exec(store: &SqlStore, sql: &str) {
    let r = match store {
        SqlStore::Sqlite(s) => sqlx::query(sql).execute(s.pool()).await.map(|_| ()),
        SqlStore::Postgres(s) => sqlx::query(sql).execute(s.pool()).await.map(|_| ()),
        SqlStore::MySql(s) => sqlx::query(sql).execute(s.pool()).await.map(|_| ()),
        #[allow(unreachable_patterns)]
        _ => unreachable!(),
    };
    r.unwrap_or_else(|e| panic!("{e}: {sql}"));
}

async fn count_rows(store: &SqlStore, where_clause: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM tessera_sessions WHERE {where_clause}");
    let r: Result<i64, sqlx::Error> = match store {
        SqlStore::Sqlite(s) => sqlx::query_scalar(&sql).fetch_one(s.pool()).await,
        SqlStore::Postgres(s) => sqlx::query_scalar(&sql).fetch_one(s.pool()).await,
        SqlStore::MySql(s) => sqlx::query_scalar(&sql).fetch_one(s.pool()).await,
        #[allow(unreachable_patterns)]
        _ => unreachable!(),
    };
    r.expect("count")
}

/// Loads rows in chunks (one statement each) so that no single transaction
/// grows huge on MariaDB/SQLite; PostgreSQL takes one statement.
async fn load(store: &SqlStore, backend: Backend, s: &Sizes, now: i64) -> Duration {
    let chunk = match backend {
        Backend::Postgres => s.rows,
        _ => 100_000,
    };
    let start = Instant::now();
    let mut from = 1;
    while from <= s.rows {
        let to = (from + chunk - 1).min(s.rows);
        exec(store, &load_sql(backend, s, from, to, now)).await;
        from = to + 1;
    }
    let analyze = match backend {
        Backend::Postgres => "ANALYZE tessera_sessions",
        Backend::MySql | Backend::Galera => "ANALYZE TABLE tessera_sessions",
        Backend::Sqlite => "ANALYZE",
    };
    exec(store, analyze).await;
    start.elapsed()
}

/// The statements the store runs on `tessera_sessions` (the same SQL as in
/// tessera-sqlx, with literals in place of parameters), for EXPLAIN.
fn explained_statements(backend: Backend, handle: &str, now: i64) -> Vec<(&'static str, String)> {
    let uid = format!("'{HEAVY_USER}'");
    let h = format!("'{handle}'");
    let hash = format!("'{}'", "0".repeat(64));
    match backend {
        Backend::Postgres => vec![
            ("load_session (refresh)", format!("SELECT session_handle, user_id, refresh_token_hash_2, jwt_payload, created_at, expires_at FROM tessera_sessions WHERE session_handle = {h}")),
            ("compare_and_set_refresh_hash (promotion)", format!("UPDATE tessera_sessions SET refresh_token_hash_2 = {hash}, expires_at = {now} WHERE session_handle = {h} AND refresh_token_hash_2 = {hash} AND expires_at > {now}")),
            ("session_handles_for_user", format!("SELECT session_handle FROM tessera_sessions WHERE user_id = {uid} ORDER BY created_at, session_handle")),
            ("delete_sessions_for_user", format!("DELETE FROM tessera_sessions WHERE user_id = {uid}")),
            ("delete_expired_sessions (one batch)", format!("DELETE FROM tessera_sessions WHERE session_handle = ANY(ARRAY(SELECT session_handle FROM tessera_sessions WHERE expires_at <= {now} ORDER BY expires_at LIMIT {CLEANUP_BATCH} FOR UPDATE SKIP LOCKED))")),
            ("count_expired_sessions", format!("SELECT COUNT(*) FROM tessera_sessions WHERE expires_at <= {now}")),
        ],
        Backend::MySql | Backend::Galera => vec![
            ("load_session (refresh)", format!("SELECT session_handle, user_id, refresh_token_hash_2, jwt_payload, created_at, expires_at FROM tessera_sessions WHERE session_handle = {h}")),
            ("compare_and_set_refresh_hash (promotion)", format!("UPDATE tessera_sessions SET refresh_token_hash_2 = {hash}, expires_at = {now} WHERE session_handle = {h} AND refresh_token_hash_2 = {hash} AND expires_at > {now}")),
            ("session_handles_for_user", format!("SELECT session_handle FROM tessera_sessions WHERE user_id = {uid} ORDER BY created_at, session_handle")),
            ("delete_sessions_for_user", format!("DELETE FROM tessera_sessions WHERE user_id = {uid}")),
            ("delete_expired_sessions (one batch)", format!("DELETE FROM tessera_sessions WHERE expires_at <= {now} ORDER BY expires_at LIMIT {CLEANUP_BATCH}")),
            ("count_expired_sessions", format!("SELECT COUNT(*) FROM tessera_sessions WHERE expires_at <= {now}")),
        ],
        Backend::Sqlite => vec![
            ("load_session (refresh)", format!("SELECT session_handle, user_id, refresh_token_hash_2, jwt_payload, created_at, expires_at FROM tessera_sessions WHERE session_handle = {h}")),
            ("compare_and_set_refresh_hash (promotion)", format!("UPDATE tessera_sessions SET refresh_token_hash_2 = {hash}, expires_at = {now} WHERE session_handle = {h} AND refresh_token_hash_2 = {hash} AND expires_at > {now}")),
            ("session_handles_for_user", format!("SELECT session_handle FROM tessera_sessions WHERE user_id = {uid} ORDER BY created_at, session_handle")),
            ("delete_sessions_for_user", format!("DELETE FROM tessera_sessions WHERE user_id = {uid}")),
            ("delete_expired_sessions (one batch)", format!("DELETE FROM tessera_sessions WHERE rowid IN (SELECT rowid FROM tessera_sessions WHERE expires_at <= {now} ORDER BY expires_at LIMIT {CLEANUP_BATCH})")),
            ("count_expired_sessions", format!("SELECT COUNT(*) FROM tessera_sessions WHERE expires_at <= {now}")),
        ],
    }
}

/// The database's plan for `sql`, as text.
async fn explain(store: &SqlStore, sql: &str) -> String {
    match store {
        SqlStore::Postgres(s) => {
            // EXPLAIN ANALYZE runs the statement: do it in a transaction that
            // is rolled back, so the table is left as it was.
            let mut tx = s.pool().begin().await.expect("begin");
            let rows = sqlx::query(&format!("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}"))
                .fetch_all(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("{e}: {sql}"));
            tx.rollback().await.expect("rollback");
            rows.iter()
                .map(|r| r.get::<String, _>(0))
                .collect::<Vec<_>>()
                .join("\n")
        }
        SqlStore::MySql(s) => {
            let rows = sqlx::query(&format!("EXPLAIN {sql}"))
                .fetch_all(s.pool())
                .await
                .unwrap_or_else(|e| panic!("{e}: {sql}"));
            let col = |r: &sqlx::mysql::MySqlRow, name: &str| -> String {
                r.try_get::<Option<String>, _>(name)
                    .ok()
                    .flatten()
                    .or_else(|| {
                        r.try_get::<Option<Vec<u8>>, _>(name)
                            .ok()
                            .flatten()
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                    })
                    .or_else(|| {
                        r.try_get::<Option<i64>, _>(name)
                            .ok()
                            .flatten()
                            .map(|v| v.to_string())
                    })
                    .or_else(|| {
                        r.try_get::<Option<u64>, _>(name)
                            .ok()
                            .flatten()
                            .map(|v| v.to_string())
                    })
                    .unwrap_or_else(|| "NULL".into())
            };
            let mut out =
                String::from("select_type | table | type | possible_keys | key | rows | Extra");
            for r in &rows {
                out.push_str(&format!(
                    "\n{} | {} | {} | {} | {} | {} | {}",
                    col(r, "select_type"),
                    col(r, "table"),
                    col(r, "type"),
                    col(r, "possible_keys"),
                    col(r, "key"),
                    col(r, "rows"),
                    col(r, "Extra")
                ));
            }
            out
        }
        SqlStore::Sqlite(s) => {
            let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                .fetch_all(s.pool())
                .await
                .unwrap_or_else(|e| panic!("{e}: {sql}"));
            rows.iter()
                .map(|r| r.get::<String, _>("detail"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        #[allow(unreachable_patterns)]
        _ => unreachable!(),
    }
}

/// Serving load: get_session paced once a millisecond per task, refresh in
/// a closed loop, until `stop` is set.
struct Served {
    get: Latencies,
    refresh: Latencies,
    elapsed: Duration,
}

struct Client {
    access_request: HeaderMap,
    refresh: String,
    id_refresh: String,
}

async fn login(manager: &SessionManager, user: i64) -> Client {
    let mut response = HeaderMap::new();
    manager
        .create_new_session(
            &mut response,
            UserId::from(user),
            json!({"role": "user"}),
            json!({}),
        )
        .await
        .expect("create");
    let access = set_cookie_value(&response, "sAccessToken").expect("access");
    let id_refresh = set_cookie_value(&response, "sIdRefreshToken").expect("id refresh");
    let mut access_request =
        request_with_cookies(&[("sAccessToken", &access), ("sIdRefreshToken", &id_refresh)]);
    access_request.insert("anti-csrf", response["anti-csrf"].clone());
    Client {
        access_request,
        refresh: set_cookie_value(&response, "sRefreshToken").expect("refresh"),
        id_refresh,
    }
}

/// Refresh tasks hand back the newest refresh token of their client, so a
/// later phase continues the chain instead of replaying a superseded token.
async fn serve(manager: &SessionManager, clients: &mut [Client], stop: Arc<AtomicBool>) -> Served {
    let start = Instant::now();
    let mut gets = Vec::new();
    let mut refreshes = Vec::new();
    for c in clients.iter().take(4) {
        let (m, req, stop) = (manager.clone(), c.access_request.clone(), stop.clone());
        gets.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let mut response = HeaderMap::new();
                let t0 = Instant::now();
                m.get_session(&req, &mut response, true)
                    .await
                    .expect("get_session");
                lat.0.push(t0.elapsed().as_nanos() as u64);
            }
            lat
        }));
    }
    for c in clients.iter().skip(4).take(4) {
        let (m, stop) = (manager.clone(), stop.clone());
        let (mut refresh, id_refresh) = (c.refresh.clone(), c.id_refresh.clone());
        refreshes.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            while !stop.load(Ordering::Relaxed) {
                let req = request_with_cookies(&[
                    ("sRefreshToken", &refresh),
                    ("sIdRefreshToken", &id_refresh),
                ]);
                let mut response = HeaderMap::new();
                let t0 = Instant::now();
                m.refresh_session(&req, &mut response)
                    .await
                    .expect("refresh");
                lat.0.push(t0.elapsed().as_nanos() as u64);
                refresh = set_cookie_value(&response, "sRefreshToken").expect("child");
            }
            (lat, refresh)
        }));
    }
    let mut served = Served {
        get: Latencies::default(),
        refresh: Latencies::default(),
        elapsed: Duration::ZERO,
    };
    for g in gets {
        served.get.extend(g.await.expect("task"));
    }
    for (r, client) in refreshes.into_iter().zip(clients.iter_mut().skip(4)) {
        let (lat, newest) = r.await.expect("task");
        served.refresh.extend(lat);
        client.refresh = newest;
    }
    served.elapsed = start.elapsed();
    served
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
    let rows = flag("--rows").unwrap_or(if opts.quick { 20_000.0 } else { 1_000_000.0 }) as i64;
    let sizes = Sizes {
        rows,
        heavy: (rows / 100).min(10_000),
        expired: rows / 2,
    };
    let serve_secs =
        Duration::from_secs_f64(flag("--serve-secs").unwrap_or(if opts.quick { 0.3 } else { 5.0 }));
    let rounds = if opts.quick { 2 } else { 5 };
    let rt = multi_thread_runtime();
    let mut report = Report::new();
    report.heading(
        3,
        "Scale: a table of 1,000,000 sessions (fewer with --quick)",
    );
    report.para(&format!(
        "Machine: {}. {} rows per backend: user {HEAVY_USER} owns {} live sessions, the rest \
         belong to ~200,000 users; {} rows (spread evenly) are expired. Fresh database per \
         backend, `ANALYZE`d after loading.",
        machine_summary(),
        fmt_rate(sizes.rows as f64),
        fmt_rate(sizes.heavy as f64),
        fmt_rate(sizes.expired as f64),
    ));
    for backend in opts.backends() {
        eprintln!("bench-scale: {backend}");
        let url = rt.block_on(fresh_url(backend));
        rt.block_on(async {
            let store = tessera_sqlx::connect_with(&url, StoreOptions::new().max_connections(16))
                .await
                .expect("connect");
            let manager = SessionManager::new(Config::builder().build().expect("config"), store.clone())
                .await
                .expect("manager");
            let now = now_ms();
            let load_time = load(&store, backend, &sizes, now).await;
            let total = count_rows(&store, "1 = 1").await;
            let expired = count_rows(&store, &format!("expires_at <= {}", now_ms())).await;
            assert_eq!(total, sizes.rows, "all rows loaded");
            assert_eq!(expired, sizes.expired, "half the rows are expired");
            report.heading(4, &format!("{backend}"));
            report.para(&format!(
                "Loaded {} rows in {} ({} rows/s), {} of them expired.",
                fmt_rate(total as f64),
                fmt_dur(load_time),
                fmt_rate(total as f64 / load_time.as_secs_f64()),
                fmt_rate(expired as f64)
            ));

            // Clients for the serving load (real sessions, made through the API).
            let mut clients = Vec::new();
            for u in 0..8 {
                clients.push(login(&manager, 9_000_000 + u).await);
            }

            // Per-user operations on the heavy user.
            let heavy = UserId::from(HEAVY_USER);
            let mut list_times = Vec::new();
            for i in 0..=rounds {
                let t0 = Instant::now();
                let handles = manager
                    .get_all_session_handles_for_user(&heavy)
                    .await
                    .expect("handles");
                let t = t0.elapsed();
                assert_eq!(handles.len() as i64, sizes.heavy);
                if i > 0 {
                    // The first call warms the cache.
                    list_times.push(t.as_nanos() as f64);
                }
            }
            let mut revoke_times = Vec::new();
            for _ in 0..rounds {
                let t0 = Instant::now();
                let n = manager
                    .revoke_all_sessions_for_user(&heavy)
                    .await
                    .expect("revoke all");
                revoke_times.push(t0.elapsed().as_nanos() as f64);
                assert_eq!(n as i64, sizes.heavy);
                // Put them back (not timed), exactly as loaded.
                exec(&store, &load_sql(backend, &sizes, 1, sizes.heavy, now)).await;
            }
            let (l, r) = (summarize(list_times), summarize(revoke_times));
            report.table(
                &["operation (user 42 and all its sessions)", "min", "median", "runs"],
                &[
                    vec![
                        format!("get_all_session_handles_for_user ({} handles)", fmt_rate(sizes.heavy as f64)),
                        fmt_ns(l.min),
                        fmt_ns(l.median),
                        l.n.to_string(),
                    ],
                    vec![
                        format!("revoke_all_sessions_for_user ({} rows)", fmt_rate(sizes.heavy as f64)),
                        fmt_ns(r.min),
                        fmt_ns(r.median),
                        r.n.to_string(),
                    ],
                ],
            );

            // Query plans.
            let sample_handle: String = {
                let sql = "SELECT session_handle FROM tessera_sessions WHERE user_id = '42' ORDER BY created_at LIMIT 1";
                match &store {
                    SqlStore::Sqlite(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await,
                    SqlStore::Postgres(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await,
                    // utf8mb4_bin columns come back as VARBINARY.
                    SqlStore::MySql(s) => sqlx::query_scalar::<_, Vec<u8>>(sql)
                        .fetch_one(s.pool())
                        .await
                        .map(|b| String::from_utf8_lossy(&b).into_owned()),
                    #[allow(unreachable_patterns)]
                    _ => unreachable!(),
                }
                .expect("a handle")
            };
            let mut plans = String::new();
            for (name, sql) in explained_statements(backend, &sample_handle, now_ms()) {
                plans.push_str(&format!("-- {name}\n-- {sql}\n{}\n\n", explain(&store, &sql).await));
            }
            report.para(&format!(
                "<details><summary>Query plans on {backend} ({} rows)</summary>\n",
                fmt_rate(sizes.rows as f64)
            ));
            report.code("text", &plans);
            report.para("</details>");

            // Cleanup while serving.
            let stop = Arc::new(AtomicBool::new(false));
            let baseline = {
                let s = stop.clone();
                let stopper = tokio::spawn(async move {
                    tokio::time::sleep(serve_secs).await;
                    s.store(true, Ordering::Relaxed);
                });
                let served = serve(&manager, &mut clients, stop.clone()).await;
                stopper.await.expect("stopper");
                served
            };
            stop.store(false, Ordering::Relaxed);
            let cleaner = {
                let (m, s) = (manager.clone(), stop.clone());
                tokio::spawn(async move {
                    // Let the serving tasks reach their steady state first.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let t0 = Instant::now();
                    let removed = m
                        .remove_expired_sessions(CLEANUP_BATCH, |_| {})
                        .await
                        .expect("cleanup");
                    let took = t0.elapsed();
                    s.store(true, Ordering::Relaxed);
                    (removed, took)
                })
            };
            let mut during = serve(&manager, &mut clients, stop.clone()).await;
            let (removed, took) = cleaner.await.expect("cleaner");
            assert_eq!(removed as i64, sizes.expired, "every expired row removed");
            let mut baseline = baseline;
            let line = |label: &str, lat: &mut Latencies, elapsed: Duration| {
                let n = lat.0.len();
                let (p50, p99, max) = lat.p50_p99_max();
                vec![
                    label.to_owned(),
                    fmt_rate(n as f64 / elapsed.as_secs_f64()),
                    fmt_ns(p50),
                    fmt_ns(p99),
                    fmt_ns(max),
                ]
            };
            let rows = vec![
                line("get_session, before cleanup", &mut baseline.get, baseline.elapsed),
                line("get_session, during cleanup", &mut during.get, during.elapsed),
                line("refresh_session, before cleanup", &mut baseline.refresh, baseline.elapsed),
                line("refresh_session, during cleanup", &mut during.refresh, during.elapsed),
            ];
            report.para(&format!(
                "`remove_expired_sessions` removed {} expired rows in {} ({} rows/s, batches of {}) \
                 while 4 tasks called `get_session` once a millisecond each and 4 tasks refreshed \
                 in a closed loop:",
                fmt_rate(removed as f64),
                fmt_dur(took),
                fmt_rate(removed as f64 / took.as_secs_f64()),
                fmt_rate(f64::from(CLEANUP_BATCH)),
            ));
            report.table(&["operation", "ops/s", "p50", "p99", "max"], &rows);
            store.close().await;
        });
        rt.block_on(discard(backend, &url));
    }
    report.print();
}
