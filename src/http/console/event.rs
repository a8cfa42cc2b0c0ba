//! `GET /console/events/{position}[?account=ID]`: one record of the log: its
//! position, hashes (record, previous, payload), commit, actor and details
//! (secrets shown only as "changed"), and every event of the same commit.
//!
//! A viewer with `sysFeedRead` or `sysAuditExport` over the whole ledger may
//! open any record. Anyone else reaches a record through an account page
//! (`account=ID`): the record must be in that account's history as
//! `x:AccountHistory/get` gives it to the viewer, and the commit's other
//! events are listed only if they are too.

use std::collections::HashSet;

use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use super::call::{MethodFailure, jmap, list};
use super::layout::{self, Section};
use super::session::Viewer;
use super::{PageError, PageResult};
use crate::auth::permissions::ledger_wide::{AUDIT_EXPORT, FEED_READ};
use crate::http::AppState;

/// Records of one commit listed at most on each side of the record.
const COMMIT_REACH: u64 = 1000;

#[derive(Deserialize, Default)]
pub(super) struct EventQuery {
    account: Option<String>,
}

pub(super) async fn page(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(position): Path<u64>,
    Query(q): Query<EventQuery>,
) -> PageResult {
    let p = &viewer.principal;
    let ledger_wide = p.may_globally(FEED_READ) || p.may_globally(AUDIT_EXPORT);
    // Who may see what: all, or the positions of one account's visible history.
    let (allowed, entries): (Option<HashSet<u64>>, Vec<Value>) = match (ledger_wide, &q.account) {
        (true, _) => (None, Vec::new()),
        (false, None) => {
            return Err(PageError::Forbidden(format!(
                "Opening any record needs {FEED_READ} over the whole ledger; open it from an account page you may read."
            )));
        }
        (false, Some(account)) => {
            let answer = jmap(&app, p, vec![("x:AccountHistory/get", serde_json::json!({"ids": [account]}))])
                .await?
                .next()
                .map_err(MethodFailure::page)?;
            let events: Vec<Value> = list(&answer)
                .first()
                .and_then(|h| h.get("events"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            (Some(events.iter().filter_map(|e| e.get("position").and_then(Value::as_u64)).collect()), events)
        }
    };
    if allowed.as_ref().is_some_and(|a| !a.contains(&position)) {
        return Err(PageError::NotFound(format!("Position {position} is not in a history you may read.")));
    }
    let ledger = app.ledger.clone();
    let found = tokio::task::spawn_blocking(move || {
        let read = ledger.read();
        let snap = read.view.snapshot();
        let log = ledger.log();
        let Some(record) = log.read(snap, position)?.filter(|_| position <= read.last_seq) else {
            return Ok::<_, crate::StoreError>(None);
        };
        let commit = record.header.commit.commit_id;
        let mut first = position;
        while first > 1 && position - first < COMMIT_REACH {
            match log.read(snap, first - 1)? {
                Some(r) if r.header.commit.commit_id == commit => first -= 1,
                _ => break,
            }
        }
        let mut siblings: Vec<(Value, Option<(String, String)>)> = Vec::new();
        for seq in first..=read.last_seq.min(position + COMMIT_REACH) {
            match log.read(snap, seq)? {
                Some(r) if r.header.commit.commit_id == commit => {
                    siblings.push((
                        crate::audit::history::entry(&read.view, &r, None),
                        super::overview::subject_named(&read.view, &r),
                    ));
                }
                _ => break,
            }
        }
        let entry = crate::audit::history::entry(&read.view, &record, None);
        Ok(Some((record, entry, siblings)))
    })
    .await??;
    let Some((record, global_entry, siblings)) = found else {
        return Err(PageError::NotFound(format!("There is no record at position {position}.")));
    };
    // A confined viewer sees the entry as its history shows it (actors outside its tenant hidden).
    let entry = match &allowed {
        None => global_entry,
        Some(_) => entries
            .iter()
            .find(|e| e.get("position").and_then(Value::as_u64) == Some(position))
            .cloned()
            .unwrap_or(global_entry),
    };
    let siblings: Vec<&(Value, Option<(String, String)>)> = siblings
        .iter()
        .filter(|(e, _)| {
            allowed.as_ref().is_none_or(|a| e.get("position").and_then(Value::as_u64).is_some_and(|x| a.contains(&x)))
        })
        .collect();
    let account = q.account.as_deref();
    let title = format!("Event #{position}");
    let details =
        entry.get("details").filter(|d| !d.is_null()).map(|d| serde_json::to_string_pretty(d).unwrap_or_default());
    let body = html! {
        h1 { (title) ": " (layout::event_name(&record.header.event_type)) }
        nav.pager aria-label="Neighbouring records" {
            @if allowed.is_none() {
                @if position > 1 { a rel="prev" href={ "/console/events/" (position - 1) } { "← #" (position - 1) } }
                a rel="next" href={ "/console/events/" (position + 1) } { "#" (position + 1) " →" }
            }
            @if let Some(a) = account { (layout::account_link(a, "Back to the account")) }
        }
        dl.state id="record" {
            dt { "Position" } dd { (position) }
            dt { "Event" } dd { (record.header.event_type) }
            dt { "Committed at" } dd { (layout::time(&record.header.commit.committed_at.to_string())) }
            dt { "By" } dd { (layout::actor(&entry["actor"])) " (" (record.header.commit.actor.auth_method.as_str()) ")" }
            dt { "Commit" } dd { code { (record.header.commit.commit_id) } }
            dt { "Request id" } dd { code { (record.header.commit.request_id) } }
            dt { "Call id" } dd { code { (record.header.commit.call_id) } }
            dt { "Event id" } dd { code { (record.header.event_id) } }
            dt { "Record format" } dd { (record.header.format) }
            dt { "Record hash" } dd { code.hash id="hash" { (record.header.hash.to_hex()) } }
            dt { "Previous hash" } dd { code.hash { (record.header.prev_hash.to_hex()) } }
            dt { "Payload hash" } dd { code.hash { (record.header.payload_hash.to_hex()) } }
            dt { "Payload" } dd { @if record.payload.is_some() { "present" } @else { span.tag.erased { "erased" } } }
        }
        h2 { "Details" }
        @match &details {
            Some(d) => pre.scroll id="details" { code { (d) } },
            None => p.muted { "None: the payload was erased, or you may not see it." },
        }
        h2 { "Events of the same commit" }
        div.scroll {
            table id="commit" {
                thead { tr { th scope="col" { "Position" } th scope="col" { "Event" } th scope="col" { "Account" } } }
                tbody {
                    @for (e, subject) in &siblings {
                        @let at = e.get("position").and_then(Value::as_u64).unwrap_or(0);
                        tr aria-current=[(at == position).then_some("true")] {
                            td { (layout::event_link(at, account)) }
                            td { (layout::event_name(e.get("event").and_then(Value::as_str).unwrap_or_default())) }
                            td { @match subject { Some((id, label)) => (layout::account_link(id, label)), None => "—" } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&title, Some(p), Section::None, body).into_response())
}
