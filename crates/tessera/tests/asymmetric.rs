//! Asymmetric access tokens (EdDSA, ES256, RS256) and the JWKS document
//! (docs/PROTOCOL.md §5.3), checked by an independent verifier: the
//! `jsonwebtoken` crate with RustCrypto's implementations, which shares no
//! code with Tessera's AWS-LC signatures. It must accept Tessera's tokens
//! with the published keys, and both it and Tessera must refuse tampered,
//! expired, unknown-kid, `alg: none` and algorithm-confusion tokens.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac_free::hs256;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use tessera::{
    AccessTokenAlgorithm, Clock as _, Config, CurrentSdk, Error, ManualClock, SessionManager,
    SigningKeySource,
};
use tessera_testkit::MemoryStore;

const ISSUER: &str = "https://auth.example.test";
const AUDIENCE: &str = "orders-api";

const ALGORITHMS: [(AccessTokenAlgorithm, Algorithm); 3] = [
    (AccessTokenAlgorithm::EdDsa, Algorithm::EdDSA),
    (AccessTokenAlgorithm::Es256, Algorithm::ES256),
    (AccessTokenAlgorithm::Rs256, Algorithm::RS256),
];

/// HMAC-SHA256 written out here (RFC 2104) so that the confusion token is
/// made without Tessera's code.
mod hmac_free {
    use sha2::{Digest, Sha256};

    pub(crate) fn hs256(key: &[u8], msg: &[u8]) -> [u8; 32] {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
        let inner = Sha256::new()
            .chain_update(pad(0x36))
            .chain_update(msg)
            .finalize();
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize()
            .into()
    }
}

fn real_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct Env {
    clock: Arc<ManualClock>,
    m: SessionManager,
}

fn config(alg: AccessTokenAlgorithm, clock: Arc<ManualClock>) -> tessera::ConfigBuilder {
    Config::builder()
        .with_clock(clock)
        .with_current_sdk(Some(CurrentSdk::new("/auth")))
        .with_access_token_algorithm(alg)
        .with_access_token_issuer(ISSUER)
        .with_access_token_audience(Some(AUDIENCE.into()))
}

/// A manager whose clock reads `start_ms` (the verifier checks `exp`
/// against the real time, so tests start near it).
async fn env_at(alg: AccessTokenAlgorithm, start_ms: i64, store: MemoryStore) -> Env {
    let clock = Arc::new(ManualClock::new(start_ms));
    let m = SessionManager::new(config(alg, clock.clone()).build().unwrap(), store)
        .await
        .unwrap();
    Env { clock, m }
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

/// Signs in (header mode) and returns the access token and the handle.
async fn login(e: &Env, uid: &str) -> (String, String) {
    let mut resp = HeaderMap::new();
    let mut req = HeaderMap::new();
    req.insert("st-auth-mode", HeaderValue::from_static("header"));
    let s = e
        .m
        .create_new_session_for_request(&req, &mut resp, uid, json!({"role": "buyer"}), json!({}))
        .await
        .unwrap();
    let access = resp["st-access-token"].to_str().unwrap().to_owned();
    (access, s.handle().to_owned())
}

async fn tessera_accepts(m: &SessionManager, token: &str) -> Result<(), Error> {
    m.get_session(&bearer(token), &mut HeaderMap::new(), false)
        .await
        .map(|_| ())
}

async fn jwks(m: &SessionManager) -> (JwkSet, u64) {
    let doc = m.jwks().await.expect("asymmetric mode publishes keys");
    (serde_json::from_str(&doc.json).unwrap(), doc.max_age_secs)
}

/// What a third-party verifier does: the key named by the token's `kid` in
/// the set it holds, the algorithm it expects, issuer and audience.
fn verify(set: &JwkSet, token: &str, alg: Algorithm) -> Result<Value, String> {
    let header = decode_header(token).map_err(|e| format!("header: {e}"))?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = set.find(&kid).ok_or_else(|| format!("unknown kid {kid}"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("jwk: {e}"))?;
    let mut v = Validation::new(alg);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
    decode::<Value>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| format!("decode: {e}"))
}

fn segments(token: &str) -> [String; 3] {
    let p: Vec<&str> = token.split('.').collect();
    assert_eq!(p.len(), 3);
    [p[0].into(), p[1].into(), p[2].into()]
}

fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

#[tokio::test]
async fn independent_verifier_accepts_tessera_tokens_with_standard_claims() {
    for (alg, jwt_alg) in ALGORITHMS {
        let e = env_at(alg, real_now_ms(), MemoryStore::new()).await;
        let (token, handle) = login(&e, "alice").await;
        let header: Value = serde_json::from_slice(&unb64(&segments(&token)[0])).unwrap();
        assert_eq!(header["alg"], alg.jws_name(), "{alg:?}");
        assert_eq!(header["typ"], "JWT");
        let (set, _) = jwks(&e.m).await;
        assert_eq!(set.keys.len(), 1, "one key before any rotation");
        assert_eq!(
            set.keys[0].common.key_id.as_deref(),
            header["kid"].as_str(),
            "the token names the published key"
        );
        let claims = verify(&set, &token, jwt_alg).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["aud"], AUDIENCE);
        assert_eq!(claims["sh"], handle.as_str());
        assert_eq!(claims["pld"], json!({"role": "buyer"}));
        let now_s = e.clock.now_ms() / 1000;
        assert_eq!(claims["iat"], now_s);
        assert_eq!(claims["exp"], now_s + 3600);
        // The claims still start with the protocol's own (the fast reader).
        let raw = String::from_utf8(unb64(&segments(&token)[1])).unwrap();
        assert!(raw.starts_with(r#"{"sh":"#), "{raw}");
        tessera_accepts(&e.m, &token).await.unwrap();
    }
}

#[tokio::test]
async fn tampered_tokens_are_refused_by_both() {
    for (alg, jwt_alg) in ALGORITHMS {
        let e = env_at(alg, real_now_ms(), MemoryStore::new()).await;
        let (token, _) = login(&e, "alice").await;
        let (set, _) = jwks(&e.m).await;
        let [h, c, s] = segments(&token);
        // Claims changed (another user), signature kept.
        let mut claims: Value = serde_json::from_slice(&unb64(&c)).unwrap();
        claims["sub"] = json!("mallory");
        claims["uid"] = json!("mallory");
        let forged_claims = b64(&serde_json::to_vec(&claims).unwrap());
        // A signature byte changed.
        let mut sig = unb64(&s);
        sig[10] ^= 1;
        for bad in [
            format!("{h}.{forged_claims}.{s}"),
            format!("{h}.{c}.{}", b64(&sig)),
            format!("{h}.{c}.{}", &s[..s.len() - 4]),
        ] {
            assert!(verify(&set, &bad, jwt_alg).is_err(), "{alg:?} verifier");
            let err = tessera_accepts(&e.m, &bad).await.unwrap_err();
            assert!(
                matches!(err, Error::TryRefreshToken { .. }),
                "{alg:?}: {err:?}"
            );
        }
    }
}

#[tokio::test]
async fn alg_none_and_the_hs256_public_key_confusion_are_refused_by_both() {
    for (alg, jwt_alg) in ALGORITHMS {
        let e = env_at(alg, real_now_ms(), MemoryStore::new()).await;
        let (token, _) = login(&e, "alice").await;
        let (set, _) = jwks(&e.m).await;
        let doc = e.m.jwks().await.unwrap().json;
        let [h, c, _] = segments(&token);
        let header: Value = serde_json::from_slice(&unb64(&h)).unwrap();
        let kid = header["kid"].as_str().unwrap();
        let with_header = |alg_name: &str| {
            b64(format!(r#"{{"alg":"{alg_name}","typ":"JWT","kid":"{kid}"}}"#).as_bytes())
        };
        // alg: none, with an empty and with a junk signature.
        let none = with_header("none");
        let mut bad = vec![format!("{none}.{c}."), format!("{none}.{c}.AAAA")];
        // The classic confusion: HS256, MACed with what the verifier
        // publishes as the public key (the JWK as published, the whole
        // document, and the raw key bytes of the JWK's members).
        let jwk: Value = serde_json::to_value(&set.keys[0]).unwrap();
        #[derive(serde::Deserialize)]
        struct RawSet<'a> {
            #[serde(borrow)]
            keys: Vec<&'a serde_json::value::RawValue>,
        }
        let published: RawSet<'_> = serde_json::from_str(&doc).unwrap();
        let mut secrets: Vec<Vec<u8>> = vec![
            published.keys[0].get().as_bytes().to_vec(),
            serde_json::to_vec(&jwk).unwrap(),
            doc.clone().into_bytes(),
        ];
        for member in ["x", "y", "n"] {
            if let Some(v) = jwk[member].as_str() {
                secrets.push(unb64(v));
                secrets.push(v.as_bytes().to_vec());
            }
        }
        let hs = with_header("HS256");
        for secret in &secrets {
            let input = format!("{hs}.{c}");
            let mac = hs256(secret, input.as_bytes());
            bad.push(format!("{input}.{}", b64(&mac)));
        }
        for t in &bad {
            assert!(
                verify(&set, t, jwt_alg).is_err(),
                "{alg:?} verifier took {t}"
            );
            let err = tessera_accepts(&e.m, t).await.unwrap_err();
            assert!(
                matches!(err, Error::TryRefreshToken { .. }),
                "{alg:?}: {err:?}"
            );
        }
        // The verifier is not simply refusing everything: the control passes.
        verify(&set, &token, jwt_alg).unwrap();
    }
}

#[tokio::test]
async fn expired_and_unknown_kid_tokens_are_refused_by_both() {
    for (alg, jwt_alg) in ALGORITHMS {
        // Issued two hours ago: expired an hour ago.
        let e = env_at(alg, real_now_ms() - 7_200_000, MemoryStore::new()).await;
        let (old, _) = login(&e, "alice").await;
        let (set, _) = jwks(&e.m).await;
        let err = verify(&set, &old, jwt_alg).unwrap_err();
        assert!(err.contains("Expired"), "{alg:?}: {err}");
        e.clock.set(real_now_ms());
        let err = tessera_accepts(&e.m, &old).await.unwrap_err();
        assert!(matches!(err, Error::TryRefreshToken { .. }), "{err:?}");

        // A valid token of another deployment (its own key pair): a kid
        // neither this deployment's set nor Tessera knows.
        let other = env_at(alg, real_now_ms(), MemoryStore::new()).await;
        let (foreign, _) = login(&other, "alice").await;
        let (other_set, _) = jwks(&other.m).await;
        verify(&other_set, &foreign, jwt_alg).expect("valid where it was issued");
        let (set, _) = jwks(&e.m).await;
        let err = verify(&set, &foreign, jwt_alg).unwrap_err();
        assert!(err.contains("unknown kid"), "{err}");
        let err = tessera_accepts(&e.m, &foreign).await.unwrap_err();
        assert!(matches!(err, Error::TryRefreshToken { .. }), "{err:?}");
        // Our kid on the other deployment's signature: the key named
        // verifies nothing it did not sign.
        let (mine, _) = login(&e, "alice").await;
        let [mh, _, _] = segments(&mine);
        let [_, fc, fs] = segments(&foreign);
        let spliced = format!("{mh}.{fc}.{fs}");
        assert!(verify(&set, &spliced, jwt_alg).is_err());
        assert!(tessera_accepts(&e.m, &spliced).await.is_err());
    }
}

#[tokio::test]
async fn a_cached_jwks_keeps_old_tokens_and_a_new_kid_makes_the_verifier_refetch() {
    let interval = Duration::from_secs(600);
    let validity = Duration::from_secs(500);
    for (alg, jwt_alg) in ALGORITHMS {
        let store = MemoryStore::new();
        // The first key is created 590 s before the real time, so its
        // rotation falls 10 s from now (tokens stay unexpired for the
        // verifier, which reads the real time).
        let start = real_now_ms() - 590_000;
        let clock = Arc::new(ManualClock::new(start));
        let cfg = config(alg, clock.clone())
            .with_signing_key(SigningKeySource::Dynamic {
                update_interval: interval,
            })
            .with_access_token_validity(validity)
            .with_accept_previous_signing_key(true)
            .danger_allow_short_validity_for_tests()
            .build()
            .unwrap();
        let e = Env {
            clock: clock.clone(),
            m: SessionManager::new(cfg, store).await.unwrap(),
        };
        // Just before the rotation: the verifier fetches and caches the set.
        clock.set(start + 580_000);
        let (old, _) = login(&e, "alice").await;
        let (cached, max_age) = jwks(&e.m).await;
        // The cache lifetime ends at the rotation (20 s away), not later.
        assert!(
            max_age > 0 && max_age <= 20,
            "{alg:?}: max-age {max_age} outlives the key's signing period"
        );
        verify(&cached, &old, jwt_alg).unwrap();

        // The rotation: new tokens name the new key.
        clock.set(start + 601_000);
        let (new, _) = login(&e, "bob").await;
        let kid = |t: &str| decode_header(t).unwrap().kid.unwrap();
        assert_ne!(kid(&old), kid(&new), "{alg:?}: rotated");
        // The cached set still verifies the old token...
        verify(&cached, &old, jwt_alg).unwrap();
        // ...does not know the new kid, so the verifier refetches...
        assert!(verify(&cached, &new, jwt_alg)
            .unwrap_err()
            .contains("unknown kid"));
        let (fresh, max_age) = jwks(&e.m).await;
        assert!(max_age <= interval.as_secs() && max_age > 0, "{max_age}");
        // ...and the new set verifies both: the previous key is listed
        // while tokens it signed may be unexpired.
        assert_eq!(fresh.keys.len(), 2);
        verify(&fresh, &new, jwt_alg).unwrap();
        verify(&fresh, &old, jwt_alg).unwrap();
        tessera_accepts(&e.m, &old).await.unwrap();
        tessera_accepts(&e.m, &new).await.unwrap();

        // Once every token of the previous key has expired (one validity
        // after the new key took over), only the new key is listed.
        clock.set(start + 601_000 + 500_000);
        let (later, _) = jwks(&e.m).await;
        assert_eq!(later.keys.len(), 1, "{alg:?}");
        assert_eq!(later.keys[0].common.key_id, Some(kid(&new)));
    }
}

#[tokio::test]
async fn the_previous_key_is_published_even_when_tessera_does_not_accept_it() {
    let alg = AccessTokenAlgorithm::EdDsa;
    let e = env_at(alg, real_now_ms(), MemoryStore::new()).await;
    let (old, _) = login(&e, "alice").await;
    e.m.rotate_signing_key().await.unwrap();
    let (new, _) = login(&e, "alice").await;
    // accept_previous_signing_key is off (the default): Tessera asks for a
    // refresh, as the reference library does...
    assert!(matches!(
        tessera_accepts(&e.m, &old).await.unwrap_err(),
        Error::TryRefreshToken { .. }
    ));
    tessera_accepts(&e.m, &new).await.unwrap();
    // ...but another verifier may accept the unexpired token: its key is in
    // the set.
    let (set, _) = jwks(&e.m).await;
    assert_eq!(set.keys.len(), 2);
    verify(&set, &old, Algorithm::EdDSA).unwrap();
}

#[tokio::test]
async fn hs256_stays_the_default_and_publishes_nothing() {
    let clock = Arc::new(ManualClock::new(real_now_ms()));
    let m = SessionManager::new(
        Config::builder().with_clock(clock.clone()).build().unwrap(),
        MemoryStore::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        m.config().access_token_algorithm(),
        AccessTokenAlgorithm::Hs256
    );
    assert!(m.jwks().await.is_none());
    // The reference claims only: no sub/iss/aud.
    let mut resp = HeaderMap::new();
    m.create_new_session(&mut resp, "alice", json!({}), json!({}))
        .await
        .unwrap();
    let cookie = resp
        .get_all(http::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("sAccessToken="))
        .unwrap();
    let token = cookie["sAccessToken=".len()..].split(';').next().unwrap();
    let [h, c, _] = segments(token);
    let header: Value = serde_json::from_slice(&unb64(&h)).unwrap();
    assert_eq!(header["alg"], "HS256");
    let claims: Value = serde_json::from_slice(&unb64(&c)).unwrap();
    for k in ["sub", "iss", "aud"] {
        assert!(claims.get(k).is_none(), "{k} in {claims}");
    }
}

#[tokio::test]
async fn switching_the_algorithm_replaces_the_stored_key_at_once() {
    let store = MemoryStore::new();
    let now = real_now_ms();
    let hs = env_at(AccessTokenAlgorithm::Hs256, now, store.clone()).await;
    let (hs_token, _) = login(&hs, "alice").await;
    assert!(hs.m.jwks().await.is_none());
    let ed = env_at(AccessTokenAlgorithm::EdDsa, now, store.clone()).await;
    let (ed_token, _) = login(&ed, "alice").await;
    let header: Value = serde_json::from_slice(&unb64(&segments(&ed_token)[0])).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let (set, _) = jwks(&ed.m).await;
    // The replaced HS256 key is a secret: never in the set.
    assert_eq!(set.keys.len(), 1);
    verify(&set, &ed_token, Algorithm::EdDSA).unwrap();
    // The old HS256 token is a previous-key token: refused by default.
    assert!(tessera_accepts(&ed.m, &hs_token).await.is_err());
    tessera_accepts(&ed.m, &ed_token).await.unwrap();
}

#[test]
fn config_refuses_what_cannot_work() {
    let f: tessera::SigningKeyFn = Arc::new(|| Ok(vec![7u8; 32]));
    let err = Config::builder()
        .with_access_token_algorithm(AccessTokenAlgorithm::Es256)
        .with_signing_key(SigningKeySource::Function(f))
        .build()
        .unwrap_err();
    assert_eq!(err.setting(), tessera::ConfigSetting::AccessTokenAlgorithm);
    // A key that signs shorter than a token lives would drop unexpired
    // tokens' keys from the set.
    let err = Config::builder()
        .with_access_token_algorithm(AccessTokenAlgorithm::EdDsa)
        .with_access_token_validity(Duration::from_secs(7200))
        .with_signing_key(SigningKeySource::Dynamic {
            update_interval: Duration::from_secs(3600),
        })
        .build()
        .unwrap_err();
    assert_eq!(err.setting(), tessera::ConfigSetting::AccessTokenAlgorithm);
    assert!(Config::builder()
        .with_access_token_algorithm(AccessTokenAlgorithm::EdDsa)
        .with_access_token_issuer("")
        .build()
        .is_err());
    assert!(Config::builder()
        .with_access_token_algorithm(AccessTokenAlgorithm::Rs256)
        .build()
        .is_ok());
}

/// Every one-byte change to an asymmetric token, anywhere in it, is a
/// TryRefreshToken (or Unauthorized), never a panic and never accepted;
/// the same for truncations.
#[tokio::test]
async fn mangled_asymmetric_tokens_are_refused_without_panic() {
    for (alg, _) in ALGORITHMS {
        let e = env_at(alg, real_now_ms(), MemoryStore::new()).await;
        let (token, _) = login(&e, "alice").await;
        tessera_accepts(&e.m, &token).await.unwrap();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let replacements = b"AaZz09-_.=+/ \"{}";
        let bytes = token.as_bytes();
        let mut tried = 0;
        while tried < 400 {
            let i = (next() % bytes.len() as u64) as usize;
            let c = replacements[(next() % replacements.len() as u64) as usize];
            if bytes[i] == c {
                continue;
            }
            let mut bad = bytes.to_vec();
            bad[i] = c;
            let bad = String::from_utf8(bad).unwrap();
            // The header value must stay a valid HTTP header value.
            let Ok(hv) = HeaderValue::from_str(&format!("Bearer {bad}")) else {
                continue;
            };
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, hv);
            let err =
                e.m.get_session(&h, &mut HeaderMap::new(), false)
                    .await
                    .unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::TryRefreshToken { .. } | Error::Unauthorized { .. }
                ),
                "{alg:?} byte {i} → {}: {err:?}",
                c as char
            );
            tried += 1;
        }
        for cut in [1, 2, 10, 43, 86] {
            let short = &token[..token.len() - cut];
            let err = tessera_accepts(&e.m, short).await.unwrap_err();
            assert!(
                matches!(err, Error::TryRefreshToken { .. }),
                "{alg:?} -{cut}: {err:?}"
            );
        }
    }
}
