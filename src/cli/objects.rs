//! The client commands on objects (get, create, query, update, delete) and the
//! maintenance ones, run against a server.

use std::str::FromStr;

use anyhow::{Context, anyhow, bail};
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
            "tenant" => Target { kind: Kind::Tenant, account_type: None },
            _ => return Err(format!("{s:?}: expected account/user, account/group, domain, role or tenant")),
        })
    }
}

/// A whole object or patch as JSON, instead of (or under) `--field`s.
#[derive(Debug, Default, clap::Args)]
pub struct JsonInput {
    /// The object (create) or PatchObject (update) as JSON; `--field`s are
    /// applied over it. (`--json` alone is the output switch.)
    #[arg(long = "data", value_name = "JSON", conflicts_with_all = ["file", "stdin"])]
    pub inline: Option<String>,
    /// The same, read from a file.
    #[arg(long, conflicts_with = "stdin")]
    pub file: Option<std::path::PathBuf>,
    /// The same, read from standard input.
    #[arg(long)]
    pub stdin: bool,
}

impl JsonInput {
    /// The JSON object given, if any.
    fn read(&self) -> anyhow::Result<Option<Map<String, Value>>> {
        let (text, from) = if let Some(text) = &self.inline {
            (text.clone(), "--data".to_owned())
        } else if let Some(path) = &self.file {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            (text, path.display().to_string())
        } else if self.stdin {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).context("reading standard input")?;
            (text, "standard input".to_owned())
        } else {
            return Ok(None);
        };
        match serde_json::from_str(&text) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            Ok(_) => bail!("{from} must hold a JSON object"),
            Err(e) => bail!("{from} is not JSON: {e}"),
        }
    }
}

/// The object or patch from `--json|--file|--stdin`, with `--field`s over it.
fn input(json: &JsonInput, fields: &[String], patch: bool) -> anyhow::Result<Map<String, Value>> {
    let mut map = json.read()?.unwrap_or_default();
    let given = if patch { fields::patch(fields)? } else { fields::object(fields)? };
    map.extend(given);
    Ok(map)
}

pub(super) enum Work {
    Get { object: Kind, id: String, as_of: Option<String> },
    Create { target: Target, fields: Vec<String>, json: JsonInput },
    Query { object: Kind, filters: Vec<String>, limit: Option<u64> },
    Update { object: Kind, id: String, fields: Vec<String>, json: JsonInput },
    Delete { object: Kind, ids: Vec<String>, confirm: super::confirm::Confirm },
}

pub(super) async fn run(client: &Client, out: &Output, work: Work) -> anyhow::Result<()> {
    match work {
        Work::Get { object, id, as_of } => {
            let Some(as_of) = as_of else {
                let id = resolve(client, object, &id).await?;
                let found = get(client, object, std::slice::from_ref(&id)).await?;
                let item = found.into_iter().next().ok_or_else(|| anyhow!("{} {id} not found", object.jmap()))?;
                out.object(&item);
                return Ok(());
            };
            // A position is a number; anything else is a time.
            let at = match as_of.parse::<u64>() {
                Ok(position) => json!(position),
                Err(_) => json!(as_of),
            };
            let id = match resolve(client, object, &id).await {
                Ok(id) => id,
                Err(_) => resolve_as_of(client, object, &id, &at).await?,
            };
            let answer =
                client.call(&format!("{}/get", object.jmap()), json!({"ids": [id.clone()], "asOf": at})).await?;
            let Some(item) = answer["list"].get(0) else {
                bail!("{} {id} did not exist at {as_of}", object.jmap());
            };
            let mut item = item.clone();
            item["asOf"] = answer["asOf"].clone();
            out.object(&item);
        }
        Work::Create { target, fields, json } => {
            let mut object = input(&json, &fields, false)?;
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
            for chunk in ids.chunks(super::client::GET_CHUNK) {
                items.extend(get(client, object, chunk).await?);
            }
            out.list(object, &items, total);
        }
        Work::Update { object, id, fields, json } => {
            let id = resolve(client, object, &id).await?;
            let mut patch = input(&json, &fields, true)?;
            if patch.is_empty() {
                bail!("nothing to change: give --field path=value, --data JSON, --file or --stdin");
            }
            resolve_references(client, object, &mut patch).await?;
            let answer =
                client.call(&format!("{}/set", object.jmap()), json!({"update": {(id.clone()): patch}})).await?;
            let updated = set_result(&answer, "updated", "notUpdated", &id, "update")?;
            out.updated(object.jmap(), &id, &updated);
        }
        Work::Delete { object, ids, confirm } => {
            // Each id on its own: one that does not resolve is reported, the
            // others still go.
            let mut failed: Vec<(String, String)> = Vec::new();
            let mut targets: Vec<(String, String)> = Vec::new();
            let mut seen = std::collections::BTreeSet::new();
            for given in ids.iter().map(|g| g.trim()).filter(|g| !g.is_empty()) {
                if !seen.insert(given.to_owned()) {
                    continue;
                }
                match resolve(client, object, given).await {
                    Ok(id) if targets.iter().any(|(_, t)| *t == id) => {}
                    Ok(id) => targets.push((given.to_owned(), id)),
                    Err(e) => failed.push((given.to_owned(), format!("{e:#}"))),
                }
            }
            let mut plan: Vec<String> =
                targets.iter().map(|(given, id)| format!("delete {} {given} (id {id})", object.jmap())).collect();
            plan.extend(failed.iter().map(|(given, why)| format!("skip {given}: {why}")));
            if targets.is_empty() {
                let reasons: Vec<String> = failed.iter().map(|(given, e)| format!("{given}: {e}")).collect();
                bail!("nothing to delete: {}", reasons.join("; "));
            }
            if !confirm.approve(&plan, targets.len() > 1 || !failed.is_empty())? {
                return Ok(());
            }
            let mut destroyed = Vec::new();
            if !targets.is_empty() {
                let ids: Vec<&String> = targets.iter().map(|(_, id)| id).collect();
                let answer = client.call(&format!("{}/set", object.jmap()), json!({"destroy": ids})).await?;
                for (given, id) in &targets {
                    if answer["destroyed"].as_array().is_some_and(|d| d.iter().any(|x| x == id)) {
                        destroyed.push(id.clone());
                        if !out.is_json() {
                            out.message(&format!("deleted {} {given} (id {id})", object.jmap()), json!(null));
                        }
                    } else {
                        let why = answer["notDestroyed"].get(id).map(describe).unwrap_or("not destroyed".into());
                        failed.push((given.clone(), why));
                    }
                }
            }
            if out.is_json() {
                let not: Map<String, Value> = failed.iter().map(|(g, e)| (g.clone(), json!(e))).collect();
                out.message("", json!({"destroyed": destroyed, "notDestroyed": not}));
            }
            if !failed.is_empty() {
                let reasons: Vec<String> = failed.iter().map(|(given, e)| format!("{given}: {e}")).collect();
                bail!("{} of {} not deleted: {}", failed.len(), failed.len() + destroyed.len(), reasons.join("; "));
            }
        }
    }
    Ok(())
}

/// Lets names stand where ids are expected: `domainId`, `memberGroupIds`,
/// `roleIds`, alias `domainId`s and `memberTenantId` (a tenant's name).
async fn resolve_references(client: &Client, object: Kind, map: &mut Map<String, Value>) -> anyhow::Result<()> {
    if let Some(Value::String(t)) = map.get_mut("memberTenantId") {
        *t = resolve(client, Kind::Tenant, t).await?;
    }
    if object != Kind::Account {
        return Ok(());
    }
    for (key, value) in map.iter_mut() {
        if key == "roles" {
            if let Some(Value::Array(roles)) = value.get_mut("roleIds") {
                for r in roles.iter_mut() {
                    if let Value::String(name) = r {
                        *name = resolve(client, Kind::Role, name).await?;
                    }
                }
            }
            continue;
        }
        let last = key.rsplit('/').next().unwrap_or(key);
        match (last, value) {
            ("domainId", Value::String(d)) => *d = resolve(client, Kind::Domain, d).await?,
            ("roleIds", Value::Array(roles)) => {
                for r in roles.iter_mut() {
                    if let Value::String(name) = r {
                        *name = resolve(client, Kind::Role, name).await?;
                    }
                }
            }
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

/// The id of the object `given` names at `at` (a position or time): for an
/// object destroyed or renamed since, which no longer answers to the name.
async fn resolve_as_of(client: &Client, object: Kind, given: &str, at: &Value) -> anyhow::Result<String> {
    if object != Kind::Account {
        bail!("no {} with id or name {given:?}", object.jmap());
    }
    let (name, domain) = given.split_once('@').unwrap_or((given, ""));
    let mut filter = json!({"name": name.to_lowercase()});
    if !domain.is_empty() {
        filter["domainId"] = json!(resolve(client, Kind::Domain, domain).await?);
    }
    let answer = client.call("x:Account/query", json!({"filter": filter, "asOf": at})).await?;
    match answer["ids"].as_array().map(Vec::as_slice) {
        Some([one]) => one.as_str().map(str::to_owned).context("an id that is not a string"),
        Some([]) | None => bail!("no account {given:?} at {at}"),
        Some(several) => bail!("{given:?} named {} accounts at {at}; give the id or name@domain", several.len()),
    }
}
