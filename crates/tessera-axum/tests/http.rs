//! The axum integration over real HTTP (TCP on loopback, hyper server,
//! reqwest client) on a real SQLite store.

mod common;

use std::time::Duration;

use common::{Browser, Harness};
use serde_json::json;

const EXPIRED: Duration = Duration::from_secs(61);

async fn logged_in(h: &Harness, addr: std::net::SocketAddr, user: &str) -> Browser {
    let mut b = Browser::default();
    let r = b
        .send(addr, "POST", &format!("/login?user={user}"), false, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let _ = h;
    b
}

#[tokio::test]
async fn login_verify_anti_csrf_refresh_and_logout() {
    let h = Harness::new(|c| c).await;
    let addr = h.serve().await;
    let mut b = Browser::default();

    // Login sets the three cookies and both headers, and exposes them.
    let r = b.send(addr, "POST", "/login?user=alice", false, None).await;
    assert_eq!(r.status, 200);
    let mut names = r.set_cookie_names();
    names.sort();
    assert_eq!(names, ["sAccessToken", "sIdRefreshToken", "sRefreshToken"]);
    assert!(r.headers.contains_key("anti-csrf"));
    assert!(r.headers.contains_key("id-refresh-token"));
    let exposed = r.headers["access-control-expose-headers"].to_str().unwrap();
    assert!(exposed.contains("anti-csrf") && exposed.contains("id-refresh-token"));
    let refresh_cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|s| s.starts_with("sRefreshToken="))
        .unwrap();
    assert!(
        refresh_cookie.contains("Path=/refresh/"),
        "{refresh_cookie}"
    );

    // GET needs no anti-CSRF header.
    let r = b.send(addr, "GET", "/me", false, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["user"], "alice");
    assert_eq!(r.json()["payload"], json!({"role": "tester"}));
    assert!(
        r.set_cookie_names().is_empty(),
        "a plain verify sets nothing"
    );

    // Every other method does, by default.
    for method in ["POST", "PUT", "DELETE"] {
        let r = b.send(addr, method, "/me", false, None).await;
        assert_eq!(r.status, 401, "{method} without anti-csrf");
        assert_eq!(r.json(), json!({"error": "try_refresh_token"}));
        assert!(
            r.set_cookie_names().is_empty(),
            "TryRefreshToken leaves cookies"
        );
        let r = b.send(addr, method, "/me", true, None).await;
        assert_eq!(r.status, 200, "{method} with anti-csrf: {}", r.body);
    }
    // A wrong token is as bad as none.
    let mut forged = b.clone();
    forged.anti_csrf = Some("forged".into());
    assert_eq!(
        forged.send(addr, "POST", "/me", true, None).await.status,
        401
    );

    // Per-route choice.
    assert_eq!(
        b.send(addr, "POST", "/me-no-csrf", false, None)
            .await
            .status,
        200
    );
    assert_eq!(
        b.send(addr, "GET", "/me-always-csrf", false, None)
            .await
            .status,
        401
    );
    assert_eq!(
        b.send(addr, "GET", "/me-always-csrf", true, None)
            .await
            .status,
        200
    );

    // Expiry: try refresh, cookies untouched.
    h.advance(EXPIRED);
    let r = b.send(addr, "GET", "/me", false, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "try_refresh_token");
    assert!(r.set_cookie_names().is_empty());

    // The refresh API rotates everything.
    let old_csrf = b.anti_csrf.clone();
    let old_refresh = b.cookies["sRefreshToken"].clone();
    let r = b.send(addr, "POST", "/refresh/", false, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"status": "ok"}));
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_ne!(b.anti_csrf, old_csrf);
    assert_ne!(b.cookies["sRefreshToken"], old_refresh);
    assert!(r.headers["id-refresh-token"]
        .to_str()
        .unwrap()
        .contains(';'));

    // First use of the new access token: the core re-issues it.
    let r = b.send(addr, "POST", "/me", true, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.set_cookie_names(), ["sAccessToken"]);

    // Session info through the extractor.
    let r = b
        .send(addr, "PUT", "/info", true, Some(json!({"cart": [1, 2]})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = b.send(addr, "GET", "/info", false, None).await;
    assert_eq!(r.json(), json!({"cart": [1, 2]}));

    // Logout (POST: anti-CSRF required) clears everything.
    assert_eq!(
        b.send(addr, "POST", "/logout", false, None).await.status,
        401
    );
    let mut before_logout = b.clone();
    let r = b.send(addr, "POST", "/logout", true, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.clears_cookies());
    assert!(b.cookies.is_empty());
    let r = b.send(addr, "GET", "/me", false, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "unauthorized");
    // The refresh token from before logout is dead.
    let r = before_logout
        .send(addr, "POST", "/refresh/", false, None)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "unauthorized");
    assert!(r.clears_cookies());
}

#[tokio::test]
async fn theft_detected_over_http_revokes_the_session() {
    let h = Harness::new(|c| c).await;
    let addr = h.serve().await;
    let mut b = logged_in(&h, addr, "7").await;
    let stolen = b.clone();
    assert_eq!(
        b.send(addr, "POST", "/refresh/", false, None).await.status,
        200
    );
    // The new access token is used, which commits the new refresh token.
    assert_eq!(b.send(addr, "GET", "/me", false, None).await.status, 200);

    let mut attacker = stolen.clone();
    let r = attacker.send(addr, "POST", "/refresh/", false, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({"error": "token_theft_detected"}));
    assert!(r.clears_cookies());
    assert!(
        h.manager
            .get_all_session_handles_for_user(&tessera::UserId::from(7))
            .await
            .unwrap()
            .is_empty(),
        "revoked on theft by default"
    );
    let r = b.send(addr, "POST", "/refresh/", false, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "unauthorized");
}

/// Two tabs with one refresh token, with a grace window: the second refresh
/// is answered (not theft), and its body says the window answered it; the
/// first one's body is the plain `{"status":"ok"}`.
#[tokio::test]
async fn refresh_answered_by_the_grace_window_says_so() {
    let h = Harness::new(|c| c.with_refresh_grace(Duration::from_secs(30))).await;
    let addr = h.serve().await;
    let mut a = logged_in(&h, addr, "8").await;
    let mut b = a.clone();
    let r = a.send(addr, "POST", "/refresh/", false, None).await;
    assert_eq!((r.status, r.json()), (200, json!({"status": "ok"})));
    // The first tab's new access token promotes its refresh token.
    assert_eq!(a.send(addr, "GET", "/me", false, None).await.status, 200);

    let r = b.send(addr, "POST", "/refresh/", false, None).await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"status": "ok", "converged": "within_grace"}))
    );
    assert_eq!(b.send(addr, "GET", "/me", false, None).await.status, 200);
    assert_eq!(a.send(addr, "GET", "/me", false, None).await.status, 200);
}

#[tokio::test]
async fn session_expired_status_is_configurable() {
    let h = Harness::new(|c| c.with_session_expired_status(440)).await;
    let addr = h.serve().await;
    let mut anon = Browser::default();
    let r = anon.send(addr, "GET", "/me", false, None).await;
    assert_eq!(r.status, 440);
    assert_eq!(r.json()["error"], "unauthorized");
    let r = anon.send(addr, "POST", "/refresh/", false, None).await;
    assert_eq!(r.status, 440);

    let mut b = logged_in(&h, addr, "carol").await;
    let stolen = b.clone();
    h.advance(EXPIRED);
    assert_eq!(b.send(addr, "GET", "/me", false, None).await.status, 440);
    assert_eq!(
        b.send(addr, "POST", "/refresh/", false, None).await.status,
        200
    );
    assert_eq!(b.send(addr, "GET", "/me", false, None).await.status, 200);
    let r = stolen
        .clone()
        .send(addr, "POST", "/refresh/", false, None)
        .await;
    assert_eq!(r.status, 440);
    assert_eq!(r.json()["error"], "token_theft_detected");
}

#[tokio::test]
async fn cookie_changes_reach_the_response_when_the_handler_fails() {
    let h = Harness::new(|c| c).await;
    let addr = h.serve().await;
    let mut b = logged_in(&h, addr, "dave").await;
    h.advance(EXPIRED);
    assert_eq!(
        b.send(addr, "POST", "/refresh/", false, None).await.status,
        200
    );

    // The extractor promotes the refresh token and issues a new access token,
    // then the handler fails with an internal error: the cookie still arrives,
    // and the 500 body says nothing.
    let before = b.cookies["sAccessToken"].clone();
    let r = b.send(addr, "POST", "/fail-after", true, None).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.body, r#"{"error":"internal"}"#);
    assert!(!r.body.contains("SECRET") && !r.body.contains("hunter2"));
    assert_eq!(r.set_cookie_names(), ["sAccessToken"]);
    assert_ne!(b.cookies["sAccessToken"], before);

    // Same with a handler that returns its own error response.
    h.advance(EXPIRED);
    assert_eq!(
        b.send(addr, "POST", "/refresh/", false, None).await.status,
        200
    );
    let r = b.send(addr, "GET", "/fail-plain", false, None).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body, "handler said no");
    assert_eq!(r.set_cookie_names(), ["sAccessToken"]);

    // A session revoked elsewhere: reading its info fails with Unauthorized
    // and the cleared cookies reach the response.
    let handle = b.send(addr, "GET", "/me", false, None).await.json()["handle"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(h.manager.revoke_session(&handle).await.unwrap());
    let r = b.send(addr, "GET", "/info", false, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "unauthorized");
    assert!(r.clears_cookies());
}

#[tokio::test]
async fn general_errors_are_opaque_and_say_their_kind() {
    let h = Harness::new(|c| c).await;
    let addr = h.serve().await;
    let mut b = logged_in(&h, addr, "erin").await;
    // A user id over the storage limit, from the request: the caller's
    // misuse, 400 (the same call fails again), not an outage.
    let long = "u".repeat(300);
    let r = Browser::default()
        .send(addr, "POST", &format!("/login?user={long}"), false, None)
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body, r#"{"error":"invalid_argument"}"#);
    h.store.close().await; // the database goes away
                           // An outage: 503 with Retry-After (retryable), the cause not shown.
    let r = Browser::default()
        .send(addr, "POST", "/login?user=frank", false, None)
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body, r#"{"error":"unavailable"}"#);
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(r.headers["content-type"], "application/json");
    let r = b.send(addr, "POST", "/refresh/", false, None).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body, r#"{"error":"unavailable"}"#);
    // Verifying needs no database at all.
    assert_eq!(b.send(addr, "GET", "/me", false, None).await.status, 200);
}

#[tokio::test]
async fn optional_session() {
    let h = Harness::new(|c| c).await;
    let addr = h.serve().await;
    let mut anon = Browser::default();
    let r = anon.send(addr, "GET", "/maybe", false, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"user": null}));
    assert!(
        r.headers.get("set-cookie").is_none(),
        "anonymous: nothing sent back"
    );

    let mut b = logged_in(&h, addr, "5").await;
    let r = b.send(addr, "GET", "/maybe", false, None).await;
    assert_eq!(r.json(), json!({"user": 5}));
    // POST: anti-CSRF applies to the optional variant too.
    assert_eq!(
        b.send(addr, "POST", "/maybe", false, None).await.status,
        401
    );
    assert_eq!(b.send(addr, "POST", "/maybe", true, None).await.status, 200);

    // Expired access token: the front end must refresh, not become anonymous.
    h.advance(EXPIRED);
    let r = b.send(addr, "GET", "/maybe", false, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "try_refresh_token");

    // Session surely gone (no id-refresh cookie): anonymous, cookies cleared.
    let mut half = b.clone();
    half.cookies.remove("sIdRefreshToken");
    let r = half.send(addr, "GET", "/maybe", false, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"user": null}));
    assert!(r.clears_cookies());
}

#[tokio::test]
async fn refresh_route_methods() {
    let h = Harness::new(|c| c).await;
    let addr = h.serve().await;
    let mut b = logged_in(&h, addr, "gina").await;
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let r = b.send(addr, method, "/refresh/", true, None).await;
        assert_eq!(r.status, 405, "{method}");
        assert!(r.set_cookie_names().is_empty());
    }
    let r = b.send(addr, "OPTIONS", "/refresh/", false, None).await;
    assert_eq!(r.status, 204);
    let allow = r.headers["access-control-allow-headers"].to_str().unwrap();
    for name in [
        "anti-csrf",
        "supertokens-sdk-name",
        "supertokens-sdk-version",
    ] {
        assert!(allow.contains(name), "{allow}");
    }
    assert_eq!(r.headers["access-control-allow-credentials"], "true");
    // The session still works after all that.
    assert_eq!(
        b.send(addr, "POST", "/refresh/", false, None).await.status,
        200
    );
}

#[tokio::test]
async fn oversized_and_duplicated_headers_over_tcp() {
    let h = Harness::new(|c| c).await;
    let addr = h.serve().await;
    let b = logged_in(&h, addr, "hal").await;

    // Far beyond hyper's header buffer: rejected by the server with a 4xx
    // (431) or a closed connection, never a 500.
    let huge = "a".repeat(1 << 20);
    let res = reqwest::Client::new()
        .get(format!("http://{addr}/me"))
        .header("cookie", format!("sIdRefreshToken=x; sAccessToken={huge}"))
        .send()
        .await;
    if let Ok(res) = res {
        assert!(res.status().is_client_error(), "{}", res.status());
    }
    // Large but accepted by hyper: the token is over the core's 8 KiB cap.
    let big = "a".repeat(60_000);
    let res = reqwest::Client::new()
        .get(format!("http://{addr}/me"))
        .header("cookie", format!("sIdRefreshToken=x; sAccessToken={big}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Two Cookie headers (HTTP/2 style) are read as one list. Two different
    // sAccessToken copies are refused whatever their order (cookie tossing:
    // no copy is chosen); junk pairs beside the good cookies are skipped.
    let good = b.cookie_header();
    for (first, second, want) in [
        ("sAccessToken=garbage".to_owned(), good.clone(), 401),
        (good.clone(), "sAccessToken=garbage".to_owned(), 401),
        ("junk;;=;".to_owned(), good.clone(), 200),
    ] {
        let res = reqwest::Client::new()
            .get(format!("http://{addr}/me"))
            .header("cookie", first)
            .header("cookie", second)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), want);
    }
    // The session is unharmed.
    assert_eq!(
        b.clone().send(addr, "GET", "/me", false, None).await.status,
        200
    );
}

/// The layer recycles request buffers (per thread) once a response is out.
/// A `Tessera` handle that outlives its request (moved into a spawned task)
/// keeps its buffer: what it records later must not show up on another
/// request's response.
#[tokio::test]
async fn a_handle_outliving_its_request_does_not_leak_into_later_responses() {
    use axum::routing::get;
    use tessera_axum::{Tessera, TesseraLayer};

    let h = Harness::new(|c| c).await;
    async fn escape(tessera: Tessera) -> &'static str {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tessera.clear_session_cookies();
        });
        "spawned"
    }
    async fn slow(_tessera: Tessera) -> &'static str {
        tokio::time::sleep(Duration::from_millis(400)).await;
        "slow"
    }
    let app = axum::Router::new()
        .route("/escape", get(escape))
        .route("/slow", get(slow))
        .layer(TesseraLayer::new(h.manager.clone()));
    let addr = common::serve(app).await;
    let mut b = Browser::default();
    for _ in 0..3 {
        let r = b.send(addr, "GET", "/escape", false, None).await;
        assert_eq!((r.status, r.body.as_str()), (200, "spawned"));
        assert!(r.set_cookie_names().is_empty());
        // Runs while the escaped handle clears cookies into its own buffer.
        let r = b.send(addr, "GET", "/slow", false, None).await;
        assert_eq!(r.status, 200);
        assert!(
            r.set_cookie_names().is_empty() && !r.headers.contains_key("id-refresh-token"),
            "{:?}",
            r.headers
        );
    }
}

/// Outside review, logout CSRF: a request without any session cookie (a
/// cross-site form POST under SameSite=Lax) is refused and its answer
/// changes no cookie, on every route of the app.
#[tokio::test]
async fn cookie_less_requests_get_no_set_cookie() {
    let h = Harness::new(|c| c.with_blacklisting(true)).await;
    let addr = h.serve().await;
    let routes = [
        ("POST", "/refresh/"),
        ("POST", "/me"),
        ("GET", "/me"),
        ("PUT", "/me"),
        ("DELETE", "/me"),
        ("POST", "/me-no-csrf"),
        ("GET", "/me-always-csrf"),
        ("GET", "/info"),
        ("PUT", "/info"),
        ("POST", "/logout"),
        ("POST", "/fail-after"),
        ("GET", "/fail-plain"),
        ("GET", "/maybe"),
    ];
    for (method, path) in routes {
        let mut b = Browser::default();
        let body = (method == "PUT").then(|| json!({"x": 1}));
        let r = b.send(addr, method, path, false, body).await;
        assert!(
            r.status == 401 || (path == "/maybe" && r.status == 200),
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
        assert!(
            r.headers.get("set-cookie").is_none() && r.headers.get("id-refresh-token").is_none(),
            "{method} {path} without cookies changes cookies: {:?}",
            r.headers
        );
    }
    // With the session's cookies, a revoked session is still cleared.
    let mut b = logged_in(&h, addr, "csrf-victim").await;
    let handle = b.send(addr, "GET", "/me", false, None).await.json()["handle"]
        .as_str()
        .unwrap()
        .to_owned();
    h.manager.revoke_session(&handle).await.unwrap();
    let r = b.send(addr, "POST", "/logout", true, None).await;
    assert_eq!(r.status, 401);
    assert!(r.clears_cookies(), "{:?}", r.headers);
}

/// Outside review, cacheable tokens: every response that carries tokens is
/// `no-store`; a plain verification's response is left to the application.
#[tokio::test]
async fn responses_with_tokens_are_no_store() {
    let h = Harness::new(|c| c).await;
    let addr = h.serve().await;
    let no_store = |r: &common::Reply| {
        r.headers
            .get_all("cache-control")
            .iter()
            .flat_map(|v| v.to_str().unwrap().split(','))
            .any(|d| d.trim() == "no-store")
    };
    let mut b = Browser::default();
    let r = b.send(addr, "POST", "/login?user=cache", false, None).await;
    assert!(no_store(&r), "sign-in: {:?}", r.headers);
    let r = b.send(addr, "GET", "/me", false, None).await;
    assert!(
        r.headers.get("cache-control").is_none(),
        "plain GET: {:?}",
        r.headers
    );
    let r = b.send(addr, "POST", "/refresh/", false, None).await;
    assert!(no_store(&r), "refresh");
    // The first use of the refreshed access token: a new sAccessToken on a GET.
    let r = b.send(addr, "GET", "/me", false, None).await;
    assert_eq!(r.set_cookie_names(), ["sAccessToken"]);
    assert!(no_store(&r), "promotion: {:?}", r.headers);
    let r = b.send(addr, "POST", "/logout", true, None).await;
    assert!(r.clears_cookies() && no_store(&r), "logout");

    // A handler that sets its own, weaker, Cache-Control keeps its
    // directives and gains no-store.
    async fn cached_login(tessera: tessera_axum::Tessera) -> impl axum::response::IntoResponse {
        tessera
            .create_new_session("cached", json!({}), json!({}))
            .await
            .unwrap();
        ([("cache-control", "public, max-age=60")], "ok")
    }
    let app = axum::Router::new()
        .route("/cached-login", axum::routing::post(cached_login))
        .layer(tessera_axum::TesseraLayer::new(h.manager.clone()));
    let addr = common::serve(app).await;
    let r = Browser::default()
        .send(addr, "POST", "/cached-login", false, None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["cache-control"], "public, max-age=60, no-store");
}
