//! Helpers for test suites that run against every available database.
//! Not part of the stable API (enabled by the `testing` feature).
//!
//! SQLite is always available. PostgreSQL and MySQL/MariaDB take part when
//! `TESSERA_TEST_POSTGRES_URL` / `TESSERA_TEST_MYSQL_URL` hold a base URL
//! such as `postgres://postgres@127.0.0.1:5432/test` or
//! `mysql://root@127.0.0.1:3306/test`. [`fresh_url`] gives each test its own
//! empty database, so tests run in parallel and two pools can open the same
//! one.

use std::fmt;

/// A database the suite can run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite, a temporary file.
    Sqlite,
    /// PostgreSQL, a fresh schema.
    Postgres,
    /// MySQL or MariaDB, a fresh database.
    MySql,
    /// A MariaDB Galera cluster (`scripts/galera.sh`): a fresh database,
    /// reached through each node ([`fresh_urls`]).
    Galera,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
            Backend::Galera => "galera",
        })
    }
}

/// Environment variable with the PostgreSQL base URL.
pub const POSTGRES_URL_VAR: &str = "TESSERA_TEST_POSTGRES_URL";
/// Environment variable with the MySQL/MariaDB base URL.
pub const MYSQL_URL_VAR: &str = "TESSERA_TEST_MYSQL_URL";
/// Environment variable with the Galera cluster's base URLs, one per node,
/// comma-separated (`bash scripts/galera.sh urls` prints them).
pub const GALERA_URLS_VAR: &str = "TESSERA_TEST_GALERA_URLS";

/// The environment variable that enables `backend` (`None` for SQLite).
pub fn url_var(backend: Backend) -> Option<&'static str> {
    match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(POSTGRES_URL_VAR),
        Backend::MySql => Some(MYSQL_URL_VAR),
        Backend::Galera => Some(GALERA_URLS_VAR),
    }
}

/// The node URLs of [`GALERA_URLS_VAR`], or an empty list.
pub fn galera_base_urls() -> Vec<String> {
    env_url(GALERA_URLS_VAR)
        .map(|v| {
            v.split(',')
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn env_url(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// SQLite always; PostgreSQL and MySQL when their variables are set (and the
/// crate was built with their features).
pub fn available_backends() -> Vec<Backend> {
    let mut backends = Vec::new();
    if cfg!(feature = "sqlite") {
        backends.push(Backend::Sqlite);
    }
    if cfg!(feature = "postgres") && env_url(POSTGRES_URL_VAR).is_some() {
        backends.push(Backend::Postgres);
    }
    if cfg!(feature = "mysql") && env_url(MYSQL_URL_VAR).is_some() {
        backends.push(Backend::MySql);
    }
    if cfg!(feature = "mysql") && !galera_base_urls().is_empty() {
        backends.push(Backend::Galera);
    }
    backends
}

/// Prefix of every database, schema and file [`fresh_url`] creates.
const NAME_PREFIX: &str = "tessera_t_";

/// Leftovers older than this are dropped by the next [`fresh_url`] on the
/// same server. Far longer than any test or soak run (the longest soak
/// keeps one database for about 40 minutes).
const STALE_AFTER_SECS: u64 = 3 * 3600;

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A lowercase name such as `tessera_t_1795000000_3f9c…`: the creation time
/// (so that a later run can tell a leftover from a database in use) and 64
/// random bits.
fn random_name() -> String {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).expect("the OS random source failed");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{NAME_PREFIX}{}_{hex}", unix_secs())
}

/// Whether `name` is a [`fresh_url`] leftover to drop: ours, and created
/// more than [`STALE_AFTER_SECS`] ago (or named before names carried a time).
fn is_stale(name: &str, now: u64) -> bool {
    let Some(rest) = name.strip_prefix(NAME_PREFIX) else {
        return false;
    };
    let valid = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    match rest.split_once('_') {
        Some((secs, hex)) if valid(hex) => secs
            .parse::<u64>()
            .is_ok_and(|t| now.saturating_sub(t) > STALE_AFTER_SECS),
        Some(_) => false,
        // The older form, `tessera_t_<hex>`, had no time: always a leftover.
        None => valid(rest),
    }
}

/// Once per process and server: drops the leftovers of earlier runs (tests
/// that panicked or were killed before their clean-up). Errors are ignored:
/// another process may be sweeping at the same time.
fn first_sweep(backend: Backend) -> bool {
    use std::sync::atomic::{AtomicBool, Ordering};
    static POSTGRES: AtomicBool = AtomicBool::new(false);
    static MYSQL: AtomicBool = AtomicBool::new(false);
    static SQLITE: AtomicBool = AtomicBool::new(false);
    static GALERA: AtomicBool = AtomicBool::new(false);
    let flag = match backend {
        Backend::Postgres => &POSTGRES,
        Backend::MySql => &MYSQL,
        Backend::Galera => &GALERA,
        Backend::Sqlite => &SQLITE,
    };
    !flag.swap(true, Ordering::SeqCst)
}

/// `base` with its database path replaced by `database`, query kept.
#[cfg_attr(not(feature = "mysql"), allow(dead_code))]
fn with_database(base: &str, database: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (base, None),
    };
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let authority_end = head[authority_start..]
        .find('/')
        .map_or(head.len(), |i| authority_start + i);
    let mut url = format!("{}/{}", &head[..authority_end], database);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// The URL of a new, empty, isolated database for `backend`:
///
/// * SQLite: a new file under [`std::env::temp_dir`].
/// * PostgreSQL: a new schema in the base database, selected with the URL
///   parameter `options=-c search_path=<schema>` (sqlx passes it to the
///   server at startup, so every pooled connection uses the schema).
/// * MySQL: a new database, created with the *case-insensitive* default
///   collation `utf8mb4_general_ci` so that tests prove the migrations set
///   the binary collation themselves.
///
/// # Panics
///
/// When the backend's variable is unset or its server cannot be reached:
/// this is for tests.
pub async fn fresh_url(backend: Backend) -> String {
    let name = random_name();
    match backend {
        Backend::Sqlite => {
            if first_sweep(Backend::Sqlite) {
                sweep_sqlite_files();
            }
            let path = std::env::temp_dir().join(format!("{name}.sqlite"));
            format!("sqlite://{}", path.display())
        }
        Backend::Postgres => fresh_postgres(&name).await,
        Backend::MySql => {
            let base = env_url(MYSQL_URL_VAR).expect("TESSERA_TEST_MYSQL_URL is not set");
            fresh_mysql(Backend::MySql, &base, &name).await
        }
        Backend::Galera => fresh_galera(&name).await.swap_remove(0),
    }
}

/// Like [`fresh_url`], but one URL per server of the backend: for
/// [`Backend::Galera`] the same new database on each node, in the order of
/// [`GALERA_URLS_VAR`], already migrated (sqlx's migration lock is a named
/// lock, which Galera does not replicate, so instances starting together on
/// different nodes must not be the first to migrate); one URL for the
/// others.
///
/// # Panics
///
/// As [`fresh_url`]; also when a node does not see the new database within
/// 10 s.
pub async fn fresh_urls(backend: Backend) -> Vec<String> {
    if backend != Backend::Galera {
        return vec![fresh_url(backend).await];
    }
    fresh_galera(&random_name()).await
}

async fn fresh_galera(name: &str) -> Vec<String> {
    let bases = galera_base_urls();
    assert!(!bases.is_empty(), "TESSERA_TEST_GALERA_URLS is not set");
    let first = fresh_mysql(Backend::Galera, &bases[0], name).await;
    let urls: Vec<String> = bases.iter().map(|b| with_database(b, name)).collect();
    galera_ready(&first, &urls).await;
    urls
}

#[cfg(feature = "mysql")]
async fn galera_ready(first: &str, urls: &[String]) {
    use sqlx::Connection;
    let store = crate::MySqlStore::connect(first, &crate::StoreOptions::default())
        .await
        .expect("migrating the Galera test database");
    store.pool().close().await;
    // DDL is replicated in total order but applied on each node in its own
    // time: wait until every node has the database and the tables.
    for url in urls {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let ready = match sqlx::MySqlConnection::connect(url).await {
                Ok(mut conn) => {
                    let ok = sqlx::query("SELECT 1 FROM tessera_keys LIMIT 1")
                        .fetch_optional(&mut conn)
                        .await
                        .is_ok();
                    conn.close().await.ok();
                    ok
                }
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{url}: the node does not see the new database"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

#[cfg(not(feature = "mysql"))]
async fn galera_ready(_first: &str, _urls: &[String]) {
    panic!("tessera-sqlx was built without the `mysql` feature")
}

/// Removes stale `tessera_t_….sqlite` files (and their `-wal` / `-shm`)
/// from the temp dir.
fn sweep_sqlite_files() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let now = unix_secs();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else {
            continue;
        };
        let stem = [".sqlite", ".sqlite-wal", ".sqlite-shm"]
            .iter()
            .find_map(|suffix| file.strip_suffix(suffix));
        if stem.is_some_and(|stem| is_stale(stem, now)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(feature = "postgres")]
async fn fresh_postgres(name: &str) -> String {
    use sqlx::{Connection, Executor};
    let base = env_url(POSTGRES_URL_VAR).expect("TESSERA_TEST_POSTGRES_URL is not set");
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .expect("cannot connect to TESSERA_TEST_POSTGRES_URL");
    if first_sweep(Backend::Postgres) {
        let names: Vec<(String,)> = sqlx::query_as(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tessera\\_t\\_%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
        let now = unix_secs();
        for (stale,) in names.into_iter().filter(|(n,)| is_stale(n, now)) {
            let _ = conn
                .execute(format!("DROP SCHEMA IF EXISTS {stale} CASCADE").as_str())
                .await;
        }
    }
    conn.execute(format!("CREATE SCHEMA {name}").as_str())
        .await
        .expect("CREATE SCHEMA failed");
    conn.close().await.ok();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{name}")
}

#[cfg(not(feature = "postgres"))]
async fn fresh_postgres(_name: &str) -> String {
    panic!("tessera-sqlx was built without the `postgres` feature")
}

#[cfg(feature = "mysql")]
async fn fresh_mysql(backend: Backend, base: &str, name: &str) -> String {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::MySqlConnection::connect(base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {base}: {e}"));
    if first_sweep(backend) {
        let names: Vec<(Vec<u8>,)> = sqlx::query_as(
            "SELECT schema_name FROM information_schema.schemata \
             WHERE schema_name LIKE 'tessera\\_t\\_%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
        let now = unix_secs();
        for (stale,) in names {
            let stale = String::from_utf8_lossy(&stale).into_owned();
            if is_stale(&stale, now) {
                let _ = conn
                    .execute(format!("DROP DATABASE IF EXISTS {stale}").as_str())
                    .await;
            }
        }
    }
    conn.execute(
        format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci").as_str(),
    )
    .await
    .expect("CREATE DATABASE failed");
    conn.close().await.ok();
    with_database(base, name)
}

#[cfg(not(feature = "mysql"))]
async fn fresh_mysql(_backend: Backend, _base: &str, _name: &str) -> String {
    panic!("tessera-sqlx was built without the `mysql` feature")
}

/// Best-effort removal of what [`fresh_url`] created for `url` (close the
/// pools on it first). Errors are ignored; only names that [`fresh_url`]
/// makes (`tessera_t_…`) are ever dropped.
pub async fn discard(backend: Backend, url: &str) {
    match backend {
        Backend::Sqlite => {
            if let Some(path) = url.strip_prefix("sqlite://") {
                if path.contains("tessera_t_") {
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{path}{suffix}"));
                    }
                }
            }
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            use sqlx::{Connection, Executor};
            if let Ok(mut conn) = sqlx::PgConnection::connect(url).await {
                let schema: Result<(String,), _> = sqlx::query_as("SELECT current_schema()")
                    .fetch_one(&mut conn)
                    .await;
                if let Ok((schema,)) = schema {
                    if schema.starts_with("tessera_t_") {
                        let _ = conn
                            .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                            .await;
                    }
                }
                conn.close().await.ok();
            }
        }
        #[cfg(feature = "mysql")]
        Backend::MySql | Backend::Galera => {
            use sqlx::{Connection, Executor};
            if let Ok(mut conn) = sqlx::MySqlConnection::connect(url).await {
                let database: Result<(Vec<u8>,), _> = sqlx::query_as("SELECT DATABASE()")
                    .fetch_one(&mut conn)
                    .await;
                if let Ok((database,)) = database {
                    let database = String::from_utf8_lossy(&database).into_owned();
                    if database.starts_with("tessera_t_") {
                        let _ = conn
                            .execute(format!("DROP DATABASE {database}").as_str())
                            .await;
                    }
                }
                conn.close().await.ok();
            }
        }
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_and_query_kept() {
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306/test", "x"),
            "mysql://root@127.0.0.1:3306/x"
        );
        assert_eq!(
            with_database("mysql://root@h:1/test?ssl-mode=disabled", "x"),
            "mysql://root@h:1/x?ssl-mode=disabled"
        );
        assert_eq!(with_database("mysql://root@h", "x"), "mysql://root@h/x");
    }

    #[test]
    fn names_are_random_identifiers() {
        let (a, b) = (random_name(), random_name());
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
    }

    #[test]
    fn only_old_names_of_ours_are_stale() {
        let now = 1_800_000_000;
        assert!(is_stale("tessera_t_1799980000_3f9c0a1b2c3d4e5f", now));
        assert!(!is_stale("tessera_t_1799999000_3f9c0a1b2c3d4e5f", now));
        assert!(
            is_stale("tessera_t_3f9c0a1b2c3d4e5f", now),
            "the older form"
        );
        assert!(!is_stale("tessera_bench_django", now));
        assert!(!is_stale("test", now));
        assert!(!is_stale("tessera_t_", now));
        assert!(!is_stale("tessera_t_1799980000_", now));
        assert!(!is_stale("tessera_t_12x_ab", now));
        let fresh = random_name();
        assert!(
            fresh.starts_with(NAME_PREFIX) && fresh.len() <= 63,
            "{fresh}"
        );
        assert!(!is_stale(&fresh, unix_secs()));
        assert!(is_stale(&fresh, unix_secs() + STALE_AFTER_SECS + 1));
    }
}

/// Fault injection for the tests of the retry logic (`tx.rs`): makes store
/// calls see a conflict after an attempt that did its work.
pub mod faults {
    use std::cell::Cell;
    use std::future::Future;

    use crate::tx::{CallError, CallResult};

    tokio::task_local! {
        static LOST_ANSWERS: Cell<u32>;
    }

    /// Runs `f` so that the next `n` attempts of store calls made inside it
    /// report a conflict after they ran, their work committed: what a
    /// client sees when the answer to a COMMIT is lost and the driver
    /// reports an error that is retried (CockroachDB's 40003, for one). The
    /// call then runs again, and must find its own result rather than do
    /// the work twice. With `n` at least the attempt limit, every attempt
    /// fails and the call gives up.
    pub async fn losing_answers<F: Future>(n: u32, f: F) -> F::Output {
        LOST_ANSWERS.scope(Cell::new(n), f).await
    }

    pub(crate) fn after_attempt<T>(outcome: CallResult<T>) -> CallResult<T> {
        let lose = LOST_ANSWERS
            .try_with(|left| {
                let n = left.get();
                left.set(n.saturating_sub(1));
                n > 0
            })
            .unwrap_or(false);
        if lose && outcome.is_ok() {
            return Err(CallError::injected_conflict(
                "injected: the answer to a committed attempt was lost",
            ));
        }
        outcome
    }
}
