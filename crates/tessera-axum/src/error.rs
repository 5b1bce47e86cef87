//! Tessera errors as HTTP responses (docs/PROTOCOL.md §4.3).

use std::fmt;

use axum::response::{IntoResponse, Response};
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::StatusCode;
use tessera::GeneralKind;

use crate::layer::SessionExpiredMarker;

/// A Tessera error on its way to becoming a response.
///
/// Extractors reject with it, and handlers can return it (it converts from
/// [`tessera::Error`], so `?` works on core calls). As a response:
///
/// | kind | status | body |
/// |---|---|---|
/// | `Unauthorized` | session-expired status | `{"error":"unauthorized"}`; ended by a configured lifetime: `{"error":"unauthorized","reason":"idle_timeout"}` or `"absolute_lifetime"` |
/// | `TryRefreshToken` | session-expired status | `{"error":"try_refresh_token"}` |
/// | `TokenTheftDetected` | session-expired status | `{"error":"token_theft_detected"}` |
/// | `General`, kind `Unavailable` or `Timeout` | 503, `Retry-After: 1` | `{"error":"unavailable"}` |
/// | `General`, kind `InvalidArgument` | 400 | `{"error":"invalid_argument"}` |
/// | `General`, kind `Internal` | 500 | `{"error":"internal"}` |
///
/// The session-expired status is the configured one
/// (`Config::session_expired_status`, default 401). The error response is
/// made with 401 and a private marker, and [`crate::TesseraLayer`] replaces
/// the status with the configured one, so that `?` needs no access to the
/// configuration. A `General` body says nothing about the cause (the kind
/// only); the cause is logged with `tracing` (error level for 500 and 503,
/// warn for 400). An outage or a timeout is 503 so that a load balancer or
/// a client knows to retry; misuse is 400 because the same call fails again
/// (for example a user id over the storage limit taken from a request).
pub struct Error(tessera::Error);

impl Error {
    /// The core error.
    pub fn inner(&self) -> &tessera::Error {
        &self.0
    }
    /// The core error, by value.
    pub fn into_inner(self) -> tessera::Error {
        self.0
    }
    /// The short machine-readable kind used in the response body:
    /// `unauthorized`, `try_refresh_token`, `token_theft_detected`,
    /// `unavailable`, `invalid_argument` or `internal`.
    pub fn kind(&self) -> &'static str {
        match &self.0 {
            tessera::Error::General { kind, .. } => match kind {
                GeneralKind::Unavailable | GeneralKind::Timeout => "unavailable",
                GeneralKind::InvalidArgument => "invalid_argument",
                _ => "internal",
            },
            tessera::Error::Unauthorized { .. } => "unauthorized",
            tessera::Error::TryRefreshToken { .. } => "try_refresh_token",
            tessera::Error::TokenTheftDetected { .. } => "token_theft_detected",
            // A kind added to the core later: session-expired kinds keep the
            // front end's refresh logic working; anything else is internal.
            e if e.is_session_expired() => "unauthorized",
            _ => "internal",
        }
    }
    pub(crate) fn layer_missing() -> Self {
        Error(tessera::Error::general(
            "TesseraLayer is not installed: add `.layer(tessera_axum::TesseraLayer::new(manager))` \
             to the router that serves this route",
        ))
    }
}

impl From<tessera::Error> for Error {
    fn from(e: tessera::Error) -> Self {
        Error(e)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let kind = self.kind();
        let body: &'static str = match (kind, self.0.session_end()) {
            // A session ended by the idle timeout or the absolute lifetime
            // says which, so that the front end can tell the user.
            ("unauthorized", Some(tessera::SessionEnd::IdleTimeout)) => {
                r#"{"error":"unauthorized","reason":"idle_timeout"}"#
            }
            ("unauthorized", Some(tessera::SessionEnd::AbsoluteLifetime)) => {
                r#"{"error":"unauthorized","reason":"absolute_lifetime"}"#
            }
            (kind, _) => match kind {
                "unauthorized" => r#"{"error":"unauthorized"}"#,
                "try_refresh_token" => r#"{"error":"try_refresh_token"}"#,
                "token_theft_detected" => r#"{"error":"token_theft_detected"}"#,
                "unavailable" => r#"{"error":"unavailable"}"#,
                "invalid_argument" => r#"{"error":"invalid_argument"}"#,
                _ => r#"{"error":"internal"}"#,
            },
        };
        let general_status = match kind {
            "unavailable" => Some(StatusCode::SERVICE_UNAVAILABLE),
            "invalid_argument" => Some(StatusCode::BAD_REQUEST),
            "internal" => Some(StatusCode::INTERNAL_SERVER_ERROR),
            _ => None,
        };
        let mut res = if let Some(status) = general_status {
            // The cause goes to the log, never to the client.
            let mut chain = String::new();
            let mut source = std::error::Error::source(&self.0);
            while let Some(s) = source {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                source = s.source();
            }
            if status == StatusCode::BAD_REQUEST {
                tracing::warn!(error = %self.0, cause = %chain, "tessera: invalid argument");
            } else {
                tracing::error!(error = %self.0, cause = %chain, kind, "tessera: general error");
            }
            let mut res = (status, body).into_response();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                res.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            res
        } else {
            tracing::debug!(error = %self.0, "tessera: session expired");
            let mut res = (StatusCode::UNAUTHORIZED, body).into_response();
            res.extensions_mut().insert(SessionExpiredMarker);
            res
        };
        let h = res.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}
