//! `/healthz/live`, `/healthz/ready` (and `/healthz`, the same as ready):
//! liveness and readiness as etcd and Stalwart answer them, with the reason in
//! the body. Ready means writes would be taken now: not while the store
//! refuses writes (a failed journal write until restart, or a write failure
//! in the last [`RECENT_FAILURE`]), not while shutting down. While the store
//! is still opening (replaying the log into projections), the server answers
//! from [`opening_router`].

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::AppState;

/// A write failure makes the server unready for this long (unless a later
/// commit succeeds first).
pub const RECENT_FAILURE: std::time::Duration = std::time::Duration::from_secs(10);

/// What `/metrics` shows beyond the store's and the JMAP methods' own.
#[derive(Default)]
pub struct Health {
    /// Logins answered 429 by the limiter.
    pub login_blocked: std::sync::atomic::AtomicU64,
}

/// Why the server is not ready, if it is not.
pub(super) fn unready(app: &AppState) -> Option<String> {
    if *app.stopping.borrow() {
        return Some("shutting down".to_owned());
    }
    if let Some(halted) = app.ledger.cluster_status().and_then(|c| c.halted) {
        // Its state is frozen at the last commit it could apply: logins and
        // rights there may be out of date. Route clients to other nodes.
        return Some(format!("this node stopped following its log stream: {halted}"));
    }
    app.ledger.write_refusal(RECENT_FAILURE)
}

pub(super) async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "live"}))
}

pub(super) async fn ready(State(app): State<AppState>) -> Response {
    match unready(&app) {
        None => Json(json!({"status": "ok", "lastSeq": app.ledger.read().last_seq})).into_response(),
        Some(reason) => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not ready", "reason": reason}))).into_response()
        }
    }
}

/// What the server answers while the store opens: live, not ready, and 503
/// for everything else.
pub fn opening_router() -> Router {
    let not_ready = || async {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "not ready", "reason": "opening the store: checking the log and catching up projections"}),
            ),
        )
    };
    Router::new()
        .route("/healthz/live", get(live))
        .route("/healthz/ready", get(not_ready))
        .route("/healthz", get(not_ready))
        .fallback(not_ready)
}
