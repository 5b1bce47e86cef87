//! The harness shared by the protocol test files (conformance, races,
//! properties, security; faults uses the browser): a fresh database per test
//! on each backend, a manual clock, and a minimal browser that keeps cookies
//! and the anti-CSRF token (the cookie jar of `tessera-testkit`).
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderMap;
use serde_json::{json, Value};
use tessera::{Config, ConfigBuilder, Error, ManualClock, SessionManager, UserId};
pub use tessera_sqlx::testing::fresh_url;
use tessera_testkit::MemoryStore;

/// Where a test's sessions live: one of the SQL databases, or the
/// in-memory store of `tessera-testkit` (the protocol suites run on it too,
/// so that a protocol failure and a store failure can be told apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
    Memory,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.sql() {
            Some(b) => b.fmt(f),
            None => f.write_str("memory"),
        }
    }
}

impl Backend {
    fn sql(self) -> Option<tessera_sqlx::testing::Backend> {
        use tessera_sqlx::testing::Backend as B;
        match self {
            Backend::Sqlite => Some(B::Sqlite),
            Backend::Postgres => Some(B::Postgres),
            Backend::MySql => Some(B::MySql),
            Backend::Memory => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Harness

pub struct Harness {
    pub backend: Backend,
    /// The database URL; `memory:` for the in-memory store.
    pub url: String,
    pub clock: Arc<ManualClock>,
    /// The shared in-memory store (every manager of the test gets a clone:
    /// several instances on one database).
    memory: Option<MemoryStore>,
}

impl Harness {
    /// `suite` names the test file in the "SUITE TEST: backend NAME" line each
    /// test prints (CI counts those lines per backend).
    pub async fn new(backend: Backend, suite: &str, test: &str) -> Option<Harness> {
        let (var, name) = match backend {
            Backend::Sqlite => ("", "sqlite"),
            Backend::Postgres => ("TESSERA_TEST_POSTGRES_URL", "postgres"),
            Backend::MySql => ("TESSERA_TEST_MYSQL_URL", "mysql"),
            Backend::Memory => ("", "memory"),
        };
        if !var.is_empty() && std::env::var_os(var).is_none() {
            assert!(
                std::env::var_os("TESSERA_REQUIRE_ALL_BACKENDS").is_none(),
                "{var} is not set but TESSERA_REQUIRE_ALL_BACKENDS is"
            );
            eprintln!("{suite} {test}: backend {name} NOT RUN ({var} unset)");
            return None;
        }
        eprintln!("{suite} {test}: backend {name}");
        let (url, memory) = match backend.sql() {
            Some(sql) => (fresh_url(sql).await, None),
            None => ("memory:".to_owned(), Some(MemoryStore::new())),
        };
        Some(Harness {
            backend,
            url,
            clock: Arc::new(ManualClock::new(1_800_000_000_000)),
            memory,
        })
    }

    pub fn config(&self) -> ConfigBuilder {
        Config::builder().with_clock(self.clock.clone())
    }

    /// A manager with its own connection pool on the harness database.
    pub async fn try_manager(
        &self,
        f: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
    ) -> tessera::Result<SessionManager> {
        let config = f(self.config()).build().expect("config");
        if let Some(memory) = &self.memory {
            return SessionManager::new(config, memory.clone()).await;
        }
        let store = tessera_sqlx::connect(&self.url).await.expect("connect");
        SessionManager::new(config, store).await
    }

    pub async fn manager(&self, f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> SessionManager {
        self.try_manager(f).await.expect("manager")
    }

    pub async fn default_manager(&self) -> SessionManager {
        self.manager(|b| b).await
    }

    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }
}

/// Drops the test's database, schema or file when the test ends (also when
/// it panics), on a thread and runtime of its own: `Drop` cannot await, and
/// the test's runtime may be a current-thread one. Leftovers of killed runs
/// are swept by a later `fresh_url`.
impl Drop for Harness {
    fn drop(&mut self) {
        let Some(backend) = self.backend.sql() else {
            return;
        };
        let url = self.url.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(tessera_sqlx::testing::discard(backend, &url));
            }
        })
        .join();
    }
}

/// A minimal browser: the testkit's cookie jar (keeps the cookies and the
/// anti-CSRF token the server sent, and every token it handed out).
pub use tessera_testkit::jar::CookieJar as Browser;

pub async fn login(m: &SessionManager, uid: impl Into<UserId>, payload: Value) -> Browser {
    let mut resp = HeaderMap::new();
    m.create_new_session(&mut resp, uid, payload, json!({"info": true}))
        .await
        .expect("create");
    let mut b = Browser::default();
    b.absorb(&resp);
    b
}

pub async fn verify(m: &SessionManager, b: &mut Browser) -> Result<tessera::Session, Error> {
    let mut resp = HeaderMap::new();
    let r = m.get_session(&b.request(), &mut resp, true).await;
    b.absorb(&resp);
    r
}

pub async fn refresh(m: &SessionManager, b: &mut Browser) -> Result<tessera::Session, Error> {
    let mut resp = HeaderMap::new();
    let r = m.refresh_session(&b.request(), &mut resp).await;
    b.absorb(&resp);
    r
}

/// Whether a response clears the session (three emptied cookies and
/// `id-refresh-token: remove`). Not every test file uses it.
#[allow(unused_imports)]
pub use tessera_testkit::jar::clears_session as is_cleared;

#[track_caller]
pub fn assert_try_refresh<T: std::fmt::Debug>(r: Result<T, Error>) {
    match r {
        Err(Error::TryRefreshToken { .. }) => {}
        other => panic!("expected TryRefreshToken, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_unauthorized<T: std::fmt::Debug>(r: Result<T, Error>) {
    match r {
        Err(Error::Unauthorized { .. }) => {}
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

/// One `#[tokio::test]` per scenario and backend: `per_backend!("suite"; a, b)`
/// defines `sqlite::a`, `postgres::a`, `mysql::a` and `memory::a` (the
/// in-memory store of `tessera-testkit`) on a two-thread runtime,
/// each handed a [`Harness`]. The long form names the harness type (any
/// type with `async fn new(Backend, &str, &str) -> Option<Self>`) and the
/// `tokio::test` arguments:
/// `per_backend!("suite", H, (flavor = "current_thread"); a, b)`.
#[macro_export]
macro_rules! per_backend {
    ($suite:literal; $($scenario:ident),* $(,)?) => {
        per_backend!($suite, Harness, (flavor = "multi_thread", worker_threads = 2); $($scenario),*);
        per_backend!(@backend memory, Memory, $suite, Harness, (flavor = "multi_thread", worker_threads = 2), $($scenario),*);
    };
    ($suite:literal, $harness:ident, $runtime:tt; $($scenario:ident),* $(,)?) => {
        per_backend!(@backend sqlite, Sqlite, $suite, $harness, $runtime, $($scenario),*);
        per_backend!(@backend postgres, Postgres, $suite, $harness, $runtime, $($scenario),*);
        per_backend!(@backend mysql, MySql, $suite, $harness, $runtime, $($scenario),*);
    };
    (@backend $module:ident, $backend:ident, $suite:literal, $harness:ident, $runtime:tt, $($scenario:ident),*) => {
        mod $module {
            $(
                #[tokio::test $runtime]
                async fn $scenario() {
                    if let Some(h) = super::$harness::new(super::Backend::$backend, $suite, stringify!($scenario)).await {
                        super::$scenario(h).await
                    }
                }
            )*
        }
    };
}
