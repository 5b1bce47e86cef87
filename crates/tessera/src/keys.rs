//! Access-token signing keys and the refresh-token key (docs/PROTOCOL.md §5).
//!
//! The signing keys are cached in an [`ArcSwap`] so that `get_session` reads
//! them without a lock or a database call (when the cache is due, the
//! verification path schedules the reload on a background task and goes on
//! with the cached keys; create and refresh, which write to the database
//! anyway, reload inline before signing). The cache is reloaded through
//! [`Store::signing_keys`] (which takes the database row lock and rotates
//! there if the key is due) when:
//!
//! * the current key's rotation time has come (dynamic keys): all instances
//!   read the same `created_at` from the database, so they switch together,
//!   and the row lock makes exactly one of them write the new key;
//! * [`KEY_RECHECK_INTERVAL`] has passed since the last load, so a rotation
//!   forced by an operator reaches every instance within that time;
//! * a token names a key id this instance does not know (another instance
//!   rotated first); at most once per [`UNKNOWN_KID_RELOAD_GAP_MS`], so
//!   forged tokens cannot make us hammer the database.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::config::{Config, SigningKeyFn, SigningKeySource};
use crate::crypto::random_array;
use crate::error::{Error, Result};
use crate::jwk::{stored_algorithm, AccessTokenAlgorithm, KeyPair};
use crate::store::{SigningKeys, Store, StoredKey};
use crate::tokens::{RefreshKey, SigningKey, MIN_SIGNING_KEY_LEN};

/// How long a loaded key set is trusted before the database is asked again.
pub const KEY_RECHECK_INTERVAL: Duration = Duration::from_secs(60);
const UNKNOWN_KID_RELOAD_GAP_MS: i64 = 1000;

/// Longest `Cache-Control: max-age` of the JWKS document (see
/// [`KeyManager::jwks`]).
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);

/// The public keys of asymmetric mode as a JWKS document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwks {
    /// The document: `{"keys":[<JWK>, …]}`, the current key first.
    pub json: String,
    /// How long a verifier may cache it, in seconds (`Cache-Control: max-age`).
    pub max_age_secs: u64,
}

impl Jwks {
    /// The `Cache-Control` value for the document.
    pub fn cache_control(&self) -> String {
        format!("public, max-age={}", self.max_age_secs)
    }
}

/// The keys an instance verifies with.
#[derive(Debug)]
pub(crate) struct KeyRing {
    pub(crate) current: Arc<SigningKey>,
    /// The previous key and until when tokens signed with it are accepted.
    pub(crate) previous: Option<(Arc<SigningKey>, i64)>,
    /// The previous key while tokens it signed may still be unexpired, if
    /// it is a key pair: published in the JWKS whether or not this instance
    /// accepts it (`accept_previous_signing_key`), since a verifier elsewhere
    /// may.
    pub(crate) published_previous: Option<(Arc<SigningKey>, i64)>,
    /// When to ask the database again.
    pub(crate) next_check_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reload {
    /// Only if the cached ring is due for a check.
    IfDue,
    /// Unconditionally (a token named a key id we do not hold).
    Always,
    /// Unconditionally, and rotate the key.
    Rotate,
}

pub(crate) struct KeyManager {
    store: Arc<dyn Store>,
    source: SigningKeySource,
    accept_previous: bool,
    access_validity_ms: i64,
    algorithm: AccessTokenAlgorithm,
    /// A generated key pair not yet written (asymmetric mode): kept for the
    /// next rotation instead of generating one per reload (an RSA key takes
    /// a noticeable fraction of a second). Dropped once the database holds it.
    candidate: std::sync::Mutex<Option<Vec<u8>>>,
    ring: ArcSwap<KeyRing>,
    reload: tokio::sync::Mutex<()>,
    /// Reloads attempted so far (successful or not), counted under `reload`.
    /// A task that waited for the lock while another reload failed shares
    /// that failure instead of repeating it: during a database outage a burst
    /// of logins then fails after one acquire timeout, not one each.
    reload_attempts: AtomicU64,
    /// Whether the last of those reloads failed (read with `reload_attempts`).
    last_reload_failed: AtomicBool,
    background_reload: AtomicBool,
    last_unknown_kid_reload_ms: AtomicI64,
    pub(crate) refresh_key: RefreshKey,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyManager")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// A candidate signing key for `alg`: 32 random bytes for HS256, a new key
/// pair in its stored form otherwise.
fn new_signing_key(alg: AccessTokenAlgorithm, now_ms: i64) -> Result<StoredKey> {
    if !alg.is_asymmetric() {
        return new_key(now_ms);
    }
    Ok(StoredKey {
        value: KeyPair::generate_stored(alg)?,
        created_at_ms: now_ms,
    })
}

fn new_key(now_ms: i64) -> Result<StoredKey> {
    Ok(StoredKey {
        value: random_array::<32>()?.to_vec(),
        created_at_ms: now_ms,
    })
}

fn bad_key() -> Error {
    Error::general("a stored key is not a usable key (shorter than 256 bits or wrong length)")
}

/// Calls the user's key function and refuses what it returns unless it is
/// at least [`MIN_SIGNING_KEY_LEN`] bytes (256 bits).
fn call_user_fn(f: &SigningKeyFn) -> Result<Vec<u8>> {
    let raw =
        f().map_err(|e| Error::internal_from("the user-supplied signing-key function failed", e))?;
    if raw.len() < MIN_SIGNING_KEY_LEN {
        return Err(Error::invalid_argument(format!(
            "the user-supplied signing key is empty or shorter than 256 bits \
             ({} bytes; give at least {MIN_SIGNING_KEY_LEN} random bytes)",
            raw.len()
        )));
    }
    Ok(raw)
}

impl KeyManager {
    pub(crate) async fn new(config: &Config, store: Arc<dyn Store>) -> Result<Self> {
        let now = config.clock.now_ms();
        // "Configuration time" for a key *function*: the manager calls it
        // once when it is constructed, so a function that returns a short
        // (or no) key fails `SessionManager::new` instead of the first
        // request. It is still checked on every call afterwards.
        if let SigningKeySource::Function(f) = &config.signing_key {
            call_user_fn(f)?;
        }
        let refresh = store.refresh_token_key(&new_key(now)?).await?;
        let refresh_key = RefreshKey::new(&refresh.value).ok_or_else(bad_key)?;
        let algorithm = config.access_token_algorithm;
        let candidate = new_signing_key(algorithm, now)?;
        let (ring, _) = Self::fetch(
            &*store,
            &config.signing_key,
            config.accept_previous_signing_key,
            config.access_token_validity.as_millis() as i64,
            algorithm,
            candidate,
            false,
        )
        .await?;
        Ok(KeyManager {
            store,
            source: config.signing_key.clone(),
            accept_previous: config.accept_previous_signing_key,
            access_validity_ms: config.access_token_validity.as_millis() as i64,
            algorithm,
            candidate: std::sync::Mutex::new(None),
            ring: ArcSwap::from_pointee(ring),
            reload: tokio::sync::Mutex::new(()),
            reload_attempts: AtomicU64::new(0),
            last_reload_failed: AtomicBool::new(false),
            background_reload: AtomicBool::new(false),
            last_unknown_kid_reload_ms: AtomicI64::new(i64::MIN),
            refresh_key,
        })
    }

    /// Reads (and, if due or forced, rotates) the keys under the database lock.
    async fn fetch(
        store: &dyn Store,
        source: &SigningKeySource,
        accept_previous: bool,
        access_validity_ms: i64,
        algorithm: AccessTokenAlgorithm,
        candidate: StoredKey,
        force_rotate: bool,
    ) -> Result<(KeyRing, SigningKeys)> {
        let now = candidate.created_at_ms;
        let interval_ms = match source {
            SigningKeySource::Dynamic { update_interval } => {
                Some(update_interval.as_millis() as i64)
            }
            _ => None,
        };
        let decide = |stored: &SigningKeys| {
            let due =
                interval_ms.is_some_and(|i| now >= stored.current.created_at_ms.saturating_add(i));
            // A key of another algorithm (the configuration changed) is
            // replaced at once, under the same lock as a due rotation.
            let other_algorithm = stored_algorithm(&stored.current.value) != Some(algorithm);
            (force_rotate || due || other_algorithm).then(|| SigningKeys {
                current: candidate.clone(),
                previous: Some(stored.current.clone()),
            })
        };
        let stored = store.signing_keys(&candidate, &decide).await?;
        let current = Arc::new(
            SigningKey::from_stored(&stored.current.value, stored.current.created_at_ms)
                .ok_or_else(bad_key)?,
        );
        // Tokens signed with the previous key were all issued before the
        // current key took over, so they expire within one access-token
        // validity of that moment.
        let until = stored
            .current
            .created_at_ms
            .saturating_add(access_validity_ms);
        let unexpired_previous = stored
            .previous
            .as_ref()
            .filter(|_| now < until)
            .and_then(|p| SigningKey::from_stored(&p.value, p.created_at_ms))
            .map(|k| (Arc::new(k), until));
        let published_previous = unexpired_previous
            .clone()
            .filter(|(k, _)| k.algorithm().is_asymmetric());
        let previous = unexpired_previous.filter(|_| accept_previous);
        let mut next_check = now.saturating_add(KEY_RECHECK_INTERVAL.as_millis() as i64);
        if let Some(i) = interval_ms {
            next_check = next_check.min(stored.current.created_at_ms.saturating_add(i).max(now));
        }
        if let Some((_, until)) = previous.as_ref().or(published_previous.as_ref()) {
            next_check = next_check.min(*until);
        }
        Ok((
            KeyRing {
                current,
                previous,
                published_previous,
                next_check_ms: next_check,
            },
            stored,
        ))
    }

    fn user_fn(&self) -> Option<&SigningKeyFn> {
        match &self.source {
            SigningKeySource::Function(f) => Some(f),
            _ => None,
        }
    }

    /// The key ring to verify with, without waiting on the database: if the
    /// cached ring is due for a check, `reload_in_background` is told so and
    /// the cached ring is used meanwhile. This keeps `get_session` free of
    /// database access; a due rotation reaches verification a moment later.
    ///
    /// `check` runs on the cached ring borrowed in place (an `arc-swap`
    /// guard, no reference-count traffic on the shared ring: every request
    /// of every core reads it), so it must not await; what it returns comes
    /// back with the flag.
    pub(crate) fn with_verification_ring<R>(
        &self,
        now: i64,
        check: impl FnOnce(&KeyRing) -> R,
    ) -> Result<(R, bool)> {
        if let Some(f) = self.user_fn() {
            return Ok((check(&*self.ring_from_user_fn(f, now)?), false));
        }
        let ring = self.ring.load();
        let due = now >= ring.next_check_ms && !self.background_reload.swap(true, Ordering::AcqRel);
        Ok((check(&ring), due))
    }

    /// The cached key ring, owned (for a caller that signs after an await),
    /// never waiting on the database.
    pub(crate) fn cached_ring(&self, now: i64) -> Result<Arc<KeyRing>> {
        match self.user_fn() {
            Some(f) => self.ring_from_user_fn(f, now),
            None => Ok(self.ring.load_full()),
        }
    }

    /// Runs the reload that [`KeyManager::with_verification_ring`] asked for.
    pub(crate) async fn background_reload(&self, now: i64) {
        if let Err(e) = self.reload(now, Reload::IfDue).await {
            tracing::warn!(error = %e, "reloading the signing keys failed; will retry");
        }
        self.background_reload.store(false, Ordering::Release);
    }

    /// The key ring to sign with at `now`, reloading it first if it is due
    /// (create and refresh write to the database anyway). With a user key
    /// function, the function's key is the only key.
    pub(crate) async fn ring(&self, now: i64) -> Result<Arc<KeyRing>> {
        if let Some(f) = self.user_fn() {
            return self.ring_from_user_fn(f, now);
        }
        let ring = self.ring.load_full();
        if now < ring.next_check_ms {
            return Ok(ring);
        }
        self.reload(now, Reload::IfDue).await
    }

    fn ring_from_user_fn(&self, f: &SigningKeyFn, now: i64) -> Result<Arc<KeyRing>> {
        let raw = call_user_fn(f)?;
        let ring = self.ring.load_full();
        if ring.current.same_raw(&raw) {
            return Ok(ring);
        }
        let key = SigningKey::new(&raw, now)
            .ok_or_else(|| Error::invalid_argument("the user-supplied signing key is too short"))?;
        let ring = Arc::new(KeyRing {
            current: Arc::new(key),
            previous: None,
            published_previous: None,
            next_check_ms: i64::MAX,
        });
        self.ring.store(ring.clone());
        Ok(ring)
    }

    /// The public keys as a JWKS document (RFC 7517 §5), and how many
    /// seconds a verifier may cache it; `None` in HS256 mode (a secret key
    /// is never published). Reloads the keys first if they are due, so a
    /// scheduled rotation is in the document from its first moment; if that
    /// reload fails, the cached keys are published.
    ///
    /// The document lists the current key and, until every token it signed
    /// has expired (one access-token validity after the current key took
    /// over), the previous one. The cache lifetime ends no later than the
    /// current key's scheduled rotation and at most [`JWKS_MAX_AGE`] from
    /// now: a cached document then always holds every key whose tokens are
    /// still valid, except a key newer than the document, which a verifier
    /// learns about from a token naming a `kid` it does not know.
    pub(crate) async fn jwks(&self, now: i64) -> Option<Jwks> {
        if !self.algorithm.is_asymmetric() {
            return None;
        }
        // The database unreachable: the keys this instance signs and
        // verifies with are still the right ones to publish (a due rotation
        // then shows as `max-age=0`, so verifiers come back soon).
        let ring = match self.ring(now).await {
            Ok(ring) => ring,
            Err(e) => {
                tracing::warn!(error = %e, "reloading the signing keys for the JWKS failed; serving the cached keys");
                self.ring.load_full()
            }
        };
        let mut keys = Vec::with_capacity(2);
        keys.extend(ring.current.key_pair().map(KeyPair::jwk));
        if let Some((prev, until)) = &ring.published_previous {
            if now < *until {
                keys.extend(prev.key_pair().map(KeyPair::jwk));
            }
        }
        let mut expires_ms = now.saturating_add(JWKS_MAX_AGE.as_millis() as i64);
        if let SigningKeySource::Dynamic { update_interval } = &self.source {
            let rotation = ring
                .current
                .created_at_ms
                .saturating_add(update_interval.as_millis() as i64);
            expires_ms = expires_ms.min(rotation);
        }
        Some(Jwks {
            json: format!(r#"{{"keys":[{}]}}"#, keys.join(",")),
            max_age_secs: (expires_ms.saturating_sub(now).max(0) / 1000) as u64,
        })
    }

    /// Reloads after a token named a key id we do not hold. Returns the new
    /// ring if a reload happened (rate-limited), `None` otherwise.
    pub(crate) async fn reload_for_unknown_kid(&self, now: i64) -> Result<Option<Arc<KeyRing>>> {
        if self.user_fn().is_some() {
            return Ok(None);
        }
        let last = self.last_unknown_kid_reload_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < UNKNOWN_KID_RELOAD_GAP_MS
            || self
                .last_unknown_kid_reload_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(None);
        }
        self.reload(now, Reload::Always).await.map(Some)
    }

    /// Reloads now because the change feed saw a key write (another
    /// instance rotated). A no-op with a user key function.
    pub(crate) async fn reload_after_change(&self, now: i64) -> Result<()> {
        if self.user_fn().is_some() {
            return Ok(());
        }
        self.reload(now, Reload::Always).await.map(|_| ())
    }

    /// Rotates the signing key now, whatever its age (admin command). Other
    /// instances follow within the change feed's bound (with a store that
    /// keeps the change log), else within [`KEY_RECHECK_INTERVAL`], and at
    /// once when they see a token signed with the new key.
    pub(crate) async fn force_rotate(&self, now: i64) -> Result<()> {
        if self.user_fn().is_some() {
            return Err(Error::invalid_argument(
                "the signing key comes from a user function; rotate it there",
            ));
        }
        self.reload(now, Reload::Rotate).await.map(|_| ())
    }

    /// The candidate key for a reload at `now`: the kept key pair if there
    /// is one (re-dated to `now`), else a new key.
    fn take_candidate(&self, now: i64) -> Result<StoredKey> {
        let kept = self
            .candidate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match kept {
            Some(value) => Ok(StoredKey {
                value,
                created_at_ms: now,
            }),
            None => new_signing_key(self.algorithm, now),
        }
    }

    async fn reload(&self, now: i64, mode: Reload) -> Result<Arc<KeyRing>> {
        let attempts_before = self.reload_attempts.load(Ordering::Acquire);
        let _guard = self.reload.lock().await;
        if mode == Reload::IfDue {
            // Another task may have reloaded while we waited for the lock.
            let ring = self.ring.load_full();
            if now < ring.next_check_ms {
                return Ok(ring);
            }
            if self.reload_attempts.load(Ordering::Acquire) != attempts_before
                && self.last_reload_failed.load(Ordering::Acquire)
            {
                // A reload failed while we waited: share that failure. The
                // database is likely down and the call would fail at its next
                // query anyway; the next due call retries. (A reload that
                // succeeded but left the keys due for our `now`, e.g. a
                // background reload started earlier, is not shared: we
                // reload ourselves so that a due rotation happens.)
                // The database is the likely cause: retryable.
                return Err(Error::with_kind(
                    crate::GeneralKind::Unavailable,
                    "reloading the signing keys failed (shared with a concurrent reload)",
                ));
            }
        }
        let candidate = self.take_candidate(now)?;
        let candidate_value = candidate.value.clone();
        let fetched = Self::fetch(
            &*self.store,
            &self.source,
            self.accept_previous,
            self.access_validity_ms,
            self.algorithm,
            candidate,
            mode == Reload::Rotate,
        )
        .await;
        // A key pair the database does not hold is kept for the next
        // rotation; after an error it is dropped (it may have been written).
        if let Ok((_, stored)) = &fetched {
            let written = stored.current.value == candidate_value
                || stored
                    .previous
                    .as_ref()
                    .is_some_and(|p| p.value == candidate_value);
            if self.algorithm.is_asymmetric() && !written {
                *self.candidate.lock().unwrap_or_else(|p| p.into_inner()) = Some(candidate_value);
            }
        }
        // Counted once finished, so that every task that arrived while it ran
        // sees the change.
        self.last_reload_failed
            .store(fetched.is_err(), Ordering::Release);
        self.reload_attempts.fetch_add(1, Ordering::AcqRel);
        let (ring, _) = fetched?;
        let ring = Arc::new(ring);
        self.ring.store(ring.clone());
        Ok(ring)
    }
}
