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
use ledger_events::values::ExternalId;
use ledger_projections::changes::any_change_since;
use ledger_projections::{SnapshotView, state};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, ClientIp, LastEventId, now, problem};
use crate::auth::{Principal, Session};
use crate::feed::expiry;
use crate::jmap::session::ACCOUNT_ID;
use crate::jmap::state_string;
use crate::jmap::{read_permission, tenant_scoped};
use crate::store::ReadState;

#[derive(Deserialize)]
pub(super) struct PushQuery {
    types: Option<String>,
    closeafter: Option<String>,
    ping: Option<u64>,
}

/// Whether a principal confined to `scope` is to hear that type `t` changed
/// after `since`: always when it is not confined or `t` is global (`x:Role`);
/// else only when an object of its tenant changed.
fn tells(view: &SnapshotView, t: ObjectType, scope: Option<&ExternalId>, since: u64) -> bool {
    match scope.filter(|_| tenant_scoped(t)) {
        None => true,
        Some(tenant) => any_change_since(view, t, since, Some(tenant)).unwrap_or(true),
    }
}

/// The states of `types` in `read`, and its last log position. A type this
/// principal is not to hear of since `since` ([`tells`]) keeps the state it
/// was last sent (`previous`).
fn states(
    read: &ReadState,
    types: &[ObjectType],
    scope: Option<&ExternalId>,
    since: u64,
    previous: &BTreeMap<&'static str, String>,
) -> (BTreeMap<&'static str, String>, u64) {
    let view = &read.view;
    let mut out = BTreeMap::new();
    for t in types {
        let told = match previous.get(t.jmap_name()) {
            Some(before) if !tells(view, *t, scope, since) => before.clone(),
            _ => state_string(state::type_state(view, *t).unwrap_or(0)),
        };
        out.insert(t.jmap_name(), told);
    }
    (out, read.last_seq)
}

fn state_event(states: &BTreeMap<&'static str, String>, position: u64) -> Result<SseEvent, std::convert::Infallible> {
    let change = json!({"@type": "StateChange", "changed": {ACCOUNT_ID: states}});
    Ok(SseEvent::default().id(position.to_string()).event("state").data(change.to_string()))
}

/// Whether `principal` may be told about every type of `types`.
fn may_read(principal: &Principal, types: &[ObjectType]) -> bool {
    types.iter().all(|t| principal.may(read_permission(*t)))
}

pub(super) async fn event_source(
    State(app): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    LastEventId(last_event_id): LastEventId,
    Query(q): Query<PushQuery>,
) -> Response {
    let types: Vec<ObjectType> = match q.types.as_deref().unwrap_or("*") {
        // Every type this principal may read.
        "*" => ObjectType::ALL.into_iter().filter(|t| may_read(&principal, &[*t])).collect(),
        list => {
            let mut out = Vec::new();
            for name in list.split(',').map(str::trim) {
                match ObjectType::ALL.iter().find(|t| t.jmap_name() == name) {
                    Some(t) if may_read(&principal, &[*t]) => out.push(*t),
                    Some(t) => {
                        return problem(StatusCode::FORBIDDEN, format!("{} is required", read_permission(*t)));
                    }
                    None => {
                        return problem(StatusCode::BAD_REQUEST, format!("{name:?} is not a type this server pushes"));
                    }
                }
            }
            out
        }
    };
    if types.is_empty() {
        return problem(StatusCode::FORBIDDEN, "this principal may read no type this server pushes".to_owned());
    }
    let slot = match super::streams::open(&app.streams, &principal, app.connections.max_streams_per_principal) {
        Ok(slot) => slot,
        Err(refused) => return *refused,
    };
    let session = Arc::new(Session::new(Arc::clone(&app.auth), principal, ip));
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
    // Scoped like /get: a tenant principal hears only of its tenant's objects
    // (types that are not tenant-scoped, x:Role, are global).
    let scope = session.tenant().cloned();
    let (mut sent, mut position) = states(&app.ledger.read(), &types, None, 0, &BTreeMap::new());
    let mut deadline = session.expires_at();
    let events = async_stream::stream! {
        // Freed when the stream ends.
        let _open = slot;
        // A reconnecting client hears at once about changes it missed.
        if let Some(seen) = last_event_id
            && position > seen
        {
            // A tenant principal is told only if one of its objects changed since.
            let (a, t, sc) = (app.clone(), types.clone(), scope.clone());
            let missed = tokio::task::spawn_blocking(move || {
                let read = a.ledger.read();
                t.iter().any(|ty| tells(&read.view, *ty, sc.as_ref(), seen))
            }).await;
            if missed.unwrap_or(true) {
                yield state_event(&sent, position);
                if close_after_state {
                    return;
                }
            }
        }
        loop {
            tokio::select! {
                changed = durable.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // The login is rechecked before every delivery.
                    let (a, s, t, sc, before, since) =
                        (app.clone(), Arc::clone(&session), types.clone(), scope.clone(), sent.clone(), position);
                    let checked = tokio::task::spawn_blocking(move || {
                        let read = a.ledger.read();
                        let current = s.current(&read.view, now()).filter(|p| may_read(p, &t))?;
                        let expires = current.credential.and_then(|c| c.bounds.expires_at);
                        // The states of the snapshot the login was checked at.
                        Some((states(&read, &t, sc.as_ref(), since, &before), expires))
                    }).await;
                    let Ok(Some(((now, last), expires))) = checked else { return };
                    // An expiry set (or moved) since the stream opened counts from now on.
                    deadline = expires;
                    position = last;
                    if now != sent {
                        sent = now;
                        yield state_event(&sent, position);
                        if close_after_state {
                            return;
                        }
                    }
                }
                () = async { drop(stopping.wait_for(|s| *s).await) } => return,
                // The credential expires: the stream ends with it.
                () = expiry(deadline) => return,
            }
        }
    };
    if ping == 0 {
        return Sse::new(events).into_response();
    }
    let ping_event = SseEvent::default().event("ping").data(json!({"interval": ping}).to_string());
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(ping)).event(ping_event)).into_response()
}
