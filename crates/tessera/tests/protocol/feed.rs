//! The change feed (docs/DISTRIBUTED.md, "The change feed"): instances on
//! one database learn of each other's revocations and key rotations within
//! the feed's bound; blacklisting answers from memory while the feed is
//! caught up and asks the database when it is not.
//!
//! Runs on the in-memory store here and on every SQL backend (Galera too,
//! with the two instances of a test on two nodes) from
//! `tessera-sqlx/tests/protocol.rs`. The feed measures its bound in real
//! time (the token clock stays manual), so these scenarios wait for real,
//! with a short poll interval; each asserts the promise itself, never a
//! speed: no request that *started* more than the bound after a revocation
//! returned may succeed, and the feed must get there at all (a generous
//! deadline, far below the 60 s key recheck that works without a feed).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tessera::{ChangeFeedSettings, Error, SessionManager, StoreError, UserId};
use tessera_testkit::intercept::{Intercepted, StoreCall};

use crate::support::*;

const SETTINGS: ChangeFeedSettings = ChangeFeedSettings {
    poll_interval: Duration::from_millis(50),
    bound: Duration::from_millis(500),
    answer_blacklisting: true,
};

/// How long a scenario waits for something the bound promises, before
/// calling it broken.
const DEADLINE: Duration = Duration::from_secs(15);

fn feed(b: tessera::ConfigBuilder) -> tessera::ConfigBuilder {
    b.with_blacklisting(true).with_change_feed(Some(SETTINGS))
}

async fn wait_caught_up(m: &SessionManager) {
    let start = Instant::now();
    while !m.change_feed_caught_up() {
        assert!(
            start.elapsed() < DEADLINE,
            "the change feed never caught up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Verifies a copy of `jar` on `m` until it is refused; panics if a
/// request that started later than `bound` after `revoked_at` succeeded, or
/// if none is refused before the deadline. Returns how long after
/// `revoked_at` the first refused request started.
async fn refused_within_bound(m: &SessionManager, jar: &Browser, revoked_at: Instant) -> Duration {
    loop {
        let started = Instant::now();
        let mut copy = jar.clone();
        match verify(m, &mut copy).await {
            Ok(_) => {
                let late = started.saturating_duration_since(revoked_at);
                assert!(
                    late <= SETTINGS.bound,
                    "a request that started {late:?} after the revocation still passed (bound {:?})",
                    SETTINGS.bound
                );
            }
            Err(Error::Unauthorized { .. }) => {
                return started.saturating_duration_since(revoked_at);
            }
            Err(e) => panic!("expected Unauthorized, got {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn revocation_reaches_every_instance_within_the_bound(h: Harness) {
    let a = h.manager(feed).await;
    let b = h.manager(feed).await;
    wait_caught_up(&b).await;
    let mut lags = Vec::new();
    for i in 0..8 {
        let mut jar = login(&a, format!("user-{i}"), json!({})).await;
        let handle = verify(&b, &mut jar).await.unwrap().handle().to_owned();
        assert!(a.revoke_session(&handle).await.unwrap());
        let revoked_at = Instant::now();
        // The instance that revoked refuses at once.
        assert_unauthorized(verify(&a, &mut jar.clone()).await);
        lags.push(refused_within_bound(&b, &jar, revoked_at).await);
    }
    lags.sort();
    eprintln!(
        "change-feed revocation: backend {:?}: {} revocations, seen by the other instance after p50 {:?}, max {:?} (bound {:?})",
        h.backend,
        lags.len(),
        percentile(&lags, 0.5),
        lags[lags.len() - 1],
        SETTINGS.bound
    );
}

async fn revoke_all_reaches_every_instance_within_the_bound(h: Harness) {
    let a = h.manager(feed).await;
    let b = h.manager(feed).await;
    let jars = [
        login(&a, "carol", json!({})).await,
        login(&a, "carol", json!({})).await,
        login(&b, "carol", json!({})).await,
    ];
    let mut dave = login(&b, "dave", json!({})).await;
    wait_caught_up(&b).await;
    for jar in &jars {
        verify(&b, &mut jar.clone()).await.unwrap();
    }
    assert_eq!(
        a.revoke_all_sessions_for_user(&UserId::from("carol"))
            .await
            .unwrap(),
        3
    );
    let revoked_at = Instant::now();
    for jar in &jars {
        assert_unauthorized(verify(&a, &mut jar.clone()).await);
        refused_within_bound(&b, jar, revoked_at).await;
    }
    // Another user's session is untouched.
    verify(&a, &mut dave).await.unwrap();
    verify(&b, &mut dave).await.unwrap();
}

struct Switches {
    log_down: Arc<AtomicBool>,
    liveness_asked: Arc<AtomicUsize>,
}

async fn switched_manager(h: &Harness) -> (SessionManager, Switches) {
    switched_manager_with(h, feed).await
}

async fn switched_manager_with(
    h: &Harness,
    config: fn(tessera::ConfigBuilder) -> tessera::ConfigBuilder,
) -> (SessionManager, Switches) {
    let log_down = Arc::new(AtomicBool::new(false));
    let liveness_asked = Arc::new(AtomicUsize::new(0));
    let (d, l) = (log_down.clone(), liveness_asked.clone());
    let m = h
        // Reading the change log fails while `log_down` is set; the
        // database's blacklisting answers (`session_is_live`) are counted.
        .wrapped_manager(config, move |inner| {
            Intercepted::wrap(inner, move |call| match call {
                StoreCall::ChangesAfter if d.load(Ordering::SeqCst) => Err(StoreError::new(
                    "the change log is switched off by the test",
                )),
                StoreCall::SessionIsLive => {
                    l.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
                _ => Ok(()),
            })
        })
        .await;
    (
        m,
        Switches {
            log_down,
            liveness_asked,
        },
    )
}

async fn a_caught_up_feed_answers_from_memory_and_a_new_instance_knows_earlier_revocations(
    h: Harness,
) {
    let a = h.manager(feed).await;
    let revoked = login(&a, "erin", json!({})).await;
    let mut live = login(&a, "frank", json!({})).await;
    let handle = verify(&a, &mut revoked.clone())
        .await
        .unwrap()
        .handle()
        .to_owned();
    assert!(a.revoke_session(&handle).await.unwrap());
    // An instance started after the revocation reads the retained log first.
    let (c, switches) = switched_manager(&h).await;
    wait_caught_up(&c).await;
    assert_unauthorized(verify(&c, &mut revoked.clone()).await);
    verify(&c, &mut live).await.unwrap();
    assert_eq!(
        switches.liveness_asked.load(Ordering::SeqCst),
        0,
        "a caught-up feed answers blacklisting without the database"
    );
}

async fn a_feed_behind_its_bound_fails_closed_to_the_database(h: Harness) {
    let a = h.manager(feed).await;
    let (b, switches) = switched_manager(&h).await;
    let mut jar = login(&a, "grace", json!({})).await;
    let mut other = login(&a, "heidi", json!({})).await;
    wait_caught_up(&b).await;
    let handle = verify(&b, &mut jar.clone())
        .await
        .unwrap()
        .handle()
        .to_owned();
    switches.log_down.store(true, Ordering::SeqCst);
    assert!(a.revoke_session(&handle).await.unwrap());
    let revoked_at = Instant::now();
    // B cannot read the log any more; within the bound it may still answer
    // from memory, after it the database answers.
    refused_within_bound(&b, &jar, revoked_at).await;
    tokio::time::sleep(SETTINGS.bound + SETTINGS.poll_interval).await;
    assert!(!b.change_feed_caught_up());
    let asked = switches.liveness_asked.load(Ordering::SeqCst);
    assert_unauthorized(verify(&b, &mut jar.clone()).await);
    // A live session still passes, asked of the database.
    verify(&b, &mut other).await.unwrap();
    assert!(switches.liveness_asked.load(Ordering::SeqCst) >= asked + 2);
    // The log comes back: B catches up and answers from memory again.
    switches.log_down.store(false, Ordering::SeqCst);
    wait_caught_up(&b).await;
    let asked = switches.liveness_asked.load(Ordering::SeqCst);
    assert_unauthorized(verify(&b, &mut jar).await);
    verify(&b, &mut other).await.unwrap();
    assert_eq!(switches.liveness_asked.load(Ordering::SeqCst), asked);
}

async fn a_forced_rotation_reaches_every_instance_within_the_bound(h: Harness) {
    // Without blacklisting: the feed serves key rotations either way.
    let only_feed = |b: tessera::ConfigBuilder| b.with_change_feed(Some(SETTINGS));
    let a = h.manager(only_feed).await;
    let b = h.manager(only_feed).await;
    let mut old = login(&b, "ivan", json!({})).await;
    verify(&a, &mut old.clone()).await.unwrap();
    wait_caught_up(&b).await;
    a.rotate_signing_key().await.unwrap();
    let rotated_at = Instant::now();
    // Tokens of the old key need a refresh once an instance holds the new
    // keys (the previous key is not accepted by default): at once on A,
    // within the bound on B.
    assert_try_refresh(verify(&a, &mut old.clone()).await);
    loop {
        let started = Instant::now();
        match verify(&b, &mut old.clone()).await {
            // Key reloads have no fail-closed fallback (without keys
            // nothing can be verified): B switches one poll and one key read
            // after the rotation committed, typically within the poll
            // interval; far sooner than the 60 s recheck without a feed.
            Ok(_) => assert!(
                started.saturating_duration_since(rotated_at) < DEADLINE,
                "the rotation never reached B"
            ),
            Err(Error::TryRefreshToken { .. }) => {
                eprintln!(
                    "change-feed rotation: backend {:?}: the other instance switched keys after {:?}",
                    h.backend,
                    started.saturating_duration_since(rotated_at)
                );
                break;
            }
            Err(e) => panic!("expected TryRefreshToken, got {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // And B signs with the new key: A accepts what B issues now.
    let mut fresh = login(&b, "judy", json!({})).await;
    verify(&a, &mut fresh).await.unwrap();
    refresh(&b, &mut old).await.unwrap();
    verify(&a, &mut old).await.unwrap();
}

async fn by_default_blacklisting_asks_the_database_every_time(h: Harness) {
    // The default feed carries key rotations only; blacklisting keeps the
    // reference library's answer: the database, on every request.
    let (m, switches) = switched_manager_with(&h, |b| b.with_blacklisting(true)).await;
    assert!(m.config().change_feed().is_some());
    let mut jar = login(&m, "kim", json!({})).await;
    wait_caught_up(&m).await;
    for n in 1..=3 {
        verify(&m, &mut jar).await.unwrap();
        assert_eq!(switches.liveness_asked.load(Ordering::SeqCst), n);
    }
}

crate::per_backend!("feed";
    by_default_blacklisting_asks_the_database_every_time,
    revocation_reaches_every_instance_within_the_bound,
    revoke_all_reaches_every_instance_within_the_bound,
    a_caught_up_feed_answers_from_memory_and_a_new_instance_knows_earlier_revocations,
    a_feed_behind_its_bound_fails_closed_to_the_database,
    a_forced_rotation_reaches_every_instance_within_the_bound,
);
