//! The session operations of docs/PROTOCOL.md §3.

use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::config::Config;
use crate::crypto::{ct_eq, random_handle, random_token, sha256_hex};
use crate::device::SessionDevice;
use crate::error::{Error, Result, ReuseKind, SessionEnd};
use crate::feed::{self, Feed};
use crate::http_io::{
    CookieSpec, RequestSource, ResponseSink, ANTI_CSRF_HEADER, ID_REFRESH_TOKEN_HEADER,
};
use crate::keys::{KeyManager, KeyRing};
use crate::profile::{
    bearer_token, front_token, Transport, ACCESS_TOKEN_HEADER, FRONT_TOKEN_HEADER,
    REFRESH_TOKEN_HEADER,
};
use crate::session::Session;
use crate::store::{ExpiryCutoff, NewSession, Promotion, SessionRow, SessionSummary, Store};
use crate::tokens::{
    decode_claims, header_kid, open_refresh_token, parse_claims, seal_refresh_token,
    sign_access_token, signature_valid, split_token, ClaimsIn, ClaimsOut, SigningKey, SplitToken,
    StandardClaims,
};
use crate::user_id::{UserId, MAX_USER_ID_STORAGE_LEN};

const EXPOSE_HEADERS: &str = "access-control-expose-headers";

/// Every response that carries a token (a session cookie set or cleared, the
/// `anti-csrf` or `id-refresh-token` header) gets `no-store` added to its
/// `Cache-Control` directives: a shared cache must never hand one user's
/// tokens to another, and a browser must not keep them in its HTTP cache.
/// Added to the list rather than replacing it, so a stricter value the
/// application set is kept (`no-store` overrides any weaker directive, RFC
/// 9111 §5.2.2.5).
const CACHE_CONTROL: &str = "cache-control";

/// Longest id-refresh-token cookie accepted. Tessera writes 43 characters;
/// a longer value is malformed and treated like a missing cookie.
pub(crate) const MAX_ID_REFRESH_LEN: usize = 256;

/// The three session cookies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CookieRole {
    Access,
    Refresh,
    IdRefresh,
    /// The refresh cookie of the current SDK's cookie mode: the same name
    /// at the current SDK's refresh path (docs/PROTOCOL.md §9).
    CurrentRefresh,
}

/// Whether an id-refresh-token cookie value counts as present: non-empty
/// (an empty value is a cleared cookie sent back anyway; Django's test
/// client does) and within [`MAX_ID_REFRESH_LEN`].
fn id_refresh_present(v: Option<&[u8]>) -> bool {
    v.is_some_and(|v| !v.is_empty() && v.len() <= MAX_ID_REFRESH_LEN)
}

/// The entry point: holds the configuration, the store and the cached keys.
/// Cheap to clone (one `Arc`); share one per process.
#[derive(Clone)]
pub struct SessionManager {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: KeyManager,
    /// The change feed, when configured and the store keeps a change log.
    pub(crate) feed: Option<Arc<Feed>>,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// `H(x)` of the protocol, on hex text: `sha256_hex`.
fn h(x: &str) -> String {
    sha256_hex(x.as_bytes())
}

fn secs_to_ms(d: std::time::Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// Whether `s` has the form of an `H1`/`H2`: 64 hex characters.
fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where `part` (a subslice of `whole`) lies in `whole`; for `get_session`.
fn subrange(whole: &[u8], part: &[u8]) -> std::ops::Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    debug_assert!(start <= whole.len() && start + part.len() <= whole.len());
    start..start + part.len()
}

impl SessionManager {
    /// Creates a manager over `store`. Loads (creating on first use) the
    /// refresh-token key and the signing keys, so it fails early with a
    /// General error if the database is unreachable.
    pub async fn new(config: Config, store: impl Store) -> Result<Self> {
        Self::with_shared_store(config, Arc::new(store)).await
    }

    /// Like [`SessionManager::new`] for a store that is already shared.
    pub async fn with_shared_store(config: Config, store: Arc<dyn Store>) -> Result<Self> {
        let keys = KeyManager::new(&config, store.clone()).await?;
        let feed = match config.change_feed {
            // The feed is a task on the caller's tokio runtime; outside one
            // (a manager built under another executor) there is none, and
            // blacklisting and key rechecks work as without a feed.
            Some(settings)
                if store.keeps_change_log() && tokio::runtime::Handle::try_current().is_ok() =>
            {
                Some(Arc::new(Feed::new(settings, config.access_token_validity)))
            }
            _ => None,
        };
        let inner = Arc::new(Inner {
            config,
            store,
            keys,
            feed,
        });
        if let Some(f) = &inner.feed {
            feed::spawn(&inner, f.clone());
        }
        Ok(SessionManager { inner })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    fn now(&self) -> i64 {
        self.inner.config.clock.now_ms()
    }

    // -- create -------------------------------------------------------------

    /// Starts a session for `user_id`: a row in the store, then the three
    /// cookies, the `id-refresh-token` header and (if enabled) the
    /// `anti-csrf` header on `response`.
    ///
    /// With more than one client profile allowed, this uses the default
    /// transport (the reference profile if allowed, docs/PROTOCOL.md §9);
    /// [`SessionManager::create_new_session_for_request`] honours the
    /// request's stated preference.
    pub async fn create_new_session(
        &self,
        response: &mut (impl ResponseSink + ?Sized),
        user_id: impl Into<UserId>,
        jwt_payload: Value,
        session_info: Value,
    ) -> Result<Session> {
        let transport = self.inner.config.profiles.default_transport();
        self.create_new_session_with(transport, response, user_id, jwt_payload, session_info)
            .await
    }

    /// [`SessionManager::create_new_session`] with the transport chosen from
    /// the sign-in request: its `st-auth-mode` preference where the
    /// configuration allows it (docs/PROTOCOL.md §9.2). The session records
    /// the request's `User-Agent` ([`SessionDevice::from_request`]); to add
    /// the client address or a label, call
    /// [`SessionManager::create_new_session_with_device`].
    pub async fn create_new_session_for_request(
        &self,
        request: &(impl RequestSource + ?Sized),
        response: &mut (impl ResponseSink + ?Sized),
        user_id: impl Into<UserId>,
        jwt_payload: Value,
        session_info: Value,
    ) -> Result<Session> {
        let transport = self.transport_for_new_session(request);
        self.create_new_session_with_device(
            transport,
            response,
            user_id,
            jwt_payload,
            session_info,
            SessionDevice::from_request(request),
        )
        .await
    }

    /// The transport a session created for `request` gets (§9.2).
    pub fn transport_for_new_session(&self, request: &(impl RequestSource + ?Sized)) -> Transport {
        self.inner
            .config
            .profiles
            .for_new_session(request.auth_mode_header())
    }

    /// [`SessionManager::create_new_session`] with an explicit transport.
    /// A transport the configuration does not allow is an invalid argument.
    /// The session records no device information.
    pub async fn create_new_session_with(
        &self,
        transport: Transport,
        response: &mut (impl ResponseSink + ?Sized),
        user_id: impl Into<UserId>,
        jwt_payload: Value,
        session_info: Value,
    ) -> Result<Session> {
        self.create_new_session_with_device(
            transport,
            response,
            user_id,
            jwt_payload,
            session_info,
            SessionDevice::default(),
        )
        .await
    }

    /// [`SessionManager::create_new_session_with`], recording `device` in the
    /// session's row for [`SessionManager::list_sessions_for_user`]
    /// (docs/PROTOCOL.md §3.1). The user agent and label are cleaned and cut
    /// to their caps, never refused; the client address is dropped unless
    /// [`crate::ConfigBuilder::with_record_client_address`] is on. Refreshes
    /// never rewrite these fields.
    pub async fn create_new_session_with_device(
        &self,
        transport: Transport,
        response: &mut (impl ResponseSink + ?Sized),
        user_id: impl Into<UserId>,
        jwt_payload: Value,
        session_info: Value,
        device: SessionDevice,
    ) -> Result<Session> {
        if !self.inner.config.profiles.allows(transport) {
            return Err(Error::invalid_argument(
                "this token transport is not allowed by the configuration",
            ));
        }
        let user_id = user_id.into();
        let uid_storage = user_id.to_storage();
        if uid_storage.len() > MAX_USER_ID_STORAGE_LEN {
            return Err(Error::invalid_argument(format!(
                "user id is too long ({} bytes stored, at most {MAX_USER_ID_STORAGE_LEN})",
                uid_storage.len()
            )));
        }
        let cfg = &self.inner.config;
        let now = self.now();
        let handle = random_handle()?;
        let refresh = seal_refresh_token(&self.inner.keys.refresh_key, &handle, &user_id, None)?;
        let payload = RawValue::from_string(jwt_payload.to_string())
            .map_err(|_| Error::invalid_argument("JWT payload is not serialisable JSON"))?;
        let info = session_info.to_string();
        let expires_at = now.saturating_add(secs_to_ms(cfg.refresh_token_validity));
        let ring = self.inner.keys.ring(now).await?;
        let csrf = if cfg.anti_csrf && transport != Transport::CurrentHeader {
            Some(random_token()?)
        } else {
            None
        };
        let device = device.to_columns(cfg.record_client_address);
        let refresh_hash_1 = h(&refresh);
        let (access, access_exp) = self.sign(
            &ring.current,
            &handle,
            &user_id,
            &refresh_hash_1,
            None,
            csrf.as_deref(),
            &payload,
            now,
        )?;
        self.inner
            .store
            .insert_session(&NewSession {
                session_handle: &handle,
                user_id: &user_id,
                refresh_token_hash_2: &h(&refresh_hash_1),
                session_info: &info,
                jwt_payload: payload.get(),
                created_at_ms: now,
                expires_at_ms: expires_at,
                user_agent: device.user_agent.as_deref(),
                client_address: device.client_address.as_deref(),
                device_label: device.label.as_deref(),
            })
            .await?;
        // Only after the row is committed do we hand out tokens.
        self.write_tokens(
            response,
            transport,
            &access,
            access_exp,
            Some((&refresh, expires_at)),
            csrf.as_deref(),
            (&user_id, payload.get()),
        )?;
        Ok(Session::new(
            self.clone(),
            handle,
            user_id,
            payload,
            access_exp,
            transport,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn sign(
        &self,
        key: &SigningKey,
        handle: &str,
        user_id: &UserId,
        rt: &str,
        prt: Option<&str>,
        csrf: Option<&str>,
        payload: &RawValue,
        now: i64,
    ) -> Result<(String, i64)> {
        let exp_ms = now.saturating_add(secs_to_ms(self.inner.config.access_token_validity));
        // JWT times are whole seconds (RFC 7519); round expiry down so the
        // token never outlives its configured validity.
        let exp = exp_ms.div_euclid(1000);
        let cfg = &self.inner.config;
        // Asymmetric mode: the registered claims for other verifiers.
        let sub;
        let std = if key.algorithm().is_asymmetric() {
            sub = user_id.to_string();
            Some(StandardClaims {
                sub: &sub,
                iss: &cfg.access_token_issuer,
                aud: cfg.access_token_audience.as_deref(),
            })
        } else {
            None
        };
        let token = sign_access_token(
            key,
            &ClaimsOut {
                sh: handle,
                uid: user_id,
                rt,
                prt,
                csrf,
                std,
                pld: payload,
                iat: now.div_euclid(1000),
                exp,
            },
        )?;
        Ok((token, exp * 1000))
    }

    /// Sets the access-token cookie and, when given, the refresh-token and
    /// id-refresh-token cookies, the `id-refresh-token` header and the
    /// `anti-csrf` header.
    ///
    /// In the current SDK's profile (§9.3) the id-refresh token is replaced
    /// by the `front-token` header (built from `front`: the user id and the
    /// JWT payload's JSON text), and in header mode the tokens go in the
    /// `st-access-token` / `st-refresh-token` headers instead of cookies.
    #[allow(clippy::too_many_arguments)]
    fn write_tokens(
        &self,
        response: &mut (impl ResponseSink + ?Sized),
        transport: Transport,
        access: &str,
        access_exp_ms: i64,
        refresh: Option<(&str, i64)>,
        csrf: Option<&str>,
        front: (&UserId, &str),
    ) -> Result<()> {
        let cfg = &self.inner.config;
        if transport != Transport::Reference {
            return self.write_current_tokens(
                response,
                transport,
                access,
                access_exp_ms,
                refresh,
                csrf,
                front,
            );
        }
        response.append_to_list_header(CACHE_CONTROL, "no-store");
        response.set_cookie(self.cookie(CookieRole::Access, access.to_owned(), access_exp_ms));
        if let Some((refresh, refresh_exp)) = refresh {
            response.set_cookie(self.cookie(CookieRole::Refresh, refresh.to_owned(), refresh_exp));
            let id_refresh = random_token()?;
            response.set_cookie(self.cookie(
                CookieRole::IdRefresh,
                id_refresh.clone(),
                refresh_exp,
            ));
            response.set_header(
                ID_REFRESH_TOKEN_HEADER,
                &format!("{id_refresh};{refresh_exp}"),
            );
            response.append_to_list_header(EXPOSE_HEADERS, ID_REFRESH_TOKEN_HEADER);
        }
        if let (Some(csrf), true) = (csrf, cfg.anti_csrf) {
            response.set_header(ANTI_CSRF_HEADER, csrf);
            response.append_to_list_header(EXPOSE_HEADERS, ANTI_CSRF_HEADER);
        }
        Ok(())
    }

    /// [`SessionManager::write_tokens`] for the current SDK's two transfer
    /// methods (docs/PROTOCOL.md §9.3).
    #[allow(clippy::too_many_arguments)]
    fn write_current_tokens(
        &self,
        response: &mut (impl ResponseSink + ?Sized),
        transport: Transport,
        access: &str,
        access_exp_ms: i64,
        refresh: Option<(&str, i64)>,
        csrf: Option<&str>,
        (uid, payload_json): (&UserId, &str),
    ) -> Result<()> {
        let cfg = &self.inner.config;
        response.append_to_list_header(CACHE_CONTROL, "no-store");
        if transport == Transport::CurrentHeader {
            response.set_header(ACCESS_TOKEN_HEADER, access);
            response.append_to_list_header(EXPOSE_HEADERS, ACCESS_TOKEN_HEADER);
            if let Some((refresh, _)) = refresh {
                response.set_header(REFRESH_TOKEN_HEADER, refresh);
                response.append_to_list_header(EXPOSE_HEADERS, REFRESH_TOKEN_HEADER);
            }
        } else {
            // The access cookie lives as long as the session (the token
            // inside expires sooner), so that a request without one has no
            // session rather than an expired token (§9.4).
            let session_exp = match refresh {
                Some((_, exp)) => exp,
                None => self
                    .now()
                    .saturating_add(secs_to_ms(cfg.refresh_token_validity)),
            };
            response.set_cookie(self.cookie(CookieRole::Access, access.to_owned(), session_exp));
            if let Some((refresh, refresh_exp)) = refresh {
                response.set_cookie(self.cookie(
                    CookieRole::CurrentRefresh,
                    refresh.to_owned(),
                    refresh_exp,
                ));
            }
            if let (Some(csrf), true) = (csrf, cfg.anti_csrf) {
                response.set_header(ANTI_CSRF_HEADER, csrf);
                response.append_to_list_header(EXPOSE_HEADERS, ANTI_CSRF_HEADER);
            }
        }
        response.set_header(
            FRONT_TOKEN_HEADER,
            &front_token(uid, access_exp_ms, payload_json),
        );
        response.append_to_list_header(EXPOSE_HEADERS, FRONT_TOKEN_HEADER);
        Ok(())
    }

    /// The cookie of `role` as set (and, with an empty value and expiry 0,
    /// cleared): one place decides name, path, domain and flags, so clearing
    /// always matches setting.
    fn cookie(&self, role: CookieRole, value: String, expires_ms: i64) -> CookieSpec {
        let cfg = &self.inner.config;
        let names = &cfg.cookie_names;
        let (name, path, http_only, secure) = match role {
            CookieRole::Refresh => (names.refresh, &cfg.refresh_path, true, cfg.cookie_secure),
            CookieRole::CurrentRefresh => (
                names.refresh,
                &cfg.profiles.current_refresh_path,
                true,
                cfg.cookie_secure,
            ),
            CookieRole::Access => (
                names.access,
                &cfg.access_token_path,
                true,
                cfg.cookie_secure,
            ),
            // The front end must read it, and the reference library sends it without
            // Secure; a cookie-name prefix requires Secure (and the prefix
            // modes require HTTPS anyway).
            CookieRole::IdRefresh => (
                names.id_refresh,
                &cfg.access_token_path,
                false,
                cfg.cookie_name_prefix != crate::CookieNamePrefix::None,
            ),
        };
        // SameSite=None is only valid with Secure; the id-refresh cookie is
        // never Secure (the reference library's rule), so it falls back to Lax then.
        let same_site = if !secure && cfg.same_site == crate::SameSite::None {
            crate::SameSite::Lax
        } else {
            cfg.same_site
        };
        CookieSpec {
            name,
            value,
            expires_ms,
            path: path.clone(),
            domain: cfg.cookie_domain.clone(),
            secure,
            http_only,
            same_site,
        }
    }

    /// Clears the three session cookies (empty value, expiry in 1970, same
    /// path and domain) and sends `id-refresh-token: remove`.
    pub fn clear_session_cookies(&self, response: &mut (impl ResponseSink + ?Sized)) {
        for role in [
            CookieRole::Access,
            CookieRole::Refresh,
            CookieRole::IdRefresh,
        ] {
            response.set_cookie(self.cookie(role, String::new(), 0));
        }
        response.set_header(ID_REFRESH_TOKEN_HEADER, "remove");
        response.append_to_list_header(EXPOSE_HEADERS, ID_REFRESH_TOKEN_HEADER);
        response.append_to_list_header(CACHE_CONTROL, "no-store");
    }

    /// Clears the session's tokens the way `transport` carries them: the
    /// reference profile's three cookies ([`SessionManager::clear_session_cookies`]);
    /// in the current SDK's cookie mode the access and refresh cookies and
    /// `front-token: remove`; in header mode empty `st-access-token` and
    /// `st-refresh-token` headers and `front-token: remove` (§9.5).
    pub fn clear_session_tokens(
        &self,
        transport: Transport,
        response: &mut (impl ResponseSink + ?Sized),
    ) {
        match transport {
            Transport::Reference => self.clear_session_cookies(response),
            Transport::CurrentCookie | Transport::CurrentHeader => {
                if transport == Transport::CurrentCookie {
                    response.set_cookie(self.cookie(CookieRole::Access, String::new(), 0));
                    response.set_cookie(self.cookie(CookieRole::CurrentRefresh, String::new(), 0));
                } else {
                    for name in [ACCESS_TOKEN_HEADER, REFRESH_TOKEN_HEADER] {
                        response.set_header(name, "");
                        response.append_to_list_header(EXPOSE_HEADERS, name);
                    }
                }
                response.set_header(FRONT_TOKEN_HEADER, "remove");
                response.append_to_list_header(EXPOSE_HEADERS, FRONT_TOKEN_HEADER);
                response.append_to_list_header(CACHE_CONTROL, "no-store");
            }
        }
    }

    /// Unauthorized, clearing the session's tokens only if the request
    /// carried at least one of them. A request with none has nothing to
    /// clear, and clearing anyway would let any web page log its visitors
    /// out: a cross-site form POST arrives without `SameSite=Lax` cookies,
    /// yet the browser applies the `Set-Cookie` headers of the answer.
    fn unauthorized(
        &self,
        request: &(impl RequestSource + ?Sized),
        response: &mut (impl ResponseSink + ?Sized),
        transport: Transport,
        reason: &'static str,
    ) -> Error {
        if transport == Transport::CurrentHeader || self.carries_session_cookie(request) {
            self.clear_session_tokens(transport, response);
        }
        Error::unauthorized(reason)
    }

    /// Whether the request has a cookie of one of the three session names
    /// (whatever its value).
    fn carries_session_cookie(&self, request: &(impl RequestSource + ?Sized)) -> bool {
        let names = &self.inner.config.cookie_names;
        [names.access, names.refresh, names.id_refresh]
            .into_iter()
            .any(|n| request.cookie(n).is_some())
    }

    /// The transport of a request that carries no bearer token (§9.1): the
    /// current SDK's cookie mode if it says so (`st-auth-mode`) or carries
    /// no id-refresh cookie, which only the reference profile sets.
    /// `id_refresh` is that cookie if the caller has read it already.
    fn cookie_transport(
        &self,
        request: &(impl RequestSource + ?Sized),
        id_refresh: Option<Option<&[u8]>>,
    ) -> Option<Transport> {
        self.inner.config.profiles.cookie_transport(|| {
            request.auth_mode_header().is_some()
                || id_refresh
                    .unwrap_or_else(|| request.cookie(self.inner.config.cookie_names.id_refresh))
                    .is_none()
        })
    }

    // -- verify -------------------------------------------------------------

    /// Verifies the session of a request (docs/PROTOCOL.md §3.2). Needs
    /// no database access unless blacklisting is on or this is the first use
    /// of an access token issued by a refresh. `enable_csrf_protection` is
    /// ignored (treated as false) when anti-CSRF is disabled in the config.
    pub async fn get_session(
        &self,
        request: &(impl RequestSource + ?Sized),
        response: &mut (impl ResponseSink + ?Sized),
        enable_csrf_protection: bool,
    ) -> Result<Session> {
        let cfg = &self.inner.config;
        // A bearer token: header mode, no anti-CSRF (nothing ambient).
        if cfg.profiles.current_header {
            if let Some(token) = request.authorization_header().and_then(bearer_token) {
                return self
                    .verify_access_token(request, response, token, Transport::CurrentHeader, false)
                    .await;
            }
        }
        let names = &cfg.cookie_names;
        // Both cookies in one pass, refusing two different copies of either
        // rather than letting the browser's order choose (cookie tossing,
        // SECURITY.md R4).
        let Ok((id_refresh, access)) = request.checked_cookie_pair(names.id_refresh, names.access)
        else {
            let Some(transport) = self.cookie_transport(request, None) else {
                return Err(Error::unauthorized("no bearer token"));
            };
            return Err(self.unauthorized(
                request,
                response,
                transport,
                "conflicting session cookies",
            ));
        };
        let Some(transport) = self.cookie_transport(request, Some(id_refresh)) else {
            return Err(Error::unauthorized("no bearer token"));
        };
        let token = if transport == Transport::Reference {
            if !id_refresh_present(id_refresh) {
                return Err(self.unauthorized(
                    request,
                    response,
                    transport,
                    "no id-refresh-token cookie",
                ));
            }
            let Some(token) = access else {
                return Err(Error::try_refresh("no access-token cookie"));
            };
            token
        } else {
            // The current SDK's access cookie lives as long as the session.
            let Some(token) = access else {
                return Err(Error::unauthorized("no access-token cookie"));
            };
            token
        };
        self.verify_access_token(request, response, token, transport, enable_csrf_protection)
            .await
    }

    /// §3.2 from step 4 on, for an access token found by `transport`.
    async fn verify_access_token(
        &self,
        request: &(impl RequestSource + ?Sized),
        response: &mut (impl ResponseSink + ?Sized),
        token: &[u8],
        transport: Transport,
        enable_csrf_protection: bool,
    ) -> Result<Session> {
        let now = self.now();
        let split =
            split_token(token).ok_or_else(|| Error::try_refresh("malformed access token"))?;
        let (verdict, reload_due) = self
            .inner
            .keys
            .with_verification_ring(now, |ring| self.check_signature(ring, &split, now))?;
        if reload_due {
            self.spawn_key_reload(now).await;
        }
        let key_ok = match verdict {
            Some(ok) => ok,
            // A key id we do not know: another instance may have rotated.
            None if header_kid(split.header).is_some() => {
                match self.inner.keys.reload_for_unknown_kid(now).await {
                    Ok(Some(r)) => self.check_signature(&r, &split, now).unwrap_or(false),
                    Ok(None) => false,
                    // The keys cannot be reloaded (the database is down):
                    // the token cannot be checked with the keys at hand, so
                    // it is one to refresh, never a General error for what
                    // may be a forged header. The refresh that follows
                    // meets the outage as a retryable General error.
                    Err(e) => {
                        tracing::debug!(error = %e, "tessera: key reload for an unknown kid failed");
                        false
                    }
                }
            }
            None => false,
        };
        if !key_ok {
            return Err(Error::try_refresh(
                "access token signature or key is not valid",
            ));
        }
        // The decoded claims (UTF-8 text); the Session keeps them.
        let buf =
            decode_claims(split.claims).ok_or_else(|| Error::try_refresh("malformed claims"))?;
        let claims: ClaimsIn<'_> =
            parse_claims(&buf).ok_or_else(|| Error::try_refresh("malformed claims"))?;
        if now >= claims.exp.saturating_mul(1000) {
            return Err(Error::try_refresh("access token expired"));
        }
        let cfg = &self.inner.config;
        if enable_csrf_protection && cfg.anti_csrf {
            let ok = match (request.anti_csrf_header(), claims.csrf) {
                (Some(sent), Some(expected)) => ct_eq(sent, expected.as_bytes()),
                _ => false,
            };
            if !ok {
                return Err(Error::try_refresh("anti-CSRF check failed"));
            }
        }
        if cfg.blacklisting && !self.session_is_live(claims.sh, now).await? {
            return Err(self.unauthorized(request, response, transport, "session revoked"));
        }
        // The Session keeps the decoded claims and points into them.
        let handle = subrange(buf.as_bytes(), claims.sh.as_bytes());
        let payload_json = subrange(buf.as_bytes(), claims.pld.as_bytes());
        let Some(prt) = claims.prt else {
            let exp = claims.exp.saturating_mul(1000);
            let uid = claims.uid;
            return Ok(Session::from_text(
                self.clone(),
                buf,
                handle,
                uid,
                payload_json,
                exp,
                transport,
            ));
        };
        // First use of an access token issued by a refresh: promote its
        // refresh token to be the committed one (compare-and-set). The new
        // access token carries the payload again, so it is validated as JSON
        // first (`parse_claims` leaves that to its users), before anything
        // is written.
        let payload: &RawValue =
            serde_json::from_str(claims.pld).map_err(|_| Error::try_refresh("malformed claims"))?;
        let rt_hash_2 = h(claims.rt);
        let prt_hash_2 = h(prt);
        let promoted = self
            .inner
            .store
            .compare_and_set_refresh_hash(
                &Promotion {
                    session_handle: claims.sh,
                    expected_hash_2: &prt_hash_2,
                    new_hash_2: &rt_hash_2,
                    new_expires_at_ms: now.saturating_add(secs_to_ms(cfg.refresh_token_validity)),
                    // The row keeps it as the committed token's H1 when a
                    // grace window needs it (§3.9); only a hash may go there
                    // (every token Tessera signs has one).
                    new_hash_1: (self.grace_ms() > 0 && is_hash(claims.rt)).then_some(claims.rt),
                    not_superseded_after_ms: self.not_superseded_after(now),
                },
                now,
            )
            .await?;
        if !promoted {
            match self.inner.store.load_session(claims.sh).await? {
                Some(row)
                    if row.expires_at_ms > now
                        && ct_eq(row.refresh_token_hash_2.as_bytes(), rt_hash_2.as_bytes()) => {}
                // Within the grace window the committed token is frozen: a
                // child of it is accepted unpromoted (a later use after the
                // window promotes it).
                Some(row)
                    if row.expires_at_ms > now
                        && self.grace_open(&row, now)
                        && ct_eq(row.refresh_token_hash_2.as_bytes(), prt_hash_2.as_bytes()) => {}
                // Within the grace window, an access token of the superseded
                // generation (its refresh token is the superseded one or a
                // sibling of the committed one): the client is sent to
                // refresh, where its refresh token converges on the
                // committed one (§3.9). No refresh token is minted from an
                // access token.
                Some(row)
                    if row.expires_at_ms > now
                        && self.grace_open(&row, now)
                        && row.previous_hash_2.as_deref().is_some_and(|p| {
                            ct_eq(p.as_bytes(), prt_hash_2.as_bytes())
                                || ct_eq(p.as_bytes(), rt_hash_2.as_bytes())
                        }) =>
                {
                    tracing::info!(
                        target: "tessera::security",
                        event = "superseded_access_token",
                        reuse = ReuseKind::WithinGrace.as_str(),
                        user_id = %row.user_id,
                        session_handle = %row.session_handle,
                        "an access token of the superseded generation was used within the refresh \
                         grace window: the client is asked to refresh"
                    );
                    return Err(Error::try_refresh(
                        "access token superseded within the grace window",
                    ));
                }
                Some(row) if row.expires_at_ms > now => {
                    let reuse = self.classify_reuse(&row, &rt_hash_2, Some(&prt_hash_2), now);
                    // Another child of the same refresh token was promoted
                    // first: someone else holds this session's refresh token
                    // (a thief who refreshed before this client, or two
                    // uncoordinated refreshes of one client). This client
                    // cannot refresh any more, so theft would never be
                    // reported at the refresh API: report it here.
                    tracing::warn!(
                        target: "tessera::security",
                        event = "superseded_access_token",
                        reuse = reuse.as_str(),
                        user_id = %row.user_id,
                        session_handle = %row.session_handle,
                        "an access token whose refresh token lost to another child of the same \
                         parent was used: another holder of the session's refresh token refreshed \
                         first (possible token theft); this client is logged out"
                    );
                    return Err(self.unauthorized(
                        request,
                        response,
                        transport,
                        "access token superseded",
                    ));
                }
                Some(_) => {
                    return Err(self.unauthorized(request, response, transport, "session expired"))
                }
                None => {
                    return Err(self.unauthorized(
                        request,
                        response,
                        transport,
                        "session not found",
                    ))
                }
            }
        }
        // Signed with the current key now (the ring may have been reloaded
        // while the store was answering).
        let ring = self.inner.keys.cached_ring(now)?;
        let (access, access_exp) = self.sign(
            &ring.current,
            claims.sh,
            &claims.uid,
            claims.rt,
            None,
            claims.csrf,
            payload,
            now,
        )?;
        self.write_tokens(
            response,
            transport,
            &access,
            access_exp,
            None,
            None,
            (&claims.uid, payload.get()),
        )?;
        let uid = claims.uid;
        Ok(Session::from_text(
            self.clone(),
            buf,
            handle,
            uid,
            payload_json,
            access_exp,
            transport,
        ))
    }

    /// Reloads the signing keys on a background task, so the request does not
    /// wait on the database (inline only when no tokio runtime is running).
    async fn spawn_key_reload(&self, now: i64) {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let this = self.clone();
                rt.spawn(async move { this.inner.keys.background_reload(now).await });
            }
            Err(_) => self.inner.keys.background_reload(now).await,
        }
    }

    /// `Some(valid)` if the token's header names a key in `ring` (current, or
    /// previous while it is still accepted); `None` if it names none.
    fn check_signature(&self, ring: &KeyRing, t: &SplitToken<'_>, now: i64) -> Option<bool> {
        if t.header == ring.current.header_b64.as_bytes() {
            return Some(signature_valid(&ring.current, t));
        }
        match &ring.previous {
            Some((prev, until)) if t.header == prev.header_b64.as_bytes() => {
                Some(now < *until && signature_valid(prev, t))
            }
            _ => None,
        }
    }

    // -- idle timeout and absolute lifetime (§3.10) -------------------------

    /// What cleanup removes at `now`.
    fn expiry_cutoff(&self, now: i64) -> ExpiryCutoff {
        let cfg = &self.inner.config;
        let before =
            |d: Duration| now.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        ExpiryCutoff {
            now_ms: now,
            idle_cutoff_ms: cfg.idle_timeout.map(before),
            created_cutoff_ms: cfg.absolute_lifetime.map(before),
        }
    }

    /// Which configured limit has ended the session of `row` at `now`, if
    /// any. The absolute lifetime is reported first: it ends the session
    /// whatever the client does.
    fn session_end(&self, row: &SessionRow, now: i64) -> Option<SessionEnd> {
        let cutoff = self.expiry_cutoff(now);
        if row.created_at_ms <= cutoff.created_bound() {
            Some(SessionEnd::AbsoluteLifetime)
        } else if row.superseded_at_ms.unwrap_or(row.created_at_ms) <= cutoff.idle_bound() {
            Some(SessionEnd::IdleTimeout)
        } else {
            None
        }
    }

    // -- the refresh grace window (§3.9) -----------------------------------

    /// The grace window in ms; 0 when off.
    fn grace_ms(&self) -> i64 {
        i64::try_from(self.inner.config.refresh_grace.as_millis()).unwrap_or(i64::MAX)
    }

    /// [`Promotion::not_superseded_after_ms`] for a promotion at `now`.
    fn not_superseded_after(&self, now: i64) -> i64 {
        match self.grace_ms() {
            0 => i64::MAX,
            g => now.saturating_sub(g),
        }
    }

    /// Whether the row's grace window is open at `now`: a window is
    /// configured, the last promotion kept the committed token's `H1` (it
    /// does only with a window configured) and was less than the window ago.
    /// The store's freeze ([`Promotion::not_superseded_after_ms`]) applies on
    /// the same condition.
    fn grace_open(&self, row: &SessionRow, now: i64) -> bool {
        let g = self.grace_ms();
        g > 0
            && row.committed_hash_1.is_some()
            && row
                .superseded_at_ms
                .is_some_and(|t| now < t.saturating_add(g))
    }

    /// Whether the token of `hash_2` (with parent `parent_hash_2`) is the
    /// one the row's last promotion superseded, or a child of it.
    fn is_previous_generation(
        &self,
        row: &SessionRow,
        hash_2: &str,
        parent_hash_2: Option<&str>,
    ) -> bool {
        row.previous_hash_2.as_deref().is_some_and(|p| {
            ct_eq(p.as_bytes(), hash_2.as_bytes())
                || parent_hash_2.is_some_and(|q| ct_eq(p.as_bytes(), q.as_bytes()))
        })
    }

    /// Which kind of reuse a refused token is ([`ReuseKind`]).
    fn classify_reuse(
        &self,
        row: &SessionRow,
        hash_2: &str,
        parent_hash_2: Option<&str>,
        now: i64,
    ) -> ReuseKind {
        let Some(previous) = row.previous_hash_2.as_deref() else {
            return ReuseKind::StaleLineage;
        };
        let is_previous = ct_eq(previous.as_bytes(), hash_2.as_bytes());
        let is_sibling = parent_hash_2.is_some_and(|q| ct_eq(previous.as_bytes(), q.as_bytes()));
        if !is_previous && !is_sibling {
            return ReuseKind::StaleLineage;
        }
        let window = match self.grace_ms() {
            0 => secs_to_ms(crate::DEFAULT_REFRESH_GRACE),
            g => g,
        };
        if row
            .superseded_at_ms
            .is_some_and(|t| now < t.saturating_add(window))
        {
            ReuseKind::WithinGrace
        } else if is_sibling {
            ReuseKind::OrphanedBranch
        } else {
            ReuseKind::SilentThief
        }
    }

    // -- refresh ------------------------------------------------------------

    /// Rotates the refresh token (docs/PROTOCOL.md §3.3): issues a
    /// child refresh token, a new access token, anti-CSRF token and id
    /// refresh token. Reuse of a superseded refresh token is theft.
    pub async fn refresh_session(
        &self,
        request: &(impl RequestSource + ?Sized),
        response: &mut (impl ResponseSink + ?Sized),
    ) -> Result<Session> {
        let cfg = &self.inner.config;
        let (token, transport) = 'found: {
            // Header mode: the refresh token as a bearer token (§9.1).
            if cfg.profiles.current_header {
                if let Some(token) = request.authorization_header().and_then(bearer_token) {
                    break 'found (token, Transport::CurrentHeader);
                }
            }
            let Some(transport) = self.cookie_transport(request, None) else {
                return Err(Error::unauthorized("no bearer token"));
            };
            let names = &cfg.cookie_names;
            if request.has_conflicting_cookies(&[names.refresh, names.id_refresh]) {
                return Err(self.unauthorized(
                    request,
                    response,
                    transport,
                    "conflicting session cookies",
                ));
            }
            let id_refresh_ok = transport != Transport::Reference
                || id_refresh_present(request.cookie(names.id_refresh));
            let (Some(token), true) = (request.cookie(names.refresh), id_refresh_ok) else {
                return Err(self.unauthorized(
                    request,
                    response,
                    transport,
                    "refresh or id-refresh-token cookie missing",
                ));
            };
            (token, transport)
        };
        let Some(contents) = open_refresh_token(&self.inner.keys.refresh_key, token) else {
            return Err(self.unauthorized(
                request,
                response,
                transport,
                "refresh token cannot be opened",
            ));
        };
        // The cookie opened, so it is our base64url text; anything else is a
        // token we did not make.
        let Ok(token) = std::str::from_utf8(token) else {
            return Err(self.unauthorized(
                request,
                response,
                transport,
                "refresh token cannot be opened",
            ));
        };
        let store = &self.inner.store;
        let handle = contents.session_handle.as_str();
        let r_hash_1 = h(token);
        let r_hash_2 = h(&r_hash_1);
        let parent_hash_2 = contents.parent_hash_1.as_deref().map(h);
        // At most a few rounds: a lost compare-and-set means someone else
        // changed the row, and the next read decides.
        for _ in 0..4 {
            let now = self.now();
            let row = match store.load_session(handle).await? {
                Some(row) if row.expires_at_ms > now && row.user_id == contents.user_id => row,
                _ => {
                    return Err(self.unauthorized(
                        request,
                        response,
                        transport,
                        "session expired or revoked",
                    ))
                }
            };
            // The idle timeout and the absolute lifetime (§3.10): such a
            // session is gone. The row is removed before the answer clears
            // the tokens, so a failing delete leaves the response untouched.
            if let Some(end) = self.session_end(&row, now) {
                store.delete_session(handle).await?;
                if let Some(f) = &self.inner.feed {
                    f.note_revoked(handle);
                }
                tracing::info!(
                    user_id = %row.user_id,
                    session_handle = %row.session_handle,
                    reason = end.as_str(),
                    "tessera: session ended by its configured lifetime"
                );
                return Err(self.unauthorized(request, response, transport, end.as_str()));
            }
            let committed = row.refresh_token_hash_2.as_bytes();
            let mut expires_at = row.expires_at_ms;
            let is_child = parent_hash_2
                .as_deref()
                .is_some_and(|p| ct_eq(committed, p.as_bytes()));
            // The H1 the child issued below names as its parent: R's own,
            // unless the grace window answers with a child of the committed
            // token instead.
            let mut child_parent_1: &str = &r_hash_1;
            let grace = self.grace_open(&row, now);
            let mut converged = false;
            if ct_eq(committed, r_hash_2.as_bytes()) {
                // R is the committed token: issue a child; the row is unchanged.
            } else if grace
                && (is_child
                    || self.is_previous_generation(&row, &r_hash_2, parent_hash_2.as_deref()))
            {
                // Within the grace window (§3.9): R is a child of the frozen
                // committed token, the token the last promotion superseded,
                // or a sibling of the committed token. Answer with a child of
                // the committed token; the row is unchanged, so the committed
                // token stays unique and the window is not extended.
                child_parent_1 = row.committed_hash_1.as_deref().unwrap_or_default();
                if !is_child {
                    converged = true;
                    tracing::info!(
                        target: "tessera::security",
                        event = "refresh_reuse_within_grace",
                        reuse = ReuseKind::WithinGrace.as_str(),
                        user_id = %row.user_id,
                        session_handle = %row.session_handle,
                        "a superseded refresh token was reused within the refresh grace window: \
                         answered with a child of the committed token"
                    );
                }
            } else if is_child {
                // R is an unpromoted child of the committed token: promote it.
                expires_at = now.saturating_add(secs_to_ms(cfg.refresh_token_validity));
                if !store
                    .compare_and_set_refresh_hash(
                        &Promotion {
                            session_handle: handle,
                            expected_hash_2: &row.refresh_token_hash_2,
                            new_hash_2: &r_hash_2,
                            new_expires_at_ms: expires_at,
                            new_hash_1: (self.grace_ms() > 0).then_some(r_hash_1.as_str()),
                            not_superseded_after_ms: self.not_superseded_after(now),
                        },
                        now,
                    )
                    .await?
                {
                    continue;
                }
            } else {
                let reuse = self.classify_reuse(&row, &r_hash_2, parent_hash_2.as_deref(), now);
                self.clear_session_tokens(transport, response);
                if cfg.revoke_session_on_theft {
                    store.delete_session(handle).await?;
                    if let Some(f) = &self.inner.feed {
                        f.note_revoked(handle);
                    }
                }
                // The security event: who and which session, never a token.
                tracing::warn!(
                    target: "tessera::security",
                    event = "token_theft",
                    user_id = %row.user_id,
                    session_handle = %row.session_handle,
                    session_revoked = cfg.revoke_session_on_theft,
                    reuse = reuse.as_str(),
                    "refresh token reuse: token theft detected"
                );
                return Err(Error::TokenTheftDetected {
                    user_id: row.user_id,
                    session_handle: row.session_handle,
                    reuse,
                });
            }
            let payload = RawValue::from_string(row.jwt_payload)
                .map_err(|_| Error::general("stored JWT payload is not JSON"))?;
            let child = seal_refresh_token(
                &self.inner.keys.refresh_key,
                handle,
                &row.user_id,
                Some(child_parent_1),
            )?;
            let csrf = if cfg.anti_csrf && transport != Transport::CurrentHeader {
                Some(random_token()?)
            } else {
                None
            };
            let ring = self.inner.keys.ring(now).await?;
            let (access, access_exp) = self.sign(
                &ring.current,
                handle,
                &row.user_id,
                &h(&child),
                Some(child_parent_1),
                csrf.as_deref(),
                &payload,
                now,
            )?;
            self.write_tokens(
                response,
                transport,
                &access,
                access_exp,
                Some((&child, expires_at)),
                csrf.as_deref(),
                (&row.user_id, payload.get()),
            )?;
            let session = Session::new(
                self.clone(),
                row.session_handle,
                row.user_id,
                payload,
                access_exp,
                transport,
            );
            return Ok(if converged {
                session.converged_within_grace()
            } else {
                session
            });
        }
        // Other refreshes of this session kept changing its row: contention,
        // which a retry resolves.
        Err(Error::with_kind(
            crate::GeneralKind::Unavailable,
            "refresh lost the race for the session row too many times; retry",
        ))
    }

    // -- by handle / by user ------------------------------------------------

    /// Session info of a live session; missing or expired → Unauthorized (no
    /// cookie handling).
    pub async fn get_session_info(&self, session_handle: &str) -> Result<Value> {
        let text = self
            .inner
            .store
            .get_session_info(session_handle, self.now())
            .await?
            .ok_or(Error::unauthorized("session not found"))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::internal_from("stored session info is not JSON", e))
    }

    /// Replaces session info; missing or expired → Unauthorized.
    pub async fn update_session_info(&self, session_handle: &str, info: &Value) -> Result<()> {
        if self
            .inner
            .store
            .update_session_info(session_handle, &info.to_string(), self.now())
            .await?
        {
            Ok(())
        } else {
            Err(Error::unauthorized("session not found"))
        }
    }

    /// Blacklisting's question: from the change feed's memory while it is
    /// within its bound, else from the database.
    async fn session_is_live(&self, handle: &str, now: i64) -> Result<bool> {
        if let Some(revoked) = self.inner.feed.as_ref().and_then(|f| f.is_revoked(handle)) {
            return Ok(!revoked);
        }
        Ok(self.inner.store.session_is_live(handle, now).await?)
    }

    /// Brings this instance's change feed up to date after a change it made
    /// itself, so that it refuses a session it revoked from the moment the
    /// call returns. A failure here is only logged: the change is committed,
    /// and the feed task catches up (blacklisting fails closed meanwhile).
    async fn after_local_change(&self) {
        if let Some(f) = &self.inner.feed {
            if let Err(e) = feed::catch_up(&self.inner, f).await {
                tracing::warn!(error = %e, "the change feed could not read the log after a local change");
            }
        }
    }

    /// Whether the change feed is running and caught up within its bound
    /// (`false` without a feed). For health checks and tests.
    pub fn change_feed_caught_up(&self) -> bool {
        self.inner.feed.as_ref().is_some_and(|f| f.caught_up())
    }

    /// Deletes a session; `true` iff a row was deleted. Without blacklisting
    /// its access token stays usable until it expires (the reference library's trade-off).
    pub async fn revoke_session(&self, session_handle: &str) -> Result<bool> {
        let deleted = self.inner.store.delete_session(session_handle).await?;
        if let Some(f) = &self.inner.feed {
            f.note_revoked(session_handle);
        }
        Ok(deleted)
    }

    /// Deletes every session of a user; returns how many.
    pub async fn revoke_all_sessions_for_user(&self, user_id: &UserId) -> Result<u64> {
        let n = self.inner.store.delete_sessions_for_user(user_id).await?;
        if n > 0 {
            self.after_local_change().await;
        }
        Ok(n)
    }

    /// Every session handle of a user.
    pub async fn get_all_session_handles_for_user(&self, user_id: &UserId) -> Result<Vec<String>> {
        Ok(self.inner.store.session_handles_for_user(user_id).await?)
    }

    /// The user's live sessions (refresh expiry in the future), in creation
    /// order, with their creation, last-refresh and expiry times and the
    /// device each was created from ([`SessionSummary`]). One read; nothing
    /// is written.
    pub async fn list_sessions_for_user(&self, user_id: &UserId) -> Result<Vec<SessionSummary>> {
        Ok(self
            .inner
            .store
            .sessions_for_user(user_id, self.now())
            .await?)
    }

    /// Removes expired sessions in batches of `batch_size`, each its own short
    /// transaction, so it is safe to run while serving. `progress` sees the
    /// running total after each batch. Returns the number removed.
    pub async fn remove_expired_sessions(
        &self,
        batch_size: u32,
        mut progress: impl FnMut(u64),
    ) -> Result<u64> {
        let batch_size = batch_size.max(1);
        let now = self.now();
        let mut total = 0;
        loop {
            let n = self
                .inner
                .store
                .delete_expired_sessions(self.expiry_cutoff(now), batch_size)
                .await?;
            total += n;
            progress(total);
            if n < u64::from(batch_size) {
                if self.inner.store.keeps_change_log() {
                    let keep = feed::retention(self.inner.config.access_token_validity);
                    self.inner.store.prune_changes(keep).await?;
                }
                return Ok(total);
            }
            // Let requests waiting on this connection pool go first.
            tokio::task::yield_now().await;
        }
    }

    /// Number of expired sessions awaiting removal.
    pub async fn count_expired_sessions(&self) -> Result<u64> {
        Ok(self
            .inner
            .store
            .count_expired_sessions(self.expiry_cutoff(self.now()))
            .await?)
    }

    /// The access-token public keys as a JWKS document with its cache
    /// lifetime (docs/PROTOCOL.md §5.6), for serving at e.g.
    /// `/.well-known/jwks.json`; `None` in HS256 mode, whose key is a secret.
    /// Reloads the keys first when they are due; when the database cannot be
    /// reached, the keys this instance holds are published.
    pub async fn jwks(&self) -> Option<crate::keys::Jwks> {
        self.inner.keys.jwks(self.now()).await
    }

    /// Replaces the access-token signing key now (admin command). Every
    /// access token signed with the old key then needs a refresh (unless the
    /// previous-key overlap is on).
    pub async fn rotate_signing_key(&self) -> Result<()> {
        self.inner.keys.force_rotate(self.now()).await?;
        self.after_local_change().await;
        Ok(())
    }

    /// Adds the headers a CORS preflight (OPTIONS) response needs for the
    /// front-end SDK: `anti-csrf`, `supertokens-sdk-name` and
    /// `supertokens-sdk-version` in `Access-Control-Allow-Headers`, and
    /// `Access-Control-Allow-Credentials: true`.
    pub fn set_headers_for_options_api(&self, response: &mut (impl ResponseSink + ?Sized)) {
        set_headers_for_options_api(response)
    }
}

/// See [`SessionManager::set_headers_for_options_api`]; needs no manager.
pub fn set_headers_for_options_api(response: &mut (impl ResponseSink + ?Sized)) {
    for h in [
        ANTI_CSRF_HEADER,
        "supertokens-sdk-name",
        "supertokens-sdk-version",
    ] {
        response.append_to_list_header("access-control-allow-headers", h);
    }
    response.set_header("access-control-allow-credentials", "true");
}
