//! The change feed (docs/DISTRIBUTED.md, "The change feed"): how an
//! instance learns, within a stated bound, of revocations and signing-key
//! rotations made by any instance on the same database.
//!
//! A store that keeps the change log ([`Store::keeps_change_log`]) appends a
//! row to `tessera_changes` in the same transaction as every revocation and
//! every signing-key write. Each instance runs one background task that
//! reads the log every [`ChangeFeedSettings::poll_interval`] (at once when
//! the store's [`Store::change_hint`] fires: PostgreSQL `LISTEN/NOTIFY`),
//! keeps the revoked handles in memory, and reloads its keys when the log
//! shows a key write.
//!
//! **The bound.** A poll that *started* at instant `S` and succeeded has seen
//! every change committed before `S` (each poll is a new statement, so a
//! new snapshot; on Galera `wsrep_sync_wait` makes the read causal). The
//! feed records `S` once the poll's rows are applied. `get_session` answers
//! from memory only while `now - S <= bound`; otherwise it asks the
//! database, as without a feed. So a revocation committed at `T` can be
//! missed by a request at `R` only if `T > R - bound`: every instance
//! refuses a revoked session at most `bound` after the revocation committed,
//! and an instance whose feed is behind or disconnected fails closed to the
//! database instead of answering from a stale memory.
//!
//! **Out-of-order numbers.** Log numbers come from a sequence (PostgreSQL)
//! or an auto-increment counter (MySQL), which hand out numbers at insert
//! time, not at commit: a transaction holding number 10 can commit after
//! number 11 was read. So each poll reads again from the highest number that
//! was already known [`REREAD_WINDOW`] ago, and skips the numbers it has
//! applied. A store writes its log row as the last statement before its
//! commit, so the gap between taking a number and committing is one commit;
//! the window is thousands of times that.
//!
//! **Restarts.** A starting instance reads the whole retained log (rows are
//! pruned once older than the access-token validity plus a margin: a
//! revocation older than that has no unexpired access token left, since the
//! session's tokens were all issued before it). Until that first read
//! succeeds the feed is not caught up and the database is asked.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use crate::config::ChangeFeedSettings;
use crate::manager::Inner;
use crate::store::{ChangeKind, Store, StoreResult};

/// How far behind the highest number seen a poll reads again (see the
/// module docs, "Out-of-order numbers").
pub(crate) const REREAD_WINDOW: Duration = Duration::from_secs(5);

/// Rows read per query; a poll pages until a short page.
const PAGE: u32 = 1000;

/// How long a revoked handle is remembered after the feed saw it, beyond
/// the access-token validity: room for clock differences between the
/// instance that issued a token and this one.
const REMEMBER_MARGIN: Duration = Duration::from_secs(60);

/// How long change-log rows are kept beyond the access-token validity.
const RETENTION_MARGIN: Duration = Duration::from_secs(600);

/// How often the feed task prunes the log itself (cleanup does too).
const PRUNE_EVERY: Duration = Duration::from_secs(600);

pub(crate) struct Feed {
    settings: ChangeFeedSettings,
    /// Time origin of `caught_up_at`.
    base: Instant,
    /// Nanoseconds after `base` at which the last successful poll started,
    /// plus one; 0 until the first poll succeeded.
    caught_up_at: AtomicU64,
    /// Revoked handles and until when to remember them.
    revoked: RwLock<HashMap<Box<str>, Instant>>,
    remember_for: Duration,
    retention: Duration,
    /// The reading state; a local revocation polls inline under it too.
    poll: tokio::sync::Mutex<PollState>,
}

#[derive(Default)]
struct PollState {
    /// Every number at or below this was seen by a poll that started at
    /// least [`REREAD_WINDOW`] ago; polls read from here.
    reread_from: i64,
    /// Numbers above `reread_from` already applied.
    applied: BTreeSet<i64>,
    /// (start of a poll, highest number known after it), oldest first.
    history: VecDeque<(Instant, i64)>,
    polls: u64,
    last_prune: Option<Instant>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What one poll found.
#[derive(Debug, Default)]
struct Applied {
    keys_changed: bool,
}

impl Feed {
    pub(crate) fn new(settings: ChangeFeedSettings, access_validity: Duration) -> Self {
        Feed {
            settings,
            base: Instant::now(),
            caught_up_at: AtomicU64::new(0),
            revoked: RwLock::new(HashMap::new()),
            remember_for: access_validity.saturating_add(REMEMBER_MARGIN),
            retention: retention(access_validity),
            poll: tokio::sync::Mutex::new(PollState::default()),
        }
    }

    fn stamp(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    /// Whether `handle` is revoked, answered from memory: `None` when the
    /// feed is not caught up within its bound (the caller asks the
    /// database).
    pub(crate) fn is_revoked(&self, handle: &str) -> Option<bool> {
        if !self.settings.answer_blacklisting {
            return None;
        }
        self.revoked_within_bound(handle)
    }

    fn revoked_within_bound(&self, handle: &str) -> Option<bool> {
        let at = self.caught_up_at.load(Ordering::Acquire);
        if at == 0 || self.stamp(Instant::now()).saturating_sub(at) > bound_nanos(&self.settings) {
            return None;
        }
        let revoked = self.revoked.read().unwrap_or_else(|e| e.into_inner());
        Some(revoked.contains_key(handle))
    }

    /// Whether the last successful poll is within the bound (for tests and
    /// health checks).
    pub(crate) fn caught_up(&self) -> bool {
        self.revoked_within_bound("").is_some()
    }

    /// Records a revocation this instance made, before the log shows it:
    /// the instance that revokes refuses the session at once.
    pub(crate) fn note_revoked(&self, handle: &str) {
        let until = Instant::now() + self.remember_for;
        self.revoked
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(handle.into(), until);
    }

    /// Reads the log once and applies what is new.
    async fn poll_once(&self, store: &dyn Store) -> StoreResult<Applied> {
        let mut state = self.poll.lock().await;
        let started = Instant::now();
        let first = state.polls == 0;
        let mut after = state.reread_from;
        let mut highest = state.history.back().map_or(state.reread_from, |h| h.1);
        let mut applied = Applied::default();
        let mut new_revoked = Vec::new();
        loop {
            let page = store.changes_after(after, PAGE).await?;
            let short = page.len() < PAGE as usize;
            for change in page {
                after = after.max(change.seq);
                highest = highest.max(change.seq);
                if !state.applied.insert(change.seq) {
                    continue;
                }
                match change.kind {
                    ChangeKind::Revoked => new_revoked.push(change.subject),
                    // Rotations older than this instance are already in the
                    // keys it loaded at start.
                    ChangeKind::SigningKeys => applied.keys_changed |= !first,
                }
            }
            if short {
                break;
            }
        }
        if !new_revoked.is_empty() {
            let until = Instant::now() + self.remember_for;
            let mut revoked = self.revoked.write().unwrap_or_else(|e| e.into_inner());
            for h in new_revoked {
                revoked.insert(h.into_boxed_str(), until);
            }
        }
        state.polls += 1;
        state.history.push_back((started, highest));
        // Advance the re-read point to the newest poll that is old enough.
        while let Some(&(at, seq)) = state.history.front() {
            if started.saturating_duration_since(at) < REREAD_WINDOW {
                break;
            }
            state.history.pop_front();
            state.reread_from = state.reread_from.max(seq);
        }
        let from = state.reread_from;
        state.applied = state.applied.split_off(&(from + 1));
        // Forget handles whose tokens have all expired.
        if state.polls % 64 == 0 {
            let now = Instant::now();
            self.revoked
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, until| *until > now);
        }
        if state.last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            state.last_prune = Some(Instant::now());
            if let Err(e) = store.prune_changes(self.retention).await {
                tracing::warn!(error = %e, "pruning the change log failed; will retry");
            }
        }
        self.caught_up_at
            .store(self.stamp(started), Ordering::Release);
        Ok(applied)
    }
}

/// How long change-log rows must be kept for a given access-token validity
/// (cleanup prunes older ones, with or without a feed running).
pub(crate) fn retention(access_validity: Duration) -> Duration {
    access_validity.saturating_add(RETENTION_MARGIN)
}

fn bound_nanos(s: &ChangeFeedSettings) -> u64 {
    u64::try_from(s.bound.as_nanos()).unwrap_or(u64::MAX)
}

/// Reads the log once now (a local revocation or rotation calls this so
/// that its own instance is caught up when it returns) and reloads the keys
/// if it shows a key write.
pub(crate) async fn catch_up(inner: &Inner, feed: &Feed) -> crate::Result<()> {
    let applied = feed.poll_once(&*inner.store).await?;
    if applied.keys_changed {
        inner
            .keys
            .reload_after_change(inner.config.clock.now_ms())
            .await?;
    }
    Ok(())
}

/// Starts the feed task of a manager. It stops when the manager is dropped.
pub(crate) fn spawn(inner: &Arc<Inner>, feed: Arc<Feed>) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let hint = inner.store.change_hint();
    let interval = feed.settings.poll_interval;
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            {
                let Some(inner) = weak.upgrade() else { return };
                match catch_up(&inner, &feed).await {
                    Ok(()) => {
                        if failing {
                            tracing::info!("the change feed is reading the log again");
                        }
                        failing = false;
                    }
                    Err(e) => {
                        // Until a poll succeeds the feed is behind its bound
                        // and blacklisting asks the database (fails closed).
                        if !failing {
                            tracing::warn!(
                                error = %e,
                                "the change feed cannot read the log; blacklisting asks the database until it can"
                            );
                        }
                        failing = true;
                    }
                }
            }
            match &hint {
                Some(n) => {
                    let _ = tokio::time::timeout(interval, n.notified()).await;
                }
                None => tokio::time::sleep(interval).await,
            }
        }
    });
}
