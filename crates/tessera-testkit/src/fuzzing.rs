//! The fuzz fixture: entry points for the cargo-fuzz targets in `fuzz/`
//! (each target is one call, `tessera_testkit::fuzzing::NAME(data)`), the
//! store and clock they run against, and the oracles.
//!
//! Each entry point feeds its input to the real code path and checks the
//! result against a property that holds for every input:
//!
//! * [`access_token`]: `SessionManager::get_session` (the whole verification
//!   path: key ring, header match, HMAC, claims decoding and parsing, expiry,
//!   promotion) accepts a token exactly when an independent check (the
//!   `hmac` and `base64` crates and `serde_json`) says it is a token signed
//!   by one of our keys with valid, unexpired claims, and then returns those
//!   claims. Byte 0 chooses between a raw token and claims that the harness
//!   signs, so the fuzzer also reaches the claims parser.
//! * [`refresh_token`]: `open_refresh_token` opens only what an independent
//!   XChaCha20-Poly1305 decryption authenticates, what it opens seals and
//!   opens again to the same contents, and `SessionManager::refresh_session`
//!   answers as the protocol says and never with a General error.
//! * [`cookie_header`]: `find_cookie`, `find_cookies` and the `RequestSource`
//!   implementations of `HeaderMap` and `http::Request` agree with a plain
//!   reference reading and return only bytes of the header itself.
//! * [`anti_csrf`]: `get_session` with CSRF protection passes exactly when the
//!   `anti-csrf` header equals the token's claim byte for byte.
//!
//! The store behind the manager is a [`MemoryStore`] holding fixed keys and
//! one session row, put back as it was before every check (a refresh or a
//! promotion rewrites the row, a detected theft deletes it), so each input
//! sees the same state and every run is deterministic; the clock is a
//! [`ManualClock`] that never moves.
//!
//! The core's items that the oracles need and that are not public API come
//! from its hidden `tessera::__internals` module.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use http::header::{HeaderMap, HeaderValue, COOKIE};
use serde_json::value::RawValue;
use sha2::Sha256;

use tessera::__internals::{
    find_cookies, open_refresh_token, parse_claims_fast, seal_refresh_token, sign_access_token,
    ClaimsIn, ClaimsOut, RefreshKey, SigningKey, MAX_TOKEN_LEN,
};
use tessera::{
    find_cookie, sha256_hex, Config, Error, ManualClock, NewSession, RequestSource, SessionManager,
    SessionRow, SigningKeySource, SigningKeys, Store, StoredKey, UserId, ACCESS_TOKEN_COOKIE,
    ANTI_CSRF_HEADER, ID_REFRESH_TOKEN_COOKIE, REFRESH_TOKEN_COOKIE,
};

use crate::MemoryStore;

/// The fixed clock of the harness (ms).
const NOW_MS: i64 = 1_700_000_000_000;
const CURRENT_KEY: [u8; 32] = [0x11; 32];
const CURRENT_KEY_CREATED_MS: i64 = NOW_MS - 60_000;
const PREVIOUS_KEY: [u8; 32] = [0x22; 32];
const REFRESH_KEY: [u8; 32] = [0x33; 32];
/// Same text as the refresh-token module's AAD; checked when the harness
/// starts (an independent seal must open).
const REFRESH_AAD: &[u8] = b"tessera refresh token v1";
const REFRESH_NONCE_LEN: usize = 24;
/// Longest refresh token `open_refresh_token` accepts, as documented there.
const MAX_REFRESH_LEN: usize = 2048;

/// The one session row of the fixed store.
const ROW_HANDLE: &str = "0b3c5a8e-fuzz-4e6f-8a1b-000000000001";
const ROW_USER: i64 = 42;
const ROW_EXPIRES_MS: i64 = NOW_MS + 3_600_000;

/// `H1` of the row's committed refresh token (`H2` of it is stored).
fn row_hash_1() -> String {
    sha256_hex(b"tessera fuzz: the committed refresh token")
}

fn row() -> SessionRow {
    SessionRow {
        session_handle: ROW_HANDLE.to_owned(),
        user_id: UserId::Int(ROW_USER),
        refresh_token_hash_2: sha256_hex(row_hash_1().as_bytes()),
        jwt_payload: r#"{"role":"fuzz"}"#.to_owned(),
        created_at_ms: NOW_MS - 1000,
        expires_at_ms: ROW_EXPIRES_MS,
        committed_hash_1: None,
        previous_hash_2: None,
        superseded_at_ms: None,
    }
}

/// The keys the store holds (the clock never makes them due for rotation).
fn signing_keys() -> SigningKeys {
    SigningKeys {
        current: StoredKey {
            value: CURRENT_KEY.to_vec(),
            created_at_ms: CURRENT_KEY_CREATED_MS,
        },
        previous: Some(StoredKey {
            value: PREVIOUS_KEY.to_vec(),
            created_at_ms: CURRENT_KEY_CREATED_MS - 86_400_000,
        }),
    }
}

/// A request whose cookies and header are given as raw bytes, as a framework
/// adapter may hand them over.
#[derive(Default)]
struct RawRequest<'a> {
    access: Option<&'a [u8]>,
    refresh: Option<&'a [u8]>,
    id_refresh: Option<&'a [u8]>,
    anti_csrf: Option<&'a [u8]>,
    /// A whole `Authorization` header value (`Bearer …`).
    authorization: Option<&'a [u8]>,
}

impl RequestSource for RawRequest<'_> {
    fn cookie(&self, name: &str) -> Option<&[u8]> {
        match name {
            ACCESS_TOKEN_COOKIE => self.access,
            REFRESH_TOKEN_COOKIE => self.refresh,
            ID_REFRESH_TOKEN_COOKIE => self.id_refresh,
            _ => None,
        }
    }
    fn header(&self, name: &str) -> Option<&[u8]> {
        match name {
            ANTI_CSRF_HEADER => self.anti_csrf,
            "authorization" => self.authorization,
            _ => None,
        }
    }
}

struct Harness {
    rt: tokio::runtime::Runtime,
    manager: SessionManager,
    /// The manager's store (a clone shares its state), for [`Harness::begin`].
    store: MemoryStore,
    /// The one session row, as [`Harness::begin`] puts it back.
    row: SessionRow,
    /// Held for the whole of a check, so that checks on several threads (the
    /// unit tests) do not see each other's writes.
    serial: Mutex<()>,
    /// `(raw key, header segment)`: current, previous.
    keys: [([u8; 32], String); 2],
    current: SigningKey,
    refresh_key: RefreshKey,
    null_payload: Box<RawValue>,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(Harness::new)
}

impl Harness {
    fn new() -> Harness {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
        let config = Config::builder()
            .with_clock(Arc::new(ManualClock::new(NOW_MS)))
            .with_signing_key(SigningKeySource::Dynamic {
                update_interval: std::time::Duration::from_secs(24 * 3600),
            })
            .with_accept_previous_signing_key(true)
            .with_anti_csrf(true)
            // Both profiles: requests without `st-auth-mode` stay in the
            // reference profile, and each token is also tried as a bearer
            // token (docs/PROTOCOL.md §9).
            .with_current_sdk(Some(tessera::CurrentSdk::new("/auth")))
            .build()
            .expect("a valid config");
        // The store holds the fixed keys before the manager first asks for
        // them, so it keeps these rather than the random ones it proposes.
        let store = MemoryStore::new();
        rt.block_on(async {
            let refresh = StoredKey {
                value: REFRESH_KEY.to_vec(),
                created_at_ms: 0,
            };
            let got = store.refresh_token_key(&refresh).await.expect("a key");
            assert_eq!(got.value, REFRESH_KEY);
            let got = store
                .signing_keys(&signing_keys().current, &|_| Some(signing_keys()))
                .await
                .expect("keys");
            assert_eq!(got, signing_keys());
        });
        let manager = rt
            .block_on(SessionManager::new(config, store.clone()))
            .expect("a manager over the fixture store");
        // The manager found the keys current (a rotation would have replaced
        // them with random ones and made runs differ).
        let kept = rt
            .block_on(store.signing_keys(&signing_keys().current, &|_| None))
            .expect("keys");
        assert_eq!(kept, signing_keys(), "the harness clock never rotates");
        let header = |raw: &[u8; 32]| {
            SigningKey::new(raw, 0)
                .expect("a non-empty key")
                .header_b64
                .clone()
        };
        let h = Harness {
            rt,
            manager,
            store,
            row: row(),
            serial: Mutex::new(()),
            keys: [
                (CURRENT_KEY, header(&CURRENT_KEY)),
                (PREVIOUS_KEY, header(&PREVIOUS_KEY)),
            ],
            current: SigningKey::new(&CURRENT_KEY, CURRENT_KEY_CREATED_MS).expect("a key"),
            refresh_key: RefreshKey::new(&REFRESH_KEY).expect("a 32-byte key"),
            null_payload: RawValue::from_string("null".into()).expect("JSON"),
        };
        // The independent refresh-token opener must agree with the sealer;
        // otherwise every refresh check below would be vacuous.
        let sealed = seal_refresh_token(&h.refresh_key, "h", &UserId::Int(1), None).expect("seal");
        assert!(
            independent_open(sealed.as_bytes()).is_some(),
            "the harness's REFRESH_AAD no longer matches the refresh-token module"
        );
        h
    }

    /// Starts a check: takes the fixture for it and puts the store back to
    /// its one session row, as the previous input may have rewritten (a
    /// refresh, a promotion) or deleted (a theft) it. The keys are never
    /// written after start-up.
    fn begin(&self) -> MutexGuard<'_, ()> {
        let guard = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        let row = &self.row;
        self.block_on(async {
            self.store
                .delete_session(&row.session_handle)
                .await
                .expect("delete");
            self.store
                .insert_session(&NewSession {
                    session_handle: &row.session_handle,
                    user_id: &row.user_id,
                    refresh_token_hash_2: &row.refresh_token_hash_2,
                    session_info: "{}",
                    jwt_payload: &row.jwt_payload,
                    created_at_ms: row.created_at_ms,
                    expires_at_ms: row.expires_at_ms,
                    user_agent: None,
                    client_address: None,
                    device_label: None,
                })
                .await
                .expect("insert");
        });
        guard
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// What an operation ended with, errors reduced to their kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    TryRefresh,
    Unauthorized,
    TokenTheft,
}

/// Malformed input must never produce a General error (a 500).
fn outcome<T>(r: &tessera::Result<T>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(Error::TryRefreshToken { .. }) => Outcome::TryRefresh,
        Err(Error::Unauthorized { .. }) => Outcome::Unauthorized,
        Err(Error::TokenTheftDetected { .. }) => Outcome::TokenTheft,
        Err(e) => panic!("malformed input produced a General error: {e}"),
    }
}

fn hmac_b64(raw_key: &[u8], signing_input: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(raw_key).expect("any key length");
    mac.update(signing_input);
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

// ---------------------------------------------------------------------------
// Access token

/// Fuzz entry point: byte 0 even → the rest is an access-token cookie value;
/// odd → the rest is a claims segment (decoded), signed here with the current
/// key (bit 1 clear) or the previous one (bit 1 set).
pub fn access_token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let h = harness();
    if mode & 1 == 0 {
        check_access_token(h, rest);
    } else {
        let token = sign_raw_claims(h, usize::from((mode >> 1) & 1), rest);
        check_access_token(h, token.as_bytes());
    }
}

fn sign_raw_claims(h: &Harness, key: usize, claims: &[u8]) -> String {
    let (raw, header) = &h.keys[key];
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
    let sig = hmac_b64(raw, signing_input.as_bytes());
    format!("{signing_input}.{sig}")
}

/// What the access token must give, decided without the code under test.
struct Expected {
    outcome: Outcome,
    claims: Option<(String, UserId, String, Option<String>, i64)>,
}

fn expected_access(h: &Harness, token: &[u8]) -> Expected {
    let fail = |outcome| Expected {
        outcome,
        claims: None,
    };
    if token.len() > MAX_TOKEN_LEN {
        return fail(Outcome::TryRefresh);
    }
    // Signed by one of our keys: our exact header, a dot, a claims segment
    // without dots, a dot, and our HMAC of everything before it.
    let Some(claims_b64) = h.keys.iter().find_map(|(raw, header)| {
        let rest = token.strip_prefix(header.as_bytes())?.strip_prefix(b".")?;
        let dot = rest.iter().rposition(|&b| b == b'.')?;
        let (claims_b64, sig) = (&rest[..dot], &rest[dot + 1..]);
        let signing_input = &token[..header.len() + 1 + dot];
        (!claims_b64.contains(&b'.') && sig == hmac_b64(raw, signing_input).as_bytes())
            .then_some(claims_b64)
    }) else {
        return fail(Outcome::TryRefresh);
    };
    let Ok(claims_bytes) = URL_SAFE_NO_PAD.decode(claims_b64) else {
        return fail(Outcome::TryRefresh);
    };
    // Claims must be UTF-8 text (even in fields nobody reads).
    let Ok(claims_text) = std::str::from_utf8(&claims_bytes) else {
        return fail(Outcome::TryRefresh);
    };
    // serde_json's reading, except for the one documented difference:
    // claims in the layout Tessera writes whose payload span is not one
    // valid JSON value are read by layout, the span kept as it is (only a
    // key holder can write them; the payload is validated where it is used).
    let by_layout = parse_claims_fast(claims_text)
        .filter(|f| serde_json::from_str::<&serde_json::value::RawValue>(f.pld).is_err());
    let payload_valid = by_layout.is_none();
    let Some(c) = by_layout.or_else(|| serde_json::from_str::<ClaimsIn<'_>>(claims_text).ok())
    else {
        return fail(Outcome::TryRefresh);
    };
    if i128::from(c.exp) * 1000 <= i128::from(NOW_MS) {
        return fail(Outcome::TryRefresh);
    }
    if let Some(prt) = c.prt {
        // First use after a refresh: the payload is signed again, so it is
        // validated first, before the row is touched.
        if !payload_valid {
            return fail(Outcome::TryRefresh);
        }
        // The row must take (or already hold) this token's refresh token.
        let committed = row().refresh_token_hash_2;
        let live = c.sh == ROW_HANDLE && ROW_EXPIRES_MS > NOW_MS;
        if !(live
            && (sha256_hex(prt.as_bytes()) == committed
                || sha256_hex(c.rt.as_bytes()) == committed))
        {
            return fail(Outcome::Unauthorized);
        }
    }
    Expected {
        outcome: Outcome::Ok,
        claims: Some((
            c.sh.to_owned(),
            c.uid.clone(),
            c.pld.to_owned(),
            c.prt.map(str::to_owned),
            c.exp,
        )),
    }
}

/// Runs `get_session` (no CSRF check) on `token`; returns whether it passed.
fn check_access_token(h: &Harness, token: &[u8]) -> bool {
    let (passed, want) = check_cookie_access_token(h, token);
    check_bearer_access_token(h, token, &want);
    passed
}

/// [`check_access_token`] from the cookie; returns the expected outcome too.
fn check_cookie_access_token(h: &Harness, token: &[u8]) -> (bool, Outcome) {
    let _fixture = h.begin();
    let request = RawRequest {
        access: Some(token),
        id_refresh: Some(b"1"),
        ..RawRequest::default()
    };
    let mut response = HeaderMap::new();
    let got = h.block_on(h.manager.get_session(&request, &mut response, false));
    let want = expected_access(h, token);
    assert_eq!(outcome(&got), want.outcome, "get_session outcome");
    let want_outcome = want.outcome;
    let passed = match (got, want.claims) {
        (Ok(s), Some((sh, uid, pld, prt, exp))) => {
            assert_eq!(s.handle(), sh);
            assert_eq!(s.user_id(), &uid);
            assert_eq!(s.jwt_payload_json(), pld);
            if prt.is_none() {
                assert_eq!(s.access_token_expiry_ms(), exp.saturating_mul(1000));
                assert!(response.is_empty(), "a plain verification writes nothing");
            } else {
                // A promoted token is replaced by one without a parent.
                let cookie = response
                    .get_all(http::header::SET_COOKIE)
                    .iter()
                    .find(|v| v.as_bytes().starts_with(b"sAccessToken="))
                    .expect("a new access token");
                let value = &cookie.as_bytes()[b"sAccessToken=".len()..];
                let value = &value[..value.iter().position(|&b| b == b';').unwrap_or(value.len())];
                let again = expected_access(h, value);
                assert_eq!(again.outcome, Outcome::Ok);
                let (sh2, uid2, pld2, prt2, _) = again.claims.expect("claims");
                assert_eq!((sh2, uid2, pld2, prt2), (sh, uid, pld, None));
            }
            true
        }
        (Err(Error::TryRefreshToken { .. }), _) => {
            assert!(response.is_empty(), "try-refresh leaves the cookies alone");
            false
        }
        _ => false,
    };
    (passed, want_outcome)
}

/// The same token as `Authorization: Bearer …`: the same outcome as from
/// the cookie (no anti-CSRF either way here), written back in headers.
fn check_bearer_access_token(h: &Harness, token: &[u8], want: &Outcome) {
    let _fixture = h.begin();
    let mut value = b"Bearer ".to_vec();
    value.extend_from_slice(token);
    let request = RawRequest {
        authorization: Some(&value),
        ..RawRequest::default()
    };
    let mut response = HeaderMap::new();
    let got = h.block_on(h.manager.get_session(&request, &mut response, true));
    // A bearer value is trimmed: a token with surrounding spaces or an empty
    // one is no token / another token; compare only untrimmed ones.
    if token.trim_ascii().len() == token.len() && !token.is_empty() {
        assert_eq!(
            &outcome(&got),
            want,
            "get_session outcome from a bearer token"
        );
    } else {
        assert!(
            matches!(
                got,
                Err(Error::TryRefreshToken { .. }) | Err(Error::Unauthorized { .. })
            ),
            "a malformed bearer token"
        );
    }
    assert!(
        response.get(http::header::SET_COOKIE).is_none(),
        "header mode sets no cookie"
    );
}

// ---------------------------------------------------------------------------
// Anti-CSRF

/// Fuzz entry point: byte 0 holds flags (bit 0: the token carries a claim,
/// bit 1: the request carries the header, bit 2: CSRF protection on); the
/// rest is `claim \0 header`.
pub fn anti_csrf(data: &[u8]) {
    check_anti_csrf(harness(), data);
}

fn check_anti_csrf(h: &Harness, data: &[u8]) -> Option<bool> {
    let _fixture = h.begin();
    let (&flags, rest) = data.split_first()?;
    let (claim, header) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let claim = std::str::from_utf8(claim).ok().filter(|_| flags & 1 != 0);
    let header = (flags & 2 != 0).then_some(header);
    let enable = flags & 4 != 0;
    let token = sign_access_token(
        &h.current,
        &ClaimsOut {
            sh: "fuzz-csrf-session",
            uid: &UserId::Int(7),
            rt: "rt",
            prt: None,
            csrf: claim,
            std: None,
            pld: &h.null_payload,
            iat: NOW_MS / 1000,
            exp: NOW_MS / 1000 + 3600,
        },
    )
    .expect("signing");
    // A claim that JSON must escape cannot be read back as a borrowed string,
    // so such a token is refused as malformed (fail-closed). Tessera only
    // writes base64url claims, which need no escape.
    let readable = claim.is_none_or(|c| !c.chars().any(|ch| ch < ' ' || ch == '"' || ch == '\\'));
    let want_ok =
        readable && (!enable || matches!((header, claim), (Some(s), Some(c)) if s == c.as_bytes()));
    let want = if want_ok {
        Outcome::Ok
    } else {
        Outcome::TryRefresh
    };

    let raw = RawRequest {
        access: Some(token.as_bytes()),
        id_refresh: Some(b"1"),
        anti_csrf: header,
        ..RawRequest::default()
    };
    let mut response = HeaderMap::new();
    let got = h.block_on(h.manager.get_session(&raw, &mut response, enable));
    assert_eq!(outcome(&got), want, "anti-CSRF outcome (raw request)");
    assert!(response.is_empty());

    // The same through real request headers, when the header value is one.
    let value = match header {
        Some(s) => Some(HeaderValue::from_bytes(s).ok()?),
        None => None,
    };
    let mut request = HeaderMap::new();
    let cookie = format!("{ID_REFRESH_TOKEN_COOKIE}=1; {ACCESS_TOKEN_COOKIE}={token}");
    request.insert(COOKIE, HeaderValue::from_str(&cookie).expect("ASCII"));
    if let Some(v) = value {
        request.insert(ANTI_CSRF_HEADER, v);
    }
    let got = h.block_on(h.manager.get_session(&request, &mut response, enable));
    assert_eq!(outcome(&got), want, "anti-CSRF outcome (HeaderMap)");
    Some(want_ok)
}

// ---------------------------------------------------------------------------
// Refresh token

/// Fuzz entry point: byte 0 even → the rest is a refresh-token cookie value;
/// odd → the rest is a plaintext, sealed here under the refresh key, so the
/// fuzzer also reaches the parser of opened tokens.
pub fn refresh_token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let h = harness();
    if mode & 1 == 0 {
        check_refresh_token(h, rest);
    } else {
        let token = independent_seal(rest);
        check_refresh_token(h, token.as_bytes());
    }
}

fn cipher() -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new_from_slice(&REFRESH_KEY).expect("32 bytes")
}

/// Seals `plain` with an all-zero nonce (fine here: only for fuzzing).
fn independent_seal(plain: &[u8]) -> String {
    let nonce = [0u8; REFRESH_NONCE_LEN];
    let sealed = cipher()
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: REFRESH_AAD,
            },
        )
        .expect("sealing");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    URL_SAFE_NO_PAD.encode(out)
}

/// The plaintext of a token sealed under the refresh key, if it is one.
fn independent_open(token: &[u8]) -> Option<Vec<u8>> {
    let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
    if raw.len() < REFRESH_NONCE_LEN + 16 {
        return None;
    }
    let (nonce, sealed) = raw.split_at(REFRESH_NONCE_LEN);
    cipher()
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: REFRESH_AAD,
            },
        )
        .ok()
}

/// Opens `token` and runs the refresh API on it; returns whether it opened.
fn check_refresh_token(h: &Harness, token: &[u8]) -> bool {
    let _fixture = h.begin();
    let opened = open_refresh_token(&h.refresh_key, token);
    let expected = match &opened {
        Some(c) => {
            assert!(token.len() <= MAX_REFRESH_LEN);
            let plain = independent_open(token).expect("opened only if authentic");
            let handle = c.session_handle.as_bytes();
            assert!(
                handle.is_empty() || plain.windows(handle.len()).any(|w| w == handle),
                "the handle comes from the sealed plaintext"
            );
            // Round trip: what opened seals and opens to the same contents.
            let again = seal_refresh_token(
                &h.refresh_key,
                &c.session_handle,
                &c.user_id,
                c.parent_hash_1.as_deref(),
            )
            .expect("what opened can be sealed again");
            assert_eq!(
                open_refresh_token(&h.refresh_key, again.as_bytes()).as_ref(),
                Some(c)
            );
            let committed = row().refresh_token_hash_2;
            if c.session_handle != ROW_HANDLE || c.user_id != UserId::Int(ROW_USER) {
                Outcome::Unauthorized
            } else if sha256_hex(sha256_hex(token).as_bytes()) == committed
                || c.parent_hash_1
                    .as_ref()
                    .is_some_and(|p| sha256_hex(p.as_bytes()) == committed)
            {
                Outcome::Ok
            } else {
                Outcome::TokenTheft
            }
        }
        None => Outcome::Unauthorized,
    };
    let request = RawRequest {
        refresh: Some(token),
        id_refresh: Some(b"1"),
        ..RawRequest::default()
    };
    let mut response = HeaderMap::new();
    let got = h.block_on(h.manager.refresh_session(&request, &mut response));
    assert_eq!(outcome(&got), expected, "refresh_session outcome");
    if let Ok(s) = got {
        assert_eq!(s.handle(), ROW_HANDLE);
    }
    // The same token as a bearer token (header mode): the same decision,
    // with the answer in headers and no cookie.
    drop(_fixture);
    let _fixture = h.begin();
    let mut value = b"Bearer ".to_vec();
    value.extend_from_slice(token);
    let request = RawRequest {
        authorization: Some(&value),
        ..RawRequest::default()
    };
    let mut response = HeaderMap::new();
    let got = h.block_on(h.manager.refresh_session(&request, &mut response));
    if token.trim_ascii().len() == token.len() && !token.is_empty() {
        assert_eq!(
            outcome(&got),
            expected,
            "refresh_session outcome from a bearer token"
        );
    } else {
        assert_eq!(
            outcome(&got),
            Outcome::Unauthorized,
            "a malformed bearer token"
        );
    }
    assert!(
        response.get(http::header::SET_COOKIE).is_none(),
        "header mode sets no cookie"
    );
    if got.is_ok() {
        assert!(response.get("st-refresh-token").is_some());
        assert!(response.get("front-token").is_some());
    }
    opened.is_some()
}

// ---------------------------------------------------------------------------
// Cookie header

/// The plain reading of RFC 6265 pairs that `find_cookie` documents.
fn reference_find<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    for pair in header.split(|&b| b == b';') {
        let pair = pair.trim_ascii();
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        if pair[..eq].trim_ascii() != name.as_bytes() {
            continue;
        }
        let v = pair[eq + 1..].trim_ascii();
        let quoted = v.len() >= 2 && v.starts_with(b"\"") && v.ends_with(b"\"");
        return Some(if quoted { &v[1..v.len() - 1] } else { v });
    }
    None
}

/// Whether `part` lies inside `whole` (same memory, not just equal bytes).
fn inside(whole: &[u8], part: &[u8]) -> bool {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

const NAMES: [&str; 5] = [
    ACCESS_TOKEN_COOKIE,
    ID_REFRESH_TOKEN_COOKIE,
    REFRESH_TOKEN_COOKIE,
    "a",
    "",
];

/// The pairs of names looked up together (`get_session` asks for the
/// id-refresh and access cookies in one pass).
const PAIRS: [(&str, &str); 5] = [
    (ID_REFRESH_TOKEN_COOKIE, ACCESS_TOKEN_COOKIE),
    (ACCESS_TOKEN_COOKIE, ID_REFRESH_TOKEN_COOKIE),
    (REFRESH_TOKEN_COOKIE, "a"),
    ("a", "a"),
    ("", ACCESS_TOKEN_COOKIE),
];

/// Fuzz entry point: the input is one to four `Cookie` header values
/// separated by `\n` (which no header value can hold; a fourth `\n` and what
/// follows stay in the last value).
pub fn cookie_header(data: &[u8]) {
    let headers: Vec<&[u8]> = data.splitn(4, |&b| b == b'\n').collect();
    for &v in &headers {
        for a in NAMES {
            let got = find_cookie(v, a);
            assert_eq!(got, reference_find(v, a), "find_cookie({a:?})");
            if let Some(value) = got {
                assert!(inside(v, value), "the value is part of the header");
                assert!(!value.contains(&b';'));
            }
        }
        for (a, b) in PAIRS {
            assert_eq!(
                find_cookies(v, [a, b]),
                [find_cookie(v, a), find_cookie(v, b)]
            );
        }
    }
    // Through the request types, with the values that are header values.
    let mut map = HeaderMap::new();
    let mut valid = Vec::new();
    for &v in &headers {
        if let Ok(hv) = HeaderValue::from_bytes(v) {
            map.append(COOKIE, hv);
            valid.push(v);
        }
    }
    let mut request = http::Request::new(());
    *request.headers_mut() = map.clone();
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.headers = map.clone();
    for a in NAMES {
        let want = valid.iter().find_map(|v| find_cookie(v, a));
        let got = map.cookie(a);
        assert_eq!(got, want, "HeaderMap cookie({a:?})");
        if let Some(value) = got {
            assert!(
                map.get_all(COOKIE)
                    .iter()
                    .any(|h| inside(h.as_bytes(), value)),
                "the value is part of a Cookie header"
            );
        }
        assert_eq!(request.cookie(a), want);
        assert_eq!(parts.cookie(a), want);
    }
    for (a, b) in PAIRS {
        let pair = (map.cookie(a), map.cookie(b));
        assert_eq!(map.cookie_pair(a, b), pair, "cookie_pair({a:?}, {b:?})");
        assert_eq!(request.cookie_pair(a, b), pair);
        assert_eq!(parts.cookie_pair(a, b), pair);
    }
}

// ---------------------------------------------------------------------------
// Seed corpus

/// Small valid inputs for each target: `(target, input)`. Refresh tokens are
/// sealed with a random nonce, so those seeds differ from call to call.
pub fn seed_corpus() -> Vec<(&'static str, Vec<u8>)> {
    let h = harness();
    let mut seeds: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let pld = |s: &str| RawValue::from_string(s.into()).expect("JSON");
    let token = |key: &SigningKey,
                 sh: &str,
                 uid: &UserId,
                 rt: &str,
                 prt: Option<&str>,
                 csrf: Option<&str>,
                 pld: &RawValue| {
        sign_access_token(
            key,
            &ClaimsOut {
                sh,
                uid,
                rt,
                prt,
                csrf,
                std: None,
                pld,
                iat: NOW_MS / 1000 - 10,
                exp: NOW_MS / 1000 + 3590,
            },
        )
        .expect("signing")
    };
    let previous = SigningKey::new(&PREVIOUS_KEY, 0).expect("a key");
    let role = pld(r#"{"role":"admin","n":[1,2.5,null]}"#);
    let plain = token(
        &h.current,
        "0b3c-handle",
        &UserId::Int(5),
        "abcdef",
        None,
        Some("csrf-token"),
        &role,
    );
    let by_previous = token(
        &previous,
        "h2",
        &UserId::from("alice"),
        "r",
        None,
        None,
        &pld("null"),
    );
    let promoted = token(
        &h.current,
        ROW_HANDLE,
        &UserId::Int(ROW_USER),
        "child-hash",
        Some(&row_hash_1()),
        Some("c"),
        &pld(r#""x""#),
    );
    let expired = sign_access_token(
        &h.current,
        &ClaimsOut {
            sh: "h",
            uid: &UserId::Int(1),
            rt: "r",
            prt: None,
            csrf: None,
            std: None,
            pld: &h.null_payload,
            iat: 1,
            exp: 2,
        },
    )
    .expect("signing");
    for t in [&plain, &by_previous, &promoted, &expired] {
        seeds.push(("access_token", [&[0u8][..], t.as_bytes()].concat()));
    }
    // A token naming `alg: none`, and one with an unknown key id.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims_b64 = plain.split('.').nth(1).expect("three segments");
    seeds.push((
        "access_token",
        format!("\0{none_header}.{claims_b64}.").into_bytes(),
    ));
    let unknown =
        URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT","kid":"0123456789abcdef"}"#);
    seeds.push((
        "access_token",
        format!("\0{unknown}.{claims_b64}.AAAA").into_bytes(),
    ));
    // Claims signed by the harness: Tessera's layout and serde-only ones.
    for (mode, claims) in [
        (1u8, URL_SAFE_NO_PAD.decode(claims_b64).expect("b64")),
        (3, br#"{"sh":"h","uid":"u\"1","rt":"r","prt":null,"csrf":null,"pld":{},"iat":1,"exp":1700003600}"#.to_vec()),
        (1, br#"{ "exp": 1700003600, "iat": 0, "pld": [1], "csrf": "x", "prt": null, "rt": "r", "uid": -3, "sh": "h\u0041" }"#.to_vec()),
        (1, format!(r#"{{"sh":"{ROW_HANDLE}","uid":{ROW_USER},"rt":"{}","prt":"p","csrf":null,"pld":1,"iat":1,"exp":1700003600}}"#, row_hash_1()).into_bytes()),
    ] {
        seeds.push(("access_token", [&[mode][..], &claims].concat()));
    }

    for (flags, claim, header) in [
        (7u8, "csrf-value-1", "csrf-value-1"),
        (7, "csrf-value-1", "csrf-value-2"),
        (5, "c", ""),
        (3, "c", "c"),
        (6, "", "x"),
    ] {
        seeds.push((
            "anti_csrf",
            [&[flags][..], claim.as_bytes(), b"\0", header.as_bytes()].concat(),
        ));
    }

    let parent = sha256_hex(b"parent");
    for (handle, uid, parent) in [
        ("0b3c-handle", UserId::Int(5), None),
        ("h", UserId::from("alice"), Some(parent.as_str())),
        (ROW_HANDLE, UserId::Int(ROW_USER), Some(&row_hash_1()[..])),
        (ROW_HANDLE, UserId::Int(ROW_USER), None),
    ] {
        let t = seal_refresh_token(&h.refresh_key, handle, &uid, parent).expect("seal");
        seeds.push(("refresh_token", [&[0u8][..], t.as_bytes()].concat()));
    }
    // Plaintexts for the harness to seal: version, 32 random bytes, parent
    // flag (and parent), handle length, handle, user id.
    let mut p = vec![1u8];
    p.extend_from_slice(&[9u8; 32]);
    p.push(1);
    p.extend_from_slice(&[0xab; 32]);
    p.push(ROW_HANDLE.len() as u8);
    p.extend_from_slice(ROW_HANDLE.as_bytes());
    p.extend_from_slice(b"\"bob\"");
    seeds.push(("refresh_token", [&[1u8][..], &p].concat()));
    let mut p = vec![1u8];
    p.extend_from_slice(&[0u8; 32]);
    p.extend_from_slice(&[0, 1, b'h']);
    p.extend_from_slice(b"42");
    seeds.push(("refresh_token", [&[1u8][..], &p].concat()));

    for header in [
        format!("sIdRefreshToken=abc; sAccessToken={plain}"),
        "a=1; b=\"quoted value\"; sRefreshToken = x ;sAccessToken=".to_owned(),
        "sAccessToken; a; =a; a==b; ;; sIdRefreshToken=\"\"".to_owned(),
        "x=1\nsAccessToken=second; a=2\n a = 3 ".to_owned(),
    ] {
        seeds.push(("cookie_header", header.into_bytes()));
    }
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_pass_their_targets_and_real_tokens_verify() {
        let h = harness();
        let mut accepted = 0;
        for (target, input) in seed_corpus() {
            match target {
                "access_token" => access_token(&input),
                "refresh_token" => refresh_token(&input),
                "cookie_header" => cookie_header(&input),
                "anti_csrf" => anti_csrf(&input),
                other => panic!("unknown target {other}"),
            }
            if target == "access_token" && input[0] == 0 {
                accepted += usize::from(check_access_token(h, &input[1..]));
            }
        }
        // The plain token, the previous key's and the promoted one.
        assert_eq!(accepted, 3, "the real tokens among the seeds verify");
    }

    #[test]
    fn every_input_meets_the_same_store() {
        // A refresh rewrites the row and a theft deletes it; each check puts
        // the row back first, so running every seed twice gives the same
        // answers (the checks assert the answers the fixed row implies).
        for _ in 0..2 {
            for (target, input) in seed_corpus() {
                match target {
                    "access_token" => access_token(&input),
                    "refresh_token" => refresh_token(&input),
                    "cookie_header" => cookie_header(&input),
                    "anti_csrf" => anti_csrf(&input),
                    other => panic!("unknown target {other}"),
                }
            }
        }
    }

    #[test]
    fn the_checks_reject_what_they_should() {
        let h = harness();
        let seeds = seed_corpus();
        let token = &seeds
            .iter()
            .find(|(t, _)| *t == "access_token")
            .expect("a seed")
            .1[1..];
        assert!(check_access_token(h, token));
        let mut bad = token.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(!check_access_token(h, &bad));
        assert_eq!(check_anti_csrf(h, b"\x07a\0a"), Some(true));
        assert_eq!(check_anti_csrf(h, b"\x07a\0b"), Some(false));
        assert_eq!(check_anti_csrf(h, b"\x03a\0b"), Some(true));
        let refresh = &seeds
            .iter()
            .find(|(t, _)| *t == "refresh_token")
            .expect("a seed")
            .1[1..];
        assert!(check_refresh_token(h, refresh));
        assert!(!check_refresh_token(h, &refresh[..refresh.len() - 1]));
    }
}
