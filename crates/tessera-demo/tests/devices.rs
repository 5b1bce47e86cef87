//! The demo binary's session list with devices, and the refresh grace
//! window, over real HTTP on SQLite: `--record-client-address` and
//! `--refresh-grace-secs` against an instance without them on the same
//! database.

mod common;

use std::time::Duration;

use common::{Browser, Demo};
use serde_json::{json, Value};
use tessera_sqlx::testing::{fresh_url, Backend};

/// Access-token validity (s): long enough for a loaded machine to list
/// before it expires, short enough to wait for.
const ACCESS_SECS: &str = "3";
const EXPIRED: Duration = Duration::from_millis(3_200);

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0";

/// Signs in (signing up first if `signup`) with a `User-Agent` header; the
/// session's cookies land in the returned browser.
async fn sign_in(base: &str, user: &str, user_agent: &str, signup: bool) -> Browser {
    let path = if signup { "/api/signup" } else { "/api/signin" };
    let res = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("user-agent", user_agent)
        .header("content-type", "application/json")
        .body(json!({"username": user, "password": "password one"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{path}");
    let mut b = Browser::default();
    b.absorb(res.headers());
    b
}

async fn sessions(b: &mut Browser, base: &str) -> Vec<Value> {
    let r = b.send(base, "GET", "/api/sessions", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["sessions"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_session_list_shows_devices_addresses_only_when_recorded_and_last_refresh() {
    let db = fresh_url(Backend::Sqlite).await;
    let recording = Demo::start(
        &db,
        &["--record-client-address", "--refresh-grace-secs", "30"],
        ACCESS_SECS,
    );
    let plain = Demo::start(&db, &[], ACCESS_SECS);

    let mut laptop = sign_in(&recording.base, "dana", FIREFOX, true).await;
    let mut phone = sign_in(&plain.base, "dana", "curl/8.5.0", false).await;

    let list = sessions(&mut laptop, &recording.base).await;
    assert_eq!(list.len(), 2);
    let (l, p) = (&list[0], &list[1]);
    assert_eq!(l["userAgent"], FIREFOX);
    assert_eq!(l["device"], "Firefox on Linux");
    assert_eq!(
        l["clientAddress"], "127.0.0.1",
        "recorded with the flag: the peer address"
    );
    assert_eq!(l["current"], true);
    assert_eq!(p["device"], "curl");
    assert_eq!(
        p["clientAddress"],
        Value::Null,
        "no address without the flag"
    );
    for s in &list {
        assert_eq!(s["lastRefreshedAt"], Value::Null, "never refreshed yet");
        assert_eq!(s["lastActiveAt"], s["createdAt"]);
        assert_eq!(s["label"], Value::Null);
    }

    // After a refresh whose tokens are used, the session's last refresh is
    // its promotion time.
    tokio::time::sleep(EXPIRED).await;
    let r = laptop
        .send(&recording.base, "POST", "/refresh/", None)
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"status": "ok"})));
    let list = sessions(&mut laptop, &recording.base).await;
    let l = &list[0];
    let refreshed = l["lastRefreshedAt"].as_i64().expect("set by the promotion");
    assert!(refreshed > l["createdAt"].as_i64().unwrap());
    assert_eq!(l["lastActiveAt"], refreshed);
    assert_eq!(list[1]["lastRefreshedAt"], Value::Null, "the other session");

    // Listing from the phone (after its own refresh) shows the same two,
    // the phone's marked.
    let r = phone.send(&plain.base, "POST", "/refresh/", None).await;
    assert_eq!(r.status, 200);
    let list = sessions(&mut phone, &plain.base).await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["current"], true);
}

#[tokio::test]
async fn a_second_copy_of_the_tokens_converges_within_the_grace_window_and_is_theft_without() {
    let db = fresh_url(Backend::Sqlite).await;
    let grace = Demo::start(&db, &["--refresh-grace-secs", "30"], ACCESS_SECS);
    let strict = Demo::start(&db, &[], ACCESS_SECS);

    for (demo, with_grace) in [(&grace, true), (&strict, false)] {
        let base = demo.base.as_str();
        let user = if with_grace { "erin" } else { "frank" };
        let mut tab = sign_in(base, user, FIREFOX, true).await;
        // A second holder of the same tokens that does not coordinate with
        // the first (another tab of a client without a shared lock, or an
        // app's second thread).
        let mut other = tab.clone();
        tokio::time::sleep(EXPIRED).await;
        let r = tab.send(base, "POST", "/refresh/", None).await;
        assert_eq!(r.status, 200);
        // The first tab's new access token commits its refresh token.
        assert_eq!(tab.send(base, "GET", "/api/me", None).await.status, 200);

        let r = other.send(base, "POST", "/refresh/", None).await;
        if with_grace {
            assert_eq!(
                (r.status, r.body.clone()),
                (200, json!({"status": "ok", "converged": "within_grace"})),
                "inside the window the superseded token converges"
            );
            assert_eq!(other.send(base, "GET", "/api/me", None).await.status, 200);
            assert_eq!(tab.send(base, "GET", "/api/me", None).await.status, 200);
        } else {
            assert_eq!(r.status, 401);
            assert_eq!(r.body["error"], "token_theft_detected");
            assert_eq!(tab.send(base, "GET", "/api/me", None).await.status, 401);
        }
    }
}
