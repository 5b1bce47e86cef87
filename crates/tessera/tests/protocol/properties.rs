//! Model-based property test of the refresh state machine (docs/PROTOCOL.md §3.3)
//! with a legitimate client and an attacker.
//!
//! Several sessions live side by side. In each, a client acts in order, the
//! way the front-end SDK does: it verifies, and on TryRefreshToken refreshes
//! and retries; now and then it refreshes on its own. In half of the sessions
//! an attacker also copies the client's cookies at random moments and later
//! replays any copy: verifying with its access token or refreshing with its
//! refresh token, carrying on with whatever the server hands back. Random
//! batches of these steps run concurrently (one step per session per batch,
//! different sessions at once), and the clock jumps so access tokens expire.
//!
//! A small model tracks, per session, which refresh token is committed and
//! each token's parent. Every observed outcome is checked against it:
//!
//! * **P1** a refresh succeeds only with the committed token or an unpromoted
//!   child of it: an attacker replaying a superseded token never gets a new
//!   session, and gets TokenTheftDetected while the session is alive;
//! * **P2** a client acting in order is never flagged (never Unauthorized,
//!   never theft) unless an attacker has refreshed in its session before;
//! * **P3** after theft is detected nothing in that session refreshes again,
//!   and with blacklisting on nothing in it verifies again;
//! * **P4** at the end, every client whose session is intact refreshes and
//!   promotes once more, after which every copy the attacker holds is
//!   superseded and replaying it is reported as theft.
//!
//! The model does not decide the outcome of legal steps (that is the exact
//! model of the conformance suite); it checks that what happened was allowed
//! and that the properties above hold. Seeds are fixed and printed.
//!
//! A third configuration runs the walk with a 30 s refresh grace window
//! (docs/PROTOCOL.md §3.9). The model then also keeps the token the last
//! promotion superseded and when, the window freezes promotions, and inside
//! it the superseded token and its children refresh to a child of the
//! committed token and their access tokens are sent to refresh. P1 holds
//! for everything older than the window; P2–P4 hold as they are (P4 runs
//! after the window of the last promotion has closed). The uncoordinated
//! client with many tabs is `grace.rs`.
//! `TESSERA_SOAK_MODEL_SEEDS` sets the seeds per configuration (default 3).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use tessera::{Error, SessionManager};

use crate::support::*;

const SESSIONS: usize = 8;

const BATCHES: usize = 120;

fn seeds() -> u64 {
    std::env::var("TESSERA_SOAK_MODEL_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// What the model knows of a set of cookies: the refresh token and the access
/// token's `(rt, prt)` as model ids; `None` once the cookies were cleared.
type Tokens = Option<(u32, (u32, Option<u32>))>;

#[derive(Clone)]
struct Holder {
    browser: Browser,
    tokens: Tokens,
}

struct SessionModel {
    parent: Vec<Option<u32>>,
    committed: u32,
    /// The token the last promotion superseded, and when (ms).
    previous: Option<(u32, i64)>,
    /// How often the grace window acted: refreshes answered with a child of
    /// the committed token instead of R's own, and access tokens of a child
    /// accepted unpromoted (frozen).
    grace_acted: (u32, u32),
    alive: bool,
    client: Holder,
    attacker: Option<Vec<Holder>>,
    attacker_refreshed: bool,
}

impl SessionModel {
    fn new(browser: Browser, with_attacker: bool) -> SessionModel {
        SessionModel {
            parent: vec![None],
            committed: 0,
            previous: None,
            grace_acted: (0, 0),
            alive: true,
            client: Holder {
                browser,
                tokens: Some((0, (0, None))),
            },
            attacker: with_attacker.then(Vec::new),
            attacker_refreshed: false,
        }
    }

    /// Whether the grace window (`grace_ms`, 0 = none) is open at `now`.
    fn window_open(&self, grace_ms: i64, now: i64) -> bool {
        grace_ms > 0 && self.previous.is_some_and(|(_, t)| now < t + grace_ms)
    }

    /// Whether `r` is the superseded token or a child of it, inside the
    /// window.
    fn within_grace(&self, r: u32, grace_ms: i64, now: i64) -> bool {
        self.window_open(grace_ms, now)
            && self
                .previous
                .is_some_and(|(p, _)| r == p || self.parent[r as usize] == Some(p))
    }

    fn promote(&mut self, to: u32, now: i64) {
        self.previous = Some((self.committed, now));
        self.committed = to;
    }

    fn is_superseded(&self, r: u32) -> bool {
        // An ancestor of the committed token.
        let mut t = self.parent[self.committed as usize];
        while let Some(p) = t {
            if p == r {
                return true;
            }
            t = self.parent[p as usize];
        }
        false
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Step {
    ClientVerify,
    ClientRefresh,
    AttackerCopy,
    AttackerVerify,
    AttackerRefresh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Outcome {
    Ok,
    TryRefresh,
    Unauthorized,
    Theft,
}

fn outcome<T>(r: &Result<T, Error>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(Error::TryRefreshToken { .. }) => Outcome::TryRefresh,
        Err(Error::Unauthorized { .. }) => Outcome::Unauthorized,
        Err(Error::TokenTheftDetected { .. }) => Outcome::Theft,
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

/// Checks one verify of `h` against the model and updates both.
fn check_verify(
    s: &mut SessionModel,
    h: &mut Holder,
    got: Outcome,
    blacklisting: bool,
    (grace_ms, now): (i64, i64),
    ctx: &str,
) {
    let Some((r, (rt, prt))) = h.tokens else {
        assert_eq!(got, Outcome::Unauthorized, "{ctx}: verify without cookies");
        return;
    };
    match got {
        Outcome::Ok => {
            if blacklisting {
                assert!(s.alive, "{ctx}: P3: verified after the session was revoked");
            }
            if let Some(p) = prt {
                // First use of a child: legal only as the promotion of the
                // committed token's child, or once it is promoted.
                assert!(s.alive, "{ctx}: promotion in a dead session");
                if s.committed == p {
                    // Promoted, unless the window freezes the committed
                    // token (then accepted unpromoted).
                    if !s.window_open(grace_ms, now) {
                        s.promote(rt, now);
                    } else {
                        s.grace_acted.1 += 1;
                    }
                } else {
                    assert_eq!(
                        s.committed, rt,
                        "{ctx}: a sibling's access token was accepted"
                    );
                }
                h.tokens = Some((r, (rt, None)));
            }
        }
        Outcome::TryRefresh => {}
        Outcome::Unauthorized => {
            // A child's token needs a live session whose committed token is
            // its parent or itself (or, inside the grace window, whose
            // superseded token is; that is TryRefreshToken); a promoted token
            // needs a live session only when blacklisting makes verification
            // ask the database.
            let superseded_gen = s.window_open(grace_ms, now)
                && s.previous.is_some_and(|(q, _)| Some(q) == prt || q == rt);
            let legal = match prt {
                Some(p) => !s.alive || (s.committed != p && s.committed != rt && !superseded_gen),
                None => blacklisting && !s.alive,
            };
            assert!(legal, "{ctx}: Unauthorized for a valid access token");
            h.tokens = None;
        }
        Outcome::Theft => panic!("{ctx}: verify reported theft"),
    }
}

/// Checks one refresh of `h` against the model and updates both.
fn check_refresh(
    s: &mut SessionModel,
    h: &mut Holder,
    got: Outcome,
    (grace_ms, now): (i64, i64),
    ctx: &str,
) {
    let Some((r, _)) = h.tokens else {
        assert_eq!(got, Outcome::Unauthorized, "{ctx}: refresh without cookies");
        return;
    };
    let is_child = s.parent[r as usize] == Some(s.committed);
    let open = s.window_open(grace_ms, now);
    let legal = s.alive && (s.committed == r || is_child || s.within_grace(r, grace_ms, now));
    match got {
        Outcome::Ok => {
            assert!(
                legal,
                "{ctx}: P1: refresh succeeded with token {r} (superseded: {}, committed {}, alive {})",
                s.is_superseded(r),
                s.committed,
                s.alive
            );
            // The child's parent: R itself (committed, or promoted now), or
            // inside the window the committed token.
            let parent = if s.committed == r {
                r
            } else if is_child && !open {
                s.promote(r, now);
                r
            } else {
                s.grace_acted.0 += 1;
                s.committed
            };
            let child = s.parent.len() as u32;
            s.parent.push(Some(parent));
            h.tokens = Some((child, (child, Some(parent))));
        }
        Outcome::Theft => {
            assert!(
                s.alive && !legal,
                "{ctx}: theft reported for a legal refresh"
            );
            s.alive = false;
            h.tokens = None;
        }
        Outcome::Unauthorized => {
            assert!(!s.alive, "{ctx}: Unauthorized refresh in a live session");
            h.tokens = None;
        }
        Outcome::TryRefresh => panic!("{ctx}: refresh answered TryRefreshToken"),
    }
}

async fn run_step(m: SessionManager, step: Step, mut h: Holder) -> (Holder, Vec<(bool, Outcome)>) {
    // (is_verify, outcome) for each call made, in order.
    let mut calls = Vec::new();
    match step {
        Step::ClientVerify | Step::AttackerVerify => {
            let r = verify(&m, &mut h.browser).await;
            calls.push((true, outcome(&r)));
        }
        Step::ClientRefresh | Step::AttackerRefresh => {
            let r = refresh(&m, &mut h.browser).await;
            calls.push((false, outcome(&r)));
        }
        Step::AttackerCopy => {}
    }
    if step == Step::ClientVerify && calls[0].1 == Outcome::TryRefresh {
        // The SDK's reaction: refresh, then retry once.
        let r = refresh(&m, &mut h.browser).await;
        let refreshed = outcome(&r);
        calls.push((false, refreshed));
        if refreshed == Outcome::Ok {
            let r = verify(&m, &mut h.browser).await;
            calls.push((true, outcome(&r)));
        }
    }
    (h, calls)
}

async fn attacker_and_client(h: Harness, blacklisting: bool, grace: Duration) {
    let m = h
        .manager(|c| c.with_blacklisting(blacklisting).with_refresh_grace(grace))
        .await;
    let grace_ms = grace.as_millis() as i64;
    let clock = |h: &Harness| (grace_ms, tessera::Clock::now_ms(&*h.clock));
    let mut seen: HashMap<(Step, Outcome), u32> = HashMap::new();
    let mut thefts = 0;
    let mut grace_acted = (0, 0);
    for seed in 1..=seeds() {
        let mut x = (seed + 1000 * u64::from(blacklisting) + 7 * grace.as_secs())
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut sessions = Vec::new();
        for i in 0..SESSIONS {
            let b = login(&m, format!("p{seed}-{i}"), json!({"i": i})).await;
            sessions.push(SessionModel::new(b, i % 2 == 1));
        }
        for batch in 0..BATCHES {
            if next() % 8 == 0 {
                // Expire some access tokens (validity 1 h).
                h.advance(Duration::from_secs(600 + next() % 3600));
            } else if grace_ms > 0 && next() % 3 == 0 {
                // With a grace window: let windows close now and then.
                h.advance(Duration::from_secs(next() % 40));
            }
            // A slot whose session is over and whose client is logged out
            // gets a new session (keeps the walk where the decisions are).
            for (i, s) in sessions.iter_mut().enumerate() {
                if !s.alive && s.client.tokens.is_none() && next() % 3 == 0 {
                    grace_acted.0 += s.grace_acted.0;
                    grace_acted.1 += s.grace_acted.1;
                    let user = format!("p{seed}-{i}-{batch}");
                    *s =
                        SessionModel::new(login(&m, user, json!(null)).await, s.attacker.is_some());
                }
            }
            // One step for a random subset of sessions, all at once.
            let mut planned = Vec::new();
            for (i, s) in sessions.iter_mut().enumerate() {
                if next() % 2 == 0 {
                    continue;
                }
                let roll = next() % 10;
                let (step, holder) = match (&mut s.attacker, roll) {
                    (Some(copies), 0..=1) => {
                        copies.push(s.client.clone());
                        (Step::AttackerCopy, None)
                    }
                    (Some(copies), 2..=3) if !copies.is_empty() => {
                        let k = (next() as usize) % copies.len();
                        let step = if roll == 2 {
                            Step::AttackerVerify
                        } else {
                            Step::AttackerRefresh
                        };
                        (step, Some(k))
                    }
                    (_, r) if r < 7 => (Step::ClientVerify, None),
                    _ => (Step::ClientRefresh, None),
                };
                if step == Step::AttackerCopy {
                    *seen.entry((step, Outcome::Ok)).or_default() += 1;
                    continue;
                }
                let state = match holder {
                    Some(k) => s.attacker.as_ref().unwrap()[k].clone(),
                    None => s.client.clone(),
                };
                planned.push((
                    i,
                    step,
                    holder,
                    tokio::spawn(run_step(m.clone(), step, state)),
                ));
            }
            for (i, step, holder, task) in planned {
                let (mut after, calls) = task.await.expect("step panicked");
                let s = &mut sessions[i];
                // Replay the calls on the model, from the holder's old tokens.
                let mut model_h = match holder {
                    Some(k) => s.attacker.as_ref().unwrap()[k].clone(),
                    None => s.client.clone(),
                };
                let attacker = holder.is_some();
                let flagged_before = s.attacker_refreshed;
                for (n, &(is_verify, got)) in calls.iter().enumerate() {
                    let ctx = format!(
                        "blacklisting {blacklisting} seed {seed} batch {batch} session {i} {step:?} call {n}"
                    );
                    if is_verify {
                        check_verify(s, &mut model_h, got, blacklisting, clock(&h), &ctx);
                    } else {
                        check_refresh(s, &mut model_h, got, clock(&h), &ctx);
                    }
                    if !attacker && !flagged_before {
                        assert!(
                            matches!(got, Outcome::Ok | Outcome::TryRefresh),
                            "{ctx}: P2: a client acting in order was told {got:?}"
                        );
                    }
                    if got == Outcome::Theft {
                        thefts += 1;
                    }
                    *seen.entry((step, got)).or_default() += 1;
                }
                if attacker && step == Step::AttackerRefresh {
                    s.attacker_refreshed = true;
                }
                after.tokens = model_h.tokens;
                // Cookies are cleared exactly when the model says so.
                assert_eq!(
                    after
                        .browser
                        .cookie(tessera::REFRESH_TOKEN_COOKIE)
                        .is_none(),
                    after.tokens.is_none(),
                    "seed {seed} batch {batch} session {i} {step:?}: cookie state"
                );
                match holder {
                    Some(k) => s.attacker.as_mut().unwrap()[k] = after,
                    None => s.client = after,
                }
            }
        }

        for s in &sessions {
            grace_acted.0 += s.grace_acted.0;
            grace_acted.1 += s.grace_acted.1;
        }
        // P4: intact clients refresh and promote; every attacker copy is
        // then superseded and replaying it is theft. With a grace window,
        // after it has closed both before the promotion and after it.
        if grace_ms > 0 {
            h.advance(grace + Duration::from_secs(1));
        }
        for (i, s) in sessions.iter_mut().enumerate() {
            if !s.alive || s.client.tokens.is_none() {
                continue;
            }
            let ctx = format!("blacklisting {blacklisting} seed {seed} final session {i}");
            let mut c = s.client.clone();
            let r = refresh(&m, &mut c.browser).await;
            check_refresh(s, &mut c, outcome(&r), clock(&h), &ctx);
            if r.is_err() {
                // Only possible after an attacker refreshed in this session.
                assert!(s.attacker_refreshed, "{ctx}: P2 at the end");
                continue;
            }
            let r = verify(&m, &mut c.browser).await;
            check_verify(s, &mut c, outcome(&r), blacklisting, clock(&h), &ctx);
            if r.is_err() {
                assert!(s.attacker_refreshed, "{ctx}: P2 at the end");
                continue;
            }
            s.client = c;
            if grace_ms > 0 {
                h.advance(grace + Duration::from_secs(1));
            }
            let copies = s.attacker.take().unwrap_or_default();
            let mut replayed = 0;
            for mut a in copies {
                if a.tokens.is_none() {
                    continue;
                }
                let r = refresh(&m, &mut a.browser).await;
                let got = outcome(&r);
                check_refresh(s, &mut a, got, clock(&h), &ctx);
                assert_ne!(got, Outcome::Ok, "{ctx}: P4: a copy still refreshes");
                if replayed == 0 {
                    assert_eq!(got, Outcome::Theft, "{ctx}: P4: replay not seen as theft");
                }
                replayed += 1;
            }
            if replayed > 0 {
                // P3: the session is gone; the client cannot refresh.
                let r = refresh(&m, &mut s.client.browser).await;
                assert!(
                    matches!(r, Err(Error::Unauthorized { .. })),
                    "{ctx}: P3: refresh after theft gave {r:?}"
                );
                if blacklisting {
                    let mut c = s.client.clone();
                    let r = verify(&m, &mut c.browser).await;
                    assert!(
                        matches!(r, Err(Error::Unauthorized { .. })),
                        "{ctx}: P3: verify after theft gave {r:?}"
                    );
                }
            }
        }
    }
    eprintln!(
        "properties (blacklisting {blacklisting}, grace {grace:?}): {thefts} thefts; steps {seen:?}"
    );
    if grace_ms > 0 {
        let (g, f) = grace_acted;
        eprintln!(
            "properties (grace): {g} refreshes answered by the window, {f} frozen verifications"
        );
        assert!(
            g >= 2 && f >= 2,
            "the grace window too rarely acted: {g}, {f}"
        );
    }
    // The walk must reach the interesting cases, or it proves little.
    for kind in [
        (Step::ClientVerify, Outcome::Ok),
        (Step::ClientVerify, Outcome::TryRefresh),
        (Step::ClientRefresh, Outcome::Ok),
        (Step::AttackerRefresh, Outcome::Ok),
        (Step::AttackerRefresh, Outcome::Theft),
        (Step::AttackerVerify, Outcome::Ok),
    ] {
        assert!(
            seen.get(&kind).copied().unwrap_or(0) >= 2,
            "{kind:?} too rare: {seen:?}"
        );
    }
}

async fn attacker_with_copies_without_blacklisting(h: Harness) {
    attacker_and_client(h, false, Duration::ZERO).await;
}

async fn attacker_with_copies_with_blacklisting(h: Harness) {
    attacker_and_client(h, true, Duration::ZERO).await;
}

async fn attacker_with_copies_with_a_grace_window(h: Harness) {
    attacker_and_client(h, false, Duration::from_secs(30)).await;
}

crate::per_backend!(
    "properties";
    attacker_with_copies_without_blacklisting,
    attacker_with_copies_with_blacklisting,
    attacker_with_copies_with_a_grace_window,
);
