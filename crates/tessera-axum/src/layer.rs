//! The layer that gives every request a place to put the cookie and header
//! changes the core asks for, and copies them onto the response that comes
//! out, whatever the handler returned.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use tessera::{RecordedResponse, SessionManager};

/// What one core call records ([`RecordedResponse`], the core's recording
/// sink). It is used for the duration of that call (which may await), then
/// moved into the shared per-request buffer, so that no lock is held across
/// an `.await`. Replaying the changes in order on the response gives exactly
/// the core's own `HeaderMap` semantics (a later cookie of the same name
/// replaces an earlier one, list headers are merged).
pub(crate) type Recorder = RecordedResponse;

/// What one request shares between its extractors (which push response
/// changes) and the layer's response future (which replays them): the
/// manager and the buffer of pending changes, in one allocation per request.
struct Shared {
    manager: SessionManager,
    pending: Mutex<RecordedResponse>,
}

/// What the layer puts into each request's extensions. Cloning shares the
/// buffer. The extractors borrow it from the extensions to verify and clone
/// it only into what outlives the extraction (a [`crate::Session`]).
#[derive(Clone)]
pub(crate) struct RequestContext(Arc<Shared>);

impl RequestContext {
    pub(crate) fn manager(&self) -> &SessionManager {
        &self.0.manager
    }

    /// Adds what a core call recorded to the changes the response will get.
    pub(crate) fn push(&self, recorded: Recorder) {
        if recorded.is_empty() {
            return;
        }
        // A poisoned lock only means another task panicked while pushing;
        // the vector itself is still consistent.
        let mut pending = self.0.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend(recorded);
    }

    /// Runs a synchronous core operation against the buffer.
    pub(crate) fn with_sink<T>(&self, f: impl FnOnce(&mut Recorder) -> T) -> T {
        let mut rec = Recorder::default();
        let out = f(&mut rec);
        self.push(rec);
        out
    }

    /// Takes the recorded changes out, without locking when the response
    /// future holds the only reference left (the usual case: the request,
    /// and with it every extractor's copy, is gone by then).
    fn take_pending(&mut self) -> RecordedResponse {
        match Arc::get_mut(&mut self.0) {
            Some(shared) => {
                std::mem::take(shared.pending.get_mut().unwrap_or_else(|e| e.into_inner()))
            }
            None => std::mem::take(&mut *self.0.pending.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }
}

/// Marks a response made by [`crate::Error`] for one of the three
/// session-expired kinds, so that the layer can give it the configured status.
#[derive(Clone, Copy)]
pub(crate) struct SessionExpiredMarker;

/// A [`tower_layer::Layer`] that makes Tessera available to the extractors
/// of every route below it and carries their cookie and header changes to
/// the response.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let config = tessera::Config::builder().build().unwrap();
/// # let manager = tessera::SessionManager::new(config, tessera_testkit::MemoryStore::new())
/// #     .await
/// #     .unwrap();
/// use axum::{routing::get, Router};
/// use tessera_axum::{Session, TesseraLayer};
///
/// async fn me(session: Session) -> String {
///     session.user_id().to_string()
/// }
///
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     .merge(tessera_axum::refresh_router(&manager))
///     .layer(TesseraLayer::new(manager));
/// # }
/// ```
///
/// For each request it puts an empty, shared buffer into the request's
/// extensions. Extractors and the [`crate::Tessera`]
/// handle write into it.
/// When the inner service produces its response (a success, an error from the
/// handler, or an extractor's rejection), the layer replays the buffer onto
/// the response headers. Forgetting the layer cannot go unnoticed: every
/// extractor then fails with a 500 and logs `TesseraLayer is not installed`.
///
/// The layer also gives responses made by [`crate::Error`] for an expired
/// session the configured session-expired status
/// (`Config::session_expired_status`, default 401).
#[derive(Clone, Debug)]
pub struct TesseraLayer {
    manager: SessionManager,
}

impl TesseraLayer {
    /// A layer serving sessions of `manager`.
    pub fn new(manager: SessionManager) -> Self {
        TesseraLayer { manager }
    }
}

impl<S> tower_layer::Layer<S> for TesseraLayer {
    type Service = TesseraService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TesseraService {
            inner,
            manager: self.manager.clone(),
            expired_status: self.manager.config().session_expired_status(),
        }
    }
}

/// The service made by [`TesseraLayer`].
#[derive(Clone, Debug)]
pub struct TesseraService<S> {
    inner: S,
    manager: SessionManager,
    /// `Config::session_expired_status` (the configuration never changes).
    expired_status: u16,
}

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for TesseraService<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let ctx = RequestContext(Arc::new(Shared {
            manager: self.manager.clone(),
            pending: Mutex::default(),
        }));
        req.extensions_mut().insert(ctx.clone());
        ResponseFuture {
            inner: self.inner.call(req),
            pending: Some(ctx),
            expired_status: self.expired_status,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`TesseraService`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        pending: Option<RequestContext>,
        expired_status: u16,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(res)) => res,
        };
        if let Some(mut pending) = this.pending.take() {
            if res
                .extensions_mut()
                .remove::<SessionExpiredMarker>()
                .is_some()
            {
                // The config only accepts 4xx codes, so this always succeeds.
                if let Ok(s) = StatusCode::from_u16(*this.expired_status) {
                    *res.status_mut() = s;
                }
            }
            let ops = pending.take_pending();
            if !ops.is_empty() {
                ops.replay(res.headers_mut());
            }
        }
        Poll::Ready(Ok(res))
    }
}
