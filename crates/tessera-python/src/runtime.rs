//! The process-wide tokio runtime and the one way Python calls wait on it.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use pyo3::Python;
use tokio::runtime::Runtime;

/// The runtime and the process that created it.
struct Owned {
    pid: u32,
    runtime: Arc<Runtime>,
}

static RUNTIME: Mutex<Option<Owned>> = Mutex::new(None);

/// The runtime of this process, created on first use.
///
/// A child created by `fork()` (gunicorn and uWSGI pre-fork workers) inherits
/// the parent's memory but not its threads, so a runtime inherited that way
/// cannot run anything. It is leaked, never dropped (dropping would wait for
/// worker threads that do not exist here), and a fresh one is built.
fn runtime() -> tessera::Result<Arc<Runtime>> {
    let pid = std::process::id();
    let mut slot = RUNTIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(owned) = slot.as_ref() {
        if owned.pid == pid {
            return Ok(owned.runtime.clone());
        }
    }
    if let Some(inherited) = slot.take() {
        std::mem::forget(inherited);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        // The work is waiting on sockets; two threads drive the pools'
        // background tasks. Calls themselves run on the calling thread.
        .worker_threads(2)
        .thread_name("tessera-runtime")
        .enable_all()
        .build()
        .map_err(|e| tessera::Error::General {
            message: "could not start the Tessera runtime".into(),
            source: Some(Box::new(e)),
        })?;
    let runtime = Arc::new(runtime);
    *slot = Some(Owned {
        pid,
        runtime: runtime.clone(),
    });
    Ok(runtime)
}

/// The current process id, for caches that must not survive a `fork()`.
pub(crate) fn pid() -> u32 {
    std::process::id()
}

/// Runs `future` to completion on the calling thread with the GIL released,
/// so other Python threads run while this one waits on the database.
///
/// A panic anywhere in the future is caught here and becomes a General error:
/// Python callers see `SuperTokensGeneralException`, never PyO3's
/// `PanicException`.
pub(crate) fn block_on<F, T>(py: Python<'_>, future: F) -> tessera::Result<T>
where
    F: Future<Output = tessera::Result<T>> + Send,
    T: Send,
{
    py.detach(|| {
        let runtime = runtime()?;
        catch_unwind(AssertUnwindSafe(|| runtime.block_on(future)))
            .unwrap_or_else(|_| Err(tessera::Error::general("internal error in Tessera")))
    })
}
