//! `/set` (RFC 8620 §5.3) for accounts and domains: every accepted item of one
//! call is one atomic commit; rejected items are reported per item.

use std::collections::{HashMap, HashSet};

use ledger_events::values::{ObjectId, SecretHash};
use ledger_events::{Event, ObjectType};
use ledger_projections::state;
use serde_json::{Map, Value, json};

use super::account::parse::{self as account_parse, Generated, ParseContext};
use super::account::render;
use super::error::{MethodError, SetError};
use super::patch::apply_patch;
use super::request::Args;
use super::{CallContext, blocking, domain, parse_state, state_string};
use crate::command::{Command, CredentialSpec, DestroyAccount, DestroyDomain};
use crate::secrets::{self, Plaintext};
use crate::store::Tx;

struct SetRequest {
    object_type: ObjectType,
    if_in_state: Option<String>,
    create: Map<String, Value>,
    update: Map<String, Value>,
    destroy: Vec<String>,
    created_ids: HashMap<String, String>,
    password_hashes: HashMap<Plaintext, SecretHash>,
}

#[derive(Default)]
struct SetOutcome {
    old_state: u64,
    new_state: u64,
    created: Map<String, Value>,
    updated: Map<String, Value>,
    destroyed: Vec<Value>,
    not_created: Map<String, Value>,
    not_updated: Map<String, Value>,
    not_destroyed: Map<String, Value>,
    created_ids: HashMap<String, String>,
}

pub async fn set(ctx: &mut CallContext<'_>, t: ObjectType, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let if_in_state: Option<String> = args.take("ifInState")?;
    let create: Map<String, Value> = args.take("create")?.unwrap_or_default();
    let update: Map<String, Value> = args.take("update")?.unwrap_or_default();
    let destroy: Vec<String> = args.take("destroy")?.unwrap_or_default();
    args.finish()?;
    let max = ctx.app.limits.max_objects_in_set;
    if create.len() + update.len() + destroy.len() > max {
        return Err(MethodError::RequestTooLarge(format!("at most {max} objects per /set")));
    }
    let password_hashes =
        if t == ObjectType::Account { hash_passwords(&create, &update).await? } else { HashMap::new() };
    let request = SetRequest {
        object_type: t,
        if_in_state,
        create,
        update,
        destroy,
        created_ids: ctx.created_ids.clone(),
        password_hashes,
    };
    let committed = ctx.app.ledger.commit(ctx.origin.clone(), move |tx| run(tx, request)).await?;
    let outcome = committed.value?;
    ctx.created_ids.extend(outcome.created_ids);
    let or_null = |m: Map<String, Value>| if m.is_empty() { Value::Null } else { Value::Object(m) };
    Ok(json!({
        "accountId": super::session::ACCOUNT_ID,
        "oldState": state_string(outcome.old_state),
        "newState": state_string(outcome.new_state),
        "created": or_null(outcome.created),
        "updated": or_null(outcome.updated),
        "destroyed": if outcome.destroyed.is_empty() { Value::Null } else { Value::Array(outcome.destroyed) },
        "notCreated": or_null(outcome.not_created),
        "notUpdated": or_null(outcome.not_updated),
        "notDestroyed": or_null(outcome.not_destroyed),
    }))
}

/// Hashes every Password secret of the call with argon2id, off the executor.
async fn hash_passwords(
    create: &Map<String, Value>,
    update: &Map<String, Value>,
) -> Result<HashMap<Plaintext, SecretHash>, MethodError> {
    let mut plain = Vec::new();
    for v in create.values().chain(update.values()) {
        account_parse::collect_passwords(v, None, &mut plain);
    }
    let unique: HashSet<Plaintext> = plain.into_iter().collect();
    if unique.is_empty() {
        return Ok(HashMap::new());
    }
    blocking(move || Ok(unique.into_iter().map(|p| (p.clone(), secrets::hash_password(p.expose()))).collect())).await
}

/// The `#creation` ids an object refers to.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            if let Some(r) = s.strip_prefix('#') {
                out.push(r.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        Value::Object(map) => map.values().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// Orders creates so that an object another create refers to is created first.
fn creation_order(create: Map<String, Value>) -> Vec<(String, Value)> {
    let mut pending: Vec<(String, Value)> = create.into_iter().collect();
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let names: HashSet<String> = pending.iter().map(|(k, _)| k.clone()).collect();
        let (ready, blocked): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(cid, v)| {
            let mut refs = Vec::new();
            references(v, &mut refs);
            refs.iter().all(|r| r == cid || !names.contains(r))
        });
        if ready.is_empty() {
            // A cycle: create in the given order; unresolved references fail per item.
            ordered.extend(blocked);
            break;
        }
        ordered.extend(ready);
        pending = blocked;
    }
    ordered
}

fn run(tx: &mut Tx<'_>, request: SetRequest) -> Result<SetOutcome, MethodError> {
    let t = request.object_type;
    let mut out = SetOutcome { old_state: state::type_state(tx.state(), t)?, ..Default::default() };
    if let Some(expected) = &request.if_in_state
        && parse_state(expected) != Some(out.old_state)
    {
        tx.abort();
        return Err(MethodError::StateMismatch);
    }
    let mut ids = request.created_ids;
    for (creation_id, object) in creation_order(request.create) {
        match create_one(tx, t, object, &ids, &request.password_hashes) {
            Ok((id, rendered)) => {
                ids.insert(creation_id.clone(), id.to_jmap());
                out.created_ids.insert(creation_id.clone(), id.to_jmap());
                out.created.insert(creation_id, Value::Object(rendered));
            }
            Err(e) => {
                out.not_created.insert(creation_id, e.to_json());
            }
        }
    }
    for (raw, patch) in request.update {
        let id = resolve(&raw, &ids);
        let key = id.map_or(raw, |id| id.to_jmap());
        match id
            .ok_or_else(|| SetError::not_found("no such object"))
            .and_then(|id| update_one(tx, t, id, patch, &ids, &request.password_hashes))
        {
            Ok(result) => {
                out.updated.insert(key, result);
            }
            Err(e) => {
                out.not_updated.insert(key, e.to_json());
            }
        }
    }
    for raw in request.destroy {
        let id = resolve(&raw, &ids);
        let key = id.map_or(raw, |id| id.to_jmap());
        let result = match id {
            None => Err(SetError::not_found("no such object")),
            Some(id) => {
                let command = match t {
                    ObjectType::Account => Command::DestroyAccount(DestroyAccount { id }),
                    ObjectType::Domain => Command::DestroyDomain(DestroyDomain { id }),
                };
                tx.execute(&command).map_err(SetError::from)
            }
        };
        match result {
            Ok(_) => out.destroyed.push(Value::String(key)),
            Err(e) => {
                out.not_destroyed.insert(key, e.to_json());
            }
        }
    }
    out.new_state = state::type_state(tx.state(), t)?;
    Ok(out)
}

fn resolve(raw: &str, ids: &HashMap<String, String>) -> Option<ObjectId> {
    let id = match raw.strip_prefix('#') {
        Some(creation) => ids.get(creation)?.as_str(),
        None => raw,
    };
    ObjectId::from_jmap(id)
}

fn create_one(
    tx: &mut Tx<'_>,
    t: ObjectType,
    object: Value,
    ids: &HashMap<String, String>,
    password_hashes: &HashMap<Plaintext, SecretHash>,
) -> Result<(ObjectId, Map<String, Value>), SetError> {
    let Value::Object(object) = object else {
        return Err(SetError::invalid_properties(vec![], "a create must be an object"));
    };
    match t {
        ObjectType::Domain => {
            let command = Command::CreateDomain(domain::parse_create(object)?);
            let events = tx.execute(&command)?;
            let id = events.iter().find_map(|e| if let Event::DomainCreated(d) = e { Some(d.domain_id) } else { None });
            let id = id.ok_or_else(|| SetError::new("forbidden", "the domain was not created"))?;
            let domain = state::domain(tx.state(), id).ok().flatten();
            Ok((id, domain.map(|d| domain::render(&d)).unwrap_or_default()))
        }
        ObjectType::Account => {
            let ctx = ParseContext { created_ids: ids, password_hashes };
            let mut generated = Generated::new();
            let create = account_parse::parse_create(object, &ctx, &mut generated)?;
            let add_positions: Vec<usize> = (0..create.credentials.len()).collect();
            let events = tx.execute(&Command::CreateAccount(create))?;
            let id =
                events.iter().find_map(|e| if let Event::AccountCreated(a) = e { Some(a.account_id) } else { None });
            let id = id.ok_or_else(|| SetError::new("forbidden", "the account was not created"))?;
            let mut rendered = rendered_account(tx, id);
            reveal_generated(&mut rendered, &events, &add_positions, generated);
            Ok((id, rendered))
        }
    }
}

fn rendered_account(tx: &Tx<'_>, id: ObjectId) -> Map<String, Value> {
    state::account(tx.state(), id).ok().flatten().map(|a| render::render(&a)).unwrap_or_default()
}

/// Puts each generated secret into the rendered credential it belongs to: the
/// one time the client sees it.
fn reveal_generated(
    rendered: &mut Map<String, Value>,
    events: &[Event],
    add_positions: &[usize],
    generated: Generated,
) {
    let new_ids: Vec<ObjectId> = events
        .iter()
        .filter_map(|e| if let Event::CredentialAdded(c) = e { Some(c.credential_id) } else { None })
        .collect();
    let Some(Value::Array(credentials)) = rendered.get_mut("credentials") else { return };
    for (position, secret) in generated {
        let Some(ordinal) = add_positions.iter().position(|p| *p == position) else { continue };
        let Some(id) = new_ids.get(ordinal) else { continue };
        for c in credentials.iter_mut() {
            if c.get("id").and_then(Value::as_str) == Some(&id.to_jmap()) {
                c["secret"] = Value::String(secret.expose().to_owned());
            }
        }
    }
}

fn update_one(
    tx: &mut Tx<'_>,
    t: ObjectType,
    id: ObjectId,
    patch: Value,
    ids: &HashMap<String, String>,
    password_hashes: &HashMap<Plaintext, SecretHash>,
) -> Result<Value, SetError> {
    let Value::Object(patch) = patch else { return Err(SetError::invalid_patch("a patch must be an object")) };
    let read_failed = |_| SetError::new("forbidden", "the object could not be read");
    match t {
        ObjectType::Domain => {
            let current = state::domain(tx.state(), id)
                .map_err(read_failed)?
                .ok_or_else(|| SetError::not_found("no such domain"))?;
            let mut object = Value::Object(domain::render(&current));
            apply_patch(&mut object, patch)?;
            let Value::Object(object) = object else { return Err(SetError::invalid_patch("not an object")) };
            tx.execute(&Command::UpdateDomain(domain::parse_update(&current, object)?))?;
            Ok(Value::Null)
        }
        ObjectType::Account => {
            let current = state::account(tx.state(), id)
                .map_err(read_failed)?
                .ok_or_else(|| SetError::not_found("no such account"))?;
            let mut object = Value::Object(render::render(&current));
            apply_patch(&mut object, patch)?;
            let Value::Object(object) = object else { return Err(SetError::invalid_patch("not an object")) };
            let ctx = ParseContext { created_ids: ids, password_hashes };
            let mut generated = Generated::new();
            let update = account_parse::parse_update(&current, object, &ctx, &mut generated)?;
            let add_positions: Vec<usize> = update
                .credentials
                .iter()
                .flatten()
                .enumerate()
                .filter(|(_, spec)| matches!(spec, CredentialSpec::Add(_)))
                .map(|(i, _)| i)
                .collect();
            let events = tx.execute(&Command::UpdateAccount(update))?;
            if generated.is_empty() {
                return Ok(Value::Null);
            }
            let mut rendered = rendered_account(tx, id);
            reveal_generated(&mut rendered, &events, &add_positions, generated);
            Ok(json!({ "credentials": rendered.remove("credentials").unwrap_or(Value::Null) }))
        }
    }
}
