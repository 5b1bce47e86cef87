//! The four kinds of error of the protocol (docs/PROTOCOL.md §4).

use std::borrow::Cow;

use crate::store::StoreError;
use crate::user_id::UserId;

/// A boxed error kept as the source of [`Error::General`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything a Tessera operation can fail with.
///
/// Integrations map these to HTTP: `General` → 500 with an opaque body; the
/// other three → the configured session-expired status (default 401).
/// Malformed input never produces `General`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Storage unreachable or failing, misuse, internal faults.
    #[error("{message}")]
    General {
        /// What went wrong, for logs (never shown to clients by integrations).
        message: Cow<'static, str>,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The session is surely gone (revoked, expired, cookies missing). The
    /// session cookies have been cleared in the response.
    #[error("unauthorized: {reason}")]
    Unauthorized {
        /// Why, for logs.
        reason: &'static str,
    },
    /// The access token is missing, invalid, expired or signed with a key that
    /// has rotated, or the anti-CSRF check failed. Cookies are untouched; the
    /// client should call the refresh API.
    #[error("try refresh token: {reason}")]
    TryRefreshToken {
        /// Why, for logs.
        reason: &'static str,
    },
    /// A refresh token that had already been superseded was used again. The
    /// cookies have been cleared and, unless configured otherwise, the session
    /// revoked.
    #[error("token theft detected for session {session_handle}")]
    TokenTheftDetected {
        /// Owner of the session whose token was reused.
        user_id: UserId,
        /// The session whose token was reused.
        session_handle: String,
    },
}

impl Error {
    /// A general error with a message and no source.
    pub fn general(message: impl Into<Cow<'static, str>>) -> Self {
        Error::General {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn unauthorized(reason: &'static str) -> Self {
        Error::Unauthorized { reason }
    }

    pub(crate) fn try_refresh(reason: &'static str) -> Self {
        Error::TryRefreshToken { reason }
    }

    /// True for the three kinds that integrations answer with the
    /// session-expired status.
    pub fn is_session_expired(&self) -> bool {
        !matches!(self, Error::General { .. })
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::General {
            message: Cow::Borrowed("session store failed"),
            source: Some(Box::new(e)),
        }
    }
}

/// Result of a Tessera operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
