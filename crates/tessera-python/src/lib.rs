//! # `tessera_django._native`
//!
//! The PyO3 binding behind the `tessera-django` Python distribution. It is a
//! translation layer only: every protocol decision is made by the `tessera`
//! core, every row is kept by `tessera-sqlx`. The Django-facing API (the
//! reference library's `supertokens` module, settings, middleware, DRF authentication)
//! is Python code in `python/tessera_django/` that calls into this module.
//!
//! ## Design
//!
//! * **One process-wide tokio runtime** ([`runtime`]), created on first use
//!   and recreated in a child after `fork()` (pre-forking WSGI servers). The
//!   hot calls go through [`runtime::run`]: polled once inline with the GIL
//!   held (`get_session` finishes there, in ~1 µs), otherwise continued as a
//!   task on the runtime's workers while the caller waits with the GIL
//!   released, so other Python threads keep running and each database reply
//!   is handled by the worker it woke (one hand-over back at the end). The
//!   other calls use `py.detach(|| runtime.block_on(..))`.
//! * **Stores are cached by URL** ([`stores`]). A manager is rebuilt whenever
//!   Django's settings change (`override_settings` in tests), but the
//!   connection pool of a database is reused. `sqlite::memory:` is one
//!   private in-memory database for the life of the process.
//! * **Requests in, operations out** ([`io`]). The three cookies and the
//!   `anti-csrf` header are read from the Django request's `COOKIES` and
//!   `META` here, with interned keys; the core writes cookies and headers
//!   into a recorder; after the core returns (and the GIL is held again) the
//!   recorded operations are replayed onto the `HttpResponse` directly
//!   (`set_cookie`, `response[name] = value`), or onto one of
//!   `tessera_django._response`'s writers (the DRF authentication records
//!   into a `PendingResponse` before the response exists). Operations recorded before an error (cookie clearing)
//!   are replayed too, and then the error is raised.
//! * **Errors become the reference library's exception classes** ([`errors`]), imported
//!   from `tessera_django.exceptions`. A Rust panic is caught at the boundary
//!   and raised as `SuperTokensGeneralException`, never as PyO3's
//!   `PanicException`.
//! * **Security events reach Python's `logging`** ([`security_log`]): the
//!   core's `tessera::security` events (token theft) are queued by a minimal
//!   `tracing` subscriber and written to `logging.getLogger("tessera.security")`
//!   at WARNING when the call that emitted them returns.
//! * **Test time** ([`ManualClock`](manager::PyManualClock)): a manager can be
//!   built with a manual clock so that expiry is tested without sleeping.

mod config;
mod cookies;
mod errors;
mod io;
mod manager;
mod runtime;
mod security_log;
mod stores;

use pyo3::prelude::*;

/// The native module. Its Python-facing contract is `_native.pyi`.
#[pymodule]
#[pyo3(name = "_native")]
fn tessera_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    security_log::install();
    m.add_class::<manager::PyManager>()?;
    m.add_class::<manager::PySession>()?;
    m.add_class::<manager::PyManualClock>()?;
    m.add_class::<runtime::Completion>()?;
    m.add_function(wrap_pyfunction!(manager::set_headers_for_options_api, m)?)?;
    m.add_function(wrap_pyfunction!(manager::validate_config, m)?)?;
    m.add_function(wrap_pyfunction!(manager::config_warnings, m)?)?;
    m.add_function(wrap_pyfunction!(stores::migrate, m)?)?;
    m.add_function(wrap_pyfunction!(stores::close_stores, m)?)?;
    m.add_function(wrap_pyfunction!(manager::_panic_for_tests, m)?)?;
    m.add_function(wrap_pyfunction!(cookies::_cookie_values, m)?)?;
    m.add_function(wrap_pyfunction!(cookies::_cookie_conflict, m)?)?;
    m.add("MAX_JSON_DEPTH", manager::MAX_JSON_DEPTH)?;
    m.add("ACCESS_TOKEN_COOKIE", tessera::ACCESS_TOKEN_COOKIE)?;
    m.add("REFRESH_TOKEN_COOKIE", tessera::REFRESH_TOKEN_COOKIE)?;
    m.add("ID_REFRESH_TOKEN_COOKIE", tessera::ID_REFRESH_TOKEN_COOKIE)?;
    m.add("ANTI_CSRF_HEADER", tessera::ANTI_CSRF_HEADER)?;
    m.add("ID_REFRESH_TOKEN_HEADER", tessera::ID_REFRESH_TOKEN_HEADER)?;
    Ok(())
}
