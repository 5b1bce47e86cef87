//! The in-memory store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tessera::{
    Change, ChangeKind, ExpiryCutoff, GeneralKind, NewSession, Promotion, RotationDecision,
    SessionRow, SessionSummary, SigningKeys, Store, StoreError, StoreResult, StoredKey, UserId,
    MAX_USER_ID_STORAGE_LEN,
};

/// Widths the SQL stores' columns impose, checked here too so that a test
/// that passes on memory does not fail on a database for a too-long value.
const MAX_HANDLE_LEN: usize = 64;
const HASH_LEN: usize = 64;

/// A [`Store`] in the process's memory, shared by its clones (each clone is
/// another "instance" on the same database). Nothing survives the last
/// clone. For tests, examples and single-process development; it passes
/// the store conformance suite ([`crate::store_suite`]) like the SQL
/// stores.
///
/// Every method runs under one lock, so each is atomic: a compare-and-set
/// either happens whole or not at all, and no reader sees half a change.
/// [`Store::signing_keys`] holds a second, asynchronous lock across the
/// caller's decision, which serialises rotations as the SQL stores' row
/// lock does; the decision runs before anything is written, so one that
/// panics writes nothing.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    /// Held across a rotation decision (the SQL stores' row lock).
    rotation: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sessions = self.lock().sessions.len();
        f.debug_struct("MemoryStore")
            .field("sessions", &sessions)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Row>,
    refresh_key: Option<StoredKey>,
    signing: Option<SigningKeys>,
    /// The change log: (change, when it was written).
    changes: Vec<(Change, std::time::Instant)>,
    last_seq: i64,
}

impl State {
    fn record(&mut self, kind: ChangeKind, subject: &str) {
        self.last_seq += 1;
        let change = Change {
            seq: self.last_seq,
            kind,
            subject: subject.to_owned(),
        };
        self.changes.push((change, std::time::Instant::now()));
    }
}

struct Row {
    user_id: UserId,
    refresh_token_hash_2: String,
    session_info: String,
    jwt_payload: String,
    created_at_ms: i64,
    expires_at_ms: i64,
    committed_hash_1: Option<String>,
    previous_hash_2: Option<String>,
    superseded_at_ms: Option<i64>,
    user_agent: Option<String>,
    client_address: Option<String>,
    device_label: Option<String>,
}

fn invalid(message: &'static str) -> StoreError {
    StoreError::with_kind(GeneralKind::InvalidArgument, message)
}

fn check_handle(handle: &str) -> StoreResult<()> {
    if handle.is_empty() || handle.len() > MAX_HANDLE_LEN || handle.ends_with(' ') {
        return Err(invalid(
            "session handle must be 1 to 64 bytes and not end with a space",
        ));
    }
    Ok(())
}

/// The device columns' widths (`VARCHAR(256)`, `VARCHAR(45)`,
/// `VARCHAR(128)`); the core cuts its values to fit.
fn check_device(session: &NewSession<'_>) -> StoreResult<()> {
    let fits = |v: Option<&str>, cap: usize| v.is_none_or(|v| v.len() <= cap);
    if !fits(session.user_agent, tessera::MAX_USER_AGENT_LEN)
        || !fits(session.client_address, tessera::MAX_CLIENT_ADDRESS_LEN)
        || !fits(session.device_label, tessera::MAX_DEVICE_LABEL_LEN)
    {
        return Err(invalid("a device field is too long for the session store"));
    }
    Ok(())
}

fn check_hash(hash: &str) -> StoreResult<()> {
    if hash.len() != HASH_LEN {
        return Err(invalid("refresh_token_hash_2 must be 64 characters"));
    }
    Ok(())
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state, also after a panic in another caller (every change is
    /// made after its checks, in one step, so the state is never half
    /// changed).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The user's rows in creation order (then by handle, as the SQL
    /// stores order them).
    fn rows_of<'a>(state: &'a State, user_id: &UserId) -> Vec<(&'a String, &'a Row)> {
        let mut rows: Vec<_> = state
            .sessions
            .iter()
            .filter(|(_, r)| &r.user_id == user_id)
            .collect();
        rows.sort_by(|a, b| (a.1.created_at_ms, a.0).cmp(&(b.1.created_at_ms, b.0)));
        rows
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn insert_session(&self, session: &NewSession<'_>) -> StoreResult<()> {
        check_handle(session.session_handle)?;
        check_hash(session.refresh_token_hash_2)?;
        check_device(session)?;
        if session.user_id.to_storage().len() > MAX_USER_ID_STORAGE_LEN {
            return Err(invalid("user id is too long for the session store"));
        }
        let mut state = self.lock();
        if state.sessions.contains_key(session.session_handle) {
            return Err(invalid("a session with this handle exists"));
        }
        state.sessions.insert(
            session.session_handle.to_owned(),
            Row {
                user_id: session.user_id.clone(),
                refresh_token_hash_2: session.refresh_token_hash_2.to_owned(),
                session_info: session.session_info.to_owned(),
                jwt_payload: session.jwt_payload.to_owned(),
                created_at_ms: session.created_at_ms,
                expires_at_ms: session.expires_at_ms,
                committed_hash_1: None,
                previous_hash_2: None,
                superseded_at_ms: None,
                user_agent: session.user_agent.map(str::to_owned),
                client_address: session.client_address.map(str::to_owned),
                device_label: session.device_label.map(str::to_owned),
            },
        );
        Ok(())
    }

    async fn load_session(&self, session_handle: &str) -> StoreResult<Option<SessionRow>> {
        Ok(self
            .lock()
            .sessions
            .get(session_handle)
            .map(|r| SessionRow {
                session_handle: session_handle.to_owned(),
                user_id: r.user_id.clone(),
                refresh_token_hash_2: r.refresh_token_hash_2.clone(),
                jwt_payload: r.jwt_payload.clone(),
                created_at_ms: r.created_at_ms,
                expires_at_ms: r.expires_at_ms,
                committed_hash_1: r.committed_hash_1.clone(),
                previous_hash_2: r.previous_hash_2.clone(),
                superseded_at_ms: r.superseded_at_ms,
            }))
    }

    async fn session_is_live(&self, session_handle: &str, now_ms: i64) -> StoreResult<bool> {
        Ok(self
            .lock()
            .sessions
            .get(session_handle)
            .is_some_and(|r| r.expires_at_ms > now_ms))
    }

    async fn compare_and_set_refresh_hash(
        &self,
        promotion: &Promotion<'_>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        check_hash(promotion.new_hash_2)?;
        if let Some(h1) = promotion.new_hash_1 {
            check_hash(h1)?;
        }
        let mut state = self.lock();
        match state.sessions.get_mut(promotion.session_handle) {
            Some(r)
                if r.expires_at_ms > now_ms
                    && r.refresh_token_hash_2 == promotion.expected_hash_2
                    && (r.committed_hash_1.is_none()
                        || r.superseded_at_ms
                            .is_none_or(|t| t <= promotion.not_superseded_after_ms)) =>
            {
                let previous =
                    std::mem::replace(&mut r.refresh_token_hash_2, promotion.new_hash_2.to_owned());
                r.previous_hash_2 = Some(previous);
                r.committed_hash_1 = promotion.new_hash_1.map(str::to_owned);
                r.superseded_at_ms = Some(now_ms);
                r.expires_at_ms = promotion.new_expires_at_ms;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_session(&self, session_handle: &str) -> StoreResult<bool> {
        let mut state = self.lock();
        let deleted = state.sessions.remove(session_handle).is_some();
        if deleted {
            state.record(ChangeKind::Revoked, session_handle);
        }
        Ok(deleted)
    }

    async fn delete_sessions_for_user(&self, user_id: &UserId) -> StoreResult<u64> {
        let mut state = self.lock();
        let handles: Vec<String> = state
            .sessions
            .iter()
            .filter(|(_, r)| &r.user_id == user_id)
            .map(|(h, _)| h.clone())
            .collect();
        for h in &handles {
            state.sessions.remove(h);
            state.record(ChangeKind::Revoked, h);
        }
        Ok(handles.len() as u64)
    }

    async fn session_handles_for_user(&self, user_id: &UserId) -> StoreResult<Vec<String>> {
        let state = self.lock();
        Ok(Self::rows_of(&state, user_id)
            .into_iter()
            .map(|(h, _)| h.clone())
            .collect())
    }

    async fn sessions_for_user(
        &self,
        user_id: &UserId,
        now_ms: i64,
    ) -> StoreResult<Vec<SessionSummary>> {
        let state = self.lock();
        Ok(Self::rows_of(&state, user_id)
            .into_iter()
            .filter(|(_, r)| r.expires_at_ms > now_ms)
            .map(|(h, r)| SessionSummary {
                session_handle: h.clone(),
                created_at_ms: r.created_at_ms,
                expires_at_ms: r.expires_at_ms,
                last_refreshed_at_ms: r.superseded_at_ms,
                user_agent: r.user_agent.clone(),
                client_address: r.client_address.clone(),
                device_label: r.device_label.clone(),
            })
            .collect())
    }

    async fn get_session_info(
        &self,
        session_handle: &str,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        Ok(self
            .lock()
            .sessions
            .get(session_handle)
            .filter(|r| r.expires_at_ms > now_ms)
            .map(|r| r.session_info.clone()))
    }

    async fn update_session_info(
        &self,
        session_handle: &str,
        session_info: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut state = self.lock();
        match state.sessions.get_mut(session_handle) {
            Some(r) if r.expires_at_ms > now_ms => {
                r.session_info = session_info.to_owned();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_expired_sessions(
        &self,
        cutoff: ExpiryCutoff,
        batch_size: u32,
    ) -> StoreResult<u64> {
        let mut state = self.lock();
        let mut expired: Vec<(i64, String)> = state
            .sessions
            .iter()
            .filter(|(_, r)| {
                cutoff.is_expired(r.expires_at_ms, r.created_at_ms, r.superseded_at_ms)
            })
            .map(|(h, r)| (r.expires_at_ms, h.clone()))
            .collect();
        // Oldest first, as the SQL stores walk their expiry index.
        expired.sort();
        expired.truncate(batch_size as usize);
        for (_, h) in &expired {
            state.sessions.remove(h);
        }
        Ok(expired.len() as u64)
    }

    async fn count_expired_sessions(&self, cutoff: ExpiryCutoff) -> StoreResult<u64> {
        Ok(self
            .lock()
            .sessions
            .values()
            .filter(|r| cutoff.is_expired(r.expires_at_ms, r.created_at_ms, r.superseded_at_ms))
            .count() as u64)
    }

    async fn refresh_token_key(&self, candidate: &StoredKey) -> StoreResult<StoredKey> {
        Ok(self
            .lock()
            .refresh_key
            .get_or_insert_with(|| candidate.clone())
            .clone())
    }

    async fn signing_keys(
        &self,
        candidate: &StoredKey,
        decide: RotationDecision<'_>,
    ) -> StoreResult<SigningKeys> {
        let _rotation = self.rotation.lock().await;
        let stored = self
            .lock()
            .signing
            .get_or_insert_with(|| SigningKeys {
                current: candidate.clone(),
                previous: None,
            })
            .clone();
        // Decided without the state lock (the decision may be slow), still
        // under the rotation lock; written only once it returned.
        let Some(new) = decide(&stored) else {
            return Ok(stored);
        };
        let mut state = self.lock();
        state.signing = Some(new.clone());
        state.record(ChangeKind::SigningKeys, "");
        Ok(new)
    }

    fn keeps_change_log(&self) -> bool {
        true
    }

    async fn changes_after(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<Change>> {
        let state = self.lock();
        // Numbers are handed out under the lock and rows written at once,
        // so the log is in order: find the first number above `after_seq`.
        let start = state.changes.partition_point(|(c, _)| c.seq <= after_seq);
        Ok(state.changes[start..]
            .iter()
            .take(limit as usize)
            .map(|(c, _)| c.clone())
            .collect())
    }

    async fn prune_changes(&self, older_than: std::time::Duration) -> StoreResult<u64> {
        let mut state = self.lock();
        let before = state.changes.len();
        state.changes.retain(|(_, at)| at.elapsed() < older_than);
        Ok((before - state.changes.len()) as u64)
    }
}
