//! What the core reads from a request and writes to a response, in the
//! `http` crate's types, behind two small traits so that any framework (axum,
//! actix, a Python binding) can adapt without the core knowing it.

use http::header::{HeaderMap, HeaderName, HeaderValue, COOKIE, SET_COOKIE};

use crate::config::SameSite;

/// Name of the access-token cookie.
pub const ACCESS_TOKEN_COOKIE: &str = "sAccessToken";
/// Name of the refresh-token cookie.
pub const REFRESH_TOKEN_COOKIE: &str = "sRefreshToken";
/// Name of the id-refresh-token cookie.
pub const ID_REFRESH_TOKEN_COOKIE: &str = "sIdRefreshToken";
/// Header carrying the anti-CSRF token (both directions).
pub const ANTI_CSRF_HEADER: &str = "anti-csrf";
/// Response header telling the front end a session exists (or `remove`).
pub const ID_REFRESH_TOKEN_HEADER: &str = "id-refresh-token";

/// A `Cookie` header value longer than this is ignored whole by the `http`
/// implementations of [`RequestSource`] (as if it were absent), so a huge
/// header costs one length check. Browsers send at most a few KiB per site.
pub(crate) const MAX_COOKIE_HEADER_LEN: usize = 64 * 1024;

/// The `Cookie` header values of a request that are within the size cap.
fn cookie_headers(map: &HeaderMap) -> impl Iterator<Item = &HeaderValue> {
    map.get_all(COOKIE)
        .iter()
        .filter(|v| v.len() <= MAX_COOKIE_HEADER_LEN)
}

/// Read access to an incoming request.
pub trait RequestSource {
    /// The raw value of the first cookie named `name`, if any. Bytes, not
    /// text: a non-UTF-8 value is a malformed token, not a missing cookie.
    fn cookie(&self, name: &str) -> Option<&[u8]>;
    /// The raw value of the first header named `name` (lowercase), if any.
    fn header(&self, name: &str) -> Option<&[u8]>;
    /// The value of the [`ANTI_CSRF_HEADER`] request header. `get_session`
    /// reads it on every request that checks anti-CSRF; the `http` types
    /// look it up by a header name built once instead of parsing the name
    /// on each call.
    fn anti_csrf_header(&self) -> Option<&[u8]> {
        self.header(ANTI_CSRF_HEADER)
    }
    /// The value of the `Authorization` request header. Read by
    /// `get_session` and `refresh_session` on every request when the
    /// header transfer method is allowed (docs/PROTOCOL.md §9).
    fn authorization_header(&self) -> Option<&[u8]> {
        self.header("authorization")
    }
    /// The value of the `st-auth-mode` request header (the current SDK's
    /// stated transfer method), read when the current SDK's cookie mode is
    /// allowed.
    fn auth_mode_header(&self) -> Option<&[u8]> {
        self.header(crate::profile::AUTH_MODE_HEADER)
    }
    /// `(self.cookie(first), self.cookie(second))`. `get_session` reads two
    /// cookies on every request; implementors that parse a `Cookie` header
    /// can override this to find both in one pass (the `http` types do).
    fn cookie_pair(&self, first: &str, second: &str) -> (Option<&[u8]>, Option<&[u8]>) {
        (self.cookie(first), self.cookie(second))
    }
    /// [`RequestSource::cookie_pair`], or [`ConflictingCookies`] when
    /// [`RequestSource::has_conflicting_cookies`] says so for the two names.
    /// `get_session` needs both answers on every request; the `http` types
    /// give them in one pass over the `Cookie` header.
    fn checked_cookie_pair(
        &self,
        first: &str,
        second: &str,
    ) -> Result<CookiePair<'_>, ConflictingCookies> {
        if self.has_conflicting_cookies(&[first, second]) {
            return Err(ConflictingCookies);
        }
        Ok(self.cookie_pair(first, second))
    }
    /// Whether the request carries two or more cookies of one of `names`
    /// whose values differ (see [`cookie_headers_conflict`]). The core then
    /// refuses the request instead of choosing one of them: which copy comes
    /// first is up to the browser (longer paths first), and a copy planted by
    /// a sibling subdomain or over plain HTTP would otherwise win (cookie
    /// tossing; SECURITY.md).
    ///
    /// The default scans the raw `Cookie` header that [`RequestSource::header`]
    /// returns for `"cookie"`. An adapter that reads cookies from a
    /// framework's already-parsed mapping (which keeps one value per name)
    /// and cannot return the raw header there must override this method.
    fn has_conflicting_cookies(&self, names: &[&str]) -> bool {
        self.header("cookie").is_some_and(|h| {
            h.len() <= MAX_COOKIE_HEADER_LEN && cookie_headers_conflict([h], names)
        })
    }
}

/// The values of two cookies, each if present.
pub type CookiePair<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// Two different copies of a cookie the caller asked for
/// ([`RequestSource::checked_cookie_pair`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConflictingCookies;

/// [`find_cookies`] over the whole header, continuing what earlier headers
/// of the same request found in `found`, and refusing a second copy of a
/// name with another value. No early exit: a copy may follow the first.
fn find_cookies_checked<'a, const N: usize>(
    header: &'a [u8],
    names: [&str; N],
    found: &mut [Option<&'a [u8]>; N],
) -> Result<(), ConflictingCookies> {
    let mut rest = header;
    loop {
        let (pair, next) = match memchr::memchr(b';', rest) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        if let Some((pair_name, value)) = split_pair(pair) {
            for (slot, name) in found.iter_mut().zip(names) {
                if pair_name == name.as_bytes() {
                    match slot {
                        None => *slot = Some(value),
                        Some(seen) if *seen != value => return Err(ConflictingCookies),
                        Some(_) => {}
                    }
                }
            }
        }
        match next {
            Some(n) => rest = n,
            None => return Ok(()),
        }
    }
}

/// Whether the `Cookie` header values `headers` (one request's, in order)
/// carry two or more cookies named one of `names` whose values differ.
/// Pairs are split as [`find_cookie`] splits them. Copies with equal values
/// are not a conflict (nothing depends on which one is read).
///
/// `names` holds at most 8 names; any beyond the eighth are ignored (the
/// core asks about two).
pub fn cookie_headers_conflict<'a>(
    headers: impl IntoIterator<Item = &'a [u8]>,
    names: &[&str],
) -> bool {
    const MAX_NAMES: usize = 8;
    let names = &names[..names.len().min(MAX_NAMES)];
    let mut first: [Option<&[u8]>; MAX_NAMES] = [None; MAX_NAMES];
    for header in headers {
        let mut rest = header;
        loop {
            let (pair, next) = match memchr::memchr(b';', rest) {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            if let Some((pair_name, value)) = split_pair(pair) {
                if let Some(i) = names.iter().position(|n| n.as_bytes() == pair_name) {
                    match first[i] {
                        None => first[i] = Some(value),
                        Some(seen) if seen != value => return true,
                        Some(_) => {}
                    }
                }
            }
            match next {
                Some(n) => rest = n,
                None => break,
            }
        }
    }
    false
}

/// Finds a cookie in one `Cookie` header value (`a=1; b=2`).
///
/// The header is split at `;`, each pair is trimmed of ASCII whitespace and
/// split at its first `=`; the first pair whose trimmed name equals `name`
/// wins, and its trimmed value is returned without surrounding double quotes.
/// Pairs without `=` are skipped.
pub fn find_cookie<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let [value] = find_cookies(header, [name]);
    value
}

/// [`find_cookie`] for several names in one pass over the header: element
/// `i` of the result is what `find_cookie(header, names[i])` returns.
///
/// `get_session` needs two cookies from a header that carries a ~500-byte
/// access token; one pass with `memchr`'s vectorised `;` search reads that
/// token once instead of twice.
pub fn find_cookies<'a, const N: usize>(
    header: &'a [u8],
    names: [&str; N],
) -> [Option<&'a [u8]>; N] {
    let mut found = [None; N];
    let mut missing = N;
    let mut rest = header;
    while missing > 0 {
        let (pair, next) = match memchr::memchr(b';', rest) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        if let Some((pair_name, value)) = split_pair(pair) {
            for (slot, name) in found.iter_mut().zip(names) {
                if slot.is_none() && pair_name == name.as_bytes() {
                    *slot = Some(value);
                    missing -= 1;
                }
            }
        }
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    found
}

/// One `name=value` pair, trimmed, split at its first `=`, the value
/// without surrounding double quotes (RFC 6265 allows them).
#[inline]
fn split_pair(pair: &[u8]) -> Option<(&[u8], &[u8])> {
    let pair = pair.trim_ascii();
    let eq = memchr::memchr(b'=', pair)?;
    let v = pair[eq + 1..].trim_ascii();
    let v = if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
        &v[1..v.len() - 1]
    } else {
        v
    };
    Some((pair[..eq].trim_ascii(), v))
}

impl RequestSource for HeaderMap {
    fn cookie(&self, name: &str) -> Option<&[u8]> {
        // HTTP/2 may split cookies over several `Cookie` headers.
        cookie_headers(self).find_map(|v| find_cookie(v.as_bytes(), name))
    }
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.get(name).map(HeaderValue::as_bytes)
    }
    fn anti_csrf_header(&self) -> Option<&[u8]> {
        static NAME: HeaderName = HeaderName::from_static(ANTI_CSRF_HEADER);
        self.get(&NAME).map(HeaderValue::as_bytes)
    }
    fn authorization_header(&self) -> Option<&[u8]> {
        self.get(http::header::AUTHORIZATION)
            .map(HeaderValue::as_bytes)
    }
    fn auth_mode_header(&self) -> Option<&[u8]> {
        static NAME: HeaderName = HeaderName::from_static(crate::profile::AUTH_MODE_HEADER);
        self.get(&NAME).map(HeaderValue::as_bytes)
    }
    fn has_conflicting_cookies(&self, names: &[&str]) -> bool {
        cookie_headers_conflict(cookie_headers(self).map(HeaderValue::as_bytes), names)
    }
    fn checked_cookie_pair(
        &self,
        first: &str,
        second: &str,
    ) -> Result<CookiePair<'_>, ConflictingCookies> {
        let mut found = [None; 2];
        for v in cookie_headers(self) {
            find_cookies_checked(v.as_bytes(), [first, second], &mut found)?;
        }
        Ok((found[0], found[1]))
    }
    fn cookie_pair(&self, first: &str, second: &str) -> (Option<&[u8]>, Option<&[u8]>) {
        let (mut a, mut b) = (None, None);
        for v in cookie_headers(self) {
            let [x, y] = find_cookies(v.as_bytes(), [first, second]);
            a = a.or(x);
            b = b.or(y);
            if a.is_some() && b.is_some() {
                break;
            }
        }
        (a, b)
    }
}

impl<B> RequestSource for http::Request<B> {
    fn cookie(&self, name: &str) -> Option<&[u8]> {
        self.headers().cookie(name)
    }
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers().header(name)
    }
    fn anti_csrf_header(&self) -> Option<&[u8]> {
        self.headers().anti_csrf_header()
    }
    fn authorization_header(&self) -> Option<&[u8]> {
        self.headers().authorization_header()
    }
    fn auth_mode_header(&self) -> Option<&[u8]> {
        self.headers().auth_mode_header()
    }
    fn cookie_pair(&self, first: &str, second: &str) -> (Option<&[u8]>, Option<&[u8]>) {
        self.headers().cookie_pair(first, second)
    }
    fn has_conflicting_cookies(&self, names: &[&str]) -> bool {
        self.headers().has_conflicting_cookies(names)
    }
    fn checked_cookie_pair(
        &self,
        first: &str,
        second: &str,
    ) -> Result<CookiePair<'_>, ConflictingCookies> {
        self.headers().checked_cookie_pair(first, second)
    }
}

impl RequestSource for http::request::Parts {
    fn cookie(&self, name: &str) -> Option<&[u8]> {
        self.headers.cookie(name)
    }
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.header(name)
    }
    fn anti_csrf_header(&self) -> Option<&[u8]> {
        self.headers.anti_csrf_header()
    }
    fn authorization_header(&self) -> Option<&[u8]> {
        self.headers.authorization_header()
    }
    fn auth_mode_header(&self) -> Option<&[u8]> {
        self.headers.auth_mode_header()
    }
    fn cookie_pair(&self, first: &str, second: &str) -> (Option<&[u8]>, Option<&[u8]>) {
        self.headers.cookie_pair(first, second)
    }
    fn has_conflicting_cookies(&self, names: &[&str]) -> bool {
        self.headers.has_conflicting_cookies(names)
    }
    fn checked_cookie_pair(
        &self,
        first: &str,
        second: &str,
    ) -> Result<CookiePair<'_>, ConflictingCookies> {
        self.headers.checked_cookie_pair(first, second)
    }
}

/// A cookie to set (or clear) on the response.
#[derive(Clone, PartialEq, Eq)]
pub struct CookieSpec {
    /// Cookie name.
    pub name: &'static str,
    /// Value (empty when clearing).
    pub value: String,
    /// Expiry, milliseconds since the Unix epoch (0 when clearing).
    pub expires_ms: i64,
    /// `Path` attribute.
    pub path: String,
    /// `Domain` attribute, if any.
    pub domain: Option<String>,
    /// `Secure` attribute.
    pub secure: bool,
    /// `HttpOnly` attribute.
    pub http_only: bool,
    /// `SameSite` attribute.
    pub same_site: SameSite,
}

impl std::fmt::Debug for CookieSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieSpec")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .field("expires_ms", &self.expires_ms)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .finish()
    }
}

impl CookieSpec {
    /// The `Set-Cookie` header value.
    pub fn to_header_value(&self) -> HeaderValue {
        let mut s = format!(
            "{}={}; Expires={}; Path={}",
            self.name,
            self.value,
            http_date(self.expires_ms),
            self.path
        );
        if let Some(d) = &self.domain {
            s.push_str("; Domain=");
            s.push_str(d);
        }
        if self.secure {
            s.push_str("; Secure");
        }
        if self.http_only {
            s.push_str("; HttpOnly");
        }
        s.push_str("; SameSite=");
        s.push_str(self.same_site.as_str());
        // Values are base64url and paths/domains are validated by the config
        // builder, so this cannot fail; fall back to a harmless value anyway.
        HeaderValue::from_str(&s)
            .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }
}

/// Write access to an outgoing response.
pub trait ResponseSink {
    /// Sets a cookie, replacing one of the same name set earlier on this
    /// response.
    fn set_cookie(&mut self, cookie: CookieSpec);
    /// Sets a header, replacing any earlier value.
    fn set_header(&mut self, name: &'static str, value: &str);
    /// Adds `value` to a comma-separated list header (such as
    /// `Access-Control-Expose-Headers`) unless it is already listed.
    fn append_to_list_header(&mut self, name: &'static str, value: &str);
}

impl ResponseSink for HeaderMap {
    fn set_cookie(&mut self, cookie: CookieSpec) {
        let prefix = format!("{}=", cookie.name);
        let kept: Vec<HeaderValue> = self
            .get_all(SET_COOKIE)
            .iter()
            .filter(|v| !v.as_bytes().starts_with(prefix.as_bytes()))
            .cloned()
            .collect();
        self.remove(SET_COOKIE);
        for v in kept {
            self.append(SET_COOKIE, v);
        }
        self.append(SET_COOKIE, cookie.to_header_value());
    }

    fn set_header(&mut self, name: &'static str, value: &str) {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.insert(HeaderName::from_static(name), v);
        }
    }

    fn append_to_list_header(&mut self, name: &'static str, value: &str) {
        let name = HeaderName::from_static(name);
        let joined = match self.get(&name).and_then(|v| v.to_str().ok()) {
            Some(existing)
                if existing
                    .split(',')
                    .any(|x| x.trim().eq_ignore_ascii_case(value)) =>
            {
                return
            }
            Some(existing) if !existing.trim().is_empty() => format!("{existing}, {value}"),
            _ => value.to_owned(),
        };
        if let Ok(v) = HeaderValue::from_str(&joined) {
            self.insert(name, v);
        }
    }
}

/// One change the core asked for on a response, as recorded by
/// [`RecordedResponse`].
#[derive(Clone, PartialEq, Eq)]
pub enum ResponseChange {
    /// [`ResponseSink::set_cookie`].
    SetCookie(CookieSpec),
    /// [`ResponseSink::set_header`].
    SetHeader(&'static str, String),
    /// [`ResponseSink::append_to_list_header`].
    AppendToListHeader(&'static str, String),
}

/// A [`ResponseSink`] that records the changes in order, for adapters that
/// cannot hand the core their response while it runs (a tower layer that
/// applies them after the handler, a Python binding that writes them once it
/// holds the GIL again). No `Debug`: it holds token values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RecordedResponse(Vec<ResponseChange>);

impl RecordedResponse {
    /// Nothing recorded yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The changes, in the order the core made them.
    pub fn changes(&self) -> &[ResponseChange] {
        &self.0
    }
    /// The changes, in order, by value.
    pub fn into_changes(self) -> Vec<ResponseChange> {
        self.0
    }
    /// Appends another recording after this one.
    pub fn extend(&mut self, other: RecordedResponse) {
        self.0.extend(other.0);
    }
    /// Applies the changes, in order, to another sink.
    pub fn replay(self, sink: &mut (impl ResponseSink + ?Sized)) {
        for change in self.0 {
            match change {
                ResponseChange::SetCookie(c) => sink.set_cookie(c),
                ResponseChange::SetHeader(n, v) => sink.set_header(n, &v),
                ResponseChange::AppendToListHeader(n, v) => sink.append_to_list_header(n, &v),
            }
        }
    }
}

impl ResponseSink for RecordedResponse {
    fn set_cookie(&mut self, cookie: CookieSpec) {
        self.0.push(ResponseChange::SetCookie(cookie));
    }
    fn set_header(&mut self, name: &'static str, value: &str) {
        self.0
            .push(ResponseChange::SetHeader(name, value.to_owned()));
    }
    fn append_to_list_header(&mut self, name: &'static str, value: &str) {
        self.0
            .push(ResponseChange::AppendToListHeader(name, value.to_owned()));
    }
}

/// An IMF-fixdate (`Thu, 01 Jan 1970 00:00:00 GMT`) for cookie expiry.
pub fn http_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000).max(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm, public domain).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WD[(days % 7) as usize],
        d,
        MON[(mo - 1) as usize],
        y,
        h,
        m,
        s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(1_700_000_000_000),
            "Tue, 14 Nov 2023 22:13:20 GMT"
        );
        assert_eq!(http_date(951_782_400_000), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn cookie_lookup() {
        let h = b"a=1; sAccessToken=xyz ;b=\"q\"; sAccessToken=second";
        assert_eq!(find_cookie(h, "sAccessToken"), Some(&b"xyz"[..]));
        assert_eq!(find_cookie(h, "b"), Some(&b"q"[..]));
        assert_eq!(find_cookie(h, "c"), None);
        assert_eq!(find_cookie(b"garbage;;==;", "x"), None);
        let mut m = HeaderMap::new();
        m.append(COOKIE, HeaderValue::from_static("x=1"));
        m.append(COOKIE, HeaderValue::from_static("y=2; x=3"));
        assert_eq!(m.cookie("y"), Some(&b"2"[..]));
        assert_eq!(m.cookie_pair("y", "x"), (Some(&b"2"[..]), Some(&b"1"[..])));
        assert_eq!(m.cookie_pair("x", "z"), (Some(&b"1"[..]), None));
        // The default method (two `cookie` calls) agrees with the override.
        struct Plain<'a>(&'a HeaderMap);
        impl RequestSource for Plain<'_> {
            fn cookie(&self, name: &str) -> Option<&[u8]> {
                self.0.cookie(name)
            }
            fn header(&self, name: &str) -> Option<&[u8]> {
                self.0.header(name)
            }
        }
        for (a, b) in [("x", "y"), ("y", "x"), ("z", "x"), ("y", "y")] {
            assert_eq!(Plain(&m).cookie_pair(a, b), m.cookie_pair(a, b), "{a} {b}");
        }
    }

    #[test]
    fn conflicting_copies() {
        let names = ["sAccessToken", "sIdRefreshToken"];
        let c = |h: &[u8]| cookie_headers_conflict([h], &names);
        assert!(!c(b""));
        assert!(!c(b"sAccessToken=a; sIdRefreshToken=b; x=1; x=2"));
        assert!(!c(b"sAccessToken=a; sAccessToken=a; sAccessToken=\"a\""));
        assert!(c(b"sAccessToken=a; sAccessToken=b"));
        assert!(c(b" sIdRefreshToken = b ;x=1; sIdRefreshToken=c"));
        assert!(c(b"sAccessToken=a; sAccessToken="), "an empty copy differs");
        assert!(!c(b"sAccessToken=a; sAccessTokenX=b; XsAccessToken=c"));
        // Across the several Cookie headers of one HTTP/2 request.
        let mut m = HeaderMap::new();
        m.append(COOKIE, HeaderValue::from_static("sAccessToken=a"));
        assert!(!m.has_conflicting_cookies(&names));
        m.append(COOKIE, HeaderValue::from_static("y=2; sAccessToken=b"));
        assert!(m.has_conflicting_cookies(&names));
        assert!(!m.has_conflicting_cookies(&["y"]));
        // The default method reads the raw header through `header`.
        struct Raw(&'static [u8]);
        impl RequestSource for Raw {
            fn cookie(&self, name: &str) -> Option<&[u8]> {
                find_cookie(self.0, name)
            }
            fn header(&self, name: &str) -> Option<&[u8]> {
                (name == "cookie").then_some(self.0)
            }
        }
        assert!(Raw(b"sAccessToken=a; sAccessToken=b").has_conflicting_cookies(&names));
        assert!(!Raw(b"sAccessToken=a; b=c").has_conflicting_cookies(&names));
    }

    /// Every value of `name` in the header, in order, by the same splitting.
    fn all_values_reference<'a>(header: &'a [u8], name: &str) -> Vec<&'a [u8]> {
        header
            .split(|&b| b == b';')
            .filter_map(|pair| {
                let pair = pair.trim_ascii();
                let eq = pair.iter().position(|&b| b == b'=')?;
                (pair[..eq].trim_ascii() == name.as_bytes()).then(|| {
                    let v = pair[eq + 1..].trim_ascii();
                    if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
                        &v[1..v.len() - 1]
                    } else {
                        v
                    }
                })
            })
            .collect()
    }

    /// The straightforward definition `find_cookie` must agree with.
    fn find_cookie_reference<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
        header.split(|&b| b == b';').find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            (pair[..eq].trim_ascii() == name.as_bytes()).then(|| {
                let v = pair[eq + 1..].trim_ascii();
                if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
                    &v[1..v.len() - 1]
                } else {
                    v
                }
            })
        })
    }

    #[test]
    fn find_cookie_agrees_with_the_reference() {
        // A small deterministic generator: headers built from a skewed
        // alphabet full of separators, spaces, quotes and cookie names.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let pieces: [&[u8]; 14] = [
            b";",
            b"=",
            b" ",
            b"\t",
            b"\"",
            b"a",
            b"b",
            b"sAccessToken",
            b"x",
            b"==",
            b"; ",
            b"sA",
            b"\r\n",
            &[0xff],
        ];
        for _ in 0..20_000 {
            let mut h = Vec::new();
            for _ in 0..(next() % 24) {
                h.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
            }
            for name in ["sAccessToken", "a", "b", "x", ""] {
                assert_eq!(
                    find_cookie(&h, name),
                    find_cookie_reference(&h, name),
                    "header {:?} name {name:?}",
                    String::from_utf8_lossy(&h)
                );
                for other in ["sAccessToken", "a", "x"] {
                    // The checked pass: the same values, or a conflict
                    // exactly when a name has two different values.
                    let conflict = [name, other].iter().any(|n| {
                        let values = all_values_reference(&h, n);
                        values.iter().any(|v| *v != values[0])
                    });
                    let mut found = [None; 2];
                    let checked = find_cookies_checked(&h, [name, other], &mut found);
                    if conflict {
                        assert_eq!(
                            checked,
                            Err(ConflictingCookies),
                            "header {:?}",
                            String::from_utf8_lossy(&h)
                        );
                    } else {
                        assert_eq!(checked, Ok(()));
                        assert_eq!(
                            found,
                            [
                                find_cookie_reference(&h, name),
                                find_cookie_reference(&h, other)
                            ]
                        );
                    }
                    assert_eq!(
                        find_cookies(&h, [name, other]),
                        [
                            find_cookie_reference(&h, name),
                            find_cookie_reference(&h, other)
                        ],
                        "header {:?} names {name:?} {other:?}",
                        String::from_utf8_lossy(&h)
                    );
                }
            }
        }
    }

    #[test]
    fn a_recording_replays_like_the_original() {
        let mut direct = HeaderMap::new();
        let mut rec = RecordedResponse::new();
        for sink in [&mut direct as &mut dyn ResponseSink, &mut rec] {
            sink.set_header("anti-csrf", "a");
            sink.append_to_list_header("access-control-expose-headers", "anti-csrf");
            sink.set_header("anti-csrf", "b");
        }
        assert_eq!(rec.changes().len(), 3);
        let mut replayed = HeaderMap::new();
        rec.replay(&mut replayed);
        assert_eq!(replayed, direct);
        assert_eq!(replayed["anti-csrf"], "b");
    }

    #[test]
    fn list_header_appends_once() {
        let mut m = HeaderMap::new();
        m.insert(
            "access-control-expose-headers",
            HeaderValue::from_static("x-a"),
        );
        m.append_to_list_header("access-control-expose-headers", "anti-csrf");
        m.append_to_list_header("access-control-expose-headers", "anti-csrf");
        assert_eq!(m["access-control-expose-headers"], "x-a, anti-csrf");
    }
}
