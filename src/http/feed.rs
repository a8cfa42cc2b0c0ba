//! `GET /api/feed`: the durable event feed for services. Streams log records after
//! a position, then follows the log live. Each subscriber reads the log at its own
//! pace from durable snapshots, so a slow one never holds a writer back. Records
//! are the audit export's lines (hashes included), as NDJSON (`Accept:
//! application/x-ndjson`) or server-sent events (`id:` = position, so a
//! reconnect with `Last-Event-ID` resumes). Delivery is at least once: a
//! subscriber resumes from the last position it processed.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ledger_events::values::ObjectId;
use ledger_events::{Event, Record};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::audit::line::ExportLine;
use crate::auth::Principal;

pub const FEED_PERMISSION: &str = "sysFeedRead";
/// Records read per snapshot before the stream yields.
const CHUNK: usize = 1000;

/// Positions read, each with its line if the filter keeps it.
type Chunk = Vec<(u64, Option<String>)>;

#[derive(Deserialize)]
pub struct FeedQuery {
    /// Start after this position (default: `Last-Event-ID`, else the beginning).
    after: Option<u64>,
    /// Comma-separated event types to include.
    types: Option<String>,
    /// Only records of this account (id).
    account: Option<String>,
    /// Keep the stream open and follow new records (default true).
    follow: Option<bool>,
}

fn problem(status: StatusCode, detail: String) -> Response {
    (status, Json(json!({"type": "about:blank", "status": status.as_u16(), "detail": detail}))).into_response()
}

struct Filter {
    types: Option<HashSet<String>>,
    account: Option<ObjectId>,
}

impl Filter {
    fn keeps(&self, record: &Record) -> bool {
        if self.types.as_ref().is_some_and(|t| !t.contains(&record.header.event_type)) {
            return false;
        }
        match self.account {
            None => true,
            Some(id) => match record.event() {
                Some(Ok(event)) => event_account(&event) == Some(id),
                _ => false,
            },
        }
    }
}

fn event_account(event: &Event) -> Option<ObjectId> {
    match event.subject() {
        Some((ledger_events::ObjectType::Account, id)) => Some(id),
        _ => None,
    }
}

pub async fn feed(
    State(app): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    Query(q): Query<FeedQuery>,
) -> Response {
    if !principal.may(FEED_PERMISSION) || principal.tenant.is_some() {
        return problem(StatusCode::FORBIDDEN, format!("{FEED_PERMISSION} is required"));
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let ndjson = accept.contains("application/x-ndjson");
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    let mut cursor = q.after.or(last_event_id).unwrap_or(0);
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
    let filter = Arc::new(Filter { types, account });
    let follow = q.follow.unwrap_or(true);
    let ledger = app.ledger.clone();
    let mut stopping = app.stopping.subscribe();
    let (lines, stream) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(64);
    tokio::spawn(async move {
        let mut durable = ledger.subscribe();
        loop {
            let (l, f) = (ledger.clone(), Arc::clone(&filter));
            let from = cursor;
            let read = tokio::task::spawn_blocking(move || -> Result<Chunk, crate::StoreError> {
                let state = l.read();
                let mut out = Vec::new();
                for record in l.log().scan(state.view.snapshot(), from + 1).take(CHUNK) {
                    let record = record?;
                    if record.seq() > state.last_seq {
                        break;
                    }
                    let line = match f.keeps(&record) {
                        true => Some(
                            ExportLine::record(&record)
                                .map_err(|e| crate::StoreError::Damaged(e.to_string()))?
                                .to_text(),
                        ),
                        false => None,
                    };
                    out.push((record.seq(), line));
                }
                Ok(out)
            })
            .await;
            let records = match read {
                Ok(Ok(r)) => r,
                _ => {
                    let _ = lines.send(Err(std::io::Error::other("the feed could not read the log"))).await;
                    return;
                }
            };
            let read_count = records.len();
            for (seq, line) in records {
                cursor = seq;
                if let Some(line) = line {
                    let framed = if ndjson {
                        format!("{line}\n")
                    } else {
                        format!("id: {seq}\nevent: record\ndata: {line}\n\n")
                    };
                    if lines.send(Ok(framed)).await.is_err() {
                        return;
                    }
                }
            }
            if read_count == CHUNK {
                continue;
            }
            if !follow {
                return;
            }
            loop {
                if *durable.borrow_and_update() > cursor {
                    break;
                }
                tokio::select! {
                    changed = durable.changed() => if changed.is_err() { return },
                    // The subscriber went away while nothing was written.
                    () = lines.closed() => return,
                    // The server is shutting down: end the stream; the subscriber resumes elsewhere.
                    _ = stopping.wait_for(|s| *s) => return,
                }
            }
        }
    });
    let content_type = if ndjson { "application/x-ndjson" } else { "text/event-stream" };
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(stream));
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}
