//! The server the browser test of the real `supertokens-website` 4.2.0 SDK
//! runs against (`e2e/tests/sdk.test.mjs`). Not for production: it has a
//! test-only inspection route and very short access tokens.
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

    let config = Config::builder()
        .with_cookie_secure(false) // plain http://127.0.0.1 in the test
        .with_access_token_validity(Duration::from_secs_f64(secs))
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
        .merge(tessera_axum::refresh_router(&manager))
        .layer(TesseraLayer::new(manager))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
