//! The Session object returned by create, get and refresh.

use std::sync::OnceLock;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http_io::ResponseSink;
use crate::manager::SessionManager;
use crate::user_id::UserId;

/// A verified session.
///
/// The JWT payload is kept as the JSON text from the token and parsed on
/// first use, so verifying a session costs no allocation for it.
pub struct Session {
    manager: SessionManager,
    handle: String,
    user_id: UserId,
    payload_raw: Box<RawValue>,
    payload: OnceLock<Value>,
    access_token_expiry_ms: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("handle", &self.handle)
            .field("user_id", &self.user_id)
            .field("jwt_payload", &self.payload_raw.get())
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
    ) -> Self {
        Session {
            manager,
            handle,
            user_id,
            payload_raw,
            payload: OnceLock::new(),
            access_token_expiry_ms,
        }
    }

    /// The user id given at creation, with its type.
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// The session handle.
    pub fn handle(&self) -> &str {
        &self.handle
    }

    /// The JWT payload, deeply equal to what was given at creation.
    pub fn jwt_payload(&self) -> &Value {
        self.payload
            .get_or_init(|| serde_json::from_str(self.payload_raw.get()).unwrap_or(Value::Null))
    }

    /// The JWT payload as the JSON text carried in the token.
    pub fn jwt_payload_json(&self) -> &str {
        self.payload_raw.get()
    }

    /// When the access token of this request expires (ms since the epoch).
    pub fn access_token_expiry_ms(&self) -> i64 {
        self.access_token_expiry_ms
    }

    /// Deletes the session and clears its cookies.
    pub async fn revoke_session(&self, response: &mut (impl ResponseSink + ?Sized)) -> Result<()> {
        self.manager.revoke_session(&self.handle).await?;
        self.manager.clear_session_cookies(response);
        Ok(())
    }

    /// Session info from the database. A revoked or expired session clears the
    /// cookies and gives Unauthorized.
    pub async fn get_session_info(
        &self,
        response: &mut (impl ResponseSink + ?Sized),
    ) -> Result<Value> {
        self.clearing_on_unauthorized(response, self.manager.get_session_info(&self.handle).await)
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
            self.manager.update_session_info(&self.handle, info).await,
        )
    }

    fn clearing_on_unauthorized<T>(
        &self,
        response: &mut (impl ResponseSink + ?Sized),
        r: Result<T>,
    ) -> Result<T> {
        if let Err(Error::Unauthorized { .. }) = &r {
            self.manager.clear_session_cookies(response);
        }
        r
    }
}
