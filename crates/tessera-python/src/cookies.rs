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
    // A fold without early exit: it vectorises (16 bytes per step instead
    // of one), and a header that is not simple is the rare case.
    header
        .bytes()
        .fold(true, |simple, b| simple & (b < 0x7f) & (b != b'"'))
}

/// What [`parse`] found: the values of the cookies asked for, and whether
/// one of them came twice with different values.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Parsed<'h, const N: usize> {
    /// `parse_cookie(header).get(name)` for each name: the last copy wins,
    /// as in Django's dict.
    pub(crate) values: [Option<&'h str>; N],
    /// Two copies of one of the names with different values (after
    /// Django's stripping): cookie tossing, refused by the core
    /// (`RequestSource::has_conflicting_cookies`). Judged with the same
    /// splitting as the values, so a copy counts exactly when Django's
    /// `COOKIES` would have let it replace the other.
    pub(crate) conflict: bool,
}

/// The values of the cookies `names` in `header`, as Django's
/// `parse_cookie(header).get(name)` gives them; `None` if `header` is one
/// [`parse`] does not handle (read `request.COOKIES` instead).
///
/// Runs on every Django request that checks a session: the `;` and `=` are
/// found with `memchr`'s vectorised search (the standard library's `str`
/// splitting walked the ~500-byte access token a word at a time), and the
/// conflict check rides on the same pass instead of a second scan.
pub(crate) fn parse<'h, const N: usize>(
    header: &'h str,
    names: [&str; N],
) -> Option<Parsed<'h, N>> {
    if !is_simple(header) {
        return None;
    }
    let mut found = Parsed {
        values: [None; N],
        conflict: false,
    };
    let bytes = header.as_bytes();
    let mut start = 0;
    loop {
        let end = memchr::memchr(b';', &bytes[start..]).map_or(bytes.len(), |i| start + i);
        // Only ASCII bytes are split at, so every slice is on char boundaries.
        let chunk = &header[start..end];
        let (name, value) = match memchr::memchr(b'=', chunk.as_bytes()) {
            Some(eq) => (strip(&chunk[..eq]), strip(&chunk[eq + 1..])),
            // A chunk without `=` is a value with an empty name.
            None => ("", strip(chunk)),
        };
        if !(name.is_empty() && value.is_empty()) {
            for (slot, wanted) in found.values.iter_mut().zip(names) {
                if name == wanted {
                    found.conflict |= slot.is_some_and(|seen| seen != value);
                    *slot = Some(value);
                }
            }
        }
        if end == bytes.len() {
            return Some(found);
        }
        start = end + 1;
    }
}

/// For tests (`tests/test_cookie_fast_path.py`): [`parse`] of `header` for
/// `names`, as a list of values, or `None` when the fast path declines.
#[pyo3::pyfunction]
pub(crate) fn _cookie_values(header: &str, names: Vec<String>) -> Option<Vec<Option<String>>> {
    let mut out = Vec::with_capacity(names.len());
    for name in &names {
        let [value] = parse(header, [name.as_str()])?.values;
        out.push(value.map(str::to_owned));
    }
    Some(out)
}

/// For tests (`tests/test_cookie_fast_path.py`): whether [`parse`] finds
/// two different copies of `first` or `second` in `header`, or `None` when
/// the fast path declines.
#[pyo3::pyfunction]
pub(crate) fn _cookie_conflict(header: &str, first: &str, second: &str) -> Option<bool> {
    parse(header, [first, second]).map(|found| found.conflict)
}
