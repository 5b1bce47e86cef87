//! What the binding reads from a Django request and writes to a response.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyInt, PyString, PyTuple, PyType};
use tessera::{
    Config, CookieSpec, RecordedResponse, RequestSource, ResponseChange, ResponseSink, Transport,
    UserId, ACCESS_TOKEN_COOKIE, ANTI_CSRF_HEADER, AUTH_MODE_HEADER, ID_REFRESH_TOKEN_COOKIE,
    REFRESH_TOKEN_COOKIE,
};

use crate::errors::{general, general_from};

/// The parts of a request the protocol reads: three cookies and one header,
/// read from the Django request's `COOKIES` and `META` by
/// [`RequestValues::from_django`].
///
/// Values are passed on as they are, empty ones included: the core treats a
/// cleared (empty) id-refresh cookie sent back by a client as "no session".
#[derive(Default)]
pub(crate) struct RequestValues {
    /// The names of the id-refresh, access and refresh cookies as the
    /// configuration spells them (`COOKIE_NAME_PREFIX`).
    names: [&'static str; 3],
    id_refresh: Option<String>,
    access: Option<String>,
    refresh: Option<String>,
    anti_csrf: Option<String>,
    /// The raw `Cookie` header (`META["HTTP_COOKIE"]`). Django's `COOKIES`
    /// keeps one value per name, so two cookies of one name (cookie tossing
    /// from a sibling subdomain) can only be seen here.
    cookie_header: Option<String>,
    /// When the Django-parsing fast path read the cookies: the two names it
    /// read and whether the header carries two different copies of one of
    /// them (judged in the same pass, under the same size cap as the scan in
    /// `has_conflicting_cookies`); `None` when the values came from
    /// `COOKIES`.
    fast_conflict: Option<([&'static str; 2], bool)>,
    /// `Authorization` (`META["HTTP_AUTHORIZATION"]`), read only when the
    /// configuration allows the current SDK's header mode (a bearer token).
    authorization: Option<String>,
    /// `st-auth-mode` (`META["HTTP_ST_AUTH_MODE"]`), read only when the
    /// configuration allows the current SDK.
    auth_mode: Option<String>,
    /// `User-Agent` (`META["HTTP_USER_AGENT"]`), read only for a sign-in
    /// request (the session's device, docs/PROTOCOL.md §3.1).
    user_agent: Option<String>,
    /// `META["REMOTE_ADDR"]`, read only for a sign-in request and only with
    /// `RECORD_CLIENT_ADDRESS` on (personal data).
    remote_addr: Option<String>,
}

/// `value` as text if it is a `str` (anything else counts as absent).
fn text_of(value: Option<Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    match value {
        Some(v) => match v.cast::<PyString>() {
            Ok(s) => Ok(Some(s.to_str()?.to_owned())),
            Err(_) => Ok(None),
        },
        None => Ok(None),
    }
}

/// [`text_of`] for values that describe a client and are never a reason to
/// refuse it (the user agent, the address): a string that is not valid
/// Unicode (lone surrogates, which a Python caller can put in `META`) has
/// them replaced by U+FFFD instead of raising.
fn lossy_text_of(value: Option<Bound<'_, PyAny>>) -> Option<String> {
    value.and_then(|v| {
        v.cast::<PyString>()
            .ok()
            .map(|s| s.to_string_lossy().into_owned())
    })
}

/// `mapping.get(key)`: a direct lookup for a `dict` (what Django uses for
/// `COOKIES` and `META`), the `get` method for anything else.
fn lookup<'py>(
    mapping: &Bound<'py, PyAny>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Ok(dict) = mapping.cast::<PyDict>() {
        return dict.get_item(key);
    }
    let value = mapping.call_method1(intern!(mapping.py(), "get"), (key,))?;
    Ok((!value.is_none()).then_some(value))
}

/// The `COOKIES` key of a session cookie: interned once for the reference library's
/// names, interned per call for prefixed ones.
fn cookie_key<'py>(py: Python<'py>, name: &'static str) -> Bound<'py, PyString> {
    match name {
        ID_REFRESH_TOKEN_COOKIE => intern!(py, ID_REFRESH_TOKEN_COOKIE).clone(),
        ACCESS_TOKEN_COOKIE => intern!(py, ACCESS_TOKEN_COOKIE).clone(),
        REFRESH_TOKEN_COOKIE => intern!(py, REFRESH_TOKEN_COOKIE).clone(),
        prefixed => PyString::intern(py, prefixed),
    }
}

/// Which cookies an operation reads besides `sIdRefreshToken`.
#[derive(Clone, Copy)]
pub(crate) enum Wanted {
    /// `sAccessToken` and the `anti-csrf` header (`get_session`).
    AccessAndAntiCsrf,
    /// `sRefreshToken` (`refresh_session`).
    Refresh,
    /// No cookie: only the `st-auth-mode` header, the sign-in request's
    /// stated transfer method (`create_new_session(..., request=...)`).
    AuthMode,
}

impl RequestValues {
    /// Reads a Django request (`HttpRequest`, or anything with the same
    /// `COOKIES` and `META` mappings, such as DRF's `Request`) directly, with
    /// interned keys: `COOKIES` for the cookies, `META["HTTP_ANTI_CSRF"]` for
    /// the `anti-csrf` header. No `COOKIES` is a General error; no `META`
    /// means no header. Cookie names are `config`'s (`COOKIE_NAME_PREFIX`).
    pub(crate) fn from_django(
        request: &Bound<'_, PyAny>,
        wanted: Wanted,
        config: &Config,
    ) -> PyResult<Self> {
        let py = request.py();
        let names = [
            config.id_refresh_token_cookie_name(),
            config.access_token_cookie_name(),
            config.refresh_token_cookie_name(),
        ];
        let mut values = RequestValues {
            names,
            ..RequestValues::default()
        };
        // The current SDK's headers are looked up only when it is allowed:
        // with the reference profile alone a request costs what it did.
        let header_mode = config.allows_transport(Transport::CurrentHeader);
        let current = header_mode || config.allows_transport(Transport::CurrentCookie);
        if let Wanted::AuthMode = wanted {
            if let Ok(meta) = request.getattr(intern!(py, "META")) {
                if current {
                    values.auth_mode = text_of(lookup(&meta, intern!(py, AUTH_MODE_META))?)?;
                }
                values.user_agent = lossy_text_of(lookup(&meta, intern!(py, USER_AGENT_META))?);
                if config.record_client_address() {
                    values.remote_addr =
                        lossy_text_of(lookup(&meta, intern!(py, REMOTE_ADDR_META))?);
                }
            }
            return Ok(values);
        }
        let meta = request.getattr(intern!(py, "META")).ok();
        let cookie_header = match &meta {
            Some(meta) => text_of(lookup(meta, intern!(py, COOKIE_META))?)?,
            None => None,
        };
        let second = match wanted {
            Wanted::Refresh => 2,
            _ => 1,
        };
        // The session cookies straight from the raw header, with Django's
        // parsing (src/cookies.rs), for a request whose COOKIES Django
        // would compute from that header: a plain WSGIRequest or
        // ASGIRequest that has not computed or been given COOKIES yet.
        // Anything else (a subclass, DRF's Request, COOKIES replaced by
        // middleware or a test) is read through COOKIES, as is a header
        // the fast path declines.
        let fast = match (&meta, is_plain_django_request(request)?) {
            (Some(_), true) => crate::cookies::parse(
                cookie_header.as_deref().unwrap_or(""),
                [names[0], names[second]],
            )
            .map(|found| {
                values.fast_conflict = Some(([names[0], names[second]], found.conflict));
                found.values.map(|v| v.map(str::to_owned))
            }),
            _ => None,
        };
        let [id_refresh, other] = match fast {
            Some(found) => found,
            None => {
                let cookies = match request.getattr(intern!(py, "COOKIES")) {
                    Ok(c) => c,
                    Err(e) if e.is_instance_of::<pyo3::exceptions::PyAttributeError>(py) => {
                        return Err(general(
                            py,
                            format!(
                                "request must be a django.http.HttpRequest, not {}",
                                type_name(request)
                            ),
                        ))
                    }
                    Err(e) => return Err(e),
                };
                [
                    text_of(lookup(&cookies, &cookie_key(py, names[0]))?)?,
                    text_of(lookup(&cookies, &cookie_key(py, names[second]))?)?,
                ]
            }
        };
        values.id_refresh = id_refresh;
        match wanted {
            Wanted::AccessAndAntiCsrf => {
                values.access = other;
                if let Some(meta) = &meta {
                    values.anti_csrf = text_of(lookup(meta, intern!(py, ANTI_CSRF_META))?)?;
                }
            }
            Wanted::Refresh => values.refresh = other,
            Wanted::AuthMode => {}
        }
        values.cookie_header = cookie_header;
        if let Some(meta) = &meta {
            if header_mode {
                values.authorization = text_of(lookup(meta, intern!(py, AUTHORIZATION_META))?)?;
            }
            if current {
                values.auth_mode = text_of(lookup(meta, intern!(py, AUTH_MODE_META))?)?;
            }
        }
        Ok(values)
    }
}

impl RequestValues {
    /// The sign-in request's `REMOTE_ADDR` as an IP address (read only with
    /// `RECORD_CLIENT_ADDRESS` on); anything that is not an IP address, such
    /// as a host name or an address with a port, is ignored, never an error.
    pub(crate) fn client_address(&self) -> Option<std::net::IpAddr> {
        self.remote_addr.as_deref()?.trim().parse().ok()
    }
}

static PLAIN_REQUEST_TYPES: PyOnceLock<(Py<PyType>, Py<PyType>)> = PyOnceLock::new();

/// Whether `request` is exactly Django's `WSGIRequest` or `ASGIRequest`
/// and has no `COOKIES` yet (Django computes it lazily from
/// `META["HTTP_COOKIE"]` and keeps it in the instance's `__dict__`; a
/// middleware or a test may also assign it there).
fn is_plain_django_request(request: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = request.py();
    let (wsgi, asgi) = PLAIN_REQUEST_TYPES.get_or_try_init(py, || -> PyResult<_> {
        let wsgi = py
            .import("django.core.handlers.wsgi")?
            .getattr("WSGIRequest")?
            .cast_into::<PyType>()?;
        let asgi = py
            .import("django.core.handlers.asgi")?
            .getattr("ASGIRequest")?
            .cast_into::<PyType>()?;
        Ok((wsgi.unbind(), asgi.unbind()))
    })?;
    let ty = request.get_type();
    if !(ty.is(wsgi.bind(py)) || ty.is(asgi.bind(py))) {
        return Ok(false);
    }
    let Ok(dict) = request.getattr(intern!(py, "__dict__")) else {
        return Ok(false);
    };
    let Ok(dict) = dict.cast::<PyDict>() else {
        return Ok(false);
    };
    Ok(!dict.contains(intern!(py, "COOKIES"))?)
}

/// The WSGI name of the `anti-csrf` request header in `request.META`.
const ANTI_CSRF_META: &str = "HTTP_ANTI_CSRF";
/// The WSGI name of the `Cookie` request header in `request.META`.
const COOKIE_META: &str = "HTTP_COOKIE";
/// The WSGI name of the `Authorization` request header in `request.META`.
const AUTHORIZATION_META: &str = "HTTP_AUTHORIZATION";
/// The WSGI name of the `st-auth-mode` request header in `request.META`.
const AUTH_MODE_META: &str = "HTTP_ST_AUTH_MODE";
/// The WSGI name of the `User-Agent` request header in `request.META`.
const USER_AGENT_META: &str = "HTTP_USER_AGENT";
/// Where the request came from, as the WSGI or ASGI server (or a proxy
/// middleware of the application) set it in `request.META`.
const REMOTE_ADDR_META: &str = "REMOTE_ADDR";
/// A `Cookie` header longer than this is not scanned for conflicting
/// copies, as the core's own `http` implementations ignore such a header
/// (browsers send at most a few KiB per site).
const MAX_COOKIE_HEADER_LEN: usize = 64 * 1024;

/// The name of `value`'s type, for error messages.
fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

impl RequestSource for RequestValues {
    fn cookie(&self, name: &str) -> Option<&[u8]> {
        let [id_refresh, access, refresh] = self.names;
        if name == id_refresh {
            self.id_refresh.as_deref()
        } else if name == access {
            self.access.as_deref()
        } else if name == refresh {
            self.refresh.as_deref()
        } else {
            None
        }
        .map(str::as_bytes)
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        match name {
            ANTI_CSRF_HEADER => self.anti_csrf.as_deref(),
            "authorization" => self.authorization.as_deref(),
            AUTH_MODE_HEADER => self.auth_mode.as_deref(),
            "user-agent" => self.user_agent.as_deref(),
            _ => None,
        }
        .map(str::as_bytes)
    }

    /// Two cookies of one of `names` with different values in the raw
    /// `Cookie` header (Django's `COOKIES` would silently keep one of them).
    /// The fast path has answered this while reading the values; otherwise
    /// (values from `COOKIES`) it is an extra scan.
    fn has_conflicting_cookies(&self, names: &[&str]) -> bool {
        if let Some((parsed, conflict)) = self.fast_conflict {
            if names == parsed {
                return conflict;
            }
        }
        self.cookie_header.as_deref().is_some_and(|header| {
            header.len() <= MAX_COOKIE_HEADER_LEN
                && tessera::cookie_headers_conflict([header.as_bytes()], names)
        })
    }
}

/// A [`ResponseSink`] that records (the core's [`RecordedResponse`]), so
/// that the core runs without the GIL and the response is written
/// afterwards, with it.
#[derive(Default)]
pub(crate) struct Recorder(RecordedResponse);

impl ResponseSink for Recorder {
    fn set_cookie(&mut self, cookie: CookieSpec) {
        self.0.set_cookie(cookie);
    }
    fn set_header(&mut self, name: &'static str, value: &str) {
        self.0.set_header(name, value);
    }
    fn append_to_list_header(&mut self, name: &'static str, value: &str) {
        self.0.append_to_list_header(name, value);
    }
}

static WRITER_TYPES: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();

/// Where the recorded operations go.
pub(crate) enum Target<'py> {
    /// A Django `HttpResponse` (or anything with its `set_cookie`,
    /// `has_header`, `__getitem__` and `__setitem__`): written directly.
    Response(Bound<'py, PyAny>),
    /// One of `tessera_django._response`'s writers (`ResponseWriter`,
    /// `PendingResponse`): its methods are called.
    Writer(Bound<'py, PyAny>),
}

impl<'py> Target<'py> {
    /// Checks `response` before any work is done (so that a create with a
    /// wrong argument leaves no row behind).
    pub(crate) fn of(response: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = response.py();
        let writers = WRITER_TYPES.get_or_try_init(py, || -> PyResult<Py<PyTuple>> {
            let module = py.import("tessera_django._response")?;
            let types = [
                module.getattr("ResponseWriter")?.cast_into::<PyType>()?,
                module.getattr("PendingResponse")?.cast_into::<PyType>()?,
            ];
            Ok(PyTuple::new(py, types)?.unbind())
        })?;
        if response.is_instance(writers.bind(py).as_any())? {
            return Ok(Target::Writer(response.clone()));
        }
        if response.hasattr(intern!(py, "set_cookie"))?
            && response.hasattr(intern!(py, "has_header"))?
        {
            return Ok(Target::Response(response.clone()));
        }
        Err(general(
            py,
            format!(
                "response must be a django.http.HttpResponse (or a subclass such as \
                 rest_framework.response.Response), not {}",
                type_name(response)
            ),
        ))
    }
}

/// `response.set_cookie(...)` with the core's cookie, as
/// `tessera_django._response.ResponseWriter.set_cookie` does.
fn django_set_cookie(response: &Bound<'_, PyAny>, c: CookieSpec) -> PyResult<()> {
    let py = response.py();
    let kwargs = PyDict::new(py);
    // `expires` is the core's date text, so the cookie's Expires is the
    // token's expiry exactly (Thu, 01 Jan 1970 00:00:00 GMT when clearing).
    // A datetime would make Django send Max-Age and a recomputed Expires.
    kwargs.set_item(intern!(py, "expires"), tessera::http_date(c.expires_ms))?;
    kwargs.set_item(intern!(py, "path"), c.path)?;
    kwargs.set_item(intern!(py, "domain"), c.domain)?;
    kwargs.set_item(intern!(py, "secure"), c.secure)?;
    kwargs.set_item(intern!(py, "httponly"), c.http_only)?;
    kwargs.set_item(intern!(py, "samesite"), c.same_site.as_str())?;
    response.call_method(intern!(py, "set_cookie"), (c.name, c.value), Some(&kwargs))?;
    Ok(())
}

/// Adds `value` to the comma-separated list header `name` unless it is
/// already listed (case-insensitively), as
/// `tessera_django._response.ResponseWriter.append_header` does.
fn django_append_header(response: &Bound<'_, PyAny>, name: &str, value: &str) -> PyResult<()> {
    let py = response.py();
    if response
        .call_method1(intern!(py, "has_header"), (name,))?
        .is_truthy()?
    {
        let existing: String = response.get_item(name)?.extract()?;
        let wanted = value.to_lowercase();
        if existing
            .split(',')
            .any(|item| item.trim().to_lowercase() == wanted)
        {
            return Ok(());
        }
        if !existing.trim().is_empty() {
            return response.set_item(name, format!("{existing}, {value}"));
        }
    }
    response.set_item(name, value)
}

impl Recorder {
    /// Replays the operations onto `target` (see [`Target`]).
    fn apply_to(self, target: &Target<'_>) -> PyResult<()> {
        match target {
            Target::Writer(writer) => self.apply(writer),
            Target::Response(response) => {
                for op in self.0.into_changes() {
                    match op {
                        ResponseChange::SetCookie(c) => django_set_cookie(response, c)?,
                        ResponseChange::SetHeader(name, value) => response.set_item(name, value)?,
                        ResponseChange::AppendToListHeader(name, value) => {
                            django_append_header(response, name, &value)?
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// [`Recorder::finish`] for a [`Target`].
    pub(crate) fn finish_to<T>(
        self,
        py: Python<'_>,
        target: &Target<'_>,
        result: tessera::Result<T>,
    ) -> PyResult<T> {
        let kept = self.keep_for_error(&result);
        if let Err(e) = self.apply_to(target) {
            return Err(general_from(py, "could not write to the response", e));
        }
        result.map_err(|e| attach_recorded(py, crate::errors::to_py(py, e), kept))
    }

    /// Replays the operations onto `writer`, a Python object with
    /// `set_cookie(name, value, expires, path, domain, secure, httponly,
    /// samesite)`, `set_header(name, value)` and `append_header(name,
    /// value)` (see `tessera_django._response`). `expires` is the cookie's
    /// `Expires` date as text (`Thu, 01 Jan 1970 00:00:00 GMT` when clearing).
    fn apply(self, writer: &Bound<'_, PyAny>) -> PyResult<()> {
        for op in self.0.into_changes() {
            match op {
                ResponseChange::SetCookie(c) => writer.call_method1(
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
                ResponseChange::SetHeader(name, value) => {
                    writer.call_method1("set_header", (name, value))?
                }
                ResponseChange::AppendToListHeader(name, value) => {
                    writer.call_method1("append_header", (name, value))?
                }
            };
        }
        Ok(())
    }

    /// Writes what was recorded to `writer`, then returns the core's result
    /// as Python sees it. Cookies cleared before an error are written before
    /// the error is raised, as the reference library documents.
    pub(crate) fn finish<T>(
        self,
        py: Python<'_>,
        writer: &Bound<'_, PyAny>,
        result: tessera::Result<T>,
    ) -> PyResult<T> {
        let kept = self.keep_for_error(&result);
        if let Err(e) = self.apply(writer) {
            return Err(general_from(py, "could not write to the response", e));
        }
        result.map_err(|e| attach_recorded(py, crate::errors::to_py(py, e), kept))
    }

    /// A copy of what was recorded when `result` is a session-expired error
    /// (Unauthorized, TryRefreshToken, token theft), for
    /// [`attach_recorded`].
    fn keep_for_error<T>(&self, result: &tessera::Result<T>) -> Option<RecordedResponse> {
        match result {
            Err(e) if e.is_session_expired() => Some(self.0.clone()),
            _ => None,
        }
    }
}

/// Name of the exception attribute holding what the core wrote to the
/// response before it raised (a `tessera_django._response.PendingResponse`).
const RECORDED_ATTRIBUTE: &str = "_tessera_response";

/// Attaches `recorded` to the exception `err` as a `PendingResponse`.
///
/// The view that raises discards the response the cookies were written to,
/// so `SuperTokensMiddleware` replays these on the response it makes
/// instead. This is how the answer clears the tokens the way the request
/// carried them: the reference profile's three cookies, the current SDK's
/// two cookies and `front-token: remove`, or header mode's empty
/// `st-access-token` and `st-refresh-token` (docs/PROTOCOL.md §9.5), and
/// only when the core cleared at all (§4.2). If the attribute cannot be set
/// the middleware falls back to clearing the reference profile's cookies,
/// as it did before there was more than one profile.
fn attach_recorded(py: Python<'_>, err: PyErr, recorded: Option<RecordedResponse>) -> PyErr {
    let Some(recorded) = recorded else {
        return err;
    };
    let attached = (|| -> PyResult<()> {
        let pending = py
            .import("tessera_django._response")?
            .getattr("PendingResponse")?
            .call0()?;
        Recorder(recorded).apply(&pending)?;
        err.value(py).setattr(RECORDED_ATTRIBUTE, pending)
    })();
    drop(attached);
    err
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
