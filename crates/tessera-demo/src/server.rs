//! The demo web application: sign up / sign in, the session's details,
//! session info editing, the user's sessions, log out (here or everywhere).
//!
//! The page is plain HTML and JavaScript served from the binary
//! (`assets/`); it talks to the JSON API below. Sessions come from
//! `tessera-axum`: the [`Session`] extractor on every protected route, the
//! [`Tessera`] handle to log in, and the ready refresh API at the configured
//! refresh path.
//!
//! | route | what |
//! |---|---|
//! | `GET /` `GET /app.js` `GET /style.css` | the page |
//! | `GET /api/config` | what the page needs: refresh path, session-expired status, validity |
//! | `POST /api/signup` `POST /api/signin` | `{username, password}` → a new session |
//! | `GET /api/me` | user id, JWT payload, handle, session info, access-token expiry |
//! | `PUT /api/me/info` | `{info}` replaces the session info |
//! | `GET /api/sessions?limit=&cursor=` | one page of the user's sessions (default 50, at most 200): handle, `createdAt`, `lastRefreshedAt` (`null` before the first refresh), `lastActiveAt`, `expiresAt` (ms), `userAgent`, `device` (a short name for it), `clientAddress` (with `--record-client-address`, else `null`), `label`; the current one marked, `next` the cursor of the next page or `null` |
//! | `DELETE /api/sessions/{handle}` | revoke one of the user's sessions |
//! | `POST /api/logout` `POST /api/logout-all` | revoke this / every session of the user |
//! | `POST <refresh path>` | the refresh API (`tessera_axum::refresh_router`) |
//! | `GET /.well-known/jwks.json` | the access-token public keys with `--access-token-algorithm eddsa\|es256\|rs256`, 404 with HS256 (`tessera_axum::jwks_router`) |
//! | `POST /auth/session/refresh`, `POST /auth/signout` | the current supertokens-website SDK's refresh and sign-out APIs (`tessera_axum::current_sdk_router`) |
//!
//! Without blacklisting, the `Session` extractor only proves that the access
//! token is genuine and unexpired; after log-out or revocation it stays so
//! for the rest of its lifetime. The routes that read or change the account
//! in the database (`/api/me`, the session info, the sessions list, revoking,
//! log out everywhere) first check that the calling session is still live:
//! a revoked one gets `Unauthorized`, which answers the session-expired
//! status and clears the cookies.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::header::{
    HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, USER_AGENT,
};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tessera::{SessionManager, UserId};
use tessera_axum::{Session, Tessera, TesseraLayer};

use crate::limits::{self, FailureLimiter, HashError, HashPool};
use crate::listing::{describe_user_agent, Cursor};
use crate::users::{self, SignupError, Users};

#[derive(Clone)]
struct App {
    users: Users,
    manager: SessionManager,
    database_kind: &'static str,
    hashing: HashPool,
    failures: FailureLimiter,
}

/// Errors of the demo's own routes. Session errors are passed through to
/// `tessera_axum::Error`, which answers the session-expired status.
enum AppError {
    Session(tessera_axum::Error),
    Status(StatusCode, &'static str),
    /// 503 or 429 with `Retry-After` (seconds).
    RetryLater(StatusCode, &'static str, u64),
    Internal(String),
}

impl From<HashError> for AppError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy(_) => AppError::RetryLater(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                limits::BUSY_RETRY_AFTER_SECS,
            ),
            HashError::Panicked => AppError::Internal("password hashing panicked".into()),
        }
    }
}

impl From<tessera_axum::Error> for AppError {
    fn from(e: tessera_axum::Error) -> Self {
        AppError::Session(e)
    }
}

impl From<tessera::Error> for AppError {
    fn from(e: tessera::Error) -> Self {
        AppError::Session(e.into())
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Internal(format!("users table: {e}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::Session(e) => e.into_response(),
            AppError::Status(status, code) => {
                (status, Json(json!({ "error": code }))).into_response()
            }
            AppError::RetryLater(status, code, secs) => (
                status,
                [(RETRY_AFTER, secs.to_string())],
                Json(json!({ "error": code, "retryAfterSecs": secs })),
            )
                .into_response(),
            AppError::Internal(msg) => {
                tracing::error!("demo: {msg}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"error": "internal"})),
                )
                    .into_response()
            }
        }
    }
}

type ApiResult = Result<Json<Value>, AppError>;

/// The application's router, with the Tessera layer on every route.
pub(crate) fn app(manager: SessionManager, users: Users, database_kind: &'static str) -> Router {
    let state = App {
        users,
        manager: manager.clone(),
        database_kind,
        hashing: HashPool::for_this_machine(),
        failures: FailureLimiter::new(),
    };
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/style.css", get(style_css))
        .route("/api/config", get(config))
        .route("/api/signup", post(signup))
        .route("/api/signin", post(signin))
        .route("/api/me", get(me))
        .route("/api/me/info", put(update_info))
        .route("/api/sessions", get(list_sessions))
        .route("/api/sessions/{handle}", delete(revoke_one))
        .route("/api/logout", post(logout))
        .route("/api/logout-all", post(logout_all))
        .merge(tessera_axum::refresh_router(&manager))
        .merge(tessera_axum::current_sdk_router(&manager))
        .merge(tessera_axum::jwks_router(&manager))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(TesseraLayer::new(manager))
        .with_state(state)
}

/// How the server treats connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// How long a client may take to send a request's head (request line and
    /// headers), and so also how long an idle keep-alive connection stays
    /// open; then the server closes the connection.
    pub(crate) header_read_timeout: Duration,
    /// Connections served at once. Beyond that the server stops accepting:
    /// new connections wait in the kernel's listen backlog (holding none of
    /// this process's file descriptors) until a served one closes.
    pub(crate) max_connections: usize,
}

/// File descriptors kept free for everything but client connections: the
/// database pool (sqlx's default is 10 connections; SQLite also opens its
/// WAL and shared-memory files), the listener, standard streams.
const RESERVED_FDS: u64 = 64;

/// The soft open-files limit (`ulimit -n`), where the OS tells it.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_limit(&limits)
}

fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `max_connections`, lowered if the open-files limit could not hold that
/// many connections next to [`RESERVED_FDS`]: past it, `accept` would fail
/// and the cap would not protect anything.
fn effective_max_connections(requested: usize, fd_limit: Option<u64>) -> usize {
    let Some(limit) = fd_limit else {
        return requested.max(1);
    };
    let room = usize::try_from(limit.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    requested.min(room).max(1)
}

/// Serves until Ctrl-C.
pub(crate) async fn serve(
    manager: SessionManager,
    users: Users,
    database_kind: &'static str,
    listen: SocketAddr,
    limits: ConnectionLimits,
) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let fd_limit = open_files_limit();
    let max = effective_max_connections(limits.max_connections, fd_limit);
    if max < limits.max_connections {
        eprintln!(
            "warning: --max-connections {} lowered to {max}: the open-files limit is {} \
             and {RESERVED_FDS} are kept for the database and the listener",
            limits.max_connections,
            fd_limit.unwrap_or_default()
        );
    }
    println!(
        "  connections:        at most {max} at once; request headers within {} s",
        limits.header_read_timeout.as_secs_f64()
    );
    println!("listening on http://{addr}  (Ctrl-C stops)");
    let limits = ConnectionLimits {
        max_connections: max,
        ..limits
    };
    run(
        listener,
        app(manager, users, database_kind),
        limits,
        shutdown_signal(),
    )
    .await;
    Ok(())
}

/// The accept loop: hyper's HTTP/1 server per connection with a header-read
/// timeout, at most `max_connections` connections at once, the client
/// address as `ConnectInfo`, and graceful shutdown when `shutdown` completes
/// (no new connections; open ones finish their current request).
async fn run(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower_service::Service as _;

    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        // A slot first, then accept: at the cap the server does not accept.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors or memory, or a connection
                    // reset before it was accepted: not fatal. Pause so
                    // that a persistent error does not spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let router = router.clone();
        let mut stop = stop_rx.clone();
        let header_read_timeout = limits.header_read_timeout;
        connections.spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(
                move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(remote));
                    router.clone().call(req)
                },
            );
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!("connection from {remote}: {e}");
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
}

/// Ctrl-C, or SIGTERM (what service managers and containers send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

// -- the page -----------------------------------------------------------------

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    res
}

async fn index() -> Response {
    asset(
        "text/html; charset=utf-8",
        include_str!("../assets/index.html"),
    )
}

async fn app_js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    )
}

async fn style_css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../assets/style.css"),
    )
}

async fn config(State(app): State<App>) -> Json<Value> {
    let c = app.manager.config();
    Json(json!({
        "refreshPath": c.refresh_path(),
        "sessionExpiredStatus": c.session_expired_status(),
        "accessTokenValiditySecs": c.access_token_validity().as_secs_f64(),
        "refreshTokenValiditySecs": c.refresh_token_validity().as_secs(),
        "antiCsrf": c.anti_csrf(),
        "blacklisting": c.blacklisting(),
        "development": !c.cookie_secure(),
        "database": app.database_kind,
    }))
}

// -- accounts -----------------------------------------------------------------

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

fn device(headers: &HeaderMap) -> String {
    let ua = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    ua.chars().take(120).collect()
}

async fn start_session(tessera: &Tessera, user: &users::User, headers: &HeaderMap) -> ApiResult {
    let session = tessera
        .create_new_session(
            UserId::Int(user.id),
            json!({"username": user.username, "role": "user"}),
            json!({"device": device(headers), "note": ""}),
        )
        .await?;
    Ok(Json(json!({
        "userId": user.id,
        "username": user.username,
        "sessionHandle": session.handle(),
    })))
}

async fn signup(
    State(app): State<App>,
    tessera: Tessera,
    headers: HeaderMap,
    Json(c): Json<Credentials>,
) -> ApiResult {
    if !users::valid_username(&c.username) {
        return Err(AppError::Status(
            StatusCode::BAD_REQUEST,
            "invalid_username",
        ));
    }
    if !(users::MIN_PASSWORD_LEN..=users::MAX_PASSWORD_LEN).contains(&c.password.chars().count())
        || c.password.len() > 4 * users::MAX_PASSWORD_LEN
    {
        return Err(AppError::Status(
            StatusCode::BAD_REQUEST,
            "invalid_password",
        ));
    }
    let password = c.password;
    let hash = app
        .hashing
        .run(move || users::hash_password(&password))
        .await?
        .map_err(AppError::Internal)?;
    let user = match app.users.create(&c.username, &hash).await {
        Ok(u) => u,
        Err(SignupError::Taken) => {
            return Err(AppError::Status(StatusCode::CONFLICT, "username_taken"))
        }
        Err(SignupError::Db(e)) => return Err(e.into()),
    };
    start_session(&tessera, &user, &headers).await
}

/// A hash to verify against when the user does not exist, so that a wrong
/// user name takes as long as a wrong password. Made on first use, on a
/// hashing thread.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| users::hash_password("not a real password").unwrap_or_default())
}

async fn signin(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    tessera: Tessera,
    headers: HeaderMap,
    Json(c): Json<Credentials>,
) -> ApiResult {
    // 403, not 401: 401 is the session-expired status the page's refresh
    // logic reacts to.
    let denied = AppError::Status(StatusCode::FORBIDDEN, "invalid_credentials");
    if c.password.len() > 4 * users::MAX_PASSWORD_LEN || !users::valid_username(&c.username) {
        return Err(denied);
    }
    // Throttled names and addresses are refused before any hashing.
    let attempt = app
        .failures
        .begin(&c.username, client.ip())
        .map_err(|wait| {
            AppError::RetryLater(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                limits::retry_after_secs(wait),
            )
        })?;
    let checked = check_password(&app, &c.username, c.password).await;
    match checked {
        Ok(Some(user)) => {
            attempt.succeeded();
            start_session(&tessera, &user, &headers).await
        }
        // Dropping the attempt counts the failure.
        Ok(None) => Err(denied),
        Err(e) => {
            attempt.not_made();
            Err(e)
        }
    }
}

/// The user if the password is right. The hash is verified on the hashing
/// pool, against a dummy hash when the user does not exist.
async fn check_password(
    app: &App,
    username: &str,
    password: String,
) -> Result<Option<users::User>, AppError> {
    let found = app.users.find_by_name(username).await?;
    let stored = found.as_ref().map(|(_, h)| h.clone());
    let ok = app
        .hashing
        .run(move || {
            users::verify_password(&password, stored.as_deref().unwrap_or_else(|| dummy_hash()))
        })
        .await?;
    Ok(found.filter(|_| ok).map(|(user, _)| user))
}

// -- the session --------------------------------------------------------------

async fn me(session: Session) -> ApiResult {
    let info = session.get_session_info().await?;
    Ok(Json(json!({
        "userId": session.user_id().to_json(),
        "jwtPayload": session.jwt_payload(),
        "sessionHandle": session.handle(),
        "sessionInfo": info,
        "accessTokenExpiresAt": session.access_token_expiry_ms(),
    })))
}

#[derive(Deserialize)]
struct InfoBody {
    info: Value,
}

async fn update_info(session: Session, Json(body): Json<InfoBody>) -> ApiResult {
    if body.info.to_string().len() > 16 * 1024 {
        return Err(AppError::Status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "info_too_large",
        ));
    }
    session.update_session_info(&body.info).await?;
    Ok(Json(json!({"sessionInfo": body.info})))
}

/// Refuses to act for a session that is no longer live (see the module
/// documentation): reads the session's row, and a missing or expired one
/// gives `Unauthorized` with the cookies cleared.
async fn require_live(session: &Session) -> Result<(), AppError> {
    session.get_session_info().await?;
    Ok(())
}

/// Sessions per page of `GET /api/sessions` unless `limit` says otherwise:
/// more than a person has devices, small enough to render at once.
const SESSIONS_PAGE_DEFAULT: u32 = 50;
/// The largest `limit`: bounds the rows read and the response (at most
/// about 800 bytes of JSON per session with a 256-byte user agent, so
/// 160 KB) whatever the client asks.
const SESSIONS_PAGE_MAX: u32 = 200;

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

async fn list_sessions(
    State(app): State<App>,
    session: Session,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let limit = match q.limit.as_deref() {
        None => SESSIONS_PAGE_DEFAULT,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(AppError::Status(StatusCode::BAD_REQUEST, "invalid_limit"))?
            .min(SESSIONS_PAGE_MAX),
    };
    let cursor = match q.cursor.as_deref() {
        None | Some("") => Cursor::start(),
        Some(c) => {
            Cursor::decode(c).ok_or(AppError::Status(StatusCode::BAD_REQUEST, "invalid_cursor"))?
        }
    };
    require_live(&session).await?;
    let now = app.manager.config().clock().now_ms();
    // One row more than the page tells whether there is a next page.
    let mut page = app
        .users
        .sessions_page(session.user_id(), now, &cursor, limit + 1)
        .await?;
    let next = if page.len() > limit as usize {
        page.truncate(limit as usize);
        page.last().map(|s| Cursor::after(s).encode())
    } else {
        None
    };
    let sessions: Vec<Value> = page
        .iter()
        .map(|s| {
            json!({
                "handle": s.session_handle,
                "createdAt": s.created_at_ms,
                "expiresAt": s.expires_at_ms,
                "lastRefreshedAt": s.last_refreshed_at_ms,
                "lastActiveAt": s.last_active_at_ms(),
                "userAgent": s.user_agent,
                "device": s.user_agent.as_deref().map(describe_user_agent),
                "clientAddress": s.client_address,
                "label": s.device_label,
                "current": s.session_handle == session.handle(),
            })
        })
        .collect();
    Ok(Json(json!({"sessions": sessions, "next": next})))
}

async fn revoke_one(
    State(app): State<App>,
    session: Session,
    Path(handle): Path<String>,
) -> ApiResult {
    if handle == session.handle() {
        session.revoke_session().await?;
        return Ok(Json(json!({"revoked": true, "current": true})));
    }
    require_live(&session).await?;
    // Only the user's own live sessions: the row names its owner, so one
    // lookup by handle decides (no listing of every session of the user).
    let now = app.manager.config().clock().now_ms();
    let row = app
        .manager
        .store()
        .load_session(&handle)
        .await
        .map_err(tessera::Error::from)?;
    let mine = row.is_some_and(|r| &r.user_id == session.user_id() && r.expires_at_ms > now);
    if !mine {
        return Err(AppError::Status(StatusCode::NOT_FOUND, "no_such_session"));
    }
    let revoked = app.manager.revoke_session(&handle).await?;
    Ok(Json(json!({"revoked": revoked, "current": false})))
}

async fn logout(session: Session) -> ApiResult {
    session.revoke_session().await?;
    Ok(Json(json!({"loggedOut": true})))
}

async fn logout_all(State(app): State<App>, session: Session) -> ApiResult {
    require_live(&session).await?;
    let n = app
        .manager
        .revoke_all_sessions_for_user(session.user_id())
        .await?;
    // Cleared the way this session's tokens travel (cookies, or headers).
    session.clear_tokens();
    Ok(Json(json!({"loggedOut": true, "revoked": n})))
}
