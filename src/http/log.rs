//! `GET /api/log`: where this node's log ends (position and head hash) and,
//! in a cluster, which stream commit it holds and whether it still follows;
//! and the read-your-writes headers every authenticated route takes:
//! `X-Ledger-Min-Position` (wait until this node has applied a position)
//! and `X-Ledger-Position` (the position an answer was read at or after).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::{AppState, problem};
use crate::auth::Principal;
use crate::auth::permissions::ledger_wide::AUDIT_EXPORT;

/// The request header: answer only once this node has applied this log
/// position (a position an earlier answer, perhaps another node's, named).
pub(crate) const MIN_POSITION: HeaderName = HeaderName::from_static("x-ledger-min-position");
/// The response header: the last position this node had applied when it
/// answered.
pub(crate) const POSITION: HeaderName = HeaderName::from_static("x-ledger-position");
/// How long a request waits for its minimum position before it is answered
/// 503.
pub(crate) const MIN_POSITION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits, bounded, for the position `X-Ledger-Min-Position` names; then
/// answers with `X-Ledger-Position`. A header that is not a number is a 400.
pub(super) async fn positions(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(value) = request.headers().get(MIN_POSITION) {
        let Some(wanted) = value.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) else {
            return problem(StatusCode::BAD_REQUEST, format!("{MIN_POSITION} must be a log position (a number)"));
        };
        let mut durable = app.ledger.subscribe();
        let reached = tokio::time::timeout(MIN_POSITION_WAIT, durable.wait_for(|applied| *applied >= wanted)).await;
        if !matches!(reached, Ok(Ok(_))) {
            let applied = app.ledger.read().last_seq;
            let mut response = problem(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "this node has applied the log up to position {applied}; position {wanted} did not reach it \
                     within {MIN_POSITION_WAIT:?} (ask again, or ask the node that answered it)"
                ),
            );
            response.headers_mut().insert(POSITION, HeaderValue::from(applied));
            return response;
        }
    }
    let mut response = next.run(request).await;
    response.headers_mut().insert(POSITION, HeaderValue::from(app.ledger.read().last_seq));
    response
}

/// This node's log end, and its place in the cluster's stream. Needs
/// `sysAuditExport`, like the checkpoint.
pub(super) async fn log(State(app): State<AppState>, Extension(principal): Extension<Arc<Principal>>) -> Response {
    if !principal.may_globally(AUDIT_EXPORT) {
        return problem(StatusCode::FORBIDDEN, format!("{AUDIT_EXPORT} is required"));
    }
    let read = app.ledger.read();
    let log = app.ledger.log().clone();
    let position = read.last_seq;
    let found = tokio::task::spawn_blocking(move || log.read(read.view.snapshot(), read.last_seq)).await;
    let head = match found {
        Ok(Ok(Some(record))) => record.header.hash.to_hex(),
        Ok(Ok(None)) if position == 0 => ledger_events::Digest::ZERO.to_hex(),
        _ => return problem(StatusCode::INTERNAL_SERVER_ERROR, "the log could not be read".to_owned()),
    };
    let cluster = app.ledger.cluster_status();
    Json(json!({
        "backEnd": if cluster.is_some() { "nats" } else { "fjall" },
        "position": position,
        "headHash": head,
        "stream": cluster.as_ref().map(|c| json!({"name": c.stream, "applied": c.applied})),
        "halted": cluster.and_then(|c| c.halted),
    }))
    .into_response()
}
