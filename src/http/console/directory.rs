//! The directory pages: `GET /console/accounts` searches accounts
//! (`x:Account/query` with the filters `text`, `name`, `domainId`,
//! `memberGroupIds`, `memberTenantId` and `@type`, sorted by name, 50 a
//! page), and `/console/domains`, `/console/roles`, `/console/tenants` list
//! those objects (`/get` with `ids: null`, as many as `maxObjectsInGet`).
//! All as the viewer, through JMAP.

use axum::extract::{Query, State};
use axum::response::IntoResponse;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::call::{Answer, MethodFailure, jmap, list};
use super::layout::{self, Section};
use super::session::{Viewer, urlencode};
use super::{PageError, PageResult};
use crate::http::AppState;

/// Accounts per page.
const PAGE: u64 = 50;

#[derive(Deserialize, Default)]
pub(super) struct Search {
    #[serde(default)]
    text: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    tenant: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    page: u64,
}

impl Search {
    fn filter(&self) -> Result<Value, PageError> {
        let mut f = Map::new();
        let mut put = |k: &str, v: &str| {
            if !v.trim().is_empty() {
                f.insert(k.to_owned(), json!(v.trim()));
            }
        };
        put("text", &self.text);
        put("name", &self.name);
        put("domainId", &self.domain);
        put("memberGroupIds", &self.group);
        put("memberTenantId", &self.tenant);
        match self.kind.as_str() {
            "" => {}
            "User" | "Group" => {
                f.insert("@type".to_owned(), json!(self.kind));
            }
            other => return Err(PageError::BadRequest(format!("type must be User or Group, not {other:?}"))),
        }
        Ok(Value::Object(f))
    }

    /// This search's query string with `page` set to `page`.
    fn link(&self, page: u64) -> String {
        let pairs = [
            ("text", &self.text),
            ("name", &self.name),
            ("domain", &self.domain),
            ("group", &self.group),
            ("tenant", &self.tenant),
            ("type", &self.kind),
        ];
        let mut q: Vec<String> =
            pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
        q.push(format!("page={page}"));
        format!("/console/accounts?{}", q.join("&"))
    }
}

/// `(id, label)` pairs of a `/get` answer's list, labelled by `field`.
fn options(answer: &Answer, field: &str) -> Option<Vec<(String, String)>> {
    let v = answer.as_ref().ok()?;
    let mut out: Vec<(String, String)> = list(v)
        .iter()
        .map(|o| {
            let id = o.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
            let label = o.get(field).and_then(Value::as_str).unwrap_or(&id).to_owned();
            (id, label)
        })
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Some(out)
}

fn select(id: &str, label: &str, choices: &Option<Vec<(String, String)>>, chosen: &str) -> Markup {
    html! {
        @if let Some(choices) = choices {
            div {
                label for=(id) { (label) }
                select id=(id) name=(id) {
                    option value="" { "any" }
                    @for (value, text) in choices {
                        option value=(value) selected[value == chosen] { (text) }
                    }
                }
            }
        }
    }
}

pub(super) async fn accounts(State(app): State<AppState>, viewer: Viewer, Query(search): Query<Search>) -> PageResult {
    let p = &viewer.principal;
    let filter = search.filter()?;
    let position = search.page.saturating_mul(PAGE);
    let mut answers = jmap(
        &app,
        p,
        vec![
            (
                "x:Account/query",
                json!({"filter": filter, "sort": [{"property": "name", "isAscending": true}],
                    "position": position, "limit": PAGE, "calculateTotal": true}),
            ),
            (
                "x:Account/get",
                json!({"#ids": {"resultOf": "0", "name": "x:Account/query", "path": "/ids"},
                    "properties": ["name", "emailAddress", "@type", "description", "memberTenantId", "domainId"]}),
            ),
            ("x:Domain/get", json!({"ids": null, "properties": ["name"]})),
            ("x:Tenant/get", json!({"ids": null, "properties": ["name"]})),
            ("x:Account/query", json!({"filter": {"@type": "Group"}, "sort": [{"property": "name"}], "limit": 500})),
            (
                "x:Account/get",
                json!({"#ids": {"resultOf": "4", "name": "x:Account/query", "path": "/ids"}, "properties": ["name"]}),
            ),
        ],
    )
    .await?;
    let query = answers.next().map_err(MethodFailure::page)?;
    let found = answers.next().map_err(MethodFailure::page)?;
    let (domains, tenants) = (options(&answers.next(), "name"), options(&answers.next(), "name"));
    let _group_ids = answers.next();
    let groups = options(&answers.next(), "name");
    let total = query.get("total").and_then(Value::as_u64).unwrap_or(0);
    let domain_name = |id: &str| {
        domains
            .as_ref()
            .and_then(|d| d.iter().find(|(i, _)| i == id))
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let tenant_name = |id: &str| {
        tenants
            .as_ref()
            .and_then(|t| t.iter().find(|(i, _)| i == id))
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let body = html! {
        h1 { "Accounts" }
        form.filters method="get" action="/console/accounts" role="search" {
            div { label for="text" { "Text" } input id="text" name="text" type="search" value=(search.text); }
            div { label for="name" { "Name" } input id="name" name="name" type="text" value=(search.name); }
            (select("domain", "Domain", &domains, &search.domain))
            (select("group", "Group", &groups, &search.group))
            (select("tenant", "Tenant", &tenants, &search.tenant))
            div {
                label for="type" { "Type" }
                select id="type" name="type" {
                    option value="" { "any" }
                    option value="User" selected[search.kind == "User"] { "User" }
                    option value="Group" selected[search.kind == "Group"] { "Group" }
                }
            }
            button type="submit" { "Search" }
        }
        p role="status" { (total) " found" @if total > 0 { ", showing " (position + 1) "–" (position + list(&found).len() as u64) } }
        div.scroll {
            table.stack id="accounts" {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Address" } th scope="col" { "Type" } th scope="col" { "Domain" } th scope="col" { "Tenant" } th scope="col" { "Description" } } }
                tbody {
                    @for a in list(&found) {
                        @let id = a.get("id").and_then(Value::as_str).unwrap_or_default();
                        tr {
                            td data-label="Name" { (layout::account_link(id, a.get("name").and_then(Value::as_str).unwrap_or(id))) }
                            td data-label="Address" { (a.get("emailAddress").and_then(Value::as_str).unwrap_or_default()) }
                            td data-label="Type" { (a.get("@type").and_then(Value::as_str).unwrap_or_default()) }
                            td data-label="Domain" { (domain_name(a.get("domainId").and_then(Value::as_str).unwrap_or_default())) }
                            td data-label="Tenant" {
                                @match a.get("memberTenantId").and_then(Value::as_str) { Some(t) => (tenant_name(t)), None => "—" }
                            }
                            td data-label="Description" { (a.get("description").and_then(Value::as_str).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if search.page > 0 { a rel="prev" href=(search.link(search.page - 1)) { "← Previous" } }
            @if position + PAGE < total { a rel="next" href=(search.link(search.page + 1)) { "Next →" } }
        }
    };
    Ok(layout::page("Accounts", Some(p), Section::Accounts, body).into_response())
}

/// Objects per page of the domain, role and tenant lists.
const LIST_PAGE: u64 = 100;

#[derive(Deserialize, Default)]
pub(super) struct Paging {
    #[serde(default)]
    page: u64,
}

/// One page of a type's objects: `/query` (in its own order, with the total)
/// and `/get` of those ids; `columns` are `(property, heading)`.
async fn listing(
    app: &AppState,
    viewer: &Viewer,
    object: &'static str,
    (title, section, path): (&str, Section, &str),
    columns: &[(&str, &str)],
    page: u64,
) -> PageResult {
    let p = &viewer.principal;
    let properties: Vec<&str> = columns.iter().map(|(k, _)| *k).collect();
    let position = page.saturating_mul(LIST_PAGE);
    let (query, get) = match object {
        "x:Domain" => ("x:Domain/query", "x:Domain/get"),
        "x:Role" => ("x:Role/query", "x:Role/get"),
        _ => ("x:Tenant/query", "x:Tenant/get"),
    };
    let mut answers = jmap(
        app,
        p,
        vec![
            (query, json!({"position": position, "limit": LIST_PAGE, "calculateTotal": true})),
            (get, json!({"#ids": {"resultOf": "0", "name": query, "path": "/ids"}, "properties": properties})),
        ],
    )
    .await?;
    let counted = answers.next().map_err(MethodFailure::page)?;
    let answer = answers.next().map_err(MethodFailure::page)?;
    let total = counted.get("total").and_then(Value::as_u64).unwrap_or(0);
    let items: Vec<&Value> = list(&answer).iter().collect();
    let body = html! {
        h1 { (title) }
        p role="status" { (total) " in all" @if total > 0 { ", showing " (position + 1) "–" (position + items.len() as u64) } }
        div.scroll {
            table {
                thead { tr { th scope="col" { "Id" } @for (_, h) in columns { th scope="col" { (h) } } } }
                tbody {
                    @for o in &items {
                        tr {
                            td { code { (o.get("id").and_then(Value::as_str).unwrap_or_default()) } }
                            @for (k, _) in columns { td { (layout::text(&layout::plain(o.get(*k).cloned().unwrap_or(Value::Null)))) } }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if page > 0 { a rel="prev" href={ (path) "?page=" (page - 1) } { "← Previous" } }
            @if position + LIST_PAGE < total { a rel="next" href={ (path) "?page=" (page + 1) } { "Next →" } }
        }
    };
    Ok(layout::page(title, Some(p), section, body).into_response())
}

pub(super) async fn domains(State(app): State<AppState>, viewer: Viewer, Query(q): Query<Paging>) -> PageResult {
    listing(
        &app,
        &viewer,
        "x:Domain",
        ("Domains", Section::Domains, "/console/domains"),
        &[("name", "Name"), ("description", "Description"), ("isEnabled", "Enabled"), ("memberTenantId", "Tenant")],
        q.page,
    )
    .await
}

pub(super) async fn roles(State(app): State<AppState>, viewer: Viewer, Query(q): Query<Paging>) -> PageResult {
    listing(
        &app,
        &viewer,
        "x:Role",
        ("Roles", Section::Roles, "/console/roles"),
        &[("description", "Description"), ("enabledPermissions", "Permissions"), ("roleIds", "Extends")],
        q.page,
    )
    .await
}

pub(super) async fn tenants(State(app): State<AppState>, viewer: Viewer, Query(q): Query<Paging>) -> PageResult {
    let columns = [("name", "Name"), ("createdAt", "Created")];
    listing(&app, &viewer, "x:Tenant", ("Tenants", Section::Tenants, "/console/tenants"), &columns, q.page).await
}
