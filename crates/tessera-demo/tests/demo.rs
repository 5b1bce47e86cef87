//! The demo binary end to end on SQLite: the web API over real HTTP, the
//! admin subcommands, the walkthrough.

mod common;

use common::{admin, stderr, stdout, Browser, Demo};
use serde_json::json;
use tessera_sqlx::testing::{fresh_url, Backend};

fn creds(user: &str, password: &str) -> Option<serde_json::Value> {
    Some(json!({"username": user, "password": password}))
}

#[tokio::test]
async fn web_api_accounts_sessions_and_logout() {
    let db = fresh_url(Backend::Sqlite).await;
    // No subcommand: the web server is the default.
    let demo = Demo::start(&db, &[], "60");
    let base = demo.base.as_str();

    let cfg = Browser::default()
        .send(base, "GET", "/api/config", None)
        .await;
    assert_eq!(cfg.body["development"], true);
    assert_eq!(cfg.body["refreshPath"], "/refresh/");
    let page = Browser::default().send(base, "GET", "/", None).await;
    assert!(page.body.as_str().unwrap().contains("Tessera"));

    let mut a = Browser::default();
    let r = a
        .send(base, "POST", "/api/signup", creds("alice", "password one"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let alice_id = r.body["userId"].as_i64().unwrap();
    for (user, pw, status, err) in [
        ("alice", "password two", 409, "username_taken"),
        ("bad name", "password two", 400, "invalid_username"),
        ("bob", "short", 400, "invalid_password"),
    ] {
        let r = Browser::default()
            .send(base, "POST", "/api/signup", creds(user, pw))
            .await;
        assert_eq!((r.status, r.body["error"].as_str().unwrap()), (status, err));
    }
    for (user, pw) in [("alice", "wrong password"), ("nobody", "password one")] {
        let r = Browser::default()
            .send(base, "POST", "/api/signin", creds(user, pw))
            .await;
        assert_eq!(r.status, 403, "403, not the session-expired 401");
        assert_eq!(r.body["error"], "invalid_credentials");
    }
    let mut b = Browser::default();
    let r = b
        .send(base, "POST", "/api/signin", creds("alice", "password one"))
        .await;
    assert_eq!(r.status, 200);

    let me = a.send(base, "GET", "/api/me", None).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["userId"], alice_id);
    assert_eq!(
        me.body["jwtPayload"],
        json!({"username": "alice", "role": "user"})
    );
    assert_eq!(me.body["sessionInfo"]["note"], "");

    // PUT without / with the anti-CSRF header.
    let mut no_csrf = a.clone();
    no_csrf.anti_csrf = None;
    let r = no_csrf
        .send(base, "PUT", "/api/me/info", Some(json!({"info": {"x": 1}})))
        .await;
    assert_eq!(r.status, 401);
    let r = a
        .send(base, "PUT", "/api/me/info", Some(json!({"info": {"x": 1}})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        a.send(base, "GET", "/api/me", None).await.body["sessionInfo"],
        json!({"x": 1})
    );

    // Sessions: both listed, the current one marked.
    let list = a.send(base, "GET", "/api/sessions", None).await.body["sessions"].clone();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let a_handle = me.body["sessionHandle"].as_str().unwrap();
    for s in list {
        assert_eq!(s["current"], s["handle"] == a_handle);
    }
    let b_handle = list.iter().find(|s| s["current"] == false).unwrap()["handle"]
        .as_str()
        .unwrap()
        .to_owned();

    // Someone else's handle is not ours to revoke.
    let mut carol = Browser::default();
    carol
        .send(
            base,
            "POST",
            "/api/signup",
            creds("carol", "password three"),
        )
        .await;
    let r = carol
        .send(base, "DELETE", &format!("/api/sessions/{b_handle}"), None)
        .await;
    assert_eq!(r.status, 404);
    // Alice revokes her other session.
    let r = a
        .send(base, "DELETE", &format!("/api/sessions/{b_handle}"), None)
        .await;
    assert_eq!(r.body, json!({"revoked": true, "current": false}));
    let r = b.send(base, "POST", "/refresh/", None).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("unauthorized"))
    );

    // Garbage cookies: the session-expired status, never a 500.
    let mut junk = Browser::default();
    junk.cookies.insert("sIdRefreshToken".into(), "x".into());
    junk.cookies.insert("sAccessToken".into(), "a.b.c".into());
    assert_eq!(junk.send(base, "GET", "/api/me", None).await.status, 401);
    assert_eq!(
        junk.send(base, "GET", "/api/sessions", None).await.status,
        401
    );

    // Log out, then log out everywhere.
    let r = a.send(base, "POST", "/api/logout", None).await;
    assert_eq!(r.status, 200);
    assert!(a.cookies.is_empty(), "cookies cleared: {:?}", a.cookies);
    assert_eq!(a.send(base, "GET", "/api/me", None).await.status, 401);
    let mut c2 = Browser::default();
    c2.send(
        base,
        "POST",
        "/api/signin",
        creds("carol", "password three"),
    )
    .await;
    let r = carol.send(base, "POST", "/api/logout-all", None).await;
    assert_eq!(r.body, json!({"loggedOut": true, "revoked": 2}));
    assert!(carol.cookies.is_empty());
    assert_eq!(c2.send(base, "POST", "/refresh/", None).await.status, 401);
}

#[tokio::test]
async fn admin_subcommands() {
    let db = fresh_url(Backend::Sqlite).await;
    let demo = Demo::start(&db, &["serve"], "60");
    let base = demo.base.as_str();
    let mut a = Browser::default();
    assert_eq!(
        a.send(base, "POST", "/api/signup", creds("dora", "password four"))
            .await
            .status,
        200
    );
    let mut a2 = Browser::default();
    a2.send(base, "POST", "/api/signin", creds("dora", "password four"))
        .await;
    let handle = a.send(base, "GET", "/api/me", None).await.body["sessionHandle"]
        .as_str()
        .unwrap()
        .to_owned();

    // List by name and by id.
    for who in ["dora", "1"] {
        let out = admin(&db, &["sessions", who]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains(&handle), "{}", stdout(&out));
        assert!(stdout(&out).contains("2 session(s) of user 1"));
    }
    let out = admin(&db, &["sessions", "nobody"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no user named \"nobody\""));

    // Revoke one, twice.
    let out = admin(&db, &["revoke", &handle]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("revoked session"));
    let out = admin(&db, &["revoke", &handle]);
    assert!(!out.status.success(), "a second revoke finds nothing");
    assert_eq!(a.send(base, "POST", "/refresh/", None).await.status, 401);

    // Revoke all.
    let out = admin(&db, &["revoke-all", "dora"]);
    assert!(
        stdout(&out).contains("revoked 1 session(s) of user 1"),
        "{}",
        stdout(&out)
    );
    assert_eq!(a2.send(base, "POST", "/refresh/", None).await.status, 401);

    // Cleanup of a large table of expired sessions, with progress.
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    for i in 0..5000 {
        sqlx::query(
            "INSERT INTO tessera_sessions (session_handle, user_id, refresh_token_hash_2, \
             session_info, jwt_payload, created_at, expires_at) VALUES (?, '9', ?, 'null', 'null', 1, 2)",
        )
        .bind(format!("expired-{i}"))
        .bind("0".repeat(64))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let mut live = Browser::default();
    live.send(base, "POST", "/api/signin", creds("dora", "password four"))
        .await;
    let out = admin(&db, &["cleanup", "--batch-size", "700"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("removing 5000 expired session(s)"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("removed 5000 expired session(s)"));
    let progress = stderr(&out);
    assert!(progress.contains("removed 700/5000 (14%)"), "{progress}");
    assert!(progress.contains("removed 5000/5000 (100%)"), "{progress}");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tessera_sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 1, "only the live session is left");
    assert_eq!(live.send(base, "GET", "/api/me", None).await.status, 200);
    let out = admin(&db, &["cleanup"]);
    assert!(stdout(&out).contains("no expired sessions"));

    // Rotate the signing key: a fresh instance (a restart) rejects the old
    // access token with try-refresh, and the refresh issues a new one.
    let out = admin(&db, &["rotate-key"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("signing key rotated"));
    drop(demo);
    let demo = Demo::start(&db, &[], "60");
    let r = live.send(&demo.base, "GET", "/api/me", None).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("try_refresh_token"))
    );
    assert_eq!(
        live.send(&demo.base, "POST", "/refresh/", None)
            .await
            .status,
        200
    );
    assert_eq!(
        live.send(&demo.base, "GET", "/api/me", None).await.status,
        200
    );
}

/// `rotate-key` says what really happens: a running server keeps the old
/// key until it reloads (here it has not: it still accepts the old token),
/// a server started afterwards uses the new key at once, a token signed with
/// the new key makes the running server reload at once, and from then on the
/// old token gets try-refresh.
#[tokio::test]
async fn rotate_key_message_says_what_running_servers_do() {
    let db = fresh_url(Backend::Sqlite).await;
    let running = Demo::start(&db, &[], "3600");
    let mut a = Browser::default();
    let r = a
        .send(
            &running.base,
            "POST",
            "/api/signup",
            creds("erin", "password eight"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let out = admin(&db, &["rotate-key"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let recheck = format!("{} s", tessera::KEY_RECHECK_INTERVAL.as_secs());
    for expected in [
        "signing key rotated",
        "running servers keep signing new access tokens with the old key, and accepting it",
        recheck.as_str(),
        "at once when a request brings an access token signed with the new key",
        "Servers started from now on use the new key",
        "TryRefreshToken",
        "the demo does not accept the previous key",
        "nobody is signed out",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(
        !text.contains("now get TryRefreshToken"),
        "the old, wrong claim: {text}"
    );

    // The running server has not reloaded its keys: the old token still works.
    let r = a.send(&running.base, "GET", "/api/me", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A server started now signs and verifies with the new key only.
    let fresh = Demo::start(&db, &[], "3600");
    let mut old = a.clone();
    let r = a.send(&fresh.base, "GET", "/api/me", None).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("try_refresh_token"))
    );
    assert_eq!(
        a.send(&fresh.base, "POST", "/refresh/", None).await.status,
        200
    );
    // The new-key token makes the running server reload at once...
    let r = a.send(&running.base, "GET", "/api/me", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // ...after which it refuses the old-key token.
    let r = old.send(&running.base, "GET", "/api/me", None).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("try_refresh_token"))
    );
}

/// Without blacklisting a logged-out session's access token still passes
/// verification until it expires; the account routes must still refuse it:
/// it can neither list the user's sessions nor revoke another one, and the
/// other session keeps working.
#[tokio::test]
async fn revoked_session_cannot_act_on_the_account() {
    let db = fresh_url(Backend::Sqlite).await;
    let demo = Demo::start(&db, &[], "3600");
    let base = demo.base.as_str();
    let mut a = Browser::default();
    let r = a
        .send(base, "POST", "/api/signup", creds("frank", "password nine"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut b = Browser::default();
    let r = b
        .send(base, "POST", "/api/signin", creds("frank", "password nine"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let b_handle = r.body["sessionHandle"].as_str().unwrap().to_owned();

    // Session A logs out; its (unexpired) tokens are kept, as a thief would.
    let mut stale = a.clone();
    assert_eq!(a.send(base, "POST", "/api/logout", None).await.status, 200);

    let r = stale.send(base, "GET", "/api/sessions", None).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("unauthorized")),
        "listing with a logged-out session: {}",
        r.body
    );
    assert!(
        r.set_cookies.iter().any(|c| c == "sAccessToken"),
        "the refusal clears the cookies: {:?}",
        r.set_cookies
    );
    for (method, path) in [
        ("DELETE", format!("/api/sessions/{b_handle}")),
        ("POST", "/api/logout-all".to_owned()),
        ("GET", "/api/me".to_owned()),
        ("PUT", "/api/me/info".to_owned()),
    ] {
        let mut stale = stale.clone();
        let body = (method == "PUT").then(|| json!({"info": {"stolen": true}}));
        let r = stale.send(base, method, &path, body).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (401, Some("unauthorized")),
            "{method} {path} with a logged-out session: {}",
            r.body
        );
    }

    // B is untouched.
    let r = b.send(base, "GET", "/api/me", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["sessionInfo"]["note"], "", "info not overwritten");
    let list = b.send(base, "GET", "/api/sessions", None).await;
    assert_eq!(list.status, 200);
    let handles: Vec<&str> = list.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["handle"].as_str().unwrap())
        .collect();
    assert_eq!(handles, [b_handle.as_str()]);
    assert_eq!(b.send(base, "POST", "/refresh/", None).await.status, 200);
}

/// `GET /api/sessions` pages: 120 sessions of one user (made with the core
/// API on the same database) come 50 at a time with a `next` cursor, and
/// following the cursors yields every handle exactly once; `limit` is capped.
/// On every backend, since the page is read with each database's SQL.
#[tokio::test]
async fn sessions_list_is_paginated() {
    for backend in common::soak_backends("demo pagination") {
        let db = fresh_url(backend).await;
        let demo = Demo::start(&db, &[], "3600");
        let base = demo.base.as_str();
        let mut me = Browser::default();
        let r = me
            .send(base, "POST", "/api/signup", creds("hana", "password ten"))
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.body);
        let uid = tessera::UserId::Int(r.body["userId"].as_i64().unwrap());
        let current = r.body["sessionHandle"].as_str().unwrap().to_owned();

        let store = tessera_sqlx::connect(&db).await.unwrap();
        let config = tessera::Config::builder()
            .with_cookie_secure(false)
            .build()
            .unwrap();
        let core = tessera::SessionManager::new(config, store).await.unwrap();
        for _ in 0..119 {
            core.create_new_session(
                &mut tessera::RecordedResponse::default(),
                uid.clone(),
                json!({}),
                json!({}),
            )
            .await
            .unwrap();
        }
        // Someone else's session is never listed.
        core.create_new_session(
            &mut tessera::RecordedResponse::default(),
            tessera::UserId::Int(9999),
            json!({}),
            json!({}),
        )
        .await
        .unwrap();
        let mut expected = core.get_all_session_handles_for_user(&uid).await.unwrap();
        assert_eq!(expected.len(), 120);

        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut path = "/api/sessions".to_owned();
        loop {
            let r = me.send(base, "GET", &path, None).await;
            assert_eq!(r.status, 200, "{backend}: {path}: {}", r.body);
            let page = r.body["sessions"].as_array().unwrap();
            sizes.push(page.len());
            for s in page {
                let h = s["handle"].as_str().unwrap().to_owned();
                assert_eq!(s["current"], h == current, "{backend}");
                seen.push(h);
            }
            match r.body["next"].as_str() {
                Some(next) => path = format!("/api/sessions?cursor={next}"),
                None => break,
            }
            assert!(sizes.len() < 10, "{backend}: the pages never end");
        }
        assert_eq!(sizes, [50, 50, 20], "{backend}: default page size");
        let listed = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), listed, "{backend}: a handle listed twice");
        expected.sort();
        assert_eq!(seen, expected, "{backend}: every handle exactly once");

        for (query, len, has_next) in [("?limit=7", 7, true), ("?limit=200", 120, false)] {
            let r = me
                .send(base, "GET", &format!("/api/sessions{query}"), None)
                .await;
            assert_eq!(r.status, 200, "{backend}: {query}");
            assert_eq!(r.body["sessions"].as_array().unwrap().len(), len, "{query}");
            assert_eq!(r.body["next"].is_string(), has_next, "{backend}: {query}");
        }
        // More than the largest page: a bigger `limit` is capped at 200.
        for _ in 0..90 {
            core.create_new_session(
                &mut tessera::RecordedResponse::default(),
                uid.clone(),
                json!({}),
                json!({}),
            )
            .await
            .unwrap();
        }
        let r = me
            .send(base, "GET", "/api/sessions?limit=100000", None)
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.body);
        assert_eq!(
            r.body["sessions"].as_array().unwrap().len(),
            200,
            "{backend}"
        );
        assert!(r.body["next"].is_string(), "{backend}");
        for (query, err) in [
            ("?limit=0", "invalid_limit"),
            ("?limit=x", "invalid_limit"),
            ("?cursor=junk", "invalid_cursor"),
        ] {
            let r = me
                .send(base, "GET", &format!("/api/sessions{query}"), None)
                .await;
            assert_eq!(
                (r.status, r.body["error"].as_str()),
                (400, Some(err)),
                "{query}"
            );
        }
        drop(demo);
        eprintln!("demo pagination: backend {backend}");
        tessera_sqlx::testing::discard(backend, &db).await;
    }
}

#[tokio::test]
async fn walkthrough_subcommand() {
    let db = fresh_url(Backend::Sqlite).await;
    let out = admin(&db, &["walkthrough"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("token theft detected"), "{text}");
    assert!(text.contains("Done."));
}

/// The users table on every database the store supports (PostgreSQL and
/// MySQL/MariaDB when their test URLs are set): sign up, sign in, user names
/// compared exactly, the admin listing.
#[tokio::test]
async fn accounts_on_every_backend() {
    for backend in tessera_sqlx::testing::available_backends() {
        let db = fresh_url(backend).await;
        let demo = Demo::start(&db, &[], "60");
        let base = demo.base.as_str();
        let mut upper = Browser::default();
        let r = upper
            .send(base, "POST", "/api/signup", creds("Ann", "password six"))
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.body);
        let r = Browser::default()
            .send(base, "POST", "/api/signup", creds("ann", "password seven"))
            .await;
        assert_eq!(
            r.status, 200,
            "{backend}: user names are case-sensitive: {}",
            r.body
        );
        let r = Browser::default()
            .send(base, "POST", "/api/signup", creds("ann", "password seven"))
            .await;
        assert_eq!(r.status, 409, "{backend}");
        let mut b = Browser::default();
        let r = b
            .send(base, "POST", "/api/signin", creds("Ann", "password six"))
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.body);
        let r = Browser::default()
            .send(base, "POST", "/api/signin", creds("Ann", "password seven"))
            .await;
        assert_eq!(r.status, 403, "{backend}");
        let me = b.send(base, "GET", "/api/me", None).await;
        assert_eq!(me.body["jwtPayload"]["username"], "Ann", "{backend}");
        let out = admin(&db, &["sessions", "Ann"]);
        assert!(out.status.success(), "{backend}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("2 session(s)"),
            "{backend}: {}",
            stdout(&out)
        );
        drop(demo);
        eprintln!("demo accounts: backend {backend}");
        tessera_sqlx::testing::discard(backend, &db).await;
    }
}
