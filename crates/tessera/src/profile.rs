//! Client profiles (docs/PROTOCOL.md §9): how tokens travel between Tessera
//! and a client. Sessions, rotation, promotion, theft detection and keys are
//! one protocol whatever the profile; a profile only decides which cookies
//! and headers carry the tokens and what else the client is told (the
//! id-refresh token of supertokens-website 4.2.0, the front token of the
//! current SDK).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::user_id::UserId;

/// Request header in which the current SDK states its preferred transfer
/// method (`cookie` or `header`). Its presence also marks a request as one
/// from the current SDK (4.2.0 never sends it).
pub const AUTH_MODE_HEADER: &str = "st-auth-mode";
/// Response header carrying the front token (or `remove`), current profile.
pub const FRONT_TOKEN_HEADER: &str = "front-token";
/// Response header carrying a new access token in header mode.
pub const ACCESS_TOKEN_HEADER: &str = "st-access-token";
/// Response header carrying a new refresh token in header mode.
pub const REFRESH_TOKEN_HEADER: &str = "st-refresh-token";

/// How one request's tokens travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// supertokens-website 4.2.0 (the reference profile): the access,
    /// refresh and id-refresh cookies, the `id-refresh-token` and
    /// `anti-csrf` response headers.
    Reference,
    /// The current SDK in cookie mode: the access and refresh cookies (the
    /// refresh cookie at the current SDK's refresh path), the `front-token`
    /// and `anti-csrf` response headers; no id-refresh token.
    CurrentCookie,
    /// The current SDK in header mode, and any API or mobile client:
    /// `Authorization: Bearer …` in, `st-access-token`, `st-refresh-token`
    /// and `front-token` response headers out. No cookie and no anti-CSRF
    /// token: nothing is sent by the browser on its own.
    CurrentHeader,
}

/// The current SDK's profile, as the application allows it
/// (`ConfigBuilder::with_current_sdk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentSdk {
    pub(crate) api_base_path: String,
    pub(crate) cookie: bool,
    pub(crate) header: bool,
}

impl CurrentSdk {
    /// Both transfer methods, with the SDK's `apiBasePath` (its default is
    /// `/auth`): the refresh API is then `<api_base_path>/session/refresh`
    /// and sign-out `<api_base_path>/signout`, where the SDK calls them.
    pub fn new(api_base_path: impl Into<String>) -> Self {
        CurrentSdk {
            api_base_path: api_base_path.into(),
            cookie: true,
            header: true,
        }
    }
    /// Allow (default) or refuse the cookie transfer method.
    pub fn with_cookies(mut self, on: bool) -> Self {
        self.cookie = on;
        self
    }
    /// Allow (default) or refuse the header transfer method
    /// (`Authorization: Bearer`).
    pub fn with_header(mut self, on: bool) -> Self {
        self.header = on;
        self
    }
}

/// What the configuration allows, derived once by `ConfigBuilder::build`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Profiles {
    pub(crate) reference: bool,
    pub(crate) current_cookie: bool,
    pub(crate) current_header: bool,
    /// `<api_base_path>/session/refresh` when the current SDK is allowed.
    pub(crate) current_refresh_path: String,
    /// `<api_base_path>/signout` when the current SDK is allowed.
    pub(crate) current_signout_path: String,
}

impl Default for Profiles {
    fn default() -> Self {
        Profiles {
            reference: true,
            current_cookie: false,
            current_header: false,
            current_refresh_path: String::new(),
            current_signout_path: String::new(),
        }
    }
}

impl Profiles {
    pub(crate) fn allows(&self, t: Transport) -> bool {
        match t {
            Transport::Reference => self.reference,
            Transport::CurrentCookie => self.current_cookie,
            Transport::CurrentHeader => self.current_header,
        }
    }

    /// The transport of a cookie-carried request: the current SDK's
    /// cookie mode when it is allowed and the request looks like one of the
    /// current SDK's (`looks_current`: `st-auth-mode` present, or no
    /// id-refresh cookie) or the reference profile is off; else the
    /// reference profile if allowed; else none.
    pub(crate) fn cookie_transport(
        &self,
        looks_current: impl FnOnce() -> bool,
    ) -> Option<Transport> {
        if self.current_cookie && (!self.reference || looks_current()) {
            Some(Transport::CurrentCookie)
        } else if self.reference {
            Some(Transport::Reference)
        } else {
            None
        }
    }

    /// The transport a new session gets, from the request's stated
    /// preference (`st-auth-mode`), honoured when allowed: the preference
    /// first, then the other current method, then the reference profile.
    /// Without a preference: the reference profile, then current cookie,
    /// then header.
    pub(crate) fn for_new_session(&self, auth_mode: Option<&[u8]>) -> Transport {
        use Transport::*;
        let order: [Transport; 3] = match auth_mode.map(<[u8]>::trim_ascii) {
            None => [Reference, CurrentCookie, CurrentHeader],
            Some(m) if m.eq_ignore_ascii_case(b"header") => {
                [CurrentHeader, CurrentCookie, Reference]
            }
            Some(_) => [CurrentCookie, CurrentHeader, Reference],
        };
        order
            .into_iter()
            .find(|t| self.allows(*t))
            .unwrap_or(Reference)
    }

    /// What `create_new_session` without a request uses.
    pub(crate) fn default_transport(&self) -> Transport {
        self.for_new_session(None)
    }
}

/// The token of an `Authorization: Bearer <token>` header value: the scheme
/// is matched case-insensitively (RFC 9110 §11.1), followed by at least one
/// space; the token is trimmed of ASCII whitespace and must not be empty.
/// Any other value (another scheme, no token) is no bearer token.
#[inline]
pub(crate) fn bearer_token(v: &[u8]) -> Option<&[u8]> {
    if v.len() < 8 || !v[..6].eq_ignore_ascii_case(b"bearer") || v[6] != b' ' {
        return None;
    }
    let t = v[7..].trim_ascii();
    (!t.is_empty()).then_some(t)
}

/// The front token: standard base64 (padded) of the UTF-8 JSON
/// `{"uid":<user id as a string>,"ate":<access-token expiry, ms>,"up":<JWT payload>}`.
/// The current SDK decodes it with `atob` and reads the user id, decides
/// from `ate` whether to refresh before a request, and gives `up` to the
/// application as the access-token payload. `payload_json` is JSON text the
/// core already validated or signed.
pub(crate) fn front_token(uid: &UserId, access_exp_ms: i64, payload_json: &str) -> String {
    let uid = match uid {
        UserId::Str(_) => uid.to_storage(),
        UserId::Int(i) => format!("\"{i}\""),
    };
    let json = format!("{{\"uid\":{uid},\"ate\":{access_exp_ms},\"up\":{payload_json}}}");
    STANDARD.encode(json.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_values() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"BEARER a.b.c"), Some(&b"a.b.c"[..]));
        for v in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer   ",
            b"Basic abc",
            b"Bearerabc",
            b"",
            b"Bearer\tabc",
        ] {
            assert_eq!(bearer_token(v), None, "{:?}", String::from_utf8_lossy(v));
        }
    }

    #[test]
    fn front_token_is_base64_json() {
        let t = front_token(
            &UserId::from("al\"ice"),
            1_700_000_000_000,
            r#"{"a":[1,"é"]}"#,
        );
        let json = String::from_utf8(STANDARD.decode(t).unwrap()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"uid": "al\"ice", "ate": 1_700_000_000_000i64, "up": {"a": [1, "é"]}})
        );
        let t = front_token(&UserId::from(42), 5, "null");
        let v: serde_json::Value = serde_json::from_slice(&STANDARD.decode(t).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"uid": "42", "ate": 5, "up": null}));
    }

    #[test]
    fn preferences_are_honoured_within_what_is_allowed() {
        use Transport::*;
        let p = |reference, current_cookie, current_header| Profiles {
            reference,
            current_cookie,
            current_header,
            ..Profiles::default()
        };
        let all = p(true, true, true);
        assert_eq!(all.for_new_session(None), Reference);
        assert_eq!(all.for_new_session(Some(b"header")), CurrentHeader);
        assert_eq!(all.for_new_session(Some(b" HEADER ")), CurrentHeader);
        assert_eq!(all.for_new_session(Some(b"cookie")), CurrentCookie);
        assert_eq!(all.for_new_session(Some(b"\xff junk")), CurrentCookie);
        // Not allowed: the next allowed method.
        assert_eq!(
            p(true, true, false).for_new_session(Some(b"header")),
            CurrentCookie
        );
        assert_eq!(
            p(true, false, true).for_new_session(Some(b"cookie")),
            CurrentHeader
        );
        assert_eq!(
            p(true, false, false).for_new_session(Some(b"header")),
            Reference
        );
        assert_eq!(p(false, false, true).for_new_session(None), CurrentHeader);
        assert_eq!(p(false, true, true).for_new_session(None), CurrentCookie);
        // Cookie-carried requests.
        assert_eq!(all.cookie_transport(|| true), Some(CurrentCookie));
        assert_eq!(all.cookie_transport(|| false), Some(Reference));
        assert_eq!(
            p(false, true, false).cookie_transport(|| false),
            Some(CurrentCookie)
        );
        assert_eq!(
            p(true, false, true).cookie_transport(|| true),
            Some(Reference)
        );
        assert_eq!(p(false, false, true).cookie_transport(|| true), None);
    }
}
