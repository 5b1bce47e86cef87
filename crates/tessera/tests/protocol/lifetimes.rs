//! The idle timeout and the absolute lifetime (docs/PROTOCOL.md §3.10): a
//! session whose refresh tokens were not rotated for the idle timeout, or
//! that is older than the absolute lifetime, is gone at its next refresh
//! (Unauthorized with the reason, the row deleted, the cookies cleared) and
//! at cleanup; rotating keeps an idle timeout away but not the absolute
//! lifetime.
//!
//! Written against the harness in `support`, so these run on the in-memory
//! store here and on SQLite, PostgreSQL and MariaDB in
//! `tessera-sqlx/tests/protocol.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderMap;
use serde_json::json;
use tessera::{ConfigBuilder, Error, SessionEnd, SessionManager, StoreError};
use tessera_testkit::intercept::{Intercepted, StoreCall};

use crate::support::*;

const MIN: Duration = Duration::from_secs(60);
const ACCESS: Duration = Duration::from_secs(10 * 60);
const IDLE: Duration = Duration::from_secs(30 * 60);
const ABSOLUTE: Duration = Duration::from_secs(120 * 60);

fn idle(c: ConfigBuilder) -> ConfigBuilder {
    c.with_access_token_validity(ACCESS)
        .with_idle_timeout(Some(IDLE))
}

fn absolute(c: ConfigBuilder) -> ConfigBuilder {
    c.with_access_token_validity(ACCESS)
        .with_absolute_lifetime(Some(ABSOLUTE))
}

fn both(c: ConfigBuilder) -> ConfigBuilder {
    idle(c).with_absolute_lifetime(Some(ABSOLUTE))
}

/// A refresh followed by the first use of its access token (the promotion
/// that restarts the idle clock).
async fn rotate(m: &SessionManager, b: &mut Browser, ctx: &str) {
    refresh(m, b)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: refresh: {e:?}"));
    verify(m, b)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: first use: {e:?}"));
}

/// Refreshes and expects the session ended by `end`: Unauthorized with that
/// reason, the cookies cleared, the row gone.
async fn assert_ended(m: &SessionManager, b: &Browser, handle: &str, end: SessionEnd) {
    let mut resp = HeaderMap::new();
    let r = m.refresh_session(&b.request(), &mut resp).await;
    match &r {
        Err(e @ Error::Unauthorized { reason }) => {
            assert_eq!(*reason, end.as_str());
            assert_eq!(e.session_end(), Some(end));
        }
        other => panic!("expected Unauthorized ({end}), got {other:?}"),
    }
    assert!(is_cleared(&resp), "{end}: the cookies are cleared");
    assert!(
        m.store().load_session(handle).await.unwrap().is_none(),
        "{end}: the row is deleted"
    );
}

async fn handle_of(m: &SessionManager, b: &mut Browser) -> String {
    verify(m, b).await.unwrap().handle().to_owned()
}

// ---------------------------------------------------------------------------
// Scenarios

/// Rotating every 20 minutes keeps a 30-minute idle timeout away for longer
/// than the timeout many times over; 30 minutes without one ends it.
async fn idle_timeout_ends_an_unrotated_session(h: Harness) {
    let m = h.manager(idle).await;
    let mut b = login(&m, "idle1", json!(null)).await;
    let handle = handle_of(&m, &mut b).await;
    for i in 0..9 {
        h.advance(20 * MIN);
        rotate(&m, &mut b, &format!("rotation {i}")).await;
    }
    // Just inside the timeout: still alive (and rotated once more).
    h.advance(IDLE - Duration::from_millis(1));
    rotate(&m, &mut b, "just inside").await;
    h.advance(IDLE);
    assert_ended(&m, &b, &handle, SessionEnd::IdleTimeout).await;
    // Gone for good: the same tokens do not come back.
    assert_unauthorized(refresh(&m, &mut b.clone()).await);
}

/// A refresh whose tokens are never used does not restart the idle clock:
/// the clock is the row's last promotion (§3.10).
async fn idle_clock_is_the_last_promotion(h: Harness) {
    let m = h.manager(idle).await;
    let mut b = login(&m, "idle2", json!(null)).await;
    let handle = handle_of(&m, &mut b).await;
    h.advance(20 * MIN);
    refresh(&m, &mut b).await.unwrap();
    h.advance(10 * MIN);
    assert_ended(&m, &b, &handle, SessionEnd::IdleTimeout).await;
}

/// Rotating does not extend the absolute lifetime.
async fn absolute_lifetime_ends_it_despite_refreshes(h: Harness) {
    let m = h.manager(absolute).await;
    let mut b = login(&m, "abs1", json!(null)).await;
    let handle = handle_of(&m, &mut b).await;
    for i in 0..5 {
        h.advance(20 * MIN);
        rotate(&m, &mut b, &format!("rotation {i}")).await;
    }
    // 100 minutes: alive; at 120 it ends, though it rotated 20 minutes ago.
    h.advance(20 * MIN - Duration::from_millis(1));
    rotate(&m, &mut b, "just inside").await;
    h.advance(Duration::from_millis(1));
    assert_ended(&m, &b, &handle, SessionEnd::AbsoluteLifetime).await;
}

/// With neither configured (the default) nothing changes: a session left
/// alone for days still refreshes.
async fn without_lifetimes_nothing_ends(h: Harness) {
    let m = h.manager(|c| c.with_access_token_validity(ACCESS)).await;
    let mut b = login(&m, "none1", json!(null)).await;
    h.advance(Duration::from_secs(5 * 86_400));
    rotate(&m, &mut b, "after five days").await;
    assert_eq!(m.count_expired_sessions().await.unwrap(), 0);
}

/// Cleanup counts and removes sessions past either limit, and only those;
/// a manager configured without them counts none of them.
async fn cleanup_removes_ended_sessions(h: Harness) {
    let m = h.manager(both).await;
    let plain = h.manager(|c| c.with_access_token_validity(ACCESS)).await;
    let mut old = login(&m, "old", json!(null)).await;
    let old_handle = handle_of(&m, &mut old).await;
    for i in 0..4 {
        h.advance(20 * MIN);
        rotate(&m, &mut old, &format!("old {i}")).await;
    }
    // t = 80 min
    let mut idle = login(&m, "idle", json!(null)).await;
    let idle_handle = handle_of(&m, &mut idle).await;
    h.advance(20 * MIN);
    rotate(&m, &mut old, "old at 100").await;
    let mut active = login(&m, "active", json!(null)).await;
    // t = 121 min: `old` is past the absolute lifetime, `idle` past the
    // idle timeout, `active` is neither.
    h.advance(21 * MIN);
    assert_eq!(plain.count_expired_sessions().await.unwrap(), 0);
    assert_eq!(m.count_expired_sessions().await.unwrap(), 2);
    let mut seen = Vec::new();
    assert_eq!(
        m.remove_expired_sessions(1, |n| seen.push(n))
            .await
            .unwrap(),
        2
    );
    assert_eq!(seen, [1, 2, 2]);
    assert_eq!(m.count_expired_sessions().await.unwrap(), 0);
    for handle in [&old_handle, &idle_handle] {
        assert!(m.store().load_session(handle).await.unwrap().is_none());
    }
    rotate(&m, &mut active, "active").await;
    // The removed ones are simply gone now (no row, no reason).
    match refresh(&m, &mut old).await {
        Err(e @ Error::Unauthorized { .. }) => assert_eq!(e.session_end(), None),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert_unauthorized(refresh(&m, &mut idle).await);
}

/// Both limits passed: the absolute lifetime is the reason (the one the user
/// cannot avoid by being active).
async fn absolute_lifetime_is_reported_first(h: Harness) {
    let m = h.manager(both).await;
    let mut b = login(&m, "both1", json!(null)).await;
    let handle = handle_of(&m, &mut b).await;
    h.advance(ABSOLUTE);
    assert_ended(&m, &b, &handle, SessionEnd::AbsoluteLifetime).await;
}

/// The row cannot be deleted (the database fails): a retryable General
/// error, the response untouched (no cleared cookies, no new tokens), the
/// row still there; once the database is back the same refresh ends it.
async fn a_failing_delete_changes_nothing(h: Harness) {
    let down = Arc::new(AtomicBool::new(false));
    let d = down.clone();
    let m = h
        // `delete_session` fails while `down` is set.
        .wrapped_manager(idle, move |inner| {
            Intercepted::wrap(inner, move |call| match call {
                StoreCall::DeleteSession if d.load(Ordering::SeqCst) => {
                    Err(StoreError::new("delete switched off by the test"))
                }
                _ => Ok(()),
            })
        })
        .await;
    let mut b = login(&m, "fault1", json!(null)).await;
    let handle = handle_of(&m, &mut b).await;
    h.advance(IDLE);
    down.store(true, Ordering::SeqCst);
    let mut resp = HeaderMap::new();
    let r = m.refresh_session(&b.request(), &mut resp).await;
    match &r {
        Err(e @ Error::General { .. }) => assert!(e.is_retryable(), "{e:?}"),
        other => panic!("expected a General error, got {other:?}"),
    }
    assert!(resp.is_empty(), "nothing written to the response: {resp:?}");
    assert!(m.store().load_session(&handle).await.unwrap().is_some());
    down.store(false, Ordering::SeqCst);
    assert_ended(&m, &b, &handle, SessionEnd::IdleTimeout).await;
}

crate::per_backend!(
    "lifetimes";
    a_failing_delete_changes_nothing,
    idle_timeout_ends_an_unrotated_session,
    idle_clock_is_the_last_promotion,
    absolute_lifetime_ends_it_despite_refreshes,
    without_lifetimes_nothing_ends,
    cleanup_removes_ended_sessions,
    absolute_lifetime_is_reported_first,
);
