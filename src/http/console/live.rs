//! `GET /console/live?after=N`: the overview's latest events as they are
//! written, as server-sent events named `row`, each an escaped table row
//! (`id:` is the position, so a reconnecting `EventSource` resumes with
//! `Last-Event-ID`). It needs what the change feed needs (`sysFeedRead` over
//! the whole ledger), counts toward the same limit on open streams per
//! principal, and ends like it: when the login no longer holds or its console
//! session has ended (both checked before every batch), when its credential
//! expires, or at shutdown.
//!
//! It is for people, not services: the page keeps the newest
//! [`super::overview::LATEST`] rows, so of a burst of records only those are
//! rendered and sent, and batches are at least [`PACE`] apart: an open page
//! costs a few renderings a second however fast the log grows. (Services
//! follow `GET /api/feed`, which sends every record.)

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::overview::rows_after;
use super::session::Viewer;
use crate::auth::permissions::ledger_wide::FEED_READ;
use crate::feed::expiry;
use crate::http::{AppState, LastEventId};
use crate::store::Ledger;

/// The shortest time between two batches of rows.
const PACE: std::time::Duration = std::time::Duration::from_millis(250);

#[derive(Deserialize)]
pub(super) struct LiveQuery {
    after: Option<u64>,
}

/// The rows after `after` up to the last durable position (at most the newest
/// [`super::overview::LATEST`]), the position reached, and the login's expiry; `None` when the
/// login no longer holds. Blocking.
type Batch = Option<(Vec<(u64, String)>, u64, Option<ledger_events::UtcDateTime>)>;

fn batch(ledger: &Ledger, after: u64, login: &crate::auth::Session) -> Result<Batch, crate::StoreError> {
    let read = ledger.read();

    let Some(principal) = login.current(&read.view, crate::http::now()).filter(|p| p.may_globally(FEED_READ)) else {
        return Ok(None);
    };
    let expires = principal.credential.and_then(|c| c.bounds.expires_at);
    let rows = rows_after(ledger, &read, after)?.into_iter().map(|(seq, row)| (seq, row.into_string())).collect();
    Ok(Some((rows, read.last_seq, expires)))
}

pub(super) async fn rows(
    State(app): State<AppState>,
    viewer: Viewer,
    LastEventId(last): LastEventId,
    Query(q): Query<LiveQuery>,
) -> Response {
    if !viewer.principal.may_globally(FEED_READ) {
        return (StatusCode::FORBIDDEN, format!("{FEED_READ} is required")).into_response();
    }
    let slot =
        match crate::http::streams::open(&app.streams, &viewer.principal, app.connections.max_streams_per_principal) {
            Ok(slot) => slot,
            Err(refused) => return *refused,
        };
    let (ledger, login, mut stopping) = (app.ledger.clone(), Arc::clone(&viewer.login), app.stopping.subscribe());
    let (console, key) = (Arc::clone(&app.console), viewer.key);
    let mut cursor = q.after.unwrap_or(0).max(last.unwrap_or(0));
    let events = async_stream::stream! {
        // The slot goes with the stream: it is freed when the stream ends.
        let _open = slot;
        let mut durable = ledger.subscribe();
        loop {
            // Signed out, idle too long or past its lifetime: the stream ends with the session.
            if !console.sessions.alive(&key) {
                return;
            }
            let (l, s) = (ledger.clone(), Arc::clone(&login));
            let found = tokio::task::spawn_blocking(move || batch(&l, cursor, &s)).await;
            let (rows, reached, expires) = match found {
                Ok(Ok(Some(batch))) => batch,
                Ok(Ok(None)) => return,
                Ok(Err(e)) => {
                    yield Err(e);
                    return;
                }
                Err(e) => {
                    yield Err(crate::StoreError::Internal(format!("the live rows' task failed: {e}")));
                    return;
                }
            };
            for (position, html) in rows {
                yield Ok(SseEvent::default().id(position.to_string()).event("row").data(html));
            }
            cursor = reached;
            tokio::select! {
                () = tokio::time::sleep(PACE) => {}
                () = async { drop(stopping.wait_for(|s| *s).await) } => return,
            }
            while *durable.borrow_and_update() <= cursor {
                tokio::select! {
                    changed = durable.changed() => if changed.is_err() { return },
                    () = expiry(expires) => return,
                    () = async { drop(stopping.wait_for(|s| *s).await) } => return,
                }
            }
        }
    };
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}
