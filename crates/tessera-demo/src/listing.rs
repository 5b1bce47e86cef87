//! One page of a user's live sessions, read straight from the sessions table.
//!
//! `tessera::Store` lists a user's sessions only all at once
//! (`sessions_for_user`), so a user with 100,000 sessions would make every
//! `GET /api/sessions` load and serialise all of them. The page is read here
//! instead, with keyset pagination over the order the store lists in
//! (`created_at`, then `session_handle`), which the store's
//! `(user_id, created_at)` index serves. It reads the table the store owns
//! (`tessera_sessions`, user ids as `UserId::to_storage`) on the same pool as
//! the users table; the demo's tests cover it on every backend. The proper
//! home for this is a store method (a paged `sessions_for_user`). It reads
//! the same columns as the store's listing: the last refresh
//! (`superseded_at`) and the device columns of migration 0006
//! (docs/PROTOCOL.md §2.1).

use tessera::{SessionSummary, UserId};

use crate::users::Users;

/// Where a page starts: after this `(created_at, session_handle)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) created_at_ms: i64,
    pub(crate) handle: String,
}

impl Cursor {
    /// Before every session.
    pub(crate) fn start() -> Cursor {
        Cursor {
            created_at_ms: i64::MIN,
            handle: String::new(),
        }
    }

    /// The cursor that continues after `s`.
    pub(crate) fn after(s: &SessionSummary) -> Cursor {
        Cursor {
            created_at_ms: s.created_at_ms,
            handle: s.session_handle.clone(),
        }
    }

    /// `CREATED_HANDLE`, URL-safe as handles are.
    pub(crate) fn encode(&self) -> String {
        format!("{}_{}", self.created_at_ms, self.handle)
    }

    /// The inverse of [`Cursor::encode`]; `None` for anything else.
    pub(crate) fn decode(s: &str) -> Option<Cursor> {
        let (created, handle) = s.split_once('_')?;
        if handle.is_empty() || handle.len() > 64 {
            return None;
        }
        Some(Cursor {
            created_at_ms: created.parse().ok()?,
            handle: handle.to_owned(),
        })
    }
}

const SQLITE_PAGE: &str = "SELECT session_handle, created_at, expires_at, superseded_at, user_agent, client_address, device_label FROM tessera_sessions \
     WHERE user_id = ?1 AND expires_at > ?2 \
     AND (created_at > ?3 OR (created_at = ?3 AND session_handle > ?4)) \
     ORDER BY created_at, session_handle LIMIT ?5";
const POSTGRES_PAGE: &str = "SELECT session_handle, created_at, expires_at, superseded_at, user_agent, client_address, device_label FROM tessera_sessions \
     WHERE user_id = $1 AND expires_at > $2 \
     AND (created_at > $3 OR (created_at = $3 AND session_handle > $4)) \
     ORDER BY created_at, session_handle LIMIT $5";
const MYSQL_PAGE: &str = "SELECT session_handle, created_at, expires_at, superseded_at, user_agent, client_address, device_label FROM tessera_sessions \
     WHERE user_id = ? AND expires_at > ? \
     AND (created_at > ? OR (created_at = ? AND session_handle > ?)) \
     ORDER BY created_at, session_handle LIMIT ?";

impl Users {
    /// At most `limit` live sessions of `user_id` after `cursor`, in the
    /// store's listing order.
    pub(crate) async fn sessions_page(
        &self,
        user_id: &UserId,
        now_ms: i64,
        cursor: &Cursor,
        limit: u32,
    ) -> Result<Vec<SessionSummary>, sqlx::Error> {
        let uid = user_id.to_storage();
        let limit = i64::from(limit);
        let rows: Vec<Row> = match self {
            Users::Sqlite(p) => {
                sqlx::query_as(SQLITE_PAGE)
                    .bind(&uid)
                    .bind(now_ms)
                    .bind(cursor.created_at_ms)
                    .bind(&cursor.handle)
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
            Users::Postgres(p) => {
                sqlx::query_as(POSTGRES_PAGE)
                    .bind(&uid)
                    .bind(now_ms)
                    .bind(cursor.created_at_ms)
                    .bind(&cursor.handle)
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
            Users::MySql(p) => {
                // Binary-collation columns come back as VARBINARY on MySQL.
                let rows: Vec<MySqlRow> = sqlx::query_as(MYSQL_PAGE)
                    .bind(&uid)
                    .bind(now_ms)
                    .bind(cursor.created_at_ms)
                    .bind(cursor.created_at_ms)
                    .bind(&cursor.handle)
                    .bind(limit)
                    .fetch_all(p)
                    .await?;
                rows.into_iter()
                    .map(|(h, c, e, s, ua, addr, label)| {
                        Ok((
                            text(h)?,
                            c,
                            e,
                            s,
                            opt_text(ua)?,
                            opt_text(addr)?,
                            opt_text(label)?,
                        ))
                    })
                    .collect::<Result<_, sqlx::Error>>()?
            }
        };
        Ok(rows
            .into_iter()
            .map(
                |(
                    session_handle,
                    created_at_ms,
                    expires_at_ms,
                    last_refreshed_at_ms,
                    user_agent,
                    client_address,
                    device_label,
                )| SessionSummary {
                    session_handle,
                    created_at_ms,
                    expires_at_ms,
                    last_refreshed_at_ms,
                    user_agent,
                    client_address,
                    device_label,
                },
            )
            .collect())
    }
}

/// `session_handle, created_at, expires_at, superseded_at, user_agent,
/// client_address, device_label`.
type Row = (
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
);
/// [`Row`] as MySQL returns binary-collation text.
type MySqlRow = (
    Vec<u8>,
    i64,
    i64,
    Option<i64>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

fn text(bytes: Vec<u8>) -> Result<String, sqlx::Error> {
    String::from_utf8(bytes).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn opt_text(bytes: Option<Vec<u8>>) -> Result<Option<String>, sqlx::Error> {
    bytes.map(text).transpose()
}

/// A short name for a user agent, for the session list: "Chrome on Linux",
/// "Firefox on Windows", "curl". Recognises the common browsers and
/// systems by the tokens their user agents carry (order matters: Edge and
/// Opera also say Chrome, Chrome also says Safari); anything else is shown
/// as its first product token, cut to 40 characters. Only a label for a
/// person to recognise their devices by: user agents are whatever the client
/// sends.
pub(crate) fn describe_user_agent(ua: &str) -> String {
    let has = |t: &str| ua.contains(t);
    let browser = if has("Edg/") {
        Some("Edge")
    } else if has("OPR/") {
        Some("Opera")
    } else if has("Firefox/") {
        Some("Firefox")
    } else if has("HeadlessChrome/") {
        Some("Headless Chrome")
    } else if has("Chromium/") {
        Some("Chromium")
    } else if has("Chrome/") || has("CriOS/") {
        Some("Chrome")
    } else if has("Safari/") && has("Version/") {
        Some("Safari")
    } else {
        None
    };
    let os = if has("Android") {
        Some("Android")
    } else if has("iPhone") || has("iPad") {
        Some("iOS")
    } else if has("Windows") {
        Some("Windows")
    } else if has("Mac OS X") || has("Macintosh") {
        Some("macOS")
    } else if has("CrOS") {
        Some("ChromeOS")
    } else if has("Linux") {
        Some("Linux")
    } else {
        None
    };
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_owned(),
        (None, _) => {
            let product = ua.split_whitespace().next().unwrap_or("");
            let name = product.split('/').next().unwrap_or(product);
            if name.is_empty() {
                "unknown device".to_owned()
            } else {
                name.chars().take(40).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_named() {
        for (ua, name) in [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 HeadlessChrome/156.0.0.0 Safari/537.36",
                "Headless Chrome on Linux",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/156.0.0.0 Safari/537.36",
                "Chrome on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:131.0) Gecko/20100101 Firefox/131.0",
                "Firefox on macOS",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/130.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            ("curl/8.5.0", "curl"),
            ("python-httpx/0.27.0", "python-httpx"),
            ("", "unknown device"),
        ] {
            assert_eq!(describe_user_agent(ua), name, "{ua}");
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        let c = Cursor {
            created_at_ms: 1_700_000_000_123,
            handle: "0b5e2c9a-1f1e-4a51-9d7e-3c1f2b4a5d6e".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in [
            "",
            "x",
            "12",
            "12_",
            "a_b",
            &format!("1_{}", "h".repeat(65)),
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad:?}");
        }
    }
}
