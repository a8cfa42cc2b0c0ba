//! The audit console: read-only HTML pages at `/console/` for auditors and
//! help-desk staff (docs/console.md). Every page is a `GET`, rendered on the
//! server (maud escapes every interpolated value); only sign-in and sign-out
//! are `POST`s, and only the overview's live list runs script.
//!
//! The console reads through the JMAP API as the signed-in principal
//! ([`call`]), so a page shows exactly what that principal's `/get`, `/query`
//! and `x:AccountHistory/get` would: the same permissions and tenant scope.
//! What JMAP has no method for (the log's own records, the chart, the chain's
//! status, the export) needs the same ledger-wide permission as its API route.
//!
//! - `session`: sign-in, sign-out and the session cookie ([`Viewer`]).
//! - `layout`: the page shell and shared bits of markup; `assets`: CSS and JS.
//! - `overview`, `chart`, `chain`, `live`: the overview page and its parts.
//! - `directory`, `account`, `timeline`, `event`: the other pages.

mod account;
mod assets;
mod call;
mod chain;
mod chart;
mod directory;
mod event;
mod layout;
mod live;
mod overview;
mod session;
mod timeline;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::AppState;

pub(crate) use session::Sessions;

/// What the console keeps between requests: sign-in sessions, the event
/// counts of the overview's chart and the chain's verified prefix.
#[derive(Default)]
pub(crate) struct Console {
    pub(crate) sessions: Sessions,
    chart: chart::Counts,
    chain: std::sync::Arc<chain::Watch>,
}

/// The console's routes, under `/console`.
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(overview::page))
        .route("/console/sign-in", get(session::form).post(session::sign_in))
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/accounts", get(directory::accounts))
        .route("/console/domains", get(directory::domains))
        .route("/console/roles", get(directory::roles))
        .route("/console/tenants", get(directory::tenants))
        .route("/console/accounts/{id}", get(account::page))
        .route("/console/accounts/{id}/export", get(account::export))
        .route("/console/events/{position}", get(event::page))
        .route("/console/live", get(live::rows))
        .route("/console/static/{file}", get(assets::file))
        .route_layer(middleware::from_fn_with_state(state, headers))
}

/// The Content-Security-Policy of every console response: nothing but this
/// origin's own script, style and forms; no framing, no plugins, no inline
/// script or style (the pages have none), no `<base>`.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every console response. Pages hold personal
/// data, so nothing but the static files may be cached.
async fn headers(request: Request, next: Next) -> Response {
    let is_static = request.uri().path().starts_with("/console/static/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if !is_static {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Why a page cannot be shown: the console's one error type, answered as an
/// HTML page with the matching status by [`PageError::into_response`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    #[error("{0}")]
    NotFound(String),
    /// The principal lacks a permission (named in the text).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    /// Too many requests of this principal at once, or the store is busy.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<crate::StoreError> for PageError {
    fn from(e: crate::StoreError) -> Self {
        tracing::error!(error = %e, "console: the store could not be read");
        PageError::Internal("the ledger could not be read".to_owned())
    }
}

impl From<tokio::task::JoinError> for PageError {
    fn from(e: tokio::task::JoinError) -> Self {
        tracing::error!(error = %e, "console: a read task failed");
        PageError::Internal("the page could not be made".to_owned())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title) = match &self {
            PageError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
            PageError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed"),
            PageError::BadRequest(_) => (StatusCode::BAD_REQUEST, "Bad request"),
            PageError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "Try again"),
            PageError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong"),
        };
        let body = maud::html! {
            h1 { (title) }
            p.error role="alert" { (self.to_string()) }
            p { a href="/console/" { "Back to the overview" } }
        };
        (status, layout::page(title, None, layout::Section::None, body)).into_response()
    }
}

/// The result of a page handler.
pub(crate) type PageResult = Result<Response, PageError>;
