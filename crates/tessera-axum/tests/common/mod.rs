//! A small test application on the axum integration and a cookie-keeping
//! client, shared by the HTTP tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Query;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use http::header::{HeaderMap, HeaderValue, COOKIE, SET_COOKIE};
use serde_json::{json, Value};
use tessera::{Config, ConfigBuilder, ManualClock, SessionManager, UserId};
use tessera_axum::{AntiCsrf, Error, Session, Tessera, TesseraLayer};
use tessera_sqlx::testing::{fresh_url, Backend};

pub const START_MS: i64 = 1_800_000_000_000;

pub struct Harness {
    pub manager: SessionManager,
    pub clock: Arc<ManualClock>,
    pub store: tessera_sqlx::SqlStore,
}

impl Harness {
    pub async fn new(f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Harness {
        let url = fresh_url(Backend::Sqlite).await;
        let store = tessera_sqlx::connect(&url).await.expect("sqlite store");
        let clock = Arc::new(ManualClock::new(START_MS));
        let config = f(Config::builder()
            .with_cookie_secure(false)
            .with_access_token_validity(Duration::from_secs(60))
            .with_clock(clock.clone()))
        .build()
        .expect("config");
        let manager = SessionManager::new(config, store.clone())
            .await
            .expect("manager");
        Harness {
            manager,
            clock,
            store,
        }
    }

    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    pub fn app(&self) -> Router {
        app(&self.manager)
    }

    /// Serves the app on a real TCP port on loopback.
    pub async fn serve(&self) -> SocketAddr {
        serve(self.app()).await
    }
}

pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    addr
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    user: String,
}

async fn login(tessera: Tessera, Query(q): Query<LoginQuery>) -> Result<Json<Value>, Error> {
    let uid = match q.user.parse::<i64>() {
        Ok(i) => UserId::from(i),
        Err(_) => UserId::from(q.user),
    };
    let s = tessera
        .create_new_session(uid, json!({"role": "tester"}), json!({"n": 0}))
        .await?;
    Ok(Json(json!({"handle": s.handle()})))
}

async fn me(session: Session) -> Json<Value> {
    Json(json!({
        "user": session.user_id().to_json(),
        "payload": session.jwt_payload(),
        "handle": session.handle(),
    }))
}

async fn maybe(session: Option<Session>) -> Json<Value> {
    Json(json!({"user": session.map(|s| s.user_id().to_json())}))
}

async fn info(session: Session) -> Result<Json<Value>, Error> {
    Ok(Json(session.get_session_info().await?))
}

async fn set_info(session: Session, Json(v): Json<Value>) -> Result<Json<Value>, Error> {
    session.update_session_info(&v).await?;
    Ok(Json(json!({"ok": true})))
}

async fn logout(session: Session) -> Result<Json<Value>, Error> {
    session.revoke_session().await?;
    Ok(Json(json!({"ok": true})))
}

/// The handler fails after the extractor succeeded, with a message that must
/// never reach the client.
async fn fail_after(_session: Session) -> Result<Json<Value>, Error> {
    Err(tessera::Error::general("SECRET-internal-detail: db password is hunter2").into())
}

/// A handler that fails with a plain axum response (not our Error) after the
/// extractor succeeded.
async fn fail_plain(_session: Session) -> (http::StatusCode, &'static str) {
    (http::StatusCode::CONFLICT, "handler said no")
}

pub fn app(manager: &SessionManager) -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/me", get(me).post(me).put(me).delete(me))
        .route("/me-no-csrf", post(me).layer(Extension(AntiCsrf::Never)))
        .route(
            "/me-always-csrf",
            get(me).layer(Extension(AntiCsrf::Always)),
        )
        .route("/maybe", get(maybe).post(maybe))
        .route("/info", get(info).put(set_info))
        .route("/logout", post(logout))
        .route("/fail-after", post(fail_after).get(fail_after))
        .route("/fail-plain", get(fail_plain))
        .merge(tessera_axum::refresh_router(manager))
        .layer(TesseraLayer::new(manager.clone()))
}

/// Keeps what a browser keeps: cookies and the anti-CSRF token.
#[derive(Clone, Default, Debug)]
pub struct Browser {
    pub cookies: BTreeMap<String, String>,
    pub anti_csrf: Option<String>,
    pub id_refresh_header: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    pub fn set_cookie_names(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|s| s.split('=').next().map(str::to_owned))
            .collect()
    }
    /// True if the response clears all three cookies.
    pub fn clears_cookies(&self) -> bool {
        let cleared: Vec<_> = self
            .headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|s| s.contains("=; Expires=Thu, 01 Jan 1970"))
            .collect();
        cleared.len() == 3
            && self.headers.get("id-refresh-token").map(|v| v.as_bytes()) == Some(b"remove")
    }
}

impl Browser {
    pub fn absorb(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(SET_COOKIE) {
            let s = v.to_str().expect("ascii set-cookie");
            let pair = s.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').expect("name=value");
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        if let Some(t) = headers.get("anti-csrf").and_then(|v| v.to_str().ok()) {
            self.anti_csrf = Some(t.to_owned());
        }
        if let Some(t) = headers
            .get("id-refresh-token")
            .and_then(|v| v.to_str().ok())
        {
            self.id_refresh_header = Some(t.to_owned());
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn headers(&self, with_csrf: bool) -> HeaderMap {
        let mut h = HeaderMap::new();
        if !self.cookies.is_empty() {
            h.insert(
                COOKIE,
                HeaderValue::from_str(&self.cookie_header()).unwrap(),
            );
        }
        if with_csrf {
            if let Some(t) = &self.anti_csrf {
                h.insert("anti-csrf", HeaderValue::from_str(t).unwrap());
            }
        }
        h
    }

    /// Sends a request over real HTTP and keeps the cookies it sets.
    pub async fn send(
        &mut self,
        addr: SocketAddr,
        method: &str,
        path: &str,
        with_csrf: bool,
        body: Option<Value>,
    ) -> Reply {
        let client = reqwest::Client::new();
        let mut req = client
            .request(method.parse().unwrap(), format!("http://{addr}{path}"))
            .headers(self.headers(with_csrf));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.text().await.expect("body");
        self.absorb(&headers);
        Reply {
            status,
            headers,
            body,
        }
    }
}
