//! The client profiles of docs/PROTOCOL.md §9: the current SDK's cookie
//! mode, its header mode (Bearer, for API and mobile clients too), and the
//! reference profile beside them, on the in-memory store.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION, COOKIE, SET_COOKIE};
use serde_json::{json, Value};
use tessera::{Config, CurrentSdk, Error, ManualClock, SessionManager, Transport, UserId};
use tessera_testkit::MemoryStore;

struct Env {
    clock: Arc<ManualClock>,
    m: SessionManager,
}

async fn env(sdk: Option<CurrentSdk>, reference: bool) -> Env {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let config = Config::builder()
        .with_clock(clock.clone())
        .with_current_sdk(sdk)
        .with_reference_profile(reference)
        .build()
        .unwrap();
    let m = SessionManager::new(config, MemoryStore::new())
        .await
        .unwrap();
    Env { clock, m }
}

async fn both() -> Env {
    env(Some(CurrentSdk::new("/auth")), true).await
}

fn hv(r: &HeaderMap, name: &str) -> Option<String> {
    r.get(name).map(|v| v.to_str().unwrap().to_owned())
}

fn set_cookies(r: &HeaderMap) -> Vec<String> {
    r.get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn front(r: &HeaderMap) -> Value {
    let t = hv(r, "front-token").expect("front-token");
    serde_json::from_slice(&STANDARD.decode(t).unwrap()).unwrap()
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

fn auth_mode(mode: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("st-auth-mode", HeaderValue::from_str(mode).unwrap());
    h
}

/// Header-mode tokens of a response: (access, refresh).
fn header_tokens(r: &HeaderMap) -> (String, Option<String>) {
    (
        hv(r, "st-access-token").expect("st-access-token"),
        hv(r, "st-refresh-token"),
    )
}

async fn header_login(e: &Env, uid: impl Into<UserId>) -> (String, String, HeaderMap) {
    let mut resp = HeaderMap::new();
    let s =
        e.m.create_new_session_for_request(
            &auth_mode("header"),
            &mut resp,
            uid,
            json!({"role": "user"}),
            json!({"n": 1}),
        )
        .await
        .unwrap();
    assert_eq!(s.transport(), Transport::CurrentHeader);
    let (a, r) = header_tokens(&resp);
    (a, r.unwrap(), resp)
}

#[tokio::test]
async fn header_mode_signin_answers_with_header_tokens_and_no_cookie() {
    let e = both().await;
    let (access, refresh, resp) = header_login(&e, "alice").await;
    assert!(set_cookies(&resp).is_empty(), "no cookie in header mode");
    assert!(resp.get("anti-csrf").is_none(), "no anti-CSRF token");
    assert!(resp.get("id-refresh-token").is_none());
    assert!(!access.is_empty() && !refresh.is_empty());
    let f = front(&resp);
    assert_eq!(f["uid"], "alice");
    assert_eq!(f["up"], json!({"role": "user"}));
    let s =
        e.m.get_session(&bearer(&access), &mut HeaderMap::new(), true)
            .await
            .unwrap();
    assert_eq!(f["ate"], json!(s.access_token_expiry_ms()));
    let expose = hv(&resp, "access-control-expose-headers").unwrap();
    for h in ["st-access-token", "st-refresh-token", "front-token"] {
        assert!(expose.contains(h), "{expose}");
    }
    assert_eq!(hv(&resp, "cache-control").as_deref(), Some("no-store"));
    // Integer user ids are strings in the front token, as the SDK expects.
    let (_, _, resp) = header_login(&e, 42).await;
    assert_eq!(front(&resp)["uid"], "42");
}

#[tokio::test]
async fn bearer_access_token_is_verified_without_anti_csrf() {
    let e = both().await;
    let (access, _, _) = header_login(&e, "alice").await;
    // enable_csrf_protection = true (a POST), yet no anti-csrf header.
    let mut resp = HeaderMap::new();
    let s =
        e.m.get_session(&bearer(&access), &mut resp, true)
            .await
            .unwrap();
    assert_eq!(s.user_id(), &UserId::from("alice"));
    assert_eq!(s.transport(), Transport::CurrentHeader);
    assert!(resp.is_empty(), "nothing written for a committed token");
    // The scheme is case-insensitive.
    let mut h = HeaderMap::new();
    h.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("bearer  {access}")).unwrap(),
    );
    e.m.get_session(&h, &mut HeaderMap::new(), true)
        .await
        .unwrap();
    // Expired → TryRefreshToken, as with cookies.
    e.clock.advance(Duration::from_secs(3601));
    let r =
        e.m.get_session(&bearer(&access), &mut HeaderMap::new(), false)
            .await;
    assert!(matches!(r, Err(Error::TryRefreshToken { .. })), "{r:?}");
}

#[tokio::test]
async fn bearer_refresh_rotates_promotes_and_detects_theft() {
    let e = both().await;
    let (_, r0, _) = header_login(&e, "alice").await;
    // Refresh with the refresh token as a bearer token.
    let mut resp = HeaderMap::new();
    let s = e.m.refresh_session(&bearer(&r0), &mut resp).await.unwrap();
    assert_eq!(s.transport(), Transport::CurrentHeader);
    assert!(set_cookies(&resp).is_empty());
    assert!(resp.get("anti-csrf").is_none());
    let (a1, r1) = header_tokens(&resp);
    let r1 = r1.expect("a new refresh token");
    assert_ne!(r1, r0);
    assert_eq!(front(&resp)["uid"], "alice");
    // First use of the new access token promotes its refresh token and
    // answers with a new access token and front token in headers.
    let mut resp = HeaderMap::new();
    e.m.get_session(&bearer(&a1), &mut resp, true)
        .await
        .unwrap();
    let (a1b, none) = header_tokens(&resp);
    assert!(none.is_none() && a1b != a1);
    assert!(resp.get("front-token").is_some());
    // The superseded R0 is theft: the session is revoked and the client is
    // told to drop its tokens.
    let mut resp = HeaderMap::new();
    let r = e.m.refresh_session(&bearer(&r0), &mut resp).await;
    assert!(matches!(r, Err(Error::TokenTheftDetected { .. })), "{r:?}");
    assert_eq!(hv(&resp, "front-token").as_deref(), Some("remove"));
    assert_eq!(hv(&resp, "st-access-token").as_deref(), Some(""));
    assert_eq!(hv(&resp, "st-refresh-token").as_deref(), Some(""));
    assert!(set_cookies(&resp).is_empty());
    let r =
        e.m.refresh_session(&bearer(&r1), &mut HeaderMap::new())
            .await;
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
}

#[tokio::test]
async fn header_mode_logout_and_revocation_behave_as_with_cookies() {
    let e = both().await;
    let (a, r, _) = header_login(&e, "alice").await;
    let s =
        e.m.get_session(&bearer(&a), &mut HeaderMap::new(), true)
            .await
            .unwrap();
    let mut resp = HeaderMap::new();
    s.revoke_session(&mut resp).await.unwrap();
    assert_eq!(hv(&resp, "front-token").as_deref(), Some("remove"));
    assert!(set_cookies(&resp).is_empty());
    let mut resp = HeaderMap::new();
    let x = e.m.refresh_session(&bearer(&r), &mut resp).await;
    assert!(matches!(x, Err(Error::Unauthorized { .. })), "{x:?}");
    assert_eq!(hv(&resp, "front-token").as_deref(), Some("remove"));
    // By handle.
    let (_, r, _) = header_login(&e, "bob").await;
    let mut resp = HeaderMap::new();
    let s = e.m.refresh_session(&bearer(&r), &mut resp).await.unwrap();
    assert!(e.m.revoke_session(s.handle()).await.unwrap());
    let (a1, _) = header_tokens(&resp);
    // The refreshed access token's first use finds no row.
    let x =
        e.m.get_session(&bearer(&a1), &mut HeaderMap::new(), false)
            .await;
    assert!(matches!(x, Err(Error::Unauthorized { .. })), "{x:?}");
}

#[tokio::test]
async fn malformed_bearer_tokens_are_try_refresh_or_unauthorized() {
    let e = both().await;
    let (a, r, _) = header_login(&e, "alice").await;
    let cases: Vec<String> = vec![
        "x".into(),
        "a.b.c".into(),
        r.clone(),
        format!("{a}x"),
        "é".into(),
        "a".repeat(20_000),
        a.replace('.', ""),
    ];
    for t in &cases {
        let mut h = HeaderMap::new();
        let Ok(v) = HeaderValue::from_bytes(format!("Bearer {t}").as_bytes()) else {
            continue;
        };
        h.insert(AUTHORIZATION, v);
        let got = e.m.get_session(&h, &mut HeaderMap::new(), true).await;
        assert!(
            matches!(got, Err(Error::TryRefreshToken { .. })),
            "{t}: {got:?}"
        );
        if *t == r {
            continue; // a refresh token refreshes
        }
        let got = e.m.refresh_session(&h, &mut HeaderMap::new()).await;
        assert!(
            matches!(got, Err(Error::Unauthorized { .. })),
            "refresh {}: {got:?}",
            &t[..t.len().min(40)]
        );
    }
    // Non-UTF-8 bytes in the header.
    let mut h = HeaderMap::new();
    h.insert(
        AUTHORIZATION,
        HeaderValue::from_bytes(b"Bearer \xff\xfe.a.b").unwrap(),
    );
    assert!(matches!(
        e.m.get_session(&h, &mut HeaderMap::new(), true).await,
        Err(Error::TryRefreshToken { .. })
    ));
    assert!(matches!(
        e.m.refresh_session(&h, &mut HeaderMap::new()).await,
        Err(Error::Unauthorized { .. })
    ));
}

#[tokio::test]
async fn current_cookie_mode_uses_front_token_and_its_refresh_path() {
    let e = both().await;
    let mut resp = HeaderMap::new();
    let s =
        e.m.create_new_session_for_request(
            &auth_mode("cookie"),
            &mut resp,
            "alice",
            json!({}),
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(s.transport(), Transport::CurrentCookie);
    let cookies = set_cookies(&resp);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies[0].starts_with("sAccessToken=") && cookies[0].contains("Path=/;"));
    assert!(
        cookies[1].starts_with("sRefreshToken=")
            && cookies[1].contains("Path=/auth/session/refresh;")
    );
    assert!(cookies.iter().all(|c| c.contains("HttpOnly")));
    assert!(resp.get("id-refresh-token").is_none());
    let csrf = hv(&resp, "anti-csrf").expect("anti-CSRF in cookie mode");
    assert_eq!(front(&resp)["uid"], "alice");
    let pair = |c: &str| c.split(';').next().unwrap().to_owned();
    let access = pair(&cookies[0]);
    let refresh = pair(&cookies[1]);
    let mut req = auth_mode("cookie");
    req.insert(COOKIE, HeaderValue::from_str(&access).unwrap());
    // A POST needs the anti-CSRF token.
    assert!(matches!(
        e.m.get_session(&req, &mut HeaderMap::new(), true).await,
        Err(Error::TryRefreshToken { .. })
    ));
    req.insert("anti-csrf", HeaderValue::from_str(&csrf).unwrap());
    let s =
        e.m.get_session(&req, &mut HeaderMap::new(), true)
            .await
            .unwrap();
    assert_eq!(s.transport(), Transport::CurrentCookie);
    // A plain request of the same browser (a navigation, a form: no
    // `st-auth-mode`) is still this profile: no id-refresh cookie means no
    // 4.2.0 session, so nothing of the reference profile is cleared.
    let mut plain = HeaderMap::new();
    plain.insert(COOKIE, HeaderValue::from_str(&access).unwrap());
    let mut resp = HeaderMap::new();
    let s = e.m.get_session(&plain, &mut resp, false).await.unwrap();
    assert_eq!(s.transport(), Transport::CurrentCookie);
    let r = e.m.get_session(&plain, &mut resp, true).await;
    assert!(matches!(r, Err(Error::TryRefreshToken { .. })), "{r:?}");
    assert!(resp.is_empty(), "nothing cleared");
    // Refresh at the current SDK's refresh path: cookies again, no
    // id-refresh token.
    let mut req = auth_mode("cookie");
    req.insert(COOKIE, HeaderValue::from_str(&refresh).unwrap());
    let mut resp = HeaderMap::new();
    e.m.refresh_session(&req, &mut resp).await.unwrap();
    assert_eq!(set_cookies(&resp).len(), 2);
    assert!(resp.get("front-token").is_some() && resp.get("anti-csrf").is_some());
    assert!(resp.get("id-refresh-token").is_none());
    // Without a session cookie: Unauthorized, nothing cleared.
    let mut resp = HeaderMap::new();
    let r =
        e.m.get_session(&auth_mode("cookie"), &mut resp, false)
            .await;
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
    assert!(resp.is_empty());
}

#[tokio::test]
async fn the_reference_profile_is_unchanged_beside_the_current_one() {
    let e = both().await;
    let reference = env(None, true).await;
    for m in [&e.m, &reference.m] {
        // No st-auth-mode: the reference profile's three cookies.
        let mut resp = HeaderMap::new();
        let s = m
            .create_new_session_for_request(
                &HeaderMap::new(),
                &mut resp,
                "alice",
                json!({}),
                json!({}),
            )
            .await
            .unwrap();
        assert_eq!(s.transport(), Transport::Reference);
        let names: Vec<String> = set_cookies(&resp)
            .iter()
            .map(|c| c.split('=').next().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["sAccessToken", "sRefreshToken", "sIdRefreshToken"]);
        assert!(resp.get("front-token").is_none() && resp.get("id-refresh-token").is_some());
    }
    // Reference only: a header preference gets the reference cookies, and a
    // bearer token is no credential.
    let mut resp = HeaderMap::new();
    let s = reference
        .m
        .create_new_session_for_request(&auth_mode("header"), &mut resp, "a", json!({}), json!({}))
        .await
        .unwrap();
    assert_eq!(s.transport(), Transport::Reference);
    let (a, _, _) = header_login(&e, "alice").await;
    let r = reference
        .m
        .get_session(&bearer(&a), &mut HeaderMap::new(), false)
        .await;
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
}

#[tokio::test]
async fn allowed_methods_are_the_applications_choice() {
    // Cookies only: a header preference is answered with cookies, and a
    // bearer token is not read.
    let e = env(Some(CurrentSdk::new("/auth").with_header(false)), false).await;
    let mut resp = HeaderMap::new();
    let s = e
        .m
        .create_new_session_for_request(&auth_mode("header"), &mut resp, "a", json!({}), json!({}))
        .await
        .unwrap();
    assert_eq!(s.transport(), Transport::CurrentCookie);
    assert!(resp.get("st-access-token").is_none());
    let h = both().await;
    let (a, _, _) = header_login(&h, "alice").await;
    let r =
        e.m.get_session(&bearer(&a), &mut HeaderMap::new(), false)
            .await;
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
    // Header only (an API server): everything is header mode, whatever the
    // request says; an explicit transport not allowed is an invalid argument.
    let e = env(Some(CurrentSdk::new("/").with_cookies(false)), false).await;
    assert_eq!(
        e.m.config().current_sdk_refresh_path(),
        Some("/session/refresh")
    );
    let mut resp = HeaderMap::new();
    let s =
        e.m.create_new_session(&mut resp, "a", json!({}), json!({}))
            .await
            .unwrap();
    assert_eq!(s.transport(), Transport::CurrentHeader);
    let r =
        e.m.create_new_session_with(
            Transport::Reference,
            &mut HeaderMap::new(),
            "a",
            json!({}),
            json!({}),
        )
        .await;
    assert!(matches!(r, Err(Error::General { .. })), "{r:?}");
    // Nothing allowed is a configuration error.
    assert!(Config::builder()
        .with_reference_profile(false)
        .build()
        .is_err());
    assert!(Config::builder()
        .with_current_sdk(Some(
            CurrentSdk::new("/auth")
                .with_cookies(false)
                .with_header(false)
        ))
        .build()
        .is_err());
}

#[tokio::test]
async fn a_header_mode_token_in_a_cookie_fails_the_anti_csrf_check() {
    // Header-mode tokens carry no anti-CSRF token; moved into a cookie they
    // must not pass a check that cookies need (fail closed, §7.17).
    let e = both().await;
    let (a, _, _) = header_login(&e, "alice").await;
    let mut req = auth_mode("cookie");
    req.insert(
        COOKIE,
        HeaderValue::from_str(&format!("sAccessToken={a}")).unwrap(),
    );
    req.insert("anti-csrf", HeaderValue::from_static("anything"));
    let r = e.m.get_session(&req, &mut HeaderMap::new(), true).await;
    assert!(matches!(r, Err(Error::TryRefreshToken { .. })), "{r:?}");
}
