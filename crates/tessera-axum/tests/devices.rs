//! Sessions created through the `Tessera` extractor record the sign-in
//! request's device: its `User-Agent`, and with connect info the peer address
//! (kept only with `record_client_address`). Over real HTTP on SQLite.

mod common;

use std::net::SocketAddr;

use axum::routing::{get, post};
use axum::{Json, Router};
use common::{Browser, Harness};
use serde_json::{json, Value};
use tessera_axum::{Error, Session, Tessera, TesseraLayer};

async fn login(tessera: Tessera) -> Result<Json<Value>, Error> {
    let s = tessera
        .create_new_session("dev-user", json!({}), json!({}))
        .await?;
    Ok(Json(json!({"handle": s.handle()})))
}

async fn login_labelled(tessera: Tessera) -> Result<Json<Value>, Error> {
    let device = tessera.device().clone().with_label("work laptop");
    let s = tessera
        .create_new_session_with_device("dev-user", json!({}), json!({}), device)
        .await?;
    Ok(Json(json!({"handle": s.handle()})))
}

async fn sessions(tessera: Tessera, session: Session) -> Result<Json<Value>, Error> {
    let listed = tessera
        .manager()
        .list_sessions_for_user(session.user_id())
        .await?;
    Ok(Json(Value::Array(
        listed
            .into_iter()
            .map(|s| {
                json!({
                    "handle": s.session_handle,
                    "user_agent": s.user_agent,
                    "client_address": s.client_address,
                    "device_label": s.device_label,
                    "last_refreshed_at_ms": s.last_refreshed_at_ms,
                })
            })
            .collect(),
    )))
}

/// Serves the app with connect info, so the extractor sees the peer address.
async fn serve(h: &Harness) -> SocketAddr {
    let app = Router::new()
        .route("/login", post(login))
        .route("/login-labelled", post(login_labelled))
        .route("/sessions", get(sessions))
        .layer(TesseraLayer::new(h.manager.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    addr
}

/// POSTs `path` with this `User-Agent` and returns the new session's handle.
async fn sign_in(b: &mut Browser, addr: SocketAddr, path: &str, user_agent: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .header("user-agent", user_agent)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 200);
    b.absorb(res.headers());
    let body: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    body["handle"].as_str().unwrap().to_owned()
}

async fn listing(b: &mut Browser, addr: SocketAddr) -> Vec<Value> {
    let r = b.send(addr, "GET", "/sessions", false, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json().as_array().unwrap().clone()
}

#[tokio::test]
async fn the_extractor_records_the_user_agent_and_not_the_address_by_default() {
    let h = Harness::new(|c| c).await;
    let addr = serve(&h).await;
    let mut b = Browser::default();
    let first = sign_in(&mut b, addr, "/login", "TestBrowser/1.0 (X11)").await;
    // Listings are in creation order; the harness clock stands still.
    h.advance(std::time::Duration::from_secs(1));
    let second = sign_in(&mut b, addr, "/login-labelled", "TestBrowser/2.0").await;
    let listed = listing(&mut b, addr).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["handle"], first.as_str());
    assert_eq!(listed[0]["user_agent"], "TestBrowser/1.0 (X11)");
    assert_eq!(listed[0]["device_label"], Value::Null);
    assert_eq!(listed[1]["handle"], second.as_str());
    assert_eq!(listed[1]["user_agent"], "TestBrowser/2.0");
    assert_eq!(listed[1]["device_label"], "work laptop");
    for s in &listed {
        assert_eq!(s["client_address"], Value::Null, "off by default: {s}");
        assert_eq!(s["last_refreshed_at_ms"], Value::Null);
    }
}

#[tokio::test]
async fn with_record_client_address_the_peer_address_is_kept() {
    let h = Harness::new(|c| c.with_record_client_address(true)).await;
    let addr = serve(&h).await;
    let mut b = Browser::default();
    sign_in(&mut b, addr, "/login", "TestBrowser/3.0").await;
    let listed = listing(&mut b, addr).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["user_agent"], "TestBrowser/3.0");
    assert_eq!(listed[0]["client_address"], "127.0.0.1");
}
