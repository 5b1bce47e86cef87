//! The Session object returned by create, get and refresh.

use std::ops::Range;
use std::sync::OnceLock;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http_io::ResponseSink;
use crate::manager::SessionManager;
use crate::profile::Transport;
use crate::user_id::UserId;

/// A verified session.
///
/// The handle and the JWT payload are kept as ranges of one string: for
/// `get_session`, the decoded claims of the access token themselves, so
/// verifying a session allocates once for the claims and nothing more. The
/// payload is parsed into a `Value` on first use.
pub struct Session {
    manager: SessionManager,
    /// Holds the handle and the payload's JSON text (and, from
    /// `get_session`, the rest of the claims around them).
    text: String,
    handle: Range<usize>,
    payload_json: Range<usize>,
    user_id: UserId,
    payload: OnceLock<Value>,
    access_token_expiry_ms: i64,
    transport: Transport,
    /// Set by `refresh_session` when the refresh grace window answered a
    /// superseded token (docs/PROTOCOL.md §3.9).
    converged_within_grace: bool,
}

/// `Debug` shows the handle and the user id, and only the size of the JWT
/// payload: the payload is the application's data and may hold personal
/// details, so it stays out of logs.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("handle", &self.handle())
            .field("user_id", &self.user_id)
            .field("jwt_payload_len", &self.jwt_payload_json().len())
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(
        manager: SessionManager,
        handle: String,
        user_id: UserId,
        payload_raw: Box<RawValue>,
        access_token_expiry_ms: i64,
        transport: Transport,
    ) -> Self {
        let payload: Box<str> = payload_raw.into();
        let mut text = handle;
        let handle = 0..text.len();
        text.push_str(&payload);
        let payload_json = handle.end..text.len();
        Self::from_text(
            manager,
            text,
            handle,
            user_id,
            payload_json,
            access_token_expiry_ms,
            transport,
        )
    }

    /// A session whose handle and payload JSON are `text[handle]` and
    /// `text[payload_json]` (the payload already validated as JSON).
    pub(crate) fn from_text(
        manager: SessionManager,
        text: String,
        handle: Range<usize>,
        user_id: UserId,
        payload_json: Range<usize>,
        access_token_expiry_ms: i64,
        transport: Transport,
    ) -> Self {
        debug_assert!(text.get(handle.clone()).is_some());
        debug_assert!(text.get(payload_json.clone()).is_some());
        Session {
            manager,
            text,
            handle,
            payload_json,
            user_id,
            payload: OnceLock::new(),
            access_token_expiry_ms,
            transport,
            converged_within_grace: false,
        }
    }

    /// Marks a session returned by a refresh that the grace window answered.
    pub(crate) fn converged_within_grace(mut self) -> Self {
        self.converged_within_grace = true;
        self
    }

    /// The user id given at creation, with its type.
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// The session handle.
    pub fn handle(&self) -> &str {
        self.text.get(self.handle.clone()).unwrap_or_default()
    }

    /// The JWT payload, deeply equal to what was given at creation.
    pub fn jwt_payload(&self) -> &Value {
        self.payload
            .get_or_init(|| serde_json::from_str(self.jwt_payload_json()).unwrap_or(Value::Null))
    }

    /// The JWT payload as the JSON text carried in the token.
    pub fn jwt_payload_json(&self) -> &str {
        self.text.get(self.payload_json.clone()).unwrap_or_default()
    }

    /// When the access token of this request expires (ms since the epoch).
    pub fn access_token_expiry_ms(&self) -> i64 {
        self.access_token_expiry_ms
    }

    /// How this request's tokens travelled (docs/PROTOCOL.md §9); the
    /// session's answers (new tokens, cleared tokens) travel the same way.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Whether this session came from a refresh that presented a superseded
    /// refresh token (the one the last promotion replaced, or a sibling of
    /// the committed one) inside the refresh grace window, and was answered
    /// with a child of the committed token instead of being reported as
    /// theft (docs/PROTOCOL.md §3.9). Always `false` for sessions from
    /// `create_new_session`, `get_session`, a refresh with the committed
    /// token or its child, and without a grace window. An application can
    /// log it or tell the client that another tab or a retried request had
    /// refreshed first; the axum refresh API puts it in its answer.
    pub fn refresh_converged_within_grace(&self) -> bool {
        self.converged_within_grace
    }

    /// Deletes the session and clears its tokens (cookies, or in header
    /// mode the `front-token: remove` and empty token headers).
    pub async fn revoke_session(&self, response: &mut (impl ResponseSink + ?Sized)) -> Result<()> {
        self.manager.revoke_session(self.handle()).await?;
        self.manager.clear_session_tokens(self.transport, response);
        Ok(())
    }

    /// Session info from the database. A revoked or expired session clears the
    /// cookies and gives Unauthorized.
    pub async fn get_session_info(
        &self,
        response: &mut (impl ResponseSink + ?Sized),
    ) -> Result<Value> {
        self.clearing_on_unauthorized(response, self.manager.get_session_info(self.handle()).await)
    }

    /// Replaces session info. A revoked or expired session clears the cookies
    /// and gives Unauthorized.
    pub async fn update_session_info(
        &self,
        info: &Value,
        response: &mut (impl ResponseSink + ?Sized),
    ) -> Result<()> {
        self.clearing_on_unauthorized(
            response,
            self.manager.update_session_info(self.handle(), info).await,
        )
    }

    fn clearing_on_unauthorized<T>(
        &self,
        response: &mut (impl ResponseSink + ?Sized),
        r: Result<T>,
    ) -> Result<T> {
        if let Err(Error::Unauthorized { .. }) = &r {
            self.manager.clear_session_tokens(self.transport, response);
        }
        r
    }
}
