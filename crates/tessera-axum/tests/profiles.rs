//! The layer serving the client profiles of docs/PROTOCOL.md §9: the
//! `Tessera` handle honours `st-auth-mode`, `Session` accepts a bearer token
//! without anti-CSRF, `Option<Session>` counts a bearer token, and
//! `current_sdk_router` serves the current SDK's refresh and sign-out APIs.

use axum::body::Body;
use axum::routing::{get, post};
use axum::Router;
use http::{Request, StatusCode};
use serde_json::json;
use tessera::{Config, CurrentSdk, SessionManager};
use tessera_axum::{Error, Session, Tessera, TesseraLayer};
use tower::ServiceExt;

async fn login(tessera: Tessera) -> Result<&'static str, Error> {
    tessera
        .create_new_session("alice", json!({"r": 1}), json!({}))
        .await?;
    Ok("ok")
}

async fn protected(session: Session) -> String {
    session.user_id().to_string()
}

async fn maybe(session: Option<Session>) -> &'static str {
    if session.is_some() {
        "some"
    } else {
        "none"
    }
}

async fn app(sdk: Option<CurrentSdk>) -> Router {
    let config = Config::builder()
        .with_cookie_secure(false)
        .with_current_sdk(sdk)
        .build()
        .unwrap();
    let store = tessera_sqlx::connect("sqlite::memory:").await.unwrap();
    let manager = SessionManager::new(config, store).await.unwrap();
    Router::new()
        .route("/login", post(login))
        .route("/protected", post(protected))
        .route("/maybe", get(maybe))
        .merge(tessera_axum::refresh_router(&manager))
        .merge(tessera_axum::current_sdk_router(&manager))
        .layer(TesseraLayer::new(manager))
}

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> http::Response<Body> {
    let mut req = Request::builder().method(method).uri(path);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    app.clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

fn header(res: &http::Response<Body>, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn header_mode_through_the_layer() {
    let app = app(Some(CurrentSdk::new("/auth"))).await;
    let res = call(&app, "POST", "/login", &[("st-auth-mode", "header")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("set-cookie").is_none());
    let access = header(&res, "st-access-token").unwrap();
    let refresh = header(&res, "st-refresh-token").unwrap();
    assert!(header(&res, "front-token").is_some());
    let bearer = format!("Bearer {access}");
    // A POST with the bearer token and no anti-CSRF header.
    let res = call(&app, "POST", "/protected", &[("authorization", &bearer)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    // Option<Session> counts the bearer token.
    let res = call(&app, "GET", "/maybe", &[("authorization", &bearer)]).await;
    assert_eq!(
        axum::body::to_bytes(res.into_body(), 64).await.unwrap(),
        "some"
    );
    let res = call(&app, "GET", "/maybe", &[]).await;
    assert_eq!(
        axum::body::to_bytes(res.into_body(), 64).await.unwrap(),
        "none"
    );
    // The current SDK's refresh API, with the refresh token as a bearer token.
    let res = call(
        &app,
        "POST",
        "/auth/session/refresh",
        &[("authorization", &format!("Bearer {refresh}"))],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let access = header(&res, "st-access-token").unwrap();
    // Sign-out: revoked and cleared.
    let res = call(
        &app,
        "POST",
        "/auth/signout",
        &[("authorization", &format!("Bearer {access}"))],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "front-token").as_deref(), Some("remove"));
    let body = axum::body::to_bytes(res.into_body(), 64).await.unwrap();
    assert_eq!(body, r#"{"status":"OK"}"#);
    let res = call(
        &app,
        "POST",
        "/auth/session/refresh",
        &[("authorization", &format!("Bearer {refresh}"))],
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_reference_profile_alone_ignores_the_preference_and_bearer_tokens() {
    let app = app(None).await;
    let res = call(&app, "POST", "/login", &[("st-auth-mode", "header")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers().get_all("set-cookie").iter().count(), 3);
    assert!(header(&res, "st-access-token").is_none());
    assert!(header(&res, "front-token").is_none());
    let res = call(&app, "GET", "/maybe", &[("authorization", "Bearer x.y.z")]).await;
    assert_eq!(
        axum::body::to_bytes(res.into_body(), 64).await.unwrap(),
        "none"
    );
    // No current SDK routes.
    let res = call(&app, "POST", "/auth/signout", &[]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn malformed_authorization_headers_are_session_expired_never_500() {
    let app = app(Some(CurrentSdk::new("/auth"))).await;
    let long = format!("Bearer {}", "a".repeat(70_000));
    let cases = [
        "Bearer",
        "Bearer ",
        "Bearer x",
        "Bearer a.b.c",
        "Bearer ..",
        "bearer eyJhbGciOiJub25lIn0.e30.",
        "Basic dXNlcjpwYXNz",
        "Bearer \u{7f}",
        long.as_str(),
    ];
    for value in cases {
        for (method, path) in [
            ("POST", "/protected"),
            ("POST", "/auth/session/refresh"),
            ("POST", "/refresh/"),
            ("POST", "/auth/signout"),
        ] {
            let Ok(v) = http::HeaderValue::from_str(value) else {
                continue;
            };
            let mut req = Request::builder().method(method).uri(path);
            req.headers_mut().unwrap().insert("authorization", v);
            let res = app
                .clone()
                .oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {:?}",
                &value[..value.len().min(30)]
            );
        }
    }
}
