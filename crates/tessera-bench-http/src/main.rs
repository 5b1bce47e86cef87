//! The server of the HTTP benchmark (`benches/http/run.sh`): one binary,
//! the same trivial handler served with Tessera and with what a user would
//! pick instead, so that every route is measured in the same process, on the
//! same machine, in the same run.
//!
//! * `GET /plain`: no session at all (the baseline);
//! * `GET /hmac`: `/plain` plus one HMAC-SHA256 of the signing input of a
//!   real Tessera access token, keyed state prepared once — the cost floor
//!   of any stateless check of a signed token;
//! * `GET /layer-only`: under [`TesseraLayer`], no extractor;
//! * `GET /authed`: under the layer, with the [`Session`] extractor (a
//!   verified session: one HMAC, no database access);
//! * `GET /bearer`: the same extractor under a layer whose manager also
//!   allows the current SDK's header mode (docs/PROTOCOL.md §9), the token
//!   in `Authorization: Bearer` (what an API or mobile client sends); its
//!   token comes from `POST /bearer/login` with `st-auth-mode: header`;
//! * `GET /jwt`: a hand-written `jsonwebtoken` route (HS256, `exp`
//!   checked), reading its token from a cookie — the "no session library"
//!   choice;
//! * `GET /ts-memory`, `/ts-moka`, `/ts-sqlite`: tower-sessions with its
//!   in-process `MemoryStore`, its moka cache and its SQLite store, the
//!   handler reading one value from the session.
//!
//! `POST /login` creates a Tessera session and sets its cookies; `POST
//! /ts-*/login` creates the tower-sessions session of that store, and the
//! `jwt` cookie comes with Tessera's login. Every route therefore receives
//! the same Cookie header in the benchmark. Prints `listening on
//! http://ADDR` when ready.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hmac::{Hmac, Mac};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use tessera::{Config, SessionManager};
use tessera_axum::{Error, Session, Tessera, TesseraLayer};
use tower_sessions::{MemoryStore, SessionManagerLayer, SessionStore};
use tower_sessions_moka_store::MokaStore;
use tower_sessions_sqlx_store::SqliteStore;

async fn hello() -> &'static str {
    "hello"
}

async fn authed(_session: Session) -> &'static str {
    "hello"
}

/// The floor: what checking a signed token costs at the very least.
async fn hmac_floor(State(floor): State<Arc<Floor>>) -> &'static str {
    let mut mac = floor.keyed.clone();
    mac.update(&floor.signing_input);
    std::hint::black_box(mac.finalize().into_bytes());
    "hello"
}

struct Floor {
    keyed: Hmac<Sha256>,
    signing_input: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct JwtClaims {
    sub: String,
    exp: u64,
}

struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

/// What an application writes by hand with `jsonwebtoken`: find the cookie,
/// verify the token, read the claims.
async fn jwt_route(State(keys): State<Arc<JwtKeys>>, headers: HeaderMap) -> Response {
    let token = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("jwt="));
    match token.map(|t| jsonwebtoken::decode::<JwtClaims>(t, &keys.decoding, &keys.validation)) {
        Some(Ok(data)) if !data.claims.sub.is_empty() => "hello".into_response(),
        _ => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn login(tessera: Tessera, State(keys): State<Arc<JwtKeys>>) -> Result<Response, Error> {
    tessera
        .create_new_session(1, json!({"role": "bench"}), json!(null))
        .await?;
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        + 24 * 3600;
    let claims = JwtClaims {
        sub: "1".into(),
        exp,
    };
    let token = jsonwebtoken::encode(&Header::default(), &claims, &keys.encoding)
        .expect("HS256 signing cannot fail");
    let mut response = "ok".into_response();
    response.headers_mut().append(
        SET_COOKIE,
        HeaderValue::from_str(&format!("jwt={token}; Path=/; HttpOnly"))
            .expect("a JWT is a valid header value"),
    );
    Ok(response)
}

async fn ts_read(session: tower_sessions::Session) -> Response {
    match session.get::<u64>("user").await {
        Ok(Some(_)) => "hello".into_response(),
        _ => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn ts_login(session: tower_sessions::Session) -> Response {
    match session.insert("user", 1u64).await {
        Ok(()) => "ok".into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `/<name>` and `/<name>/login` under tower-sessions with `store`, its
/// cookie named after the route so that the routes' sessions stay apart.
fn tower_sessions_routes<S: SessionStore + Clone>(name: &'static str, store: S) -> Router {
    Router::new()
        .route(&format!("/{name}"), get(ts_read))
        .route(&format!("/{name}/login"), post(ts_login))
        .layer(
            SessionManagerLayer::new(store)
                .with_name(name.replace('-', "_"))
                .with_secure(false),
        )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("TESSERA_DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://tessera-bench-http.sqlite".into());
    let ts_url = std::env::var("BENCH_TOWER_SESSIONS_SQLITE")
        .unwrap_or_else(|_| "sqlite://tower-sessions-bench.sqlite?mode=rwc".into());
    let listen = std::env::var("BENCH_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".into());
    // Plain HTTP on loopback; otherwise the default configuration.
    let config = Config::builder()
        .with_cookie_secure(false)
        // No change feed: its background reads of the log would land in the
        // callgrind counts per request (bench-feed measures the feed).
        .with_change_feed(None)
        .build()?;
    let manager = SessionManager::new(config, tessera_sqlx::connect(&url).await?).await?;

    // The floor's input is the signing input of a real access token with
    // the payload `/login` gives, so it is exactly as long as the one
    // `/authed` verifies.
    let mut set_cookies = HeaderMap::new();
    manager
        .create_new_session(&mut set_cookies, 0, json!({"role": "bench"}), json!(null))
        .await?;
    let access = set_cookies
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("sAccessToken="))
        .and_then(|v| v.split(';').next())
        .ok_or("no access-token cookie")?;
    let signing_input = access.as_bytes()[..access.rfind('.').ok_or("not a JWT")?].to_vec();
    let floor = Arc::new(Floor {
        keyed: Hmac::<Sha256>::new_from_slice(&[7; 32]).expect("any key length"),
        signing_input,
    });

    let secret: [u8; 32] = std::array::from_fn(|i| i as u8 ^ 0x5a);
    let jwt = Arc::new(JwtKeys {
        encoding: EncodingKey::from_secret(&secret),
        decoding: DecodingKey::from_secret(&secret),
        validation: Validation::new(jsonwebtoken::Algorithm::HS256),
    });

    let ts_pool = sqlx::SqlitePool::connect(&ts_url).await?;
    let ts_sqlite = SqliteStore::new(ts_pool);
    ts_sqlite.migrate().await?;

    // The Bearer route: another manager on the same database that also
    // allows header mode; every request carries the same bearer token, which
    // the reference-only manager of `/authed` never reads.
    let bearer_config = Config::builder()
        .with_cookie_secure(false)
        .with_current_sdk(Some(tessera::CurrentSdk::new("/auth").with_cookies(false)))
        .build()?;
    let bearer_manager =
        SessionManager::with_shared_store(bearer_config, manager.store().clone()).await?;
    let with_bearer = Router::new()
        .route("/bearer", get(authed))
        .route("/bearer/login", post(login))
        .with_state(jwt.clone())
        .layer(TesseraLayer::new(bearer_manager));

    let with_tessera = Router::new()
        .route("/authed", get(authed))
        .route("/layer-only", get(hello))
        .route("/login", post(login))
        .with_state(jwt.clone())
        .layer(TesseraLayer::new(manager));
    let app = Router::new()
        .route("/plain", get(hello))
        .merge(
            Router::new()
                .route("/hmac", get(hmac_floor))
                .with_state(floor),
        )
        .merge(Router::new().route("/jwt", get(jwt_route)).with_state(jwt))
        .merge(tower_sessions_routes("ts-memory", MemoryStore::default()))
        .merge(tower_sessions_routes("ts-moka", MokaStore::new(None)))
        .merge(tower_sessions_routes("ts-sqlite", ts_sqlite))
        .merge(with_bearer)
        .merge(with_tessera);

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
