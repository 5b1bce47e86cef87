//! The protocol suites' client steps: sign a user in, verify, refresh, each
//! through a [`CookieJar`] that takes in what the server answered, and the
//! two assertions on error kinds those suites make most often.

use http::header::HeaderMap;
use serde_json::{json, Value};
use tessera::{Error, Session, SessionManager, UserId};

use crate::jar::CookieJar;

/// Creates a session for `uid` (session data `{"info": true}`) and returns a
/// jar holding its cookies and anti-CSRF token.
pub async fn login(m: &SessionManager, uid: impl Into<UserId>, payload: Value) -> CookieJar {
    let mut resp = HeaderMap::new();
    m.create_new_session(&mut resp, uid, payload, json!({"info": true}))
        .await
        .expect("create");
    let mut jar = CookieJar::default();
    jar.absorb(&resp);
    jar
}

/// `get_session` with the jar's cookies and anti-CSRF header (anti-CSRF
/// checked); whatever the server sets is absorbed.
pub async fn verify(m: &SessionManager, jar: &mut CookieJar) -> Result<Session, Error> {
    let mut resp = HeaderMap::new();
    let r = m.get_session(&jar.request(), &mut resp, true).await;
    jar.absorb(&resp);
    r
}

/// `refresh_session` with the jar's cookies; the new tokens are absorbed.
pub async fn refresh(m: &SessionManager, jar: &mut CookieJar) -> Result<Session, Error> {
    let mut resp = HeaderMap::new();
    let r = m.refresh_session(&jar.request(), &mut resp).await;
    jar.absorb(&resp);
    r
}

/// Fails unless `r` is `TryRefreshToken`.
#[track_caller]
pub fn assert_try_refresh<T: std::fmt::Debug>(r: Result<T, Error>) {
    match r {
        Err(Error::TryRefreshToken { .. }) => {}
        other => panic!("expected TryRefreshToken, got {other:?}"),
    }
}

/// Fails unless `r` is `Unauthorized`.
#[track_caller]
pub fn assert_unauthorized<T: std::fmt::Debug>(r: Result<T, Error>) {
    match r {
        Err(Error::Unauthorized { .. }) => {}
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}
