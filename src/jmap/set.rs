//! `/set` (RFC 8620 §5.3) for accounts and domains: every accepted item of one
//! call is one atomic commit; rejected items are reported per item.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ledger_events::values::ObjectId;
use ledger_events::{Event, ObjectType};
use ledger_projections::state;
use serde_json::{Map, Value, json};

use super::account::parse::{self as account_parse, Generated, ParseContext, PreparedSecrets};
use super::account::render;
use super::error::{MethodError, SetError};
use super::patch::apply_patch;
use super::permissions::{SetOperation, set_permission};
use super::request::Args;
use super::{CallContext, blocking, domain, parse_state, role, state_string};
use crate::auth::Principal;
use crate::command::{Command, CredentialSpec, DestroyAccount, DestroyDomain, DestroyRole};
use crate::secrets::{self, Plaintext};
use crate::store::Tx;

struct SetRequest {
    object_type: ObjectType,
    if_in_state: Option<String>,
    create: Map<String, Value>,
    update: Map<String, Value>,
    destroy: Vec<String>,
    created_ids: HashMap<String, String>,
    secrets: PreparedSecrets,
    principal: Arc<Principal>,
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
    let secrets = match t {
        ObjectType::Account => prepare_secrets(&ctx.app.sealing, &create, &update).await?,
        _ => PreparedSecrets::default(),
    };
    let request = SetRequest {
        object_type: t,
        if_in_state,
        create,
        update,
        destroy,
        created_ids: ctx.created_ids.clone(),
        principal: Arc::clone(ctx.principal),
        secrets,
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

/// Hashes every Password secret of the call with argon2id (off the executor) and
/// seals every `otpAuth` URI.
async fn prepare_secrets(
    sealing: &std::sync::Arc<secrets::SealingKey>,
    create: &Map<String, Value>,
    update: &Map<String, Value>,
) -> Result<PreparedSecrets, MethodError> {
    let (mut passwords, mut otps) = (Vec::new(), Vec::new());
    for v in create.values().chain(update.values()) {
        account_parse::collect_secrets(v, true, &mut passwords, &mut otps);
    }
    let sealed_otp = otps.into_iter().map(|uri| {
        let sealed = sealing.seal(uri.expose());
        (uri, sealed)
    });
    let mut prepared = PreparedSecrets { sealed_otp: sealed_otp.collect(), ..Default::default() };
    let unique: HashSet<Plaintext> = passwords.into_iter().collect();
    if !unique.is_empty() {
        prepared.password_hashes =
            blocking(move || Ok(unique.into_iter().map(|p| (p.clone(), secrets::hash_password(p.expose()))).collect()))
                .await?;
    }
    Ok(prepared)
}

/// What the calling principal may do in this `/set`: permissions per operation,
/// self-service on its own credentials, and its tenant's bounds.
struct Access<'a> {
    principal: &'a Principal,
    object_type: ObjectType,
}

impl Access<'_> {
    fn may(&self, op: SetOperation) -> bool {
        // A tenant-scoped principal never changes domains or roles, which are global.
        (self.object_type == ObjectType::Account || self.principal.tenant.is_none())
            && self.principal.may(set_permission(self.object_type, op))
    }

    fn forbidden(&self, op: SetOperation) -> SetError {
        SetError::new("forbidden", format!("{} is required", set_permission(self.object_type, op)))
    }

    /// Whether any item could be allowed; if none, the whole call is `forbidden`.
    fn may_any(&self, r: &SetRequest) -> bool {
        let own = self.principal.account_id.map(|id| id.to_jmap());
        let self_service = self.object_type == ObjectType::Account && r.update.keys().any(|k| Some(k) == own.as_ref());
        let nothing = r.create.is_empty() && r.update.is_empty() && r.destroy.is_empty();
        nothing
            || (!r.create.is_empty() && self.may(SetOperation::Create))
            || (!r.update.is_empty() && (self.may(SetOperation::Update) || self_service))
            || (!r.destroy.is_empty() && self.may(SetOperation::Destroy))
    }

    /// Checks a create and puts a tenant-scoped principal's tenant on it.
    fn creation(&self, object: Value) -> Result<Value, SetError> {
        if !self.may(SetOperation::Create) {
            return Err(self.forbidden(SetOperation::Create));
        }
        let (Some(tenant), Value::Object(mut map)) = (&self.principal.tenant, object.clone()) else {
            return Ok(object);
        };
        match map.get("memberTenantId") {
            None | Some(Value::Null) => {
                map.insert("memberTenantId".into(), Value::String(tenant.as_str().to_owned()));
                Ok(Value::Object(map))
            }
            Some(Value::String(t)) if t == tenant.as_str() => Ok(Value::Object(map)),
            Some(_) => Err(SetError::new("forbidden", "accounts can only be created in your own tenant")),
        }
    }

    /// Checks an update of `id` with `patch`.
    fn update(&self, tx: &Tx<'_>, id: ObjectId, patch: &Value) -> Result<(), SetError> {
        self.visible(tx, id)?;
        if let (Some(tenant), Some(new)) = (&self.principal.tenant, patch.get("memberTenantId"))
            && new.as_str() != Some(tenant.as_str())
        {
            return Err(SetError::new("forbidden", "accounts cannot leave your tenant"));
        }
        if self.may(SetOperation::Update) {
            return Ok(());
        }
        // Self-service: an account may change its own credentials, nothing else.
        let own_credentials = self.object_type == ObjectType::Account
            && self.principal.is(id)
            && patch.as_object().is_some_and(|p| p.keys().all(|k| k == "credentials" || k.starts_with("credentials/")));
        if own_credentials { Ok(()) } else { Err(self.forbidden(SetOperation::Update)) }
    }

    fn destroy(&self, tx: &Tx<'_>, id: ObjectId) -> Result<(), SetError> {
        self.visible(tx, id)?;
        if self.may(SetOperation::Destroy) { Ok(()) } else { Err(self.forbidden(SetOperation::Destroy)) }
    }

    /// Objects outside the principal's tenant do not exist for it.
    fn visible(&self, tx: &Tx<'_>, id: ObjectId) -> Result<(), SetError> {
        match super::get::visible(tx.state(), self.principal, self.object_type, id) {
            Ok(true) => Ok(()),
            Ok(false) => Err(SetError::not_found("no such object")),
            Err(_) => Err(SetError::new("forbidden", "the object could not be read")),
        }
    }
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
    let principal = Arc::clone(&request.principal);
    let access = Access { principal: &principal, object_type: t };
    if !access.may_any(&request) {
        tx.abort();
        return Err(MethodError::Forbidden("this principal may not change these objects".into()));
    }
    let mut ids = request.created_ids;
    for (creation_id, object) in creation_order(request.create) {
        match access.creation(object).and_then(|object| create_one(tx, t, object, &ids, &request.secrets)) {
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
            .and_then(|id| access.update(tx, id, &patch).map(|_| id))
            .and_then(|id| update_one(tx, t, id, patch, &ids, &request.secrets))
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
            Some(id) => access.destroy(tx, id).and_then(|_| {
                let command = match t {
                    ObjectType::Account => Command::DestroyAccount(DestroyAccount { id }),
                    ObjectType::Domain => Command::DestroyDomain(DestroyDomain { id }),
                    ObjectType::Role => Command::DestroyRole(DestroyRole { id }),
                };
                tx.execute(&command).map_err(SetError::from)
            }),
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
    secrets: &PreparedSecrets,
) -> Result<(ObjectId, Map<String, Value>), SetError> {
    let Value::Object(object) = object else {
        return Err(SetError::invalid_properties(vec![], "a create must be an object"));
    };
    match t {
        ObjectType::Role => {
            let events = tx.execute(&Command::CreateRole(role::parse_create(object)?))?;
            let id = events.iter().find_map(|e| if let Event::RoleCreated(r) = e { Some(r.role_id) } else { None });
            let id = id.ok_or_else(|| SetError::new("forbidden", "the role was not created"))?;
            let created = state::role(tx.state(), id).ok().flatten();
            Ok((id, created.map(|r| role::render(&r)).unwrap_or_default()))
        }
        ObjectType::Domain => {
            let command = Command::CreateDomain(domain::parse_create(object)?);
            let events = tx.execute(&command)?;
            let id = events.iter().find_map(|e| if let Event::DomainCreated(d) = e { Some(d.domain_id) } else { None });
            let id = id.ok_or_else(|| SetError::new("forbidden", "the domain was not created"))?;
            let domain = state::domain(tx.state(), id).ok().flatten();
            Ok((id, domain.map(|d| domain::render(&d)).unwrap_or_default()))
        }
        ObjectType::Account => {
            let ctx = ParseContext { created_ids: ids, secrets };
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
    secrets: &PreparedSecrets,
) -> Result<Value, SetError> {
    let Value::Object(patch) = patch else { return Err(SetError::invalid_patch("a patch must be an object")) };
    let read_failed = |_| SetError::new("forbidden", "the object could not be read");
    match t {
        ObjectType::Role => {
            let current =
                state::role(tx.state(), id).map_err(read_failed)?.ok_or_else(|| SetError::not_found("no such role"))?;
            let mut object = Value::Object(role::render(&current));
            apply_patch(&mut object, patch)?;
            let Value::Object(object) = object else { return Err(SetError::invalid_patch("not an object")) };
            tx.execute(&Command::UpdateRole(role::parse_update(&current, object)?))?;
            Ok(Value::Null)
        }
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
            let ctx = ParseContext { created_ids: ids, secrets };
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
