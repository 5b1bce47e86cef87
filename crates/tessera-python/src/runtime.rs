//! The process-wide tokio runtime and the one way Python calls wait on it.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use pyo3::intern;
use pyo3::prelude::*;
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

/// What the loop's thread runs when a call started by [`awaitable`] has
/// finished: converts the result (and replays the recorded cookies and
/// headers onto the Django response) with the GIL held, on the event loop's
/// thread, so the response is only ever touched by the coroutine's thread.
type Finish = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// Scheduled with `loop.call_soon_threadsafe(completion, future)` by the
/// runtime's worker when the call is done; resolves the asyncio future.
#[pyclass(name = "_Completion", module = "tessera_django._native", frozen)]
pub(crate) struct Completion(Mutex<Option<Finish>>);

#[pymethods]
impl Completion {
    fn __call__(&self, py: Python<'_>, future: &Bound<'_, PyAny>) -> PyResult<()> {
        let finish = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(finish) = finish {
            resolve(py, future, finish(py))?;
        }
        Ok(())
    }
}

/// Sets the result or the exception of an asyncio future, unless it was
/// cancelled meanwhile (the awaiting task is gone; the call's effect on the
/// database stands, its cookies have nobody to go to).
fn resolve(
    py: Python<'_>,
    future: &Bound<'_, PyAny>,
    outcome: PyResult<Py<PyAny>>,
) -> PyResult<()> {
    crate::security_log::flush(py);
    if future.call_method0(intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    match outcome {
        Ok(value) => future.call_method1(intern!(py, "set_result"), (value,))?,
        Err(error) => future.call_method1(intern!(py, "set_exception"), (error.into_value(py),))?,
    };
    Ok(())
}

/// The async counterpart of [`run`]: returns an `asyncio.Future` of the
/// running event loop at once, and never blocks the loop's thread on the
/// database.
///
/// * Polled once inline first (`poll_inline`), like [`run`]: a
///   `get_session` that needs no database is answered by an already-done
///   future, which `await` returns from without suspending.
/// * Otherwise the future becomes a task on the process-wide tokio runtime.
///   No thread waits for it: thousands of calls in flight are driven by the
///   runtime's two workers and the sockets' readiness. When it is done, the
///   worker takes the GIL just long enough to schedule a [`Completion`] on
///   the loop with `call_soon_threadsafe` (asyncio's documented way in from
///   another thread), and `finish` runs there.
///
/// A panic in the call ends its task's `JoinHandle` with an error, which
/// becomes `SuperTokensGeneralException` on the future.
pub(crate) fn awaitable<F, T, D>(
    py: Python<'_>,
    poll_inline: bool,
    future: F,
    finish: D,
) -> PyResult<Py<PyAny>>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
    D: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let event_loop = py
        .import(intern!(py, "asyncio"))?
        .call_method0(intern!(py, "get_running_loop"))?;
    let py_future = event_loop.call_method0(intern!(py, "create_future"))?;
    let runtime = runtime().map_err(|e| crate::errors::to_py(py, e))?;
    let mut future = Box::pin(future);
    if poll_inline {
        let polled = {
            let _entered = runtime.enter();
            let mut cx = Context::from_waker(Waker::noop());
            catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)))
        };
        match polled {
            Ok(Poll::Ready(value)) => {
                resolve(py, &py_future, finish(py, value))?;
                return Ok(py_future.unbind());
            }
            Ok(Poll::Pending) => {}
            Err(_) => {
                let error = crate::errors::to_py(py, internal_error());
                resolve(py, &py_future, Err(error))?;
                return Ok(py_future.unbind());
            }
        }
    }
    let loop_ref = event_loop.unbind();
    let future_ref = py_future.clone().unbind();
    let task = runtime.spawn(future);
    runtime.spawn(async move {
        let joined = task.await;
        let finish: Finish = Box::new(move |py| match joined {
            Ok(value) => finish(py, value),
            Err(_) => Err(crate::errors::to_py(py, internal_error())),
        });
        Python::attach(|py| {
            let completion = Completion(Mutex::new(Some(finish)));
            // A loop closed meanwhile refuses the callback: nobody is
            // waiting any more.
            let _ = Py::new(py, completion).and_then(|completion| {
                loop_ref.call_method1(
                    py,
                    intern!(py, "call_soon_threadsafe"),
                    (completion, future_ref),
                )
            });
        });
    });
    Ok(py_future.unbind())
}
