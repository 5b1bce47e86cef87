//! The JWKS endpoint over real HTTP (TCP on loopback, hyper server, reqwest
//! client) on a real SQLite store: what a verifying service fetches, and
//! that its keys verify the access tokens the app sets (checked with the
//! `jsonwebtoken` crate, an independent implementation).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{serve, Browser, Harness};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tessera::{AccessTokenAlgorithm, SigningKeySource};

struct Fetched {
    status: u16,
    content_type: Option<String>,
    cache_control: Option<String>,
    body: String,
}

async fn fetch_jwks(addr: std::net::SocketAddr) -> Fetched {
    let res = reqwest::Client::new()
        .get(format!("http://{addr}{}", tessera_axum::JWKS_PATH))
        .send()
        .await
        .unwrap();
    let header = |n: &str| res.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    Fetched {
        status: res.status().as_u16(),
        content_type: header("content-type"),
        cache_control: header("cache-control"),
        body: res.text().await.unwrap(),
    }
}

fn max_age(cache_control: &str) -> u64 {
    cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .expect("max-age")
        .parse()
        .unwrap()
}

fn real_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn verify(set: &JwkSet, token: &str, alg: Algorithm) -> Result<Value, String> {
    let kid = decode_header(token)
        .map_err(|e| e.to_string())?
        .kid
        .ok_or("no kid")?;
    let jwk = set.find(&kid).ok_or_else(|| format!("unknown kid {kid}"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut v = Validation::new(alg);
    v.set_issuer(&["https://shop.example.test"]);
    v.validate_aud = false;
    decode::<Value>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn jwks_is_served_with_its_cache_lifetime_and_verifies_the_apps_tokens() {
    for (alg, jwt_alg) in [
        (AccessTokenAlgorithm::EdDsa, Algorithm::EdDSA),
        (AccessTokenAlgorithm::Es256, Algorithm::ES256),
        (AccessTokenAlgorithm::Rs256, Algorithm::RS256),
    ] {
        let h = Harness::new(|c| {
            c.with_access_token_algorithm(alg)
                .with_access_token_issuer("https://shop.example.test")
                .with_signing_key(SigningKeySource::Dynamic {
                    update_interval: Duration::from_secs(7200),
                })
        })
        .await;
        // The verifier checks `exp` against the real time: a key made now.
        h.clock.set(real_now_ms());
        h.manager.rotate_signing_key().await.unwrap();
        let app = h.app().merge(tessera_axum::jwks_router(&h.manager));
        let addr = serve(app).await;

        let f = fetch_jwks(addr).await;
        assert_eq!(f.status, 200, "{alg:?}");
        assert_eq!(f.content_type.as_deref(), Some("application/jwk-set+json"));
        let cc = f.cache_control.expect("cache-control");
        assert!(cc.starts_with("public"), "{cc}");
        // The key signs for another 7200 s: the lifetime is the hour cap.
        assert_eq!(max_age(&cc), 3600, "{alg:?}: {cc}");
        assert_eq!(tessera::JWKS_MAX_AGE, Duration::from_secs(3600));
        let set: JwkSet = serde_json::from_str(&f.body).unwrap();
        let mut b = Browser::default();
        let r = b.send(addr, "POST", "/login?user=alice", false, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let token = b.cookie("sAccessToken").unwrap().to_owned();
        let claims = verify(&set, &token, jwt_alg).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(claims["sub"], "alice");
        // The app still takes its own token.
        assert_eq!(b.send(addr, "GET", "/me", false, None).await.status, 200);

        // Close to the scheduled rotation the lifetime shrinks to what is
        // left of the key's signing period.
        h.clock.advance(Duration::from_secs(7200 - 100));
        let f = fetch_jwks(addr).await;
        let left = max_age(&f.cache_control.unwrap());
        assert!((99..=100).contains(&left), "{alg:?}: {left}");

        // After a rotation the set holds the new key and the previous one.
        h.clock.set(real_now_ms());
        h.manager.rotate_signing_key().await.unwrap();
        let f = fetch_jwks(addr).await;
        let rotated: JwkSet = serde_json::from_str(&f.body).unwrap();
        // The current key and the one that signed `token`.
        assert_eq!(rotated.keys.len(), 2, "{alg:?}: {}", f.body);
        verify(&rotated, &token, jwt_alg).unwrap();
    }
}

#[tokio::test]
async fn hs256_mode_publishes_nothing() {
    let h = Harness::new(|c| c).await;
    let app = h.app().merge(tessera_axum::jwks_router(&h.manager));
    let addr = serve(app).await;
    let f = fetch_jwks(addr).await;
    assert_eq!(f.status, 404);
    assert!(f.body.is_empty(), "{}", f.body);
    assert_eq!(f.cache_control.as_deref(), Some("no-store"));
}
