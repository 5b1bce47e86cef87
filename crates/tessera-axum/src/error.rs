//! Tessera errors as HTTP responses (docs/PROTOCOL.md §4.3).

use std::fmt;

use axum::response::{IntoResponse, Response};
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::StatusCode;

use crate::layer::SessionExpiredMarker;

/// A Tessera error on its way to becoming a response.
///
/// Extractors reject with it, and handlers can return it (it converts from
/// [`tessera::Error`], so `?` works on core calls). As a response:
///
/// | kind | status | body |
/// |---|---|---|
/// | `Unauthorized` | session-expired status | `{"error":"unauthorized"}` |
/// | `TryRefreshToken` | session-expired status | `{"error":"try_refresh_token"}` |
/// | `TokenTheftDetected` | session-expired status | `{"error":"token_theft_detected"}` |
/// | `General` | 500 | `{"error":"internal"}` |
///
/// The session-expired status is the configured one
/// (`Config::session_expired_status`, default 401). The error response is
/// made with 401 and a private marker, and [`crate::TesseraLayer`] replaces
/// the status with the configured one, so that `?` needs no access to the
/// configuration. A 500 body says nothing about the cause; the cause is logged
/// with `tracing` at error level.
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
    /// `unauthorized`, `try_refresh_token`, `token_theft_detected` or
    /// `internal`.
    pub fn kind(&self) -> &'static str {
        match &self.0 {
            tessera::Error::General { .. } => "internal",
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
        let body: &'static str = match kind {
            "unauthorized" => r#"{"error":"unauthorized"}"#,
            "try_refresh_token" => r#"{"error":"try_refresh_token"}"#,
            "token_theft_detected" => r#"{"error":"token_theft_detected"}"#,
            _ => r#"{"error":"internal"}"#,
        };
        let mut res = if kind == "internal" {
            // The cause goes to the log, never to the client.
            let mut chain = String::new();
            let mut source = std::error::Error::source(&self.0);
            while let Some(s) = source {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                source = s.source();
            }
            tracing::error!(error = %self.0, cause = %chain, "tessera: internal error");
            (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
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
