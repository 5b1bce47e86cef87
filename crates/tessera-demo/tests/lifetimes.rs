//! The demo's `--idle-timeout-secs` and `--absolute-lifetime-secs` on the
//! real binary: a session past either is refused at refresh with the reason
//! in the body.

mod common;

use std::time::Duration;

use common::{Browser, Demo};
use serde_json::json;
use tessera_sqlx::testing::{fresh_url, Backend};

async fn signed_up(base: &str, user: &str) -> Browser {
    let mut b = Browser::default();
    let r = b
        .send(
            base,
            "POST",
            "/api/signup",
            Some(json!({"username": user, "password": "password one"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    b
}

#[tokio::test]
async fn idle_timeout_and_absolute_lifetime_flags() {
    let db = fresh_url(Backend::Sqlite).await;
    // Access tokens of 1 s, an idle timeout of 2 s.
    let demo = Demo::start(&db, &["--idle-timeout-secs", "2"], "1");
    let base = demo.base.as_str();
    let mut a = signed_up(base, "alice").await;
    // Refresh and use the new tokens within the timeout: alive.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(a.send(base, "POST", "/refresh/", None).await.status, 200);
    assert_eq!(a.send(base, "GET", "/api/me", None).await.status, 200);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = a.send(base, "POST", "/refresh/", None).await;
    assert_eq!(
        (r.status, r.body["reason"].as_str()),
        (401, Some("idle_timeout")),
        "{}",
        r.body
    );
    drop(demo);

    let demo = Demo::start(&db, &["--absolute-lifetime-secs", "2"], "1");
    let base = demo.base.as_str();
    let mut b = signed_up(base, "bob").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(b.send(base, "POST", "/refresh/", None).await.status, 200);
    assert_eq!(b.send(base, "GET", "/api/me", None).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let r = b.send(base, "POST", "/refresh/", None).await;
    assert_eq!(
        (r.status, r.body["reason"].as_str()),
        (401, Some("absolute_lifetime")),
        "{}",
        r.body
    );
}
