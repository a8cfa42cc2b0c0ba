//! The client commands on objects (get, create, query, update, delete) and the
//! maintenance ones, run against a server.

use std::str::FromStr;

use anyhow::{anyhow, bail};
use serde_json::{Map, Value, json};

use super::client::{Client, Kind, describe, get, resolve, set_result};
use super::fields;
use super::output::Output;

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
            // Pages on while the server answers fewer than asked (it caps `limit`).
            let mut ids: Vec<String> = Vec::new();
            let total = loop {
                args["position"] = json!(ids.len());
                let answer = client.call(&format!("{}/query", object.jmap()), args.clone()).await?;
                let page: Vec<String> = answer["ids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                let wanted = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
                let total = answer["total"].as_u64();
                let done = page.is_empty()
                    || answer.get("limit").is_none()
                    || ids.len() + page.len() >= wanted
                    || total.is_some_and(|t| (ids.len() + page.len()) as u64 >= t);
                ids.extend(page);
                if done {
                    break total;
                }
                if let Some(l) = limit {
                    args["limit"] = json!(l.saturating_sub(ids.len() as u64));
                }
            };
            let mut items = Vec::new();
            for chunk in ids.chunks(500) {
                items.extend(get(client, object, chunk).await?);
            }
            out.list(object, &items, total);
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
    }
    Ok(())
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
