//! What a session records about the client that created it
//! (docs/PROTOCOL.md §3.1): its user agent, optionally its address, and a
//! label the application chooses.

use std::net::IpAddr;

use crate::http_io::RequestSource;

/// Longest user agent a session keeps, in bytes (`tessera_sessions.user_agent`
/// is `VARCHAR(256)`). Longer ones are cut at a character boundary.
pub const MAX_USER_AGENT_LEN: usize = 256;

/// Longest device label a session keeps, in bytes
/// (`tessera_sessions.device_label` is `VARCHAR(128)`). Longer ones are cut
/// at a character boundary.
pub const MAX_DEVICE_LABEL_LEN: usize = 128;

/// Longest client address in its textual form (`tessera_sessions.client_address`
/// is `VARCHAR(45)`, room for any IPv6 address with an embedded IPv4 one).
pub const MAX_CLIENT_ADDRESS_LEN: usize = 45;

/// The client a new session is created for, given to
/// [`crate::SessionManager::create_new_session_with_device`] and kept in the
/// session's row for listings ([`crate::SessionSummary`]).
///
/// Nothing here is checked or trusted: the user agent is whatever the client
/// sent, so it is never a reason to refuse a sign-in. Before storing, the core
/// replaces control characters with spaces and cuts the user agent to
/// [`MAX_USER_AGENT_LEN`] bytes and the label to [`MAX_DEVICE_LABEL_LEN`]
/// bytes, at a character boundary; an empty value is stored as none. The
/// client address is stored only when the configuration says so
/// ([`crate::ConfigBuilder::with_record_client_address`], off by default):
/// it is personal data.
///
/// `Debug` shows all three fields. None is a secret, but the address (and to
/// a lesser degree the user agent) identifies a person: keep them out of
/// logs that outlive the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionDevice {
    /// The `User-Agent` request header.
    pub user_agent: Option<String>,
    /// Where the sign-in request came from (stored only with
    /// `record_client_address` on).
    pub client_address: Option<IpAddr>,
    /// A name the application gives the session ("Alice's phone").
    pub label: Option<String>,
}

impl SessionDevice {
    /// The device of a sign-in request: its `User-Agent` header, if any. A
    /// header that is not UTF-8 is kept with its invalid bytes replaced by
    /// U+FFFD. The request has no address to give; add it with
    /// [`SessionDevice::with_client_address`].
    pub fn from_request(request: &(impl RequestSource + ?Sized)) -> Self {
        SessionDevice {
            user_agent: request
                .header("user-agent")
                .map(|ua| String::from_utf8_lossy(ua).into_owned()),
            client_address: None,
            label: None,
        }
    }

    /// The same device with this user agent.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// The same device with this label.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The same device with this client address (kept only with
    /// `record_client_address` on).
    pub fn with_client_address(mut self, address: IpAddr) -> Self {
        self.client_address = Some(address);
        self
    }

    /// The columns to store: the user agent and label cleaned and capped,
    /// the address as text (an IPv4-mapped IPv6 address as plain IPv4), or
    /// none when `record_client_address` is off.
    pub(crate) fn to_columns(&self, record_client_address: bool) -> DeviceColumns {
        DeviceColumns {
            user_agent: self
                .user_agent
                .as_deref()
                .and_then(|ua| clean(ua, MAX_USER_AGENT_LEN)),
            client_address: self
                .client_address
                .filter(|_| record_client_address)
                .map(|a| a.to_canonical().to_string()),
            label: self
                .label
                .as_deref()
                .and_then(|l| clean(l, MAX_DEVICE_LABEL_LEN)),
        }
    }
}

/// A [`SessionDevice`] as stored.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct DeviceColumns {
    pub(crate) user_agent: Option<String>,
    pub(crate) client_address: Option<String>,
    pub(crate) label: Option<String>,
}

/// `text` with every control character (C0, DEL, C1) replaced by a space,
/// surrounding whitespace trimmed and cut to at most `cap` bytes at a
/// character boundary; `None` if nothing is left.
fn clean(text: &str, cap: usize) -> Option<String> {
    let mut out = String::with_capacity(text.len().min(cap));
    for c in text.trim().chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > cap {
            break;
        }
        out.push(c);
    }
    let kept = out.trim_end().len();
    out.truncate(kept);
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_user_agents_are_cut_to_the_cap() {
        let d = SessionDevice::default().with_user_agent("a".repeat(10_000));
        let ua = d.to_columns(false).user_agent.unwrap();
        assert_eq!(ua.len(), MAX_USER_AGENT_LEN);
        assert_eq!(ua, "a".repeat(MAX_USER_AGENT_LEN));
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        // 255 ASCII bytes and then a 3-byte character: the character does not
        // fit in 256 bytes and is dropped whole.
        let ua = format!("{}€€", "a".repeat(255));
        let got = SessionDevice::default()
            .with_user_agent(ua)
            .to_columns(false)
            .user_agent
            .unwrap();
        assert_eq!(got, "a".repeat(255));
        // All multibyte: 128 / 3 = 42 characters, 126 bytes.
        let label = "€".repeat(100);
        let got = SessionDevice::default()
            .with_label(label)
            .to_columns(false)
            .label
            .unwrap();
        assert_eq!(got.len(), 126);
        assert_eq!(got, "€".repeat(42));
    }

    #[test]
    fn control_characters_become_spaces() {
        let d = SessionDevice::default()
            .with_user_agent("Mozilla\r\n\tX\u{7f}Y\u{85}Z\0")
            .with_label("  phone\n");
        let c = d.to_columns(false);
        assert_eq!(c.user_agent.as_deref(), Some("Mozilla   X Y Z"));
        assert_eq!(c.label.as_deref(), Some("phone"));
        // Nothing but controls and spaces: nothing to keep.
        let c = SessionDevice::default()
            .with_user_agent("\r\n ")
            .with_label("")
            .to_columns(false);
        assert_eq!(c, DeviceColumns::default());
    }

    #[test]
    fn the_address_is_kept_only_when_configured() {
        let d = SessionDevice::default().with_client_address("203.0.113.7".parse().unwrap());
        assert_eq!(d.to_columns(false).client_address, None);
        assert_eq!(
            d.to_columns(true).client_address.as_deref(),
            Some("203.0.113.7")
        );
        let mapped =
            SessionDevice::default().with_client_address("::ffff:192.0.2.1".parse().unwrap());
        assert_eq!(
            mapped.to_columns(true).client_address.as_deref(),
            Some("192.0.2.1")
        );
        let v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
            .parse::<IpAddr>()
            .unwrap();
        assert!(v6.to_string().len() <= MAX_CLIENT_ADDRESS_LEN);
    }

    #[test]
    fn from_request_reads_the_user_agent() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(
            SessionDevice::from_request(&headers),
            SessionDevice::default()
        );
        headers.insert(
            "user-agent",
            http::HeaderValue::from_bytes(b"curl/8 \xff").unwrap(),
        );
        let d = SessionDevice::from_request(&headers);
        assert_eq!(d.user_agent.as_deref(), Some("curl/8 \u{fffd}"));
    }
}
