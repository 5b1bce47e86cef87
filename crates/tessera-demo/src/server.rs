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
//! | `GET /api/sessions?limit=&cursor=` | one page of the user's sessions (default 50, at most 200), the current one marked, `next` the cursor of the next page or `null` |
//! | `DELETE /api/sessions/{handle}` | revoke one of the user's sessions |
//! | `POST /api/logout` `POST /api/logout-all` | revoke this / every session of the user |
//! | `POST <refresh path>` | the refresh API (`tessera_axum::refresh_router`) |
//!
//! Without blacklisting, the `Session` extractor only proves that the access
//! token is genuine and unexpired; after log-out or revocation it stays so
//! for the rest of its lifetime. The routes that read or change the account
//! in the database (`/api/me`, the session info, the sessions list, revoking,
//! log out everywhere) first check that the calling session is still live:
//! a revoked one gets `Unauthorized`, which answers the session-expired
//! status and clears the cookies.

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header::{HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, USER_AGENT};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tessera::{SessionManager, UserId};
use tessera_axum::{Session, Tessera, TesseraLayer};

use crate::listing::Cursor;
use crate::users::{self, SignupError, Users};

#[derive(Clone)]
struct App {
    users: Users,
    manager: SessionManager,
    database_kind: &'static str,
}

/// Errors of the demo's own routes. Session errors are passed through to
/// `tessera_axum::Error`, which answers the session-expired status.
enum AppError {
    Session(tessera_axum::Error),
    Status(StatusCode, &'static str),
    Internal(String),
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
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(TesseraLayer::new(manager))
        .with_state(state)
}

/// Serves until Ctrl-C.
pub(crate) async fn serve(
    manager: SessionManager,
    users: Users,
    database_kind: &'static str,
    listen: SocketAddr,
) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}  (Ctrl-C stops)");
    axum::serve(listener, app(manager, users, database_kind))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
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
    let hash = tokio::task::spawn_blocking(move || users::hash_password(&password))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
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
/// user name takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| users::hash_password("not a real password").unwrap_or_default())
}

async fn signin(
    State(app): State<App>,
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
    let found = app.users.find_by_name(&c.username).await?;
    let stored = found
        .as_ref()
        .map_or_else(|| dummy_hash().to_owned(), |(_, h)| h.clone());
    let password = c.password;
    let ok = tokio::task::spawn_blocking(move || users::verify_password(&password, &stored))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    match found {
        Some((user, _)) if ok => start_session(&tessera, &user, &headers).await,
        _ => Err(denied),
    }
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
/// The largest `limit`: bounds the rows read and the response (about 150
/// bytes of JSON per session, so 30 KB) whatever the client asks.
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

async fn logout_all(State(app): State<App>, tessera: Tessera, session: Session) -> ApiResult {
    require_live(&session).await?;
    let n = app
        .manager
        .revoke_all_sessions_for_user(session.user_id())
        .await?;
    tessera.clear_session_cookies();
    Ok(Json(json!({"loggedOut": true, "revoked": n})))
}
