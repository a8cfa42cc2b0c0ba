//! `GET /api/feed`: the durable event feed for services, framed for HTTP. The
//! records come from [`crate::feed::follow`]: those after a position, then the
//! log live. Records are the audit export's lines (hashes included), as NDJSON
//! (`Accept: application/x-ndjson`) or server-sent events (`id:` = position, so
//! a reconnect with `Last-Event-ID` resumes). Delivery is at least once: a
//! subscriber resumes from the last position it processed.

use std::collections::HashSet;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use ledger_events::Event;
use ledger_events::values::ObjectId;
use serde::Deserialize;
use tokio_stream::StreamExt;

use super::{AppState, ClientIp, LastEventId, problem};
use crate::auth::permissions::ledger_wide::FEED_READ;
use crate::auth::{Principal, Session};
use crate::feed::{FeedFilter, Follower, Gate, follow};

#[derive(Deserialize)]
pub(super) struct FeedQuery {
    /// Start after this position (default: `Last-Event-ID`, else the beginning).
    after: Option<u64>,
    /// Comma-separated event types to include.
    types: Option<String>,
    /// Only records of this account (id).
    account: Option<String>,
    /// Keep the stream open and follow new records (default true).
    follow: Option<bool>,
}

pub(super) async fn feed(
    State(app): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    LastEventId(last_event_id): LastEventId,
    headers: HeaderMap,
    Query(q): Query<FeedQuery>,
) -> Response {
    if !principal.may_globally(FEED_READ) {
        return problem(StatusCode::FORBIDDEN, format!("{FEED_READ} is required"));
    }
    let slot = match super::streams::open(&app.streams, &principal, app.connections.max_streams_per_principal) {
        Ok(slot) => slot,
        Err(refused) => return *refused,
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let ndjson = accept.contains("application/x-ndjson");
    let after = q.after.or(last_event_id).unwrap_or(0);
    let types = match q.types.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(list) => {
            let set: HashSet<String> = list.split(',').map(|t| t.trim().to_owned()).collect();
            if let Some(unknown) = set.iter().find(|t| !Event::TYPE_NAMES.contains(&t.as_str())) {
                return problem(StatusCode::BAD_REQUEST, format!("{unknown:?} is not an event type"));
            }
            Some(set)
        }
    };
    let account = match q.account.as_deref() {
        None => None,
        Some(a) => match ObjectId::from_jmap(a) {
            Some(id) => Some(id),
            None => return problem(StatusCode::BAD_REQUEST, format!("{a:?} is not an account id")),
        },
    };
    let session = Session::new(Arc::clone(&app.auth), Arc::clone(&principal), ip);
    let gate: Gate = Arc::new(move |view| {
        let now = session.current(view, super::now()).filter(|p| p.may_globally(FEED_READ))?;
        Some(now.credential.and_then(|c| c.bounds.expires_at))
    });
    let follower = Follower { filter: FeedFilter { types, account }, live: q.follow.unwrap_or(true), gate };
    // The slot goes with the stream: it is freed when the stream ends.
    let records = follow(app.ledger.clone(), after, follower, app.stopping.subscribe()).map(move |r| {
        let _open = &slot;
        r
    });
    if ndjson {
        let lines = records.map(|r| r.map(|record| record.line + "\n"));
        return (
            [(header::CONTENT_TYPE, "application/x-ndjson"), (header::CACHE_CONTROL, "no-cache")],
            Body::from_stream(lines),
        )
            .into_response();
    }
    let events = records
        .map(|r| r.map(|record| SseEvent::default().id(record.position.to_string()).event("record").data(record.line)));
    // A comment every 15 s: a subscriber that vanished is found when it fails.
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}
