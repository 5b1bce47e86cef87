//! The harness of the tests that run on the SQL backends: the protocol suites
//! of `crates/tessera/tests/protocol` (see `protocol.rs`), security and
//! faults. A fresh database per test on each backend, a manual clock, and the
//! client steps of `tessera-testkit` (a cookie jar that keeps cookies and the
//! anti-CSRF token). `crates/tessera/tests/protocol/support.rs` defines the
//! same names over the in-memory store.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::sync::Arc;
use std::time::Duration;

use tessera::{Config, ConfigBuilder, ManualClock, SessionManager};
pub use tessera_sqlx::testing::{fresh_url, Backend};
pub use tessera_testkit::flow::{assert_try_refresh, assert_unauthorized, login, refresh, verify};

// ---------------------------------------------------------------------------
// Harness

pub struct Harness {
    pub backend: Backend,
    /// The database URL (on Galera, through the first node).
    pub url: String,
    /// The same database through each server: one URL, or on Galera one per
    /// node. Managers are spread over them ([`Harness::try_manager`]).
    pub urls: Vec<String>,
    /// How many managers were made, to pick the next one's node.
    made: std::sync::atomic::AtomicUsize,
    pub clock: Arc<ManualClock>,
}

impl Harness {
    /// `suite` names the test file in the "SUITE TEST: backend NAME" line each
    /// test prints (CI counts those lines per backend).
    pub async fn new(backend: Backend, suite: &str, test: &str) -> Option<Harness> {
        let var = tessera_sqlx::testing::url_var(backend).unwrap_or("");
        let name = backend.to_string();
        if !var.is_empty() && std::env::var_os(var).is_none() {
            // The cluster is a backend of its own (scripts/galera.sh starts
            // it); CI requires it with TESSERA_REQUIRE_GALERA.
            let require = match backend {
                Backend::Galera => "TESSERA_REQUIRE_GALERA",
                _ => "TESSERA_REQUIRE_ALL_BACKENDS",
            };
            assert!(
                std::env::var_os(require).is_none(),
                "{var} is not set but {require} is"
            );
            eprintln!("{suite} {test}: backend {name} NOT RUN ({var} unset)");
            return None;
        }
        eprintln!("{suite} {test}: backend {name}");
        let urls = tessera_sqlx::testing::fresh_urls(backend).await;
        Some(Harness {
            backend,
            url: urls[0].clone(),
            urls,
            made: Default::default(),
            clock: Arc::new(ManualClock::new(1_800_000_000_000)),
        })
    }

    /// The URL the next manager connects to: on Galera each manager goes to
    /// the next node, so that two instances in a test are on two nodes.
    pub fn next_url(&self) -> &str {
        let n = self.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.urls[n % self.urls.len()]
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
        let store = tessera_sqlx::connect(self.next_url())
            .await
            .expect("connect");
        SessionManager::new(config, store).await
    }

    pub async fn manager(&self, f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> SessionManager {
        self.try_manager(f).await.expect("manager")
    }

    /// A manager whose store is `wrap` of a new connection pool (a test puts
    /// a fault switch around the real store).
    pub async fn wrapped_manager(
        &self,
        f: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
        wrap: impl FnOnce(Arc<dyn tessera::Store>) -> Arc<dyn tessera::Store>,
    ) -> SessionManager {
        let config = f(self.config()).build().expect("config");
        let store = tessera_sqlx::connect(self.next_url())
            .await
            .expect("connect");
        SessionManager::with_shared_store(config, wrap(Arc::new(store)))
            .await
            .expect("manager")
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
        let backend = self.backend;
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

/// Whether a response clears the session (three emptied cookies and
/// `id-refresh-token: remove`). Not every test file uses it.
pub use tessera_testkit::jar::clears_session as is_cleared;

/// One `#[tokio::test]` per scenario and backend: `per_backend!("suite"; a, b)`
/// defines `sqlite::a`, `postgres::a`, `mysql::a` and `galera::a` on a
/// two-thread runtime,
/// each handed a [`Harness`] (the in-memory store runs the protocol suites in
/// `crates/tessera`). The long form names the harness type (any
/// type with `async fn new(Backend, &str, &str) -> Option<Self>`) and the
/// `tokio::test` arguments:
/// `per_backend!("suite", H, (flavor = "current_thread"); a, b)`.
#[macro_export]
macro_rules! per_backend {
    ($suite:literal; $($scenario:ident),* $(,)?) => {
        $crate::per_backend!($suite, Harness, (flavor = "multi_thread", worker_threads = 2); $($scenario),*);
    };
    ($suite:literal, $harness:ident, $runtime:tt; $($scenario:ident),* $(,)?) => {
        $crate::per_backend!(@backend sqlite, Sqlite, $suite, $harness, $runtime, $($scenario),*);
        $crate::per_backend!(@backend postgres, Postgres, $suite, $harness, $runtime, $($scenario),*);
        $crate::per_backend!(@backend mysql, MySql, $suite, $harness, $runtime, $($scenario),*);
        $crate::per_backend!(@backend galera, Galera, $suite, $harness, $runtime, $($scenario),*);
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
