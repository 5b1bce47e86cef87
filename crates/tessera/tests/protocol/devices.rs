//! What a session records about its client (docs/PROTOCOL.md §3.1, §3.5):
//! the user agent of the sign-in request, the client address only when the
//! configuration records addresses, an application label, each cleaned and
//! capped; the last refresh (the last promotion) in listings; no write on
//! `get_session` and none for the listing; refreshes leave the device as it
//! was.
//!
//! Written against the harness in `support`, so these run on the in-memory
//! store here and on SQLite, PostgreSQL and MariaDB in
//! `tessera-sqlx/tests/protocol.rs`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderValue};
use serde_json::json;
use tessera::{
    Clock, SessionDevice, SessionManager, SessionSummary, Transport, UserId, MAX_DEVICE_LABEL_LEN,
    MAX_USER_AGENT_LEN,
};
use tessera_testkit::intercept::Intercepted;

use crate::support::*;

/// The user's one listed session.
async fn only_session(m: &SessionManager, user: &str) -> SessionSummary {
    let mut listed = m.list_sessions_for_user(&UserId::from(user)).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    listed.remove(0)
}

/// Creates a session for `user` with `device` and returns the browser.
async fn login_with(m: &SessionManager, user: &str, device: SessionDevice) -> Browser {
    let mut resp = HeaderMap::new();
    m.create_new_session_with_device(
        Transport::Reference,
        &mut resp,
        user,
        json!(null),
        json!({"info": true}),
        device,
    )
    .await
    .expect("create");
    let mut b = Browser::default();
    b.absorb(&resp);
    b
}

/// A sign-in request's `User-Agent` is recorded by
/// `create_new_session_for_request`; `create_new_session` records nothing.
async fn the_sign_in_requests_user_agent_is_listed(h: Harness) {
    let m = h.default_manager().await;
    let mut request = HeaderMap::new();
    request.insert("user-agent", HeaderValue::from_static("Mozilla/5.0 (X11)"));
    m.create_new_session_for_request(
        &request,
        &mut HeaderMap::new(),
        "ua1",
        json!(null),
        json!(null),
    )
    .await
    .unwrap();
    let s = only_session(&m, "ua1").await;
    assert_eq!(s.user_agent.as_deref(), Some("Mozilla/5.0 (X11)"));
    assert_eq!((&s.client_address, &s.device_label), (&None, &None));
    assert_eq!(s.last_refreshed_at_ms, None);
    assert_eq!(s.last_active_at_ms(), s.created_at_ms);

    login(&m, "ua2", json!(null)).await;
    let s = only_session(&m, "ua2").await;
    assert_eq!(
        (s.user_agent, s.client_address, s.device_label),
        (None, None, None)
    );
}

/// A 10 kB user agent is stored as its first 256 bytes, a multibyte
/// character at the cap is dropped whole, control characters become spaces;
/// the sign-in succeeds. The label is capped at 128 bytes.
async fn long_and_odd_values_are_cut_not_refused(h: Harness) {
    let m = h.default_manager().await;
    let mut b = login_with(
        &m,
        "cap1",
        SessionDevice::default()
            .with_user_agent("u".repeat(10_000))
            .with_label(format!("{}🦀", "l".repeat(MAX_DEVICE_LABEL_LEN - 2))),
    )
    .await;
    verify(&m, &mut b).await.expect("the session works");
    let s = only_session(&m, "cap1").await;
    assert_eq!(
        s.user_agent.as_deref(),
        Some("u".repeat(MAX_USER_AGENT_LEN).as_str())
    );
    assert_eq!(
        s.device_label.as_deref(),
        Some("l".repeat(MAX_DEVICE_LABEL_LEN - 2).as_str())
    );

    login_with(
        &m,
        "cap2",
        SessionDevice::default()
            .with_user_agent(format!("{}é", "u".repeat(MAX_USER_AGENT_LEN - 1)))
            .with_label("phone\r\nX-Injected: 1\u{7f}"),
    )
    .await;
    let s = only_session(&m, "cap2").await;
    let ua = s.user_agent.unwrap();
    assert_eq!(ua, "u".repeat(MAX_USER_AGENT_LEN - 1));
    assert_eq!(s.device_label.as_deref(), Some("phone  X-Injected: 1"));
}

/// The client address is personal data: dropped unless
/// `record_client_address` is on, kept (as text) when it is.
async fn client_addresses_are_kept_only_when_configured(h: Harness) {
    let address: IpAddr = "198.51.100.23".parse().unwrap();
    let device = || {
        SessionDevice::default()
            .with_client_address(address)
            .with_label("laptop")
    };
    let off = h.default_manager().await;
    login_with(&off, "addr1", device()).await;
    let s = only_session(&off, "addr1").await;
    assert_eq!(s.client_address, None, "off by default");
    assert_eq!(s.device_label.as_deref(), Some("laptop"));

    let on = h.manager(|b| b.with_record_client_address(true)).await;
    login_with(&on, "addr2", device()).await;
    let s = only_session(&on, "addr2").await;
    assert_eq!(s.client_address.as_deref(), Some("198.51.100.23"));
}

/// The last refresh is the last promotion: a refresh counts once its tokens
/// are used. Refreshes never change the device.
async fn the_last_refresh_is_the_last_promotion(h: Harness) {
    let m = h.default_manager().await;
    let mut b = login_with(
        &m,
        "ref1",
        SessionDevice::default()
            .with_user_agent("agent/1")
            .with_label("tablet"),
    )
    .await;
    let created = only_session(&m, "ref1").await;
    h.advance(Duration::from_secs(90));
    refresh(&m, &mut b).await.unwrap();
    assert_eq!(
        only_session(&m, "ref1").await.last_refreshed_at_ms,
        None,
        "not yet: the new tokens are unused"
    );
    verify(&m, &mut b).await.unwrap();
    let now = h.clock.now_ms();
    let s = only_session(&m, "ref1").await;
    assert_eq!(s.last_refreshed_at_ms, Some(now));
    assert_eq!(s.last_active_at_ms(), now);
    assert!(now > created.created_at_ms);
    assert_eq!(
        (s.user_agent.as_deref(), s.device_label.as_deref()),
        (Some("agent/1"), Some("tablet")),
        "a refresh keeps the device"
    );
    assert_eq!(s.created_at_ms, created.created_at_ms);
}

/// "Last refreshed" costs no write: `get_session` on a committed token (with
/// blacklisting, so it reads the row) and the listing write nothing, and the
/// refresh's one write is the promotion it already made.
async fn get_session_and_listing_write_nothing(h: Harness) {
    let writes = Arc::new(AtomicUsize::new(0));
    let w = writes.clone();
    let m = h
        .wrapped_manager(
            // Blacklisting without a change feed: every `get_session` reads
            // the row.
            |b| b.with_blacklisting(true).with_change_feed(None),
            // Counts the calls that write session rows.
            move |inner| {
                Intercepted::wrap(inner, move |call| {
                    if call.writes_sessions() {
                        w.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(())
                })
            },
        )
        .await;
    let mut b = login_with(
        &m,
        "nw1",
        SessionDevice::default().with_user_agent("agent/2"),
    )
    .await;
    assert_eq!(writes.load(Ordering::SeqCst), 1, "the insert");
    for _ in 0..5 {
        h.advance(Duration::from_secs(1));
        verify(&m, &mut b).await.unwrap();
    }
    only_session(&m, "nw1").await;
    assert_eq!(writes.load(Ordering::SeqCst), 1, "get_session wrote");

    refresh(&m, &mut b).await.unwrap();
    verify(&m, &mut b).await.unwrap();
    assert_eq!(writes.load(Ordering::SeqCst), 2, "one promotion");
    for _ in 0..5 {
        h.advance(Duration::from_secs(1));
        verify(&m, &mut b).await.unwrap();
    }
    let s = only_session(&m, "nw1").await;
    assert!(s.last_refreshed_at_ms.is_some());
    assert_eq!(writes.load(Ordering::SeqCst), 2, "get_session wrote");
}

crate::per_backend!(
    "devices";
    the_sign_in_requests_user_agent_is_listed,
    long_and_odd_values_are_cut_not_refused,
    client_addresses_are_kept_only_when_configured,
    the_last_refresh_is_the_last_promotion,
    get_session_and_listing_write_nothing,
);
