//! JMAP push over EventSource (RFC 8620 §7.3): `GET /eventsource/?types=…&
//! closeafter=state|no&ping=N`. A `state` event carries a StateChange whenever
//! one of the types changes, with `id:` = the log position, so a client that
//! reconnects with `Last-Event-ID` is told at once about what it missed. A
//! `ping` event (data `{"interval": N}`) follows every N seconds without
//! another event.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use ledger_events::ObjectType;
use ledger_projections::state;
use serde::Deserialize;
use serde_json::json;

use super::{AppState, LastEventId, problem};
use crate::auth::Principal;
use crate::jmap::session::ACCOUNT_ID;
use crate::jmap::state_string;

#[derive(Deserialize)]
pub(super) struct PushQuery {
    types: Option<String>,
    closeafter: Option<String>,
    ping: Option<u64>,
}

/// The states of `types` now, and the last log position.
fn states(app: &AppState, types: &[ObjectType]) -> (BTreeMap<&'static str, String>, u64) {
    let read = app.ledger.read();
    let states =
        types.iter().map(|t| (t.jmap_name(), state_string(state::type_state(&read.view, *t).unwrap_or(0)))).collect();
    (states, read.last_seq)
}

fn state_event(states: &BTreeMap<&'static str, String>, position: u64) -> Result<SseEvent, std::convert::Infallible> {
    let change = json!({"@type": "StateChange", "changed": {ACCOUNT_ID: states}});
    Ok(SseEvent::default().id(position.to_string()).event("state").data(change.to_string()))
}

pub(super) async fn event_source(
    State(app): State<AppState>,
    Extension(_principal): Extension<Arc<Principal>>,
    LastEventId(last_event_id): LastEventId,
    Query(q): Query<PushQuery>,
) -> Response {
    let types: Vec<ObjectType> = match q.types.as_deref().unwrap_or("*") {
        "*" => ObjectType::ALL.to_vec(),
        list => {
            let mut out = Vec::new();
            for name in list.split(',').map(str::trim) {
                match ObjectType::ALL.iter().find(|t| t.jmap_name() == name) {
                    Some(t) => out.push(*t),
                    None => {
                        return problem(StatusCode::BAD_REQUEST, format!("{name:?} is not a type this server pushes"));
                    }
                }
            }
            out
        }
    };
    let close_after_state = match q.closeafter.as_deref().unwrap_or("no") {
        "state" => true,
        "no" => false,
        other => return problem(StatusCode::BAD_REQUEST, format!("closeafter must be state or no, not {other:?}")),
    };
    let ping = q.ping.unwrap_or(0).min(3600);
    let mut durable = app.ledger.subscribe();
    let mut stopping = app.stopping.subscribe();
    // Taken before the response goes out, so no change after the client
    // connected can slip between this and the first wait.
    let (mut sent, position) = states(&app, &types);
    let events = async_stream::stream! {
        // A reconnecting client hears at once about changes it missed.
        if let Some(seen) = last_event_id
            && position > seen
        {
            yield state_event(&sent, position);
            if close_after_state {
                return;
            }
        }
        loop {
            tokio::select! {
                changed = durable.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let (now, position) = states(&app, &types);
                    if now != sent {
                        sent = now;
                        yield state_event(&sent, position);
                        if close_after_state {
                            return;
                        }
                    }
                }
                () = async { drop(stopping.wait_for(|s| *s).await) } => return,
            }
        }
    };
    if ping == 0 {
        return Sse::new(events).into_response();
    }
    let ping_event = SseEvent::default().event("ping").data(json!({"interval": ping}).to_string());
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(ping)).event(ping_event)).into_response()
}
