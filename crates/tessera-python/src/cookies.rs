//! The session cookies read from the raw `Cookie` header with exactly the
//! values Django's `request.COOKIES` would give, without building that dict.
//!
//! Django (`django.http.cookie.parse_cookie`, used by `WSGIRequest` and
//! `ASGIRequest` for `COOKIES`) splits the header at every `;`; a chunk with
//! an `=` is split at its first one into name and value, a chunk without one
//! is a value with an empty name; both are stripped with Python's
//! `str.strip()`; a chunk whose name and value are both empty is skipped;
//! the value is unquoted with `http.cookies._unquote`; a later cookie of the
//! same name replaces an earlier one. [`parse`] does the same for the
//! headers where that is simple to get exactly right, and declines the
//! rest: a header with a byte outside printable ASCII (WSGI decodes the
//! header as Latin-1 and Django re-decodes it as UTF-8 with replacement, so
//! values can change) or with a `"` (the quoted form, which `_unquote`
//! rewrites). The binding then reads `request.COOKIES` as before.
//! `tests/test_cookie_fast_path.py` compares the two on a corpus of hostile
//! headers.

/// Python's `str.strip()` with no argument, for ASCII: the whitespace
/// characters `\t \n \v \f \r`, the separators `\x1c`–`\x1f` and space.
fn is_python_whitespace(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x1c..=0x1f | b' ')
}

fn strip(s: &str) -> &str {
    let bytes = s.as_bytes();
    let start = bytes
        .iter()
        .position(|b| !is_python_whitespace(*b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_python_whitespace(*b))
        .map_or(start, |i| i + 1);
    // Only ASCII bytes are stripped, so both ends are char boundaries.
    &s[start..end.max(start)]
}

/// Whether [`parse`] gives Django's answer for `header`: only bytes from
/// `\t`..=`~` (tab, controls below space that Python treats specially are
/// handled by [`strip`]), and no `"`.
fn is_simple(header: &str) -> bool {
    header.bytes().all(|b| b < 0x7f && b != b'"')
}

/// The values of the cookies `names` in `header`, as Django's
/// `parse_cookie(header).get(name)` gives them; `None` if `header` is one
/// [`parse`] does not handle (read `request.COOKIES` instead).
pub(crate) fn parse<'h, const N: usize>(
    header: &'h str,
    names: [&str; N],
) -> Option<[Option<&'h str>; N]> {
    if !is_simple(header) {
        return None;
    }
    let mut found = [None; N];
    for chunk in header.split(';') {
        let (name, value) = match chunk.split_once('=') {
            Some((name, value)) => (strip(name), strip(value)),
            // A chunk without `=` is a value with an empty name.
            None => ("", strip(chunk)),
        };
        if name.is_empty() && value.is_empty() {
            continue;
        }
        for (slot, wanted) in found.iter_mut().zip(names) {
            if name == wanted {
                // The last one wins, as in Django's dict.
                *slot = Some(value);
            }
        }
    }
    Some(found)
}

/// For tests (`tests/test_cookie_fast_path.py`): [`parse`] of `header` for
/// `names`, as a list of values, or `None` when the fast path declines.
#[pyo3::pyfunction]
pub(crate) fn _cookie_values(header: &str, names: Vec<String>) -> Option<Vec<Option<String>>> {
    let mut out = Vec::with_capacity(names.len());
    for name in &names {
        let [value] = parse(header, [name.as_str()])?;
        out.push(value.map(str::to_owned));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_strips_and_keeps_the_last() {
        let h =
            " a=1 ; sAccessToken = x.y.z ;b; sAccessToken=second;\x1csIdRefreshToken=\x1f id \t";
        let [access, id, missing] = parse(h, ["sAccessToken", "sIdRefreshToken", "c"]).unwrap();
        assert_eq!(access, Some("second"));
        assert_eq!(id, Some("id"));
        assert_eq!(missing, None);
    }

    #[test]
    fn splits_at_the_first_equals_sign_only() {
        let [v] = parse("sAccessToken==a=b=", ["sAccessToken"]).unwrap();
        assert_eq!(v, Some("=a=b="));
        let [v] = parse("sAccessToken=", ["sAccessToken"]).unwrap();
        assert_eq!(v, Some(""));
    }

    #[test]
    fn declines_quotes_and_non_ascii() {
        assert!(parse("sAccessToken=\"x\"", ["sAccessToken"]).is_none());
        assert!(parse("sAccessToken=é", ["sAccessToken"]).is_none());
        assert!(parse("a=\u{7f}", ["sAccessToken"]).is_none());
    }
}
