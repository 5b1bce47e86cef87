//! # Tessera core
//!
//! The framework-free heart of Tessera: the session system of SuperTokens'
//! "ref-jwt" generation (short-lived JWT access tokens, rotating refresh
//! tokens with theft detection, an id-refresh token, an anti-CSRF token),
//! written to the behaviour contract in `docs/PROTOCOL.md`.
//!
//! ## Design
//!
//! * **[`SessionManager`]** holds the [`Config`], a [`Store`] and the cached
//!   signing keys. Its methods are the reference library's API: `create_new_session`,
//!   `get_session`, `refresh_session`, the by-handle and by-user calls and
//!   `set_headers_for_options_api`.
//! * **Input and output are `http` types** behind two small traits,
//!   [`RequestSource`] (cookies and headers of the request) and
//!   [`ResponseSink`] (cookies and headers to set). `http::HeaderMap`
//!   implements both, so an adapter for any framework is a few lines.
//! * **`get_session` is a pure computation** in the common case: split the
//!   cookie, compare the JWT header with the key's, one HMAC-SHA256, parse
//!   the claims, compare the anti-CSRF token. The database is touched only
//!   with blacklisting on, or once per refresh to promote the new refresh
//!   token (a compare-and-set on the row).
//! * **Stores are small**: one short transaction per method; the protocol's
//!   decisions stay here. See [`Store`] and the `tessera-sqlx` crate.
//! * **Keys** come from the OS CSPRNG, live in the database, and rotate by
//!   agreement through a database row lock. Time comes from a [`Clock`].
//! * **Devices**: a session can record the client it was created for, a
//!   [`SessionDevice`] (user agent, an application label, and the client
//!   address only with [`ConfigBuilder::with_record_client_address`], off by
//!   default because an address is personal data). Values are cleaned and
//!   cut to [`MAX_USER_AGENT_LEN`] / [`MAX_DEVICE_LABEL_LEN`], never refused.
//!   [`SessionManager::list_sessions_for_user`] returns them with each
//!   session's creation and last refresh ([`SessionSummary`]); the last
//!   refresh is the last promotion, so it costs no write, and `get_session`
//!   never writes.
//!
//! ## Example
//!
//! A session's life, run here against the in-memory store of the
//! `tessera-testkit` crate (a real application passes a `tessera-sqlx`
//! store):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tessera::Result<()> {
//! use http::header::{HeaderMap, HeaderValue, COOKIE, SET_COOKIE};
//! use serde_json::json;
//! use tessera::{Config, Error, SessionManager, UserId};
//!
//! let store = tessera_testkit::MemoryStore::new();
//! let manager = SessionManager::new(Config::default(), store).await?;
//!
//! // Sign-in: the three cookies and the anti-csrf header go to the response.
//! let mut response = HeaderMap::new();
//! let session = manager
//!     .create_new_session(&mut response, "alice", json!({"role": "admin"}), json!({}))
//!     .await?;
//! assert_eq!(session.user_id(), &UserId::from("alice"));
//!
//! // The browser sends the cookies back (and the anti-csrf header on POSTs).
//! let cookies: Vec<&str> = response
//!     .get_all(SET_COOKIE)
//!     .iter()
//!     .map(|v| v.to_str().unwrap().split(';').next().unwrap())
//!     .collect();
//! let mut request = HeaderMap::new();
//! request.insert(COOKIE, HeaderValue::from_str(&cookies.join("; ")).unwrap());
//! request.insert("anti-csrf", response["anti-csrf"].clone());
//!
//! // Every authenticated request: no database access.
//! let verified = manager.get_session(&request, &mut HeaderMap::new(), true).await?;
//! assert_eq!(verified.jwt_payload(), &json!({"role": "admin"}));
//!
//! // After revocation the refresh API refuses the session.
//! manager.revoke_session(verified.handle()).await?;
//! let refreshed = manager.refresh_session(&request, &mut HeaderMap::new()).await;
//! assert!(matches!(refreshed, Err(Error::Unauthorized { .. })));
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod clock;
mod config;
mod crypto;
mod device;
mod error;
mod feed;
mod http_io;
mod jwk;
mod keys;
mod manager;
mod profile;
mod session;
mod store;
mod tokens;
mod user_id;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    ChangeFeedSettings, Config, ConfigBuilder, ConfigError, ConfigSetting, CookieNamePrefix,
    SameSite, SigningKeyFn, SigningKeySource, ACCESS_TOKEN_VALIDITY_MAX, ACCESS_TOKEN_VALIDITY_MIN,
    DEFAULT_ACCESS_TOKEN_ISSUER, DEFAULT_REFRESH_GRACE, KEY_UPDATE_INTERVAL_MAX,
    KEY_UPDATE_INTERVAL_MIN, REFRESH_GRACE_MAX, REFRESH_TOKEN_VALIDITY_MAX,
    REFRESH_TOKEN_VALIDITY_MIN,
};
pub use crypto::sha256_hex;
pub use device::{SessionDevice, MAX_CLIENT_ADDRESS_LEN, MAX_DEVICE_LABEL_LEN, MAX_USER_AGENT_LEN};
pub use error::{BoxError, Error, GeneralKind, Result, ReuseKind, SessionEnd};
pub use http_io::{
    cookie_headers_conflict, find_cookie, http_date, ConflictingCookies, CookiePair, CookieSpec,
    RecordedResponse, RequestSource, ResponseChange, ResponseSink, ACCESS_TOKEN_COOKIE,
    ANTI_CSRF_HEADER, ID_REFRESH_TOKEN_COOKIE, ID_REFRESH_TOKEN_HEADER, REFRESH_TOKEN_COOKIE,
};
pub use jwk::AccessTokenAlgorithm;
pub use keys::{Jwks, JWKS_MAX_AGE, KEY_RECHECK_INTERVAL};
pub use manager::{set_headers_for_options_api, SessionManager};
pub use profile::{
    CurrentSdk, Transport, ACCESS_TOKEN_HEADER, AUTH_MODE_HEADER, FRONT_TOKEN_HEADER,
    REFRESH_TOKEN_HEADER,
};
pub use session::Session;
pub use store::{
    Change, ChangeKind, ExpiryCutoff, NewSession, Promotion, RotationDecision, SessionRow,
    SessionSummary, SigningKeys, Store, StoreError, StoreResult, StoredKey, REFRESH_TOKEN_KEY_NAME,
};
pub use user_id::{UserId, MAX_USER_ID_STORAGE_LEN};

/// Internals for the fuzz fixture of `tessera-testkit` (the cargo-fuzz
/// targets in `fuzz/`): what its oracles call or build that is not public
/// API. Hidden, and outside any semver promise; applications must not use it.
#[doc(hidden)]
pub mod __internals {
    pub use crate::http_io::find_cookies;
    pub use crate::tokens::{
        open_refresh_token, parse_claims_fast, seal_refresh_token, sign_access_token, ClaimsIn,
        ClaimsOut, RefreshContents, RefreshKey, SigningKey, MAX_TOKEN_LEN,
    };
}
