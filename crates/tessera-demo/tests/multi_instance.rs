//! Two demo servers on different ports share one PostgreSQL database: a
//! session created through one is used and refreshed through the other.
//!
//! Needs `TESSERA_TEST_POSTGRES_URL` (scripts/test-all.sh and
//! scripts/test-browser.sh set it). Without it the test is skipped with a
//! message, unless `TESSERA_REQUIRE_ALL_BACKENDS=1`, which makes it fail.

mod common;

use common::{Browser, Demo};
use serde_json::json;
use tessera_sqlx::testing::{fresh_url, Backend, POSTGRES_URL_VAR};

#[tokio::test]
async fn two_instances_share_sessions_through_postgres() {
    if std::env::var(POSTGRES_URL_VAR).map_or(true, |v| v.trim().is_empty()) {
        assert!(
            std::env::var("TESSERA_REQUIRE_ALL_BACKENDS").as_deref() != Ok("1"),
            "{POSTGRES_URL_VAR} is not set"
        );
        eprintln!("multi-instance test skipped: {POSTGRES_URL_VAR} is not set");
        return;
    }
    let db = fresh_url(Backend::Postgres).await;
    // Short access tokens, so that a refresh is needed within the test.
    let one = Demo::start(&db, &[], "2");
    let two = Demo::start(&db, &[], "2");
    assert_ne!(one.base, two.base);
    eprintln!(
        "multi-instance: backend postgres, {} and {}",
        one.base, two.base
    );

    // Sign up through the first...
    let mut b = Browser::default();
    let r = b
        .send(
            &one.base,
            "POST",
            "/api/signup",
            Some(json!({"username": "mia", "password": "password five"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // ...use the session through the second (same signing key, same rows).
    let me = b.send(&two.base, "GET", "/api/me", None).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["jwtPayload"]["username"], "mia");
    let r = b
        .send(
            &two.base,
            "PUT",
            "/api/me/info",
            Some(json!({"info": {"via": "two"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        b.send(&one.base, "GET", "/api/me", None).await.body["sessionInfo"],
        json!({"via": "two"})
    );

    // Let the access token expire; refresh through the second...
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    let r = b.send(&one.base, "GET", "/api/me", None).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("try_refresh_token"))
    );
    let stolen = b.clone();
    let r = b.send(&two.base, "POST", "/refresh/", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // ...and use the new access token through the first, which promotes the
    // new refresh token in the shared row.
    let r = b.send(&one.base, "GET", "/api/me", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.set_cookies,
        ["sAccessToken"],
        "first use after a refresh re-issues the access token"
    );
    let list = b.send(&two.base, "GET", "/api/sessions", None).await;
    assert_eq!(list.body["sessions"].as_array().unwrap().len(), 1);

    // The superseded refresh token, replayed at the first instance, is theft.
    let mut attacker = stolen;
    let r = attacker.send(&one.base, "POST", "/refresh/", None).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("token_theft_detected"))
    );
    // Revoked for both instances.
    let r = b.send(&two.base, "POST", "/refresh/", None).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("unauthorized"))
    );

    drop((one, two));
    tessera_sqlx::testing::discard(Backend::Postgres, &db).await;
}
