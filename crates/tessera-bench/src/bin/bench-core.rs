//! `get_session` against the physical floor (one HMAC-SHA256 of the token),
//! and per access-token algorithm against the bare signature check and
//! `jsonwebtoken`.
//!
//! ```text
//! bench-core [--quick]                 # Markdown report on stdout
//! bench-core --callgrind OP N          # run OP N times (for valgrind; no report)
//! ```
//!
//! The session is created on an in-memory SQLite store; after that the
//! measured path touches no database: `get_session` reads the two cookies
//! from the `Cookie` header, compares the JWT header with the key's, checks
//! the HMAC, decodes and parses the claims, checks expiry and the anti-CSRF
//! header, and builds the `Session` (which is dropped at the end of each
//! iteration, so its cost is included).

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use sha2::Sha256;
use tessera::{AccessTokenAlgorithm, Config, CurrentSdk, RequestSource, SessionManager, UserId};
use tessera_bench::{compare, current_thread_runtime, fmt_ns, machine_summary, Micro, Opts};
use tessera_sqlx::SqlStore;

/// Everything the benchmarks need, made once.
struct Fixture {
    rt: tokio::runtime::Runtime,
    manager: SessionManager,
    request: HeaderMap,
    /// A manager on the same store allowing both client profiles
    /// (docs/PROTOCOL.md §9), and the same access token as a bearer token.
    both: SessionManager,
    bearer_request: HeaderMap,
    token: String,
    signing_key: Vec<u8>,
    jwt_payload: &'static str,
}

/// A mirror of the core's private claims struct, for the breakdown only.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Claims<'a> {
    #[serde(borrow)]
    sh: &'a str,
    uid: serde_json::Value,
    #[serde(borrow)]
    rt: &'a str,
    #[serde(borrow)]
    prt: Option<&'a str>,
    #[serde(borrow)]
    csrf: Option<&'a str>,
    #[serde(borrow)]
    pld: &'a RawValue,
    iat: i64,
    exp: i64,
}

fn set_cookie_value(response: &HeaderMap, name: &str) -> String {
    response
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let first = v.split(';').next()?;
            let (n, value) = first.split_once('=')?;
            (n == name).then(|| value.to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} cookie was set"))
}

fn fixture() -> Fixture {
    let rt = current_thread_runtime();
    let (manager, store, response, both) = rt.block_on(async {
        let store = tessera_sqlx::connect("sqlite::memory:")
            .await
            .expect("in-memory SQLite");
        // Without the change feed: its background reads of the log (a task
        // on this runtime, measured by bench-feed) would land in the
        // callgrind counts of `get_session`, which run far slower in wall
        // time. The request path is the same with or without it.
        let config = Config::builder()
            .with_change_feed(None)
            .build()
            .expect("default config");
        let manager = SessionManager::new(config, store.clone())
            .await
            .expect("manager");
        let mut response = HeaderMap::new();
        // A typical small payload: what an application puts in the token.
        manager
            .create_new_session(
                &mut response,
                UserId::from(123_456),
                json!({"role": "admin", "plan": "pro", "org": 42}),
                json!({"ip": "203.0.113.7"}),
            )
            .await
            .expect("create");
        let both = Config::builder()
            .with_current_sdk(Some(CurrentSdk::new("/auth")))
            .build()
            .expect("both profiles");
        let both = SessionManager::new(both, store.clone())
            .await
            .expect("manager");
        (manager, store, response, both)
    });
    let access = set_cookie_value(&response, "sAccessToken");
    let id_refresh = set_cookie_value(&response, "sIdRefreshToken");
    let csrf = response["anti-csrf"].to_str().expect("ascii").to_owned();
    // What a browser sends to an API route: the access-token and id-refresh
    // cookies (the refresh token's Path keeps it off ordinary requests) and
    // the anti-CSRF header the front end echoes.
    let mut request = HeaderMap::new();
    request.insert(
        COOKIE,
        HeaderValue::from_str(&format!(
            "sAccessToken={access}; sIdRefreshToken={id_refresh}"
        ))
        .expect("cookie header"),
    );
    request.insert("anti-csrf", HeaderValue::from_str(&csrf).expect("header"));
    // The same token as `Authorization: Bearer`, as an API client sends it
    // (no cookie, no anti-CSRF header): only the transport differs.
    let mut bearer_request = HeaderMap::new();
    bearer_request.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {access}")).expect("header"),
    );
    let signing_key = rt.block_on(async {
        let SqlStore::Sqlite(s) = &store else {
            unreachable!("sqlite::memory: gives a SQLite store")
        };
        let (value,): (String,) = sqlx::query_as(
            "SELECT key_value FROM tessera_keys WHERE key_name = 'access_token_signing_key'",
        )
        .fetch_one(s.pool())
        .await
        .expect("signing key row");
        STANDARD.decode(value.trim()).expect("base64 key")
    });
    let f = Fixture {
        rt,
        manager,
        request,
        both,
        bearer_request,
        token: access,
        signing_key,
        jwt_payload: r#"{"org":42,"plan":"pro","role":"admin"}"#,
    };
    // The floor computes exactly the signature the token carries.
    let (input, sig) = f.token.rsplit_once('.').expect("three segments");
    assert_eq!(
        URL_SAFE_NO_PAD.encode(hmac_raw(&f.signing_key, input.as_bytes())),
        sig,
        "the floor must compute the token's own signature"
    );
    f
}

fn hmac_raw(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn get_session_n(f: &Fixture, n: u64) -> Duration {
    get_session_on(f, &f.manager, &f.request, n)
}

fn get_session_on(f: &Fixture, manager: &SessionManager, request: &HeaderMap, n: u64) -> Duration {
    f.rt.block_on(async {
        let start = Instant::now();
        for _ in 0..n {
            let mut response = HeaderMap::new();
            let session = manager
                .get_session(black_box(request), &mut response, true)
                .await
                .expect("valid session");
            black_box(&session);
            black_box(&response);
        }
        start.elapsed()
    })
}

fn main() {
    let opts = Opts::from_args();
    let f = fixture();
    let signing_input = f.token.rsplit_once('.').expect("segments").0.to_owned();
    let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&f.signing_key).expect("key");

    if opts.rest.first().map(String::as_str) == Some("--callgrind") {
        let op = opts.rest.get(1).cloned().unwrap_or_default();
        let n: u64 = opts
            .rest
            .get(2)
            .and_then(|s| s.parse().ok())
            .expect("--callgrind OP N");
        match op.as_str() {
            "get_session" => {
                get_session_n(&f, n);
            }
            "get_session_both_cookie" => {
                get_session_on(&f, &f.both, &f.request, n);
            }
            "get_session_bearer" => {
                get_session_on(&f, &f.both, &f.bearer_request, n);
            }
            "hmac" => {
                for _ in 0..n {
                    let mut mac = keyed.clone();
                    mac.update(black_box(signing_input.as_bytes()));
                    black_box(mac.finalize().into_bytes());
                }
            }
            other => panic!(
                "unknown op {other:?}: get_session, get_session_both_cookie, \
                 get_session_bearer or hmac"
            ),
        }
        return;
    }

    let cookie_header = f.request[COOKIE].as_bytes().to_vec();
    let claims_b64 = signing_input.split('.').nth(1).expect("claims").to_owned();
    assert!(f.manager.config().anti_csrf(), "anti-CSRF must be on");

    let mut benches = vec![
        Micro::new("get_session (Cookie header → Session)", |n| {
            get_session_n(&f, n)
        }),
        Micro::new(
            "HMAC-SHA256 of the signing input, keyed state reused (floor)",
            |n| {
                let start = Instant::now();
                for _ in 0..n {
                    let mut mac = keyed.clone();
                    mac.update(black_box(signing_input.as_bytes()));
                    black_box(mac.finalize().into_bytes());
                }
                start.elapsed()
            },
        ),
        Micro::new(
            "HMAC-SHA256 of the signing input, key set up each time",
            |n| {
                let start = Instant::now();
                for _ in 0..n {
                    black_box(hmac_raw(
                        black_box(&f.signing_key),
                        black_box(signing_input.as_bytes()),
                    ));
                }
                start.elapsed()
            },
        ),
        Micro::new("part: find both cookies in the Cookie header", |n| {
            let start = Instant::now();
            for _ in 0..n {
                black_box(
                    black_box(&f.request).cookie_pair("sIdRefreshToken", "sAccessToken"),
                );
            }
            start.elapsed()
        }),
        Micro::new("for comparison: base64 crate decode + serde_json parse of the claims (the path before the fast reader)", |n| {
            let start = Instant::now();
            for _ in 0..n {
                let bytes = URL_SAFE_NO_PAD
                    .decode(black_box(claims_b64.as_bytes()))
                    .expect("b64");
                let c: Claims<'_> = serde_json::from_slice(&bytes).expect("claims");
                black_box(&c);
            }
            start.elapsed()
        }),
        Micro::new(
            "part: parse the JWT payload into a serde_json::Value",
            |n| {
                let start = Instant::now();
                for _ in 0..n {
                    let v: serde_json::Value =
                        serde_json::from_str(black_box(f.jwt_payload)).expect("json");
                    black_box(v);
                }
                start.elapsed()
            },
        ),
        Micro::new(
            "get_session, both profiles allowed: Cookie header (4.2.0 profile) → Session",
            |n| get_session_on(&f, &f.both, &f.request, n),
        ),
        Micro::new(
            "get_session, both profiles allowed: Authorization: Bearer (the same token) → Session",
            |n| get_session_on(&f, &f.both, &f.bearer_request, n),
        ),
    ];
    let stats = compare(&mut benches, opts.sampling());

    let get = stats[0];
    let floor = stats[1];
    let both_cookie = stats[stats.len() - 2];
    let bearer = stats[stats.len() - 1];
    let mut report = tessera_bench::Report::new();
    report.heading(3, "Rust core: get_session against the HMAC floor");
    report.para(&format!(
        "Machine: {}. Access token: {} bytes (signing input {} bytes, claims {} bytes \
         of base64url); Cookie header {} bytes. Anti-CSRF on. {} interleaved samples of ~{} \
         each after {} warm-up per benchmark.",
        machine_summary(),
        f.token.len(),
        signing_input.len(),
        claims_b64.len(),
        cookie_header.len(),
        opts.sampling().samples,
        fmt_ns(opts.sampling().sample.as_nanos() as f64),
        fmt_ns(opts.sampling().warmup.as_nanos() as f64),
    ));
    let rows: Vec<Vec<String>> = benches
        .iter()
        .zip(&stats)
        .map(|(b, s)| {
            vec![
                b.name.clone(),
                fmt_ns(s.min),
                fmt_ns(s.median),
                fmt_ns(s.p90),
                format!("{:.2}×", s.median / floor.median),
            ]
        })
        .collect();
    report.table(
        &["operation", "min", "median", "p90", "median / floor"],
        &rows,
    );
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    report.table(
        &["target", "measured", "verdict"],
        &[
            vec![
                "get_session median ≤ 1 µs".into(),
                fmt_ns(get.median),
                verdict(get.median <= 1_000.0).into(),
            ],
            vec![
                "get_session ≤ 2.5 × HMAC floor (median)".into(),
                format!(
                    "{:.2}× (min/min {:.2}×)",
                    get.median / floor.median,
                    get.min / floor.min
                ),
                verdict(get.median / floor.median <= 2.5).into(),
            ],
            vec![
                "get_session from a Bearer header within 5 % of the cookie (median, same run, both profiles allowed)".into(),
                format!(
                    "{:.3}× (Bearer {} / cookie {})",
                    bearer.median / both_cookie.median,
                    fmt_ns(bearer.median),
                    fmt_ns(both_cookie.median)
                ),
                verdict(bearer.median <= both_cookie.median * 1.05).into(),
            ],
        ],
    );
    report.para(&format!(
        "<!-- core-numbers get_session_median_ns={:.1} get_session_min_ns={:.1} floor_median_ns={:.1} floor_min_ns={:.1} -->",
        get.median, get.min, floor.median, floor.min
    ));
    report.print();
    asymmetric_report(&opts);
}

/// One algorithm's fixture: a manager signing with it, a bearer request
/// carrying one of its access tokens, and the published key set.
struct AlgFixture {
    name: &'static str,
    manager: SessionManager,
    request: HeaderMap,
    token: String,
    jwks: jsonwebtoken::jwk::JwkSet,
    jwt_alg: jsonwebtoken::Algorithm,
}

fn alg_fixture(
    rt: &tokio::runtime::Runtime,
    alg: AccessTokenAlgorithm,
    jwt_alg: jsonwebtoken::Algorithm,
) -> AlgFixture {
    rt.block_on(async {
        let store = tessera_sqlx::connect("sqlite::memory:")
            .await
            .expect("in-memory SQLite");
        let config = Config::builder()
            .with_change_feed(None)
            .with_current_sdk(Some(CurrentSdk::new("/auth")))
            .with_access_token_algorithm(alg)
            .build()
            .expect("config");
        let manager = SessionManager::new(config, store).await.expect("manager");
        let mut req = HeaderMap::new();
        req.insert("st-auth-mode", HeaderValue::from_static("header"));
        let mut response = HeaderMap::new();
        manager
            .create_new_session_for_request(
                &req,
                &mut response,
                UserId::from(123_456),
                json!({"role": "admin", "plan": "pro", "org": 42}),
                json!({"ip": "203.0.113.7"}),
            )
            .await
            .expect("create");
        let token = response["st-access-token"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let mut request = HeaderMap::new();
        request.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
        );
        let jwks = match manager.jwks().await {
            Some(doc) => serde_json::from_str(&doc.json).expect("key set"),
            None => jsonwebtoken::jwk::JwkSet { keys: Vec::new() },
        };
        AlgFixture {
            name: alg.jws_name(),
            manager,
            request,
            token,
            jwks,
            jwt_alg,
        }
    })
}

/// The bare signature check of a token with its published key (aws-lc-rs,
/// the key parsed once): the floor of an asymmetric `get_session`.
fn bare_verifier(a: &AlgFixture) -> aws_lc_rs::signature::ParsedPublicKey {
    use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
    let jwk: serde_json::Value = serde_json::to_value(&a.jwks.keys[0]).expect("jwk");
    let b = |m: &str| {
        URL_SAFE_NO_PAD
            .decode(jwk[m].as_str().expect(m))
            .expect("b64")
    };
    match a.name {
        "EdDSA" => ParsedPublicKey::new(&signature::ED25519, b("x")).expect("key"),
        "ES256" => {
            let mut point = vec![4u8];
            point.extend(b("x"));
            point.extend(b("y"));
            ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).expect("key")
        }
        _ => RsaPublicKeyComponents {
            n: b("n"),
            e: b("e"),
        }
        .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
        .expect("key"),
    }
}

/// `get_session` per access-token algorithm (Bearer, header mode), against
/// the bare signature check and against decoding with `jsonwebtoken`.
fn asymmetric_report(opts: &Opts) {
    use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
    let rt = current_thread_runtime();
    let fixtures = [
        alg_fixture(&rt, AccessTokenAlgorithm::Hs256, Algorithm::HS256),
        alg_fixture(&rt, AccessTokenAlgorithm::EdDsa, Algorithm::EdDSA),
        alg_fixture(&rt, AccessTokenAlgorithm::Es256, Algorithm::ES256),
        alg_fixture(&rt, AccessTokenAlgorithm::Rs256, Algorithm::RS256),
    ];
    let get = |a: &AlgFixture, n: u64| {
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..n {
                let mut response = HeaderMap::new();
                let session = a
                    .manager
                    .get_session(black_box(&a.request), &mut response, false)
                    .await
                    .expect("valid session");
                black_box(&session);
            }
            start.elapsed()
        })
    };
    let mut benches: Vec<Micro<'_>> = Vec::new();
    let mut labels = Vec::new();
    for a in &fixtures[1..] {
        let (input, sig) = a.token.rsplit_once('.').expect("segments");
        let sig = URL_SAFE_NO_PAD.decode(sig).expect("signature");
        let key = bare_verifier(a);
        key.verify_sig(input.as_bytes(), &sig)
            .expect("the floor checks the token's own signature");
        let decoding = DecodingKey::from_jwk(&a.jwks.keys[0]).expect("jwk");
        let mut validation = Validation::new(a.jwt_alg);
        validation.set_issuer(&["tessera"]);
        decode::<serde_json::Value>(&a.token, &decoding, &validation)
            .expect("jsonwebtoken accepts the token");
        let input = input.to_owned();
        benches.push(Micro::new(
            format!("{}: get_session (Bearer → Session)", a.name),
            move |n| get(a, n),
        ));
        benches.push(Micro::new(
            format!("{}: bare signature check (aws-lc-rs, parsed key)", a.name),
            move |n| {
                let start = Instant::now();
                for _ in 0..n {
                    black_box(
                        key.verify_sig(black_box(input.as_bytes()), black_box(&sig))
                            .is_ok(),
                    );
                }
                start.elapsed()
            },
        ));
        benches.push(Micro::new(
            format!(
                "{}: jsonwebtoken decode (RustCrypto, key from the JWK)",
                a.name
            ),
            move |n| {
                let start = Instant::now();
                for _ in 0..n {
                    let d =
                        decode::<serde_json::Value>(black_box(&a.token), &decoding, &validation)
                            .expect("valid");
                    black_box(d);
                }
                start.elapsed()
            },
        ));
        labels.push(a.name);
    }
    let hs = &fixtures[0];
    benches.push(Micro::new("HS256: get_session (Bearer → Session)", |n| {
        get(hs, n)
    }));
    let stats = compare(&mut benches, opts.sampling());
    let hs_median = stats[stats.len() - 1].median;
    let mut report = tessera_bench::Report::new();
    report.heading(3, "Rust core: get_session per access-token algorithm");
    report.para(
        "Header mode (`Authorization: Bearer`), no database, one session per algorithm. \
         The bare check is the signature alone with the public key parsed once; \
         `jsonwebtoken` (10.x, RustCrypto backend) decodes the same token with the \
         published JWK, checking `exp` and `iss`. Ratios are to HS256's get_session.",
    );
    let rows: Vec<Vec<String>> = benches
        .iter()
        .zip(&stats)
        .map(|(b, s)| {
            vec![
                b.name.clone(),
                fmt_ns(s.min),
                fmt_ns(s.median),
                fmt_ns(s.p90),
                format!("{:.2}×", s.median / hs_median),
            ]
        })
        .collect();
    report.table(
        &[
            "operation",
            "min",
            "median",
            "p90",
            "median / HS256 get_session",
        ],
        &rows,
    );
    report.print();
}
