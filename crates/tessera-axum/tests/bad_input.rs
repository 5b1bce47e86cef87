//! Bad input at the HTTP layer: malformed and duplicated Cookie headers,
//! oversized values, odd anti-CSRF headers, wrong methods. The answer is the
//! session-expired status or another 4xx, never a 500 and never a panic.
//! Driven through the router with `tower::ServiceExt::oneshot` so that any
//! bytes hyper would accept can be sent.

mod common;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use common::{Browser, Harness};
use http::{HeaderValue, Request, StatusCode};
use tessera_testkit::forge;
use tower::ServiceExt;

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    headers: &[(&str, Vec<u8>)],
) -> (u16, String) {
    let mut req = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        req = req.header(*name, HeaderValue::from_bytes(value).expect("header bytes"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .expect("infallible");
    let status = res.status().as_u16();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn malformed_cookies_are_session_expired_never_500() {
    let h = Harness::new(|c| c).await;
    let app = h.app();
    // A real session, to mix real tokens with garbage.
    let addr = h.serve().await;
    let mut good = Browser::default();
    assert_eq!(
        good.send(addr, "POST", "/login?user=zed", false, None)
            .await
            .status,
        200
    );
    let access = good.cookies["sAccessToken"].clone();
    let refresh = good.cookies["sRefreshToken"].clone();
    let idr = good.cookies["sIdRefreshToken"].clone();
    let mut tampered = access.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("no cookie header", vec![]),
        ("empty cookie header", vec![b"".to_vec()]),
        ("only separators", vec![b";;;; ; =;=".to_vec()]),
        (
            "no equals sign",
            vec![b"sIdRefreshToken; sAccessToken".to_vec()],
        ),
        (
            "empty values",
            vec![b"sIdRefreshToken=; sAccessToken=; sRefreshToken=".to_vec()],
        ),
        (
            "garbage access",
            vec![format!("sIdRefreshToken={idr}; sAccessToken=garbage").into_bytes()],
        ),
        (
            "two dots only",
            vec![format!("sIdRefreshToken={idr}; sAccessToken=..").into_bytes()],
        ),
        (
            "four parts",
            vec![format!("sIdRefreshToken={idr}; sAccessToken={access}.x").into_bytes()],
        ),
        (
            "tampered signature",
            vec![format!("sIdRefreshToken={idr}; sAccessToken={tampered}").into_bytes()],
        ),
        (
            "alg none",
            vec![format!(
                "sIdRefreshToken={idr}; sAccessToken={}",
                forge::token(
                    r#"{"alg":"none","typ":"JWT"}"#,
                    r#"{"sh":"x","uid":"zed","exp":99999999999}"#,
                    ""
                )
            )
            .into_bytes()],
        ),
        (
            "hs512 header",
            vec![format!(
                "sIdRefreshToken={idr}; sAccessToken={}",
                forge::token(r#"{"alg":"HS512","typ":"JWT"}"#, "{}", "AAAA")
            )
            .into_bytes()],
        ),
        (
            "non-utf8 access",
            vec![[b"sIdRefreshToken=x; sAccessToken=\xff\xfe.\x80.\x81".as_slice()].concat()],
        ),
        (
            "non-utf8 id cookie",
            vec![b"sIdRefreshToken=\xff; sAccessToken=a.b.c".to_vec()],
        ),
        (
            "quoted access",
            vec![format!("sIdRefreshToken={idr}; sAccessToken=\"{access}").into_bytes()],
        ),
        (
            "oversized access (64 KiB)",
            vec![
                format!("sIdRefreshToken={idr}; sAccessToken={}", "e".repeat(65_536)).into_bytes(),
            ],
        ),
        (
            "oversized cookie names",
            vec![format!("{}=1; sIdRefreshToken={idr}", "n".repeat(100_000)).into_bytes()],
        ),
        (
            "10 000 cookies",
            vec![(0..10_000)
                .map(|i| format!("c{i}={i}"))
                .collect::<Vec<_>>()
                .join("; ")
                .into_bytes()],
        ),
        (
            "refresh token as access",
            vec![format!("sIdRefreshToken={idr}; sAccessToken={refresh}").into_bytes()],
        ),
        (
            "garbage refresh",
            vec![format!("sIdRefreshToken={idr}; sRefreshToken=garbage").into_bytes()],
        ),
        (
            "non-utf8 refresh",
            vec![b"sIdRefreshToken=x; sRefreshToken=\xc3\x28\xff".to_vec()],
        ),
        (
            "oversized refresh",
            vec![format!(
                "sIdRefreshToken={idr}; sRefreshToken={}",
                "r".repeat(65_536)
            )
            .into_bytes()],
        ),
        (
            "truncated refresh",
            vec![format!(
                "sIdRefreshToken={idr}; sRefreshToken={}",
                &refresh[..refresh.len() / 2]
            )
            .into_bytes()],
        ),
        (
            "access token as refresh",
            vec![format!("sIdRefreshToken={idr}; sRefreshToken={access}").into_bytes()],
        ),
        (
            "duplicated cookie headers, garbage first",
            vec![
                b"sAccessToken=zzz; sRefreshToken=zzz".to_vec(),
                format!("sIdRefreshToken={idr}; sAccessToken={access}; sRefreshToken={refresh}")
                    .into_bytes(),
            ],
        ),
        (
            "duplicated cookie headers, all garbage",
            vec![
                b"sIdRefreshToken=\xff".to_vec(),
                b"sIdRefreshToken=; sAccessToken=;".to_vec(),
                b";;".to_vec(),
            ],
        ),
    ];

    for (name, cookie_headers) in &cases {
        let headers: Vec<(&str, Vec<u8>)> = cookie_headers
            .iter()
            .map(|v| ("cookie", v.clone()))
            .collect();
        for (method, path) in [
            ("GET", "/me"),
            ("POST", "/me"),
            ("POST", "/refresh/"),
            ("GET", "/info"),
            ("POST", "/logout"),
        ] {
            let (status, body) = call(&app, method, path, &headers).await;
            assert_eq!(status, 401, "{name}: {method} {path} -> {status} {body}");
            assert!(body.starts_with(r#"{"error":""#), "{name}: {body}");
        }
        // The optional variant: anonymous or session-expired, never 500.
        let (status, body) = call(&app, "GET", "/maybe", &headers).await;
        assert!(
            status == 200 || status == 401,
            "{name}: /maybe -> {status} {body}"
        );
    }

    // Odd anti-CSRF headers next to a valid session.
    let cookie = good.cookie_header().into_bytes();
    for (name, csrf) in [
        ("empty", b"".to_vec()),
        ("non-utf8", b"\xff\xfe".to_vec()),
        ("oversized", vec![b'a'; 100_000]),
        ("almost right", {
            let mut t = good.anti_csrf.clone().unwrap().into_bytes();
            t.pop();
            t
        }),
    ] {
        let (status, body) = call(
            &app,
            "POST",
            "/me",
            &[("cookie", cookie.clone()), ("anti-csrf", csrf)],
        )
        .await;
        assert_eq!(status, 401, "anti-csrf {name}: {body}");
        assert_eq!(body, r#"{"error":"try_refresh_token"}"#);
    }
    // Two anti-CSRF headers: the first one counts.
    let right = good.anti_csrf.clone().unwrap().into_bytes();
    let (status, _) = call(
        &app,
        "POST",
        "/me",
        &[
            ("cookie", cookie.clone()),
            ("anti-csrf", right.clone()),
            ("anti-csrf", b"x".to_vec()),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        "POST",
        "/me",
        &[
            ("cookie", cookie.clone()),
            ("anti-csrf", b"x".to_vec()),
            ("anti-csrf", right),
        ],
    )
    .await;
    assert_eq!(status, 401);

    // And the real session is still fine.
    assert_eq!(good.send(addr, "GET", "/me", false, None).await.status, 200);
}

#[tokio::test]
async fn wrong_methods_on_the_refresh_route_are_4xx() {
    let h = Harness::new(|c| c).await;
    let app = h.app();
    for method in ["GET", "HEAD", "PUT", "DELETE", "PATCH", "TRACE", "BREW"] {
        let (status, _) = call(
            &app,
            method,
            "/refresh/",
            &[("cookie", b"sIdRefreshToken=a; sRefreshToken=b".to_vec())],
        )
        .await;
        assert_eq!(status, 405, "{method}");
    }
    // Near misses of the path are not the refresh API.
    for path in ["/refresh", "/refresh//", "/REFRESH/", "/refresh/x"] {
        let (status, _) = call(&app, "POST", path, &[]).await;
        assert_eq!(status, 404, "{path}");
    }
}

#[tokio::test]
async fn a_missing_layer_is_loud() {
    async fn me(_s: tessera_axum::Session) -> &'static str {
        "unreachable"
    }
    async fn maybe(_s: Option<tessera_axum::Session>) -> &'static str {
        "unreachable"
    }
    async fn handle(_t: tessera_axum::Tessera) -> &'static str {
        "unreachable"
    }
    let app = Router::new()
        .route("/me", get(me))
        .route("/maybe", get(maybe))
        .route("/handle", get(handle));
    for path in ["/me", "/maybe", "/handle"] {
        let (status, body) = call(&app, "GET", path, &[]).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR.as_u16(), "{path}");
        assert_eq!(body, r#"{"error":"internal"}"#, "the 500 body says nothing");
    }
}
