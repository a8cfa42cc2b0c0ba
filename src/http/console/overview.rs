//! `GET /console/`: the overview. Counts of accounts, groups, domains, roles
//! and tenants (as the viewer's `/query` with `calculateTotal` sees them);
//! for a viewer with `sysFeedRead` over the whole ledger, also the chart of
//! events per day, the chain's status and the latest events, which follow
//! the log live through [`super::live`].

use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use ledger_events::Record;
use ledger_events::values::ObjectId;
use ledger_projections::{SnapshotView, state};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::call::jmap;
use super::layout::{self, Section};
use super::session::Viewer;
use super::{PageResult, chart};
use crate::auth::permissions::ledger_wide::FEED_READ;
use crate::http::AppState;
use crate::store::Ledger;

/// Latest events listed (and kept as new ones arrive).
pub(crate) const LATEST: u64 = 25;

pub(super) async fn page(State(app): State<AppState>, viewer: Viewer) -> PageResult {
    let p = &viewer.principal;
    let total =
        |name: &'static str, filter: Value| (name, json!({"filter": filter, "limit": 0, "calculateTotal": true}));
    let mut answers = jmap(
        &app,
        p,
        vec![
            total("x:Account/query", json!({"@type": "User"})),
            total("x:Account/query", json!({"@type": "Group"})),
            total("x:Domain/query", json!({})),
            total("x:Role/query", json!({})),
            total("x:Tenant/query", json!({})),
        ],
    )
    .await?;
    let labels = ["Accounts", "Groups", "Domains", "Roles", "Tenants"];
    let links = [
        "/console/accounts?type=User",
        "/console/accounts?type=Group",
        "/console/domains",
        "/console/roles",
        "/console/tenants",
    ];
    let counts: Vec<Option<u64>> =
        labels.iter().map(|_| answers.next().ok().and_then(|v| v.get("total").and_then(Value::as_u64))).collect();
    let ledger_wide = p.may_globally(FEED_READ);
    let log = if ledger_wide {
        let (ledger, console) = (app.ledger.clone(), Arc::clone(&app.console));
        let now_ms = jiff::Timestamp::now().as_millisecond();
        Some(
            tokio::task::spawn_blocking(move || {
                let window = console.chart.window(&ledger, now_ms)?;
                let chain = console.chain.status(&ledger);
                let latest = latest(&ledger)?;
                Ok::<_, crate::StoreError>((window, chain, latest))
            })
            .await??,
        )
    } else {
        None
    };
    let body = html! {
        h1 { "Overview" }
        section aria-labelledby="counts" {
            h2 id="counts" { "Directory" }
            dl.cards {
                @for ((label, link), count) in labels.iter().zip(links).zip(&counts) {
                    div {
                        dt { a href=(link) { (label) } }
                        dd {
                            @match count {
                                Some(n) => (n),
                                None => span.muted title="Your rights do not include this list" { "—" },
                            }
                        }
                    }
                }
            }
        }
        @match &log {
            Some((window, chain, latest)) => {
                div.split {
                    section aria-labelledby="activity" {
                        h2 id="activity" { "Events per day, last " (chart::DAYS) " days" }
                        (chart::render(window))
                    }
                    section aria-labelledby="chain" {
                        h2 id="chain" { "Chain" }
                        (chain_status(chain))
                    }
                }
                section aria-labelledby="latest-title" {
                    h2 id="latest-title" { "Latest events" }
                    p id="live-status" role="status" aria-live="polite" class="muted" { "Reload the page for newer events (live updates need JavaScript)." }
                    (latest_table(latest))
                }
            }
            None => {
                p.muted { "The log-wide views (activity, the chain, the latest events) need " code { (FEED_READ) } " over the whole ledger." }
                @if let Some(id) = p.account_id {
                    p { (layout::account_link(&id.to_jmap(), "Your account and its history")) }
                }
            }
        }
    };
    Ok(layout::page("Overview", Some(p), Section::Overview, body).into_response())
}

fn chain_status(s: &super::chain::Status) -> Markup {
    html! {
        @if let Some(fault) = &s.fault {
            p.bad role="alert" { "The chain did not verify after position " (s.through) ": " (fault) }
        } @else if s.through == 0 && s.pending == 0 {
            p { "The log is empty." }
        } @else {
            p.ok { "Verified through position " (s.through) }
        }
        dl.state {
            dt { "Checkpoint" }
            dd { code.hash id="checkpoint" { (s.through) ":" (s.head) } }
            dt { "Verified at" }
            dd { @match &s.at { Some(t) => (layout::time(&t.to_string())), None => "—" } }
            @if s.pending > 0 {
                dt { "Still to verify" }
                dd { "through position " (s.pending) " (in progress; reload to see)" }
            }
        }
        p.hint { "Keep the checkpoint: " code { "ledger audit verify --checkpoint POSITION:HASH" } " proves a later export extends it." }
    }
}

/// One record as a row of the latest events (what the live stream sends
/// too), its account named by its current address. Blocking (store reads).
fn row_of(view: &SnapshotView, record: &Record) -> Markup {
    let entry = crate::audit::history::entry(view, record, None);
    let subject = subject_named(view, record);
    row(&entry, subject.as_ref().map(|(id, label)| (id.as_str(), label.as_str())))
}

/// The account a record is about and its current address (its id once it
/// is gone). Blocking (store reads).
pub(crate) fn subject_named(view: &SnapshotView, record: &Record) -> Option<(String, String)> {
    subject(record).map(|id| {
        let named = ObjectId::from_jmap(&id).and_then(|oid| state::account(view, oid).ok().flatten());
        let label = named.map(|a| a.email_address).unwrap_or_else(|| id.clone());
        (id, label)
    })
}

fn row(entry: &Value, subject: Option<(&str, &str)>) -> Markup {
    let position = entry.get("position").and_then(Value::as_u64).unwrap_or(0);
    let event = entry.get("event").and_then(Value::as_str).unwrap_or_default();
    html! {
        tr data-position=(position) {
            td data-label="Position" { (layout::event_link(position, None)) }
            td data-label="Time" { (layout::time(entry.get("at").and_then(Value::as_str).unwrap_or_default())) }
            td data-label="Event" { (layout::event_name(event)) }
            td data-label="Account" { @match subject { Some((id, label)) => (layout::account_link(id, label)), None => span.muted { "—" } } }
            td data-label="By" { (layout::actor(&entry["actor"])) }
        }
    }
}

fn latest_table(rows: &[(u64, Markup)]) -> Markup {
    let after = rows.first().map(|(p, _)| *p).unwrap_or(0);
    html! {
        div.scroll {
            table.stack id="latest" data-live={ "/console/live?after=" (after) } data-keep=(LATEST) {
                caption { "Newest first" }
                thead { tr { th scope="col" { "Position" } th scope="col" { "Time" } th scope="col" { "Event" } th scope="col" { "Account" } th scope="col" { "By" } } }
                tbody {
                    @for (_, r) in rows { (r) }
                }
            }
            @if rows.is_empty() { p.muted id="latest-empty" { "No events yet." } }
        }
    }
}

/// The account a record is about, if it is about one and its payload is there.
fn subject(record: &Record) -> Option<String> {
    match record.event() {
        Some(Ok(event)) => match event.subject() {
            Some((ledger_events::ObjectType::Account, id)) => Some(id.to_jmap()),
            _ => None,
        },
        _ => None,
    }
}

/// The newest [`LATEST`] records, newest first, as rows. Blocking.
fn latest(ledger: &Ledger) -> Result<Vec<(u64, Markup)>, crate::StoreError> {
    let mut rows = rows_after(ledger, &ledger.read(), 0)?;
    rows.reverse();
    Ok(rows)
}

/// The rows of the newest [`LATEST`] records after position `after` (a
/// position past the end is the end), oldest first, as `read` has them: the
/// overview's list, and each batch of its live stream. Blocking (store reads).
pub(crate) fn rows_after(
    ledger: &Ledger,
    read: &crate::store::ReadState,
    after: u64,
) -> Result<Vec<(u64, Markup)>, crate::StoreError> {
    let first = after.min(read.last_seq).max(read.last_seq.saturating_sub(LATEST)).saturating_add(1);
    let mut rows = Vec::new();
    for seq in first..=read.last_seq {
        if let Some(record) = ledger.log().read(read.view.snapshot(), seq)? {
            rows.push((seq, row_of(&read.view, &record)));
        }
    }
    Ok(rows)
}
