//! The Python classes: `Manager`, `Session` and `ManualClock`.

use std::sync::Arc;
use std::time::Duration;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict};
use serde_json::Value;
use tessera::{SessionDevice, SessionManager};
use tessera_sqlx::SqlStore;

use crate::errors::{general, to_py};
use crate::io::{user_id_from_py, user_id_to_py, Recorder, RequestValues, Target, Wanted};
use crate::runtime::{awaitable, block_on, run};
use crate::{config, stores};

/// The deepest nesting of arrays and objects accepted in a JWT payload or
/// session info: serde_json's recursion limit refuses 128 levels, and 127
/// survive every later read (the token's claims, the stored row).
pub(crate) const MAX_JSON_DEPTH: usize = 127;

/// How deeply arrays and objects nest in the JSON `text` (0 for a scalar).
/// One pass over the bytes; brackets inside strings are skipped.
fn json_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text.as_bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Parses JSON text from the Python side (`tessera_django._json.dumps`),
/// before anything is written: a value nested too deeply is refused with
/// the limit, not as "not valid JSON".
fn json_in(py: Python<'_>, what: &str, text: &str) -> PyResult<Value> {
    let depth = json_depth(text);
    if depth > MAX_JSON_DEPTH {
        return Err(general(
            py,
            format!(
                "{what} is nested too deeply: {depth} levels of lists and dicts; \
                 at most {MAX_JSON_DEPTH} are supported"
            ),
        ));
    }
    serde_json::from_str(text).map_err(|_| general(py, format!("{what} is not valid JSON")))
}

fn json_out(py: Python<'_>, value: &Value) -> PyResult<String> {
    serde_json::to_string(value).map_err(|_| general(py, "session info could not be serialised"))
}

/// A session manager: the core's `SessionManager` over a cached store.
/// Immutable; the Python side builds a new one when settings change.
#[pyclass(name = "Manager", module = "tessera_django._native", frozen)]
pub(crate) struct PyManager {
    inner: SessionManager,
    store: SqlStore,
}

#[pymethods]
impl PyManager {
    /// Connects to `url` (pool cached per URL), loads or creates the keys and
    /// returns a manager configured by `config` (`SUPER_TOKENS` merged with
    /// the defaults).
    #[staticmethod]
    #[pyo3(signature = (url, config, *, pool_size = 10, acquire_timeout = 5.0, key_function = None, clock = None))]
    fn connect(
        py: Python<'_>,
        url: &str,
        config: &Bound<'_, PyDict>,
        pool_size: u32,
        acquire_timeout: f64,
        key_function: Option<Py<PyAny>>,
        clock: Option<PyRef<'_, PyManualClock>>,
    ) -> PyResult<Self> {
        let timeout = stores::timeout(py, acquire_timeout)?;
        let clock = clock.map(|c| c.0.clone());
        let config = config::build(config, key_function, clock).map_err(|e| to_py(py, e))?;
        let (inner, store) = block_on(py, async {
            let store = stores::get(url, pool_size, timeout).await?;
            let manager =
                SessionManager::with_shared_store(config, Arc::new(store.clone())).await?;
            Ok((manager, store))
        })
        .map_err(|e| to_py(py, e))?;
        Ok(PyManager { inner, store })
    }

    /// Whether the manager's connection pool has been closed (by
    /// `close_stores`); the Python side then builds a new manager.
    #[getter]
    fn is_closed(&self) -> bool {
        match &self.store {
            SqlStore::Sqlite(s) => s.pool().is_closed(),
            SqlStore::Postgres(s) => s.pool().is_closed(),
            SqlStore::MySql(s) => s.pool().is_closed(),
            _ => false,
        }
    }

    /// The configured session-expired status (default 401).
    #[getter]
    fn session_expired_status(&self) -> u16 {
        self.inner.config().session_expired_status()
    }

    /// The names of the id-refresh, access and refresh cookies
    /// (`COOKIE_NAME_PREFIX` applied).
    #[getter]
    fn cookie_names(&self) -> (&'static str, &'static str, &'static str) {
        let c = self.inner.config();
        (
            c.id_refresh_token_cookie_name(),
            c.access_token_cookie_name(),
            c.refresh_token_cookie_name(),
        )
    }

    /// `(refresh path, sign-out path)` of the current SDK's API when the
    /// configuration allows the current SDK (`CURRENT_SDK`), else `None`.
    #[getter]
    fn current_sdk_paths(&self) -> Option<(String, String)> {
        let c = self.inner.config();
        Some((
            c.current_sdk_refresh_path()?.to_owned(),
            c.current_sdk_signout_path()?.to_owned(),
        ))
    }

    /// The access-token public keys as `(JWKS JSON, max-age seconds)`, or
    /// `None` in HS256 mode (its key is a secret, never published).
    fn jwks(&self, py: Python<'_>) -> PyResult<Option<(String, u64)>> {
        let manager = self.inner.clone();
        let doc =
            block_on(py, async move { Ok(manager.jwks().await) }).map_err(|e| to_py(py, e))?;
        Ok(doc.map(|d| (d.json, d.max_age_secs)))
    }

    /// The manager's clock, in milliseconds since the epoch.
    #[getter]
    fn now_ms(&self) -> i64 {
        self.inner.config().clock().now_ms()
    }

    /// `response`: a Django `HttpResponse` (written directly) or one of
    /// `tessera_django._response`'s writers. With `request` (the sign-in
    /// request), its `st-auth-mode` preference chooses the transport within
    /// what the configuration allows (docs/PROTOCOL.md §9.2); without, the
    /// default transport (the reference profile when allowed).
    ///
    /// The session records the device (docs/PROTOCOL.md §9.8): the sign-in
    /// request's `META["HTTP_USER_AGENT"]`, its `META["REMOTE_ADDR"]` when
    /// `RECORD_CLIENT_ADDRESS` is on (an address that is not an IP is
    /// ignored), and `device_label`.
    #[pyo3(signature = (response, user_id, jwt_payload_json, session_info_json, request = None, device_label = None))]
    #[allow(clippy::too_many_arguments)]
    fn create_new_session(
        &self,
        py: Python<'_>,
        response: &Bound<'_, PyAny>,
        user_id: &Bound<'_, PyAny>,
        jwt_payload_json: &str,
        session_info_json: &str,
        request: Option<&Bound<'_, PyAny>>,
        device_label: Option<String>,
    ) -> PyResult<PySession> {
        let target = Target::of(response)?;
        let user_id = user_id_from_py(user_id)?;
        let payload = json_in(py, "jwt_payload", jwt_payload_json)?;
        let info = json_in(py, "session_info", session_info_json)?;
        let (request, device) = sign_in_request(request, self.inner.config(), device_label)?;
        let manager = self.inner.clone();
        // Always writes to the database: straight to the runtime.
        let (out, result) = run(py, false, async move {
            let mut out = Recorder::default();
            let result = create(&manager, request, device, &mut out, user_id, payload, info).await;
            (out, result)
        })
        .map_err(|e| to_py(py, e))?;
        out.finish_to(py, &target, result).map(PySession::new)
    }

    /// Verifies the session of a Django `request` (cookies from
    /// `request.COOKIES`, the `anti-csrf` header from `request.META`), read
    /// here without any Python-level code in between.
    #[pyo3(signature = (request, response, enable_csrf_protection))]
    fn get_session(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyAny>,
        response: &Bound<'_, PyAny>,
        enable_csrf_protection: bool,
    ) -> PyResult<PySession> {
        let target = Target::of(response)?;
        let request =
            RequestValues::from_django(request, Wanted::AccessAndAntiCsrf, self.inner.config())?;
        let manager = self.inner.clone();
        // Without blacklisting (and outside the first use of a refreshed
        // token) nothing is awaited: the first inline poll finishes it.
        let (out, result) = run(py, true, async move {
            let mut out = Recorder::default();
            let result = manager
                .get_session(&request, &mut out, enable_csrf_protection)
                .await;
            (out, result)
        })
        .map_err(|e| to_py(py, e))?;
        out.finish_to(py, &target, result).map(PySession::new)
    }

    /// The refresh API for a Django `request` (cookies from `request.COOKIES`).
    #[pyo3(signature = (request, response))]
    fn refresh_session(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyAny>,
        response: &Bound<'_, PyAny>,
    ) -> PyResult<PySession> {
        let target = Target::of(response)?;
        let request = RequestValues::from_django(request, Wanted::Refresh, self.inner.config())?;
        let manager = self.inner.clone();
        // Inline first poll: a request without the cookies, or with a token
        // that cannot be opened, is answered without the database.
        let (out, result) = run(py, true, async move {
            let mut out = Recorder::default();
            let result = manager.refresh_session(&request, &mut out).await;
            (out, result)
        })
        .map_err(|e| to_py(py, e))?;
        out.finish_to(py, &target, result).map(PySession::new)
    }

    fn get_session_info(&self, py: Python<'_>, session_handle: &str) -> PyResult<String> {
        let value =
            block_on(py, self.inner.get_session_info(session_handle)).map_err(|e| to_py(py, e))?;
        json_out(py, &value)
    }

    fn update_session_info(
        &self,
        py: Python<'_>,
        session_handle: &str,
        info_json: &str,
    ) -> PyResult<()> {
        let info = json_in(py, "session_info", info_json)?;
        block_on(py, self.inner.update_session_info(session_handle, &info))
            .map_err(|e| to_py(py, e))
    }

    fn revoke_session(&self, py: Python<'_>, session_handle: String) -> PyResult<bool> {
        let manager = self.inner.clone();
        run(py, false, async move {
            manager.revoke_session(&session_handle).await
        })
        .and_then(|deleted| deleted)
        .map_err(|e| to_py(py, e))
    }

    fn revoke_all_sessions_for_user(
        &self,
        py: Python<'_>,
        user_id: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let user_id = user_id_from_py(user_id)?;
        block_on(py, self.inner.revoke_all_sessions_for_user(&user_id)).map_err(|e| to_py(py, e))
    }

    fn get_all_session_handles_for_user(
        &self,
        py: Python<'_>,
        user_id: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<String>> {
        let user_id = user_id_from_py(user_id)?;
        block_on(py, self.inner.get_all_session_handles_for_user(&user_id))
            .map_err(|e| to_py(py, e))
    }

    /// The user's live sessions, oldest first, each a dict (see
    /// [`summary_dict`]): `tessera_django.supertokens.get_all_sessions_for_user`,
    /// the admin and `manage.py tessera_sessions`.
    fn list_sessions_for_user(
        &self,
        py: Python<'_>,
        user_id: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<Py<PyDict>>> {
        let user_id = user_id_from_py(user_id)?;
        let rows =
            block_on(py, self.inner.list_sessions_for_user(&user_id)).map_err(|e| to_py(py, e))?;
        rows.iter().map(|r| summary_dict(py, r)).collect()
    }

    /// Deletes expired sessions in batches; returns how many.
    #[pyo3(signature = (batch_size = 1000))]
    fn remove_expired_sessions(&self, py: Python<'_>, batch_size: u32) -> PyResult<u64> {
        block_on(py, self.inner.remove_expired_sessions(batch_size, |_| {}))
            .map_err(|e| to_py(py, e))
    }

    fn count_expired_sessions(&self, py: Python<'_>) -> PyResult<u64> {
        block_on(py, self.inner.count_expired_sessions()).map_err(|e| to_py(py, e))
    }

    /// Replaces the access-token signing key now.
    fn rotate_signing_key(&self, py: Python<'_>) -> PyResult<()> {
        block_on(py, self.inner.rotate_signing_key()).map_err(|e| to_py(py, e))
    }

    // The async API (`tessera_django.supertokens.a*`): each returns an
    // `asyncio.Future` of the running loop, resolved on the loop's thread
    // (see `runtime::awaitable`). Inputs are read and checked here, before
    // anything is started, exactly as by the blocking methods above.

    #[pyo3(signature = (response, user_id, jwt_payload_json, session_info_json, request = None, device_label = None))]
    #[allow(clippy::too_many_arguments)]
    fn acreate_new_session(
        &self,
        py: Python<'_>,
        response: &Bound<'_, PyAny>,
        user_id: &Bound<'_, PyAny>,
        jwt_payload_json: &str,
        session_info_json: &str,
        request: Option<&Bound<'_, PyAny>>,
        device_label: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        Target::of(response)?;
        let response = response.clone().unbind();
        let user_id = user_id_from_py(user_id)?;
        let payload = json_in(py, "jwt_payload", jwt_payload_json)?;
        let info = json_in(py, "session_info", session_info_json)?;
        let (request, device) = sign_in_request(request, self.inner.config(), device_label)?;
        let manager = self.inner.clone();
        awaitable(
            py,
            false,
            async move {
                let mut out = Recorder::default();
                let result =
                    create(&manager, request, device, &mut out, user_id, payload, info).await;
                (out, result)
            },
            move |py, done| session_out(py, response, done),
        )
    }

    #[pyo3(signature = (request, response, enable_csrf_protection))]
    fn aget_session(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyAny>,
        response: &Bound<'_, PyAny>,
        enable_csrf_protection: bool,
    ) -> PyResult<Py<PyAny>> {
        Target::of(response)?;
        let response = response.clone().unbind();
        let request =
            RequestValues::from_django(request, Wanted::AccessAndAntiCsrf, self.inner.config())?;
        let manager = self.inner.clone();
        awaitable(
            py,
            true,
            async move {
                let mut out = Recorder::default();
                let result = manager
                    .get_session(&request, &mut out, enable_csrf_protection)
                    .await;
                (out, result)
            },
            move |py, done| session_out(py, response, done),
        )
    }

    #[pyo3(signature = (request, response))]
    fn arefresh_session(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyAny>,
        response: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        Target::of(response)?;
        let response = response.clone().unbind();
        let request = RequestValues::from_django(request, Wanted::Refresh, self.inner.config())?;
        let manager = self.inner.clone();
        awaitable(
            py,
            true,
            async move {
                let mut out = Recorder::default();
                let result = manager.refresh_session(&request, &mut out).await;
                (out, result)
            },
            move |py, done| session_out(py, response, done),
        )
    }

    fn aget_session_info(&self, py: Python<'_>, session_handle: String) -> PyResult<Py<PyAny>> {
        let manager = self.inner.clone();
        awaitable(
            py,
            false,
            async move { manager.get_session_info(&session_handle).await },
            |py, result| {
                let value = result.map_err(|e| to_py(py, e))?;
                Ok(json_out(py, &value)?.into_pyobject(py)?.into_any().unbind())
            },
        )
    }

    fn aupdate_session_info(
        &self,
        py: Python<'_>,
        session_handle: String,
        info_json: &str,
    ) -> PyResult<Py<PyAny>> {
        let info = json_in(py, "session_info", info_json)?;
        let manager = self.inner.clone();
        awaitable(
            py,
            false,
            async move { manager.update_session_info(&session_handle, &info).await },
            |py, result| {
                result.map_err(|e| to_py(py, e))?;
                Ok(py.None())
            },
        )
    }

    fn arevoke_session(&self, py: Python<'_>, session_handle: String) -> PyResult<Py<PyAny>> {
        let manager = self.inner.clone();
        awaitable(
            py,
            false,
            async move { manager.revoke_session(&session_handle).await },
            |py, result| {
                let deleted = result.map_err(|e| to_py(py, e))?;
                Ok(PyBool::new(py, deleted).to_owned().into_any().unbind())
            },
        )
    }

    fn arevoke_all_sessions_for_user(
        &self,
        py: Python<'_>,
        user_id: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let user_id = user_id_from_py(user_id)?;
        let manager = self.inner.clone();
        awaitable(
            py,
            false,
            async move { manager.revoke_all_sessions_for_user(&user_id).await },
            |py, result| {
                let count = result.map_err(|e| to_py(py, e))?;
                Ok(count.into_pyobject(py)?.into_any().unbind())
            },
        )
    }

    fn aget_all_session_handles_for_user(
        &self,
        py: Python<'_>,
        user_id: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let user_id = user_id_from_py(user_id)?;
        let manager = self.inner.clone();
        awaitable(
            py,
            false,
            async move { manager.get_all_session_handles_for_user(&user_id).await },
            |py, result| {
                let handles = result.map_err(|e| to_py(py, e))?;
                Ok(handles.into_pyobject(py)?.into_any().unbind())
            },
        )
    }

    fn alist_sessions_for_user(
        &self,
        py: Python<'_>,
        user_id: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let user_id = user_id_from_py(user_id)?;
        let manager = self.inner.clone();
        awaitable(
            py,
            false,
            async move { manager.list_sessions_for_user(&user_id).await },
            |py, result| {
                let rows = result.map_err(|e| to_py(py, e))?;
                let dicts = rows
                    .iter()
                    .map(|r| summary_dict(py, r))
                    .collect::<PyResult<Vec<_>>>()?;
                Ok(dicts.into_pyobject(py)?.into_any().unbind())
            },
        )
    }

    /// Clears the three session cookies on `writer` and sends
    /// `id-refresh-token: remove`.
    fn clear_session_cookies(&self, py: Python<'_>, writer: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut out = Recorder::default();
        self.inner.clear_session_cookies(&mut out);
        out.finish(py, writer, Ok(()))
    }

    fn __repr__(&self) -> String {
        format!("<tessera_django._native.Manager {:?}>", self.inner.config())
    }
}

/// A verified session (the core's `Session`).
#[pyclass(name = "Session", module = "tessera_django._native", frozen)]
pub(crate) struct PySession(Arc<tessera::Session>);

#[pymethods]
impl PySession {
    #[getter]
    fn handle(&self) -> &str {
        self.0.handle()
    }

    #[getter]
    fn user_id(&self, py: Python<'_>) -> Py<PyAny> {
        user_id_to_py(py, self.0.user_id())
    }

    #[getter]
    fn jwt_payload_json(&self) -> &str {
        self.0.jwt_payload_json()
    }

    #[getter]
    fn access_token_expiry_ms(&self) -> i64 {
        self.0.access_token_expiry_ms()
    }

    /// Whether this refresh was answered by the refresh grace window: the
    /// client presented a superseded refresh token (another tab or a retried
    /// request had refreshed first) and got the committed session's tokens
    /// instead of a theft report (docs/PROTOCOL.md §3.9).
    fn refresh_converged_within_grace(&self) -> bool {
        self.0.refresh_converged_within_grace()
    }

    fn revoke_session(&self, py: Python<'_>, writer: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut out = Recorder::default();
        let result = block_on(py, self.0.revoke_session(&mut out));
        out.finish(py, writer, result)
    }

    fn get_session_info(&self, py: Python<'_>, writer: &Bound<'_, PyAny>) -> PyResult<String> {
        let mut out = Recorder::default();
        let result = block_on(py, self.0.get_session_info(&mut out));
        let value = out.finish(py, writer, result)?;
        json_out(py, &value)
    }

    fn update_session_info(
        &self,
        py: Python<'_>,
        writer: &Bound<'_, PyAny>,
        info_json: &str,
    ) -> PyResult<()> {
        let info = json_in(py, "session_info", info_json)?;
        let mut out = Recorder::default();
        let result = block_on(py, self.0.update_session_info(&info, &mut out));
        out.finish(py, writer, result)
    }

    fn arevoke_session(&self, py: Python<'_>, writer: Py<PyAny>) -> PyResult<Py<PyAny>> {
        let session = self.0.clone();
        awaitable(
            py,
            false,
            async move {
                let mut out = Recorder::default();
                let result = session.revoke_session(&mut out).await;
                (out, result)
            },
            move |py, (out, result)| {
                out.finish(py, writer.bind(py), result)?;
                Ok(py.None())
            },
        )
    }

    fn aget_session_info(&self, py: Python<'_>, writer: Py<PyAny>) -> PyResult<Py<PyAny>> {
        let session = self.0.clone();
        awaitable(
            py,
            false,
            async move {
                let mut out = Recorder::default();
                let result = session.get_session_info(&mut out).await;
                (out, result)
            },
            move |py, (out, result)| {
                let value = out.finish(py, writer.bind(py), result)?;
                Ok(json_out(py, &value)?.into_pyobject(py)?.into_any().unbind())
            },
        )
    }

    fn aupdate_session_info(
        &self,
        py: Python<'_>,
        writer: Py<PyAny>,
        info_json: &str,
    ) -> PyResult<Py<PyAny>> {
        let info = json_in(py, "session_info", info_json)?;
        let session = self.0.clone();
        awaitable(
            py,
            false,
            async move {
                let mut out = Recorder::default();
                let result = session.update_session_info(&info, &mut out).await;
                (out, result)
            },
            move |py, (out, result)| {
                out.finish(py, writer.bind(py), result)?;
                Ok(py.None())
            },
        )
    }

    fn __repr__(&self) -> String {
        format!("<tessera_django._native.Session {:?}>", self.0.handle())
    }
}

impl PySession {
    fn new(session: tessera::Session) -> Self {
        PySession(Arc::new(session))
    }
}

/// The sign-in request's stated transfer method and the device it signs in
/// from (its user agent, its address when `RECORD_CLIENT_ADDRESS` is on),
/// read before anything is started (`None` request: none), with the
/// application's `label`.
fn sign_in_request(
    request: Option<&Bound<'_, PyAny>>,
    config: &tessera::Config,
    label: Option<String>,
) -> PyResult<(Option<RequestValues>, SessionDevice)> {
    let request = request
        .filter(|r| !r.is_none())
        .map(|r| RequestValues::from_django(r, Wanted::AuthMode, config))
        .transpose()?;
    let mut device = request
        .as_ref()
        .map(SessionDevice::from_request)
        .unwrap_or_default();
    if let Some(address) = request.as_ref().and_then(RequestValues::client_address) {
        device = device.with_client_address(address);
    }
    if let Some(label) = label {
        device = device.with_label(label);
    }
    Ok((request, device))
}

/// `create_new_session`: the transport from the sign-in `request` when
/// there is one (§9.2), else the default one; `device` recorded.
async fn create(
    manager: &SessionManager,
    request: Option<RequestValues>,
    device: SessionDevice,
    out: &mut Recorder,
    user_id: tessera::UserId,
    payload: Value,
    info: Value,
) -> tessera::Result<tessera::Session> {
    // No request: no `st-auth-mode`, so the default transport.
    let transport = manager.transport_for_new_session(&request.unwrap_or_default());
    manager
        .create_new_session_with_device(transport, out, user_id, payload, info, device)
        .await
}

/// A [`tessera::SessionSummary`] as the dict
/// `tessera_django.supertokens.get_all_sessions_for_user` returns: times in
/// milliseconds since the epoch (`last_refreshed_at` `None` before the first
/// refresh), device fields `None` when not recorded.
fn summary_dict(py: Python<'_>, row: &tessera::SessionSummary) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "session_handle"), &row.session_handle)?;
    d.set_item(intern!(py, "created_at"), row.created_at_ms)?;
    d.set_item(intern!(py, "last_refreshed_at"), row.last_refreshed_at_ms)?;
    d.set_item(intern!(py, "last_active_at"), row.last_active_at_ms())?;
    d.set_item(intern!(py, "expires_at"), row.expires_at_ms)?;
    d.set_item(intern!(py, "user_agent"), row.user_agent.as_deref())?;
    d.set_item(intern!(py, "client_address"), row.client_address.as_deref())?;
    d.set_item(intern!(py, "device_label"), row.device_label.as_deref())?;
    Ok(d.unbind())
}

/// The end of an async create, get or refresh on the loop's thread: the
/// recorded cookies and headers written to `response`, then the session or
/// the error.
fn session_out(
    py: Python<'_>,
    response: Py<PyAny>,
    (out, result): (Recorder, tessera::Result<tessera::Session>),
) -> PyResult<Py<PyAny>> {
    let target = Target::of(response.bind(py))?;
    let session = out.finish_to(py, &target, result)?;
    Ok(Py::new(py, PySession::new(session))?.into_any())
}

/// A clock that moves only when told to, for tests (`tessera_django.testing`).
#[pyclass(name = "ManualClock", module = "tessera_django._native", frozen)]
pub(crate) struct PyManualClock(Arc<tessera::ManualClock>);

#[pymethods]
impl PyManualClock {
    /// A clock showing `now_ms` (default: the current time).
    #[new]
    #[pyo3(signature = (now_ms = None))]
    fn new(now_ms: Option<i64>) -> Self {
        PyManualClock(Arc::new(match now_ms {
            Some(ms) => tessera::ManualClock::new(ms),
            None => tessera::ManualClock::starting_now(),
        }))
    }

    /// Moves the clock forward by `seconds` (backwards if negative).
    fn advance(&self, py: Python<'_>, seconds: f64) -> PyResult<()> {
        let ms = seconds * 1000.0;
        if !ms.is_finite() || ms.abs() > 1e15 {
            return Err(general(py, "advance() needs a finite number of seconds"));
        }
        if ms >= 0.0 {
            self.0.advance(Duration::from_millis(ms as u64));
        } else {
            self.0.set(self.current().saturating_sub((-ms) as i64));
        }
        Ok(())
    }

    /// Sets the clock (milliseconds since the epoch).
    fn set(&self, now_ms: i64) {
        self.0.set(now_ms);
    }

    /// The time shown, in milliseconds since the epoch.
    #[getter]
    fn now_ms(&self) -> i64 {
        self.current()
    }
}

impl PyManualClock {
    fn current(&self) -> i64 {
        tessera::Clock::now_ms(&*self.0)
    }
}

/// Adds the CORS preflight headers the front-end SDK needs to `writer`.
#[pyfunction]
pub(crate) fn set_headers_for_options_api(
    py: Python<'_>,
    writer: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let mut out = Recorder::default();
    tessera::set_headers_for_options_api(&mut out);
    out.finish(py, writer, Ok(()))
}

/// Checks a configuration without touching a database; raises
/// `SuperTokensGeneralException` with what to change.
#[pyfunction]
#[pyo3(signature = (config, key_function = None))]
pub(crate) fn validate_config(
    py: Python<'_>,
    config: &Bound<'_, PyDict>,
    key_function: Option<Py<PyAny>>,
) -> PyResult<()> {
    config::build(config, key_function, None)
        .map(drop)
        .map_err(|e| to_py(py, e))
}

/// What `manage.py check` warns about in a configuration that
/// [`validate_config`] accepts: durations outside the recommended ranges.
#[pyfunction]
#[pyo3(signature = (config, key_function = None))]
pub(crate) fn config_warnings(
    py: Python<'_>,
    config: &Bound<'_, PyDict>,
    key_function: Option<Py<PyAny>>,
) -> PyResult<Vec<String>> {
    config::recommended_range_warnings(config, key_function.is_some()).map_err(|e| to_py(py, e))
}

/// Panics inside the core's runtime, for the test that proves a panic
/// reaches Python as `SuperTokensGeneralException` (not PyO3's
/// `PanicException`, which is not even an `Exception`).
#[pyfunction]
pub(crate) fn _panic_for_tests(py: Python<'_>) -> PyResult<()> {
    block_on(py, async {
        if py_version_is_known() {
            panic!("a deliberate panic, to test the panic guard");
        }
        Ok(())
    })
    .map_err(|e| to_py(py, e))
}

/// Always true; keeps the compiler from seeing the panic above as the only
/// path (an unconditional `panic!` would make the `Ok` unreachable).
fn py_version_is_known() -> bool {
    !env!("CARGO_PKG_VERSION").is_empty()
}
