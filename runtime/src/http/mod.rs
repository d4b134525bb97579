//! The runtime's HTTP API: operations (health, readiness, metrics, view
//! status) and the query API over the views' rows. The contract is
//! `docs/openapi.json`, served at `/v1/openapi.json`.
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | 200 while the process is up |
//! | `GET /readyz` | 200 once every view runs and has caught up to the lag it had at start; 503 with the reasons |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /v1/views` | per view: module, topics, rows, state, and per partition its checkpoint, high watermark and lag |
//! | `GET /v1/views/{view}/samples` | the view's recent figures, one a second, for charts |
//! | `GET /v1/views/{view}/failures` | the view's last failed records: where, why, and what the policy did |
//! | `GET /v1/views/{view}/quarantine` | the subjects held by `on_error = "quarantine"` |
//! | `POST /v1/views/{view}/quarantine/release?subject=` | apply a subject's held records (every subject's without it) |
//! | `POST /v1/views/{view}/quarantine/discard?subject=` | take a subject's held records out: to the dead-letter topic, else dropped |
//! | `GET /v1/views/{view}/rows/{subject}` | the row, `ETag` and `If-None-Match` (304); 404 when absent |
//! | `GET /v1/views/{view}/rows?prefix=&after=&limit=` | a page in subject order, with a `next` cursor |
//! | `GET /v1/views/{view}/rows?index=&eq=&after=&limit=` | a page of rows whose index value equals `eq` |
//! | `GET /v1/views/{view}/rows/{subject}/watch` | Server-Sent Events: the current row, then every change |
//! | `POST /v1/views/{view}/deploy?swap=&allow_partial_history=` | deploy a module (`application/wasm` body): a shadow built beside the live view, then swapped in |
//! | `GET /v1/views/{view}/deploy` | the view's versions: live, previous, the shadow and its progress |
//! | `POST /v1/views/{view}/deploy/cancel` | stop and drop the shadow being built |
//! | `POST /v1/views/{view}/swap` | swap a caught-up shadow in (a deploy with `swap=manual`) |
//! | `POST /v1/views/{view}/rollback` | swap the previous version back in |
//! | `POST /v1/views/{view}/drop-previous` | stop the previous version and free its rows |
//! | `GET /v1/openapi.json` | the OpenAPI document |
//! | `GET /console` | the web console (`[http] console = false` turns it off) |
//!
//! # What it promises
//!
//! - Every error is JSON `{"error": "...", "code": "..."}` with a 4xx or
//!   5xx status; a bad request never takes the server down.
//! - Read-your-writes: every read accepts `min_offsets=topic:partition:offset,...`
//!   and `timeout_ms` (default 5000, at most 30000), and answers only once
//!   the view has durably applied those offsets, or 504 with its position.
//! - With `[http] token_secret`, every route but `/healthz` and `/readyz`
//!   needs `Authorization: Bearer <token>`; the token is compared in
//!   constant time and never logged.
//! - A web page the operator visits cannot drive it: a request that changes
//!   state needs `Content-Type: application/json` (415 otherwise), and
//!   without a token a `Host` that is a DNS name is refused (403: DNS
//!   rebinding). `/readyz` answers one word, never names or error text.
//! - Request URIs are bounded (8 KiB) and bodies refused beyond 16 KiB;
//!   watchers are bounded in number and each one's backlog is bounded.
//!
//! # Layout
//! - this file: the state, the router, the error type, auth and limits;
//! - `ops`: health, readiness, metrics and `/v1/views`;
//! - `rows`: point reads, pages and index lookups;
//! - `consistency`: `min_offsets` and the wait for them;
//! - `watch`: the Server-Sent Events stream;
//! - `quarantine`: held subjects and their release;
//! - `deploy`: live redeploy (the operations are `crate::deploy`'s);
//! - `console`: the web console's page and assets.

mod consistency;
mod console;
mod deploy;
mod ops;
mod quarantine;
mod rows;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::deploy::{Deployer, ViewSlot, Views};
use crate::secrets::SecretValue;
use crate::service::RunningView;
use crate::store::StoreError;

pub use consistency::{MAX_TIMEOUT_MS, Position};
pub use ops::{FailuresReport, PartitionReport, SamplesReport, ViewReport, ViewsReport};
pub use quarantine::{HeldSubject, QuarantineReport};
pub use rows::{RowEntry, RowsPage};
pub use watch::WatchEvent;

/// The longest request URI accepted, in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The largest request body accepted, in bytes (no route reads a body).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Watch streams open at once, over all views.
pub const MAX_WATCHERS: usize = 1024;

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// What the endpoints read: the running views, the token, and the signal
/// that ends open streams at shutdown.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// In config order; a runtime has a handful, so a name is found by a
    /// scan.
    views: Views,
    /// What deploys new modules, when the views run in a service.
    deployer: Option<Arc<Deployer>>,
    token: Option<Arc<[u8; 32]>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    shutdown_sender: Arc<tokio::sync::watch::Sender<bool>>,
    watchers: Arc<AtomicUsize>,
    /// The last readiness answered (none yet, ready, not ready), so that
    /// only its changes are logged.
    readiness: Arc<std::sync::Mutex<Option<bool>>>,
    /// Whether `/console` is served.
    console: bool,
}

impl ApiState {
    /// State over `views` (only read: nothing deploys), with no token.
    pub fn new(views: &[RunningView]) -> Self {
        Self::over(Views::fixed(views), None)
    }

    /// State over the views of `service`, which deploys to them.
    pub fn for_service(service: &crate::service::Service) -> Self {
        Self::over(
            service.views().clone(),
            Some(Arc::clone(service.deployer())),
        )
    }

    fn over(views: Views, deployer: Option<Arc<Deployer>>) -> Self {
        let (sender, receiver) = tokio::sync::watch::channel(false);
        Self {
            views,
            deployer,
            token: None,
            shutdown: receiver,
            shutdown_sender: Arc::new(sender),
            watchers: Arc::default(),
            readiness: Arc::default(),
            console: true,
        }
    }

    /// Serve the web console (`/console`) or not; it is served by default.
    #[must_use]
    pub fn with_console(mut self, console: bool) -> Self {
        self.console = console;
        self
    }

    /// Note the readiness just answered; true when it differs from the
    /// last one (the first answer counts as a change).
    pub(crate) fn readiness_changed(&self, ready: bool) -> bool {
        let mut last = self
            .readiness
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.replace(ready) != Some(ready)
    }

    /// Require `token` as a bearer token.
    #[must_use]
    pub fn with_token(mut self, token: &SecretValue) -> Self {
        self.token = Some(Arc::new(Sha256::digest(token.expose().as_bytes()).into()));
        self
    }

    /// The live version of each view, in config order.
    fn views(&self) -> Vec<Arc<RunningView>> {
        self.views.live()
    }

    /// The slot of view `name`, or a 404.
    fn slot(&self, name: &str) -> Result<&Arc<ViewSlot>, ApiError> {
        self.views
            .slot(name)
            .ok_or_else(|| ApiError::UnknownView(name.to_owned()))
    }

    /// The live version of view `name`, or a 404.
    fn view(&self, name: &str) -> Result<Arc<RunningView>, ApiError> {
        self.slot(name).map(|slot| slot.live_view())
    }

    /// The live version of view `name` for a read of its rows: a 404 when
    /// there is none, a 503 while it is restoring from its changelog (its
    /// rows are not all there yet, so an absent row would be a false 404).
    fn serving_view(&self, name: &str) -> Result<Arc<RunningView>, ApiError> {
        let view = self.view(name)?;
        match view.status.restore_progress() {
            Some(restoring) => Err(ApiError::Restoring {
                view: name.to_owned(),
                records: restoring.records,
                total: restoring.total,
            }),
            None => Ok(view),
        }
    }

    /// The live version of view `name` once it has applied `min_offsets`
    /// (read-your-writes): a swap during the wait hands the read to the
    /// version swapped in, which waits too, so a read answered after a swap
    /// always comes from the new version.
    async fn read_view(
        &self,
        name: &str,
        min_offsets: Option<&str>,
        timeout_ms: Option<u64>,
    ) -> Result<Arc<RunningView>, ApiError> {
        loop {
            let view = self.serving_view(name)?;
            consistency::wait(&view, min_offsets, timeout_ms).await?;
            if Arc::ptr_eq(&view, &self.view(name)?) {
                return Ok(view);
            }
        }
    }

    /// End every open stream (watchers), as the server shuts down.
    pub fn close_streams(&self) {
        let _ = self.shutdown_sender.send(true);
    }
}

/// Whether a route needs the bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Open to probes: `/healthz`, `/readyz`.
    Open,
    /// Guarded by the token, when one is set.
    Guarded,
}

/// Every route the API serves: the one list the router is built from and
/// [`route_paths`] reads, so that the document's paths are checked against
/// what is served, not against a copy.
fn routes() -> Vec<(&'static str, Access, axum::routing::MethodRouter<ApiState>)> {
    vec![
        ("/healthz", Access::Open, get(|| async { "ok\n" })),
        ("/readyz", Access::Open, get(ops::readyz)),
        ("/metrics", Access::Guarded, get(ops::metrics)),
        ("/v1/views", Access::Guarded, get(ops::views)),
        (
            "/v1/views/{view}/samples",
            Access::Guarded,
            get(ops::samples),
        ),
        (
            "/v1/views/{view}/failures",
            Access::Guarded,
            get(ops::failures),
        ),
        (
            "/v1/views/{view}/quarantine",
            Access::Guarded,
            get(quarantine::list),
        ),
        (
            "/v1/views/{view}/quarantine/release",
            Access::Guarded,
            post(quarantine::release),
        ),
        (
            "/v1/views/{view}/quarantine/discard",
            Access::Guarded,
            post(quarantine::discard),
        ),
        ("/v1/views/{view}/rows", Access::Guarded, get(rows::list)),
        (
            "/v1/views/{view}/rows/{subject}",
            Access::Guarded,
            get(rows::get),
        ),
        (
            "/v1/views/{view}/rows/{subject}/watch",
            Access::Guarded,
            get(watch::watch),
        ),
        (
            "/v1/views/{view}/deploy",
            Access::Guarded,
            get(deploy::status)
                .post(deploy::deploy)
                .layer(DefaultBodyLimit::max(deploy::MAX_MODULE_BYTES)),
        ),
        (
            "/v1/views/{view}/deploy/cancel",
            Access::Guarded,
            post(deploy::cancel),
        ),
        ("/v1/views/{view}/swap", Access::Guarded, post(deploy::swap)),
        (
            "/v1/views/{view}/rollback",
            Access::Guarded,
            post(deploy::rollback),
        ),
        (
            "/v1/views/{view}/drop-previous",
            Access::Guarded,
            post(deploy::drop_previous),
        ),
        (
            "/v1/openapi.json",
            Access::Guarded,
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        ),
    ]
}

/// The paths of every route served, in axum's `{param}` syntax (as the
/// OpenAPI document writes them).
pub fn route_paths() -> Vec<&'static str> {
    routes().into_iter().map(|(path, _, _)| path).collect()
}

/// The routes, over `state`.
pub fn router(state: ApiState) -> Router {
    let mut open = Router::new();
    let mut guarded = Router::new();
    for (path, access, handler) in routes() {
        match access {
            Access::Open => open = open.route(path, handler),
            Access::Guarded => guarded = guarded.route(path, handler),
        }
    }
    let guarded = guarded.route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    if state.console {
        open = open.merge(console::routes());
    }
    open.merge(guarded)
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(bound_uri))
        .with_state(state)
}

/// Serve the API over `state` on `listener` until `shutdown` completes;
/// then end open streams and finish the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closer = state.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            closer.close_streams();
        })
        .await
}

/// Bind `addr`, with an error that names it.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|err| anyhow::anyhow!("cannot listen on {addr}: {err}"))
}

async fn bound_uri(request: Request, next: Next) -> Response {
    if request.uri().to_string().len() > MAX_URI_BYTES {
        return ApiError::UriTooLong.into_response();
    }
    next.run(request).await
}

/// True when `host` (a `Host` header) names this machine without a DNS
/// name: an IP address or `localhost`, with or without a port. A page that
/// rebinds its own domain name to 127.0.0.1 sends that name, so it is
/// refused.
fn is_address_host(host: &str) -> bool {
    if host.parse::<std::net::SocketAddr>().is_ok() || host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => name,
        _ => host,
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .strip_prefix('[')
            .and_then(|name| name.strip_suffix(']'))
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
}

/// Refuse what a web page the operator visits could make a browser send:
/// without a token, a `Host` that is a DNS name (DNS rebinding: the page's
/// own name resolved to this address) gets 403; a request that changes
/// state (any method but GET and HEAD) without `Content-Type:
/// application/json` gets 415, because a cross-site form or `text/plain`
/// fetch cannot send that type without the browser asking first (CORS,
/// which this API never grants).
fn refuse_cross_site(state: &ApiState, request: &Request) -> Option<ApiError> {
    if state.token.is_none() {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|value| value.to_str().ok());
        if let Some(host) = host
            && !is_address_host(host)
        {
            return Some(ApiError::Forbidden(
                "without a token this API answers requests to an IP address or localhost only \
                 (the Host header names a DNS name); set [http] token_secret to serve it by name",
            ));
        }
    }
    let method = request.method();
    if method != axum::http::Method::GET && method != axum::http::Method::HEAD {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|media| {
                // Neither is a type a page may send cross-site without
                // asking first.
                let media = media.trim();
                media.eq_ignore_ascii_case("application/json")
                    || media.eq_ignore_ascii_case("application/wasm")
            });
        if !json {
            return Some(ApiError::UnsupportedMediaType);
        }
    }
    None
}

async fn authorize(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if let Some(refused) = refuse_cross_site(&state, &request) {
        return refused.into_response();
    }
    let Some(expected) = &state.token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        });
    let Some(given) = given else {
        return ApiError::Unauthorized("this API needs a bearer token (Authorization: Bearer ...)")
            .into_response();
    };
    // Comparing digests keeps the comparison's time independent of where
    // the tokens differ.
    let digest: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
    let same = digest
        .iter()
        .zip(expected.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0;
    if !same {
        return ApiError::Unauthorized("the bearer token is wrong").into_response();
    }
    next.run(request).await
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No view has this name.
    #[error("no view named {0:?}")]
    UnknownView(String),
    /// The view has no row for the subject.
    #[error("view {view} has no row for subject {subject:?}")]
    NoRow {
        /// The view.
        view: String,
        /// The subject.
        subject: String,
    },
    /// The request is malformed or asks for too much.
    #[error("{0}")]
    BadRequest(String),
    /// The view did not apply `min_offsets` within the timeout.
    #[error(
        "view {view} has not applied {wanted} within {timeout_ms} ms; \
         its position is in `positions`"
    )]
    NotYetApplied {
        /// The view.
        view: String,
        /// The offsets asked for, as given.
        wanted: String,
        /// How long the request waited.
        timeout_ms: u64,
        /// Where the view stands.
        positions: Vec<Position>,
    },
    /// No or a wrong bearer token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A request a web page could have made the operator's browser send.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A request that changes state without a JSON content type.
    #[error(
        "a request that changes state must have Content-Type: application/json \
         (application/wasm for a deploy's module), so that a web page cannot send it cross-site"
    )]
    UnsupportedMediaType,
    /// The body is larger than the route takes.
    #[error("{0}")]
    TooLarge(String),
    /// The URI is too long.
    #[error("the request URI is longer than {MAX_URI_BYTES} bytes")]
    UriTooLong,
    /// Too many watchers.
    #[error("too many open watch streams (at most {MAX_WATCHERS}); retry later")]
    TooManyWatchers,
    /// The view's worker has too many requests waiting.
    #[error("{0}")]
    Busy(String),
    /// No such route.
    #[error("no such route")]
    NoRoute,
    /// Not the route's method.
    #[error(
        "method not allowed: releases, discards and deploy operations are POST, every other route is GET"
    )]
    MethodNotAllowed,
    /// The subject is not held in quarantine.
    #[error("view {view} holds no record of subject {subject:?} in quarantine")]
    NotQuarantined {
        /// The view.
        view: String,
        /// The subject.
        subject: String,
    },
    /// Not ready, and why.
    #[error("not ready: {0}")]
    NotReady(String),
    /// The view is a standby copy here: what was asked is its owner's.
    #[error(
        "view {view} is a standby copy on this runtime (it follows its changelog and applies \
         nothing): {what} on the runtime that owns it"
    )]
    Standby {
        /// The view.
        view: String,
        /// What to do on the owner.
        what: &'static str,
    },
    /// The view is restoring from its changelog.
    #[error(
        "view {view} is restoring from its changelog ({records} of about {total} records); \
         retry shortly"
    )]
    Restoring {
        /// The view.
        view: String,
        /// Records restored so far.
        records: u64,
        /// Records to restore, about.
        total: u64,
    },
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A deploy operation was refused or failed.
    #[error("{0}")]
    Deploy(#[from] crate::deploy::DeployError),
    /// Something else failed on the server's side.
    #[error("{0}")]
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: String,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    positions: Option<&'a [Position]>,
}

impl ApiError {
    /// True when the server itself failed (the store, a bug): worth a
    /// warning in the log. Not being ready yet, a read that timed out and
    /// too many watchers are answers, not failures; readiness changes are
    /// logged where they happen.
    fn is_server_failure(&self) -> bool {
        match self {
            Self::Store(_) | Self::Internal(_) => true,
            Self::Deploy(err) => !err.is_refusal(),
            _ => false,
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::UnknownView(_) => (StatusCode::NOT_FOUND, "unknown_view"),
            Self::NoRow { .. } => (StatusCode::NOT_FOUND, "not_found"),
            Self::NotQuarantined { .. } => (StatusCode::NOT_FOUND, "not_quarantined"),
            Self::NoRoute => (StatusCode::NOT_FOUND, "no_route"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::NotYetApplied { .. } => (StatusCode::GATEWAY_TIMEOUT, "not_applied_yet"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::UriTooLong => (StatusCode::URI_TOO_LONG, "uri_too_long"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::TooManyWatchers => (StatusCode::SERVICE_UNAVAILABLE, "too_many_watchers"),
            Self::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            Self::Standby { .. } => (StatusCode::CONFLICT, "standby"),
            Self::Restoring { .. } => (StatusCode::SERVICE_UNAVAILABLE, "restoring"),
            Self::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store"),
            Self::Deploy(err) => deploy::status_and_code(err),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if self.is_server_failure() {
            tracing::warn!(error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request answered with an error");
        }
        let positions = match &self {
            Self::NotYetApplied { positions, .. } => Some(positions.as_slice()),
            _ => None,
        };
        let body = ErrorBody {
            error: self.to_string(),
            code,
            positions,
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, Self::Restoring { .. }) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, Self::Unauthorized(_)) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"projector\""),
            );
        }
        response
    }
}

/// The header a read from a standby copy carries: the changelog records
/// the copy lacks (its lag), when it last looked.
pub const STANDBY_LAG_HEADER: &str = "projector-standby-lag";

/// Mark `response`, a read of `view`, with the standby copy's lag when the
/// view is one here.
fn mark_standby(view: &RunningView, response: &mut Response) {
    if let Some(state) = view.status.standby_state() {
        response.headers_mut().insert(
            header::HeaderName::from_static(STANDBY_LAG_HEADER),
            HeaderValue::from(state.lag()),
        );
    }
}

/// Refuse `what` on view `name` when it is a standby copy here.
fn owned(view: &RunningView, what: &'static str) -> Result<(), ApiError> {
    if view.info.role == crate::config::Role::Standby {
        return Err(ApiError::Standby {
            view: view.info.name.clone(),
            what,
        });
    }
    Ok(())
}

/// A query-string or path rejection as an [`ApiError`].
fn bad_request(rejection: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(rejection.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_of_the_server_are_warnings() {
        for answer in [
            ApiError::NotReady("catching up".to_owned()),
            ApiError::TooManyWatchers,
            ApiError::NoRoute,
            ApiError::BadRequest("limit".to_owned()),
        ] {
            assert!(!answer.is_server_failure(), "{answer}");
        }
        assert!(ApiError::Internal("bug".to_owned()).is_server_failure());
    }

    #[test]
    fn only_an_address_or_localhost_is_a_host_without_a_token() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "localhost",
            "LOCALHOST:8080",
            "[::1]:8080",
            "[::1]",
            "::1",
            "10.0.0.7:80",
        ] {
            assert!(is_address_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io:8080",
            "",
        ] {
            assert!(!is_address_host(host), "{host}");
        }
    }

    #[test]
    fn readiness_is_logged_when_it_changes() {
        let state = ApiState::new(&[]);
        assert!(state.readiness_changed(false), "the first answer");
        assert!(!state.readiness_changed(false));
        assert!(!state.readiness_changed(false));
        assert!(state.readiness_changed(true));
        assert!(!state.readiness_changed(true));
        assert!(state.readiness_changed(false));
    }
}
