//! The protocol conformance suite (docs/PROTOCOL.md §3–§5): every operation
//! of `SessionManager` and each of its outcomes.
//!
//! The scenarios are written once, against the harness in `support`: in this
//! crate they run on the in-memory store of `tessera-testkit` (no database);
//! `tessera-sqlx/tests/protocol.rs` runs the same files on SQLite, PostgreSQL
//! and MariaDB (every backend CI has; a missing URL fails the run there).
//! Every scenario uses its own fresh store and a manual clock, so expiry and
//! key rotation are tested without sleeping.

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderValue, COOKIE, SET_COOKIE};
use serde_json::json;
use tessera::Clock as _;
use tessera::{
    ConfigBuilder, Error, ReuseKind, SigningKeySource, UserId, ACCESS_TOKEN_COOKIE,
    ID_REFRESH_TOKEN_COOKIE, REFRESH_TOKEN_COOKIE,
};
use tessera_testkit::forge::b64;

use crate::support::*;

// ---------------------------------------------------------------------------
// Scenarios

async fn create_verify_and_cookie_shape(h: Harness) {
    let m = h.default_manager().await;
    let mut resp = HeaderMap::new();
    let s = m
        .create_new_session(&mut resp, "alice", json!({"role": "admin"}), json!(null))
        .await
        .unwrap();
    let set: Vec<String> = resp
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(set.len(), 3, "{set:?}");
    let find = |n: &str| {
        set.iter()
            .find(|c| c.starts_with(&format!("{n}=")))
            .unwrap()
    };
    assert!(find(ACCESS_TOKEN_COOKIE).contains("HttpOnly"));
    assert!(find(ACCESS_TOKEN_COOKIE).contains("Secure"));
    assert!(find(ACCESS_TOKEN_COOKIE).contains("Path=/;"));
    assert!(find(REFRESH_TOKEN_COOKIE).contains("Path=/refresh/"));
    assert!(find(REFRESH_TOKEN_COOKIE).contains("HttpOnly"));
    assert!(!find(ID_REFRESH_TOKEN_COOKIE).contains("HttpOnly"));
    assert!(!find(ID_REFRESH_TOKEN_COOKIE).contains("Secure"));
    assert!(set.iter().all(|c| c.contains("SameSite=Lax")));
    let idr = resp["id-refresh-token"].to_str().unwrap();
    let (value, exp) = idr.split_once(';').unwrap();
    assert!(find(ID_REFRESH_TOKEN_COOKIE).contains(value));
    assert_eq!(
        exp.parse::<i64>().unwrap(),
        h.clock.now_ms() + 2400 * 3600 * 1000
    );
    let expose = resp["access-control-expose-headers"].to_str().unwrap();
    assert!(expose.contains("id-refresh-token") && expose.contains("anti-csrf"));
    assert!(!resp["anti-csrf"].is_empty());

    let mut b = Browser::default();
    b.absorb(&resp);
    let mut resp2 = HeaderMap::new();
    let got = m.get_session(&b.request(), &mut resp2, true).await.unwrap();
    assert!(resp2.is_empty(), "a plain verification sets nothing");
    assert_eq!(got.handle(), s.handle());
    assert_eq!(got.user_id(), &UserId::from("alice"));
    assert_eq!(got.jwt_payload(), &json!({"role": "admin"}));
    assert_eq!(
        m.get_all_session_handles_for_user(&UserId::from("alice"))
            .await
            .unwrap(),
        vec![s.handle().to_owned()]
    );
}

async fn access_token_expiry_and_refresh(h: Harness) {
    let m = h.default_manager().await;
    let mut b = login(&m, 1, json!([1, 2])).await;
    verify(&m, &mut b).await.unwrap();
    h.advance(Duration::from_secs(3599));
    verify(&m, &mut b).await.unwrap();
    h.advance(Duration::from_secs(1));
    assert_try_refresh(verify(&m, &mut b).await);
    let old_csrf = b.anti_csrf.clone();
    let s = refresh(&m, &mut b).await.unwrap();
    assert_eq!(s.user_id(), &UserId::Int(1));
    assert_ne!(
        b.anti_csrf, old_csrf,
        "a refresh issues a new anti-CSRF token"
    );
    // First use of the new access token promotes and re-issues it.
    let mut resp = HeaderMap::new();
    let s2 = m.get_session(&b.request(), &mut resp, true).await.unwrap();
    assert_eq!(s2.jwt_payload(), &json!([1, 2]));
    assert_eq!(resp.get_all(SET_COOKIE).iter().count(), 1);
    b.absorb(&resp);
    // The re-issued token has no parent: nothing more to do.
    let mut resp = HeaderMap::new();
    m.get_session(&b.request(), &mut resp, true).await.unwrap();
    assert!(resp.is_empty());
    // The refresh extended the session from the moment of promotion.
    let row = m.store().load_session(s.handle()).await.unwrap().unwrap();
    assert_eq!(row.expires_at_ms, h.clock.now_ms() + 2400 * 3600 * 1000);
}

async fn session_expiry_is_unauthorized(h: Harness) {
    let m = h
        .manager(|c| c.with_refresh_token_validity(Duration::from_secs(3600)))
        .await;
    let mut b = login(&m, "u", json!(null)).await;
    h.advance(Duration::from_secs(3601));
    assert_try_refresh(verify(&m, &mut b).await);
    let mut resp = HeaderMap::new();
    assert_unauthorized(m.refresh_session(&b.request(), &mut resp).await);
    assert!(is_cleared(&resp));
}

async fn anti_csrf_on_and_off(h: Harness) {
    let m = h.default_manager().await;
    let b = login(&m, "u", json!(null)).await;
    let mut no_header = b.clone();
    no_header.anti_csrf = None;
    let mut wrong = b.clone();
    wrong.anti_csrf = Some("x".repeat(43));
    let mut resp = HeaderMap::new();
    assert_try_refresh(m.get_session(&no_header.request(), &mut resp, true).await);
    assert_try_refresh(m.get_session(&wrong.request(), &mut resp, true).await);
    assert!(resp.is_empty(), "TryRefreshToken leaves cookies alone");
    m.get_session(&no_header.request(), &mut resp, false)
        .await
        .unwrap();
    m.get_session(&b.request(), &mut resp, true).await.unwrap();

    let off = h.manager(|c| c.with_anti_csrf(false)).await;
    let mut resp = HeaderMap::new();
    off.create_new_session(&mut resp, "v", json!(null), json!(null))
        .await
        .unwrap();
    assert!(resp.get("anti-csrf").is_none());
    let mut b = Browser::default();
    b.absorb(&resp);
    off.get_session(&b.request(), &mut HeaderMap::new(), true)
        .await
        .expect("enable_csrf_protection is ignored when anti-CSRF is off");
    // Refresh does not issue one either.
    let mut resp = HeaderMap::new();
    off.refresh_session(&b.request(), &mut resp).await.unwrap();
    assert!(resp.get("anti-csrf").is_none());
}

async fn blacklisting_on_and_off(h: Harness) {
    let m = h.default_manager().await;
    let mut b = login(&m, "u", json!(null)).await;
    let s = verify(&m, &mut b).await.unwrap();
    assert!(m.revoke_session(s.handle()).await.unwrap());
    assert!(!m.revoke_session(s.handle()).await.unwrap());
    verify(&m, &mut b)
        .await
        .expect("without blacklisting a revoked session's access token lives on");

    let bl = h.manager(|c| c.with_blacklisting(true)).await;
    let mut b = login(&bl, "u", json!(null)).await;
    let s = verify(&bl, &mut b).await.unwrap();
    bl.revoke_session(s.handle()).await.unwrap();
    let mut resp = HeaderMap::new();
    assert_unauthorized(bl.get_session(&b.request(), &mut resp, true).await);
    assert!(is_cleared(&resp));
}

async fn theft_on_reuse_revokes_by_default(h: Harness) {
    let m = h.default_manager().await;
    let mut b = login(&m, 7, json!(null)).await;
    let r0 = b.cookie(REFRESH_TOKEN_COOKIE).unwrap().to_owned();
    refresh(&m, &mut b).await.unwrap();
    // Using R0 again before the child is used is not theft: R0 is still the
    // committed token.
    let mut attacker = b.clone();
    attacker.set(REFRESH_TOKEN_COOKIE, &r0);
    refresh(&m, &mut attacker.clone()).await.unwrap();
    // The legitimate client uses its new access token: C1 is committed.
    let s = verify(&m, &mut b).await.unwrap();
    let mut resp = HeaderMap::new();
    match m.refresh_session(&attacker.request(), &mut resp).await {
        Err(Error::TokenTheftDetected {
            user_id,
            session_handle,
            reuse,
        }) => {
            assert_eq!(user_id, UserId::Int(7));
            assert_eq!(session_handle, s.handle());
            // A sibling of the committed token, at once, without a grace
            // window configured: classified by the default window.
            assert_eq!(reuse, ReuseKind::WithinGrace);
        }
        other => panic!("expected theft, got {other:?}"),
    }
    assert!(is_cleared(&resp));
    assert!(m.store().load_session(s.handle()).await.unwrap().is_none());
    assert_unauthorized(refresh(&m, &mut b).await);

    // Opt-out: the session survives, the caller decides.
    let keep = h.manager(|c| c.with_revoke_session_on_theft(false)).await;
    let mut b = login(&keep, 8, json!(null)).await;
    let r0 = b.cookie(REFRESH_TOKEN_COOKIE).unwrap().to_owned();
    refresh(&keep, &mut b).await.unwrap();
    let s = verify(&keep, &mut b).await.unwrap();
    let mut attacker = b.clone();
    attacker.set(REFRESH_TOKEN_COOKIE, &r0);
    assert!(matches!(
        refresh(&keep, &mut attacker).await,
        Err(Error::TokenTheftDetected { .. })
    ));
    assert!(keep
        .store()
        .load_session(s.handle())
        .await
        .unwrap()
        .is_some());
    refresh(&keep, &mut b).await.unwrap();
}

async fn unpromoted_child_is_promoted_by_refresh(h: Harness) {
    let m = h.default_manager().await;
    let mut b = login(&m, "u", json!(null)).await;
    let r0 = b.cookie(REFRESH_TOKEN_COOKIE).unwrap().to_owned();
    refresh(&m, &mut b).await.unwrap();
    // The client refreshes again without using its access token (C1 is an
    // unpromoted child): C1 is promoted and C2 issued.
    refresh(&m, &mut b).await.unwrap();
    let mut old = b.clone();
    old.set(REFRESH_TOKEN_COOKIE, &r0);
    assert!(matches!(
        refresh(&m, &mut old).await,
        Err(Error::TokenTheftDetected { .. })
    ));
}

async fn sibling_access_token_is_unauthorized(h: Harness) {
    let m = h.default_manager().await;
    let b = login(&m, "u", json!(null)).await;
    let (mut c1, mut c2) = (b.clone(), b.clone());
    refresh(&m, &mut c1).await.unwrap();
    refresh(&m, &mut c2).await.unwrap();
    verify(&m, &mut c1).await.unwrap();
    let mut resp = HeaderMap::new();
    assert_unauthorized(m.get_session(&c2.request(), &mut resp, true).await);
    assert!(is_cleared(&resp));
    verify(&m, &mut c1).await.unwrap();
}

async fn user_id_types_and_payload_round_trip(h: Harness) {
    let m = h.default_manager().await;
    let payload = json!({"n": 1.5, "s": "ünïcødé ✓", "a": [null, true, {"deep": [1]}], "big": 9007199254740993u64});
    let mut bi = login(&m, 42, payload.clone()).await;
    let mut bs = login(&m, "42", json!("just a string")).await;
    let si = verify(&m, &mut bi).await.unwrap();
    let ss = verify(&m, &mut bs).await.unwrap();
    assert_eq!(si.user_id(), &UserId::Int(42));
    assert_eq!(ss.user_id(), &UserId::Str("42".into()));
    assert_eq!(si.jwt_payload(), &payload);
    assert_eq!(ss.jwt_payload(), &json!("just a string"));
    let si = refresh(&m, &mut bi).await.unwrap();
    assert_eq!(si.user_id(), &UserId::Int(42));
    assert_eq!(si.jwt_payload(), &payload, "payload survives refresh");
    assert_eq!(
        m.get_all_session_handles_for_user(&UserId::Int(42))
            .await
            .unwrap()
            .len(),
        1
    );
    for info in [
        json!(null),
        json!(3),
        json!("s"),
        json!([1, {"x": "y"}]),
        json!(true),
    ] {
        m.update_session_info(si.handle(), &info).await.unwrap();
        assert_eq!(m.get_session_info(si.handle()).await.unwrap(), info);
    }
    let mut resp = HeaderMap::new();
    m.create_new_session(&mut resp, "x".repeat(300), json!(null), json!(null))
        .await
        .expect_err("over-long user ids are refused");
}

async fn revoke_and_list_by_user(h: Harness) {
    let m = h.default_manager().await;
    let mut handles = Vec::new();
    for _ in 0..5 {
        let mut b = login(&m, "carol", json!(null)).await;
        handles.push(verify(&m, &mut b).await.unwrap().handle().to_owned());
    }
    let other = login(&m, "dave", json!(null)).await;
    let mut listed = m
        .get_all_session_handles_for_user(&UserId::from("carol"))
        .await
        .unwrap();
    listed.sort();
    handles.sort();
    assert_eq!(listed, handles, "every handle, not just the first");
    let summaries = m
        .list_sessions_for_user(&UserId::from("carol"))
        .await
        .unwrap();
    assert_eq!(summaries.len(), 5);
    assert!(m.revoke_session(&handles[0]).await.unwrap());
    assert_eq!(
        m.revoke_all_sessions_for_user(&UserId::from("carol"))
            .await
            .unwrap(),
        4
    );
    assert!(m
        .get_all_session_handles_for_user(&UserId::from("carol"))
        .await
        .unwrap()
        .is_empty());
    verify(&m, &mut other.clone()).await.unwrap();
    assert_eq!(
        m.get_all_session_handles_for_user(&UserId::from("dave"))
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn session_object_info_and_revoke(h: Harness) {
    let m = h.default_manager().await;
    let mut b = login(&m, "u", json!(null)).await;
    let s = verify(&m, &mut b).await.unwrap();
    let mut resp = HeaderMap::new();
    assert_eq!(
        s.get_session_info(&mut resp).await.unwrap(),
        json!({"info": true})
    );
    s.update_session_info(&json!({"cart": [1, 2]}), &mut resp)
        .await
        .unwrap();
    assert_eq!(
        m.get_session_info(s.handle()).await.unwrap(),
        json!({"cart": [1, 2]})
    );
    assert!(resp.is_empty());
    s.revoke_session(&mut resp).await.unwrap();
    assert!(is_cleared(&resp));
    let mut resp = HeaderMap::new();
    assert_unauthorized(s.get_session_info(&mut resp).await);
    assert!(is_cleared(&resp));
    let mut resp = HeaderMap::new();
    assert_unauthorized(s.update_session_info(&json!(1), &mut resp).await);
    assert!(is_cleared(&resp));
    assert_unauthorized(m.get_session_info(s.handle()).await);
    assert_unauthorized(m.update_session_info("no-such-handle", &json!(1)).await);
}

async fn signing_key_rotation_without_overlap(h: Harness) {
    let m = h
        .manager(|c| {
            c.with_signing_key(SigningKeySource::Dynamic {
                update_interval: Duration::from_secs(3600),
            })
            .with_access_token_validity(Duration::from_secs(7200))
        })
        .await;
    let mut b = login(&m, "u", json!(null)).await;
    h.advance(Duration::from_secs(3599));
    verify(&m, &mut b).await.unwrap();
    h.advance(Duration::from_secs(2));
    // The key is due. Verification does not wait on the database: it goes on
    // with the cached key and rotates on a background task...
    verify(&m, &mut b).await.unwrap();
    // ...after which the old token fails.
    let mut rotated = false;
    for _ in 0..500 {
        match verify(&m, &mut b).await {
            Err(Error::TryRefreshToken { .. }) => {
                rotated = true;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(rotated, "the background reload rotated the key");
    refresh(&m, &mut b).await.unwrap();
    verify(&m, &mut b).await.unwrap();
    let keys = m
        .store()
        .signing_keys(
            &tessera::StoredKey {
                value: vec![1; 32],
                created_at_ms: 0,
            },
            &|_| None,
        )
        .await
        .unwrap();
    assert!(keys.previous.is_some());
    assert_eq!(keys.current.created_at_ms, h.clock.now_ms());
}

async fn signing_key_rotation_with_overlap(h: Harness) {
    let m = h
        .manager(|c| {
            c.with_signing_key(SigningKeySource::Dynamic {
                update_interval: Duration::from_secs(3600),
            })
            .with_access_token_validity(Duration::from_secs(1800))
            .with_accept_previous_signing_key(true)
        })
        .await;
    h.advance(Duration::from_secs(3000));
    let mut b = login(&m, "u", json!(null)).await; // signed with key 1
    h.advance(Duration::from_secs(700)); // key 1 rotated at +3600
    let mut fresh = login(&m, "w", json!(null)).await; // signed with key 2
    verify(&m, &mut fresh).await.unwrap();
    verify(&m, &mut b)
        .await
        .expect("old key still accepted while its tokens are unexpired");
    h.advance(Duration::from_secs(1101)); // past rotation + access validity
    assert_try_refresh(verify(&m, &mut b).await);
}

async fn key_holder_payload_span_is_kept_and_validated_where_used(h: Harness) {
    // The layout reader does not validate the payload of a verified token
    // (docs/PROTOCOL.md §3.2): a holder of the signing key who writes a
    // payload span that is not one JSON value gets it back as text, the
    // parsed payload is null, and the promotion that would re-sign it
    // refuses before writing anything.
    let key = vec![9u8; 32];
    let k2 = key.clone();
    let m = h
        .manager(move |c| {
            c.with_signing_key(SigningKeySource::Function(Arc::new(move || Ok(k2.clone()))))
        })
        .await;
    let re_sign = |token: &str| {
        let (header, _, _) = tessera_testkit::forge::segments(token);
        let claims = tessera_testkit::forge::claims_text(token);
        let start = claims.find(",\"pld\":").expect("pld") + 7;
        let end = claims.find(",\"iat\":").expect("iat");
        let bent = format!("{}1,\"x\":0{}", &claims[..start], &claims[end..]);
        tessera_testkit::forge::sign(&key, &header, &b64(&bent))
    };
    let mut b = login(&m, "u", json!({"role": "a"})).await;
    let mut bent = b.clone();
    bent.set(
        ACCESS_TOKEN_COOKIE,
        &re_sign(b.cookie(ACCESS_TOKEN_COOKIE).unwrap()),
    );
    let s = verify(&m, &mut bent)
        .await
        .expect("verified by the key holder's signature");
    assert_eq!(s.jwt_payload_json(), "1,\"x\":0");
    assert_eq!(s.jwt_payload(), &serde_json::Value::Null);

    // A refreshed access token (first use promotes) with the same bend.
    let r0 = b.cookie(REFRESH_TOKEN_COOKIE).unwrap().to_owned();
    refresh(&m, &mut b).await.unwrap();
    let mut bent_child = b.clone();
    bent_child.set(
        ACCESS_TOKEN_COOKIE,
        &re_sign(b.cookie(ACCESS_TOKEN_COOKIE).unwrap()),
    );
    assert_try_refresh(verify(&m, &mut bent_child).await);
    // Nothing was promoted: the parent refresh token is still the committed
    // one, so refreshing with it again is no theft.
    let mut parent = b.clone();
    parent.set(REFRESH_TOKEN_COOKIE, &r0);
    refresh(&m, &mut parent)
        .await
        .expect("the parent is still committed");
}

async fn user_supplied_key_function(h: Harness) {
    let key = Arc::new(std::sync::Mutex::new(vec![9u8; 32]));
    let k2 = key.clone();
    let m = h
        .manager(move |c| {
            c.with_signing_key(SigningKeySource::Function(Arc::new(move || {
                Ok(k2.lock().unwrap().clone())
            })))
        })
        .await;
    let mut b = login(&m, "u", json!(null)).await;
    verify(&m, &mut b).await.unwrap();
    *key.lock().unwrap() = vec![10u8; 32];
    assert_try_refresh(verify(&m, &mut b).await);
    refresh(&m, &mut b).await.unwrap();
    verify(&m, &mut b).await.unwrap();
}

async fn two_instances_share_sessions_and_keys(h: Harness) {
    let cfg = |c: ConfigBuilder| {
        c.with_signing_key(SigningKeySource::Dynamic {
            update_interval: Duration::from_secs(3600),
        })
    };
    let m1 = h.manager(cfg).await;
    let m2 = h.manager(cfg).await;
    let mut b = login(&m1, "u", json!({"k": 1})).await;
    verify(&m2, &mut b).await.unwrap();
    refresh(&m2, &mut b).await.unwrap();
    verify(&m1, &mut b).await.unwrap();
    // Scheduled rotation: both instances reach the due time, one rotates,
    // the other reads the same new key.
    h.advance(Duration::from_secs(3601));
    let mut b1 = login(&m1, "a", json!(null)).await;
    let mut b2 = login(&m2, "b", json!(null)).await;
    verify(&m2, &mut b1).await.unwrap();
    verify(&m1, &mut b2).await.unwrap();
    let header = |b: &Browser| {
        b.cookie(ACCESS_TOKEN_COOKIE)
            .unwrap()
            .split('.')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(header(&b1), header(&b2), "both sign with the same key");
    // A rotation forced on one instance reaches the other at once, through
    // the unknown key id.
    m1.rotate_signing_key().await.unwrap();
    h.advance(Duration::from_secs(2));
    let mut b3 = login(&m1, "c", json!(null)).await;
    assert_ne!(header(&b3), header(&b1));
    verify(&m2, &mut b3).await.unwrap();
    let mut b4 = login(&m2, "d", json!(null)).await;
    assert_eq!(header(&b4), header(&b3));
    verify(&m1, &mut b4).await.unwrap();
}

async fn concurrent_refreshes_with_one_token(h: Harness) {
    let m = h.default_manager().await;
    let b = login(&m, "u", json!(null)).await;
    let mut b1 = b.clone();
    refresh(&m, &mut b1).await.unwrap(); // b1 holds an unpromoted child
    for start in [b, b1] {
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (m, mut b) = (m.clone(), start.clone());
            tasks.push(tokio::spawn(async move { refresh(&m, &mut b).await }));
        }
        for t in tasks {
            t.await.unwrap().expect("every parallel refresh succeeds");
        }
    }
}

async fn concurrent_promotion_of_two_children(h: Harness) {
    let m = h.default_manager().await;
    for round in 0..5 {
        let b = login(&m, format!("u{round}"), json!(null)).await;
        let (mut c1, mut c2) = (b.clone(), b.clone());
        refresh(&m, &mut c1).await.unwrap();
        refresh(&m, &mut c2).await.unwrap();
        // Two access tokens, each the first use of a different child.
        let (m1, m2) = (m.clone(), m.clone());
        let t1 = tokio::spawn(async move { verify(&m1, &mut c1).await.map(|_| ()) });
        let t2 = tokio::spawn(async move { verify(&m2, &mut c2).await.map(|_| ()) });
        let results = [t1.await.unwrap(), t2.await.unwrap()];
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let unauth = results
            .iter()
            .filter(|r| matches!(r, Err(Error::Unauthorized { .. })))
            .count();
        assert_eq!((ok, unauth), (1, 1), "round {round}: {results:?}");

        // The same race through refresh: one promotes, the other is theft.
        let b = login(&m, format!("v{round}"), json!(null)).await;
        let (mut c1, mut c2) = (b.clone(), b.clone());
        refresh(&m, &mut c1).await.unwrap();
        refresh(&m, &mut c2).await.unwrap();
        let (m1, m2) = (m.clone(), m.clone());
        let t1 = tokio::spawn(async move { refresh(&m1, &mut c1).await.map(|_| ()) });
        let t2 = tokio::spawn(async move { refresh(&m2, &mut c2).await.map(|_| ()) });
        let results = [t1.await.unwrap(), t2.await.unwrap()];
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let theft = results
            .iter()
            .filter(|r| matches!(r, Err(Error::TokenTheftDetected { .. })))
            .count();
        assert_eq!((ok, theft), (1, 1), "round {round}: {results:?}");
    }
}

async fn remove_expired_sessions_in_batches(h: Harness) {
    let m = h
        .manager(|c| c.with_refresh_token_validity(Duration::from_secs(3600)))
        .await;
    for i in 0..25 {
        login(&m, i, json!(null)).await;
    }
    h.advance(Duration::from_secs(3601));
    let live = login(&m, "live", json!(null)).await;
    assert_eq!(m.count_expired_sessions().await.unwrap(), 25);
    let mut seen = Vec::new();
    let n = m
        .remove_expired_sessions(10, |t| seen.push(t))
        .await
        .unwrap();
    assert_eq!(n, 25);
    assert_eq!(seen, vec![10, 20, 25]);
    assert_eq!(m.count_expired_sessions().await.unwrap(), 0);
    verify(&m, &mut live.clone()).await.unwrap();
    assert!(m
        .get_all_session_handles_for_user(&UserId::Int(3))
        .await
        .unwrap()
        .is_empty());
}

/// Malformed input of every kind: never a panic, never General.
async fn bad_input_table(h: Harness) {
    let m = h.default_manager().await;
    let b = login(&m, "u", json!(null)).await;
    let access = b.cookie(ACCESS_TOKEN_COOKIE).unwrap().to_owned();
    let idr = b.cookie(ID_REFRESH_TOKEN_COOKIE).unwrap().to_owned();
    let refresh_tok = b.cookie(REFRESH_TOKEN_COOKIE).unwrap().to_owned();
    let csrf = b.anti_csrf.clone().unwrap();
    let parts: Vec<&str> = access.split('.').collect();
    let mut tampered_payload = parts[1].to_owned().into_bytes();
    tampered_payload[5] ^= 1;
    let tampered_payload = String::from_utf8(tampered_payload).unwrap();
    let mut tampered_sig = parts[2].to_owned().into_bytes();
    tampered_sig[0] = if tampered_sig[0] == b'A' { b'B' } else { b'A' };
    let tampered_sig = String::from_utf8(tampered_sig).unwrap();
    let none_header = b64(r#"{"alg":"none","typ":"JWT"}"#);
    let rs_header = b64(r#"{"alg":"RS256","typ":"JWT"}"#);
    let hs512 = b64(r#"{"alg":"HS512","typ":"JWT"}"#);

    let tokens: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("truncated", access.as_bytes()[..access.len() / 2].to_vec()),
        ("padded", format!("{access}==").into_bytes()),
        (
            "padded segment",
            format!("{}.{}=.{}", parts[0], parts[1], parts[2]).into_bytes(),
        ),
        ("extra segment", format!("{access}.x").into_bytes()),
        (
            "alg none",
            format!("{none_header}.{}.", parts[1]).into_bytes(),
        ),
        (
            "alg none with sig",
            format!("{none_header}.{}.{}", parts[1], parts[2]).into_bytes(),
        ),
        (
            "wrong alg RS256",
            format!("{rs_header}.{}.{}", parts[1], parts[2]).into_bytes(),
        ),
        (
            "wrong alg HS512",
            format!("{hs512}.{}.{}", parts[1], parts[2]).into_bytes(),
        ),
        (
            "tampered payload",
            format!("{}.{tampered_payload}.{}", parts[0], parts[2]).into_bytes(),
        ),
        (
            "tampered signature",
            format!("{}.{}.{tampered_sig}", parts[0], parts[1]).into_bytes(),
        ),
        // Over the 8 KiB access-token cap, under the 64 KiB Cookie-header cap.
        ("oversized", vec![b'a'; 9_000]),
        // Over the Cookie-header cap: the header is ignored whole, so there is
        // no id-refresh cookie either (Unauthorized, below).
        ("oversized header", vec![b'a'; 100_000]),
        ("non-utf8", vec![0xff, 0xfe, b'.', 0x80, b'.', 0x81]),
        ("garbage", b"not a jwt at all".to_vec()),
        ("dots", b"...".to_vec()),
    ];
    for (what, tok) in &tokens {
        let mut cookie =
            format!("{ID_REFRESH_TOKEN_COOKIE}={idr}; {ACCESS_TOKEN_COOKIE}=").into_bytes();
        cookie.extend_from_slice(tok);
        let mut req = HeaderMap::new();
        req.insert(COOKIE, HeaderValue::from_bytes(&cookie).unwrap());
        req.insert("anti-csrf", HeaderValue::from_str(&csrf).unwrap());
        let mut resp = HeaderMap::new();
        match (m.get_session(&req, &mut resp, true).await, *what) {
            (Err(Error::TryRefreshToken { .. }), w) if w != "oversized header" => {}
            (Err(Error::Unauthorized { .. }), "oversized header") => {}
            (other, _) => panic!("access token {what}: got {other:?}"),
        }
        // The same garbage as a refresh token.
        let mut cookie =
            format!("{ID_REFRESH_TOKEN_COOKIE}={idr}; {REFRESH_TOKEN_COOKIE}=").into_bytes();
        cookie.extend_from_slice(tok);
        let mut req = HeaderMap::new();
        req.insert(COOKIE, HeaderValue::from_bytes(&cookie).unwrap());
        let mut resp = HeaderMap::new();
        match m.refresh_session(&req, &mut resp).await {
            // The request carried session cookies, so they are cleared;
            // except over the Cookie-header cap, which is read as no
            // cookies at all (and a request without session cookies has
            // nothing to clear: logout CSRF, SECURITY.md).
            Err(Error::Unauthorized { .. }) => {
                assert_eq!(is_cleared(&resp), *what != "oversized header", "{what}")
            }
            other => panic!("refresh token {what}: expected Unauthorized, got {other:?}"),
        }
    }
    // A refresh token that is well-formed base64 but not ours, and one
    // truncated or extended.
    for (what, tok) in [
        ("foreign", b64(&"x".repeat(120))),
        ("truncated", refresh_tok[..refresh_tok.len() - 3].to_owned()),
        ("extended", format!("{refresh_tok}AAAA")),
    ] {
        let mut req = HeaderMap::new();
        req.insert(
            COOKIE,
            HeaderValue::from_str(&format!(
                "{ID_REFRESH_TOKEN_COOKIE}={idr}; {REFRESH_TOKEN_COOKIE}={tok}"
            ))
            .unwrap(),
        );
        let r = m.refresh_session(&req, &mut HeaderMap::new()).await;
        assert!(
            matches!(r, Err(Error::Unauthorized { .. })),
            "{what}: {r:?}"
        );
    }
    // Bad anti-CSRF headers.
    for hdr in [&b""[..], b"\xff\xfe", &[b'a'; 9000][..]] {
        let mut req = b.request();
        req.insert("anti-csrf", HeaderValue::from_bytes(hdr).unwrap());
        assert_try_refresh(m.get_session(&req, &mut HeaderMap::new(), true).await);
    }
    // Cookie headers: missing, empty, malformed, duplicated.
    let cases: Vec<(&str, Vec<&[u8]>, &str)> = vec![
        ("no cookie header", vec![], "unauthorized"),
        ("empty cookie header", vec![b""], "unauthorized"),
        ("junk cookie header", vec![b";;;===;;"], "unauthorized"),
        ("only id refresh", vec![b"sIdRefreshToken=x"], "try"),
        (
            "cleared cookies sent back empty",
            vec![b"sIdRefreshToken=; sAccessToken=; sRefreshToken="],
            "unauthorized",
        ),
        (
            "non-utf8 id refresh",
            vec![b"sIdRefreshToken=\xff; sAccessToken=\xfe"],
            "try",
        ),
    ];
    for (what, headers, expect) in cases {
        let mut req = HeaderMap::new();
        for v in headers {
            req.append(COOKIE, HeaderValue::from_bytes(v).unwrap());
        }
        let r = m.get_session(&req, &mut HeaderMap::new(), false).await;
        match (expect, &r) {
            ("unauthorized", Err(Error::Unauthorized { .. })) => {}
            ("try", Err(Error::TryRefreshToken { .. })) => {}
            _ => panic!("{what}: got {r:?}"),
        }
        let r = m.refresh_session(&req, &mut HeaderMap::new()).await;
        assert!(
            matches!(r, Err(Error::Unauthorized { .. })),
            "{what}: {r:?}"
        );
    }
    // Duplicated cookies: two different copies of a session cookie are
    // refused whatever their order (no copy is chosen: cookie tossing,
    // SECURITY.md), and never a General error; identical copies are
    // harmless.
    let mut req = b.request();
    req.append(
        COOKIE,
        HeaderValue::from_static("sAccessToken=stale; sIdRefreshToken=stale"),
    );
    let r = m.get_session(&req, &mut HeaderMap::new(), true).await;
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
    let mut req = b.request();
    req.append(
        COOKIE,
        HeaderValue::from_str(&format!("{ACCESS_TOKEN_COOKIE}={access}")).unwrap(),
    );
    m.get_session(&req, &mut HeaderMap::new(), true)
        .await
        .unwrap();
}

/// Thousands of random corruptions of valid tokens (bit flips, byte
/// replacements, truncations, insertions, deletions, swaps): no corrupted
/// access token verifies, no corrupted refresh token opens, nothing panics
/// and nothing is a General error. A small xorshift generator keeps the run
/// reproducible from the printed seed.
async fn mutated_tokens_never_verify(h: Harness) {
    let m = h.default_manager().await;
    let b = login(&m, "u", json!({"p": 1})).await;
    let access = b.cookie(ACCESS_TOKEN_COOKIE).unwrap().as_bytes().to_vec();
    let refresh_tok = b.cookie(REFRESH_TOKEN_COOKIE).unwrap().as_bytes().to_vec();
    let seed = h.clock.now_ms() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    eprintln!("mutated_tokens_never_verify seed {seed:#x}");
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut rejected = 0;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=\xff";
    for i in 0..1500 {
        let (orig, is_access) = if i % 2 == 0 {
            (&access, true)
        } else {
            (&refresh_tok, false)
        };
        let mut t = orig.clone();
        let pos = (next() as usize) % t.len();
        match next() % 6 {
            0 => t[pos] ^= 1 << (next() % 8),
            1 => t[pos] = alphabet[(next() as usize) % alphabet.len()],
            2 => t.truncate(pos),
            3 => t.insert(pos, alphabet[(next() as usize) % alphabet.len()]),
            4 => {
                t.remove(pos);
            }
            _ => {
                let other = (next() as usize) % t.len();
                t.swap(pos, other);
            }
        }
        if &t == orig {
            continue;
        }
        let name = if is_access {
            ACCESS_TOKEN_COOKIE
        } else {
            REFRESH_TOKEN_COOKIE
        };
        let mut cookie = format!("{ID_REFRESH_TOKEN_COOKIE}=x; {name}=").into_bytes();
        cookie.extend_from_slice(&t);
        let Ok(value) = HeaderValue::from_bytes(&cookie) else {
            continue; // not representable in a header at all
        };
        let mut req = HeaderMap::new();
        req.insert(COOKIE, value);
        req.insert(
            "anti-csrf",
            HeaderValue::from_str(b.anti_csrf.as_deref().unwrap()).unwrap(),
        );
        let mut resp = HeaderMap::new();
        // Base64 is decoded strictly (no padding, no stray trailing bits), so
        // every change of the text is a change of the token: none may pass.
        let r = if is_access {
            m.get_session(&req, &mut resp, true).await
        } else {
            m.refresh_session(&req, &mut resp).await
        };
        match (&r, is_access) {
            (Err(Error::TryRefreshToken { .. }), true)
            | (Err(Error::Unauthorized { .. }), false) => rejected += 1,
            _ => panic!("mutation {i} of {name} ({t:?}): {r:?}"),
        }
    }
    assert!(
        rejected > 1200,
        "only {rejected} corruptions were exercised"
    );
}

/// The refresh state machine against a model of docs/PROTOCOL.md §3.2–§3.3: random
/// sequences of verify, refresh and "copy the cookies" (an attacker cloning
/// a browser) over several browsers of one session, each outcome compared
/// with what the model predicts. Seeds are fixed, so runs are reproducible.
async fn refresh_state_machine_matches_the_model(h: Harness) {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    enum Outcome {
        Ok,
        Unauthorized,
        Theft,
    }
    /// What the model knows of a browser: its refresh token and the access
    /// token's `(rt, prt)`, as model ids; `None` once its cookies are cleared.
    type ModelBrowser = Option<(u32, (u32, Option<u32>))>;

    let m = h.default_manager().await;
    let mut seen = std::collections::HashMap::new();
    for seed in 1..=12u64 {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Model state.
        let mut parent: Vec<Option<u32>> = vec![None]; // token id -> parent id
        let mut committed = 0u32;
        let mut alive = true;
        let mut model: Vec<ModelBrowser> = vec![Some((0, (0, None)))];
        let mut real = vec![login(&m, format!("model{seed}"), json!({"seed": seed})).await];
        for step in 0..150 {
            // Once the session is over, start a new one (keeps the walk in
            // the interesting states).
            if (!alive && next() % 4 == 0) || model.iter().all(Option::is_none) {
                parent = vec![None];
                committed = 0;
                alive = true;
                model = vec![Some((0, (0, None)))];
                real = vec![login(&m, format!("model{seed}-{step}"), json!(null)).await];
            }
            let i = (next() as usize) % real.len();
            let op = next() % 10;
            if op == 0 && real.len() < 6 {
                real.push(real[i].clone());
                model.push(model[i]);
                continue;
            }
            let (expected, got) = if op < 5 {
                // verify
                let expected = match model[i] {
                    None => Outcome::Unauthorized,
                    Some((_, (_, None))) => Outcome::Ok,
                    Some((r, (rt, Some(prt)))) => {
                        if alive && committed == prt {
                            committed = rt;
                            model[i] = Some((r, (rt, None)));
                            Outcome::Ok
                        } else if alive && committed == rt {
                            model[i] = Some((r, (rt, None)));
                            Outcome::Ok
                        } else {
                            model[i] = None;
                            Outcome::Unauthorized
                        }
                    }
                };
                let got = match verify(&m, &mut real[i]).await {
                    Ok(_) => Outcome::Ok,
                    Err(Error::Unauthorized { .. }) => Outcome::Unauthorized,
                    Err(e) => panic!("seed {seed} step {step}: verify gave {e:?}"),
                };
                (expected, got)
            } else {
                // refresh
                let expected = match model[i] {
                    None => Outcome::Unauthorized,
                    Some(_) if !alive => {
                        model[i] = None;
                        Outcome::Unauthorized
                    }
                    Some((r, _)) => {
                        if committed != r && parent[r as usize] == Some(committed) {
                            committed = r;
                        }
                        if committed == r {
                            let child = parent.len() as u32;
                            parent.push(Some(r));
                            model[i] = Some((child, (child, Some(r))));
                            Outcome::Ok
                        } else {
                            alive = false;
                            model[i] = None;
                            Outcome::Theft
                        }
                    }
                };
                let got = match refresh(&m, &mut real[i]).await {
                    Ok(_) => Outcome::Ok,
                    Err(Error::Unauthorized { .. }) => Outcome::Unauthorized,
                    Err(Error::TokenTheftDetected { .. }) => Outcome::Theft,
                    Err(e) => panic!("seed {seed} step {step}: refresh gave {e:?}"),
                };
                (expected, got)
            };
            *seen.entry((op < 5, got)).or_insert(0) += 1;
            assert_eq!(
                got, expected,
                "seed {seed} step {step} browser {i} op {op}: model {model:?}, committed {committed}"
            );
            // Cookies are cleared exactly when the model says the browser lost them.
            assert_eq!(
                real[i].cookie(REFRESH_TOKEN_COOKIE).is_none(),
                model[i].is_none(),
                "seed {seed} step {step}: cookie state"
            );
        }
    }
    eprintln!("state machine outcomes (is_verify, outcome): {seen:?}");
    for kind in [
        (true, Outcome::Ok),
        (true, Outcome::Unauthorized),
        (false, Outcome::Ok),
        (false, Outcome::Unauthorized),
        (false, Outcome::Theft),
    ] {
        assert!(
            seen.get(&kind).copied().unwrap_or(0) >= 3,
            "{kind:?} too rare: {seen:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// One test per scenario and backend.

crate::per_backend!(
    "conformance";
    create_verify_and_cookie_shape,
    access_token_expiry_and_refresh,
    session_expiry_is_unauthorized,
    anti_csrf_on_and_off,
    blacklisting_on_and_off,
    theft_on_reuse_revokes_by_default,
    unpromoted_child_is_promoted_by_refresh,
    sibling_access_token_is_unauthorized,
    user_id_types_and_payload_round_trip,
    revoke_and_list_by_user,
    session_object_info_and_revoke,
    signing_key_rotation_without_overlap,
    signing_key_rotation_with_overlap,
    user_supplied_key_function,
    key_holder_payload_span_is_kept_and_validated_where_used,
    two_instances_share_sessions_and_keys,
    concurrent_refreshes_with_one_token,
    concurrent_promotion_of_two_children,
    remove_expired_sessions_in_batches,
    bad_input_table,
    mutated_tokens_never_verify,
    refresh_state_machine_matches_the_model,
);
