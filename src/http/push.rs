//! JMAP push over EventSource (RFC 8620 §7.3): `GET /eventsource/?types=…&
//! closeafter=state|no&ping=N`. A `state` event carries a StateChange whenever
//! one of the types changes, with `id:` = the log position, so a client that
//! reconnects with `Last-Event-ID` is told at once about what it missed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ledger_events::ObjectType;
use ledger_projections::state;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::auth::Principal;
use crate::jmap::session::ACCOUNT_ID;
use crate::jmap::state_string;

#[derive(Deserialize)]
pub struct PushQuery {
    types: Option<String>,
    closeafter: Option<String>,
    ping: Option<u64>,
}

fn bad(detail: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"type": "about:blank", "status": 400, "detail": detail}))).into_response()
}

/// The states of `types` now, and the last log position.
fn states(app: &AppState, types: &[ObjectType]) -> (BTreeMap<&'static str, String>, u64) {
    let read = app.ledger.read();
    let states =
        types.iter().map(|t| (t.jmap_name(), state_string(state::type_state(&read.view, *t).unwrap_or(0)))).collect();
    (states, read.last_seq)
}

fn state_event(states: &BTreeMap<&'static str, String>, position: u64) -> String {
    let change = json!({"@type": "StateChange", "changed": {ACCOUNT_ID: states}});
    format!("id: {position}\nevent: state\ndata: {change}\n\n")
}

pub async fn event_source(
    State(app): State<AppState>,
    Extension(_principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    Query(q): Query<PushQuery>,
) -> Response {
    let types: Vec<ObjectType> = match q.types.as_deref().unwrap_or("*") {
        "*" => ObjectType::ALL.to_vec(),
        list => {
            let mut out = Vec::new();
            for name in list.split(',').map(str::trim) {
                match ObjectType::ALL.iter().find(|t| t.jmap_name() == name) {
                    Some(t) => out.push(*t),
                    None => return bad(format!("{name:?} is not a type this server pushes")),
                }
            }
            out
        }
    };
    let close_after_state = match q.closeafter.as_deref().unwrap_or("no") {
        "state" => true,
        "no" => false,
        other => return bad(format!("closeafter must be state or no, not {other:?}")),
    };
    let ping = q.ping.unwrap_or(0).min(3600);
    let last_event_id: Option<u64> =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    let (lines, stream) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(16);
    let mut durable = app.ledger.subscribe();
    let mut stopping = app.stopping.subscribe();
    // Taken before the response goes out, so no change after the client
    // connected can slip between this and the first wait.
    let (mut sent, position) = states(&app, &types);
    tokio::spawn(async move {
        // A reconnecting client hears at once about changes it missed.
        if let Some(seen) = last_event_id
            && position > seen
            && (lines.send(Ok(state_event(&sent, position))).await.is_err() || close_after_state)
        {
            return;
        }
        let mut pinger = tokio::time::interval(Duration::from_secs(ping.max(1)));
        pinger.tick().await;
        loop {
            tokio::select! {
                changed = durable.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let (now, position) = states(&app, &types);
                    if now != sent {
                        sent = now;
                        if lines.send(Ok(state_event(&sent, position))).await.is_err() || close_after_state {
                            return;
                        }
                    }
                }
                _ = pinger.tick(), if ping > 0 => {
                    let event = format!("event: ping\ndata: {}\n\n", json!({"interval": ping}));
                    if lines.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                () = lines.closed() => return,
                () = async { drop(stopping.wait_for(|s| *s).await) } => return,
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(stream));
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}
