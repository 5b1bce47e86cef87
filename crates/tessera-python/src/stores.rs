//! Connection pools, cached by database URL for the life of the process.
//!
//! Django rebuilds Tessera's manager whenever its settings change
//! (`override_settings` in tests), and a manager is cheap; a pool is not, and
//! an in-memory SQLite database is lost with its only connection. So stores
//! live here, keyed by URL and pool size, and managers share them.

use std::collections::HashMap;
use std::time::Duration;

use pyo3::prelude::*;
use tessera_sqlx::{SqlStore, StoreOptions};
use tokio::sync::Mutex;

use crate::errors::to_py;
use crate::runtime::{self, block_on};

/// The URL the Python side uses for "Tessera's own in-memory database".
pub(crate) const MEMORY_URL: &str = "sqlite::memory:";

/// URL, pool size, acquire timeout (ms).
type Key = (String, u32, u64);

struct Cache {
    pid: u32,
    stores: HashMap<Key, SqlStore>,
}

static CACHE: Mutex<Option<Cache>> = Mutex::const_new(None);

fn is_memory(url: &str) -> bool {
    url == MEMORY_URL
}

/// The store for `url`, connecting on first use.
///
/// Pools are opened without running migrations: the tables are created by
/// `manage.py migrate` (see [`migrate`]). The one exception is the in-memory
/// database, which nothing else could ever migrate: it is migrated when it
/// is created.
pub(crate) async fn get(
    url: &str,
    pool_size: u32,
    acquire_timeout: Duration,
) -> tessera::Result<SqlStore> {
    let memory = is_memory(url);
    // One in-memory database per process, whatever the pool options.
    let key: Key = if memory {
        (url.to_owned(), 0, 0)
    } else {
        (
            url.to_owned(),
            pool_size.max(1),
            acquire_timeout.as_millis().min(u128::from(u64::MAX)) as u64,
        )
    };
    let mut cache = CACHE.lock().await;
    let pid = runtime::pid();
    if cache.as_ref().is_some_and(|c| c.pid != pid) {
        // Inherited across fork(): those pools' sockets and tasks belong to
        // the parent. Leak them rather than close the parent's connections.
        std::mem::forget(cache.take());
    }
    let cache = cache.get_or_insert_with(|| Cache {
        pid,
        stores: HashMap::new(),
    });
    if let Some(store) = cache.stores.get(&key) {
        return Ok(store.clone());
    }
    let options = StoreOptions::new()
        .max_connections(key.1.max(1))
        .acquire_timeout(acquire_timeout)
        .run_migrations(memory);
    let store = tessera_sqlx::connect_with(url, options).await?;
    cache.stores.insert(key, store.clone());
    Ok(store)
}

/// Creates or updates Tessera's tables in the database `url` names, from the
/// SQL files embedded in `tessera-sqlx` (`migrations/<database>/`). The
/// Django migration `tessera_django.0001_initial` calls this.
#[pyfunction]
#[pyo3(signature = (url, pool_size = 10, acquire_timeout = 5.0))]
pub(crate) fn migrate(
    py: Python<'_>,
    url: &str,
    pool_size: u32,
    acquire_timeout: f64,
) -> PyResult<()> {
    let timeout = timeout(py, acquire_timeout)?;
    block_on(py, async {
        let store = get(url, pool_size, timeout).await?;
        store.migrate().await?;
        Ok(())
    })
    .map_err(|e| to_py(py, e))
}

/// Closes every cached pool except the in-memory database, waiting for
/// connections in use to come back. Django's test runner calls this (through
/// `tessera_django`) before it drops a test database, which PostgreSQL
/// refuses while connections are open. Returns how many pools were closed.
#[pyfunction]
pub(crate) fn close_stores(py: Python<'_>) -> PyResult<usize> {
    block_on(py, async {
        let closing: Vec<SqlStore> = {
            let mut cache = CACHE.lock().await;
            match cache.as_mut() {
                Some(c) if c.pid == runtime::pid() => {
                    let keys: Vec<_> = c
                        .stores
                        .keys()
                        .filter(|(url, _, _)| !is_memory(url))
                        .cloned()
                        .collect();
                    keys.iter().filter_map(|k| c.stores.remove(k)).collect()
                }
                _ => Vec::new(),
            }
        };
        for store in &closing {
            store.close().await;
        }
        Ok(closing.len())
    })
    .map_err(|e| to_py(py, e))
}

/// A pool's acquire timeout from seconds; General error unless positive.
pub(crate) fn timeout(py: Python<'_>, seconds: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            crate::errors::general(
                py,
                "SUPER_TOKENS: DATABASE_ACQUIRE_TIMEOUT must be a positive number of seconds",
            )
        })
}
