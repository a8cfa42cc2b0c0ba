//! The client commands on objects (get, create, query, update, delete) and the
//! maintenance ones, run against a server.

use std::str::FromStr;

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value, json};

use super::client::Client;
use super::database::Maintenance;
use super::fields;
use super::output::Output;

/// The objects the CLI manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Account,
    Domain,
    Role,
}

impl Kind {
    pub fn jmap(self) -> &'static str {
        match self {
            Kind::Account => "x:Account",
            Kind::Domain => "x:Domain",
            Kind::Role => "x:Role",
        }
    }
}

/// What `create` makes: `account/user`, `account/group`, `domain`, `role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    pub account_type: Option<&'static str>,
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "account/user" | "account" => Target { kind: Kind::Account, account_type: Some("User") },
            "account/group" => Target { kind: Kind::Account, account_type: Some("Group") },
            "domain" => Target { kind: Kind::Domain, account_type: None },
            "role" => Target { kind: Kind::Role, account_type: None },
            _ => return Err(format!("{s:?}: expected account/user, account/group, domain or role")),
        })
    }
}

pub(super) enum Work {
    Get { object: Kind, id: String },
    Create { target: Target, fields: Vec<String> },
    Query { object: Kind, filters: Vec<String>, limit: Option<u64> },
    Update { object: Kind, id: String, fields: Vec<String> },
    Delete { object: Kind, ids: Vec<String> },
    Database(Maintenance),
}

pub(super) async fn run(client: &Client, out: &Output, work: Work) -> anyhow::Result<()> {
    match work {
        Work::Get { object, id } => {
            let id = resolve(client, object, &id).await?;
            let found = get(client, object, std::slice::from_ref(&id)).await?;
            let item = found.into_iter().next().ok_or_else(|| anyhow!("{} {id} not found", object.jmap()))?;
            out.object(&item);
        }
        Work::Create { target, fields } => {
            let mut object = fields::object(&fields)?;
            if let Some(t) = target.account_type {
                object.entry("@type").or_insert(json!(t));
            }
            resolve_references(client, target.kind, &mut object).await?;
            let answer =
                client.call(&format!("{}/set", target.kind.jmap()), json!({"create": {"new": object}})).await?;
            let created = set_result(&answer, "created", "notCreated", "new", "create")?;
            out.created(target.kind.jmap(), &created);
        }
        Work::Query { object, filters, limit } => {
            let mut filter = fields::object(&filters)?;
            resolve_references(client, object, &mut filter).await?;
            if let Some(Value::String(group)) = filter.get("memberGroupIds").cloned() {
                filter.insert("memberGroupIds".into(), json!(resolve(client, Kind::Account, &group).await?));
            }
            let mut args = json!({"filter": filter, "sort": [{"property": "name"}], "calculateTotal": true});
            if let Some(limit) = limit {
                args["limit"] = json!(limit);
            }
            let answer = client.call(&format!("{}/query", object.jmap()), args).await?;
            let ids: Vec<String> =
                answer["ids"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect();
            let mut items = Vec::new();
            for chunk in ids.chunks(500) {
                items.extend(get(client, object, chunk).await?);
            }
            out.list(object, &items, answer["total"].as_u64());
        }
        Work::Update { object, id, fields } => {
            let id = resolve(client, object, &id).await?;
            let mut patch = fields::patch(&fields)?;
            resolve_references(client, object, &mut patch).await?;
            let answer =
                client.call(&format!("{}/set", object.jmap()), json!({"update": {(id.clone()): patch}})).await?;
            let updated = set_result(&answer, "updated", "notUpdated", &id, "update")?;
            out.updated(object.jmap(), &id, &updated);
        }
        Work::Delete { object, ids } => {
            let mut resolved = Vec::new();
            for id in &ids {
                resolved.push(resolve(client, object, id).await?);
            }
            let answer = client.call(&format!("{}/set", object.jmap()), json!({"destroy": resolved})).await?;
            let failures = answer["notDestroyed"].as_object().cloned().unwrap_or_default();
            for id in answer["destroyed"].as_array().into_iter().flatten() {
                out.message(
                    &format!("deleted {} {}", object.jmap(), id.as_str().unwrap_or_default()),
                    json!({"destroyed": id}),
                );
            }
            if !failures.is_empty() {
                let reasons: Vec<String> = failures.iter().map(|(id, e)| format!("{id}: {}", describe(e))).collect();
                bail!("could not delete {}", reasons.join("; "));
            }
        }
        Work::Database(m) => super::database::run(client, out, m).await?,
    }
    Ok(())
}

/// The objects with these ids.
pub(super) async fn get(client: &Client, object: Kind, ids: &[String]) -> anyhow::Result<Vec<Value>> {
    let answer = client.call(&format!("{}/get", object.jmap()), json!({"ids": ids})).await?;
    Ok(answer["list"].as_array().cloned().unwrap_or_default())
}

/// A SetError as one line: type, properties, description.
pub(super) fn describe(error: &Value) -> String {
    let kind = error["type"].as_str().unwrap_or("error");
    let properties = error["properties"]
        .as_array()
        .map(|p| format!(" ({})", p.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")));
    let existing = error["existingId"].as_str().map(|id| format!(" [existing id {id}]"));
    let description = error["description"].as_str().map(|d| format!(": {d}"));
    format!(
        "{kind}{}{}{}",
        properties.unwrap_or_default(),
        description.unwrap_or_default(),
        existing.unwrap_or_default()
    )
}

/// The result of one `/set` item, or its SetError as an error.
pub(super) fn set_result(answer: &Value, ok: &str, failed: &str, key: &str, verb: &str) -> anyhow::Result<Value> {
    if let Some(error) = answer[failed].get(key) {
        bail!("could not {verb}: {}", describe(error));
    }
    answer[ok].get(key).cloned().ok_or_else(|| anyhow!("the server did not {verb} the object"))
}

/// An id, or the id of the object with that name (an address or a bare name for
/// accounts, a domain name, a role name).
pub(super) async fn resolve(client: &Client, object: Kind, given: &str) -> anyhow::Result<String> {
    let exists = !get(client, object, &[given.to_owned()]).await?.is_empty();
    if exists {
        return Ok(given.to_owned());
    }
    let lowered = given.to_lowercase();
    let matches: Vec<Value> = match object {
        Kind::Account => {
            let (name, domain) = match lowered.split_once('@') {
                Some((n, d)) => (n.to_owned(), Some(d.to_owned())),
                None => (lowered.clone(), None),
            };
            let mut filter = json!({"name": name});
            if let Some(domain) = &domain {
                filter["domainId"] = json!(Box::pin(resolve(client, Kind::Domain, domain)).await?);
            }
            let ids = client.call("x:Account/query", json!({"filter": filter})).await?;
            let ids: Vec<String> = serde_json::from_value(ids["ids"].clone()).unwrap_or_default();
            get(client, object, &ids).await?.into_iter().filter(|a| a["name"] == name).collect()
        }
        Kind::Domain | Kind::Role => {
            let ids = client.call(&format!("{}/query", object.jmap()), json!({"filter": {"name": given}})).await?;
            let ids: Vec<String> = serde_json::from_value(ids["ids"].clone()).unwrap_or_default();
            get(client, object, &ids)
                .await?
                .into_iter()
                .filter(|o| o["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(given)))
                .collect()
        }
    };
    match matches.as_slice() {
        [one] => one["id"].as_str().map(str::to_owned).context("an object without an id"),
        [] => bail!("no {} with id or name {given:?}", object.jmap()),
        _ => bail!("{given:?} names {} objects of {}; use an id or name@domain", matches.len(), object.jmap()),
    }
}

/// Lets names stand where ids are expected: `domainId`, `memberGroupIds`, and
/// alias `domainId`s.
async fn resolve_references(client: &Client, object: Kind, map: &mut Map<String, Value>) -> anyhow::Result<()> {
    if object != Kind::Account {
        return Ok(());
    }
    for (key, value) in map.iter_mut() {
        let last = key.rsplit('/').next().unwrap_or(key);
        match (last, value) {
            ("domainId", Value::String(d)) => *d = resolve(client, Kind::Domain, d).await?,
            ("memberGroupIds", Value::Array(groups)) => {
                for g in groups.iter_mut() {
                    if let Value::String(name) = g {
                        *name = resolve(client, Kind::Account, name).await?;
                    }
                }
            }
            ("aliases", Value::Array(aliases)) => {
                for alias in aliases.iter_mut() {
                    if let Some(Value::String(d)) = alias.get_mut("domainId") {
                        *d = resolve(client, Kind::Domain, d).await?;
                    }
                }
            }
            (_, Value::Object(alias)) if key.starts_with("aliases/") => {
                if let Some(Value::String(d)) = alias.get_mut("domainId") {
                    *d = resolve(client, Kind::Domain, d).await?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}
