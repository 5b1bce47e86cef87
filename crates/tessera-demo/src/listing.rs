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
//! home for this is a store method (a paged `sessions_for_user`).

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

const SQLITE_PAGE: &str = "SELECT session_handle, created_at, expires_at FROM tessera_sessions \
     WHERE user_id = ?1 AND expires_at > ?2 \
     AND (created_at > ?3 OR (created_at = ?3 AND session_handle > ?4)) \
     ORDER BY created_at, session_handle LIMIT ?5";
const POSTGRES_PAGE: &str = "SELECT session_handle, created_at, expires_at FROM tessera_sessions \
     WHERE user_id = $1 AND expires_at > $2 \
     AND (created_at > $3 OR (created_at = $3 AND session_handle > $4)) \
     ORDER BY created_at, session_handle LIMIT $5";
const MYSQL_PAGE: &str = "SELECT session_handle, created_at, expires_at FROM tessera_sessions \
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
        let rows: Vec<(String, i64, i64)> = match self {
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
                let rows: Vec<(Vec<u8>, i64, i64)> = sqlx::query_as(MYSQL_PAGE)
                    .bind(&uid)
                    .bind(now_ms)
                    .bind(cursor.created_at_ms)
                    .bind(cursor.created_at_ms)
                    .bind(&cursor.handle)
                    .bind(limit)
                    .fetch_all(p)
                    .await?;
                rows.into_iter()
                    .map(|(h, c, e)| {
                        String::from_utf8(h)
                            .map(|h| (h, c, e))
                            .map_err(|e| sqlx::Error::Decode(Box::new(e)))
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        Ok(rows
            .into_iter()
            .map(
                |(session_handle, created_at_ms, expires_at_ms)| SessionSummary {
                    session_handle,
                    created_at_ms,
                    expires_at_ms,
                    ..SessionSummary::default()
                },
            )
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
