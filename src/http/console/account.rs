//! `GET /console/accounts/{id}[?asOf=P|TIME]`: one account. Its state now, or
//! as of a log position or time (`x:Account/get` with `asOf`, the position it
//! resolved to shown); its timeline, oldest first (`x:AccountHistory/get`)
//! with each event's before → after per field ([`super::timeline`]); and,
//! for a viewer with `sysAuditExport`, the download of its verifiable audit
//! slice (`GET /console/accounts/{id}/export`: the export `ledger audit
//! export --account` writes).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use ledger_events::values::ObjectId;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::call::{MethodFailure, jmap, list};
use super::layout::{self, Section};
use super::session::Viewer;
use super::timeline::{Change, changes};
use super::{PageError, PageResult};
use crate::auth::permissions::ledger_wide::AUDIT_EXPORT;
use crate::http::AppState;

#[derive(Deserialize, Default)]
pub(super) struct AccountQuery {
    #[serde(rename = "asOf", default)]
    as_of: String,
}

/// The rendered properties shown, in order, with their labels.
const FIELDS: [(&str, &str); 17] = [
    ("name", "Name"),
    ("emailAddress", "Email address"),
    ("@type", "Type"),
    ("domainId", "Domain"),
    ("description", "Description"),
    ("memberTenantId", "Tenant"),
    ("memberGroupIds", "Groups"),
    ("aliases", "Aliases"),
    ("credentials", "Credentials"),
    ("roles", "Roles"),
    ("permissions", "Permissions"),
    ("quotas", "Quotas"),
    ("usedDiskQuota", "Disk used (bytes)"),
    ("locale", "Locale"),
    ("timeZone", "Time zone"),
    ("encryptionAtRest", "Encryption at rest"),
    ("createdAt", "Created"),
];

pub(super) async fn page(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<AccountQuery>,
) -> PageResult {
    let p = &viewer.principal;
    let Some(oid) = ObjectId::from_jmap(&id) else {
        return Err(PageError::NotFound(format!("{id:?} is not an account id")));
    };
    let as_of = q.as_of.trim();
    let as_of_value = match as_of {
        "" => None,
        digits if digits.bytes().all(|b| b.is_ascii_digit()) => Some(json!(digits.parse::<u64>().unwrap_or(u64::MAX))),
        time => Some(json!(time)),
    };
    let mut calls = vec![("x:Account/get", json!({"ids": [id]})), ("x:AccountHistory/get", json!({"ids": [id]}))];
    if let Some(v) = &as_of_value {
        calls.push(("x:Account/get", json!({"ids": [id], "asOf": v})));
    }
    let mut answers = jmap(&app, p, calls).await?;
    let now = answers.next().map_err(MethodFailure::page)?;
    let history = answers.next().map_err(MethodFailure::page)?;
    let then = match as_of_value {
        Some(_) => Some(answers.next().map_err(MethodFailure::page)?),
        None => None,
    };
    let as_plain = |v: &Value| match layout::plain(v.clone()) {
        Value::Object(m) => Some(m),
        _ => None,
    };
    let current = list(&now).first().and_then(as_plain);
    let entries: Vec<Value> =
        list(&history).first().and_then(|h| h.get("events")).and_then(Value::as_array).cloned().unwrap_or_default();
    if current.is_none() && entries.is_empty() {
        return Err(PageError::NotFound(format!("There is no account {id} you may see.")));
    }
    // The history answer says the viewer may read these positions: the diffs are of them only.
    let wanted: BTreeSet<u64> = entries.iter().filter_map(|e| e.get("position").and_then(Value::as_u64)).collect();
    let details: HashMap<u64, Value> = entries
        .iter()
        .filter_map(|e| Some((e.get("position")?.as_u64()?, e.get("details").cloned().unwrap_or(Value::Null))))
        .collect();
    let shown_state = match &then {
        Some(t) => list(t).first().and_then(as_plain),
        None => current.clone(),
    };
    // The diffs and the shown state's names, from one read of the store.
    let (ledger, viewer_p, shown) = (app.ledger.clone(), Arc::clone(p), shown_state.clone());
    let (diffs, names) = tokio::task::spawn_blocking(move || {
        let read = ledger.read();
        let diffs = changes(&read.view, &viewer_p, ledger.log(), oid, &wanted, &details)?;
        let names: Option<HashMap<String, String>> =
            shown.map(|s| super::timeline::describe(&read.view, &viewer_p, &s).into_iter().collect());
        Ok::<_, crate::StoreError>((diffs, names))
    })
    .await??;
    let resolved = then.as_ref().and_then(|t| t.get("asOf")).and_then(Value::as_u64);
    let title = current
        .as_ref()
        .or(shown_state.as_ref())
        .and_then(|a| a.get("emailAddress").or(a.get("name")))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("Account {id}"));
    let last_event = entries.last().and_then(|e| e.get("event")).and_then(Value::as_str).unwrap_or_default();
    let ended = match (current.is_some(), last_event) {
        (false, "AccountErased") => Some(("erased", "Erased: its personal data is gone; the chain still verifies.")),
        (false, _) => Some(("destroyed", "Destroyed: the account no longer exists; its history is kept.")),
        _ => None,
    };
    let body = html! {
        h1 { (title) }
        @if let Some((tag, text)) = ended { p { span class={ "tag " (tag) } { (tag) } " " (text) } }
        form.filters method="get" action={ "/console/accounts/" (super::session::urlencode(&id)) } {
            div {
                label for="asOf" { "View as of a position or time" }
                input id="asOf" name="asOf" type="text" value=(as_of) placeholder="e.g. 42 or 2026-11-24T09:00:00Z" inputmode="text";
            }
            button type="submit" { "Show" }
            @if as_of_value.is_some() { a.button href={ "/console/accounts/" (super::session::urlencode(&id)) } { "Back to now" } }
            @if p.may_globally(AUDIT_EXPORT) {
                a.button href={ "/console/accounts/" (super::session::urlencode(&id)) "/export" } download={ "account-" (id) ".ndjson" } { "Download audit slice" }
            }
        }
        @if as_of_value.is_some() {
            p.banner id="as-of" role="status" {
                "As of position " strong { (resolved.map(|r| r.to_string()).unwrap_or_else(|| "—".into())) }
                @if let Some(e) = resolved.and_then(|r| entries.iter().rev().find(|e| e.get("position").and_then(Value::as_u64).is_some_and(|x| x <= r))) {
                    " (after " (layout::event_name(e.get("event").and_then(Value::as_str).unwrap_or_default())) " at " (layout::time(e.get("at").and_then(Value::as_str).unwrap_or_default())) ")"
                }
            }
        }
        section aria-labelledby="state-title" {
            h2 id="state-title" { @if as_of_value.is_some() { "State then" } @else { "State now" } }
            @match (&shown_state, &names) {
                (Some(s), Some(names)) => (state(s, names)),
                _ => p.muted id="no-state" { "The account did not exist at that point, or its past is erased." },
            }
        }
        section aria-labelledby="timeline-title" {
            h2 id="timeline-title" { "Timeline" }
            p.muted { (entries.len()) " events, oldest first." }
            div.scroll { (timeline(&id, &entries, &diffs, resolved)) }
        }
    };
    Ok(layout::page(&title, Some(p), Section::Accounts, body).into_response())
}

fn state(s: &Map<String, Value>, names: &HashMap<String, String>) -> Markup {
    html! {
        dl.state id="state" {
            @for (key, label) in FIELDS {
                @if s.contains_key(key) {
                    dt { (label) }
                    dd data-field=(key) {
                        @if key == "memberGroupIds" {
                            @let ids = s.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
                            @if ids.is_empty() { "none" }
                            @for (i, g) in ids.iter().enumerate() {
                                @if i > 0 { ", " }
                                @let gid = g.as_str().unwrap_or_default();
                                (layout::account_link(gid, &names.get(&format!("group:{gid}")).cloned().unwrap_or_else(|| gid.to_owned())))
                            }
                        } @else {
                            (names.get(key).cloned().unwrap_or_default())
                        }
                    }
                }
            }
            dt { "Id" }
            dd { code { (s.get("id").and_then(Value::as_str).unwrap_or_default()) } }
        }
    }
}

fn timeline(id: &str, entries: &[Value], diffs: &HashMap<u64, Option<Vec<Change>>>, as_of: Option<u64>) -> Markup {
    html! {
        table.stack id="timeline" {
            thead { tr { th scope="col" { "Position" } th scope="col" { "Time" } th scope="col" { "Event" } th scope="col" { "By" } th scope="col" { "Changes" } } }
            tbody {
                @for e in entries {
                    @let position = e.get("position").and_then(Value::as_u64).unwrap_or(0);
                    @let event = e.get("event").and_then(Value::as_str).unwrap_or_default();
                    @let later = as_of.is_some_and(|p| position > p);
                    tr data-position=(position) data-event=(event) class=[later.then_some("later")] {
                        td data-label="Position" { (layout::event_link(position, Some(id))) }
                        td data-label="Time" { (layout::time(e.get("at").and_then(Value::as_str).unwrap_or_default())) }
                        td data-label="Event" {
                            (layout::event_name(event))
                            @match event {
                                "AccountRenamed" | "AliasRenamed" => { " " span.tag.renamed { "rename" } }
                                "AccountErased" => { " " span.tag.erased { "erasure" } }
                                "AccountDestroyed" => { " " span.tag.destroyed { "destroyed" } }
                                _ => {}
                            }
                        }
                        td data-label="By" {
                            (layout::actor(&e["actor"]))
                            br;
                            span.muted { "by " (e["actor"].get("authMethod").and_then(Value::as_str).unwrap_or("unknown")) }
                        }
                        td data-label="Changes" {
                            @match diffs.get(&position) {
                                Some(Some(list)) if !list.is_empty() => {
                                    table.diff {
                                        thead { tr { th scope="col" { "Field" } th scope="col" { "Before" } th scope="col" { "After" } } }
                                        tbody {
                                            @for c in list {
                                                tr data-field=(c.field) {
                                                    th scope="row" { (c.field) }
                                                    td.before { (c.before) }
                                                    td.after { (c.after) }
                                                }
                                            }
                                        }
                                    }
                                }
                                Some(Some(_)) => span.muted { "no visible field changed" },
                                _ => span.muted { @if event == "AccountErased" { "personal data erased" } @else { "erased: not recoverable" } },
                            }
                            p { a href={ "/console/accounts/" (super::session::urlencode(id)) "?asOf=" (position) } { "View as of this event" } }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /console/accounts/{id}/export`: the account's audit slice as an NDJSON
/// download, exactly as `GET /api/audit/export?account=ID` gives it (and so
/// with the same right, `sysAuditExport` over the whole ledger).
pub(super) async fn export(State(app): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> PageResult {
    if !viewer.principal.may_globally(AUDIT_EXPORT) {
        return Err(PageError::Forbidden(format!("Downloading an audit slice needs {AUDIT_EXPORT}.")));
    }
    if ObjectId::from_jmap(&id).is_none() {
        return Err(PageError::NotFound(format!("{id:?} is not an account id")));
    }
    let mut response = crate::http::audit::account_export(app, Arc::clone(&viewer.principal), id.clone()).await;
    if response.status().is_success() {
        let name = format!("attachment; filename=\"account-{id}.ndjson\"");
        if let Ok(v) = HeaderValue::from_str(&name) {
            response.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(response)
}
