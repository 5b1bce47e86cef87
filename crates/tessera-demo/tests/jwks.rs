//! The demo's `--access-token-algorithm` flag and its JWKS route, on the
//! real binary over HTTP.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{Browser, Demo};
use serde_json::{json, Value};
use tessera_sqlx::testing::{fresh_url, Backend};

async fn get_jwks(base: &str) -> (u16, Option<String>, String) {
    let res = reqwest::Client::new()
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    let cc = res
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status().as_u16(), cc, res.text().await.unwrap())
}

#[tokio::test]
async fn each_algorithm_signs_the_demos_tokens_and_publishes_its_key() {
    for (flag, alg) in [("eddsa", "EdDSA"), ("es256", "ES256"), ("rs256", "RS256")] {
        let db = fresh_url(Backend::Sqlite).await;
        let demo = Demo::start(&db, &["--access-token-algorithm", flag], "60");
        let base = demo.base.as_str();
        let (status, cc, body) = get_jwks(base).await;
        assert_eq!(status, 200, "{flag}");
        assert!(cc.unwrap().contains("max-age="), "{flag}");
        let set: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(set["keys"].as_array().unwrap().len(), 1, "{body}");

        let mut b = Browser::default();
        let creds = json!({"username": "alice", "password": "password one"});
        let r = b.send(base, "POST", "/api/signup", Some(creds)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let token = b.cookie("sAccessToken").unwrap().to_owned();
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], alg);
        assert_eq!(header["kid"], set["keys"][0]["kid"], "{flag}");
        // The demo's own routes take the token.
        assert_eq!(b.send(base, "GET", "/api/me", None).await.status, 200);
    }
}

#[tokio::test]
async fn hs256_is_the_default_and_publishes_nothing() {
    let db = fresh_url(Backend::Sqlite).await;
    let demo = Demo::start(&db, &[], "60");
    let (status, _, _) = get_jwks(&demo.base).await;
    assert_eq!(status, 404);
    let out = common::admin(&db, &["--access-token-algorithm", "ps256", "rotate-key"]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("ps256"),
        "{}",
        common::stderr(&out)
    );
}
