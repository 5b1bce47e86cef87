//! The harness the protocol suites are written against, here over the
//! in-memory store: a fresh store per test, a manual clock, and managers that
//! share the store (several instances on one database).
//!
//! `tessera-sqlx/tests/support` defines the same names over SQLite,
//! PostgreSQL and MariaDB; a scenario uses only what both define.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use tessera::{Config, ConfigBuilder, ManualClock, SessionManager};
pub use tessera_testkit::flow::{assert_try_refresh, assert_unauthorized, login, refresh, verify};
pub use tessera_testkit::jar::clears_session as is_cleared;
pub use tessera_testkit::jar::CookieJar as Browser;
use tessera_testkit::MemoryStore;

/// The backends this harness can run a scenario on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Memory,
}

pub struct Harness {
    pub backend: Backend,
    /// Names the store in messages (`memory:`), as a database URL would.
    pub url: String,
    pub clock: Arc<ManualClock>,
    store: MemoryStore,
}

impl Harness {
    /// `suite` names the test file in the "SUITE TEST: backend NAME" line each
    /// test prints (CI counts those lines per backend).
    pub async fn new(backend: Backend, suite: &str, test: &str) -> Option<Harness> {
        eprintln!("{suite} {test}: backend memory");
        Some(Harness {
            backend,
            url: "memory:".to_owned(),
            clock: Arc::new(ManualClock::new(1_800_000_000_000)),
            store: MemoryStore::new(),
        })
    }

    pub fn config(&self) -> ConfigBuilder {
        Config::builder().with_clock(self.clock.clone())
    }

    /// A manager on the harness store (each call is another instance).
    pub async fn try_manager(
        &self,
        f: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
    ) -> tessera::Result<SessionManager> {
        let config = f(self.config()).build().expect("config");
        SessionManager::new(config, self.store.clone()).await
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
        SessionManager::with_shared_store(config, wrap(Arc::new(self.store.clone())))
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

/// One `#[tokio::test]` per scenario: `per_backend!("suite"; a, b)` defines
/// `memory::a` and `memory::b` on a two-thread runtime, each handed a
/// [`Harness`].
#[macro_export]
macro_rules! per_backend {
    ($suite:literal; $($scenario:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if let Some(h) = super::Harness::new(super::Backend::Memory, $suite, stringify!($scenario)).await {
                        super::$scenario(h).await
                    }
                }
            )*
        }
    };
}
