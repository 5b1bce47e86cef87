//! Taking access tokens apart and making them by hand, for tests that must
//! show what the core refuses: a token is `header.claims.signature`, each
//! segment unpadded base64url, the signature an HMAC-SHA256 of
//! `header.claims`.
//!
//! Header edits work on the header's *text*, so that everything but the
//! one change stays byte for byte as the server wrote it (a re-serialised
//! header could differ in field order or spacing, and a refusal could then
//! be due to that).
//!
//! Everything here panics on input that is not what it says: the tests
//! hand it tokens the server made.
//!
//! The core's own unit tests (`crates/tessera/src/tests_*.rs`) do not use
//! this: a unit test of `tessera` cannot depend on this crate (the
//! dev-dependency cycle would link a second copy of the core, whose types
//! are not the unit tests' ones), so they sign with the core's private
//! helpers. Its integration tests and doctests can.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// Unpadded base64url of `bytes`: one segment.
pub fn b64(bytes: &(impl AsRef<[u8]> + ?Sized)) -> String {
    URL_SAFE_NO_PAD.encode(bytes.as_ref())
}

/// The bytes of an unpadded base64url segment.
pub fn unb64(segment: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .unwrap_or_else(|e| panic!("not unpadded base64url ({e}): {segment:?}"))
}

/// The text of a segment (UTF-8).
pub fn decode_text(segment: &str) -> String {
    String::from_utf8(unb64(segment)).expect("a UTF-8 segment")
}

/// A segment's JSON.
pub fn decode_json(segment: &str) -> Value {
    serde_json::from_str(&decode_text(segment)).expect("a JSON segment")
}

/// The three segments of `token` (header, claims, signature), still
/// encoded. Panics unless there are exactly three.
pub fn segments(token: &str) -> (String, String, String) {
    let v: Vec<&str> = token.split('.').collect();
    assert_eq!(v.len(), 3, "a token has three segments: {token:?}");
    (v[0].to_owned(), v[1].to_owned(), v[2].to_owned())
}

/// The header's text.
pub fn header_text(token: &str) -> String {
    decode_text(&segments(token).0)
}

/// The claims' text.
pub fn claims_text(token: &str) -> String {
    decode_text(&segments(token).1)
}

/// HMAC-SHA256 of `input` under `key`.
pub fn hmac_sha256(key: &[u8], input: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(input);
    mac.finalize().into_bytes().into()
}

/// `header.claims.signature` with the signature computed under `key`: the
/// two segments go in as they are (encoded, or anything a test wants
/// signed).
pub fn sign(key: &[u8], header_b64: &str, claims_b64: &str) -> String {
    let input = format!("{header_b64}.{claims_b64}");
    let sig = b64(&hmac_sha256(key, input.as_bytes()));
    format!("{input}.{sig}")
}

/// A token from a header's and claims' text and a signature segment as is
/// (for tokens that need no valid signature).
pub fn token(header_text: &str, claims_text: &str, signature: &str) -> String {
    format!("{}.{}.{signature}", b64(header_text), b64(claims_text))
}

/// The `"name":"…"` text of a string field in a header's text, if there.
fn string_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\":\"");
    let start = text.find(&key)?;
    let len = text[start + key.len()..].find('"')?;
    Some(&text[start..start + key.len() + len + 1])
}

/// The header segment with string field `name` set to `value` (put in as
/// is, between the quotes: no escaping), every other byte kept.
pub fn replace_header_field(header_b64: &str, name: &str, value: &str) -> String {
    let text = decode_text(header_b64);
    let field = string_field(&text, name)
        .unwrap_or_else(|| panic!("no string field {name:?} in the header {text}"));
    b64(&text.replacen(field, &format!("\"{name}\":\"{value}\""), 1))
}

/// The header segment without string field `name` (nor the comma that
/// joined it to the field before or after).
pub fn remove_header_field(header_b64: &str, name: &str) -> String {
    let text = decode_text(header_b64);
    let field = string_field(&text, name)
        .unwrap_or_else(|| panic!("no string field {name:?} in the header {text}"));
    let joined = [format!(",{field}"), format!("{field},"), field.to_owned()]
        .into_iter()
        .find(|f| text.contains(f.as_str()))
        .expect("the field is there");
    b64(&text.replacen(&joined, "", 1))
}

/// The header segment with `field` (`"name":value`, as JSON text) added as
/// its last field.
pub fn add_header_field(header_b64: &str, field: &str) -> String {
    let text = decode_text(header_b64);
    let open = text
        .strip_suffix('}')
        .unwrap_or_else(|| panic!("the header is not an object: {text}"));
    b64(&format!("{open},{field}}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = r#"{"alg":"HS256","typ":"JWT","kid":"d-1"}"#;

    #[test]
    fn signs_as_rfc7515_a1() {
        // RFC 7515, appendix A.1: the HS256 example.
        let key = unb64(
            "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
        );
        let header = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9";
        let claims = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let t = sign(&key, header, claims);
        assert_eq!(
            segments(&t).2,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
        assert_eq!(decode_json(header)["alg"], "HS256");
    }

    #[test]
    fn header_edits_change_one_thing() {
        let h = b64(HEADER);
        assert_eq!(
            decode_text(&replace_header_field(&h, "alg", "none")),
            r#"{"alg":"none","typ":"JWT","kid":"d-1"}"#
        );
        assert_eq!(
            decode_text(&remove_header_field(&h, "kid")),
            r#"{"alg":"HS256","typ":"JWT"}"#
        );
        assert_eq!(
            decode_text(&remove_header_field(&h, "alg")),
            r#"{"typ":"JWT","kid":"d-1"}"#
        );
        assert_eq!(
            decode_text(&add_header_field(&h, r#""jku":"x""#)),
            r#"{"alg":"HS256","typ":"JWT","kid":"d-1","jku":"x"}"#
        );
        let t = token(HEADER, "{}", "");
        assert_eq!(header_text(&t), HEADER);
        assert_eq!(claims_text(&t), "{}");
    }
}
