//! Rust errors → the reference library's exception classes (`tessera_django.exceptions`).

use std::error::Error as _;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::io::user_id_to_py;

const MODULE: &str = "tessera_django.exceptions";

static GENERAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UNAUTHORIZED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TRY_REFRESH: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static THEFT: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn raise(py: Python<'_>, class: &PyOnceLock<Py<PyType>>, name: &str, message: String) -> PyErr {
    match class.import(py, MODULE, name) {
        Ok(class) => PyErr::from_type(class.clone(), (message,)),
        Err(import_failed) => import_failed,
    }
}

/// A `SuperTokensGeneralException` with `message` for a call the binding
/// refuses (a wrong type, a value it cannot carry): kind `invalid_argument`.
pub(crate) fn general(py: Python<'_>, message: impl Into<String>) -> PyErr {
    general_of_kind(py, tessera::GeneralKind::InvalidArgument, message)
}

/// A `SuperTokensGeneralException` with `message` whose `kind` attribute is
/// the core's [`tessera::GeneralKind`] (`unavailable`, `timeout`,
/// `invalid_argument`, `internal`).
pub(crate) fn general_of_kind(
    py: Python<'_>,
    kind: tessera::GeneralKind,
    message: impl Into<String>,
) -> PyErr {
    let class = match GENERAL.import(py, MODULE, "SuperTokensGeneralException") {
        Ok(class) => class,
        Err(import_failed) => return import_failed,
    };
    let kwargs = pyo3::types::PyDict::new(py);
    if let Err(e) = kwargs.set_item("kind", kind.as_str()) {
        return e;
    }
    match class.call((message.into(),), Some(&kwargs)) {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// The message of a General error with its chain of sources, each one added
/// unless the text before already ends with it (wrappers often repeat their
/// source). These messages are for logs; integrations never put them in a
/// response body.
fn describe(message: &str, source: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut text = message.to_owned();
    let mut next = source;
    while let Some(e) = next {
        let part = e.to_string();
        if !part.is_empty() && !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = e.source();
    }
    text
}

/// Converts a core error into the reference library's exception.
pub(crate) fn to_py(py: Python<'_>, error: tessera::Error) -> PyErr {
    match error {
        tessera::Error::General {
            kind,
            message,
            source,
        } => {
            let source = source
                .as_deref()
                .map(|s| s as &(dyn std::error::Error + 'static));
            general_of_kind(py, kind, describe(&message, source))
        }
        tessera::Error::Unauthorized { reason } => raise(
            py,
            &UNAUTHORIZED,
            "SuperTokensUnauthorizedException",
            reason.to_owned(),
        ),
        tessera::Error::TryRefreshToken { reason } => raise(
            py,
            &TRY_REFRESH,
            "SuperTokensTryRefreshTokenException",
            reason.to_owned(),
        ),
        // The exception keeps the reference library's two arguments; the
        // reuse kind (also in the core's `tessera::security` log event) is
        // Tessera's extra attribute `reuse_kind`.
        tessera::Error::TokenTheftDetected {
            user_id,
            session_handle,
            reuse,
            ..
        } => {
            let class = match THEFT.import(py, MODULE, "SuperTokensTokenTheftException") {
                Ok(class) => class,
                Err(import_failed) => return import_failed,
            };
            match class.call1((user_id_to_py(py, &user_id), session_handle)) {
                Ok(instance) => match instance.setattr("reuse_kind", reuse.as_str()) {
                    Ok(()) => PyErr::from_value(instance),
                    Err(e) => e,
                },
                Err(e) => e,
            }
        }
        // The core's enum is non-exhaustive: anything new is General until
        // this binding learns about it.
        other => general_of_kind(
            py,
            tessera::GeneralKind::Internal,
            describe(&other.to_string(), other.source()),
        ),
    }
}

/// Wraps a Python exception raised while Tessera called back into Python
/// (writing to the response): General, with the original as `__cause__`.
pub(crate) fn general_from(py: Python<'_>, message: &str, cause: PyErr) -> PyErr {
    if is_supertokens_exception(py, &cause) {
        return cause;
    }
    let err = general_of_kind(
        py,
        tessera::GeneralKind::Internal,
        format!("{message}: {cause}"),
    );
    err.set_cause(py, Some(cause));
    err
}

fn is_supertokens_exception(py: Python<'_>, err: &PyErr) -> bool {
    static BASE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    BASE.import(py, MODULE, "SuperTokensException")
        .map(|base| err.get_type(py).is_subclass(base).unwrap_or(false))
        .unwrap_or(false)
}
