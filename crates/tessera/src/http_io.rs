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

/// Read access to an incoming request.
pub trait RequestSource {
    /// The raw value of the first cookie named `name`, if any. Bytes, not
    /// text: a non-UTF-8 value is a malformed token, not a missing cookie.
    fn cookie(&self, name: &str) -> Option<&[u8]>;
    /// The raw value of the first header named `name` (lowercase), if any.
    fn header(&self, name: &str) -> Option<&[u8]>;
}

/// Finds a cookie in one `Cookie` header value (`a=1; b=2`).
pub fn find_cookie<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        (pair[..eq].trim_ascii() == name.as_bytes()).then(|| {
            let v = pair[eq + 1..].trim_ascii();
            // RFC 6265 allows the value in double quotes.
            if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
                &v[1..v.len() - 1]
            } else {
                v
            }
        })
    })
}

impl RequestSource for HeaderMap {
    fn cookie(&self, name: &str) -> Option<&[u8]> {
        // HTTP/2 may split cookies over several `Cookie` headers.
        self.get_all(COOKIE)
            .iter()
            .find_map(|v| find_cookie(v.as_bytes(), name))
    }
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.get(name).map(HeaderValue::as_bytes)
    }
}

impl<B> RequestSource for http::Request<B> {
    fn cookie(&self, name: &str) -> Option<&[u8]> {
        self.headers().cookie(name)
    }
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers().header(name)
    }
}

impl RequestSource for http::request::Parts {
    fn cookie(&self, name: &str) -> Option<&[u8]> {
        self.headers.cookie(name)
    }
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.header(name)
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
        m.append(COOKIE, HeaderValue::from_static("y=2"));
        assert_eq!(m.cookie("y"), Some(&b"2"[..]));
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
