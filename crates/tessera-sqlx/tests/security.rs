//! The security checklist of issue 6, end to end through `SessionManager`
//! on every database: SQLite always, PostgreSQL and MariaDB/MySQL when
//! `TESSERA_TEST_POSTGRES_URL` / `TESSERA_TEST_MYSQL_URL` are set (with
//! `TESSERA_REQUIRE_ALL_BACKENDS=1` a missing URL fails). Each test is named
//! after the checklist item it proves (`item1_…` … `item10_…`) and prints
//! "security TEST: backend NAME".
//!
//! Token-layer halves of items 1, 2, 4 and 5 and all of item 6 are unit
//! tests of the core (`crates/tessera/src/tests_security.rs`,
//! `tests_vectors.rs`); item 3's timing half is `scripts/ct-check.sh`.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use http::header::{HeaderMap, HeaderValue, COOKIE, SET_COOKIE};
use serde_json::{json, Value};
use tessera::{
    Config, ConfigBuilder, CookieNamePrefix, Error, SameSite, SessionManager, SigningKeySource,
    UserId,
};
use tessera_sqlx::SqlStore;
use tessera_testkit::forge::{self, b64, claims_text, segments};
use tracing_subscriber::layer::SubscriberExt as _;

mod support;
use support::{refresh, verify, Backend, Browser, Harness};

// ---------------------------------------------------------------------------
// Harness

/// The shared harness ([`support::Harness`]) with a process-wide log capture
/// installed first, and the raw-table readers these tests need.
struct H(Harness);

impl std::ops::Deref for H {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.0
    }
}

impl H {
    async fn new(backend: Backend, suite: &str, test: &str) -> Option<H> {
        // A TRACE subscriber for the whole process from the start, so that
        // no callsite's interest is ever cached as "never" (tracing caches
        // it when a callsite first fires with no interested subscriber, and
        // a thread-local capture installed later might then miss it).
        Capture::global();
        Harness::new(backend, suite, test).await.map(H)
    }

    /// A manager whose signing key the test knows (so it can forge
    /// correctly signed tokens, the strongest attacker).
    async fn keyed_manager(&self) -> SessionManager {
        self.manager(|c| c.with_signing_key(known_key())).await
    }

    /// Every text column of every session row, read on a pool of its own.
    async fn session_rows(&self) -> Vec<Vec<String>> {
        const Q: &str = "SELECT session_handle, user_id, refresh_token_hash_2, session_info, jwt_payload FROM tessera_sessions";
        let store = tessera_sqlx::connect(&self.url).await.expect("connect");
        let rows: Vec<Vec<String>> = match &store {
            SqlStore::Sqlite(s) => sqlx::query_as::<_, (String, String, String, String, String)>(Q)
                .fetch_all(s.pool())
                .await
                .unwrap()
                .into_iter()
                .map(|(a, b, c, d, e)| vec![a, b, c, d, e])
                .collect(),
            SqlStore::Postgres(s) => {
                sqlx::query_as::<_, (String, String, String, String, String)>(Q)
                    .fetch_all(s.pool())
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(a, b, c, d, e)| vec![a, b, c, d, e])
                    .collect()
            }
            SqlStore::MySql(s) => {
                sqlx::query_as::<_, (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>)>(Q)
                    .fetch_all(s.pool())
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(a, b, c, d, e)| {
                        [a, b, c, d, e]
                            .into_iter()
                            .map(|v| String::from_utf8(v).unwrap())
                            .collect()
                    })
                    .collect()
            }
            _ => unreachable!(),
        };
        store.close().await;
        rows
    }

    /// The raw bytes of every key in `tessera_keys`.
    async fn stored_keys(&self) -> Vec<Vec<u8>> {
        const Q: &str = "SELECT key_value FROM tessera_keys";
        let store = tessera_sqlx::connect(&self.url).await.expect("connect");
        let values: Vec<String> = match &store {
            SqlStore::Sqlite(s) => sqlx::query_as::<_, (String,)>(Q)
                .fetch_all(s.pool())
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.0)
                .collect(),
            SqlStore::Postgres(s) => sqlx::query_as::<_, (String,)>(Q)
                .fetch_all(s.pool())
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.0)
                .collect(),
            SqlStore::MySql(s) => sqlx::query_as::<_, (Vec<u8>,)>(Q)
                .fetch_all(s.pool())
                .await
                .unwrap()
                .into_iter()
                .map(|r| String::from_utf8(r.0).unwrap())
                .collect(),
            _ => unreachable!(),
        };
        store.close().await;
        values
            .iter()
            .map(|v| STANDARD.decode(v.trim()).expect("keys are base64"))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// A browser that remembers every cookie attribute and every token it saw.

#[derive(Clone, Debug, PartialEq, Eq)]
struct SetCookie {
    name: String,
    value: String,
    expires: String,
    path: Option<String>,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: Option<String>,
}

fn parse_set_cookie(s: &str) -> SetCookie {
    let mut parts = s.split(';');
    let (name, value) = parts.next().unwrap().split_once('=').unwrap();
    let mut c = SetCookie {
        name: name.trim().to_owned(),
        value: value.trim().to_owned(),
        expires: String::new(),
        path: None,
        domain: None,
        secure: false,
        http_only: false,
        same_site: None,
    };
    for attr in parts {
        let attr = attr.trim();
        let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
        match k.to_ascii_lowercase().as_str() {
            "expires" => c.expires = v.to_owned(),
            "path" => c.path = Some(v.to_owned()),
            "domain" => c.domain = Some(v.to_owned()),
            "secure" => c.secure = true,
            "httponly" => c.http_only = true,
            "samesite" => c.same_site = Some(v.to_owned()),
            other => panic!("unexpected cookie attribute {other:?} in {s:?}"),
        }
    }
    c
}

fn set_cookies(resp: &HeaderMap) -> Vec<SetCookie> {
    resp.get_all(SET_COOKIE)
        .iter()
        .map(|v| parse_set_cookie(v.to_str().unwrap()))
        .collect()
}

/// The access token a browser holds, under the manager's cookie name.
fn access(b: &Browser, m: &SessionManager) -> String {
    b.cookie(m.config().access_token_cookie_name())
        .expect("access cookie")
        .to_owned()
}

async fn login(m: &SessionManager, uid: impl Into<UserId>, payload: Value, info: Value) -> Browser {
    let mut resp = HeaderMap::new();
    m.create_new_session(&mut resp, uid, payload, info)
        .await
        .expect("create");
    let mut b = Browser::default();
    b.absorb(&resp);
    b
}

/// `get_session` with the access-token cookie replaced by `token`.
async fn verify_with_access(
    m: &SessionManager,
    b: &Browser,
    token: &str,
) -> Result<tessera::Session, Error> {
    let mut b = b.clone();
    b.set(m.config().access_token_cookie_name(), token);
    let mut resp = HeaderMap::new();
    m.get_session(&b.request(), &mut resp, true).await
}

fn assert_try_refresh<T: std::fmt::Debug>(r: Result<T, Error>, what: &str) {
    assert!(
        matches!(r, Err(Error::TryRefreshToken { .. })),
        "{what}: expected TryRefreshToken, got {r:?}"
    );
}

fn assert_unauthorized<T: std::fmt::Debug>(r: Result<T, Error>, what: &str) {
    assert!(
        matches!(r, Err(Error::Unauthorized { .. })),
        "{what}: expected Unauthorized, got {r:?}"
    );
}

// ---------------------------------------------------------------------------
// Forging tokens with the real key

const KEY: [u8; 32] = *b"tessera security test key 32 b!!";

fn known_key() -> SigningKeySource {
    SigningKeySource::Function(Arc::new(|| Ok(KEY.to_vec())))
}

/// `header.claims.HMAC` under the known key.
fn forge(header_b64: &str, claims_b64: &str) -> String {
    forge::sign(&KEY, header_b64, claims_b64)
}

// ---------------------------------------------------------------------------
// Log capture

/// One tracing event: target, level and every field (the message too) as
/// text.
#[derive(Clone, Debug)]
struct Captured {
    target: String,
    level: tracing::Level,
    fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Capture {
    /// What a `tracing_subscriber::fmt` layer printed (spans and events).
    text: Arc<Mutex<Vec<u8>>>,
    events: Arc<Mutex<Vec<Captured>>>,
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct FieldsVisitor<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for FieldsVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

struct EventLayer(Arc<Mutex<Vec<Captured>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for EventLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldsVisitor(&mut fields));
        self.0.lock().unwrap().push(Captured {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            fields,
        });
    }
}

impl Capture {
    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let text = self.text.clone();
        tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::TRACE)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || Writer(text.clone()))
                    .with_target(true),
            )
            .with(EventLayer(self.events.clone()))
    }

    /// A capture of this thread's events (the test runs on a current-thread
    /// runtime, so this is everything the core does for the test).
    fn thread_local(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(self.subscriber())
    }

    /// The process-wide capture (also sees the database drivers' threads).
    fn global() -> &'static Capture {
        static GLOBAL: OnceLock<Capture> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let c = Capture::default();
            tracing::subscriber::set_global_default(c.subscriber())
                .expect("no other global subscriber in this test binary");
            c
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }

    fn events(&self) -> Vec<Captured> {
        self.events.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.text.lock().unwrap().clear();
        self.events.lock().unwrap().clear();
    }

    /// The source files of the `ct_eq` calls captured (debug builds emit one
    /// `tessera::ct_eq` event per call).
    fn ct_eq_sites(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|e| e.target == "tessera::ct_eq")
            .map(|e| {
                let file = &e.fields["file"];
                let file = file.rsplit('/').next().unwrap().to_owned();
                format!("{file}:{}", e.fields["len"])
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Item 1: the algorithm is fixed by the key; kid is untrusted.

async fn item1_algorithm_fixed_by_key_and_kid_untrusted(h: H) {
    let m = h.keyed_manager().await;
    let mut b = login(&m, "u1", json!({"r": 1}), json!(null)).await;
    verify(&m, &mut b).await.unwrap();
    let token = access(&b, &m);
    let (header, claims, _) = segments(&token);
    // Control: re-signing the real token with the known key reproduces it,
    // so every rejection below comes from the check under test.
    assert_eq!(forge(&header, &claims), token);
    verify_with_access(&m, &b, &forge(&header, &claims))
        .await
        .unwrap();
    // Each variant changes one thing in the real header's text, so each
    // rejection is due to that one change.
    let hdr = forge::decode_text(&header);
    let hv: Value = serde_json::from_str(&hdr).unwrap();
    assert_eq!(hv["alg"], "HS256");
    let kid = hv["kid"].as_str().unwrap().to_owned();
    assert!(hdr.ends_with('}'));
    let mut forged: Vec<(String, String)> = Vec::new();
    for alg in [
        "none", "None", "NONE", "HS384", "HS512", "RS256", "ES256", "PS256", "hs256", "",
    ] {
        let hd = forge::replace_header_field(&header, "alg", alg);
        forged.push((format!("alg {alg:?} signed"), forge(&hd, &claims)));
        forged.push((
            format!("alg {alg:?} empty signature"),
            format!("{hd}.{claims}."),
        ));
        forged.push((
            format!("alg {alg:?} no signature"),
            format!("{hd}.{claims}"),
        ));
    }
    for field in [
        r#""jku":"https://attacker.example/jwks.json""#.to_owned(),
        r#""x5u":"https://attacker.example/cert.pem""#.to_owned(),
        format!(r#""jwk":{{"kty":"oct","k":"{}"}}"#, b64(&KEY)),
        r#""x5c":["MIIBszCCAVmgAwIBAgIUXk"]"#.to_owned(),
    ] {
        forged.push((
            format!("header field {field}"),
            forge(&forge::add_header_field(&header, &field), &claims),
        ));
    }
    // The header of the real key with an empty signature.
    forged.push(("empty signature".into(), format!("{header}.{claims}.")));
    // kid: another kid, long kids, a path, no kid at all.
    for k in [
        "0000000000000000".to_owned(),
        kid.to_uppercase(),
        "a".repeat(100),
        "a".repeat(20_000),
        "../../../../dev/null".to_owned(),
    ] {
        forged.push((
            format!("kid of {} chars", k.len()),
            forge(&forge::replace_header_field(&header, "kid", &k), &claims),
        ));
    }
    forged.push((
        "no kid".into(),
        forge(&forge::remove_header_field(&header, "kid"), &claims),
    ));
    for (what, t) in &forged {
        assert_try_refresh(verify_with_access(&m, &b, t).await, what);
    }
    // The same, on a manager whose keys live in the database (dynamic
    // rotation): unknown kids may trigger a (rate-limited) reload, never a
    // lookup by kid.
    let md = h.manager(|c| c).await;
    let mut bd = login(&md, "u1", json!({"r": 1}), json!(null)).await;
    verify(&md, &mut bd).await.unwrap();
    let td = access(&bd, &md);
    let (hd, cd, _) = segments(&td);
    let sig = segments(&td).2;
    for alg in ["none", "HS512", "RS256"] {
        let h2 = forge::replace_header_field(&hd, "alg", alg);
        assert_try_refresh(
            verify_with_access(&md, &bd, &format!("{h2}.{cd}.")).await,
            alg,
        );
        assert_try_refresh(
            verify_with_access(&md, &bd, &format!("{h2}.{cd}.{sig}")).await,
            alg,
        );
    }
    for k in ["ffffffffffffffff".to_owned(), "b".repeat(5000)] {
        let h2 = forge::replace_header_field(&hd, "kid", &k);
        assert_try_refresh(
            verify_with_access(&md, &bd, &format!("{h2}.{cd}.{sig}")).await,
            "foreign kid",
        );
    }
    verify(&md, &mut bd).await.unwrap();
}

// ---------------------------------------------------------------------------
// Item 2: a typed access token.

async fn item2_only_access_tokens_pass_as_access_tokens(h: H) {
    let m = h.keyed_manager().await;
    let mut b = login(&m, 7, json!({"admin": false}), json!(null)).await;
    verify(&m, &mut b).await.unwrap();
    let refresh_token = b.cookie("sRefreshToken").unwrap().to_owned();
    let id_refresh = b.cookie("sIdRefreshToken").unwrap().to_owned();
    let csrf = b.anti_csrf.clone().unwrap();
    let access = access(&b, &m);
    let (header, _, _) = segments(&access);
    for (what, t) in [
        ("refresh token", refresh_token.clone()),
        ("id-refresh token", id_refresh.clone()),
        ("anti-CSRF token", csrf.clone()),
        // Dressed up as a JWT under our header, correctly signed.
        ("refresh token as claims", forge(&header, &refresh_token)),
        ("anti-CSRF token as claims", forge(&header, &csrf)),
    ] {
        assert_try_refresh(verify_with_access(&m, &b, &t).await, what);
    }
    // JWTs from another issuer, signed with the same key bytes.
    let foreign_claims = b64(
        json!({"iss": "https://idp.example", "sub": "7", "uid": 7, "admin": true,
               "iat": 1_800_000_000, "exp": 1_900_000_000})
        .to_string()
        .as_bytes(),
    );
    let std_header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    assert_try_refresh(
        verify_with_access(&m, &b, &forge(&std_header, &foreign_claims)).await,
        "standard header",
    );
    assert_try_refresh(
        verify_with_access(&m, &b, &forge(&header, &foreign_claims)).await,
        "foreign claims under our header",
    );
    // Our own claims under a standard header: the header is part of the type.
    let (_, claims, _) = segments(&access);
    assert_try_refresh(
        verify_with_access(&m, &b, &forge(&std_header, &claims)).await,
        "our claims, standard header",
    );
    // And the other way round: an access token is not a refresh token.
    let mut bb = b.clone();
    bb.set("sRefreshToken", &access);
    assert_unauthorized(refresh(&m, &mut bb).await, "access token as refresh token");
    let mut bb = b.clone();
    bb.set("sRefreshToken", &csrf);
    assert_unauthorized(
        refresh(&m, &mut bb).await,
        "anti-CSRF token as refresh token",
    );
    verify(&m, &mut b).await.unwrap();
}

// ---------------------------------------------------------------------------
// Item 3: every secret comparison goes through crypto::ct_eq.

async fn item3_every_secret_comparison_uses_ct_eq(h: H) {
    if !cfg!(debug_assertions) {
        panic!("the ct_eq call-site events exist in debug builds only");
    }
    let capture = Capture::default();
    let _guard = capture.thread_local();
    let m = h.manager(|c| c).await;
    let mut b = login(&m, "u3", json!(null), json!(null)).await;
    let sites = |c: &Capture| {
        let s = c.ct_eq_sites();
        c.clear();
        s
    };
    capture.clear();
    // get_session: the MAC (43 characters), then the anti-CSRF token (43).
    verify(&m, &mut b).await.unwrap();
    assert_eq!(
        sites(&capture),
        ["tokens.rs:43", "manager.rs:43"],
        "get_session"
    );
    // A wrong anti-CSRF token of the right length is compared in ct_eq too.
    let mut wrong = b.clone();
    let mut t = wrong.anti_csrf.clone().unwrap().into_bytes();
    t[0] = if t[0] == b'A' { b'B' } else { b'A' };
    wrong.anti_csrf = Some(String::from_utf8(t).unwrap());
    assert_try_refresh(verify(&m, &mut wrong).await, "wrong anti-CSRF");
    assert_eq!(
        sites(&capture),
        ["tokens.rs:43", "manager.rs:43"],
        "bad anti-CSRF"
    );
    // A tampered MAC.
    let mut t = access(&b, &m).into_bytes();
    let n = t.len();
    t[n - 2] = if t[n - 2] == b'A' { b'B' } else { b'A' };
    assert_try_refresh(
        verify_with_access(&m, &b, std::str::from_utf8(&t).unwrap()).await,
        "tampered MAC",
    );
    assert_eq!(sites(&capture), ["tokens.rs:43"], "bad MAC");
    // refresh_session with the committed token: H2(R) against the row (64).
    let old = b.clone();
    refresh(&m, &mut b).await.unwrap();
    assert_eq!(
        sites(&capture),
        ["manager.rs:64"],
        "refresh, committed token"
    );
    // Refresh again before the new access token is used: R is an unpromoted
    // child, compared with the row twice (as committed, then as child).
    refresh(&m, &mut b).await.unwrap();
    assert_eq!(
        sites(&capture),
        ["manager.rs:64", "manager.rs:64"],
        "refresh, unpromoted child"
    );
    // First use of the new access token: MAC, anti-CSRF; the promotion is a
    // compare-and-set in the database.
    verify(&m, &mut b).await.unwrap();
    assert_eq!(
        sites(&capture),
        ["tokens.rs:43", "manager.rs:43"],
        "promotion"
    );
    // The old refresh token again: theft, decided by the same comparison,
    // then classified by one more (H2(R) against the superseded token's H2;
    // R0 has no parent to compare).
    let mut thief = old.clone();
    assert!(matches!(
        refresh(&m, &mut thief).await,
        Err(Error::TokenTheftDetected {
            reuse: tessera::ReuseKind::StaleLineage,
            ..
        })
    ));
    assert_eq!(sites(&capture), ["manager.rs:64", "manager.rs:64"], "theft");
    // With a user key function, the unchanged-key check is constant-time too.
    let mk = h.keyed_manager().await;
    let mut bk = login(&mk, "u3k", json!(null), json!(null)).await;
    capture.clear();
    verify(&mk, &mut bk).await.unwrap();
    assert_eq!(
        sites(&capture),
        ["tokens.rs:32", "tokens.rs:43", "manager.rs:43"],
        "user key function"
    );
}

// ---------------------------------------------------------------------------
// Item 4: keys of at least 256 bits; short user keys refused.

async fn item4_short_user_keys_are_refused(h: H) {
    // At construction ("configuration time" for a key function).
    for len in [0usize, 1, 16, 31] {
        let r = h
            .try_manager(|c| {
                c.with_signing_key(SigningKeySource::Function(Arc::new(move || {
                    Ok(vec![0x5a; len])
                })))
            })
            .await;
        match r {
            Err(Error::General { message, .. }) => {
                assert!(message.contains("256 bits"), "{message}")
            }
            other => panic!("{len}-byte key accepted: {other:?}"),
        }
    }
    // At run time: a function that starts returning a short key.
    let key = Arc::new(Mutex::new(vec![0x5a; 32]));
    let k2 = key.clone();
    let m = h
        .manager(move |c| {
            c.with_signing_key(SigningKeySource::Function(Arc::new(move || {
                Ok(k2.lock().unwrap().clone())
            })))
        })
        .await;
    let mut b = login(&m, "u4", json!(null), json!(null)).await;
    verify(&m, &mut b).await.unwrap();
    *key.lock().unwrap() = vec![0x5a; 31];
    assert!(matches!(
        verify(&m, &mut b).await,
        Err(Error::General { .. })
    ));
    let mut resp = HeaderMap::new();
    assert!(matches!(
        m.create_new_session(&mut resp, "u4", json!(null), json!(null))
            .await,
        Err(Error::General { .. })
    ));
    assert!(matches!(
        refresh(&m, &mut b).await,
        Err(Error::General { .. })
    ));
    *key.lock().unwrap() = vec![0x5a; 32];
    verify(&m, &mut b).await.unwrap();
    // Keys Tessera makes are 256 bits (the refresh-token key and the
    // signing key in the database).
    let keys = h.stored_keys().await;
    assert!(keys.len() >= 2);
    for k in &keys {
        assert_eq!(k.len(), 32);
    }
    // Distinct and not trivially patterned.
    let distinct: HashSet<&Vec<u8>> = keys.iter().collect();
    assert_eq!(distinct.len(), keys.len());
    for k in &keys {
        assert!(k.iter().collect::<HashSet<_>>().len() > 8);
    }
}

// ---------------------------------------------------------------------------
// Item 5: strict parsing and size caps.

async fn item5_strict_parsing_and_size_caps(h: H) {
    let m = h.keyed_manager().await;
    let mut b = login(&m, "u5", json!({"k": "v"}), json!(null)).await;
    verify(&m, &mut b).await.unwrap();
    let token = access(&b, &m);
    let (header, claims_b64, _) = segments(&token);
    let claims = claims_text(&token);
    let c: Value = serde_json::from_str(&claims).unwrap();
    // Claims of the wrong JSON type, each correctly signed.
    let mut retyped = Vec::new();
    for (field, bad) in [
        ("exp", json!(c["exp"].as_i64().unwrap().to_string())),
        ("exp", json!(c["exp"].as_i64().unwrap() as f64 + 0.5)),
        ("exp", json!(null)),
        ("iat", json!(c["iat"].as_i64().unwrap().to_string())),
        ("sh", json!(42)),
        ("uid", json!(["u5"])),
        ("uid", json!(true)),
        ("rt", json!(null)),
        ("prt", json!(1)),
        ("csrf", json!(["x"])),
    ] {
        let mut v = c.clone();
        v[field] = bad.clone();
        retyped.push((format!("{field} = {bad}"), v.to_string()));
    }
    let mut missing = c.clone();
    missing.as_object_mut().unwrap().remove("exp");
    retyped.push(("no exp".into(), missing.to_string()));
    for (what, text) in &retyped {
        assert_try_refresh(
            verify_with_access(&m, &b, &forge(&header, &b64(text.as_bytes()))).await,
            what,
        );
    }
    // Re-serialised (other layout) but well typed: accepted, so the
    // rejections above are about types.
    let pretty = serde_json::to_string_pretty(&c).unwrap();
    verify_with_access(&m, &b, &forge(&header, &b64(pretty.as_bytes())))
        .await
        .unwrap();
    // Not unpadded base64url, not UTF-8, not three segments.
    let mut padded = claims_b64.clone();
    while padded.len() % 4 != 0 {
        padded.push('=');
    }
    let std_alphabet = STANDARD.encode(claims.as_bytes());
    let latin1 = [&claims.as_bytes()[..claims.len() - 1], b",\"x\":\"\xe9\"}"].concat();
    let mut cases = vec![
        (
            "standard alphabet".to_owned(),
            forge(&header, &std_alphabet),
        ),
        ("not UTF-8".to_owned(), forge(&header, &b64(&latin1))),
        ("two segments".to_owned(), format!("{header}.{claims_b64}")),
        ("four segments".to_owned(), format!("{token}.{claims_b64}")),
        ("padded signature".to_owned(), format!("{token}=")),
    ];
    if padded != claims_b64 {
        cases.push(("padded claims".into(), forge(&header, &padded)));
    }
    for (what, t) in &cases {
        assert_try_refresh(verify_with_access(&m, &b, t).await, what);
    }
    // Size caps on every cookie and header the core reads.
    let big_access = forge(
        &header,
        &b64(format!("{{\"pad\":\"{}\"}}", "x".repeat(9000)).as_bytes()),
    );
    assert_try_refresh(
        verify_with_access(&m, &b, &big_access).await,
        "access cookie > 8 KiB",
    );
    let mut bb = b.clone();
    bb.set("sRefreshToken", &"A".repeat(2049));
    assert_unauthorized(refresh(&m, &mut bb).await, "refresh cookie > 2 KiB");
    let mut bb = b.clone();
    bb.set("sIdRefreshToken", &"A".repeat(257));
    assert_unauthorized(verify(&m, &mut bb).await, "id-refresh cookie > 256 B (get)");
    let mut bb = b.clone();
    bb.set("sIdRefreshToken", &"A".repeat(257));
    assert_unauthorized(
        refresh(&m, &mut bb).await,
        "id-refresh cookie > 256 B (refresh)",
    );
    let mut bb = b.clone();
    bb.set("sIdRefreshToken", &"A".repeat(256));
    verify(&m, &mut bb)
        .await
        .expect("256 bytes is within the cap");
    let mut bb = b.clone();
    bb.anti_csrf = Some("A".repeat(10_000));
    assert_try_refresh(verify(&m, &mut bb).await, "anti-csrf header of 10 KB");
    // A Cookie header over 64 KiB is not read at all.
    let mut req = b.request();
    let cookies = format!(
        "{}; pad={}",
        req[COOKIE].to_str().unwrap(),
        "p".repeat(64 * 1024)
    );
    req.insert(COOKIE, HeaderValue::from_str(&cookies).unwrap());
    let mut resp = HeaderMap::new();
    assert_unauthorized(
        m.get_session(&req, &mut resp, true).await,
        "Cookie header > 64 KiB",
    );
    verify(&m, &mut b).await.unwrap();
}

// ---------------------------------------------------------------------------
// Item 7: only hashes stored; no secrets in logs or Debug output.

fn sha256_hex(x: &[u8]) -> String {
    tessera::sha256_hex(x)
}

fn hex(x: &[u8]) -> String {
    x.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every way a secret could be spelled in text.
fn spellings(secret: &[u8]) -> Vec<String> {
    let mut v = vec![
        hex(secret),
        hex(secret).to_uppercase(),
        STANDARD.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        format!("{secret:?}"),
    ];
    if let Ok(s) = std::str::from_utf8(secret) {
        v.push(s.to_owned());
    }
    v
}

async fn item7_only_hashes_stored_no_secrets_in_logs_or_debug(h: H) {
    let capture = Capture::global();
    let marker_info = format!("INFO-SECRET-{}", h.backend);
    let marker_payload = format!("PAYLOAD-PRIVATE-{}", h.backend);
    let m = h.keyed_manager().await;
    let md = h.manager(|c| c.with_blacklisting(true)).await;
    // A full flow, with errors and theft.
    let mut b = login(
        &m,
        "user-7",
        json!({"p": marker_payload}),
        json!({"s": marker_info}),
    )
    .await;
    let s = verify(&m, &mut b).await.unwrap();
    let handle1 = s.handle().to_owned();
    let mut resp = HeaderMap::new();
    s.get_session_info(&mut resp).await.unwrap();
    s.update_session_info(&json!({"s": marker_info, "n": 2}), &mut resp)
        .await
        .unwrap();
    let first = b.clone();
    refresh(&m, &mut b).await.unwrap();
    verify(&m, &mut b).await.unwrap();
    let mut wrong = b.clone();
    wrong.anti_csrf = Some("nope".into());
    assert_try_refresh(verify(&m, &mut wrong).await, "bad csrf");
    let mut tampered = b.clone();
    tampered.set("sAccessToken", &format!("{}x", access(&b, &m)));
    assert_try_refresh(verify(&m, &mut tampered).await, "tampered");
    // The rows now hold only H2 of the committed refresh token.
    let committed = b.cookie("sRefreshToken").unwrap().to_owned();
    let rows = h.session_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0][2],
        sha256_hex(sha256_hex(committed.as_bytes()).as_bytes())
    );
    // A second session on the database-key manager, then theft on the first.
    let mut b2 = login(
        &md,
        "user-7",
        json!({"p": marker_payload}),
        json!({"s": marker_info}),
    )
    .await;
    verify(&md, &mut b2).await.unwrap();
    let mut thief = first.clone();
    assert!(matches!(
        refresh(&m, &mut thief).await,
        Err(Error::TokenTheftDetected { .. })
    ));
    let stale = b.clone();
    assert_unauthorized(refresh(&m, &mut b).await, "revoked by theft");
    let rows = h.session_rows().await;
    let keys = h.stored_keys().await;

    // Every secret: each token value handed out, H1 of every refresh token
    // (the `rt` claim), the signing keys (known and stored), the refresh key.
    let mut tokens: Vec<String> = Vec::new();
    for br in [&first, &stale, &b2, &thief, &b] {
        tokens.extend(br.seen.iter().cloned());
    }
    tokens.sort();
    tokens.dedup();
    assert!(tokens.len() >= 10, "{}", tokens.len());
    let mut refresh_h1 = Vec::new();
    for br in [&first, &stale, &b2] {
        if let Some(r) = br.cookie("sRefreshToken") {
            refresh_h1.push(sha256_hex(r.as_bytes()));
        }
    }
    let mut key_spellings: Vec<String> = spellings(&KEY);
    for k in &keys {
        key_spellings.extend(spellings(k));
    }

    // 1. Database rows: no token, no H1, no key; H2 only.
    let row_text = format!("{rows:?}");
    for t in tokens.iter().chain(&refresh_h1).chain(&key_spellings) {
        assert!(
            !row_text.contains(t.as_str()),
            "a secret is stored in a session row: {t}"
        );
    }
    for row in &rows {
        assert_eq!(row[2].len(), 64);
        assert!(row[2].bytes().all(|c| c.is_ascii_hexdigit()));
    }

    // 2. Debug output of every public type met on the way.
    let mut debug = Vec::new();
    debug.push(format!("{m:?}"));
    debug.push(format!("{md:?}"));
    debug.push(format!("{:?}", m.config()));
    debug.push(format!("{:?}", known_key()));
    let store = tessera_sqlx::connect(&h.url).await.unwrap();
    debug.push(format!("{store:?}"));
    debug.push(format!("{s:?}"));
    debug.push(format!("{:?}", verify(&md, &mut b2).await.unwrap()));
    let mut resp = HeaderMap::new();
    md.create_new_session(
        &mut resp,
        "user-7",
        json!({"p": marker_payload}),
        json!({"s": marker_info}),
    )
    .await
    .unwrap();
    let mut b3 = Browser::default();
    b3.absorb(&resp);
    tokens.extend(b3.seen.iter().cloned());
    let mut rec = tessera::RecordedResponse::new();
    md.create_new_session(&mut rec, "user-7", json!(null), json!(null))
        .await
        .unwrap();
    for change in rec.changes() {
        if let tessera::ResponseChange::SetCookie(c) = change {
            tokens.push(c.value.clone());
            debug.push(format!("{c:?}"));
        }
    }
    for row in &rows {
        debug.push(format!(
            "{:?}",
            md.store().load_session(&row[0]).await.unwrap()
        ));
    }
    debug.push(format!(
        "{:?}",
        md.list_sessions_for_user(&UserId::from("user-7"))
            .await
            .unwrap()
    ));
    let stored = tessera::StoredKey {
        value: KEY.to_vec(),
        created_at_ms: 1,
    };
    debug.push(format!("{stored:?}"));
    debug.push(format!(
        "{:?}",
        tessera::SigningKeys {
            current: stored.clone(),
            previous: Some(stored.clone())
        }
    ));
    let info_json = json!({"s": marker_info}).to_string();
    let refresh_hash_2 = rows.first().map(|r| r[2].clone()).unwrap_or_default();
    debug.push(format!(
        "{:?}",
        tessera::NewSession {
            session_handle: "h",
            user_id: &UserId::from(1),
            refresh_token_hash_2: &refresh_hash_2,
            session_info: &info_json,
            jwt_payload: &json!({"p": marker_payload}).to_string(),
            created_at_ms: 0,
            expires_at_ms: 1,
            user_agent: None,
            client_address: None,
            device_label: None,
        }
    ));
    for e in [
        Error::general("x"),
        Error::TokenTheftDetected {
            user_id: UserId::from("user-7"),
            session_handle: "h".into(),
            reuse: tessera::ReuseKind::StaleLineage,
        },
    ] {
        debug.push(format!("{e:?} {e}"));
    }
    for r in [
        verify(&m, &mut thief).await.map(|_| ()),
        refresh(&m, &mut thief).await.map(|_| ()),
        verify_with_access(&m, &b2, "a.b.c").await.map(|_| ()),
    ] {
        let e = r.unwrap_err();
        debug.push(format!("{e:?} {e}"));
    }
    // No secret and no session data in `text`.
    let assert_clean = |text: &str, place: &str| {
        for t in tokens.iter().chain(&refresh_h1).chain(&key_spellings) {
            assert!(
                !text.contains(t.as_str()),
                "a secret in {place}: {t}\n{text}"
            );
        }
        for marker in [&marker_info, &marker_payload] {
            assert!(
                !text.contains(marker.as_str()),
                "session data in {place}: {marker}\n{text}"
            );
        }
    };
    let debug_text = debug.join("\n");
    assert!(
        debug_text.contains("<redacted>"),
        "the redactions are exercised"
    );
    assert_clean(&debug_text, "Debug output");

    // 3. Every log line (TRACE, all targets, all threads): no secret, no
    // session data. The log did record the flow (so the scan is not vacuous).
    let log = capture.text();
    let events = capture.events();
    assert!(
        events
            .iter()
            .any(|e| e.target == "tessera::security"
                && e.fields.get("session_handle") == Some(&handle1)),
        "the theft event of this test was captured"
    );
    assert_clean(&format!("{log}\n{events:?}"), "the log");
}

// ---------------------------------------------------------------------------
// Item 8: theft revokes and emits a structured security event.

async fn item8_theft_revokes_and_emits_a_security_event(h: H) {
    let capture = Capture::default();
    let _guard = capture.thread_local();
    for revoke in [true, false] {
        capture.clear();
        let m = h.manager(|c| c.with_revoke_session_on_theft(revoke)).await;
        let uid = format!("thief-victim-{revoke}");
        let mut b = login(&m, uid.as_str(), json!(null), json!(null)).await;
        let old = b.clone();
        let old_refresh = old.cookie("sRefreshToken").unwrap().to_owned();
        let handle = verify(&m, &mut b).await.unwrap().handle().to_owned();
        refresh(&m, &mut b).await.unwrap();
        verify(&m, &mut b).await.unwrap();
        let mut thief = old.clone();
        match refresh(&m, &mut thief).await {
            Err(Error::TokenTheftDetected {
                user_id,
                session_handle,
                reuse,
            }) => {
                assert_eq!(user_id, UserId::from(uid.as_str()));
                assert_eq!(session_handle, handle);
                // The superseded token itself, at once (no window configured:
                // the default one is the yardstick).
                assert_eq!(reuse, tessera::ReuseKind::WithinGrace);
            }
            other => panic!("expected theft, got {other:?}"),
        }
        // Revoked (default) or not, seen from an independent manager.
        let other = h.manager(|c| c).await;
        let info = other.get_session_info(&handle).await;
        if revoke {
            assert_unauthorized(info, "revoked on theft");
            assert_unauthorized(refresh(&m, &mut b).await, "legitimate client after theft");
        } else {
            info.expect("not revoked when configured off");
        }
        let security: Vec<Captured> = capture
            .events()
            .into_iter()
            .filter(|e| e.target == "tessera::security")
            .collect();
        assert_eq!(security.len(), 1, "{security:?}");
        let e = &security[0];
        assert_eq!(e.level, tracing::Level::WARN);
        assert_eq!(e.fields["event"], "token_theft");
        assert_eq!(e.fields["user_id"], uid);
        assert_eq!(e.fields["session_handle"], handle);
        assert_eq!(e.fields["session_revoked"], revoke.to_string());
        assert_eq!(e.fields["reuse"], "within_grace");
        // Never a token.
        let all = format!("{:?}", capture.events()) + &capture.text();
        for t in old
            .seen
            .iter()
            .chain(&b.seen)
            .chain(std::iter::once(&old_refresh))
        {
            assert!(!all.contains(t.as_str()), "a token in the log: {t}");
        }
    }
}

/// The reuse kind in the security events (docs/PROTOCOL.md §3.9), with a
/// grace window: a reuse inside it is an INFO `refresh_reuse_within_grace`
/// and no theft; after it, `token_theft` names the kind; an access token of
/// the superseded generation is an INFO `superseded_access_token` inside the
/// window and a WARN one with its kind after it. No token in any of them.
async fn item8b_reuse_kinds_in_security_events(h: H) {
    let capture = Capture::default();
    let _guard = capture.thread_local();
    let m = h
        .manager(|c| {
            c.with_refresh_grace(std::time::Duration::from_secs(30))
                .with_revoke_session_on_theft(false)
        })
        .await;
    let security = |c: &Capture| -> Vec<(tracing::Level, String, String)> {
        let got = c
            .events()
            .into_iter()
            .filter(|e| e.target == "tessera::security")
            .map(|e| {
                (
                    e.level,
                    e.fields["event"].clone(),
                    e.fields["reuse"].clone(),
                )
            })
            .collect();
        c.clear();
        got
    };
    let mut b = login(&m, "kinds", json!(null), json!(null)).await;
    let r0 = b.clone();
    let mut sibling = b.clone();
    refresh(&m, &mut sibling).await.unwrap();
    refresh(&m, &mut b).await.unwrap();
    verify(&m, &mut b).await.unwrap();
    capture.clear();
    refresh(&m, &mut r0.clone()).await.unwrap();
    assert_try_refresh(
        verify(&m, &mut sibling.clone()).await,
        "sibling's access token",
    );
    assert_eq!(
        security(&capture),
        [
            (
                tracing::Level::INFO,
                "refresh_reuse_within_grace".into(),
                "within_grace".into()
            ),
            (
                tracing::Level::INFO,
                "superseded_access_token".into(),
                "within_grace".into()
            ),
        ]
    );
    h.advance(std::time::Duration::from_secs(30));
    assert!(matches!(
        refresh(&m, &mut r0.clone()).await,
        Err(Error::TokenTheftDetected {
            reuse: tessera::ReuseKind::SilentThief,
            ..
        })
    ));
    assert!(matches!(
        refresh(&m, &mut sibling.clone()).await,
        Err(Error::TokenTheftDetected {
            reuse: tessera::ReuseKind::OrphanedBranch,
            ..
        })
    ));
    assert_unauthorized(
        verify(&m, &mut sibling.clone()).await,
        "sibling after the window",
    );
    assert_eq!(
        security(&capture),
        [
            (
                tracing::Level::WARN,
                "token_theft".into(),
                "silent_thief".into()
            ),
            (
                tracing::Level::WARN,
                "token_theft".into(),
                "orphaned_branch".into()
            ),
            (
                tracing::Level::WARN,
                "superseded_access_token".into(),
                "orphaned_branch".into()
            ),
        ]
    );
    let all = format!("{:?}", capture.events()) + &capture.text();
    for t in r0.seen.iter().chain(&sibling.seen).chain(&b.seen) {
        assert!(!all.contains(t.as_str()), "a token in the log: {t}");
    }
}

// ---------------------------------------------------------------------------
// Item 9: cookie attributes, prefix mode, clearing matches setting.

fn assert_prefix_rules(cookies: &[SetCookie]) {
    for c in cookies {
        if c.name.starts_with("__Host-") {
            assert!(c.secure, "{c:?}");
            assert_eq!(c.path.as_deref(), Some("/"), "{c:?}");
            assert!(c.domain.is_none(), "{c:?}");
        }
        if c.name.starts_with("__Secure-") {
            assert!(c.secure, "{c:?}");
        }
    }
}

/// The three cookies of a response by role, checked for flags.
fn check_issued(m: &SessionManager, cookies: &[SetCookie]) -> Vec<SetCookie> {
    let cfg = m.config();
    let names = [
        cfg.access_token_cookie_name(),
        cfg.refresh_token_cookie_name(),
        cfg.id_refresh_token_cookie_name(),
    ];
    let prefixed = cfg.cookie_name_prefix() != CookieNamePrefix::None;
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let c = cookies
            .iter()
            .find(|c| c.name == *name)
            .unwrap_or_else(|| panic!("cookie {name} not set: {cookies:?}"))
            .clone();
        let (path, http_only, secure) = match i {
            0 => (cfg.access_token_path(), true, cfg.cookie_secure()),
            1 => (cfg.refresh_path(), true, cfg.cookie_secure()),
            _ => (cfg.access_token_path(), false, prefixed),
        };
        assert_eq!(c.path.as_deref(), Some(path), "{c:?}");
        assert_eq!(c.http_only, http_only, "{c:?}");
        assert_eq!(c.secure, secure, "{c:?}");
        assert_eq!(c.domain.as_deref(), cfg.cookie_domain(), "{c:?}");
        let same_site = if !secure && cfg.same_site() == SameSite::None {
            SameSite::Lax
        } else {
            cfg.same_site()
        };
        assert_eq!(c.same_site.as_deref(), Some(same_site.as_str()), "{c:?}");
        out.push(c);
    }
    assert_prefix_rules(cookies);
    out
}

async fn item9_cookie_flags_prefix_mode_and_clearing(h: H) {
    // Build-time refusals of a prefix mode that cannot be honoured.
    for (what, b) in [
        (
            "__Secure- without Secure",
            Config::builder()
                .with_cookie_name_prefix(CookieNamePrefix::Secure)
                .with_cookie_secure(false),
        ),
        (
            "__Host- without Secure",
            Config::builder()
                .with_cookie_name_prefix(CookieNamePrefix::Host)
                .with_cookie_secure(false),
        ),
        (
            "__Host- with a Domain",
            Config::builder()
                .with_cookie_name_prefix(CookieNamePrefix::Host)
                .with_cookie_domain(Some("example.com".into())),
        ),
        (
            "__Host- with a sub-path",
            Config::builder()
                .with_cookie_name_prefix(CookieNamePrefix::Host)
                .with_access_token_path("/api"),
        ),
    ] {
        let e = b.build().expect_err(what);
        assert!(e.to_string().contains("__"), "{what}: {e}");
    }
    assert!(Config::builder()
        .with_cookie_name_prefix(CookieNamePrefix::Secure)
        .with_cookie_domain(Some("example.com".into()))
        .with_access_token_path("/api")
        .build()
        .is_ok());

    type Cfg = fn(ConfigBuilder) -> ConfigBuilder;
    let configs: Vec<(&str, Cfg)> = vec![
        ("default", |c| c),
        ("strict, domain", |c| {
            c.with_same_site(SameSite::Strict)
                .with_cookie_domain(Some("example.com".into()))
                .with_access_token_path("/app")
                .with_refresh_path("/auth/refresh")
        }),
        ("samesite none", |c| c.with_same_site(SameSite::None)),
        ("insecure dev", |c| c.with_cookie_secure(false)),
        ("__Host-", |c| {
            c.with_cookie_name_prefix(CookieNamePrefix::Host)
        }),
        ("__Host-, samesite none", |c| {
            c.with_cookie_name_prefix(CookieNamePrefix::Host)
                .with_same_site(SameSite::None)
        }),
        ("__Secure-, domain", |c| {
            c.with_cookie_name_prefix(CookieNamePrefix::Secure)
                .with_cookie_domain(Some("example.com".into()))
                .with_access_token_path("/app")
        }),
    ];
    for (what, f) in configs {
        let m = h.manager(f).await;
        let cfg = m.config();
        match cfg.cookie_name_prefix() {
            CookieNamePrefix::None => assert_eq!(
                (
                    cfg.access_token_cookie_name(),
                    cfg.refresh_token_cookie_name(),
                    cfg.id_refresh_token_cookie_name()
                ),
                ("sAccessToken", "sRefreshToken", "sIdRefreshToken")
            ),
            CookieNamePrefix::Host => assert_eq!(
                (
                    cfg.access_token_cookie_name(),
                    cfg.refresh_token_cookie_name(),
                    cfg.id_refresh_token_cookie_name()
                ),
                (
                    "__Host-sAccessToken",
                    "__Secure-sRefreshToken",
                    "__Host-sIdRefreshToken"
                )
            ),
            CookieNamePrefix::Secure => assert_eq!(
                (
                    cfg.access_token_cookie_name(),
                    cfg.refresh_token_cookie_name(),
                    cfg.id_refresh_token_cookie_name()
                ),
                (
                    "__Secure-sAccessToken",
                    "__Secure-sRefreshToken",
                    "__Secure-sIdRefreshToken"
                )
            ),
        }
        // Set on login.
        let mut resp = HeaderMap::new();
        m.create_new_session(&mut resp, "u9", json!(null), json!(null))
            .await
            .unwrap();
        let set = check_issued(&m, &set_cookies(&resp));
        let mut b = Browser::default();
        b.absorb(&resp);
        // Read under the same names: verify, refresh, verify (promotion).
        verify(&m, &mut b)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        let mut resp = HeaderMap::new();
        m.refresh_session(&b.request(), &mut resp).await.unwrap();
        check_issued(&m, &set_cookies(&resp));
        b.absorb(&resp);
        let mut resp = HeaderMap::new();
        m.get_session(&b.request(), &mut resp, true).await.unwrap();
        assert_prefix_rules(&set_cookies(&resp));
        b.absorb(&resp);
        // With a prefix, the unprefixed names are not read.
        if cfg.cookie_name_prefix() != CookieNamePrefix::None {
            let mut plain = Browser {
                anti_csrf: b.anti_csrf.clone(),
                ..Browser::default()
            };
            for (n, v) in &b.cookies {
                let bare = n
                    .trim_start_matches("__Host-")
                    .trim_start_matches("__Secure-");
                plain.set(bare, v);
            }
            assert_unauthorized(verify(&m, &mut plain).await, "unprefixed names");
        }
        // Cleared (revocation) with the same name, path and domain.
        let s = verify(&m, &mut b).await.unwrap();
        let mut resp = HeaderMap::new();
        s.revoke_session(&mut resp).await.unwrap();
        let cleared = set_cookies(&resp);
        assert_prefix_rules(&cleared);
        for c in &set {
            let cl = cleared
                .iter()
                .find(|x| x.name == c.name)
                .unwrap_or_else(|| panic!("{what}: {} not cleared", c.name));
            assert_eq!(cl.value, "");
            assert!(cl.expires.contains("1970"), "{cl:?}");
            assert_eq!(
                (&cl.path, &cl.domain, cl.secure, cl.http_only, &cl.same_site),
                (&c.path, &c.domain, c.secure, c.http_only, &c.same_site),
                "{what}: clearing differs from setting"
            );
        }
        assert_eq!(cleared.len(), 3);
        assert_eq!(resp["id-refresh-token"], "remove");
        // Cleared on Unauthorized too, the same way (for a request that
        // carried a session cookie: one without any gets no Set-Cookie).
        b.absorb(&resp);
        let mut resp = HeaderMap::new();
        let stale = cookie_request(&[(m.config().access_token_cookie_name(), "stale")], None);
        let _ = m.get_session(&stale, &mut resp, true).await;
        let cleared2 = set_cookies(&resp);
        assert_eq!(
            cleared2
                .iter()
                .map(|c| (&c.name, &c.path, &c.domain))
                .collect::<Vec<_>>(),
            cleared
                .iter()
                .map(|c| (&c.name, &c.path, &c.domain))
                .collect::<Vec<_>>()
        );
    }
}

// ---------------------------------------------------------------------------
// Item 10: revocation is committed before the call returns.

async fn item10_revocation_is_committed_before_return(h: H) {
    let a = h.manager(|c| c).await;
    // An independent instance: its own pool, blacklisting on.
    let b_mgr = h.manager(|c| c.with_blacklisting(true)).await;
    let uid = UserId::from("u10");
    let mut browsers = Vec::new();
    for _ in 0..3 {
        browsers.push(login(&a, uid.clone(), json!(null), json!({"n": 1})).await);
    }
    let mut handles = Vec::new();
    for br in &mut browsers {
        handles.push(verify(&b_mgr, br).await.unwrap().handle().to_owned());
    }
    // One session, by handle.
    assert!(a.revoke_session(&handles[0]).await.unwrap());
    assert_unauthorized(
        b_mgr.get_session_info(&handles[0]).await,
        "revoked, by handle",
    );
    assert_unauthorized(
        verify(&b_mgr, &mut browsers[0]).await,
        "blacklisting, next request",
    );
    assert!(!b_mgr
        .get_all_session_handles_for_user(&uid)
        .await
        .unwrap()
        .contains(&handles[0]));
    // Without blacklisting the access token stays valid until it expires
    // (the reference library's trade-off) ...
    verify(&a, &mut browsers[1]).await.unwrap();
    // One session, through the Session object.
    let s = verify(&a, &mut browsers[1]).await.unwrap();
    let mut resp = HeaderMap::new();
    s.revoke_session(&mut resp).await.unwrap();
    assert_unauthorized(
        b_mgr.get_session_info(&handles[1]).await,
        "revoked, Session object",
    );
    let mut stale = browsers[1].clone();
    assert_unauthorized(
        verify(&b_mgr, &mut stale).await,
        "blacklisting, Session object",
    );
    assert_unauthorized(
        refresh(&b_mgr, &mut stale).await,
        "refresh after revocation",
    );
    // All of a user's.
    let mut more = login(&a, uid.clone(), json!(null), json!(null)).await;
    assert_eq!(a.revoke_all_sessions_for_user(&uid).await.unwrap(), 2);
    assert!(b_mgr
        .get_all_session_handles_for_user(&uid)
        .await
        .unwrap()
        .is_empty());
    assert_unauthorized(
        verify(&b_mgr, &mut browsers[2]).await,
        "revoke all, blacklisting",
    );
    assert_unauthorized(
        verify(&b_mgr, &mut more).await,
        "revoke all, blacklisting (2)",
    );
    assert_unauthorized(refresh(&a, &mut more).await, "revoke all, refresh");
    // ... and a fresh process sees the same (a third pool, opened now).
    let c = h.manager(|c| c.with_blacklisting(true)).await;
    for hd in &handles {
        assert_unauthorized(c.get_session_info(hd).await, "third instance");
    }
}

// ---------------------------------------------------------------------------
// Outside review (SECURITY.md, "Findings of the outside review"): logout
// CSRF, tokens on cacheable responses, cookie tossing, the silent thief.

/// No `Set-Cookie` and no `id-refresh-token` header: nothing the browser
/// would apply.
fn assert_untouched(resp: &HeaderMap, what: &str) {
    assert!(
        resp.get(SET_COOKIE).is_none() && resp.get("id-refresh-token").is_none(),
        "{what}: the response changes cookies: {resp:?}"
    );
}

fn cache_directives(resp: &HeaderMap) -> Vec<String> {
    resp.get_all(http::header::CACHE_CONTROL)
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .collect()
}

fn assert_no_store(resp: &HeaderMap, what: &str) {
    assert!(
        cache_directives(resp).iter().any(|d| d == "no-store"),
        "{what}: no Cache-Control: no-store on {resp:?}"
    );
}

/// A request whose `Cookie` header is exactly `pairs`, in order.
fn cookie_request(pairs: &[(&str, &str)], anti_csrf: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    let c: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
    h.insert(COOKIE, HeaderValue::from_str(&c.join("; ")).unwrap());
    if let Some(t) = anti_csrf {
        h.insert("anti-csrf", HeaderValue::from_str(t).unwrap());
    }
    h
}

async fn review2_no_session_cookie_nothing_cleared(h: H) {
    for blacklisting in [false, true] {
        let m = h.manager(|c| c.with_blacklisting(blacklisting)).await;
        // A cross-site form POST under SameSite=Lax: no cookies at all, or
        // only the site's other cookies.
        let mut other = HeaderMap::new();
        other.insert(COOKIE, HeaderValue::from_static("theme=dark; lang=en"));
        for request in [HeaderMap::new(), other] {
            for csrf in [true, false] {
                let mut resp = HeaderMap::new();
                assert_unauthorized(
                    m.get_session(&request, &mut resp, csrf).await,
                    "get_session without cookies",
                );
                assert_untouched(&resp, "get_session without cookies");
            }
            let mut resp = HeaderMap::new();
            assert_unauthorized(
                m.refresh_session(&request, &mut resp).await,
                "refresh without cookies",
            );
            assert_untouched(&resp, "refresh without cookies");
        }
        // One session cookie is enough to clear: a request that carried
        // some of them is a browser of this site whose session is gone.
        let b = login(&m, "review2", json!(null), json!(null)).await;
        for name in ["sAccessToken", "sRefreshToken", "sIdRefreshToken"] {
            let request = cookie_request(&[(name, b.cookie(name).unwrap())], None);
            let mut resp = HeaderMap::new();
            let r = m.get_session(&request, &mut resp, false).await;
            if name == "sIdRefreshToken" {
                assert_try_refresh(r, "id-refresh cookie alone");
                assert_untouched(&resp, "TryRefreshToken clears nothing");
            } else {
                assert_unauthorized(r, "one session cookie");
                assert!(support::is_cleared(&resp), "{name}: cleared: {resp:?}");
            }
            let mut resp = HeaderMap::new();
            assert_unauthorized(m.refresh_session(&request, &mut resp).await, "refresh");
            assert!(support::is_cleared(&resp), "{name}: refresh cleared");
        }
        // A revoked session (blacklisting) still clears: the request had
        // the cookies.
        let mut b = login(&m, "review2-revoked", json!(null), json!(null)).await;
        let handle = verify(&m, &mut b).await.unwrap().handle().to_owned();
        m.revoke_session(&handle).await.unwrap();
        let mut resp = HeaderMap::new();
        let r = m.get_session(&b.request(), &mut resp, true).await;
        if blacklisting {
            assert_unauthorized(r, "revoked, blacklisting");
            assert!(support::is_cleared(&resp));
        } else {
            r.expect("without blacklisting the access token lives on");
        }
        let mut resp = HeaderMap::new();
        assert_unauthorized(m.refresh_session(&b.request(), &mut resp).await, "revoked");
        assert!(
            support::is_cleared(&resp),
            "refresh of a revoked session clears"
        );
    }
}

async fn review3_responses_with_tokens_are_no_store(h: H) {
    let m = h.default_manager().await;
    let mut resp = HeaderMap::new();
    m.create_new_session(&mut resp, "review3", json!(null), json!(null))
        .await
        .unwrap();
    assert_no_store(&resp, "sign-in");
    let mut b = Browser::default();
    b.absorb(&resp);
    // A plain verification sets nothing and adds no header.
    let mut resp = HeaderMap::new();
    m.get_session(&b.request(), &mut resp, true).await.unwrap();
    assert!(
        resp.is_empty(),
        "a plain verification changes nothing: {resp:?}"
    );
    // Refresh, then the first use of the new access token (promotion: a new
    // sAccessToken on a GET).
    let mut resp = HeaderMap::new();
    m.refresh_session(&b.request(), &mut resp).await.unwrap();
    assert_no_store(&resp, "refresh");
    b.absorb(&resp);
    let mut resp = HeaderMap::new();
    m.get_session(&b.request(), &mut resp, false).await.unwrap();
    assert!(b.absorb(&resp), "promotion sets a new access token");
    assert_no_store(&resp, "promotion");
    // Clearing (log out) too.
    let session = verify(&m, &mut b).await.unwrap();
    let mut resp = HeaderMap::new();
    session.revoke_session(&mut resp).await.unwrap();
    assert!(support::is_cleared(&resp));
    assert_no_store(&resp, "log out");
    // The application's own directives are kept; no-store is added once.
    for (set, expected) in [
        ("public, max-age=60", "public, max-age=60, no-store"),
        ("private, no-store", "private, no-store"),
        ("NO-STORE", "NO-STORE"),
    ] {
        let mut resp = HeaderMap::new();
        resp.insert(http::header::CACHE_CONTROL, HeaderValue::from_static(set));
        m.create_new_session(&mut resp, "review3", json!(null), json!(null))
            .await
            .unwrap();
        assert_eq!(resp[http::header::CACHE_CONTROL], expected);
    }
}

async fn review4_conflicting_session_cookies_are_refused(h: H) {
    let m = h.default_manager().await;
    let mut victim = login(&m, "review4-victim", json!({"who": "victim"}), json!(null)).await;
    let mut attacker = login(
        &m,
        "review4-attacker",
        json!({"who": "attacker"}),
        json!(null),
    )
    .await;
    verify(&m, &mut victim).await.unwrap();
    verify(&m, &mut attacker).await.unwrap();
    let (va, vi) = (
        victim.cookie("sAccessToken").unwrap().to_owned(),
        victim.cookie("sIdRefreshToken").unwrap().to_owned(),
    );
    let (aa, ai) = (
        attacker.cookie("sAccessToken").unwrap().to_owned(),
        attacker.cookie("sIdRefreshToken").unwrap().to_owned(),
    );
    // The attacker's copies at a longer path come first, as browsers send
    // them; every combination of planted cookies is refused, never served
    // as the attacker's session.
    let planted: [&[(&str, &str)]; 4] = [
        &[
            ("sAccessToken", &aa),
            ("sAccessToken", &va),
            ("sIdRefreshToken", &vi),
        ],
        &[
            ("sAccessToken", &aa),
            ("sIdRefreshToken", &ai),
            ("sAccessToken", &va),
            ("sIdRefreshToken", &vi),
        ],
        &[
            ("sIdRefreshToken", &ai),
            ("sIdRefreshToken", &vi),
            ("sAccessToken", &va),
        ],
        &[
            ("sAccessToken", &va),
            ("sIdRefreshToken", &vi),
            ("sAccessToken", &aa),
        ],
    ];
    for pairs in planted {
        for csrf in [victim.anti_csrf.as_deref(), attacker.anti_csrf.as_deref()] {
            let mut resp = HeaderMap::new();
            let r = m
                .get_session(&cookie_request(pairs, csrf), &mut resp, false)
                .await;
            assert_unauthorized(r, "two different copies of a session cookie");
            assert!(
                support::is_cleared(&resp),
                "the victim's copies are cleared"
            );
        }
    }
    // Split over two Cookie headers (HTTP/2) it is the same.
    let mut two = cookie_request(&[("sAccessToken", &aa)], None);
    two.append(
        COOKIE,
        HeaderValue::from_str(&format!("sAccessToken={va}; sIdRefreshToken={vi}")).unwrap(),
    );
    assert_unauthorized(
        m.get_session(&two, &mut HeaderMap::new(), false).await,
        "split headers",
    );
    // Identical copies are no conflict (nothing depends on the order).
    let same = cookie_request(
        &[
            ("sAccessToken", &va),
            ("sIdRefreshToken", &vi),
            ("sAccessToken", &va),
        ],
        None,
    );
    let s = m
        .get_session(&same, &mut HeaderMap::new(), false)
        .await
        .unwrap();
    assert_eq!(s.jwt_payload(), &json!({"who": "victim"}));
    // The refresh API: two refresh tokens are refused, and nothing rotates.
    let (vr, ar) = (
        victim.cookie("sRefreshToken").unwrap().to_owned(),
        attacker.cookie("sRefreshToken").unwrap().to_owned(),
    );
    for pairs in [
        [
            ("sRefreshToken", ar.as_str()),
            ("sRefreshToken", vr.as_str()),
            ("sIdRefreshToken", vi.as_str()),
        ],
        [
            ("sRefreshToken", vr.as_str()),
            ("sIdRefreshToken", ai.as_str()),
            ("sIdRefreshToken", vi.as_str()),
        ],
    ] {
        let mut resp = HeaderMap::new();
        assert_unauthorized(
            m.refresh_session(&cookie_request(&pairs, None), &mut resp)
                .await,
            "two refresh-token copies",
        );
        assert!(support::is_cleared(&resp));
    }
    // Neither session was touched: both refresh and verify as before.
    for b in [&mut victim, &mut attacker] {
        refresh(&m, b)
            .await
            .expect("refresh after the refused requests");
        verify(&m, b)
            .await
            .expect("verify after the refused requests");
    }
}

async fn review5_the_silent_thief_is_reported(h: H) {
    let capture = Capture::default();
    let _guard = capture.thread_local();
    let m = h.default_manager().await;
    let mut client = login(&m, "review5", json!(null), json!(null)).await;
    let handle = verify(&m, &mut client).await.unwrap().handle().to_owned();
    // The thief copies the committed refresh token (and the id cookie).
    let mut thief = client.clone();
    // The client refreshes, but before it uses its new access token the
    // thief refreshes with the same token and uses its own.
    refresh(&m, &mut client).await.unwrap();
    refresh(&m, &mut thief).await.unwrap();
    verify(&m, &mut thief)
        .await
        .expect("the thief's child is promoted");
    assert!(
        !capture
            .events()
            .iter()
            .any(|e| e.target == "tessera::security"),
        "nothing to report yet"
    );
    let mut resp = HeaderMap::new();
    let r = m.get_session(&client.request(), &mut resp, true).await;
    assert_unauthorized(r, "the client's superseded access token");
    assert!(support::is_cleared(&resp));
    let security: Vec<Captured> = capture
        .events()
        .into_iter()
        .filter(|e| e.target == "tessera::security")
        .collect();
    assert_eq!(security.len(), 1, "{security:?}");
    let e = &security[0];
    assert_eq!(e.level, tracing::Level::WARN);
    assert_eq!(e.fields["event"], "superseded_access_token");
    assert_eq!(e.fields["user_id"], "review5");
    assert_eq!(e.fields["session_handle"], handle);
    let all = format!("{:?}", capture.events()) + &capture.text();
    for t in client.seen.iter().chain(&thief.seen) {
        assert!(!all.contains(t.as_str()), "a token in the log");
    }
}

async fn review_unknown_kid_during_an_outage_is_try_refresh(h: H) {
    // A manager on a pool of its own, which the test then closes: the
    // database is gone for it.
    let store = tessera_sqlx::connect(&h.url).await.expect("connect");
    let m = SessionManager::new(h.config().build().unwrap(), store.clone())
        .await
        .unwrap();
    let mut b = login(&m, "outage", json!(null), json!(null)).await;
    verify(&m, &mut b).await.unwrap();
    let (header, claims, sig) = segments(&access(&b, &m));
    // Well formed, naming a key this instance does not know (as a token
    // signed by another instance after a rotation would).
    let unknown = forge::replace_header_field(&header, "kid", "0123456789abcdef");
    let token = format!("{unknown}.{claims}.{sig}");
    store.close().await;
    // The key reload this triggers fails: the token is one to refresh, not
    // a General error.
    assert_try_refresh(
        verify_with_access(&m, &b, &token).await,
        "unknown kid, database down",
    );
    // The client's own token still verifies without the database.
    verify(&m, &mut b)
        .await
        .expect("verification needs no database");
}

per_backend!("security", H, (flavor = "current_thread");
    item1_algorithm_fixed_by_key_and_kid_untrusted,
    item2_only_access_tokens_pass_as_access_tokens,
    item3_every_secret_comparison_uses_ct_eq,
    item4_short_user_keys_are_refused,
    item5_strict_parsing_and_size_caps,
    item7_only_hashes_stored_no_secrets_in_logs_or_debug,
    item8_theft_revokes_and_emits_a_security_event,
    item8b_reuse_kinds_in_security_events,
    item9_cookie_flags_prefix_mode_and_clearing,
    item10_revocation_is_committed_before_return,
    review2_no_session_cookie_nothing_cleared,
    review3_responses_with_tokens_are_no_store,
    review4_conflicting_session_cookies_are_refused,
    review5_the_silent_thief_is_reported,
    review_unknown_kid_during_an_outage_is_try_refresh,
);
