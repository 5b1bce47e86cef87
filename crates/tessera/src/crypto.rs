//! Small cryptographic helpers: randomness, hashes, constant-time equality,
//! base64url.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Fills `buf` from the operating system's CSPRNG. Every key and token in
/// Tessera comes from here.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::getrandom(buf).map_err(|e| {
        Error::internal_from("the operating system's random number generator failed", e)
    })
}

/// `N` random bytes from the OS CSPRNG.
pub(crate) fn random_array<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    fill_random(&mut out)?;
    Ok(out)
}

/// 32 random bytes as base64url: anti-CSRF and id refresh tokens.
pub(crate) fn random_token() -> Result<String> {
    Ok(b64_encode(&random_array::<32>()?))
}

/// A random session handle in UUID v4 form (122 random bits).
pub(crate) fn random_handle() -> Result<String> {
    let mut b = random_array::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// SHA-256 as lowercase hex: `H1(t) = sha256_hex(t)`, `H2(t) = H1(H1(t))`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Constant-time equality. Used for every comparison that involves a secret
/// (signatures, anti-CSRF tokens, refresh-token hashes) so that response
/// timing reveals nothing about how many leading bytes matched.
///
/// Why this is constant-time: the length check reveals only the lengths,
/// which are public (a signature is always 43 characters, a hash 64). The
/// contents are XORed eight bytes at a time and ORed into one accumulator,
/// with no branch and no early exit that depends on the data, so every
/// byte is read whatever the others hold; the accumulator goes through
/// `black_box` before the single comparison, so the optimiser cannot
/// reason about it and turn the loop into an early-exit comparison. This is
/// the construction of `subtle`'s `ct_eq`, done a word at a time instead of
/// a byte at a time (for the 32- and 43-byte comparisons of `get_session`,
/// ~900 instructions together with `subtle`, ~90 with this).
///
/// Never inlined, so that `scripts/ct-check.sh` can count the instructions
/// spent in it with callgrind (`--toggle-collect`); the call costs a few
/// cycles. In debug builds every call also emits a TRACE event (target
/// `tessera::ct_eq`, the caller's source location and the length, never the
/// contents): the security tests count these to prove that each secret
/// comparison of a flow goes through here. Release builds compile it out.
#[inline(never)]
#[cfg_attr(debug_assertions, track_caller)]
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    #[cfg(debug_assertions)]
    {
        let site = std::panic::Location::caller();
        tracing::trace!(
            target: "tessera::ct_eq",
            file = site.file(),
            line = site.line(),
            len = a.len(),
            "constant-time comparison"
        );
    }
    if a.len() != b.len() {
        return false;
    }
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ta, tb) = (wa.remainder(), wb.remainder());
    let word = |c: &[u8]| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8]));
    let mut diff = wa
        .zip(wb)
        .fold(0u64, |acc, (x, y)| acc | (word(x) ^ word(y)));
    diff |= ta
        .iter()
        .zip(tb)
        .fold(0u64, |acc, (x, y)| acc | u64::from(x ^ y));
    std::hint::black_box(diff) == 0
}

pub(crate) fn b64_encode(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub(crate) fn b64_decode(data: &[u8]) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn handles_look_like_uuid_v4_and_differ() {
        let a = random_handle().unwrap();
        let b = random_handle().unwrap();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, b);
    }

    #[test]
    fn ct_eq_compares_length_and_content() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
        // Every length around the word size, a difference in every position
        // and every bit.
        for len in 0..40usize {
            let a: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            assert!(ct_eq(&a, &a.clone()));
            for i in 0..len {
                for bit in 0..8 {
                    let mut b = a.clone();
                    b[i] ^= 1 << bit;
                    assert!(!ct_eq(&a, &b), "len {len} byte {i} bit {bit}");
                }
            }
        }
    }
}
