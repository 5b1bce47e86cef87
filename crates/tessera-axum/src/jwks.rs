//! The JWKS endpoint: the access-token public keys of asymmetric mode
//! (docs/PROTOCOL.md §5.3), for services that verify Tessera's access
//! tokens themselves.

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::StatusCode;
use tessera::SessionManager;

/// Where [`jwks_router`] serves the key set (RFC 8615's well-known prefix,
/// the path OpenID Connect providers commonly use).
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The key set's media type (RFC 7517 §8.5).
pub const JWKS_CONTENT_TYPE: &str = "application/jwk-set+json";

/// Answers with the key set: `200`, `Content-Type: application/jwk-set+json`
/// and `Cache-Control: public, max-age=<s>`, where the lifetime ends no
/// later than the current key's scheduled rotation (see
/// `SessionManager::jwks`). In HS256 mode, whose key is a secret, `404`
/// with an empty body: there is nothing to publish. When the database cannot
/// be reached, the keys the instance holds are served.
pub async fn jwks_response(manager: &SessionManager) -> Response {
    match manager.jwks().await {
        Some(doc) => {
            let mut res = doc.json.clone().into_response();
            let h = res.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(JWKS_CONTENT_TYPE));
            if let Ok(v) = HeaderValue::from_str(&doc.cache_control()) {
                h.insert(CACHE_CONTROL, v);
            }
            res
        }
        None => {
            let mut res = StatusCode::NOT_FOUND.into_response();
            res.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
    }
}

/// A router serving `GET` [`JWKS_PATH`] with [`jwks_response`]. It needs no
/// [`crate::TesseraLayer`] (it reads no session), so it can be merged
/// anywhere; merge it whatever the algorithm (it answers `404` in HS256
/// mode).
pub fn jwks_router<S: Clone + Send + Sync + 'static>(manager: &SessionManager) -> Router<S> {
    let manager = manager.clone();
    Router::new().route(
        JWKS_PATH,
        get(move || {
            let manager = manager.clone();
            async move { jwks_response(&manager).await }
        }),
    )
}
