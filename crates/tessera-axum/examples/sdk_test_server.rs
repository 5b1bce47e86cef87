//! The server the browser tests of the real `supertokens-website` SDKs run
//! against: 4.2.0 (`e2e/tests/sdk.test.mjs`) and, with
//! `E2E_CURRENT_SDK=1`, 20.x in cookie and header mode
//! (`e2e/tests/sdk20.test.mjs`; docs/PROTOCOL.md §9). Not for production: it
//! has test-only inspection routes and very short access tokens.
//!
//! ```text
//! E2E_STATIC_DIR=e2e/dist TESSERA_DATABASE_URL=sqlite:///tmp/x.sqlite \
//! E2E_ACCESS_TOKEN_SECS=2 cargo run -p tessera-axum --example sdk_test_server
//! ```
//!
//! Prints `listening on http://127.0.0.1:PORT` once it accepts connections
//! (`E2E_LISTEN`, default `127.0.0.1:0`, a free port).

use std::path::PathBuf;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tessera::{Config, SessionManager, UserId};
use tessera_axum::{Error, Session, Tessera, TesseraLayer};

#[derive(Clone)]
struct AppState {
    static_dir: PathBuf,
    manager: SessionManager,
}

async fn file(state: &AppState, name: &str, content_type: &'static str) -> Response {
    match tokio::fs::read(state.static_dir.join(name)).await {
        Ok(bytes) => ([(CONTENT_TYPE, content_type)], bytes).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "run `node build.mjs` in e2e/ first").into_response(),
    }
}

async fn page(State(s): State<AppState>) -> Response {
    file(&s, "sdk.html", "text/html; charset=utf-8").await
}

async fn bundle(State(s): State<AppState>) -> Response {
    file(&s, "sdk.js", "text/javascript; charset=utf-8").await
}

async fn page20(State(s): State<AppState>) -> Response {
    file(&s, "sdk20.html", "text/html; charset=utf-8").await
}

async fn bundle20(State(s): State<AppState>) -> Response {
    file(&s, "sdk20.js", "text/javascript; charset=utf-8").await
}

/// Test-only: revokes every session of a (string) user id, as an
/// administrator would, from outside the browser.
async fn revoke(
    State(s): State<AppState>,
    Query(q): Query<UserQuery>,
) -> Result<Json<Value>, Error> {
    let n = s
        .manager
        .revoke_all_sessions_for_user(&UserId::from(q.user))
        .await?;
    Ok(Json(json!({ "revoked": n })))
}

async fn login(tessera: Tessera, Json(body): Json<Value>) -> Result<Json<Value>, Error> {
    let user = UserId::from_json(&body["userId"]).unwrap_or_else(|| UserId::from("anonymous"));
    let s = tessera
        .create_new_session(user, json!({"name": body["name"]}), json!({"counter": 0}))
        .await?;
    Ok(Json(json!({"sessionHandle": s.handle()})))
}

async fn user(session: Session) -> Json<Value> {
    Json(json!({
        "userId": session.user_id().to_json(),
        "payload": session.jwt_payload(),
        "sessionHandle": session.handle(),
    }))
}

/// A POST: the extractor demands the anti-CSRF header.
async fn protected(session: Session) -> Result<Json<Value>, Error> {
    let info = session.get_session_info().await?;
    let counter = info["counter"].as_i64().unwrap_or(0) + 1;
    session
        .update_session_info(&json!({ "counter": counter }))
        .await?;
    Ok(Json(
        json!({"userId": session.user_id().to_json(), "counter": counter}),
    ))
}

async fn logout(session: Session) -> Result<Json<Value>, Error> {
    session.revoke_session().await?;
    Ok(Json(json!({"loggedOut": true})))
}

#[derive(serde::Deserialize)]
struct UserQuery {
    user: String,
}

/// Test-only: the live session handles of a (string) user id, so the test can
/// check revocation from outside the browser.
async fn handles(
    State(s): State<AppState>,
    Query(q): Query<UserQuery>,
) -> Result<Json<Value>, Error> {
    let handles = s
        .manager
        .get_all_session_handles_for_user(&UserId::from(q.user))
        .await?;
    Ok(Json(json!({ "handles": handles })))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let static_dir =
        PathBuf::from(std::env::var("E2E_STATIC_DIR").unwrap_or_else(|_| "e2e/dist".into()));
    let url = std::env::var("TESSERA_DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://tessera-sdk-test.sqlite".into());
    let secs: f64 = std::env::var("E2E_ACCESS_TOKEN_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let listen = std::env::var("E2E_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".into());

    // The current SDK beside 4.2.0 only when asked, so that the 4.2.0 test
    // runs against the reference profile alone.
    let current_sdk = std::env::var("E2E_CURRENT_SDK").is_ok_and(|v| v == "1");
    let config = Config::builder()
        .with_cookie_secure(false) // plain http://127.0.0.1 in the test
        .with_access_token_validity(Duration::from_secs_f64(secs))
        .with_current_sdk(current_sdk.then(|| tessera::CurrentSdk::new("/auth")))
        .danger_allow_short_validity_for_tests()
        .build()?;
    let manager = SessionManager::new(config, tessera_sqlx::connect(&url).await?).await?;
    let state = AppState {
        static_dir,
        manager: manager.clone(),
    };
    let app = Router::new()
        .route("/", get(page))
        .route("/sdk.js", get(bundle))
        .route("/login", post(login))
        .route("/api/user", get(user))
        .route("/api/protected", post(protected))
        .route("/logout", post(logout))
        .route("/test/handles", get(handles))
        .route("/sdk20", get(page20))
        .route("/sdk20.js", get(bundle20))
        .route("/test/revoke", post(revoke))
        .merge(tessera_axum::refresh_router(&manager))
        .merge(tessera_axum::current_sdk_router(&manager))
        .layer(TesseraLayer::new(manager))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
