//! The four kinds of error of the protocol (docs/PROTOCOL.md §4).

use std::borrow::Cow;

use crate::store::StoreError;
use crate::user_id::UserId;

/// A boxed error kept as the source of [`Error::General`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of [`Error::General`] it is: what the caller can do about it.
///
/// | kind | cause | what to do | integrations answer |
/// |---|---|---|---|
/// | `Unavailable` | the database cannot be reached or failed | retry later | 503 |
/// | `Timeout` | the database did not answer within a deadline | retry later | 503 |
/// | `InvalidArgument` | the call cannot be done as asked (a user id over the storage limit, a value that is not JSON) | fix the call; the same call fails again | 400 |
/// | `Internal` | a fault inside Tessera or corrupt stored data | report it | 500 |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GeneralKind {
    /// The database could not be reached or failed (connection refused or
    /// lost, no pooled connection in time, a server-side error). Retryable.
    Unavailable,
    /// A deadline passed: the call timeout, a lock wait. Retryable.
    Timeout,
    /// The caller's misuse: an argument Tessera cannot accept. Not retryable.
    InvalidArgument,
    /// A bug or corrupt data. Not retryable.
    Internal,
}

impl GeneralKind {
    /// Whether the same call may succeed later (outages and timeouts).
    pub fn is_retryable(self) -> bool {
        matches!(self, GeneralKind::Unavailable | GeneralKind::Timeout)
    }

    /// A short name for logs and response bodies: `unavailable`, `timeout`,
    /// `invalid_argument`, `internal`.
    pub fn as_str(self) -> &'static str {
        match self {
            GeneralKind::Unavailable => "unavailable",
            GeneralKind::Timeout => "timeout",
            GeneralKind::InvalidArgument => "invalid_argument",
            GeneralKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for GeneralKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a Tessera operation can fail with.
///
/// Integrations map these to HTTP: `General` → 500 with an opaque body; the
/// other three → the configured session-expired status (default 401).
/// Malformed input never produces `General`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Storage unreachable or failing, a timeout, misuse, internal faults:
    /// `kind` says which.
    #[error("{message}")]
    General {
        /// What the caller can do about it.
        kind: GeneralKind,
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
    #[error("token theft detected for session {session_handle} ({reuse})")]
    TokenTheftDetected {
        /// Owner of the session whose token was reused.
        user_id: UserId,
        /// The session whose token was reused.
        session_handle: String,
        /// Which kind of reuse it was, from what the session row remembers
        /// (docs/PROTOCOL.md §3.9): a flaky client and an attack look
        /// different here.
        reuse: ReuseKind,
    },
}

/// How a reused refresh token relates to its session, as far as the row can
/// tell (it keeps the committed token and the one the last promotion
/// superseded, with the time of that promotion). Reported in
/// [`Error::TokenTheftDetected`] and in the `tessera::security` events.
///
/// "The window" is the configured refresh grace window, or
/// [`crate::DEFAULT_REFRESH_GRACE`] when none is configured (it is then only
/// the yardstick of this classification).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReuseKind {
    /// The token the last promotion superseded, or a child of it (a sibling
    /// of the committed token), less than the window after that promotion:
    /// most likely one client's racing or retried refreshes. Reported as
    /// theft only when no grace window is configured (inside a configured
    /// window such a reuse is accepted).
    WithinGrace,
    /// A child of the superseded token that lost the promotion to its
    /// sibling, presented after the window: two holders refreshed the same
    /// token, and the one that lost came back late (an uncoordinated client
    /// after a long pause, or a thief who refreshed a stolen token).
    OrphanedBranch,
    /// The superseded token itself, presented after the window: a copy of a
    /// token its holder kept without using while another holder rotated
    /// past it, the pattern of a stolen token replayed later.
    SilentThief,
    /// A token of this session the row does not know: two or more rotations
    /// old (or from before the row kept its history). A long-kept copy.
    StaleLineage,
}

impl ReuseKind {
    /// A short name for logs: `within_grace`, `orphaned_branch`,
    /// `silent_thief`, `stale_lineage`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReuseKind::WithinGrace => "within_grace",
            ReuseKind::OrphanedBranch => "orphaned_branch",
            ReuseKind::SilentThief => "silent_thief",
            ReuseKind::StaleLineage => "stale_lineage",
        }
    }
}

impl std::fmt::Display for ReuseKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which configured limit ended a session (docs/PROTOCOL.md §3.10). The
/// refresh that finds it is [`Error::Unauthorized`] whose reason is
/// [`SessionEnd::as_str`]; [`Error::session_end`] reads it back, so an
/// application can tell the user why they must sign in again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionEnd {
    /// No refresh token of the session was rotated for the idle timeout.
    IdleTimeout,
    /// The session is older than the absolute lifetime.
    AbsoluteLifetime,
}

impl SessionEnd {
    /// The reason of the Unauthorized error: `idle_timeout`,
    /// `absolute_lifetime`.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEnd::IdleTimeout => "idle_timeout",
            SessionEnd::AbsoluteLifetime => "absolute_lifetime",
        }
    }
}

impl std::fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// Which configured limit ended the session, for an Unauthorized error
    /// caused by one; `None` otherwise.
    pub fn session_end(&self) -> Option<SessionEnd> {
        match self {
            Error::Unauthorized { reason } => {
                [SessionEnd::IdleTimeout, SessionEnd::AbsoluteLifetime]
                    .into_iter()
                    .find(|e| e.as_str() == *reason)
            }
            _ => None,
        }
    }

    /// An [`GeneralKind::Internal`] general error with a message and no
    /// source.
    pub fn general(message: impl Into<Cow<'static, str>>) -> Self {
        Error::with_kind(GeneralKind::Internal, message)
    }

    /// A general error of `kind` with a message and no source.
    pub fn with_kind(kind: GeneralKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error::General {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A [`GeneralKind::InvalidArgument`] error: the caller must change the
    /// call.
    pub fn invalid_argument(message: impl Into<Cow<'static, str>>) -> Self {
        Error::with_kind(GeneralKind::InvalidArgument, message)
    }

    /// An internal error caused by `source`.
    pub(crate) fn internal_from(
        message: impl Into<Cow<'static, str>>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::General {
            kind: GeneralKind::Internal,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The kind of a `General` error; `None` for the other three.
    pub fn general_kind(&self) -> Option<GeneralKind> {
        match self {
            Error::General { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Whether retrying the same call may succeed: a `General` error of a
    /// retryable kind (outage, timeout).
    pub fn is_retryable(&self) -> bool {
        self.general_kind().is_some_and(GeneralKind::is_retryable)
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
        let kind = e.kind();
        let message = match kind {
            GeneralKind::Unavailable => "session store unavailable",
            GeneralKind::Timeout => "session store timed out",
            GeneralKind::InvalidArgument => "session store refused the arguments",
            GeneralKind::Internal => "session store failed",
        };
        Error::General {
            kind,
            message: Cow::Borrowed(message),
            source: Some(Box::new(e)),
        }
    }
}

/// Result of a Tessera operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_kept_and_classified() {
        let e: Error = StoreError::new("connection refused").into();
        assert_eq!(e.general_kind(), Some(GeneralKind::Unavailable));
        assert!(e.is_retryable());
        let e: Error = StoreError::with_kind(GeneralKind::Timeout, "slow").into();
        assert_eq!(e.general_kind(), Some(GeneralKind::Timeout));
        assert!(e.is_retryable());
        assert!(
            std::error::Error::source(&e).is_some(),
            "the source is kept"
        );
        let e: Error = StoreError::with_kind(GeneralKind::InvalidArgument, "too long").into();
        assert!(!e.is_retryable());
        assert!(!Error::general("bug").is_retryable());
        assert_eq!(
            Error::general("bug").general_kind(),
            Some(GeneralKind::Internal)
        );
        assert_eq!(Error::unauthorized("x").general_kind(), None);
        assert!(!Error::try_refresh("x").is_retryable());
        assert_eq!(
            Error::unauthorized("idle_timeout").session_end(),
            Some(SessionEnd::IdleTimeout)
        );
        assert_eq!(
            Error::unauthorized("absolute_lifetime").session_end(),
            Some(SessionEnd::AbsoluteLifetime)
        );
        assert_eq!(Error::unauthorized("session expired").session_end(), None);
        assert_eq!(Error::try_refresh("idle_timeout").session_end(), None);
    }
}
