//! Configuration: a builder with the reference library's defaults (docs/PROTOCOL.md §6.1),
//! validated when built.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::BoxError;
use crate::jwk::AccessTokenAlgorithm;
use crate::profile::{CurrentSdk, Profiles, Transport};

/// The cookie `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Sent on top-level navigations and same-site requests. The default.
    #[default]
    Lax,
    /// Sent on same-site requests only.
    Strict,
    /// Sent on cross-site requests too; requires `Secure`.
    None,
}

impl SameSite {
    /// The attribute value as it appears in `Set-Cookie`.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

/// Cookie-name prefix mode (RFC 6265bis "cookie prefixes"). A browser
/// accepts a `__Secure-` cookie only with `Secure` from a secure origin, and a
/// `__Host-` cookie only with `Secure`, `Path=/` and no `Domain`, so a
/// prefixed cookie cannot be planted by a sibling subdomain or over plain
/// HTTP. With a prefix, every session cookie (the id-refresh cookie too) is
/// `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieNamePrefix {
    /// The reference library's names: `sAccessToken`, `sRefreshToken`, `sIdRefreshToken`.
    /// The default.
    #[default]
    None,
    /// `__Secure-sAccessToken`, `__Secure-sRefreshToken`,
    /// `__Secure-sIdRefreshToken`. Needs `cookie_secure`; works with a
    /// cookie domain and any paths.
    Secure,
    /// `__Host-sAccessToken` and `__Host-sIdRefreshToken` (Path=/), and
    /// `__Secure-sRefreshToken` (its path is the refresh path, which
    /// `__Host-` forbids). Needs `cookie_secure`, no cookie domain and the
    /// access-token path `/`.
    Host,
}

/// The three session cookie names of a [`CookieNamePrefix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CookieNames {
    pub(crate) access: &'static str,
    pub(crate) refresh: &'static str,
    pub(crate) id_refresh: &'static str,
}

impl CookieNamePrefix {
    pub(crate) fn names(self) -> CookieNames {
        use crate::http_io::{ACCESS_TOKEN_COOKIE, ID_REFRESH_TOKEN_COOKIE, REFRESH_TOKEN_COOKIE};
        match self {
            CookieNamePrefix::None => CookieNames {
                access: ACCESS_TOKEN_COOKIE,
                refresh: REFRESH_TOKEN_COOKIE,
                id_refresh: ID_REFRESH_TOKEN_COOKIE,
            },
            CookieNamePrefix::Secure => CookieNames {
                access: "__Secure-sAccessToken",
                refresh: "__Secure-sRefreshToken",
                id_refresh: "__Secure-sIdRefreshToken",
            },
            CookieNamePrefix::Host => CookieNames {
                access: "__Host-sAccessToken",
                refresh: "__Secure-sRefreshToken",
                id_refresh: "__Host-sIdRefreshToken",
            },
        }
    }
}

/// A user-supplied function that returns the access-token signing key.
/// It is called every time a token is signed or verified, so it must be
/// cheap (as the reference library documents for `ACCESS_TOKEN_SIGNING_KEY_GET_FUNCTION`).
///
/// The key must be at least 256 bits (32 bytes). `SessionManager::new`
/// calls the function once and fails with a General error if the key is
/// shorter; a later call that returns a short key is a General error too.
pub type SigningKeyFn = Arc<dyn Fn() -> Result<Vec<u8>, BoxError> + Send + Sync>;

/// Where the access-token signing key comes from.
#[derive(Clone)]
pub enum SigningKeySource {
    /// Created on first use, stored in the database, replaced every
    /// `update_interval` (agreed through the database). The default, 24 h.
    Dynamic {
        /// How long a key signs before it is replaced.
        update_interval: Duration,
    },
    /// Created on first use, stored in the database, never rotated
    /// automatically (the admin command can still rotate it).
    Static,
    /// Supplied by the application; overrides the stored key.
    Function(SigningKeyFn),
}

impl fmt::Debug for SigningKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningKeySource::Dynamic { update_interval } => f
                .debug_struct("Dynamic")
                .field("update_interval", update_interval)
                .finish(),
            SigningKeySource::Static => f.write_str("Static"),
            SigningKeySource::Function(_) => f.write_str("Function(<user function>)"),
        }
    }
}

/// Validated configuration. Build it with [`Config::builder`].
#[derive(Clone)]
pub struct Config {
    pub(crate) access_token_validity: Duration,
    pub(crate) access_token_path: String,
    pub(crate) signing_key: SigningKeySource,
    pub(crate) accept_previous_signing_key: bool,
    pub(crate) access_token_algorithm: AccessTokenAlgorithm,
    pub(crate) access_token_issuer: String,
    pub(crate) access_token_audience: Option<String>,
    pub(crate) blacklisting: bool,
    pub(crate) anti_csrf: bool,
    pub(crate) refresh_token_validity: Duration,
    pub(crate) refresh_path: String,
    pub(crate) cookie_domain: Option<String>,
    pub(crate) cookie_secure: bool,
    pub(crate) same_site: SameSite,
    pub(crate) cookie_name_prefix: CookieNamePrefix,
    /// `cookie_name_prefix.names()`, set by `build`: looked up once here
    /// rather than on every `get_session` (deriving it per call measured 8
    /// more instructions there).
    pub(crate) cookie_names: CookieNames,
    pub(crate) session_expired_status: u16,
    pub(crate) revoke_session_on_theft: bool,
    /// The refresh grace window (docs/PROTOCOL.md §3.9); zero is off.
    pub(crate) refresh_grace: Duration,
    /// Optional idle timeout and absolute lifetime (docs/PROTOCOL.md §3.10).
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) absolute_lifetime: Option<Duration>,
    pub(crate) change_feed: Option<ChangeFeedSettings>,
    /// Whether new sessions keep the client address (personal data; off by
    /// default).
    pub(crate) record_client_address: bool,
    pub(crate) clock: Arc<dyn Clock>,
    /// `with_reference_profile` and `with_current_sdk` (docs/PROTOCOL.md §9).
    pub(crate) reference_profile: bool,
    pub(crate) current_sdk: Option<CurrentSdk>,
    /// What the two allow, derived by `build`.
    pub(crate) profiles: Profiles,
}

/// How the change feed reads the store's change log (docs/DISTRIBUTED.md,
/// "The change feed"). Used only with a store that keeps one
/// ([`crate::Store::keeps_change_log`]: the SQL stores and the in-memory
/// store of `tessera-testkit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeFeedSettings {
    /// Time between two reads of the log (on PostgreSQL a read also follows
    /// each `NOTIFY` at once). Default 250 ms.
    pub poll_interval: Duration,
    /// How far behind the log the feed may be while blacklisting answers
    /// from memory. Once the last successful read started longer ago than
    /// this, `get_session` asks the database instead (fails closed). It is
    /// also the promise: a revocation committed anywhere is refused by every
    /// instance at most this long after. Default 1 s.
    pub bound: Duration,
    /// Whether blacklisting answers from the feed's memory (no database
    /// call on `get_session`) while the feed is within `bound`. Default
    /// `false`: blacklisting then asks the database on every request, so a
    /// revocation is refused everywhere from the moment it returns, as the
    /// reference library does; turning this on trades that for "within
    /// `bound`" and a database-free request path. The feed still carries
    /// key rotations either way.
    pub answer_blacklisting: bool,
}

impl Default for ChangeFeedSettings {
    fn default() -> Self {
        ChangeFeedSettings {
            poll_interval: Duration::from_millis(250),
            bound: Duration::from_secs(1),
            answer_blacklisting: false,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("access_token_validity", &self.access_token_validity)
            .field("access_token_path", &self.access_token_path)
            .field("signing_key", &self.signing_key)
            .field(
                "accept_previous_signing_key",
                &self.accept_previous_signing_key,
            )
            .field("access_token_algorithm", &self.access_token_algorithm)
            .field("access_token_issuer", &self.access_token_issuer)
            .field("access_token_audience", &self.access_token_audience)
            .field("blacklisting", &self.blacklisting)
            .field("anti_csrf", &self.anti_csrf)
            .field("refresh_token_validity", &self.refresh_token_validity)
            .field("refresh_path", &self.refresh_path)
            .field("cookie_domain", &self.cookie_domain)
            .field("cookie_secure", &self.cookie_secure)
            .field("same_site", &self.same_site)
            .field("cookie_name_prefix", &self.cookie_name_prefix)
            .field("session_expired_status", &self.session_expired_status)
            .field("revoke_session_on_theft", &self.revoke_session_on_theft)
            .field("refresh_grace", &self.refresh_grace)
            .field("idle_timeout", &self.idle_timeout)
            .field("absolute_lifetime", &self.absolute_lifetime)
            .field("change_feed", &self.change_feed)
            .field("record_client_address", &self.record_client_address)
            .field("reference_profile", &self.reference_profile)
            .field("current_sdk", &self.current_sdk)
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::builder().build().expect("the defaults are valid")
    }
}

/// The `iss` claim of asymmetrically signed access tokens unless
/// `with_access_token_issuer` says otherwise.
pub const DEFAULT_ACCESS_TOKEN_ISSUER: &str = "tessera";
/// The refresh grace window SuperTokens core ships by default
/// (`refresh_token_rotation_grace_period`, 30 s). Tessera's default is no
/// window (the reference library's behaviour); this is the value to pass to
/// [`ConfigBuilder::with_refresh_grace`] for SuperTokens core's behaviour,
/// and the yardstick [`crate::ReuseKind::WithinGrace`] uses when no window is
/// configured.
pub const DEFAULT_REFRESH_GRACE: Duration = Duration::from_secs(30);
/// The longest refresh grace window the builder accepts: every reuse within
/// the window goes unreported, so a long one would hide a thief who waits a
/// few minutes.
pub const REFRESH_GRACE_MAX: Duration = Duration::from_secs(300);

/// Bounds from the reference library's configuration documentation.
pub const ACCESS_TOKEN_VALIDITY_MIN: Duration = Duration::from_secs(10);
/// See [`ACCESS_TOKEN_VALIDITY_MIN`].
pub const ACCESS_TOKEN_VALIDITY_MAX: Duration = Duration::from_secs(86_400_000);
/// The refresh-token validity must be at least an hour...
pub const REFRESH_TOKEN_VALIDITY_MIN: Duration = Duration::from_secs(3600);
/// ...and at most a year (365 × 24 h).
pub const REFRESH_TOKEN_VALIDITY_MAX: Duration = Duration::from_secs(365 * 24 * 3600);
/// The signing-key update interval must be at least an hour...
pub const KEY_UPDATE_INTERVAL_MIN: Duration = Duration::from_secs(3600);
/// ...and at most 720 hours.
pub const KEY_UPDATE_INTERVAL_MAX: Duration = Duration::from_secs(720 * 3600);

impl Config {
    /// A builder holding the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            inner: Config {
                access_token_validity: Duration::from_secs(3600),
                access_token_path: "/".into(),
                signing_key: SigningKeySource::Dynamic {
                    update_interval: Duration::from_secs(24 * 3600),
                },
                accept_previous_signing_key: false,
                access_token_algorithm: AccessTokenAlgorithm::Hs256,
                access_token_issuer: DEFAULT_ACCESS_TOKEN_ISSUER.into(),
                access_token_audience: None,
                blacklisting: false,
                anti_csrf: true,
                refresh_token_validity: Duration::from_secs(2400 * 3600),
                refresh_path: "refresh/".into(),
                cookie_domain: None,
                cookie_secure: true,
                same_site: SameSite::Lax,
                cookie_name_prefix: CookieNamePrefix::None,
                cookie_names: CookieNamePrefix::None.names(),
                session_expired_status: 401,
                revoke_session_on_theft: true,
                refresh_grace: Duration::ZERO,
                idle_timeout: None,
                absolute_lifetime: None,
                change_feed: Some(ChangeFeedSettings::default()),
                record_client_address: false,
                clock: Arc::new(SystemClock),
                reference_profile: true,
                current_sdk: None,
                profiles: Profiles::default(),
            },
            allow_short_validity: false,
            allow_any_positive_validity: false,
        }
    }

    /// Access-token lifetime.
    pub fn access_token_validity(&self) -> Duration {
        self.access_token_validity
    }
    /// The algorithm that signs access tokens.
    pub fn access_token_algorithm(&self) -> AccessTokenAlgorithm {
        self.access_token_algorithm
    }

    /// The `iss` claim of asymmetrically signed access tokens.
    pub fn access_token_issuer(&self) -> &str {
        &self.access_token_issuer
    }

    /// The `aud` claim of asymmetrically signed access tokens, if any.
    pub fn access_token_audience(&self) -> Option<&str> {
        self.access_token_audience.as_deref()
    }

    /// Path attribute of the access-token and id-refresh-token cookies.
    pub fn access_token_path(&self) -> &str {
        &self.access_token_path
    }
    /// Path of the refresh API, which is also the refresh cookie's path.
    /// Always starts with `/`.
    pub fn refresh_path(&self) -> &str {
        &self.refresh_path
    }
    /// Refresh-token (session) lifetime.
    pub fn refresh_token_validity(&self) -> Duration {
        self.refresh_token_validity
    }
    /// Whether the anti-CSRF token is issued and checked.
    pub fn anti_csrf(&self) -> bool {
        self.anti_csrf
    }
    /// Whether `get_session` checks the database for revocation.
    pub fn blacklisting(&self) -> bool {
        self.blacklisting
    }
    /// The HTTP status integrations answer with when a session must be
    /// refreshed or is gone (default 401).
    pub fn session_expired_status(&self) -> u16 {
        self.session_expired_status
    }
    /// The cookie domain, if any (host-only cookies otherwise).
    pub fn cookie_domain(&self) -> Option<&str> {
        self.cookie_domain.as_deref()
    }
    /// Whether cookies carry `Secure`.
    pub fn cookie_secure(&self) -> bool {
        self.cookie_secure
    }
    /// The cookies' `SameSite`.
    pub fn same_site(&self) -> SameSite {
        self.same_site
    }
    /// The cookie-name prefix mode.
    pub fn cookie_name_prefix(&self) -> CookieNamePrefix {
        self.cookie_name_prefix
    }
    /// Name of the access-token cookie (`sAccessToken` unless a prefix mode
    /// is on). Adapters must read and clear cookies under these names.
    pub fn access_token_cookie_name(&self) -> &'static str {
        self.cookie_names.access
    }
    /// Name of the refresh-token cookie.
    pub fn refresh_token_cookie_name(&self) -> &'static str {
        self.cookie_names.refresh
    }
    /// Name of the id-refresh-token cookie.
    pub fn id_refresh_token_cookie_name(&self) -> &'static str {
        self.cookie_names.id_refresh
    }
    /// Whether theft detection also revokes the session.
    pub fn revoke_session_on_theft(&self) -> bool {
        self.revoke_session_on_theft
    }
    /// The refresh grace window; zero when there is none.
    pub fn refresh_grace(&self) -> Duration {
        self.refresh_grace
    }
    /// The idle timeout (`None`: none, the default).
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }
    /// The absolute session lifetime (`None`: none, the default).
    pub fn absolute_lifetime(&self) -> Option<Duration> {
        self.absolute_lifetime
    }
    /// Whether new sessions keep their client address (default `false`;
    /// [`ConfigBuilder::with_record_client_address`]).
    pub fn record_client_address(&self) -> bool {
        self.record_client_address
    }
    /// The change feed's settings (`None`: no feed).
    pub fn change_feed(&self) -> Option<ChangeFeedSettings> {
        self.change_feed
    }
    /// The clock in use.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
    /// Whether requests may use `transport` (docs/PROTOCOL.md §9).
    pub fn allows_transport(&self, transport: Transport) -> bool {
        self.profiles.allows(transport)
    }
    /// The current SDK's refresh API path (`<api_base_path>/session/refresh`,
    /// also the path of its refresh cookie), when the current SDK is allowed.
    pub fn current_sdk_refresh_path(&self) -> Option<&str> {
        self.current_sdk
            .as_ref()
            .map(|_| self.profiles.current_refresh_path.as_str())
    }
    /// The current SDK's sign-out API path (`<api_base_path>/signout`), when
    /// the current SDK is allowed.
    pub fn current_sdk_signout_path(&self) -> Option<&str> {
        self.current_sdk
            .as_ref()
            .map(|_| self.profiles.current_signout_path.as_str())
    }
}

/// The setting a [`ConfigError`] is about, so that a caller (a settings
/// loader, a CLI) can point at the right input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigSetting {
    /// `with_access_token_validity`.
    AccessTokenValidity,
    /// `with_refresh_token_validity` (also its relation to the access-token validity).
    RefreshTokenValidity,
    /// `with_signing_key` (the update interval).
    SigningKey,
    /// `with_same_site` together with `with_cookie_secure`.
    SameSite,
    /// `with_access_token_algorithm` (with the key source and the issuer
    /// and audience).
    AccessTokenAlgorithm,
    /// `with_session_expired_status`.
    SessionExpiredStatus,
    /// `with_access_token_path`.
    AccessTokenPath,
    /// `with_refresh_path`.
    RefreshPath,
    /// `with_cookie_domain`.
    CookieDomain,
    /// `with_cookie_name_prefix` together with the settings it constrains.
    CookieNamePrefix,
    /// `with_change_feed`.
    ChangeFeed,
    /// `with_reference_profile` and `with_current_sdk`.
    ClientProfiles,
    /// `with_refresh_grace`.
    RefreshGrace,
    /// `with_idle_timeout`.
    IdleTimeout,
    /// `with_absolute_lifetime`.
    AbsoluteLifetime,
}

/// A configuration value that cannot work, with what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Tessera configuration: {message}")]
pub struct ConfigError {
    setting: ConfigSetting,
    message: String,
}

impl ConfigError {
    fn new(setting: ConfigSetting, message: impl Into<String>) -> Self {
        ConfigError {
            setting,
            message: message.into(),
        }
    }

    /// The setting to change.
    pub fn setting(&self) -> ConfigSetting {
        self.setting
    }

    /// What is wrong and what to change, without the "invalid Tessera
    /// configuration" prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Builds a [`Config`]; every setter has a secure default.
#[must_use]
pub struct ConfigBuilder {
    inner: Config,
    allow_short_validity: bool,
    allow_any_positive_validity: bool,
}

impl ConfigBuilder {
    /// Access-token lifetime (default 1 h; 10 s ..= 86 400 000 s).
    pub fn with_access_token_validity(mut self, v: Duration) -> Self {
        self.inner.access_token_validity = v;
        self
    }
    /// Access-token cookie path (default `/`).
    pub fn with_access_token_path(mut self, p: impl Into<String>) -> Self {
        self.inner.access_token_path = p.into();
        self
    }
    /// Signing-key source (default dynamic, rotated every 24 h).
    pub fn with_signing_key(mut self, s: SigningKeySource) -> Self {
        self.inner.signing_key = s;
        self
    }
    /// Keep accepting access tokens signed with the previous key until they
    /// expire (default off: the reference library's behaviour, a key change causes
    /// TryRefreshToken).
    pub fn with_accept_previous_signing_key(mut self, on: bool) -> Self {
        self.inner.accept_previous_signing_key = on;
        self
    }
    /// The algorithm that signs access tokens (default HS256, the
    /// reference library's format). EdDSA, ES256 and RS256 sign with a key
    /// pair kept in the database like the HS256 key (generated, shared and
    /// rotated the same way); their public keys are published as a JWKS
    /// (`SessionManager::jwks`) so that other services can verify tokens.
    /// A stored key of another algorithm is replaced at once, so every
    /// instance sharing a database must be configured with the same one.
    pub fn with_access_token_algorithm(mut self, alg: AccessTokenAlgorithm) -> Self {
        self.inner.access_token_algorithm = alg;
        self
    }

    /// The `iss` claim of asymmetrically signed access tokens (default
    /// [`DEFAULT_ACCESS_TOKEN_ISSUER`]); usually the application's URL.
    /// Not written in HS256 mode.
    pub fn with_access_token_issuer(mut self, iss: impl Into<String>) -> Self {
        self.inner.access_token_issuer = iss.into();
        self
    }

    /// The `aud` claim of asymmetrically signed access tokens (default
    /// none). Not written in HS256 mode.
    pub fn with_access_token_audience(mut self, aud: Option<String>) -> Self {
        self.inner.access_token_audience = aud;
        self
    }

    /// Check every `get_session` against the database (default off).
    pub fn with_blacklisting(mut self, on: bool) -> Self {
        self.inner.blacklisting = on;
        self
    }
    /// Issue and check the anti-CSRF token (default on).
    pub fn with_anti_csrf(mut self, on: bool) -> Self {
        self.inner.anti_csrf = on;
        self
    }
    /// Refresh-token lifetime (default 2400 h; 1 h ..= 8760 h).
    pub fn with_refresh_token_validity(mut self, v: Duration) -> Self {
        self.inner.refresh_token_validity = v;
        self
    }
    /// Path of the refresh API and of the refresh cookie (default `refresh/`,
    /// the reference library's, served as `/refresh/`). A path without a leading `/` gets
    /// one, because browsers ignore a cookie `Path` that does not start with
    /// `/`.
    pub fn with_refresh_path(mut self, p: impl Into<String>) -> Self {
        self.inner.refresh_path = p.into();
        self
    }
    /// Cookie `Domain` (default none: host-only cookies).
    pub fn with_cookie_domain(mut self, d: Option<String>) -> Self {
        self.inner.cookie_domain = d;
        self
    }
    /// Cookie `Secure` (default on). Turn off only for plain-HTTP development.
    pub fn with_cookie_secure(mut self, on: bool) -> Self {
        self.inner.cookie_secure = on;
        self
    }
    /// Cookie `SameSite` (default `Lax`; `None` requires `Secure`).
    pub fn with_same_site(mut self, s: SameSite) -> Self {
        self.inner.same_site = s;
        self
    }
    /// Cookie-name prefix mode (default none: the reference library's names). See
    /// [`CookieNamePrefix`]; `build` refuses a mode the other settings
    /// cannot honour.
    pub fn with_cookie_name_prefix(mut self, p: CookieNamePrefix) -> Self {
        self.inner.cookie_name_prefix = p;
        self
    }
    /// Status for Unauthorized / TryRefreshToken / theft (default 401; 4xx).
    pub fn with_session_expired_status(mut self, s: u16) -> Self {
        self.inner.session_expired_status = s;
        self
    }
    /// Revoke the session when refresh-token reuse is detected (default on).
    pub fn with_revoke_session_on_theft(mut self, on: bool) -> Self {
        self.inner.revoke_session_on_theft = on;
        self
    }
    /// A refresh grace window (docs/PROTOCOL.md §3.9): for `grace` after a
    /// promotion, the token it superseded and that token's other children
    /// are answered with a child of the committed token instead of being
    /// reported as theft, and the committed token is not superseded again
    /// (so the window cannot be chained). Off by default, as in the
    /// reference library: a window hides a thief who reuses a token within
    /// it, and the supertokens-website SDK serialises its refreshes so it
    /// does not need one. Turn it on (SuperTokens core uses
    /// [`DEFAULT_REFRESH_GRACE`], 30 s) for clients that refresh without
    /// coordination: several tabs or threads, retries after a lost response.
    /// At most [`REFRESH_GRACE_MAX`]; zero turns it off.
    pub fn with_refresh_grace(mut self, grace: Duration) -> Self {
        self.inner.refresh_grace = grace;
        self
    }
    /// No refresh grace window (the default): any reuse of a superseded
    /// refresh token is theft.
    pub fn without_refresh_grace(mut self) -> Self {
        self.inner.refresh_grace = Duration::ZERO;
        self
    }
    /// The idle timeout, or `None` for none (the default): a session whose
    /// refresh tokens have not been rotated for this long (no promotion,
    /// docs/PROTOCOL.md §3.10) is gone. Its next refresh is Unauthorized with
    /// the reason `idle_timeout` ([`crate::SessionEnd::IdleTimeout`]), and
    /// cleanup removes it. Must be longer than the access-token validity: an
    /// active client rotates once per access token, so a shorter timeout
    /// would end every session between two refreshes.
    pub fn with_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.inner.idle_timeout = timeout;
        self
    }
    /// The absolute lifetime, or `None` for none (the default): a session
    /// created longer ago than this is gone whatever its refreshes. Its next
    /// refresh is Unauthorized with the reason `absolute_lifetime`
    /// ([`crate::SessionEnd::AbsoluteLifetime`]), and cleanup removes it.
    /// Must be positive.
    pub fn with_absolute_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.inner.absolute_lifetime = lifetime;
        self
    }
    /// Whether a new session keeps the client address it was created from
    /// (`tessera_sessions.client_address`, listed by
    /// [`crate::SessionManager::list_sessions_for_user`]). Off by default.
    ///
    /// An IP address is personal data in most jurisdictions (under the GDPR,
    /// for one): turning this on is the operator's decision, and with it
    /// the duty to say so to users and to keep the address no longer than
    /// the session (the row, and the address with it, is deleted at
    /// sign-out, revocation or cleanup). Off, the core drops an address the
    /// caller supplied before anything is stored, so integrations can always
    /// pass one (docs/PROTOCOL.md §3.1). The user agent and the device label
    /// are kept either way.
    pub fn with_record_client_address(mut self, on: bool) -> Self {
        self.inner.record_client_address = on;
        self
    }
    /// The change feed's settings, or `None` to run without one (then a
    /// forced key rotation reaches other instances within
    /// [`crate::KEY_RECHECK_INTERVAL`]). On by default: 250 ms polls, 1 s
    /// bound, carrying key rotations; blacklisting from memory is opt-in
    /// ([`ChangeFeedSettings::answer_blacklisting`]).
    pub fn with_change_feed(mut self, settings: Option<ChangeFeedSettings>) -> Self {
        self.inner.change_feed = settings;
        self
    }

    /// Serve supertokens-website 4.2.0 (the reference profile; default on).
    /// Off, a request without `Authorization: Bearer` and without the
    /// current SDK's cookies has no session.
    pub fn with_reference_profile(mut self, on: bool) -> Self {
        self.inner.reference_profile = on;
        self
    }
    /// Also serve the current supertokens-website SDK (20.x) and API
    /// clients, with the transfer methods `sdk` allows (default none: the
    /// reference profile only). See docs/PROTOCOL.md §9.
    pub fn with_current_sdk(mut self, sdk: Option<CurrentSdk>) -> Self {
        self.inner.current_sdk = sdk;
        self
    }
    /// The clock (default the system clock).
    pub fn with_clock(mut self, c: Arc<dyn Clock>) -> Self {
        self.inner.clock = c;
        self
    }
    /// Lifts the lower bounds on access-token validity (10 s), refresh-token
    /// validity (1 h) and key interval (1 h), for end-to-end tests that want
    /// tokens to expire within seconds. Never use it in production.
    pub fn danger_allow_short_validity_for_tests(mut self) -> Self {
        self.allow_short_validity = true;
        self
    }

    /// Lifts every bound on the access-token validity, the refresh-token
    /// validity and the signing-key update interval (lower and upper) and
    /// the rule that the refresh-token validity be at least the access-token
    /// validity: only a zero duration is refused. For integrations that must
    /// accept whatever their API accepted before (`supertokens-jwt-ref` 2.0
    /// validates no bounds) and report values outside the recommended
    /// ranges ([`ACCESS_TOKEN_VALIDITY_MIN`] and friends) themselves.
    ///
    /// Durations longer than `i64::MAX` milliseconds (about 292 million
    /// years) are cut to that, so that no expiry computation can overflow.
    /// A cookie `Expires` after the year 9999 cannot be written as a
    /// four-digit year, so callers should keep values far below that.
    pub fn danger_allow_any_positive_validity(mut self) -> Self {
        self.allow_any_positive_validity = true;
        self
    }

    /// Validates and returns the configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        let c = self.inner;
        if self.allow_any_positive_validity {
            return build_any_positive(c);
        }
        let short = self.allow_short_validity;
        let secs = |d: Duration| d.as_secs_f64();
        let atv = c.access_token_validity;
        if (!short && atv < ACCESS_TOKEN_VALIDITY_MIN)
            || atv > ACCESS_TOKEN_VALIDITY_MAX
            || atv.is_zero()
        {
            return Err(ConfigError::new(
                ConfigSetting::AccessTokenValidity,
                format!(
                    "access-token validity is {} s; set it between 10 s and 86400000 s",
                    secs(atv)
                ),
            ));
        }
        let rtv = c.refresh_token_validity;
        if (!short && rtv < REFRESH_TOKEN_VALIDITY_MIN)
            || rtv > REFRESH_TOKEN_VALIDITY_MAX
            || rtv.is_zero()
        {
            return Err(ConfigError::new(
                ConfigSetting::RefreshTokenValidity,
                format!(
                    "refresh-token validity is {} h; set it between 1 h and 8760 h (365 days)",
                    secs(rtv) / 3600.0
                ),
            ));
        }
        if rtv < atv {
            return Err(ConfigError::new(ConfigSetting::RefreshTokenValidity,
                "refresh-token validity is shorter than access-token validity; make it at least as long",
            ));
        }
        if let SigningKeySource::Dynamic { update_interval } = c.signing_key {
            if (!short && update_interval < KEY_UPDATE_INTERVAL_MIN)
                || update_interval > KEY_UPDATE_INTERVAL_MAX
                || update_interval.is_zero()
            {
                return Err(ConfigError::new(
                    ConfigSetting::SigningKey,
                    format!(
                        "signing-key update interval is {} h; set it between 1 h and 720 h",
                        secs(update_interval) / 3600.0
                    ),
                ));
            }
        }
        finish(c)
    }
}

/// `build` with [`ConfigBuilder::danger_allow_any_positive_validity`]: zero
/// durations refused, long ones cut to `i64::MAX` ms, then the other checks.
fn build_any_positive(mut c: Config) -> Result<Config, ConfigError> {
    let longest = Duration::from_millis(i64::MAX as u64);
    if c.access_token_validity.is_zero() {
        return Err(ConfigError::new(
            ConfigSetting::AccessTokenValidity,
            "access-token validity is 0 s; it must be positive",
        ));
    }
    if c.refresh_token_validity.is_zero() {
        return Err(ConfigError::new(
            ConfigSetting::RefreshTokenValidity,
            "refresh-token validity is 0 h; it must be positive",
        ));
    }
    c.access_token_validity = c.access_token_validity.min(longest);
    c.refresh_token_validity = c.refresh_token_validity.min(longest);
    if let SigningKeySource::Dynamic { update_interval } = &mut c.signing_key {
        if update_interval.is_zero() {
            return Err(ConfigError::new(
                ConfigSetting::SigningKey,
                "signing-key update interval is 0 h; it must be positive",
            ));
        }
        *update_interval = (*update_interval).min(longest);
    }
    finish(c)
}

/// The checks that do not concern durations, and the derived fields.
fn finish(mut c: Config) -> Result<Config, ConfigError> {
    if c.access_token_algorithm.is_asymmetric() {
        if let SigningKeySource::Function(_) = c.signing_key {
            return Err(ConfigError::new(
                ConfigSetting::AccessTokenAlgorithm,
                format!(
                    "a user-supplied signing-key function gives an HS256 secret, but the \
                     access-token algorithm is {}; use the stored keys (Dynamic or Static) \
                     or HS256",
                    c.access_token_algorithm.jws_name()
                ),
            ));
        }
        // The store keeps two signing keys; the JWKS can list every key
        // whose tokens are unexpired only if a key signs at least as long
        // as a token lives.
        if let SigningKeySource::Dynamic { update_interval } = c.signing_key {
            if update_interval < c.access_token_validity {
                return Err(ConfigError::new(
                    ConfigSetting::AccessTokenAlgorithm,
                    format!(
                        "with {} access tokens the signing-key update interval ({} s) must be \
                         at least the access-token validity ({} s), so that the published \
                         keys cover every unexpired token",
                        c.access_token_algorithm.jws_name(),
                        update_interval.as_secs_f64(),
                        c.access_token_validity.as_secs_f64()
                    ),
                ));
            }
        }
        if c.access_token_issuer.is_empty() || c.access_token_audience.as_deref() == Some("") {
            return Err(ConfigError::new(
                ConfigSetting::AccessTokenAlgorithm,
                "the access-token issuer and audience must not be empty strings \
                 (give no audience instead of an empty one)",
            ));
        }
    }
    if c.refresh_grace > REFRESH_GRACE_MAX {
        return Err(ConfigError::new(
            ConfigSetting::RefreshGrace,
            format!(
                "refresh grace window is {} s; set it to at most {} s (or turn it off)",
                c.refresh_grace.as_secs_f64(),
                REFRESH_GRACE_MAX.as_secs()
            ),
        ));
    }
    if let Some(idle) = c.idle_timeout {
        if idle <= c.access_token_validity {
            return Err(ConfigError::new(
                ConfigSetting::IdleTimeout,
                format!(
                    "idle timeout is {} s, not longer than the access-token validity ({} s): \
                     every session would end between two refreshes; make it longer or turn it off",
                    idle.as_secs_f64(),
                    c.access_token_validity.as_secs_f64()
                ),
            ));
        }
    }
    if let Some(abs) = c.absolute_lifetime {
        if abs.is_zero() {
            return Err(ConfigError::new(
                ConfigSetting::AbsoluteLifetime,
                "absolute session lifetime is 0 s; it must be positive (or turn it off)",
            ));
        }
    }
    if let Some(f) = c.change_feed {
        if f.poll_interval.is_zero() || f.poll_interval >= f.bound {
            return Err(ConfigError::new(
                ConfigSetting::ChangeFeed,
                format!(
                    "change feed: the poll interval ({} ms) must be positive and shorter than the bound ({} ms)",
                    f.poll_interval.as_millis(),
                    f.bound.as_millis()
                ),
            ));
        }
        // The feed's memory knows revocations, not expiries: a row that
        // expired unrevoked is refused by the access token's own expiry,
        // which holds only while access tokens never outlive the row.
        if f.answer_blacklisting && c.refresh_token_validity < c.access_token_validity {
            return Err(ConfigError::new(
                ConfigSetting::ChangeFeed,
                "change feed: answering blacklisting from memory needs a refresh-token validity \
                 at least as long as the access-token validity",
            ));
        }
    }
    if c.same_site == SameSite::None && !c.cookie_secure {
        return Err(ConfigError::new(
            ConfigSetting::SameSite,
            "SameSite=None requires Secure cookies (browsers reject them otherwise); \
                 enable cookie_secure or choose SameSite Lax/Strict",
        ));
    }
    if !(400..=499).contains(&c.session_expired_status) {
        return Err(ConfigError::new(
            ConfigSetting::SessionExpiredStatus,
            format!(
                "session-expired status {} is not a 4xx status; use e.g. 401 (the default) or 440",
                c.session_expired_status
            ),
        ));
    }
    c.access_token_path = normalize_path(
        &c.access_token_path,
        "access-token path",
        ConfigSetting::AccessTokenPath,
    )?;
    c.refresh_path = normalize_path(&c.refresh_path, "refresh path", ConfigSetting::RefreshPath)?;
    if let Some(d) = &c.cookie_domain {
        if d.is_empty()
            || d.contains("://")
            || d.contains(':')
            || d.contains('/')
            || !is_cookie_attr_safe(d)
        {
            return Err(ConfigError::new(ConfigSetting::CookieDomain, format!(
                    "cookie domain {d:?} is not a bare domain; give e.g. \"example.com\" without scheme, port or path"
                )));
        }
    }
    match c.cookie_name_prefix {
        CookieNamePrefix::None => {}
        _ if !c.cookie_secure => {
            return Err(ConfigError::new(
                ConfigSetting::CookieNamePrefix,
                "the __Secure-/__Host- cookie-name prefixes require Secure cookies \
                     (browsers reject them otherwise); enable cookie_secure or use no prefix",
            ))
        }
        CookieNamePrefix::Host if c.cookie_domain.is_some() => {
            return Err(ConfigError::new(
                ConfigSetting::CookieNamePrefix,
                "__Host- cookies cannot carry a Domain; remove the cookie domain or use \
                     CookieNamePrefix::Secure",
            ))
        }
        CookieNamePrefix::Host if c.access_token_path != "/" => {
            return Err(ConfigError::new(
                ConfigSetting::CookieNamePrefix,
                format!(
                    "__Host- cookies must have Path=/ but the access-token path is {:?}; \
                     set it to \"/\" or use CookieNamePrefix::Secure",
                    c.access_token_path
                ),
            ))
        }
        CookieNamePrefix::Secure | CookieNamePrefix::Host => {}
    }
    c.cookie_names = c.cookie_name_prefix.names();
    c.profiles = profiles(&c)?;
    Ok(c)
}

/// The transports allowed, and the current SDK's API paths.
fn profiles(c: &Config) -> Result<Profiles, ConfigError> {
    let mut p = Profiles {
        reference: c.reference_profile,
        ..Profiles::default()
    };
    if let Some(sdk) = &c.current_sdk {
        if !sdk.cookie && !sdk.header {
            return Err(ConfigError::new(
                ConfigSetting::ClientProfiles,
                "the current SDK is allowed with neither cookies nor headers; allow one, \
                 or pass None to with_current_sdk",
            ));
        }
        let base = normalize_path(
            &sdk.api_base_path,
            "current SDK API base path",
            ConfigSetting::ClientProfiles,
        )?;
        let base = base.trim_end_matches('/');
        p.current_cookie = sdk.cookie;
        p.current_header = sdk.header;
        p.current_refresh_path = format!("{base}/session/refresh");
        p.current_signout_path = format!("{base}/signout");
    }
    if !p.reference && !p.current_cookie && !p.current_header {
        return Err(ConfigError::new(
            ConfigSetting::ClientProfiles,
            "no client profile is allowed; keep the reference profile or allow the current SDK",
        ));
    }
    Ok(p)
}

fn is_cookie_attr_safe(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x21..0x7f).contains(&b) && b != b';' && b != b',')
}

fn normalize_path(p: &str, what: &str, setting: ConfigSetting) -> Result<String, ConfigError> {
    if !is_cookie_attr_safe(p) {
        return Err(ConfigError::new(setting, format!(
            "{what} {p:?} contains characters not allowed in a cookie path (spaces, ';', ',' or control characters)"
        )));
    }
    Ok(if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("/{p}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_reference_library() {
        let c = Config::default();
        assert_eq!(c.access_token_validity, Duration::from_secs(3600));
        assert_eq!(c.refresh_token_validity, Duration::from_secs(2400 * 3600));
        assert_eq!(c.access_token_path, "/");
        assert_eq!(c.refresh_path, "/refresh/");
        assert!(c.anti_csrf && c.cookie_secure && !c.blacklisting);
        assert!(c.cookie_domain.is_none());
        assert_eq!(c.session_expired_status, 401);
        assert!(matches!(
            c.signing_key,
            SigningKeySource::Dynamic { update_interval } if update_interval == Duration::from_secs(86400)
        ));
    }

    #[test]
    fn client_addresses_are_not_recorded_by_default() {
        assert!(!Config::default().record_client_address());
        let c = Config::builder()
            .with_record_client_address(true)
            .build()
            .unwrap();
        assert!(c.record_client_address());
    }

    #[test]
    fn idle_timeout_must_outlast_the_access_token() {
        assert_eq!(Config::default().idle_timeout(), None);
        let b = || Config::builder().with_access_token_validity(Duration::from_secs(600));
        for idle in [
            Duration::from_secs(600),
            Duration::from_secs(10),
            Duration::ZERO,
        ] {
            let e = b().with_idle_timeout(Some(idle)).build().unwrap_err();
            assert_eq!(e.setting(), ConfigSetting::IdleTimeout);
            assert!(e.message().contains("access-token validity"), "{e}");
        }
        let c = b()
            .with_idle_timeout(Some(Duration::from_secs(601)))
            .build()
            .unwrap();
        assert_eq!(c.idle_timeout(), Some(Duration::from_secs(601)));
        assert!(b().with_idle_timeout(None).build().is_ok());
    }

    #[test]
    fn absolute_lifetime_must_be_positive() {
        assert_eq!(Config::default().absolute_lifetime(), None);
        let e = Config::builder()
            .with_absolute_lifetime(Some(Duration::ZERO))
            .build()
            .unwrap_err();
        assert_eq!(e.setting(), ConfigSetting::AbsoluteLifetime);
        assert!(e.message().contains("must be positive"), "{e}");
        let c = Config::builder()
            .with_absolute_lifetime(Some(Duration::from_secs(1)))
            .build()
            .unwrap();
        assert_eq!(c.absolute_lifetime(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn invalid_values_are_refused_with_advice() {
        let e = Config::builder()
            .with_same_site(SameSite::None)
            .with_cookie_secure(false)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("SameSite=None requires Secure"));
        let e = Config::builder()
            .with_access_token_validity(Duration::from_secs(5))
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("between 10 s"));
        let e = Config::builder()
            .with_refresh_token_validity(Duration::from_secs(366 * 24 * 3600))
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("8760 h"));
        let e = Config::builder()
            .with_signing_key(SigningKeySource::Dynamic {
                update_interval: Duration::from_secs(721 * 3600),
            })
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("720 h"));
        let e = Config::builder()
            .with_session_expired_status(200)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("4xx"));
        let e = Config::builder()
            .with_cookie_domain(Some("https://x.com".into()))
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("bare domain"));
        assert!(Config::builder()
            .with_same_site(SameSite::None)
            .build()
            .is_ok());
    }

    #[test]
    fn any_positive_validity_lifts_every_duration_bound_but_refuses_zero() {
        let any = || Config::builder().danger_allow_any_positive_validity();
        let dynamic = |d: Duration| SigningKeySource::Dynamic { update_interval: d };
        // Below the lower bounds (1.8 s key interval, as the reference
        // library's own tests use), above the upper ones, refresh < access.
        let c = any()
            .with_signing_key(dynamic(Duration::from_millis(1800)))
            .with_access_token_validity(Duration::from_secs(100_000_000))
            .with_refresh_token_validity(Duration::from_secs(1))
            .build()
            .unwrap();
        assert_eq!(c.access_token_validity(), Duration::from_secs(100_000_000));
        assert_eq!(c.refresh_token_validity(), Duration::from_secs(1));
        // ... but then the change feed cannot answer blacklisting from memory.
        let answering = ChangeFeedSettings {
            answer_blacklisting: true,
            ..ChangeFeedSettings::default()
        };
        let e = any()
            .with_access_token_validity(Duration::from_secs(7200))
            .with_refresh_token_validity(Duration::from_secs(3600))
            .with_change_feed(Some(answering))
            .build()
            .unwrap_err();
        assert_eq!(e.setting(), ConfigSetting::ChangeFeed);
        assert!(any()
            .with_access_token_validity(Duration::from_secs(3600))
            .with_refresh_token_validity(Duration::from_secs(3600))
            .with_change_feed(Some(answering))
            .build()
            .is_ok());
        assert!(Config::builder()
            .danger_allow_short_validity_for_tests()
            .with_access_token_validity(Duration::from_secs(100_000_000))
            .build()
            .is_err());
        // Durations that do not fit in i64 milliseconds are cut to that, so
        // `as_millis() as i64` and the saturating expiry sums stay sane.
        let c = any()
            .with_signing_key(dynamic(Duration::MAX))
            .with_access_token_validity(Duration::MAX)
            .with_refresh_token_validity(Duration::MAX)
            .build()
            .unwrap();
        let longest = Duration::from_millis(i64::MAX as u64);
        assert_eq!(c.access_token_validity(), longest);
        assert_eq!(c.refresh_token_validity(), longest);
        assert!(c.access_token_validity().as_millis() as i64 > 0);
        assert!(matches!(
            c.signing_key,
            SigningKeySource::Dynamic { update_interval } if update_interval == longest
        ));
        for zero in [
            any().with_access_token_validity(Duration::ZERO),
            any().with_refresh_token_validity(Duration::ZERO),
            any().with_signing_key(dynamic(Duration::ZERO)),
        ] {
            assert!(zero
                .build()
                .unwrap_err()
                .to_string()
                .contains("must be positive"));
        }
        // The other checks still apply.
        assert!(any().with_session_expired_status(200).build().is_err());
    }

    #[test]
    fn each_error_names_its_setting() {
        use ConfigSetting as S;
        let cases: Vec<(ConfigBuilder, ConfigSetting)> = vec![
            (
                Config::builder().with_access_token_validity(Duration::from_secs(5)),
                S::AccessTokenValidity,
            ),
            (
                Config::builder().with_refresh_token_validity(Duration::from_secs(60)),
                S::RefreshTokenValidity,
            ),
            (
                Config::builder()
                    .with_access_token_validity(Duration::from_secs(7200))
                    .with_refresh_token_validity(Duration::from_secs(3600)),
                S::RefreshTokenValidity,
            ),
            (
                Config::builder().with_signing_key(SigningKeySource::Dynamic {
                    update_interval: Duration::from_secs(60),
                }),
                S::SigningKey,
            ),
            (
                Config::builder()
                    .with_same_site(SameSite::None)
                    .with_cookie_secure(false),
                S::SameSite,
            ),
            (
                Config::builder().with_session_expired_status(500),
                S::SessionExpiredStatus,
            ),
            (
                Config::builder().with_access_token_path("a b"),
                S::AccessTokenPath,
            ),
            (Config::builder().with_refresh_path("r;x"), S::RefreshPath),
            (
                Config::builder().with_cookie_domain(Some("x.com:80".into())),
                S::CookieDomain,
            ),
            (
                Config::builder()
                    .with_cookie_name_prefix(CookieNamePrefix::Host)
                    .with_cookie_domain(Some("x.com".into())),
                S::CookieNamePrefix,
            ),
        ];
        for (builder, setting) in cases {
            let e = builder.build().unwrap_err();
            assert_eq!(e.setting(), setting, "{e}");
            assert!(e.to_string().ends_with(e.message()));
        }
    }

    #[test]
    fn short_validity_needs_the_danger_switch() {
        let b = || Config::builder().with_access_token_validity(Duration::from_secs(2));
        assert!(b().build().is_err());
        assert!(b().danger_allow_short_validity_for_tests().build().is_ok());
    }
}
