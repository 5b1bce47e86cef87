//! Security checklist item 6: known-answer tests of the JWS signature layer.
//!
//! * RFC 7515 appendix A.1 (JWS using HMAC SHA-256): the example's key,
//!   signing input and signature, rebuilt here from the numbers the RFC
//!   prints. Tessera's own header is fixed, so the example is checked where
//!   the header plays no part: [`signature_valid`] over the example's exact
//!   signing input, and the HMAC itself.
//! * The Wycheproof HMAC-SHA256 vectors, carried as test data
//!   (`tests/data/hmac_sha256_test.json`, see `tests/data/README.md`): every
//!   vector, including those with truncated 128-bit tags and the modified
//!   ("invalid") tags, through [`hmac_key`] / [`hmac_tag`] (what
//!   [`SigningKey`] signs with) and [`ct_eq`].

use super::*;
use crate::crypto::ct_eq;

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// RFC 7515 A.1.1: the JOSE header as the octets the RFC lists (note the
/// CR LF and the space: the signature covers these exact bytes).
const A1_HEADER: [u8; 30] = [
    123, 34, 116, 121, 112, 34, 58, 34, 74, 87, 84, 34, 44, 13, 10, 32, 34, 97, 108, 103, 34, 58,
    34, 72, 83, 50, 53, 54, 34, 125,
];
/// RFC 7515 A.1.1: the JWS payload.
const A1_PAYLOAD: &[u8] =
    b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";
/// RFC 7515 A.1.1: the symmetric key (the JWK's `k`, as octets).
const A1_KEY: [u8; 64] = [
    3, 35, 53, 75, 43, 15, 165, 188, 131, 126, 6, 101, 119, 123, 166, 143, 90, 179, 40, 230, 240,
    84, 201, 40, 169, 15, 132, 178, 210, 80, 46, 191, 211, 251, 90, 146, 210, 6, 71, 239, 150, 138,
    180, 195, 119, 98, 61, 34, 61, 46, 33, 114, 5, 46, 79, 8, 192, 205, 154, 245, 103, 208, 128,
    163,
];
/// RFC 7515 A.1.1: the HMAC SHA-256 result.
const A1_SIGNATURE: [u8; 32] = [
    116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77,
    105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
];

#[test]
fn rfc7515_a1_hs256_example_verifies() {
    // The encodings the RFC prints, from the octets above.
    let header_b64 = b64_encode(&A1_HEADER);
    let payload_b64 = b64_encode(A1_PAYLOAD);
    assert_eq!(header_b64, "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9");
    assert_eq!(
        payload_b64,
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    );
    assert_eq!(
        b64_encode(&A1_KEY),
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
    );
    let signing_input = format!("{header_b64}.{payload_b64}");
    let compact = format!("{signing_input}.{}", b64_encode(&A1_SIGNATURE));
    assert_eq!(
        &compact[signing_input.len() + 1..],
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    );

    // The HMAC layer computes the RFC's signature over its signing input.
    let mac = hmac_key(&A1_KEY).unwrap();
    assert_eq!(hmac_tag(&mac, signing_input.as_bytes()), A1_SIGNATURE);

    // The JWS signature check Tessera uses (the 64-byte key is a valid
    // signing key) accepts the RFC's compact serialisation...
    let key = SigningKey::new(&A1_KEY, 0).unwrap();
    assert_eq!(key.signature(signing_input.as_bytes()), A1_SIGNATURE);
    let split = split_token(compact.as_bytes()).unwrap();
    assert_eq!(split.signing_input, signing_input.as_bytes());
    assert!(signature_valid(&key, &split));
    // ...and refuses it after any one-bit change of the signing input or the
    // signature, or under another key.
    for i in 0..compact.len() {
        if compact.as_bytes()[i] == b'.' {
            continue;
        }
        let mut bad = compact.clone().into_bytes();
        bad[i] ^= 0x01;
        if let Some(t) = split_token(&bad) {
            assert!(!signature_valid(&key, &t), "bit flip at {i} accepted");
        }
    }
    let mut other = A1_KEY;
    other[63] ^= 1;
    assert!(!signature_valid(
        &SigningKey::new(&other, 0).unwrap(),
        &split
    ));
    // But it is not a Tessera access token: its header is not the key's.
    assert_ne!(split.header, key.header_b64.as_bytes());
}

#[derive(serde::Deserialize)]
struct WycheproofFile {
    algorithm: String,
    #[serde(rename = "numberOfTests")]
    number_of_tests: usize,
    #[serde(rename = "testGroups")]
    test_groups: Vec<WycheproofGroup>,
}

#[derive(serde::Deserialize)]
struct WycheproofGroup {
    #[serde(rename = "keySize")]
    key_size: usize,
    #[serde(rename = "tagSize")]
    tag_size: usize,
    tests: Vec<WycheproofTest>,
}

#[derive(serde::Deserialize)]
struct WycheproofTest {
    #[serde(rename = "tcId")]
    tc_id: u32,
    key: String,
    msg: String,
    tag: String,
    result: String,
}

#[test]
fn wycheproof_hmac_sha256_vectors_all_pass() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/hmac_sha256_test.json"
    );
    let text = std::fs::read_to_string(path).expect("tests/data/hmac_sha256_test.json");
    let file: WycheproofFile = serde_json::from_str(&text).expect("Wycheproof JSON");
    assert_eq!(file.algorithm, "HMACSHA256");

    let (mut run, mut valid, mut invalid, mut truncated) = (0usize, 0usize, 0usize, 0usize);
    for group in &file.test_groups {
        for t in &group.tests {
            let key = unhex(&t.key);
            let msg = unhex(&t.msg);
            let tag = unhex(&t.tag);
            assert_eq!(key.len() * 8, group.key_size, "tc {}", t.tc_id);
            assert_eq!(tag.len() * 8, group.tag_size, "tc {}", t.tc_id);
            let full = hmac_tag(&hmac_key(&key).expect("HMAC takes any key"), &msg);
            // Verification of a (possibly truncated) tag: the leading bytes
            // of the full MAC, compared in constant time.
            let accepted = ct_eq(&full[..tag.len()], &tag);
            let expected = match t.result.as_str() {
                "valid" => true,
                "invalid" => false,
                other => panic!("tc {}: unexpected result {other:?}", t.tc_id),
            };
            assert_eq!(accepted, expected, "tc {} ({:?})", t.tc_id, t.result);
            if tag.len() == 32 && key.len() >= MIN_SIGNING_KEY_LEN {
                // Full-length tags under keys Tessera would accept also go
                // through the JWS check Tessera uses on access tokens.
                let sk = SigningKey::new(&key, 0).unwrap();
                assert_eq!(sk.signature(&msg) == tag.as_slice(), expected);
            }
            run += 1;
            if expected {
                valid += 1;
            } else {
                invalid += 1;
            }
            if tag.len() < 32 {
                truncated += 1;
            }
        }
    }
    eprintln!(
        "wycheproof hmac_sha256: {run} vectors run ({valid} valid, {invalid} invalid, {truncated} with truncated tags)"
    );
    assert_eq!(run, file.number_of_tests, "every vector in the file ran");
    assert_eq!(run, 174);
    assert_eq!((valid, invalid, truncated), (66, 108, 87));
}
