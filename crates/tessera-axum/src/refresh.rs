//! The refresh API and the CORS preflight helper.

use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::Router;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use tessera::SessionManager;

use crate::error::Error;
use crate::extract::Tessera;

/// Request headers the supertokens-website front end sends to your API:
/// list them in a CORS layer's allowed headers when the front end is on
/// another origin.
pub const SDK_REQUEST_HEADERS: [&str; 3] = [
    tessera::ANTI_CSRF_HEADER,
    "supertokens-sdk-name",
    "supertokens-sdk-version",
];

/// Response headers the front end must be able to read: list them in a CORS
/// layer's exposed headers (Tessera also adds them to
/// `Access-Control-Expose-Headers` itself whenever it sends them).
pub const SDK_RESPONSE_HEADERS: [&str; 2] =
    [tessera::ANTI_CSRF_HEADER, tessera::ID_REFRESH_TOKEN_HEADER];

/// The refresh API: runs `refresh_session` and answers `200 {"status":"ok"}`
/// with the new cookies and headers, or the session-expired status (see
/// [`Error`]) with the cookies cleared. Reuse of a superseded refresh token
/// answers `{"error":"token_theft_detected"}` and, by default, revokes the
/// session. When the refresh grace window answered a superseded token
/// (another tab or a retried request had refreshed first), the body is
/// `{"status":"ok","converged":"within_grace"}` (docs/PROTOCOL.md §3.9);
/// clients that only read the status see no difference.
///
/// Mount it at the configured refresh path, which is also the refresh
/// cookie's path (a browser sends the refresh cookie nowhere else);
/// [`refresh_router`] does that for you.
pub async fn refresh_handler(tessera: Tessera, headers: HeaderMap) -> Result<Response, Error> {
    let session = tessera.refresh_session(&headers).await?;
    let body = if session.refresh_converged_within_grace() {
        r#"{"status":"ok","converged":"within_grace"}"#
    } else {
        r#"{"status":"ok"}"#
    };
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Request headers the current supertokens-website SDK (20.x) sends:
/// list them in a CORS layer's allowed headers when the front end is on
/// another origin (docs/PROTOCOL.md §9).
pub const CURRENT_SDK_REQUEST_HEADERS: [&str; 5] = [
    tessera::ANTI_CSRF_HEADER,
    "rid",
    "fdi-version",
    tessera::AUTH_MODE_HEADER,
    "authorization",
];

/// Response headers the current SDK must be able to read (Tessera adds
/// them to `Access-Control-Expose-Headers` itself whenever it sends them).
pub const CURRENT_SDK_RESPONSE_HEADERS: [&str; 4] = [
    tessera::ANTI_CSRF_HEADER,
    tessera::FRONT_TOKEN_HEADER,
    tessera::ACCESS_TOKEN_HEADER,
    tessera::REFRESH_TOKEN_HEADER,
];

/// The current SDK's sign-out API: verifies the session (anti-CSRF by
/// method, as everywhere; header mode needs none), revokes it and clears
/// its tokens, and answers `200 {"status":"OK"}`, which is what the SDK's
/// `signOut()` reads.
pub async fn signout_handler(session: crate::Session) -> Result<Response, Error> {
    session.revoke_session().await?;
    let mut res = r#"{"status":"OK"}"#.into_response();
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// A router serving the current SDK's API when the configuration allows
/// it (`ConfigBuilder::with_current_sdk`): `POST
/// <api_base_path>/session/refresh` ([`refresh_handler`], which reads the
/// refresh cookie or an `Authorization: Bearer` refresh token) and `POST
/// <api_base_path>/signout` ([`signout_handler`]). Empty otherwise. Merge it
/// beside [`refresh_router`], under the same [`crate::TesseraLayer`].
pub fn current_sdk_router<S: Clone + Send + Sync + 'static>(manager: &SessionManager) -> Router<S> {
    let config = manager.config();
    let (Some(refresh), Some(signout)) = (
        config.current_sdk_refresh_path(),
        config.current_sdk_signout_path(),
    ) else {
        return Router::new();
    };
    let escape = |p: &str| p.replace('{', "{{").replace('}', "}}");
    let mut router =
        Router::new().route(&escape(signout), post(signout_handler).options(preflight));
    if refresh != config.refresh_path() {
        router = router.route(&escape(refresh), refresh_method_router());
    }
    router
}

/// A CORS preflight (`OPTIONS`) answer: `204` with the headers of
/// `set_headers_for_options_api` (`Access-Control-Allow-Headers` gains
/// `anti-csrf`, `supertokens-sdk-name`, `supertokens-sdk-version`;
/// `Access-Control-Allow-Credentials: true`). It does not choose allowed
/// origins or methods; that is your CORS policy's job (for example
/// `tower_http::cors::CorsLayer` with [`SDK_REQUEST_HEADERS`] and
/// [`SDK_RESPONSE_HEADERS`]).
pub async fn preflight() -> Response {
    let mut headers = HeaderMap::new();
    tessera::set_headers_for_options_api(&mut headers);
    (StatusCode::NO_CONTENT, headers).into_response()
}

/// `POST` → [`refresh_handler`], `OPTIONS` → [`preflight`]; other methods
/// get axum's `405 Method Not Allowed`.
pub fn refresh_method_router<S: Clone + Send + Sync + 'static>() -> MethodRouter<S> {
    post(refresh_handler).options(preflight)
}

/// A router serving the refresh API at `manager.config().refresh_path()`.
/// Merge it into your app, under the same [`crate::TesseraLayer`].
///
/// # Panics
///
/// If the configured path is not one axum accepts as a literal route: a
/// segment that starts with `:` or `*`. (Braces are escaped.)
pub fn refresh_router<S: Clone + Send + Sync + 'static>(manager: &SessionManager) -> Router<S> {
    let path = manager
        .config()
        .refresh_path()
        .replace('{', "{{")
        .replace('}', "}}");
    Router::new().route(&path, refresh_method_router())
}
