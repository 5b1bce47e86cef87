//! A small test application on the axum integration and a cookie-keeping
//! client, shared by the HTTP tests.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Query;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use http::header::HeaderMap;
use serde_json::{json, Value};
use tessera::{Config, ConfigBuilder, ManualClock, SessionManager, UserId};
use tessera_axum::{AntiCsrf, Error, Session, Tessera, TesseraLayer};
use tessera_sqlx::testing::{fresh_url, Backend};
use tessera_testkit::jar::{self, CookieJar};

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

/// Keeps what a browser keeps (the testkit's cookie jar, which it derefs
/// to: cookies, the anti-CSRF token, the id-refresh-token header) and
/// sends requests with it over real HTTP.
#[derive(Clone, Default, Debug)]
pub struct Browser(pub CookieJar);

impl std::ops::Deref for Browser {
    type Target = CookieJar;
    fn deref(&self) -> &CookieJar {
        &self.0
    }
}

impl std::ops::DerefMut for Browser {
    fn deref_mut(&mut self) -> &mut CookieJar {
        &mut self.0
    }
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
        jar::set_cookie_names(&self.headers)
    }
    /// True if the response clears all three cookies.
    pub fn clears_cookies(&self) -> bool {
        jar::clears_session(&self.headers)
    }
}

impl Browser {
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
            .headers(self.request_headers(with_csrf));
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
