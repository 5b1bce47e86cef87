//! The access token (a compact HS256 JWT) and the refresh token (an
//! AEAD-sealed envelope).
//!
//! # Access token
//!
//! `base64url(header) . base64url(claims) . base64url(HMAC-SHA256)`. The
//! header is fixed per key: `{"alg":"HS256","typ":"JWT","kid":"<id>"}`.
//! Verification compares the token's header segment byte for byte with the
//! header of a key we hold, so the algorithm is fixed by the key and never
//! read from the token (`alg: none`, `RS256`, … simply match no key).
//!
//! # Refresh token
//!
//! XChaCha20-Poly1305 under the refresh-token key kept in the database, with a
//! random 192-bit nonce. The sealed plaintext holds 256 random bits, the
//! session handle, the user id and the parent token's `H1` (if any), so the
//! server can recover them and a client can neither read nor forge them.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::Sha256;

use crate::crypto::{b64_decode, b64_encode, ct_eq, hex, random_array, sha256_hex};
use crate::error::Result;
use crate::user_id::UserId;

/// Tokens longer than this are refused before any work (browsers cap a cookie
/// at about 4 KiB anyway).
pub const MAX_TOKEN_LEN: usize = 8192;

/// Shortest access-token signing key accepted: 256 bits. Keys Tessera makes
/// are exactly this long; a user-supplied key shorter than this is refused
/// (RFC 7518 §3.2: an HS256 key must be at least as long as the hash).
pub(crate) const MIN_SIGNING_KEY_LEN: usize = 32;

/// Longest header segment [`header_kid`] decodes. Tessera's own header is 68
/// characters; anything much longer cannot name one of our keys.
pub(crate) const MAX_HEADER_B64_LEN: usize = 128;

/// An access-token signing key with its precomputed header: an HS256
/// secret (with its HMAC state) or an EdDSA, ES256 or RS256 key pair (with
/// its parsed public key and its JWK).
pub struct SigningKey {
    /// The token header for this key, base64url (`{"alg":…,"typ":"JWT","kid":…}`).
    pub header_b64: String,
    material: Material,
    pub(crate) created_at_ms: i64,
}

/// The key itself. Never shown by `Debug`.
enum Material {
    Hs256 {
        mac: Hmac<Sha256>,
        /// The raw key, kept only to recognise an unchanged user-supplied key.
        raw: Vec<u8>,
    },
    Asymmetric(crate::jwk::KeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .field("header_b64", &self.header_b64)
            .field("created_at_ms", &self.created_at_ms)
            .finish_non_exhaustive()
    }
}

/// The header segment for a key: `{"alg":"<alg>","typ":"JWT","kid":"<kid>"}`.
fn header_for(alg: &str, kid: &str) -> String {
    b64_encode(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{kid}"}}"#).as_bytes())
}

/// A key id: 16 hex characters of SHA-256 over a fixed prefix and the key
/// (the secret of an HS256 key, the public key of a key pair). A hash of a
/// 256-bit secret says nothing about the secret.
pub(crate) fn key_id(key_bytes: &[u8]) -> String {
    let mut kid_input = b"tessera key id:".to_vec();
    kid_input.extend_from_slice(key_bytes);
    sha256_hex(&kid_input)[..16].to_owned()
}

impl SigningKey {
    /// An HS256 key; `None` for a key shorter than [`MIN_SIGNING_KEY_LEN`].
    pub fn new(raw: &[u8], created_at_ms: i64) -> Option<Self> {
        if raw.len() < MIN_SIGNING_KEY_LEN {
            return None;
        }
        Some(SigningKey {
            header_b64: header_for("HS256", &key_id(raw)),
            material: Material::Hs256 {
                mac: hmac_key(raw)?,
                raw: raw.to_vec(),
            },
            created_at_ms,
        })
    }

    /// A key as the database stores it: an asymmetric key in its
    /// `tessera:v1:<alg>:<PKCS#8>` form ([`crate::jwk::KeyPair::encode`]),
    /// anything else an HS256 secret. `None` if it is neither usable.
    pub fn from_stored(value: &[u8], created_at_ms: i64) -> Option<Self> {
        if value.starts_with(crate::jwk::STORED_PREFIX.as_bytes()) {
            let pair = crate::jwk::KeyPair::decode(value)?;
            return Some(SigningKey {
                header_b64: header_for(pair.algorithm().jws_name(), pair.kid()),
                material: Material::Asymmetric(pair),
                created_at_ms,
            });
        }
        Self::new(value, created_at_ms)
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> crate::AccessTokenAlgorithm {
        match &self.material {
            Material::Hs256 { .. } => crate::AccessTokenAlgorithm::Hs256,
            Material::Asymmetric(p) => p.algorithm(),
        }
    }

    /// The key pair, for an asymmetric key.
    pub(crate) fn key_pair(&self) -> Option<&crate::jwk::KeyPair> {
        match &self.material {
            Material::Hs256 { .. } => None,
            Material::Asymmetric(p) => Some(p),
        }
    }

    pub(crate) fn same_raw(&self, raw: &[u8]) -> bool {
        match &self.material {
            Material::Hs256 { raw: own, .. } => ct_eq(own, raw),
            Material::Asymmetric(_) => false,
        }
    }

    /// The HMAC of an HS256 key (all zeros for a key pair: never used so,
    /// see [`signature_valid`] and [`sign_access_token`]).
    #[cfg(test)]
    fn signature(&self, signing_input: &[u8]) -> [u8; 32] {
        match &self.material {
            Material::Hs256 { mac, .. } => hmac_tag(mac, signing_input),
            Material::Asymmetric(_) => [0; 32],
        }
    }
}

/// The HMAC-SHA256 state for a key of any length (the length policy is
/// [`SigningKey::new`]'s); the layer the RFC 7515 and Wycheproof vectors test.
pub(crate) fn hmac_key(raw: &[u8]) -> Option<Hmac<Sha256>> {
    <Hmac<Sha256> as Mac>::new_from_slice(raw).ok()
}

/// HMAC-SHA256 of `input` under a prepared key.
pub(crate) fn hmac_tag(key: &Hmac<Sha256>, input: &[u8]) -> [u8; 32] {
    let mut mac = key.clone();
    mac.update(input);
    mac.finalize().into_bytes().into()
}

/// Claims written into a new access token.
#[derive(Serialize)]
pub struct ClaimsOut<'a> {
    /// Session handle.
    pub sh: &'a str,
    /// User id.
    pub uid: &'a UserId,
    /// `H1` of the refresh token the access token was issued with.
    pub rt: &'a str,
    /// `H1` of the parent refresh token, until the new one is promoted.
    pub prt: Option<&'a str>,
    /// Anti-CSRF token.
    pub csrf: Option<&'a str>,
    /// The standard claims of asymmetric mode (absent in HS256 mode, whose
    /// tokens keep the reference library's claims byte for byte).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub std: Option<StandardClaims<'a>>,
    /// JWT payload (JSON).
    pub pld: &'a RawValue,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
}

/// The registered claims (RFC 7519 §4.1) an asymmetrically signed token
/// carries for other verifiers, written between `csrf` and `pld`
/// (`iat` and `exp` are written in every mode).
#[derive(Serialize, Clone, Copy)]
pub struct StandardClaims<'a> {
    /// Subject: the user id as a string.
    pub sub: &'a str,
    /// Issuer.
    pub iss: &'a str,
    /// Audience, if configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<&'a str>,
}

/// Claims read from a verified access token.
#[derive(Deserialize)]
pub struct ClaimsIn<'a> {
    /// Session handle.
    #[serde(borrow)]
    pub sh: &'a str,
    /// User id.
    pub uid: UserId,
    /// `H1` of the refresh token the access token was issued with.
    #[serde(borrow)]
    pub rt: &'a str,
    /// `H1` of the parent refresh token, until the new one is promoted.
    #[serde(borrow)]
    pub prt: Option<&'a str>,
    /// Anti-CSRF token.
    #[serde(borrow)]
    pub csrf: Option<&'a str>,
    /// JWT payload: JSON text. Read by `serde_json` it is validated; read
    /// by [`parse_claims_fast`] (the layout Tessera writes) it is the span
    /// the layout leaves for it, not validated again (see there).
    #[serde(borrow, deserialize_with = "raw_json_text")]
    pub pld: &'a str,
    /// Issued at, seconds since the Unix epoch.
    #[allow(dead_code)]
    pub iat: i64,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
}

/// Signs claims into a compact JWT.
pub fn sign_access_token(key: &SigningKey, claims: &ClaimsOut<'_>) -> Result<String> {
    let json = serde_json::to_vec(claims)
        .map_err(|e| crate::Error::internal_from("could not serialise access-token claims", e))?;
    let mut token = String::with_capacity(key.header_b64.len() + json.len() * 4 / 3 + 48);
    token.push_str(&key.header_b64);
    token.push('.');
    token.push_str(&b64_encode(&json));
    let sig = match &key.material {
        Material::Hs256 { mac, .. } => b64_encode(&hmac_tag(mac, token.as_bytes())),
        Material::Asymmetric(pair) => b64_encode(&pair.sign(token.as_bytes())?),
    };
    token.push('.');
    token.push_str(&sig);
    Ok(token)
}

/// A token split into its three segments; nothing verified yet.
pub(crate) struct SplitToken<'a> {
    pub(crate) header: &'a [u8],
    pub(crate) signing_input: &'a [u8],
    pub(crate) claims: &'a [u8],
    pub(crate) signature: &'a [u8],
}

/// Splits a compact JWT; `None` if it is not three non-empty segments within
/// the size limit.
pub(crate) fn split_token(token: &[u8]) -> Option<SplitToken<'_>> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let first = memchr::memchr(b'.', token)?;
    let last = memchr::memrchr(b'.', token)?;
    if first == last || first == 0 || last + 1 == token.len() || last == first + 1 {
        return None;
    }
    Some(SplitToken {
        header: &token[..first],
        signing_input: &token[..last],
        claims: &token[first + 1..last],
        signature: &token[last + 1..],
    })
}

/// Checks the signature of a token whose header matched `key`.
///
/// The signature we compute is encoded and compared with the token's text:
/// unpadded base64url has exactly one encoding per byte string (the crate
/// rejects non-zero unused bits when decoding), so "the text equals the
/// encoding of our MAC" accepts exactly the tokens that "the text decodes to
/// our MAC" accepts, and encoding 32 bytes is cheaper than validating and
/// decoding 43 characters.
pub(crate) fn signature_valid(key: &SigningKey, t: &SplitToken<'_>) -> bool {
    let mac = match &key.material {
        Material::Hs256 { mac, .. } => mac,
        // A public-key signature is no secret: decoded and checked by the
        // key's own verifier (which fixes the algorithm).
        Material::Asymmetric(pair) => {
            return decode_b64url(t.signature)
                .is_some_and(|sig| pair.verify(t.signing_input, &sig));
        }
    };
    // 32 bytes are 43 base64url characters without padding.
    if t.signature.len() != 43 {
        return false;
    }
    let mut buf = [0u8; 43];
    let expected = base64_simd::URL_SAFE_NO_PAD.encode(
        &hmac_tag(mac, t.signing_input),
        base64_simd::Out::from_slice(&mut buf),
    );
    // Constant time: the expected signature is a secret until it is sent.
    ct_eq(expected, t.signature)
}

/// Decodes the claims segment of a verified token into its text; `None`
/// unless it is unpadded base64url of UTF-8 (RFC 7519 §7.2: the claims are
/// a UTF-8 JSON object; tokens Tessera writes always are).
///
/// The base64url part is [`decode_b64url`].
pub(crate) fn decode_claims(claims_b64: &[u8]) -> Option<String> {
    String::from_utf8(decode_b64url(claims_b64)?).ok()
}

/// Decodes unpadded base64url.
///
/// With `base64-simd` (SSSE3/AVX2 chosen at run time), which is exactly as
/// strict as the `base64` crate's `URL_SAFE_NO_PAD` used everywhere else:
/// the base64url alphabet only, no padding, no length `4n + 1`, zero unused
/// bits in the last character (the unit tests compare the two). The claims
/// (~360 characters) are the largest thing `get_session` decodes, and the
/// scalar decoder spent ~3,000 instructions on them.
pub(crate) fn decode_b64url(claims_b64: &[u8]) -> Option<Vec<u8>> {
    base64_simd::URL_SAFE_NO_PAD.decode_to_vec(claims_b64).ok()
}

/// One JSON value, validated, as its text.
fn raw_json_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'de str, D::Error> {
    <&RawValue as Deserialize>::deserialize(d).map(RawValue::get)
}

/// Parses decoded claims. Same result as `serde_json::from_str`, faster
/// for the claims this module writes. Each claim must have its JSON type
/// (strings for `sh`, `rt`, and `prt`/`csrf` or null; an integer or a
/// string for `uid`; integers for `iat` and `exp`): `"exp":"1700000000"` or
/// `"exp":1.7e9` is refused.
///
/// `get_session` parses the claims of every request. [`sign_access_token`]
/// always writes them in one layout: the fields of [`ClaimsOut`] in order, no
/// whitespace, plain strings for the handle and hashes. [`parse_claims_fast`]
/// reads exactly that layout and accepts an input only when `serde_json`
/// would read it the same way; anything else (escapes, other field orders,
/// whitespace, unusual numbers: tokens Tessera never writes) goes to
/// `serde_json`, so the result is the same for every input whose payload
/// span is valid JSON (the unit tests compare the two on thousands of
/// mutations). The one difference, by design: in Tessera's layout the
/// payload is not validated again, see [`parse_claims_fast`].
pub(crate) fn parse_claims(text: &str) -> Option<ClaimsIn<'_>> {
    parse_claims_fast(text).or_else(|| serde_json::from_str(text).ok())
}

/// The canonical-layout reader behind [`parse_claims`]; `None` = "not in
/// the canonical layout", never "invalid". Takes text, so the strings it
/// returns need no UTF-8 check of their own.
pub fn parse_claims_fast(text: &str) -> Option<ClaimsIn<'_>> {
    // The JWT payload is arbitrary JSON, so it is located from the end: the
    // claims finish with `,"iat":<digits>,"exp":<digits>}`.
    let (rest, exp) = strip_uint_suffix(text.strip_suffix('}')?)?;
    let rest = rest.strip_suffix(",\"exp\":")?;
    let (rest, iat) = strip_uint_suffix(rest)?;
    let rest = rest.strip_suffix(",\"iat\":")?;

    let mut r = Reader { s: rest };
    r.lit("{\"sh\":")?;
    let sh = r.plain_str()?;
    r.lit(",\"uid\":")?;
    let uid = if r.s.starts_with('"') {
        UserId::Str(r.plain_str()?.to_owned())
    } else {
        UserId::Int(r.int()?)
    };
    r.lit(",\"rt\":")?;
    let rt = r.plain_str()?;
    r.lit(",\"prt\":")?;
    let prt = r.null_or_plain_str()?;
    r.lit(",\"csrf\":")?;
    let csrf = r.null_or_plain_str()?;
    // Asymmetric mode's standard claims (ignored here, as by serde_json):
    // `sub` and `iss`, then `aud` if configured, all plain strings.
    if r.lit(",\"sub\":").is_some() {
        r.plain_str()?;
        r.lit(",\"iss\":")?;
        r.plain_str()?;
        if r.lit(",\"aud\":").is_some() {
            r.plain_str()?;
        }
    }
    r.lit(",\"pld\":")?;
    // What is left is the payload, which is not parsed here. Claims in this
    // layout come from a token whose signature has just been verified, and
    // a key holder writes this layout only through `sign_access_token`,
    // whose payload is a `RawValue`: valid JSON by construction. Validating
    // it again cost ~1,000 instructions on every request (a sixth of what
    // `get_session` adds to the HMAC) and protects only against a holder of
    // the signing key, who could sign anything anyway. The text is parsed
    // where it is used: `Session::jwt_payload()` parses it on first call,
    // and the promotion that re-signs it validates it first (`get_session`).
    let pld = r.s;
    let (first, last) = (*pld.as_bytes().first()?, *pld.as_bytes().last()?);
    if first.is_ascii_whitespace() || last.is_ascii_whitespace() {
        return None;
    }
    Some(ClaimsIn {
        sh,
        uid,
        rt,
        prt,
        csrf,
        pld,
        iat,
        exp,
    })
}

/// Splits trailing decimal digits off `s` (1 to 18 of them, no superfluous
/// leading zero), so the value fits an `i64` exactly as serde_json reads it.
fn strip_uint_suffix(s: &str) -> Option<(&str, i64)> {
    // Bytes, not chars: digits are ASCII, so the split is a char boundary.
    let digits = s.bytes().rev().take_while(u8::is_ascii_digit).count();
    let (rest, num) = s.split_at(s.len() - digits);
    Some((rest, parse_uint(num)?))
}

/// `1..=18` ASCII digits, no leading zero unless the number is `0`.
fn parse_uint(num: &str) -> Option<i64> {
    let num = num.as_bytes();
    if num.is_empty() || num.len() > 18 || (num.len() > 1 && num[0] == b'0') {
        return None;
    }
    Some(
        num.iter()
            .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0')),
    )
}

/// A cursor for [`parse_claims_fast`].
struct Reader<'a> {
    s: &'a str,
}

impl<'a> Reader<'a> {
    fn lit(&mut self, l: &str) -> Option<()> {
        self.s = self.s.strip_prefix(l)?;
        Some(())
    }

    /// A string without escapes or control characters, as serde_json
    /// borrows it.
    fn plain_str(&mut self) -> Option<&'a str> {
        self.lit("\"")?;
        let end = memchr::memchr(b'"', self.s.as_bytes())?;
        let s = &self.s[..end];
        // A fold rather than `any`: no early exit, so it vectorises.
        let special = s
            .bytes()
            .fold(false, |acc, c| acc | (c == b'\\') | (c < 0x20));
        if special {
            return None;
        }
        self.s = &self.s[end + 1..];
        Some(s)
    }

    fn null_or_plain_str(&mut self) -> Option<Option<&'a str>> {
        match self.s.strip_prefix("null") {
            Some(rest) => {
                self.s = rest;
                Some(None)
            }
            None => self.plain_str().map(Some),
        }
    }

    /// An integer: optional `-` (not before `0`), then what [`parse_uint`]
    /// accepts.
    fn int(&mut self) -> Option<i64> {
        let unsigned = self.s.strip_prefix('-');
        let digits_from = unsigned.unwrap_or(self.s);
        let digits = digits_from.bytes().take_while(u8::is_ascii_digit).count();
        let (num, rest) = digits_from.split_at(digits);
        if unsigned.is_some() && num.starts_with('0') {
            return None;
        }
        let v = parse_uint(num)?;
        self.s = rest;
        Some(if unsigned.is_some() { -v } else { v })
    }
}

/// Reads the key id out of a header segment; used only to decide whether an
/// unmatched header names a key this instance has not loaded yet.
///
/// The `kid` is untrusted input: the header segment is capped at
/// [`MAX_HEADER_B64_LEN`] characters before it is decoded, and only a
/// 16-character lowercase-hex `kid` (the form Tessera writes) is returned.
/// Keys are never looked up by `kid`: a token verifies only when its whole
/// header segment equals, byte for byte, the header of a key we hold.
pub(crate) fn header_kid(header_b64: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Header {
        alg: String,
        kid: String,
    }
    if header_b64.len() > MAX_HEADER_B64_LEN {
        return None;
    }
    let bytes = b64_decode(header_b64)?;
    let h: Header = serde_json::from_slice(&bytes).ok()?;
    let hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
    let ours = matches!(h.alg.as_str(), "HS256" | "EdDSA" | "ES256" | "RS256");
    (ours && h.kid.len() == 16 && h.kid.bytes().all(hex)).then_some(h.kid)
}

// ---------------------------------------------------------------------------
// Refresh token

const REFRESH_VERSION: u8 = 1;
const REFRESH_AAD: &[u8] = b"tessera refresh token v1";
const NONCE_LEN: usize = 24;
/// Longest refresh token accepted (base64 characters).
const MAX_REFRESH_LEN: usize = 2048;

/// The refresh-token sealing key. `Debug` shows nothing.
pub struct RefreshKey(XChaCha20Poly1305);

impl std::fmt::Debug for RefreshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshKey(<redacted>)")
    }
}

impl RefreshKey {
    /// `None` unless `raw` is 32 bytes.
    pub fn new(raw: &[u8]) -> Option<Self> {
        XChaCha20Poly1305::new_from_slice(raw).ok().map(RefreshKey)
    }
}

/// What a refresh token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshContents {
    /// The session the token belongs to.
    pub session_handle: String,
    /// The session's user.
    pub user_id: UserId,
    /// `H1` of the parent refresh token, as hex, if this token is a child.
    pub parent_hash_1: Option<String>,
}

/// Seals a new refresh token.
pub fn seal_refresh_token(
    key: &RefreshKey,
    session_handle: &str,
    user_id: &UserId,
    parent_hash_1: Option<&str>,
) -> Result<String> {
    let general = |m: &'static str| crate::Error::general(m);
    let uid = user_id.to_storage();
    if session_handle.len() > 255 {
        return Err(general("session handle too long"));
    }
    let mut plain = Vec::with_capacity(1 + 32 + 33 + 1 + session_handle.len() + uid.len());
    plain.push(REFRESH_VERSION);
    plain.extend_from_slice(&random_array::<32>()?);
    match parent_hash_1 {
        Some(p) => {
            let raw =
                decode_hex32(p).ok_or_else(|| general("parent hash is not 32 bytes of hex"))?;
            plain.push(1);
            plain.extend_from_slice(&raw);
        }
        None => plain.push(0),
    }
    plain.push(session_handle.len() as u8);
    plain.extend_from_slice(session_handle.as_bytes());
    plain.extend_from_slice(uid.as_bytes());
    let nonce = random_array::<NONCE_LEN>()?;
    let sealed = key
        .0
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: REFRESH_AAD,
            },
        )
        .map_err(|_| general("sealing the refresh token failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(b64_encode(&out))
}

/// Opens a refresh token; `None` for anything this server did not seal.
pub fn open_refresh_token(key: &RefreshKey, token: &[u8]) -> Option<RefreshContents> {
    if token.len() > MAX_REFRESH_LEN {
        return None;
    }
    let raw = b64_decode(token)?;
    if raw.len() < NONCE_LEN + 16 {
        return None;
    }
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    let plain = key
        .0
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: REFRESH_AAD,
            },
        )
        .ok()?;
    let (&version, rest) = plain.split_first()?;
    if version != REFRESH_VERSION || rest.len() < 33 {
        return None;
    }
    let rest = &rest[32..];
    let (&has_parent, mut rest) = rest.split_first()?;
    let parent_hash_1 = match has_parent {
        0 => None,
        1 => {
            let p = rest.get(..32)?;
            rest = &rest[32..];
            Some(hex(p))
        }
        _ => return None,
    };
    let (&hlen, rest) = rest.split_first()?;
    let handle = rest.get(..hlen as usize)?;
    let uid = std::str::from_utf8(&rest[hlen as usize..]).ok()?;
    Some(RefreshContents {
        session_handle: std::str::from_utf8(handle).ok()?.to_owned(),
        user_id: UserId::from_storage(uid)?,
        parent_hash_1,
    })
}

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let val = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (val(b[2 * i])? << 4) | val(b[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
#[path = "tests_security.rs"]
mod tests_security;

#[cfg(test)]
#[path = "tests_vectors.rs"]
mod tests_vectors;

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::new(&[7u8; 32], 0).unwrap()
    }

    #[test]
    fn access_token_round_trip_and_tamper() {
        let k = key();
        let pld = RawValue::from_string(r#"{"role":"admin"}"#.into()).unwrap();
        let uid = UserId::from(5);
        let t = sign_access_token(
            &k,
            &ClaimsOut {
                sh: "h",
                uid: &uid,
                rt: "r",
                prt: None,
                csrf: Some("c"),
                std: None,
                pld: &pld,
                iat: 1,
                exp: 2,
            },
        )
        .unwrap();
        let s = split_token(t.as_bytes()).unwrap();
        assert_eq!(s.header, k.header_b64.as_bytes());
        assert!(signature_valid(&k, &s));
        let other = SigningKey::new(&[8u8; 32], 0).unwrap();
        assert!(!signature_valid(&other, &s));
        assert_eq!(header_kid(s.header).unwrap().len(), 16);
        let buf = decode_claims(s.claims).unwrap();
        let c: ClaimsIn<'_> = serde_json::from_slice(buf.as_bytes()).unwrap();
        assert_eq!(c.uid, uid);
        assert_eq!(c.pld, r#"{"role":"admin"}"#);
        let mut bad = t.clone().into_bytes();
        let i = bad.len() - 5;
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        assert!(!signature_valid(&k, &split_token(&bad).unwrap()));
        // Any change to any character of the signature is refused,
        // including the non-canonical spellings of the last one.
        let sig_start = t.rfind('.').unwrap() + 1;
        for i in sig_start..t.len() {
            for c in b"AQgw-_Bb09".iter().copied() {
                let mut bad = t.clone().into_bytes();
                if bad[i] == c {
                    continue;
                }
                bad[i] = c;
                assert!(!signature_valid(&k, &split_token(&bad).unwrap()), "{i} {c}");
            }
        }
    }

    #[test]
    fn refresh_token_round_trip() {
        let k = RefreshKey::new(&[1u8; 32]).unwrap();
        let parent = sha256_hex(b"x");
        let t = seal_refresh_token(&k, "handle", &UserId::from("u"), Some(&parent)).unwrap();
        let c = open_refresh_token(&k, t.as_bytes()).unwrap();
        assert_eq!(c.session_handle, "handle");
        assert_eq!(c.user_id, UserId::from("u"));
        assert_eq!(c.parent_hash_1.as_deref(), Some(parent.as_str()));
        let other = RefreshKey::new(&[2u8; 32]).unwrap();
        assert!(open_refresh_token(&other, t.as_bytes()).is_none());
        assert!(open_refresh_token(&k, b"").is_none());
        assert!(open_refresh_token(&k, &t.as_bytes()[..t.len() - 2]).is_none());
        let t2 = seal_refresh_token(&k, "handle", &UserId::from("u"), Some(&parent)).unwrap();
        assert_ne!(t, t2, "two tokens of the same session differ");
    }

    /// `parse_claims` must give what serde_json gives for every UTF-8 input
    /// (claims that are not UTF-8 never reach it: `decode_claims` refuses
    /// them), except where the layout reader takes a payload span that is
    /// not one valid JSON value (it does not validate the payload; only a
    /// holder of the signing key can write such claims). Those are exactly
    /// the inputs where serde_json, given that span as the payload, refuses.
    fn same_as_serde(bytes: &[u8]) {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return;
        };
        let fast = parse_claims(text);
        if let Some(f) = parse_claims_fast(text) {
            if serde_json::from_str::<&RawValue>(f.pld).is_err() {
                return;
            }
        }
        let serde: Option<ClaimsIn<'_>> = serde_json::from_str(text).ok();
        let view = |c: &ClaimsIn<'_>| {
            (
                c.sh.to_owned(),
                c.uid.clone(),
                c.rt.to_owned(),
                c.prt.map(str::to_owned),
                c.csrf.map(str::to_owned),
                c.pld.to_owned(),
                c.iat,
                c.exp,
            )
        };
        assert_eq!(
            fast.as_ref().map(view),
            serde.as_ref().map(view),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }

    #[test]
    fn claims_fast_path_takes_what_tessera_writes() {
        let k = key();
        for (uid, prt, csrf, pld) in [
            (UserId::from(5), None, Some("c"), r#"{"role":"admin"}"#),
            (UserId::from(-12), Some("p"), None, "null"),
            (UserId::from("alice"), None, None, r#"[1,"x",{"a":null}]"#),
            (UserId::from("é\"q\\"), Some("p"), Some("c"), r#""text""#),
            (UserId::from(i64::MAX), None, Some("c"), "12.5e3"),
            (UserId::from(0), None, Some("c"), r#"{"iat":1,"exp":2}"#),
        ] {
            let pld = RawValue::from_string(pld.into()).unwrap();
            let t = sign_access_token(
                &k,
                &ClaimsOut {
                    sh: "0b3c-handle",
                    uid: &uid,
                    rt: "abcdef",
                    prt,
                    csrf,
                    std: None,
                    pld: &pld,
                    iat: 1_700_000_000,
                    exp: 1_700_003_600,
                },
            )
            .unwrap();
            let text = decode_claims(split_token(t.as_bytes()).unwrap().claims)
                .expect("Tessera writes UTF-8 claims");
            same_as_serde(text.as_bytes());
            // Plain ids take the fast path; ids with escapes or beyond 18
            // digits fall back to serde_json (and still agree, above).
            let plain =
                !matches!(&uid, UserId::Str(s) if s.contains('"')) && uid != UserId::from(i64::MAX);
            assert_eq!(parse_claims_fast(&text).is_some(), plain, "{uid:?}");
        }
    }

    #[test]
    fn claims_fast_path_agrees_with_serde_on_mutations() {
        let base = br#"{"sh":"h-1","uid":123,"rt":"ab","prt":null,"csrf":"c_-9","pld":{"a":[1,2]},"iat":1700000000,"exp":1700003600}"#;
        same_as_serde(base);
        assert!(parse_claims_fast(std::str::from_utf8(base).unwrap()).is_some());
        let bytes_to_try: &[u8] = b" \t\n\"\\{}[],:-+.0123456789eEnulxa\x00\x1f\x7f\xc3\xa9\xff";
        // Every single-byte replacement, insertion and deletion.
        for i in 0..=base.len() {
            if i < base.len() {
                let mut d = base.to_vec();
                d.remove(i);
                same_as_serde(&d);
            }
            for &b in bytes_to_try {
                if i < base.len() {
                    let mut m = base.to_vec();
                    m[i] = b;
                    same_as_serde(&m);
                }
                let mut ins = base.to_vec();
                ins.insert(i, b);
                same_as_serde(&ins);
            }
        }
        for s in [
            &br#"{"sh":"h","uid":-0,"rt":"r","prt":null,"csrf":null,"pld":1,"iat":1,"exp":2}"#[..],
            br#"{"sh":"h","uid":01,"rt":"r","prt":null,"csrf":null,"pld":1,"iat":1,"exp":2}"#,
            br#"{"sh":"h","uid":1,"rt":"r","prt":null,"csrf":null,"pld":1,"iat":01,"exp":2}"#,
            br#"{"sh":"h","uid":1,"rt":"r","prt":null,"csrf":null,"pld":1,"iat":1,"exp":9223372036854775807}"#,
            br#"{"sh":"h","uid":1,"rt":"r","prt":null,"csrf":null,"pld":1,"iat":1,"exp":2,"iat":3,"exp":4}"#,
            br#"{"sh":"h","uid":1,"rt":"r","prt":null,"csrf":null,"pld":1,"iat":1,"exp":2} "#,
            br#"{"sh":"h","uid":1,"rt":"r","prt":null,"csrf":null,"pld":1 ,"iat":1,"exp":2}"#,
            br#"{"sh":"h","uid":1,"rt":"r","prt":null,"csrf":null,"pld":1,"x":0,"iat":1,"exp":2}"#,
            br#"{"sh":"h","uid":1,"rt":"r","prt":null,"csrf":null,"pld":"a\"b","iat":1,"exp":2}"#,
            br#"{"sh":"h","uid":1,"rt":"r","prt":nul,"csrf":null,"pld":1,"iat":1,"exp":2}"#,
            br#"{"sh":"h\u0041","uid":1,"rt":"r","prt":null,"csrf":null,"pld":1,"iat":1,"exp":2}"#,
            // Not UTF-8: skipped by same_as_serde (decode_claims refuses
            // these before parsing; checked below).
            b"{\"x\":\"\xff\",\"sh\":\"h\",\"uid\":1,\"rt\":\"r\",\"prt\":null,\"csrf\":null,\"pld\":1,\"iat\":1,\"exp\":2}",
            b"{\"sh\":\"h\xff\",\"uid\":1,\"rt\":\"r\",\"prt\":null,\"csrf\":null,\"pld\":1,\"iat\":1,\"exp\":2}",
            b"{\"sh\":\"h\",\"uid\":1,\"rt\":\"r\",\"prt\":null,\"csrf\":null,\"pld\":\"\xc3\xa9\",\"iat\":1,\"exp\":2}",
        ] {
            same_as_serde(s);
        }
        // Not UTF-8, even in a field serde_json would ignore: refused
        // before parsing.
        let not_utf8 = b"{\"x\":\"\xff\",\"sh\":\"h\",\"uid\":1,\"rt\":\"r\",\"prt\":null,\"csrf\":null,\"pld\":1,\"iat\":1,\"exp\":2}";
        assert!(decode_claims(b64_encode(not_utf8).as_bytes()).is_none());
    }

    #[test]
    fn claims_decoding_is_exactly_the_base64_crate() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let decode = decode_b64url;
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let odd = b"=+/. \n\0\xff";
        for round in 0..50_000u64 {
            // Short inputs and SIMD-sized ones (the vector paths start at 16
            // and 32 characters).
            let len = (next() % if round % 2 == 0 { 40 } else { 600 }) as usize;
            let mut input: Vec<u8> = (0..len).map(|_| alphabet[(next() % 64) as usize]).collect();
            // A third of the inputs get a byte from outside the alphabet.
            if len > 0 && round % 3 == 0 {
                let i = (next() % len as u64) as usize;
                input[i] = odd[(next() % odd.len() as u64) as usize];
            }
            assert_eq!(
                decode(&input),
                URL_SAFE_NO_PAD.decode(&input).ok(),
                "{:?}",
                String::from_utf8_lossy(&input)
            );
        }
        // Round trips of every length, and the non-canonical last characters.
        for len in 0..600 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let enc = URL_SAFE_NO_PAD.encode(&data);
            assert_eq!(decode(enc.as_bytes()), Some(data));
        }
        for s in [
            "QR", "QQ", "QUI", "QUJ", "QUJD", "QUJDRB", "QUJDRA", "Q", "QUJDR", "QQ==", "QUI=",
        ] {
            assert_eq!(decode(s.as_bytes()), URL_SAFE_NO_PAD.decode(s).ok(), "{s}");
        }
    }

    /// A token in the format written before the `get_session` speed-up
    /// (computed independently: HMAC-SHA256 under `[7; 32]` with Python's
    /// `hmac`). It must still be written byte for byte and still verify, so
    /// no session is logged out by an upgrade.
    #[test]
    fn tokens_of_the_existing_format_still_verify() {
        const OLD: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjIwODgzYzYzZTQ0NGVjZDMifQ.\
            eyJzaCI6IjBiM2MtaGFuZGxlIiwidWlkIjo1LCJydCI6ImFiY2RlZiIsInBydCI6bnVsbCwiY3NyZiI6ImMiLCJwbGQiOnsicm9sZSI6ImFkbWluIn0sImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwfQ.\
            iyF4bVzl0A9dF4HtHC9m1ufuIE2Nj-S8dcBmmj4iCLA";
        let k = key();
        let pld = RawValue::from_string(r#"{"role":"admin"}"#.into()).unwrap();
        let written = sign_access_token(
            &k,
            &ClaimsOut {
                sh: "0b3c-handle",
                uid: &UserId::from(5),
                rt: "abcdef",
                prt: None,
                csrf: Some("c"),
                std: None,
                pld: &pld,
                iat: 1_700_000_000,
                exp: 1_700_003_600,
            },
        )
        .unwrap();
        assert_eq!(written, OLD);
        let t = split_token(OLD.as_bytes()).unwrap();
        assert_eq!(t.header, k.header_b64.as_bytes());
        assert!(signature_valid(&k, &t));
        let buf = decode_claims(t.claims).unwrap();
        let c = parse_claims_fast(std::str::from_utf8(buf.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            (c.sh, c.rt, c.prt, c.csrf),
            ("0b3c-handle", "abcdef", None, Some("c"))
        );
        assert_eq!(
            (c.uid, c.pld, c.exp),
            (UserId::from(5), r#"{"role":"admin"}"#, 1_700_003_600)
        );
    }

    #[test]
    fn split_rejects_shapes() {
        for t in [&b""[..], b"a.b", b".b.c", b"a.b.", b"a..c", b"abc"] {
            assert!(split_token(t).is_none(), "{t:?}");
        }
        assert!(split_token(&vec![b'a'; MAX_TOKEN_LEN + 1]).is_none());
    }
}
