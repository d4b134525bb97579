//! The web console: one page at `GET /console`, with its script and style,
//! compiled into the binary (no CDN, nothing fetched at run time, no build
//! step). The page reads the same JSON API as any client: `/v1/views`,
//! each view's samples, failures and rows, and a row's watch stream.
//!
//! # What it promises
//!
//! - The page and its assets are open (they hold no data); every request
//!   the page makes for data carries the bearer token when one is set. The
//!   page asks for the token on the first `401` and keeps it for the tab
//!   (`sessionStorage`).
//! - Served with a content security policy that allows this origin only:
//!   no inline script, no other host, no framing.
//! - `[http] console = false` leaves the routes out (they answer 404).

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ApiState;

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

/// Only this origin, for everything; no framing, no forms elsewhere.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The paths the console serves.
pub const PATHS: [&str; 4] = [
    "/console",
    "/console/",
    "/console/console.js",
    "/console/console.css",
];

/// The console's routes.
pub(super) fn routes() -> Router<ApiState> {
    let [page, slash, script, style] = PATHS;
    Router::new()
        .route(
            page,
            get(|| async { asset(PAGE, "text/html; charset=utf-8") }),
        )
        .route(
            slash,
            get(|| async { asset(PAGE, "text/html; charset=utf-8") }),
        )
        .route(
            script,
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            style,
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        body,
    )
        .into_response()
}
