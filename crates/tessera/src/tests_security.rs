//! Security checklist, token layer (items 1, 2, 4 and 5). The same
//! properties are checked end to end through `SessionManager` on every
//! database in `crates/tessera-sqlx/tests/security.rs`.

use super::*;
use crate::crypto::{random_handle, random_token};

const KEY: [u8; 32] = [7u8; 32];

fn key() -> SigningKey {
    SigningKey::new(&KEY, 0).unwrap()
}

/// `header.claims.signature` with a correct HMAC under `key`: only the
/// checks other than the signature can refuse it.
fn signed(key: &SigningKey, header_b64: &str, claims_b64: &str) -> String {
    let input = format!("{header_b64}.{claims_b64}");
    let sig = b64_encode(&key.signature(input.as_bytes()));
    format!("{input}.{sig}")
}

const GOOD_CLAIMS: &str = r#"{"sh":"h-1","uid":123,"rt":"ab","prt":null,"csrf":"c","pld":{"a":1},"iat":1700000000,"exp":1700003600}"#;

/// What `get_session` does with a token before anything touches the
/// database (header match, signature, strict decoding, typed claims).
fn verifies(key: &SigningKey, token: &str) -> bool {
    let Some(t) = split_token(token.as_bytes()) else {
        return false;
    };
    if t.header != key.header_b64.as_bytes() || !signature_valid(key, &t) {
        return false;
    }
    decode_claims(t.claims).is_some_and(|text| parse_claims(&text).is_some())
}

#[test]
fn item4_signing_keys_shorter_than_256_bits_are_refused() {
    for len in 0..MIN_SIGNING_KEY_LEN {
        assert!(SigningKey::new(&vec![1u8; len], 0).is_none(), "{len} bytes");
    }
    assert_eq!(MIN_SIGNING_KEY_LEN, 32);
    for len in [32, 33, 64, 100] {
        assert!(SigningKey::new(&vec![1u8; len], 0).is_some(), "{len} bytes");
    }
}

#[test]
fn item4_random_material_is_full_length_and_from_the_os_csprng() {
    // Every random value is full length and never repeats.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2000 {
        let t = random_token().unwrap();
        assert_eq!(b64_decode(t.as_bytes()).unwrap().len(), 32, "256 bits");
        assert!(seen.insert(t));
        assert!(seen.insert(random_handle().unwrap()));
    }
    let rk = RefreshKey::new(&[3u8; 32]).unwrap();
    let a = seal_refresh_token(&rk, "h", &UserId::from(1), None).unwrap();
    let b = seal_refresh_token(&rk, "h", &UserId::from(1), None).unwrap();
    assert_ne!(a, b, "a refresh token carries fresh randomness");
    // The one source: crypto::fill_random, i.e. getrandom (the OS CSPRNG).
    // No other generator is used anywhere in the core, except AWS-LC's own
    // OS-seeded generator inside ES256/RS256 key generation and signing
    // (jwk.rs; SECURITY.md item 4); Ed25519 seeds come from fill_random.
    let jwk = include_str!("jwk.rs");
    assert!(jwk.contains("let seed = random_array::<32>()?;"));
    assert_eq!(
        jwk.matches("rand::").count(),
        jwk.matches("aws_lc_rs::rand::SystemRandom::new()").count(),
        "jwk.rs names no generator but AWS-LC's"
    );
    let sources = [
        jwk,
        include_str!("crypto.rs"),
        include_str!("keys.rs"),
        include_str!("manager.rs"),
        include_str!("tokens.rs"),
        include_str!("session.rs"),
        include_str!("config.rs"),
        include_str!("store.rs"),
        include_str!("http_io.rs"),
    ];
    for src in sources {
        for forbidden in ["rand::", "thread_rng", "SmallRng", "fastrand", "OsRng"] {
            assert!(
                !src.contains(&format!("{forbidden}("))
                    && !src.contains(&format!("use {forbidden}"))
            );
        }
    }
    let crypto = include_str!("crypto.rs");
    assert!(crypto.contains("getrandom::getrandom(buf)"));
    let manifest = include_str!("../Cargo.toml");
    assert!(!manifest
        .lines()
        .any(|l| l.trim_start().starts_with("rand ")));
}

#[test]
fn item1_kid_is_untrusted_input_with_a_length_cap() {
    let k = key();
    let own = header_kid(k.header_b64.as_bytes()).expect("our own header");
    assert_eq!(own.len(), 16);
    let h = |json: &str| b64_encode(json.as_bytes());
    let kid_of = |json: &str| header_kid(h(json).as_bytes());
    assert_eq!(
        kid_of(&format!(r#"{{"alg":"HS256","kid":"{own}"}}"#)),
        Some(own.clone())
    );
    // Wrong lengths, not lowercase hex, other algorithms.
    for kid in [
        "",
        "0123456789abcde",
        "0123456789abcdef0",
        "0123456789ABCDEF",
        "../../etc/passwd",
        "0123456789abcdeg",
    ] {
        assert_eq!(
            kid_of(&format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#)),
            None,
            "{kid:?}"
        );
    }
    let long_kid = "a".repeat(10_000);
    assert_eq!(
        kid_of(&format!(r#"{{"alg":"HS256","kid":"{long_kid}"}}"#)),
        None
    );
    // The four algorithms Tessera signs with name keys; no other does.
    for alg in ["HS256", "EdDSA", "ES256", "RS256"] {
        assert_eq!(
            kid_of(&format!(r#"{{"alg":"{alg}","kid":"{own}"}}"#)),
            Some(own.clone()),
            "{alg}"
        );
    }
    for alg in [
        "none", "HS512", "RS384", "PS256", "ES384", "Ed25519", "hs256", "eddsa", "",
    ] {
        assert_eq!(
            kid_of(&format!(r#"{{"alg":"{alg}","kid":"{own}"}}"#)),
            None,
            "{alg}"
        );
    }
    // The cap: a well-formed header that is merely long is not decoded.
    let padded = format!(
        r#"{{"alg":"HS256","kid":"{own}","x":"{}"}}"#,
        "y".repeat(80)
    );
    assert!(h(&padded).len() > MAX_HEADER_B64_LEN);
    assert_eq!(
        kid_of(&padded),
        None,
        "headers over the cap are not decoded"
    );
    let just_under = format!(
        r#"{{"alg":"HS256","kid":"{own}","x":"{}"}}"#,
        "y".repeat(40)
    );
    assert!(h(&just_under).len() <= MAX_HEADER_B64_LEN);
    assert_eq!(kid_of(&just_under), Some(own.clone()));
    // And a kid is never used to look a key up: even our own kid in any
    // other header does not verify (exact header comparison).
    let other_header = h(&format!(r#"{{"alg":"HS256","kid":"{own}","typ":"JWT"}}"#));
    assert_ne!(other_header, k.header_b64);
    assert!(!verifies(
        &k,
        &signed(&k, &other_header, &b64_encode(GOOD_CLAIMS.as_bytes()))
    ));
}

#[test]
fn item1_algorithm_is_fixed_by_the_key() {
    let k = key();
    let claims = b64_encode(GOOD_CLAIMS.as_bytes());
    assert!(verifies(&k, &signed(&k, &k.header_b64, &claims)), "control");
    let kid = header_kid(k.header_b64.as_bytes()).unwrap();
    let h = |json: String| b64_encode(json.as_bytes());
    let mut headers = vec![
        h(r#"{"alg":"none","typ":"JWT"}"#.into()),
        h(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#)),
        h(format!(r#"{{"alg":"HS512","typ":"JWT","kid":"{kid}"}}"#)),
        h(format!(r#"{{"alg":"HS384","typ":"JWT","kid":"{kid}"}}"#)),
        h(format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{kid}"}}"#)),
        h(format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}"}}"#)),
        h(r#"{"alg":"HS256","typ":"JWT"}"#.into()),
        // Same fields, other order or spacing.
        h(format!(r#"{{"typ":"JWT","alg":"HS256","kid":"{kid}"}}"#)),
        h(format!(r#"{{"alg": "HS256","typ":"JWT","kid":"{kid}"}}"#)),
    ];
    for extra in [
        r#""jku":"https://attacker.example/jwks.json""#,
        r#""x5u":"https://attacker.example/cert.pem""#,
        r#""jwk":{"kty":"oct","k":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"}"#,
        r#""x5c":["MIIBszCCAVmgAwIBAgIU"]"#,
        r#""crit":["exp"]"#,
    ] {
        headers.push(h(format!(
            r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}",{extra}}}"#
        )));
    }
    for header in &headers {
        // Correctly signed with the real key bytes: still refused.
        assert!(!verifies(&k, &signed(&k, header, &claims)), "{header}");
        // `alg: none` style: empty or missing signature.
        assert!(!verifies(&k, &format!("{header}.{claims}.")));
        assert!(!verifies(&k, &format!("{header}.{claims}")));
    }
    // Our own header with an empty, short, long or padded signature.
    let good = signed(&k, &k.header_b64, &claims);
    let sig = good.rsplit('.').next().unwrap();
    let input = &good[..good.len() - sig.len() - 1];
    for bad_sig in [
        String::new(),
        sig[..42].to_owned(),
        format!("{sig}A"),
        format!("{sig}="),
        "A".repeat(43),
    ] {
        assert!(!verifies(&k, &format!("{input}.{bad_sig}")), "{bad_sig:?}");
    }
}

#[test]
fn item2_only_access_tokens_pass_as_access_tokens() {
    let k = key();
    // A refresh token and an anti-CSRF token are one base64url segment:
    // not even split as a JWT.
    let rk = RefreshKey::new(&KEY).unwrap();
    let refresh = seal_refresh_token(&rk, "h-1", &UserId::from(123), None).unwrap();
    let csrf = random_token().unwrap();
    for t in [&refresh, &csrf] {
        assert!(split_token(t.as_bytes()).is_none());
        assert!(!verifies(&k, t));
        // Glued into the JWT shape under our header and correctly signed
        // with our key, they are still not claims.
        assert!(!verifies(&k, &signed(&k, &k.header_b64, t)));
    }
    // An access token does not open as a refresh token.
    let access = signed(&k, &k.header_b64, &b64_encode(GOOD_CLAIMS.as_bytes()));
    assert!(open_refresh_token(&rk, access.as_bytes()).is_none());
    // A JWT from another issuer, signed with the same key bytes: its
    // standard header is not ours...
    let std_header = b64_encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let foreign_claims = b64_encode(
        br#"{"iss":"https://idp.example","sub":"123","aud":"app","iat":1700000000,"exp":1700003600}"#,
    );
    assert!(!verifies(&k, &signed(&k, &std_header, &foreign_claims)));
    // ...and even under our exact header its claims are not Tessera's
    // (no handle, refresh hash, user id or payload).
    assert!(!verifies(&k, &signed(&k, &k.header_b64, &foreign_claims)));
    let almost = b64_encode(br#"{"sub":"123","uid":123,"rt":"ab","pld":null,"iat":1,"exp":2}"#);
    assert!(!verifies(&k, &signed(&k, &k.header_b64, &almost)));
}

#[test]
fn item5_claims_of_the_wrong_json_type_are_refused() {
    assert!(parse_claims(GOOD_CLAIMS).is_some(), "control");
    let cases: &[(&str, &str, &[&str])] = &[
        (
            r#""exp":1700003600"#,
            "exp",
            &[
                r#""1700003600""#,
                "1700003600.0",
                "1.7e9",
                "true",
                "null",
                "[1700003600]",
                "{}",
                "9223372036854775808",
            ],
        ),
        (
            r#""iat":1700000000"#,
            "iat",
            &[r#""1700000000""#, "1700000000.5", "false", "null", "[]"],
        ),
        (
            r#""sh":"h-1""#,
            "sh",
            &["1", "null", "true", "[]", r#"{"a":1}"#],
        ),
        (
            r#""uid":123"#,
            "uid",
            &["1.5", "true", "null", "[123]", r#"{"id":123}"#],
        ),
        (r#""rt":"ab""#, "rt", &["1", "null", "[]", "false"]),
        (r#""prt":null"#, "prt", &["1", "true", "[]", "{}"]),
        (r#""csrf":"c""#, "csrf", &["1", "false", "[]", "{}"]),
    ];
    for (field, name, bad_values) in cases {
        assert!(GOOD_CLAIMS.contains(field));
        for bad in *bad_values {
            let claims = GOOD_CLAIMS.replace(field, &format!(r#""{name}":{bad}"#));
            assert!(parse_claims(&claims).is_none(), "{claims}");
            // And through the whole token check, correctly signed.
            let t = signed(&key(), &key().header_b64, &b64_encode(claims.as_bytes()));
            assert!(!verifies(&key(), &t), "{claims}");
        }
        // A required claim that is missing.
        if !matches!(*name, "prt" | "csrf") {
            let claims = GOOD_CLAIMS
                .replace(&format!("{field},"), "")
                .replace(&format!(",{field}"), "");
            assert!(!claims.contains(&format!(r#""{name}""#)));
            assert!(parse_claims(&claims).is_none(), "{claims}");
        }
    }
    // Not an object; a duplicated claim.
    for claims in [
        "[]",
        "\"x\"",
        "1",
        "null",
        &GOOD_CLAIMS.replace('}', r#","exp":1}"#),
    ] {
        assert!(parse_claims(claims).is_none(), "{claims}");
    }
}

#[test]
fn item5_three_segments_of_unpadded_base64url_utf8_json_only() {
    let k = key();
    // Valid claims whose encoding needs padding (length not a multiple of 3).
    let claims = (0..3)
        .map(|n| GOOD_CLAIMS.replace(r#""a":1"#, &format!(r#""a":"{}""#, "x".repeat(n))))
        .find(|c| c.len() % 3 != 0)
        .unwrap();
    let claims_b64 = b64_encode(claims.as_bytes());
    assert!(
        verifies(&k, &signed(&k, &k.header_b64, &claims_b64)),
        "control"
    );
    // Wrong number of segments.
    let good = signed(&k, &k.header_b64, &claims_b64);
    for t in [
        format!("{}.{claims_b64}", k.header_b64),
        format!("{good}.x"),
        format!("{}.{claims_b64}.{claims_b64}.sig", k.header_b64),
        format!(".{good}"),
        good.replacen('.', "..", 1),
    ] {
        assert!(!verifies(&k, &t), "{t}");
    }
    // Claims that are not unpadded base64url, each correctly signed so that
    // only the decoder can refuse them.
    let std_b64 = {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine as _;
        // A payload whose standard encoding has '+', '/' and padding.
        let claims = GOOD_CLAIMS.replace(r#""a":1"#, r#""a":"~~~??>>>""#);
        let enc = STANDARD.encode(claims.as_bytes());
        assert!(enc.contains('+') || enc.contains('/'));
        enc
    };
    let mut padded = claims_b64.clone();
    while padded.len() % 4 != 0 {
        padded.push('=');
    }
    assert_ne!(padded, claims_b64, "the control needs padding");
    for bad in [
        padded,
        std_b64,
        format!(" {claims_b64}"),
        format!("{claims_b64}\n"),
        claims_b64.replacen('e', "%65", 1),
        format!("{claims_b64}A"), // an extra character
    ] {
        assert!(!verifies(&k, &signed(&k, &k.header_b64, &bad)), "{bad:?}");
    }
    // Claims that are not UTF-8, or not JSON.
    let not_utf8 = GOOD_CLAIMS
        .as_bytes()
        .iter()
        .copied()
        .map(|b| if b == b'h' { 0xff } else { b })
        .collect::<Vec<u8>>();
    let latin1_in_ignored = [
        &GOOD_CLAIMS.as_bytes()[..GOOD_CLAIMS.len() - 1],
        b",\"x\":\"\xe9\"}",
    ]
    .concat();
    for bytes in [
        not_utf8,
        latin1_in_ignored,
        b"not json".to_vec(),
        b"{".to_vec(),
        vec![],
    ] {
        let t = signed(&k, &k.header_b64, &b64_encode(&bytes));
        assert!(!verifies(&k, &t), "{:?}", String::from_utf8_lossy(&bytes));
    }
    // Size cap: a token over MAX_TOKEN_LEN is not even split.
    let big_claims = GOOD_CLAIMS.replace(
        r#""a":1"#,
        &format!(r#""a":"{}""#, "x".repeat(MAX_TOKEN_LEN)),
    );
    let big = signed(&k, &k.header_b64, &b64_encode(big_claims.as_bytes()));
    assert!(big.len() > MAX_TOKEN_LEN);
    assert!(split_token(big.as_bytes()).is_none());
    assert!(!verifies(&k, &big));
}
