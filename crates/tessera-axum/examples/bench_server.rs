//! The server of the HTTP benchmark (`benches/http/run.sh`): one binary,
//! the same handler served three ways.
//!
//! * `GET /plain`: no Tessera at all (the baseline);
//! * `GET /layer-only`: under [`TesseraLayer`], no extractor;
//! * `GET /authed`: under the layer, with the [`Session`] extractor (a
//!   verified session: one HMAC, no database access).
//!
//! `POST /login` creates a session and returns its cookies for the load
//! generator. Prints `listening on http://ADDR` when ready.

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tessera::{Config, SessionManager};
use tessera_axum::{Error, Session, Tessera, TesseraLayer};

async fn hello() -> &'static str {
    "hello"
}

async fn authed(_session: Session) -> &'static str {
    "hello"
}

async fn login(tessera: Tessera) -> Result<Json<Value>, Error> {
    tessera
        .create_new_session(1, json!({"role": "bench"}), json!(null))
        .await?;
    Ok(Json(json!({"ok": true})))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("TESSERA_DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://tessera-bench-http.sqlite".into());
    let listen = std::env::var("BENCH_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".into());
    // Plain HTTP on loopback; otherwise the default configuration.
    let config = Config::builder().with_cookie_secure(false).build()?;
    let manager = SessionManager::new(config, tessera_sqlx::connect(&url).await?).await?;

    let with_tessera = Router::new()
        .route("/authed", get(authed))
        .route("/layer-only", get(hello))
        .route("/login", post(login))
        .layer(TesseraLayer::new(manager));
    let app = Router::new()
        .route("/plain", get(hello))
        .merge(with_tessera);

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
