//! The process-wide tokio runtime and the one way Python calls wait on it.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

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
            kind: tessera::GeneralKind::Internal,
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
    let result = py.detach(|| {
        let runtime = runtime()?;
        catch_unwind(AssertUnwindSafe(|| runtime.block_on(future)))
            .unwrap_or_else(|_| Err(tessera::Error::general("internal error in Tessera")))
    });
    crate::security_log::flush(py);
    result
}

fn internal_error() -> tessera::Error {
    tessera::Error::general("internal error in Tessera")
}

/// Runs `future`, which owns everything it needs, the fast way for a call
/// from Python:
///
/// 1. **Polled once on the calling thread, with the GIL held** and the
///    runtime entered. A call that does not wait on anything (`get_session`
///    without blacklisting: a signature check and a JSON read, ~1 µs) ends
///    here, without the cost of releasing and re-taking the GIL or of
///    parking the thread (together a few hundred nanoseconds, more than the
///    work itself).
/// 2. Otherwise it **continues as a task on the runtime's worker threads**
///    while the caller waits with the GIL released. The worker that is
///    woken by the database's reply goes on with the next statement itself;
///    with `Runtime::block_on` on the Python thread, every reply would
///    instead be handed from the worker that polls the sockets to the
///    parked Python thread (a thread wake-up per round trip, tens of
///    microseconds on a busy machine). Now there is one hand-over, at the
///    end.
///
/// `poll_inline = false` skips step 1, for calls that always wait on the
/// database (nothing would be saved, and the GIL would be held while the
/// first statement is prepared).
///
/// A panic anywhere in the future becomes a General error: Python callers
/// see `SuperTokensGeneralException`, never PyO3's `PanicException`.
pub(crate) fn run<F, T>(py: Python<'_>, poll_inline: bool, future: F) -> tessera::Result<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let result = run_inner(py, poll_inline, future);
    // Security events the call emitted (on this thread or a worker) reach
    // Python's logging now that the GIL is held.
    crate::security_log::flush(py);
    result
}

fn run_inner<F, T>(py: Python<'_>, poll_inline: bool, future: F) -> tessera::Result<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let runtime = runtime()?;
    let mut future = Box::pin(future);
    if poll_inline {
        let _entered = runtime.enter();
        let mut cx = Context::from_waker(Waker::noop());
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx))) {
            Ok(Poll::Ready(value)) => return Ok(value),
            Ok(Poll::Pending) => {}
            Err(_) => return Err(internal_error()),
        }
    }
    // A task that panics ends its `JoinHandle` with an error, caught here.
    let task = runtime.spawn(future);
    py.detach(|| runtime.block_on(task).map_err(|_| internal_error()))
}
