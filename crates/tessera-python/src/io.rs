//! What the binding reads from a Django request and writes to a response.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyString};
use tessera::{
    CookieSpec, RequestSource, ResponseSink, UserId, ACCESS_TOKEN_COOKIE, ANTI_CSRF_HEADER,
    ID_REFRESH_TOKEN_COOKIE, REFRESH_TOKEN_COOKIE,
};

use crate::errors::{general, general_from};

/// The parts of a request the protocol reads: three cookies and one header,
/// taken by the Python side from `request.COOKIES` and `request.META`.
///
/// An empty value counts as absent. Clearing a session sets the cookies to
/// the empty value; browsers then drop them, but clients that ignore the
/// expiry (Django's test client, some HTTP libraries) send them back empty,
/// and an empty id-refresh cookie means "no session", not "try refresh".
#[derive(Default)]
pub(crate) struct RequestValues {
    id_refresh: Option<String>,
    access: Option<String>,
    refresh: Option<String>,
    anti_csrf: Option<String>,
}

fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

impl RequestValues {
    pub(crate) fn new(
        id_refresh: Option<String>,
        access: Option<String>,
        refresh: Option<String>,
        anti_csrf: Option<String>,
    ) -> Self {
        RequestValues {
            id_refresh: present(id_refresh),
            access: present(access),
            refresh: present(refresh),
            anti_csrf: present(anti_csrf),
        }
    }
}

impl RequestSource for RequestValues {
    fn cookie(&self, name: &str) -> Option<&[u8]> {
        match name {
            ID_REFRESH_TOKEN_COOKIE => self.id_refresh.as_deref(),
            ACCESS_TOKEN_COOKIE => self.access.as_deref(),
            REFRESH_TOKEN_COOKIE => self.refresh.as_deref(),
            _ => None,
        }
        .map(str::as_bytes)
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        (name == ANTI_CSRF_HEADER)
            .then_some(self.anti_csrf.as_deref())
            .flatten()
            .map(str::as_bytes)
    }
}

/// One thing the core asked to do to the response.
enum Op {
    Cookie(CookieSpec),
    Header(&'static str, String),
    Append(&'static str, String),
}

/// A [`ResponseSink`] that records, so that the core runs without the GIL
/// and the response is written afterwards, with it. No `Debug`: it holds
/// token values.
#[derive(Default)]
pub(crate) struct Recorder(Vec<Op>);

impl ResponseSink for Recorder {
    fn set_cookie(&mut self, cookie: CookieSpec) {
        self.0.push(Op::Cookie(cookie));
    }
    fn set_header(&mut self, name: &'static str, value: &str) {
        self.0.push(Op::Header(name, value.to_owned()));
    }
    fn append_to_list_header(&mut self, name: &'static str, value: &str) {
        self.0.push(Op::Append(name, value.to_owned()));
    }
}

impl Recorder {
    /// Replays the operations onto `writer`, a Python object with
    /// `set_cookie(name, value, expires, path, domain, secure, httponly,
    /// samesite)`, `set_header(name, value)` and `append_header(name,
    /// value)` (see `tessera_django._response`). `expires` is the cookie's
    /// `Expires` date as text (`Thu, 01 Jan 1970 00:00:00 GMT` when clearing).
    fn apply(self, writer: &Bound<'_, PyAny>) -> PyResult<()> {
        for op in self.0 {
            match op {
                Op::Cookie(c) => writer.call_method1(
                    "set_cookie",
                    (
                        c.name,
                        c.value,
                        tessera::http_date(c.expires_ms),
                        c.path,
                        c.domain,
                        c.secure,
                        c.http_only,
                        c.same_site.as_str(),
                    ),
                )?,
                Op::Header(name, value) => writer.call_method1("set_header", (name, value))?,
                Op::Append(name, value) => writer.call_method1("append_header", (name, value))?,
            };
        }
        Ok(())
    }

    /// Writes what was recorded to `writer`, then returns the core's result
    /// as Python sees it. Cookies cleared before an error are written before
    /// the error is raised, as the seed documents.
    pub(crate) fn finish<T>(
        self,
        py: Python<'_>,
        writer: &Bound<'_, PyAny>,
        result: tessera::Result<T>,
    ) -> PyResult<T> {
        if let Err(e) = self.apply(writer) {
            return Err(general_from(py, "could not write to the response", e));
        }
        result.map_err(|e| crate::errors::to_py(py, e))
    }
}

/// A user id from Python: a `str`, or an `int` that fits in 64 bits. `bool`
/// is an `int` in Python but not a user id.
pub(crate) fn user_id_from_py(value: &Bound<'_, PyAny>) -> PyResult<UserId> {
    let py = value.py();
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(UserId::from(s.to_str()?.to_owned()));
    }
    if value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>() {
        return value
            .extract::<i64>()
            .map(UserId::from)
            .map_err(|_| general(py, "an integer user id must fit in 64 bits"));
    }
    Err(general(
        py,
        format!(
            "user_id must be a str or an int, not {}",
            value
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into())
        ),
    ))
}

/// A user id as Python sees it: `str` or `int`, as it was given.
pub(crate) fn user_id_to_py(py: Python<'_>, id: &UserId) -> Py<PyAny> {
    let object = match id {
        UserId::Str(s) => s.into_pyobject(py).map(|o| o.into_any().unbind()),
        UserId::Int(i) => i.into_pyobject(py).map(|o| o.into_any().unbind()),
    };
    match object {
        Ok(o) => o,
        Err(_) => py.None(),
    }
}
