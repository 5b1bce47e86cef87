//! A test client's cookie jar, at the level of [`http::HeaderMap`]: what a
//! browser keeps of a response (cookies, the anti-CSRF token, the
//! id-refresh-token header) and what it sends back. It sends nothing
//! itself: the protocol tests hand its headers to `SessionManager`
//! directly, and the HTTP tests wrap it with their own client.
//!
//! The jars it replaces differed in small ways; each is settled here:
//!
//! - **Cleared cookies.** A `Set-Cookie` removes the cookie when its value is
//!   empty *or* it carries an `Expires` date in 1970 (the server clears with
//!   both; one jar checked the value, another the date). Either alone is
//!   enough, so a cookie expired with a leftover value is gone too.
//! - **Order.** [`CookieJar::cookies`] is a `BTreeMap`, so the `Cookie`
//!   header lists the cookies by name, not in the order they arrived (as a
//!   `Vec`-based jar did). The core reads cookies by name and refuses a
//!   duplicated name whatever the order, so no test depends on it; a test
//!   that needs a particular order or duplicates writes its `Cookie` header
//!   by hand.
//! - **The new access token.** [`CookieJar::absorb`] reports whether the
//!   response set a non-empty cookie under the *default* access-token name
//!   ([`tessera::ACCESS_TOKEN_COOKIE`]); a prefixed name (`__Host-…`) does
//!   not count.
//! - **The anti-CSRF header.** Sent by [`CookieJar::request`] always, and by
//!   [`CookieJar::request_headers`] only when asked (an HTTP client sends it
//!   on state-changing methods only, as the front-end SDK does).

use std::collections::BTreeMap;

use http::header::{HeaderMap, HeaderValue, COOKIE, SET_COOKIE};

/// The response header that carries the anti-CSRF token.
pub const ANTI_CSRF_HEADER: &str = "anti-csrf";
/// The response header that mirrors the id-refresh token (`remove` when the
/// session is cleared).
pub const ID_REFRESH_HEADER: &str = "id-refresh-token";

/// Keeps what a browser keeps and sends it back.
#[derive(Clone, Default, Debug)]
pub struct CookieJar {
    /// The cookies held, by name.
    pub cookies: BTreeMap<String, String>,
    /// The last anti-CSRF token the server sent.
    pub anti_csrf: Option<String>,
    /// The last `id-refresh-token` header the server sent, as sent
    /// (`remove` included).
    pub id_refresh_header: Option<String>,
    /// Every token value the server ever handed this jar, in order: the
    /// values of cookies it set, the anti-CSRF tokens and the id-refresh
    /// tokens of the header (without its attributes, `remove` left out).
    pub seen: Vec<String>,
}

impl CookieJar {
    /// Takes in a response's headers: `Set-Cookie` (set or cleared), the
    /// anti-CSRF token and the id-refresh-token header. Returns whether a
    /// new access token was set under the default cookie name.
    ///
    /// Panics on a header that is not ASCII or a `Set-Cookie` without
    /// `name=value`: the server under test never sends one.
    pub fn absorb(&mut self, response: &HeaderMap) -> bool {
        let mut new_access = false;
        for v in response.get_all(SET_COOKIE) {
            let s = v.to_str().expect("ASCII Set-Cookie");
            let (pair, attrs) = s.split_once(';').unwrap_or((s, ""));
            let (name, value) = pair.split_once('=').expect("Set-Cookie name=value");
            let (name, value) = (name.trim(), value.trim());
            if value.is_empty() || expires_in_1970(attrs) {
                self.cookies.remove(name);
            } else {
                new_access |= name == tessera::ACCESS_TOKEN_COOKIE;
                self.seen.push(value.to_owned());
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        if let Some(t) = response.get(ANTI_CSRF_HEADER) {
            let t = t.to_str().expect("ASCII anti-csrf").to_owned();
            self.seen.push(t.clone());
            self.anti_csrf = Some(t);
        }
        if let Some(v) = response.get(ID_REFRESH_HEADER) {
            let v = v.to_str().expect("ASCII id-refresh-token");
            if v != "remove" {
                let token = v.split(';').next().unwrap_or_default();
                self.seen.push(token.to_owned());
            }
            self.id_refresh_header = Some(v.to_owned());
        }
        new_access
    }

    /// The value of cookie `name`, if held.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// Holds `value` under `name` (as a tampering client would).
    pub fn set(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    /// The `Cookie` header's value: every cookie held, `name=value` joined
    /// by `; ` (empty when none is held).
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The request headers: `Cookie` when a cookie is held, and the
    /// anti-CSRF token when `with_csrf` and one is held.
    pub fn request_headers(&self, with_csrf: bool) -> HeaderMap {
        let mut h = HeaderMap::new();
        if !self.cookies.is_empty() {
            h.insert(
                COOKIE,
                HeaderValue::from_str(&self.cookie_header()).expect("cookie header"),
            );
        }
        if with_csrf {
            if let Some(t) = &self.anti_csrf {
                h.insert(
                    ANTI_CSRF_HEADER,
                    HeaderValue::from_str(t).expect("anti-csrf header"),
                );
            }
        }
        h
    }

    /// [`CookieJar::request_headers`] with the anti-CSRF token.
    pub fn request(&self) -> HeaderMap {
        self.request_headers(true)
    }
}

/// Whether a `Set-Cookie`'s attributes (what follows `name=value;`) hold
/// an `Expires` date in 1970.
fn expires_in_1970(attrs: &str) -> bool {
    attrs.split(';').any(|a| {
        a.split_once('=')
            .is_some_and(|(k, v)| k.trim().eq_ignore_ascii_case("expires") && v.contains("1970"))
    })
}

/// The names of the cookies a response sets or clears, in header order.
pub fn set_cookie_names(response: &HeaderMap) -> Vec<String> {
    response
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|s| s.split('=').next().map(str::to_owned))
        .collect()
}

/// Whether a response clears the session: three `Set-Cookie`s with an empty
/// value expiring on 1 January 1970, and `id-refresh-token: remove`.
pub fn clears_session(response: &HeaderMap) -> bool {
    let cleared = response
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|s| s.contains("=; Expires=Thu, 01 Jan 1970"))
        .count();
    cleared == 3
        && response
            .get(ID_REFRESH_HEADER)
            .is_some_and(|v| v == "remove")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(set_cookies: &[&str], extra: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in set_cookies {
            h.append(SET_COOKIE, HeaderValue::from_str(c).unwrap());
        }
        for (n, v) in extra {
            h.insert(*n, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn keeps_sends_and_clears() {
        let mut jar = CookieJar::default();
        let login = response(
            &[
                "sAccessToken=a.b.c; Path=/; HttpOnly",
                "sRefreshToken=r1; Path=/refresh",
                "sIdRefreshToken=i1; Path=/",
            ],
            &[("anti-csrf", "c1"), ("id-refresh-token", "i1; 1800000000")],
        );
        assert!(jar.absorb(&login));
        assert_eq!(jar.cookie("sRefreshToken"), Some("r1"));
        assert_eq!(jar.seen, ["a.b.c", "r1", "i1", "c1", "i1"]);
        assert_eq!(jar.id_refresh_header.as_deref(), Some("i1; 1800000000"));
        let req = jar.request();
        assert_eq!(
            req[COOKIE],
            "sAccessToken=a.b.c; sIdRefreshToken=i1; sRefreshToken=r1"
        );
        assert_eq!(req["anti-csrf"], "c1");
        assert!(jar.request_headers(false).get("anti-csrf").is_none());
        assert!(!jar.absorb(&response(&["sRefreshToken=r2"], &[])));

        // Cleared by an empty value or by a 1970 expiry, either one.
        let clear = response(
            &[
                "sAccessToken=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/",
                "sRefreshToken=left; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
                "sIdRefreshToken=",
            ],
            &[("id-refresh-token", "remove")],
        );
        assert!(!jar.absorb(&clear));
        assert!(jar.cookies.is_empty());
        assert!(jar.request().get(COOKIE).is_none());
        assert_eq!(jar.id_refresh_header.as_deref(), Some("remove"));
        assert_eq!(
            set_cookie_names(&clear),
            ["sAccessToken", "sRefreshToken", "sIdRefreshToken"]
        );
        assert!(!clears_session(&clear), "one has a value, one no date");
    }

    #[test]
    fn a_prefixed_access_token_is_not_counted_as_new() {
        let mut jar = CookieJar::default();
        assert!(!jar.absorb(&response(&["__Host-sAccessToken=x; Secure"], &[])));
        assert_eq!(jar.cookie("__Host-sAccessToken"), Some("x"));
    }

    #[test]
    fn a_full_clear_is_recognised() {
        let e = "Expires=Thu, 01 Jan 1970 00:00:00 GMT";
        let clear = response(
            &[
                &format!("sAccessToken=; {e}"),
                &format!("sRefreshToken=; {e}"),
                &format!("sIdRefreshToken=; {e}"),
            ],
            &[("id-refresh-token", "remove")],
        );
        assert!(clears_session(&clear));
    }
}
