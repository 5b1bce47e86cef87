//! The refresh grace window and the reuse classification (docs/PROTOCOL.md
//! §3.9): what is accepted and issued inside the window, what is theft after
//! it, and which [`ReuseKind`] a theft report names. Then the uncoordinated
//! client: many tabs racing refreshes and requests with one session's tokens
//! are never logged out inside the window, and an attacker replaying any of
//! their tokens after it never refreshes without theft being reported.
//!
//! Written against the harness in `support`, so these run on the in-memory
//! store here and on SQLite, PostgreSQL and MariaDB in
//! `tessera-sqlx/tests/protocol.rs`.

use std::collections::HashSet;
use std::time::Duration;

use http::header::HeaderMap;
use serde_json::json;
use tessera::{
    sha256_hex, ConfigBuilder, ConfigSetting, Error, ReuseKind, SessionManager,
    DEFAULT_REFRESH_GRACE, REFRESH_TOKEN_COOKIE,
};

use crate::support::*;

const GRACE: Duration = Duration::from_secs(30);

fn with_grace(c: ConfigBuilder) -> ConfigBuilder {
    c.with_refresh_grace(GRACE)
}

/// `H2` of a refresh token as the row keeps it.
fn h2(token: &str) -> String {
    sha256_hex(sha256_hex(token.as_bytes()).as_bytes())
}

fn refresh_token(b: &Browser) -> String {
    b.cookie(REFRESH_TOKEN_COOKIE)
        .expect("a refresh token")
        .to_owned()
}

async fn committed(m: &SessionManager, handle: &str) -> String {
    m.store()
        .load_session(handle)
        .await
        .unwrap()
        .expect("the row")
        .refresh_token_hash_2
}

#[track_caller]
fn assert_theft<T: std::fmt::Debug>(r: Result<T, Error>, kind: ReuseKind, ctx: &str) {
    match r {
        Err(Error::TokenTheftDetected { reuse, .. }) => assert_eq!(reuse, kind, "{ctx}"),
        other => panic!("{ctx}: expected theft ({kind}), got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Scenarios

/// The token a promotion superseded, reused inside the window, gets a child
/// of the committed token (not a second committed token); after the window
/// it is theft, classified as the superseded token itself.
async fn superseded_token_within_grace_converges(h: Harness) {
    let m = h.manager(with_grace).await;
    let mut b = login(&m, "g1", json!(null)).await;
    let mut late = b.clone();
    let r0 = refresh_token(&b);
    let first = refresh(&m, &mut b).await.unwrap();
    assert!(
        !first.refresh_converged_within_grace(),
        "a refresh with the committed token is not a convergence"
    );
    let handle = verify(&m, &mut b).await.unwrap().handle().to_owned();
    let c1 = committed(&m, &handle).await;
    assert_eq!(c1, h2(&refresh_token(&b)), "C1 promoted");

    // R0 again, 29 s later: a child of C1, the row unchanged, and the
    // session says the window answered it.
    h.advance(GRACE - Duration::from_secs(1));
    let converged = refresh(&m, &mut late).await.unwrap();
    assert!(
        converged.refresh_converged_within_grace(),
        "the window answered the superseded token"
    );
    assert_eq!(committed(&m, &handle).await, c1, "the row is unchanged");
    // Its access token works (a child of the frozen committed token is
    // accepted unpromoted) and the other tab still works too.
    verify(&m, &mut late).await.unwrap();
    verify(&m, &mut b).await.unwrap();
    assert_eq!(committed(&m, &handle).await, c1, "frozen inside the window");

    // After the window: R0 is theft, the superseded token itself.
    h.advance(Duration::from_secs(2));
    let mut thief = b.clone();
    thief.set(REFRESH_TOKEN_COOKIE, &r0);
    let keep = h
        .manager(|c| with_grace(c).with_revoke_session_on_theft(false))
        .await;
    assert_theft(
        refresh(&keep, &mut thief).await,
        ReuseKind::SilentThief,
        "R0 after the window",
    );
    // The late tab converged on C1's lineage and keeps going: its refresh
    // token (a child of C1) is promoted now that the window is over.
    refresh(&m, &mut late).await.unwrap();
    verify(&m, &mut late).await.unwrap();
    assert_ne!(
        committed(&m, &handle).await,
        c1,
        "promoted after the window"
    );
}

/// Two tabs refresh with one token. The loser's access token is sent to
/// refresh (not logged out) inside the window, and its refresh token, a
/// sibling of the committed one, gets a child of the committed token. A
/// third sibling after the window is theft, an orphaned branch.
async fn sibling_within_grace_converges(h: Harness) {
    let m = h.manager(with_grace).await;
    let mut a = login(&m, "g2", json!(null)).await;
    let mut b = a.clone();
    let mut c = a.clone();
    refresh(&m, &mut a).await.unwrap();
    refresh(&m, &mut b).await.unwrap();
    refresh(&m, &mut c).await.unwrap();
    let handle = verify(&m, &mut a).await.unwrap().handle().to_owned();
    let ca = committed(&m, &handle).await;

    let mut resp = HeaderMap::new();
    assert_try_refresh(m.get_session(&b.request(), &mut resp, true).await);
    assert!(!is_cleared(&resp), "not logged out");
    refresh(&m, &mut b).await.unwrap();
    verify(&m, &mut b).await.unwrap();
    verify(&m, &mut a).await.unwrap();
    assert_eq!(committed(&m, &handle).await, ca, "one committed token");

    h.advance(GRACE);
    let keep = h
        .manager(|c| with_grace(c).with_revoke_session_on_theft(false))
        .await;
    assert_theft(
        refresh(&keep, &mut c.clone()).await,
        ReuseKind::OrphanedBranch,
        "a sibling after the window",
    );
    // Its access token after the window: Unauthorized, as without a window.
    assert_unauthorized(verify(&keep, &mut c).await);
}

/// Inside the window the committed token is frozen: a child of it is neither
/// promoted by its access token (which is answered with an access token that
/// needs no promotion) nor by a refresh (answered with a child of the
/// committed token), so the window cannot be chained and the superseded
/// generation stays answerable until it ends.
async fn window_freezes_the_committed_token(h: Harness) {
    let m = h.manager(with_grace).await;
    let mut b = login(&m, "g3", json!(null)).await;
    let mut late = b.clone();
    refresh(&m, &mut b).await.unwrap();
    let handle = verify(&m, &mut b).await.unwrap().handle().to_owned();
    let c1 = committed(&m, &handle).await;
    for _ in 0..3 {
        h.advance(Duration::from_secs(5));
        let frozen = refresh(&m, &mut b).await.unwrap();
        assert!(
            !frozen.refresh_converged_within_grace(),
            "a child of the frozen committed token is no reuse"
        );
        verify(&m, &mut b).await.unwrap();
        assert_eq!(
            committed(&m, &handle).await,
            c1,
            "promoted inside the window"
        );
    }
    // R0 still converges, 15 s in.
    refresh(&m, &mut late).await.unwrap();
    verify(&m, &mut late).await.unwrap();
    // Each of those access tokens was answered with one that needs no
    // promotion; the child is promoted by the first refresh after the
    // window.
    h.advance(GRACE);
    verify(&m, &mut b).await.unwrap();
    assert_eq!(committed(&m, &handle).await, c1, "an access token promoted");
    let d = refresh_token(&b);
    refresh(&m, &mut b).await.unwrap();
    assert_eq!(committed(&m, &handle).await, h2(&d), "promoted by refresh");
}

/// Without a window (the default) every reuse is theft, at once; the
/// default window's length only classifies it.
async fn without_grace_reuse_is_classified(h: Harness) {
    let keep = h.manager(|c| c.with_revoke_session_on_theft(false)).await;
    assert_eq!(keep.config().refresh_grace(), Duration::ZERO);
    let mut b = login(&keep, "g4", json!(null)).await;
    let r0 = b.clone();
    let mut sibling = b.clone();
    refresh(&keep, &mut sibling).await.unwrap();
    refresh(&keep, &mut b).await.unwrap();
    verify(&keep, &mut b).await.unwrap();
    assert_theft(
        refresh(&keep, &mut r0.clone()).await,
        ReuseKind::WithinGrace,
        "R0 at once",
    );
    assert_theft(
        refresh(&keep, &mut sibling.clone()).await,
        ReuseKind::WithinGrace,
        "a sibling at once",
    );
    h.advance(DEFAULT_REFRESH_GRACE);
    assert_theft(
        refresh(&keep, &mut r0.clone()).await,
        ReuseKind::SilentThief,
        "R0 later",
    );
    assert_theft(
        refresh(&keep, &mut sibling.clone()).await,
        ReuseKind::OrphanedBranch,
        "a sibling later",
    );
    // One more rotation: R0 is two generations old, unknown to the row.
    refresh(&keep, &mut b).await.unwrap();
    verify(&keep, &mut b).await.unwrap();
    assert_theft(
        refresh(&keep, &mut r0.clone()).await,
        ReuseKind::StaleLineage,
        "R0 two rotations later",
    );
    // Without a window the committed token's H1 is not kept, and such a
    // promotion opens no window (nor a freeze) for an instance that has one.
    let handle = verify(&keep, &mut b).await.unwrap().handle().to_owned();
    let row = keep.store().load_session(&handle).await.unwrap().unwrap();
    assert_eq!(row.committed_hash_1, None, "H1 kept without a window");
    let g = h.manager(with_grace).await;
    refresh(&g, &mut b).await.unwrap();
    verify(&g, &mut b).await.unwrap();
    let row = g.store().load_session(&handle).await.unwrap().unwrap();
    assert_eq!(row.refresh_token_hash_2, h2(&refresh_token(&b)), "promoted");
    assert!(row.committed_hash_1.is_some(), "H1 kept with a window");
    // A window longer than the builder allows is refused.
    let err = h
        .config()
        .with_refresh_grace(Duration::from_secs(301))
        .build()
        .unwrap_err();
    assert_eq!(err.setting(), ConfigSetting::RefreshGrace);
}

// ---------------------------------------------------------------------------
// The uncoordinated client

const TABS: usize = 8;
const SESSIONS: usize = 3;
const BATCHES: usize = 12;

/// One step of a tab, the way a front end without a refresh lock acts:
/// verify, and on TryRefreshToken refresh and verify again; or refresh on
/// its own. Returns the outcomes of every call.
async fn tab_step(
    m: SessionManager,
    refresh_first: bool,
    mut b: Browser,
) -> (Browser, Vec<String>) {
    let mut errors = Vec::new();
    if refresh_first {
        if let Err(e) = refresh(&m, &mut b).await {
            errors.push(format!("refresh: {e:?}"));
        }
    }
    // A few rounds: a refresh that raced the first promotion may hand out a
    // child of the token just superseded, whose access token is sent to
    // refresh once more.
    for round in 0..3 {
        match verify(&m, &mut b).await {
            Ok(_) => return (b, errors),
            Err(Error::TryRefreshToken { .. }) if round < 2 => {
                if let Err(e) = refresh(&m, &mut b).await {
                    errors.push(format!("refresh after TryRefreshToken: {e:?}"));
                    return (b, errors);
                }
            }
            Err(e) => {
                errors.push(format!("verify (round {round}): {e:?}"));
                return (b, errors);
            }
        }
    }
    (b, errors)
}

/// N tabs refresh in parallel with one refresh token, then use the
/// resulting tokens interleaved, requests and refreshes racing (each batch
/// runs every tab's step at once, over two instances), all inside the grace
/// window: never logged out, never theft. Then, after the window, an
/// attacker replays every refresh token the tabs were handed inside it
/// (except the one now committed): each is theft, never a new session, and
/// never classified as within the window.
async fn uncoordinated_client(h: Harness) {
    let m1 = h
        .manager(|c| with_grace(c).with_revoke_session_on_theft(false))
        .await;
    let m2 = h
        .manager(|c| with_grace(c).with_revoke_session_on_theft(false))
        .await;
    let managers = [m1.clone(), m2.clone()];
    for session in 0..SESSIONS {
        let mut x = (session as u64 + 7).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut rand = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let ctx = format!("session {session}");
        let origin = login(&m1, format!("tabs-{session}"), json!({"s": session})).await;
        let handle = verify(&m1, &mut origin.clone())
            .await
            .unwrap()
            .handle()
            .to_owned();
        let mut handed: Vec<String> = vec![refresh_token(&origin)];

        // N parallel refreshes with one refresh token.
        let mut tasks = Vec::new();
        for i in 0..TABS {
            let m = managers[i % 2].clone();
            let mut b = origin.clone();
            tasks.push(tokio::spawn(async move {
                let r = refresh(&m, &mut b).await.map(|_| ());
                (b, r)
            }));
        }
        let mut tabs = vec![origin.clone()];
        for t in tasks {
            let (b, r) = t.await.unwrap();
            r.unwrap_or_else(|e| panic!("{ctx}: a parallel refresh failed: {e:?}"));
            handed.push(refresh_token(&b));
            tabs.push(b);
        }

        // Interleaved use, inside the window: random steps, then one step
        // of every tab that starts with a refresh (as each would at its
        // next refresh), at most 12 × 2 s = 24 s after the first promotion.
        for batch in 0..=BATCHES {
            let mut tasks = Vec::new();
            for b in tabs.drain(..) {
                let m = managers[rand(2)].clone();
                let refresh_first = batch == BATCHES || rand(3) == 0;
                tasks.push(tokio::spawn(tab_step(m, refresh_first, b)));
            }
            for t in tasks {
                let (b, errors) = t.await.unwrap();
                assert!(
                    errors.is_empty(),
                    "{ctx} batch {batch}: a tab was logged out inside the window: {errors:?}"
                );
                handed.push(refresh_token(&b));
                tabs.push(b);
            }
            if batch < BATCHES {
                h.advance(Duration::from_secs(2));
            }
        }

        // The window ends; every tab refreshes at once: one promotes, the
        // others converge in the new window, none is logged out.
        h.advance(GRACE);
        let before = committed(&m1, &handle).await;
        let mut tasks = Vec::new();
        for b in tabs.drain(..) {
            tasks.push(tokio::spawn(tab_step(managers[rand(2)].clone(), true, b)));
        }
        for t in tasks {
            let (b, errors) = t.await.unwrap();
            assert!(errors.is_empty(), "{ctx}: a tab was logged out: {errors:?}");
            tabs.push(b);
        }
        assert_ne!(
            committed(&m1, &handle).await,
            before,
            "{ctx}: one promotion"
        );

        // After that window too, the attacker replays what it copied.
        h.advance(GRACE);
        let now_committed = committed(&m1, &handle).await;
        let replayed: HashSet<String> = handed
            .into_iter()
            .filter(|t| h2(t) != now_committed)
            .collect();
        assert!(replayed.len() > TABS, "{ctx}: the attacker holds tokens");
        for t in &replayed {
            let mut thief = origin.clone();
            thief.set(REFRESH_TOKEN_COOKIE, t);
            match refresh(&managers[rand(2)], &mut thief).await {
                Err(Error::TokenTheftDetected { reuse, .. }) => {
                    assert_ne!(
                        reuse,
                        ReuseKind::WithinGrace,
                        "{ctx}: classified within grace"
                    )
                }
                other => panic!("{ctx}: a replayed token older than the window: {other:?}"),
            }
        }
        assert_eq!(
            committed(&m1, &handle).await,
            now_committed,
            "{ctx}: replays changed the row"
        );
    }
}

crate::per_backend!(
    "grace";
    superseded_token_within_grace_converges,
    sibling_within_grace_converges,
    window_freezes_the_committed_token,
    without_grace_reuse_is_classified,
    uncoordinated_client,
);
