//! # Tessera for axum
//!
//! Sessions in an [axum](https://docs.rs/axum) application, on top of the
//! framework-free [`tessera`] core. This crate only translates between axum
//! and the core; every protocol decision stays in the core (docs/PROTOCOL.md).
//!
//! ## Pieces
//!
//! * [`TesseraLayer`]: put it on the router. It gives each request a buffer
//!   for the cookie and header changes the core asks for, and copies them
//!   onto the response that comes out, *whatever* the handler returned: a
//!   success, an error, or an extractor's rejection.
//! * [`Session`]: the extractor. It runs `get_session`, with anti-CSRF
//!   enforced for every method except `GET`, `HEAD` and `OPTIONS`
//!   ([`AntiCsrf`] changes that per route). `Option<Session>` is the variant
//!   for routes that work with or without a session.
//! * [`Tessera`]: the per-request handle for logging in
//!   (`create_new_session`), refreshing, clearing cookies, and the
//!   [`tessera::SessionManager`] for by-handle and by-user operations. A
//!   session it creates records the request's `User-Agent` and, when the
//!   server is started with `into_make_service_with_connect_info::<SocketAddr>()`,
//!   the peer address (kept only with `record_client_address` on);
//!   `create_new_session_with_device` adds a label or sets the address.
//! * [`refresh_router`] / [`refresh_handler`]: the refresh API, `POST` at the
//!   configured refresh path. [`preflight`] answers CORS preflights.
//! * [`current_sdk_router`]: with the current supertokens-website SDK
//!   allowed (`ConfigBuilder::with_current_sdk`), its refresh API
//!   (`<api_base_path>/session/refresh`) and sign-out API. The layer serves
//!   whatever client profiles the manager's configuration allows: the 4.2.0
//!   profile, the current SDK in cookie or header mode, and
//!   `Authorization: Bearer` API clients (docs/PROTOCOL.md §9).
//! * [`jwks_router`]: with an asymmetric access-token algorithm
//!   (`ConfigBuilder::with_access_token_algorithm`), the public keys as a
//!   JWKS document at [`JWKS_PATH`] (`/.well-known/jwks.json`), cached by
//!   verifiers until the next key rotation at most; `404` in HS256 mode.
//! * [`Error`]: errors as responses (docs/PROTOCOL.md §4.3). `Unauthorized`,
//!   `TryRefreshToken` and `TokenTheftDetected` get the configured
//!   session-expired status (default 401) and a small JSON body naming the
//!   kind; anything else is a 500 whose body reveals nothing.
//!
//! ## Why a layer
//!
//! The core writes cookies into a response *sink*. An extractor runs before
//! the handler and has no response to write to, and a handler that fails
//! after the extractor succeeded (for example after the first use of a
//! refreshed access token, when the core issues a new access-token cookie)
//! must still send those cookies, or the browser and the database disagree.
//! Making the handler return the changes (an `IntoResponseParts` session)
//! would be easy to forget on the error path. The layer cannot be forgotten
//! quietly: without it, every extractor fails with a 500 and logs
//! `TesseraLayer is not installed`.
//!
//! Each core call records its changes in a local buffer (no lock is held
//! across an `.await`), then appends them to the request's shared buffer.
//! The layer replays them, in order, onto the response's headers with the
//! core's own `HeaderMap` rules: a later cookie of the same name replaces an
//! earlier one, and list headers such as `Access-Control-Expose-Headers` are
//! merged with what the handler set.
//!
//! ## Example
//!
//! ```
//! use axum::{routing::{get, post}, Json, Router};
//! use serde_json::{json, Value};
//! use tessera::{Config, SessionManager};
//! use tessera_axum::{Error, Session, Tessera, TesseraLayer};
//!
//! async fn login(tessera: Tessera) -> Result<Json<Value>, Error> {
//!     // check the password first
//!     tessera.create_new_session(42, json!({"role": "user"}), json!({})).await?;
//!     Ok(Json(json!({"ok": true})))
//! }
//!
//! async fn me(session: Session) -> Json<Value> {
//!     Json(json!({"user": session.user_id().to_json(), "payload": session.jwt_payload()}))
//! }
//!
//! async fn logout(session: Session) -> Result<(), Error> {
//!     session.revoke_session().await // POST: the anti-CSRF header is required
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A file in production: tessera_sqlx::connect("sqlite://sessions.sqlite").
//! let store = tessera_sqlx::connect("sqlite::memory:").await?;
//! let manager = SessionManager::new(Config::builder().build()?, store).await?;
//! let app = Router::new()
//!     .route("/login", post(login))
//!     .route("/me", get(me))
//!     .route("/logout", post(logout))
//!     .merge(tessera_axum::refresh_router(&manager))
//!     .layer(TesseraLayer::new(manager));
//!
//! // Serve it with `axum::serve(listener, app)`; here, one request:
//! use tower::ServiceExt;
//! let login = http::Request::post("/login").body(axum::body::Body::empty())?;
//! let response = app.oneshot(login).await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers().get_all("set-cookie").iter().count(), 3);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod error;
mod extract;
mod jwks;
mod layer;
mod refresh;

pub use error::Error;
pub use extract::{AntiCsrf, Session, Tessera};
pub use jwks::{jwks_response, jwks_router, JWKS_CONTENT_TYPE, JWKS_PATH};
pub use layer::{ResponseFuture, TesseraLayer, TesseraService};
pub use refresh::{
    current_sdk_router, preflight, refresh_handler, refresh_method_router, refresh_router,
    signout_handler, CURRENT_SDK_REQUEST_HEADERS, CURRENT_SDK_RESPONSE_HEADERS,
    SDK_REQUEST_HEADERS, SDK_RESPONSE_HEADERS,
};
