//! Refresh races (docs/PROTOCOL.md §8.2), on every backend, many rounds.
//!
//! Each round starts a session and then, with 64 tasks at once:
//!
//! 1. refreshes one refresh token 64 times (a committed token on even rounds,
//!    an unpromoted child on odd ones, so the child's promotion itself races):
//!    every refresh succeeds and hands out a sibling;
//! 2. presents the 64 siblings' access tokens (each the first use of a
//!    different child): exactly one promotes, the other 63 are Unauthorized;
//! 3. presents one unpromoted child's access token 64 times: all succeed (the
//!    first promotes, the rest see it promoted; on MySQL this is the case a
//!    changed-rows count instead of a matched-rows count would break);
//! 4. refreshes 64 unpromoted siblings at once: exactly one succeeds, at least
//!    one is reported as theft, none fails any other way, and the session is
//!    gone afterwards (revoked on theft).
//!
//! No call may return a General error, and each round must finish within
//! [`ROUND_LIMIT`]: a deadlock or a lock wait that never ends fails the test.
//!
//! `TESSERA_SOAK_RACE_ROUNDS` sets the rounds per backend (default 4; the
//! soak script runs 1,000).

use std::time::{Duration, Instant};

use serde_json::json;
use tessera::{Error, SessionManager, UserId};

use crate::support::*;

const TASKS: usize = 64;
const ROUND_LIMIT: Duration = Duration::from_secs(120);

fn rounds() -> usize {
    std::env::var("TESSERA_SOAK_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

/// What a call came back with, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Unauthorized,
    Theft,
}

fn outcome<T: std::fmt::Debug>(what: &str, r: Result<T, Error>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(Error::Unauthorized { .. }) => Outcome::Unauthorized,
        Err(Error::TokenTheftDetected { .. }) => Outcome::Theft,
        Err(e) => panic!("{what}: unexpected {e:?}"),
    }
}

fn count(results: &[(Outcome, Browser)], o: Outcome) -> usize {
    results.iter().filter(|(r, _)| *r == o).count()
}

/// Runs `op` once per browser, all at the same time; returns each outcome with
/// the browser as the response left it.
async fn all_at_once<F, Fut>(
    m: &SessionManager,
    browsers: Vec<Browser>,
    op: F,
) -> Vec<(Outcome, Browser)>
where
    F: Fn(SessionManager, Browser) -> Fut,
    Fut: std::future::Future<Output = (Outcome, Browser)> + Send + 'static,
{
    let tasks: Vec<_> = browsers
        .into_iter()
        .map(|b| tokio::spawn(op(m.clone(), b)))
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("task panicked"));
    }
    out
}

async fn refresh_all(m: &SessionManager, browsers: Vec<Browser>) -> Vec<(Outcome, Browser)> {
    all_at_once(m, browsers, |m, mut b| async move {
        let r = refresh(&m, &mut b).await;
        (outcome("refresh", r), b)
    })
    .await
}

async fn verify_all(m: &SessionManager, browsers: Vec<Browser>) -> Vec<(Outcome, Browser)> {
    all_at_once(m, browsers, |m, mut b| async move {
        let r = verify(&m, &mut b).await;
        (outcome("verify", r), b)
    })
    .await
}

async fn one_round(m: &SessionManager, round: usize) {
    let user = UserId::from(format!("racer{round}"));
    let mut start = login(m, user.clone(), json!({"round": round})).await;
    if round % 2 == 1 {
        // Start from an unpromoted child: the 64 refreshes race to promote it.
        refresh(m, &mut start).await.unwrap();
    }

    // 1. 64 refreshes of one token: all succeed.
    let children = refresh_all(m, vec![start; TASKS]).await;
    assert_eq!(
        count(&children, Outcome::Ok),
        TASKS,
        "round {round}: step 1"
    );

    // 2. 64 different siblings' access tokens at once: exactly one promotes.
    let verified = verify_all(m, children.into_iter().map(|(_, b)| b).collect()).await;
    let ok = count(&verified, Outcome::Ok);
    let unauth = count(&verified, Outcome::Unauthorized);
    assert_eq!((ok, unauth), (1, TASKS - 1), "round {round}: step 2");
    let (_, mut winner) = verified
        .into_iter()
        .find(|(o, _)| *o == Outcome::Ok)
        .unwrap();
    verify(m, &mut winner)
        .await
        .expect("the winner's session works");

    // 3. One unpromoted child's access token 64 times at once: all succeed.
    refresh(m, &mut winner).await.expect("the winner refreshes");
    let same = verify_all(m, vec![winner.clone(); TASKS]).await;
    assert_eq!(count(&same, Outcome::Ok), TASKS, "round {round}: step 3");

    // 4. 64 unpromoted siblings refreshed at once: one wins, theft is seen.
    let siblings = refresh_all(m, vec![winner; TASKS]).await;
    assert_eq!(
        count(&siblings, Outcome::Ok),
        TASKS,
        "round {round}: step 4a"
    );
    let promoted = refresh_all(m, siblings.into_iter().map(|(_, b)| b).collect()).await;
    let (ok, theft, unauth) = (
        count(&promoted, Outcome::Ok),
        count(&promoted, Outcome::Theft),
        count(&promoted, Outcome::Unauthorized),
    );
    assert_eq!(
        ok, 1,
        "round {round}: step 4b ({theft} theft, {unauth} unauthorized)"
    );
    assert!(theft >= 1, "round {round}: step 4b, no theft reported");
    assert_eq!(ok + theft + unauth, TASKS);
    assert!(
        m.get_all_session_handles_for_user(&user)
            .await
            .unwrap()
            .is_empty(),
        "round {round}: the session survived theft"
    );
}

async fn sixty_four_way_refresh_races(h: Harness) {
    let m = h
        .manager(|c| c.with_blacklisting(false).with_anti_csrf(true))
        .await;
    let rounds = rounds();
    let backend = h.url.split(':').next().unwrap_or("?").to_owned();
    let started = Instant::now();
    for round in 0..rounds {
        tokio::time::timeout(ROUND_LIMIT, one_round(&m, round))
            .await
            .unwrap_or_else(|_| panic!("round {round} did not finish in {ROUND_LIMIT:?}: deadlock or endless lock wait"));
        if (round + 1) % 100 == 0 {
            eprintln!(
                "races {backend}: {} rounds done in {:.0} s",
                round + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "races {backend}: {rounds} rounds of {TASKS}-way races in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

crate::per_backend!("races"; sixty_four_way_refresh_races);
