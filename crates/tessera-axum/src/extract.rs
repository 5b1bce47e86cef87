//! The extractors: [`Session`], `Option<Session>` and the [`Tessera`] handle.

use std::net::SocketAddr;
use std::ops::Deref;

use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use http::Method;
use serde_json::Value;
use tessera::{RequestSource, SessionDevice, SessionManager, UserId};

use crate::error::Error;
use crate::layer::{Recorder, RequestContext};

/// When the [`Session`] extractor checks the anti-CSRF header.
///
/// The default is [`AntiCsrf::ByMethod`]. Choose another for one route by
/// adding it as a request extension on that route:
///
/// ```
/// use axum::{routing::post, Extension, Router};
/// use tessera_axum::{AntiCsrf, Session};
///
/// async fn webhook(_session: Session) {}
///
/// let app: Router = Router::new()
///     .route("/webhook", post(webhook).layer(Extension(AntiCsrf::Never)));
/// ```
///
/// Whatever is chosen here, nothing is checked when anti-CSRF is disabled in
/// the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AntiCsrf {
    /// Check for every method except `GET`, `HEAD` and `OPTIONS` (which must
    /// not change state).
    #[default]
    ByMethod,
    /// Check for every method.
    Always,
    /// Never check (for example a route that is called by other servers).
    Never,
}

impl AntiCsrf {
    fn enabled_for(self, method: &Method) -> bool {
        match self {
            AntiCsrf::ByMethod => {
                !(method == Method::GET || method == Method::HEAD || method == Method::OPTIONS)
            }
            AntiCsrf::Always => true,
            AntiCsrf::Never => false,
        }
    }
}

fn context(parts: &Parts) -> Result<&RequestContext, Error> {
    match parts.extensions.get::<RequestContext>() {
        Some(ctx) => Ok(ctx),
        None => {
            tracing::error!("TesseraLayer is not installed on the router serving this route");
            Err(Error::layer_missing())
        }
    }
}

/// A verified session: the extractor runs `get_session`.
///
/// Rejects with [`Error`] (session-expired status or 500). Anti-CSRF is
/// checked as [`AntiCsrf`] says (default: every method except `GET`, `HEAD`
/// and `OPTIONS`). New cookies the core issues (the first use of an access
/// token after a refresh) and cleared cookies reach the response through
/// [`crate::TesseraLayer`], also when the handler then fails.
///
/// `Option<Session>` is for routes that work with or without a session. It
/// is `None` when the request carries no session cookie at all (and then
/// nothing is added to the response), and `None` when the core answers
/// `Unauthorized` (the session is surely gone; the core has cleared the
/// cookies). It still rejects on `TryRefreshToken`, so that the front end
/// refreshes an expired access token instead of the user silently appearing
/// logged out, and on internal errors.
///
/// It dereferences to [`tessera::Session`] for `user_id()`, `handle()`,
/// `jwt_payload()`; the methods that change the session take no response
/// argument here, because their cookie changes go through the layer.
pub struct Session {
    inner: tessera::Session,
    ctx: RequestContext,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.inner, f)
    }
}

impl Deref for Session {
    type Target = tessera::Session;
    fn deref(&self) -> &tessera::Session {
        &self.inner
    }
}

impl Session {
    /// Session info from the database. A revoked or expired session clears
    /// the cookies and gives `Unauthorized`.
    pub async fn get_session_info(&self) -> Result<Value, Error> {
        let mut rec = Recorder::default();
        let r = self.inner.get_session_info(&mut rec).await;
        self.ctx.push(rec);
        Ok(r?)
    }

    /// Replaces the session info. A revoked or expired session clears the
    /// cookies and gives `Unauthorized`.
    pub async fn update_session_info(&self, info: &Value) -> Result<(), Error> {
        let mut rec = Recorder::default();
        let r = self.inner.update_session_info(info, &mut rec).await;
        self.ctx.push(rec);
        Ok(r?)
    }

    /// Deletes the session and clears its cookies (log out).
    pub async fn revoke_session(&self) -> Result<(), Error> {
        let mut rec = Recorder::default();
        let r = self.inner.revoke_session(&mut rec).await;
        self.ctx.push(rec);
        Ok(r?)
    }

    /// Clears this session's tokens on the response the way they travel
    /// (its [`tessera::Transport`]): the cookies, or in header mode
    /// `front-token: remove` and empty token headers. For example after
    /// revoking every session of the user by user id.
    pub fn clear_tokens(&self) {
        let transport = self.inner.transport();
        self.ctx
            .with_sink(|sink| self.ctx.manager().clear_session_tokens(transport, sink));
    }

    /// The core session.
    pub fn into_inner(self) -> tessera::Session {
        self.inner
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ctx = context(parts)?;
        let csrf = parts
            .extensions
            .get::<AntiCsrf>()
            .copied()
            .unwrap_or_default()
            .enabled_for(&parts.method);
        let mut rec = Recorder::default();
        let r = ctx.manager().get_session(&*parts, &mut rec, csrf).await;
        ctx.push(rec);
        Ok(Session {
            inner: r?,
            ctx: ctx.clone(),
        })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        // Insist on the layer first, so that a missing layer is loud here
        // too; the cookie names come from the core's configuration (they
        // change with the cookie-name prefix mode).
        let ctx = context(parts)?;
        let config = ctx.manager().config();
        // A bearer token counts as a session token when header mode is
        // allowed (docs/PROTOCOL.md §9).
        let bearer = config.allows_transport(tessera::Transport::CurrentHeader)
            && parts
                .authorization_header()
                .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer "));
        let has_any = bearer
            || [
                config.id_refresh_token_cookie_name(),
                config.access_token_cookie_name(),
                config.refresh_token_cookie_name(),
            ]
            .iter()
            .any(|name| parts.cookie(name).is_some());
        if !has_any {
            return Ok(None);
        }
        match <Session as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(s) => Ok(Some(s)),
            Err(e) if matches!(e.inner(), tessera::Error::Unauthorized { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The per-request handle to Tessera: the manager, plus the operations whose
/// cookie and header changes must reach this request's response (log in,
/// refresh, clear cookies).
///
/// ```
/// use axum::Json;
/// use serde_json::{json, Value};
/// use tessera_axum::{Error, Tessera};
///
/// async fn login(tessera: Tessera) -> Result<Json<Value>, Error> {
///     // ... check the password, then:
///     let session = tessera
///         .create_new_session(42, json!({"role": "user"}), json!({}))
///         .await?;
///     Ok(Json(json!({"user": session.user_id().to_json()})))
/// }
/// ```
#[derive(Clone)]
pub struct Tessera {
    ctx: RequestContext,
    /// How a session created on this request travels: the request's
    /// `st-auth-mode` preference within what the configuration allows
    /// (always the reference profile unless the current SDK is allowed).
    new_session_transport: tessera::Transport,
    /// The client a session created on this request records: the
    /// `User-Agent` header and the peer address of [`ConnectInfo`], if the
    /// server provides it (the core keeps the address only with
    /// `record_client_address` on).
    device: SessionDevice,
}

impl std::fmt::Debug for Tessera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tessera").finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Tessera {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ctx = context(parts)?.clone();
        let new_session_transport = ctx.manager().transport_for_new_session(&*parts);
        let mut device = SessionDevice::from_request(&*parts);
        if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            device = device.with_client_address(peer.ip());
        }
        Ok(Tessera {
            ctx,
            new_session_transport,
            device,
        })
    }
}

impl Tessera {
    /// The session manager, for by-handle and by-user operations (which
    /// change no cookies).
    pub fn manager(&self) -> &SessionManager {
        self.ctx.manager()
    }

    /// Starts a session (log in); its cookies and headers go to this
    /// request's response. With the current SDK allowed, the request's
    /// `st-auth-mode` chooses cookies or headers within what the
    /// configuration allows (docs/PROTOCOL.md §9.2). The session records this
    /// request's device ([`Tessera::device`]).
    pub async fn create_new_session(
        &self,
        user_id: impl Into<UserId>,
        jwt_payload: Value,
        session_info: Value,
    ) -> Result<Session, Error> {
        self.create_new_session_with_device(user_id, jwt_payload, session_info, self.device.clone())
            .await
    }

    /// [`Tessera::create_new_session`] recording `device` instead of what the
    /// request gave: start from [`Tessera::device`] to add a label, or set
    /// the address a trusted proxy reported.
    ///
    /// ```
    /// use serde_json::json;
    /// use tessera_axum::{Error, Tessera};
    ///
    /// async fn login(tessera: Tessera) -> Result<(), Error> {
    ///     let device = tessera.device().clone().with_label("Alice's phone");
    ///     tessera
    ///         .create_new_session_with_device(42, json!({}), json!({}), device)
    ///         .await?;
    ///     Ok(())
    /// }
    /// ```
    pub async fn create_new_session_with_device(
        &self,
        user_id: impl Into<UserId>,
        jwt_payload: Value,
        session_info: Value,
        device: SessionDevice,
    ) -> Result<Session, Error> {
        let user_id = user_id.into();
        let mut rec = Recorder::default();
        let r = self
            .ctx
            .manager()
            .create_new_session_with_device(
                self.new_session_transport,
                &mut rec,
                user_id,
                jwt_payload,
                session_info,
                device,
            )
            .await;
        self.ctx.push(rec);
        Ok(Session {
            inner: r?,
            ctx: self.ctx.clone(),
        })
    }

    /// The device a session created on this request records: the request's
    /// `User-Agent`, and the peer address when the server was started with
    /// connect info (`into_make_service_with_connect_info::<SocketAddr>()`).
    /// Behind a reverse proxy that peer is the proxy; the core stores an
    /// address only with `record_client_address` on.
    pub fn device(&self) -> &SessionDevice {
        &self.device
    }

    /// The transport a session created on this request gets.
    pub fn new_session_transport(&self) -> tessera::Transport {
        self.new_session_transport
    }

    /// Runs `get_session` on `request` with an explicit anti-CSRF choice
    /// (the [`Session`] extractor decides it from the method).
    pub async fn get_session(
        &self,
        request: &(impl RequestSource + Sync + ?Sized),
        enable_csrf_protection: bool,
    ) -> Result<Session, Error> {
        let mut rec = Recorder::default();
        let r = self
            .ctx
            .manager()
            .get_session(request, &mut rec, enable_csrf_protection)
            .await;
        self.ctx.push(rec);
        Ok(Session {
            inner: r?,
            ctx: self.ctx.clone(),
        })
    }

    /// Runs `refresh_session` on `request` (what [`crate::refresh_handler`]
    /// does). May fail with `TokenTheftDetected`.
    pub async fn refresh_session(
        &self,
        request: &(impl RequestSource + Sync + ?Sized),
    ) -> Result<Session, Error> {
        let mut rec = Recorder::default();
        let r = self.ctx.manager().refresh_session(request, &mut rec).await;
        self.ctx.push(rec);
        Ok(Session {
            inner: r?,
            ctx: self.ctx.clone(),
        })
    }

    /// Clears the three session cookies and tells the front end
    /// (`id-refresh-token: remove`).
    pub fn clear_session_cookies(&self) {
        self.ctx
            .with_sink(|sink| self.ctx.manager().clear_session_cookies(sink));
    }

    /// Adds the CORS preflight headers the front-end SDK needs.
    pub fn set_headers_for_options_api(&self) {
        self.ctx.with_sink(tessera::set_headers_for_options_api);
    }
}
