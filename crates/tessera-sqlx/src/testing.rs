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
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        })
    }
}

/// Environment variable with the PostgreSQL base URL.
pub const POSTGRES_URL_VAR: &str = "TESSERA_TEST_POSTGRES_URL";
/// Environment variable with the MySQL/MariaDB base URL.
pub const MYSQL_URL_VAR: &str = "TESSERA_TEST_MYSQL_URL";

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
    backends
}

/// A random lowercase name such as `tessera_t_3f9c…` (64 random bits).
fn random_name() -> String {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).expect("the OS random source failed");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("tessera_t_{hex}")
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
            let path = std::env::temp_dir().join(format!("{name}.sqlite"));
            format!("sqlite://{}", path.display())
        }
        Backend::Postgres => fresh_postgres(&name).await,
        Backend::MySql => fresh_mysql(&name).await,
    }
}

#[cfg(feature = "postgres")]
async fn fresh_postgres(name: &str) -> String {
    use sqlx::{Connection, Executor};
    let base = env_url(POSTGRES_URL_VAR).expect("TESSERA_TEST_POSTGRES_URL is not set");
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .expect("cannot connect to TESSERA_TEST_POSTGRES_URL");
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
async fn fresh_mysql(name: &str) -> String {
    use sqlx::{Connection, Executor};
    let base = env_url(MYSQL_URL_VAR).expect("TESSERA_TEST_MYSQL_URL is not set");
    let mut conn = sqlx::MySqlConnection::connect(&base)
        .await
        .expect("cannot connect to TESSERA_TEST_MYSQL_URL");
    conn.execute(
        format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci").as_str(),
    )
    .await
    .expect("CREATE DATABASE failed");
    conn.close().await.ok();
    with_database(&base, name)
}

#[cfg(not(feature = "mysql"))]
async fn fresh_mysql(_name: &str) -> String {
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
        Backend::MySql => {
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
}
