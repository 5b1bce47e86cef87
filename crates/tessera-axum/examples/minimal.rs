//! The README's axum example: log in, a protected route, log out, and the
//! refresh API. `cargo run -p tessera-axum --example minimal`, then e.g.
//! `curl -i -X POST 127.0.0.1:3001/login`.

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tessera::{Config, SessionManager};
use tessera_axum::{Error, Session, Tessera, TesseraLayer};

async fn login(tessera: Tessera) -> Result<Json<Value>, Error> {
    // Check the user's password first; then:
    tessera
        .create_new_session(42, json!({"role": "user"}), json!({"cart": []}))
        .await?;
    Ok(Json(json!({"ok": true})))
}

async fn me(session: Session) -> Json<Value> {
    Json(json!({"user": session.user_id().to_json(), "payload": session.jwt_payload()}))
}

async fn logout(session: Session) -> Result<Json<Value>, Error> {
    session.revoke_session().await?; // a POST: needs the anti-csrf header
    Ok(Json(json!({"ok": true})))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = tessera_sqlx::connect("sqlite://tessera-example.sqlite").await?;
    let config = Config::builder().with_cookie_secure(false).build()?; // plain-HTTP development
    let manager = SessionManager::new(config, store).await?;
    let app = Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .merge(tessera_axum::refresh_router(&manager)) // POST /refresh/
        .layer(TesseraLayer::new(manager));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
