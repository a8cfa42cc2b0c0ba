//! `x:ApiKey` and `x:AppPassword` (Stalwart 0.16): the calling account's
//! own credentials as objects of their own (the `x:AccountPassword`
//! singleton is `account_password.rs`). Each write is the matching patch of the caller's `x:Account`
//! (`credentials/<n>`), so it goes through the same parsing, secret handling,
//! authority check and quotas (`maxApiKeys`, `maxAppPasswords`) as a patch
//! sent directly; these methods add the per-type permission
//! (`sysApiKeyCreate`, …) and Stalwart's shapes: a create answers
//! `{"id", "secret"}` once, secrets read `"****"`, a secret cannot change
//! (`forbidden`). A credential is addressed by its position in the
//! account's list; each item's commit applies only if that position still
//! holds it ([`set::set_expecting`]), and is retried from a fresh read if
//! another commit moved it.

use ledger_events::model::CredentialKind;
use ledger_events::values::ObjectId;
use ledger_projections::{AccountState, state};
use serde_json::{Map, Value, json};

use super::set;
use crate::jmap::context::{CallContext, blocking};
use crate::jmap::error::{MethodError, SetError};
use crate::jmap::object::account::Account;
use crate::jmap::object::account::render::MASKED;
use crate::jmap::object::{JmapObject, Verb};
use crate::jmap::request::Args;
use crate::jmap::schema::{nested, wire};
use crate::jmap::session::ACCOUNT_ID;
use crate::jmap::state::{state_string, type_state};

/// The JMAP name of a credential kind's object, and its permission prefix.
pub(crate) fn names(kind: CredentialKind) -> (&'static str, &'static str) {
    match kind {
        CredentialKind::ApiKey => ("x:ApiKey", "sysApiKey"),
        CredentialKind::AppPassword => ("x:AppPassword", "sysAppPassword"),
        CredentialKind::Password => ("x:AccountPassword", "sysAccountPassword"),
    }
}

/// The properties a client may set on an API key or app password.
const SETTABLE: [&str; 4] = ["description", "expiresAt", "allowedIps", "permissions"];

pub(super) fn permission(kind: CredentialKind, verb: Verb) -> String {
    let suffix = match verb {
        Verb::Get => "Get",
        Verb::Query => "Query",
        Verb::Create => "Create",
        Verb::Update => "Update",
        Verb::Destroy => "Destroy",
    };
    format!("{}{suffix}", names(kind).1)
}

/// The caller's account id: the fallback administrator has none, so no
/// credentials of its own.
pub(super) fn own_id(ctx: &CallContext<'_>) -> Result<ObjectId, MethodError> {
    ctx.principal.account_id.ok_or_else(|| {
        MethodError::Forbidden("the fallback administrator has no account, so no credentials of its own".into())
    })
}

/// The caller's account now, and the `x:Account` state string.
pub(super) async fn own_account(ctx: &CallContext<'_>, id: ObjectId) -> Result<(AccountState, String), MethodError> {
    let read = ctx.services.ledger.read();
    blocking(move || {
        let view = &read.view;
        let account = state::account(view, id)?.ok_or(MethodError::AccountNotFound)?;
        Ok((account, state_string(type_state(view, Account::TYPE)?)))
    })
    .await
}

/// One credential as its object: `id`, the settable fields, `createdAt`, the
/// masked `secret`; sets in map form.
fn render(account: &AccountState, index: usize) -> Map<String, Value> {
    let mut rendered = Account::render(account);
    let Some(Value::Array(list)) = rendered.remove("credentials") else { return Map::new() };
    let Some(Value::Object(mut c)) = list.into_iter().nth(index) else { return Map::new() };
    if let Some(n) = nested("x:Credential") {
        wire::to_wire(n.properties, &mut c);
    }
    c.remove("@type");
    if let Some(id) = c.remove("credentialId") {
        c.insert("id".into(), id);
    }
    c
}

/// Positions in the account's credential list of the credentials of `kind`.
fn of_kind(account: &AccountState, kind: CredentialKind) -> impl Iterator<Item = usize> + '_ {
    account.credentials.iter().enumerate().filter(move |(_, c)| c.kind == kind).map(|(i, _)| i)
}

fn position(account: &AccountState, kind: CredentialKind, id: &str) -> Option<usize> {
    of_kind(account, kind).find(|&i| account.credentials[i].id.to_jmap() == id)
}

/// `x:ApiKey/get`, `x:AppPassword/get`.
pub(crate) async fn get(
    ctx: &mut CallContext<'_>,
    kind: CredentialKind,
    arguments: Value,
) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let ids: Option<Vec<String>> = args.take("ids")?;
    let properties: Option<Vec<String>> = args.take("properties")?;
    args.finish()?;
    if !ctx.principal.may(&permission(kind, Verb::Get)) {
        return Err(MethodError::needs(&permission(kind, Verb::Get)));
    }
    let own = own_id(ctx)?;
    let (account, state) = own_account(ctx, own).await?;
    let wanted: Vec<String> = match ids {
        Some(ids) => ids,
        None => of_kind(&account, kind).map(|i| account.credentials[i].id.to_jmap()).collect(),
    };
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    for id in wanted {
        match position(&account, kind, &id) {
            Some(i) => {
                let mut object = render(&account, i);
                if let Some(props) = &properties {
                    object.retain(|k, _| k == "id" || props.iter().any(|p| p == k));
                }
                list.push(Value::Object(object));
            }
            None => not_found.push(Value::String(id)),
        }
    }
    Ok(json!({"accountId": ACCOUNT_ID, "state": state, "list": list, "notFound": not_found}))
}

/// `x:ApiKey/query`, `x:AppPassword/query`: the caller's credentials of the
/// kind in creation order (`position`, `anchor`/`anchorOffset`, `limit`).
pub(crate) async fn query(
    ctx: &mut CallContext<'_>,
    kind: CredentialKind,
    arguments: Value,
) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let _filter: Option<Value> = args.take("filter")?;
    let _sort: Option<Value> = args.take("sort")?;
    let position: Option<i64> = args.take("position")?;
    let anchor: Option<String> = args.take("anchor")?;
    let anchor_offset: i64 = args.take("anchorOffset")?.unwrap_or(0);
    let limit: Option<usize> = args.take("limit")?;
    let _total: Option<bool> = args.take("calculateTotal")?;
    args.finish()?;
    if !ctx.principal.may(&permission(kind, Verb::Query)) {
        return Err(MethodError::needs(&permission(kind, Verb::Query)));
    }
    let own = own_id(ctx)?;
    let (account, state) = own_account(ctx, own).await?;
    let ids: Vec<String> = of_kind(&account, kind).map(|i| account.credentials[i].id.to_jmap()).collect();
    let total = ids.len() as i64;
    let start = match anchor {
        Some(a) => {
            let at = ids.iter().position(|id| *id == a).ok_or(MethodError::AnchorNotFound)? as i64;
            at.saturating_add(anchor_offset).clamp(0, total)
        }
        None => {
            let p = position.unwrap_or(0);
            if p < 0 { (total + p).max(0) } else { p.min(total) }
        }
    } as usize;
    let limit = limit.unwrap_or(ctx.services.limits.max_objects_in_get).min(ctx.services.limits.max_objects_in_get);
    let page: Vec<&String> = ids.iter().skip(start).take(limit).collect();
    Ok(json!({"accountId": ACCOUNT_ID, "queryState": state, "canCalculateChanges": false,
        "position": start, "ids": page, "total": total, "limit": limit}))
}

/// Runs one patch of the caller's account through `x:Account/set`: the new
/// account object's answer (`updated`), or the SetError.
///
/// `expected`: what the account's wire form must hold when the commit runs
/// (the entry the patch addresses by position is still the one read), or the
/// item is refused with [`set::MOVED`] and nothing of it is kept.
pub(super) async fn patch_own(
    ctx: &mut CallContext<'_>,
    own: ObjectId,
    patch: Map<String, Value>,
    expected: set::Expected,
) -> Result<Result<Value, Value>, MethodError> {
    let key = own.to_jmap();
    let expected = std::collections::HashMap::from([(key.clone(), expected)]);
    let answer = set::set_expecting::<Account>(ctx, json!({"update": {(key.clone()): patch}}), expected).await?;
    Ok(match answer["notUpdated"].get(&key) {
        Some(error) => Err(error.clone()),
        None => Ok(answer["updated"][&key].clone()),
    })
}

/// A SetError from the account patch, with `credentials/N/` taken off its property paths.
pub(super) fn unprefixed(mut error: Value) -> Value {
    if let Some(Value::Array(props)) = error.get_mut("properties") {
        for p in props.iter_mut() {
            if let Some(s) = p.as_str() {
                let parts: Vec<&str> = s.splitn(3, '/').collect();
                if parts.len() == 3 && parts[0] == "credentials" {
                    *p = Value::String(parts[2].to_owned());
                }
            }
        }
    }
    error
}

/// How often an item is tried when another commit moved its credential
/// between reading the position and committing ([`set::MOVED`]).
const TRIES: usize = 3;

/// Whether the item was refused because its credential moved.
fn moved(outcome: &Result<Value, Value>) -> bool {
    matches!(outcome, Err(e) if e.get("description").and_then(Value::as_str) == Some(set::MOVED))
}

/// The precondition of a patch of the credential `id` read at position `i`.
pub(super) fn expect_at(i: usize, id: &str) -> set::Expected {
    vec![(format!("credentials/{i}/credentialId"), Some(json!(id)))]
}

/// An `x:ApiKey`/`x:AppPassword` patch as a patch of the account's
/// credential at position `i`; or the item's SetError.
fn prefixed_patch(kind: CredentialKind, i: usize, patch: &Value) -> Result<Map<String, Value>, SetError> {
    let Value::Object(patch) = patch else { return Err(SetError::invalid_patch("a patch must be an object")) };
    let mut prefixed = Map::new();
    let mut refused = None;
    for (path, value) in patch {
        let top = path.split('/').next().unwrap_or_default();
        if top == "secret" && value.as_str() != Some(MASKED) {
            refused = Some(SetError::forbidden("the secret of an API key or app password cannot be changed"));
        } else if top == "id" || top == "createdAt" || top == "secret" {
            continue;
        } else if !SETTABLE.contains(&top) {
            refused = Some(SetError::invalid(top, format!("{top} is not a property of {}", names(kind).0)));
        } else {
            prefixed.insert(format!("credentials/{i}/{path}"), value.clone());
        }
    }
    match refused {
        Some(e) => Err(e),
        None => Ok(prefixed),
    }
}

/// Finds the credential `raw` names (as [`locate`]) and commits the patch
/// `build` makes for its position, applied only if the credential is still
/// there; read again and tried anew, up to [`TRIES`] times, while another
/// commit moves it. Returns the credential's id and the item's outcome
/// (its SetError, property paths without the `credentials/N/` prefix).
async fn patch_credential(
    ctx: &mut CallContext<'_>,
    own: ObjectId,
    kind: CredentialKind,
    raw: &str,
    verb: Verb,
    build: impl Fn(usize) -> Result<Map<String, Value>, SetError>,
) -> Result<(String, Result<(), Value>), MethodError> {
    let mut tries = 0;
    loop {
        let (id, i) = match locate(ctx, own, kind, raw, verb).await? {
            Ok(found) => found,
            Err((id, error)) => return Ok((id, Err(error))),
        };
        let patch = match build(i) {
            Ok(patch) => patch,
            Err(error) => return Ok((id, Err(error.to_json()))),
        };
        let outcome = patch_own(ctx, own, patch, expect_at(i, &id)).await?;
        tries += 1;
        if !moved(&outcome) || tries == TRIES {
            return Ok((id, outcome.map(|_| ()).map_err(unprefixed)));
        }
    }
}

/// The credential an update or destroy key names (a `#creationId` too), as
/// `(id, position in the account's credentials)`; or the id with the item's
/// SetError: `forbidden` without the verb's permission, `notFound` when the
/// caller has no credential of `kind` with that id.
async fn locate(
    ctx: &CallContext<'_>,
    own: ObjectId,
    kind: CredentialKind,
    raw: &str,
    verb: Verb,
) -> Result<Result<(String, usize), (String, Value)>, MethodError> {
    let id = ctx.created_ids.resolve(raw).map(|id| id.to_jmap()).unwrap_or_else(|_| raw.to_owned());
    if !ctx.principal.may(&permission(kind, verb)) {
        return Ok(Err((id, SetError::forbidden(format!("{} is required", permission(kind, verb))).to_json())));
    }
    let (account, _) = own_account(ctx, own).await?;
    Ok(match position(&account, kind, &id) {
        Some(i) => Ok((id, i)),
        None => Err((id, SetError::not_found(format!("no such {}", names(kind).0)).to_json())),
    })
}

/// `x:ApiKey/set`, `x:AppPassword/set`: each item is its own patch (and commit).
pub(crate) async fn set(
    ctx: &mut CallContext<'_>,
    kind: CredentialKind,
    arguments: Value,
) -> Result<Value, MethodError> {
    let set::SetArguments { if_in_state, create, update, destroy } = set::SetArguments::parse(ctx, arguments)?;
    let may = |verb| ctx.principal.may(&permission(kind, verb));
    if !may(Verb::Create) && !may(Verb::Update) && !may(Verb::Destroy) {
        return Err(MethodError::Forbidden(format!(
            "You are not authorized to create, update or destroy objects of type {}",
            names(kind).0
        )));
    }
    let own = own_id(ctx)?;
    let (_, old_state) = own_account(ctx, own).await?;
    if if_in_state.is_some_and(|s| s != old_state) {
        return Err(MethodError::StateMismatch);
    }
    let forbidden = |verb| SetError::forbidden(format!("{} is required", permission(kind, verb))).to_json();
    let mut created = Map::new();
    let mut not_created = Map::new();
    for (cid, object) in create {
        if !may(Verb::Create) {
            not_created.insert(cid, forbidden(Verb::Create));
            continue;
        }
        let Value::Object(mut object) = object else {
            not_created.insert(cid, SetError::invalid_properties(vec![], "a create must be an object").to_json());
            continue;
        };
        if object.get("secret").is_some_and(|s| s.as_str() != Some(MASKED)) {
            not_created.insert(cid, SetError::invalid("secret", "the secret is generated by the server").to_json());
            continue;
        }
        object.remove("secret");
        object.insert("@type".into(), json!(if kind == CredentialKind::ApiKey { "ApiKey" } else { "AppPassword" }));
        object.entry("permissions").or_insert(json!({"@type": "Inherit"}));
        let mut tries = 0;
        let (slot, outcome) = loop {
            let (account, _) = own_account(ctx, own).await?;
            let slot = account.credentials.len().to_string();
            let key = format!("credentials/{slot}");
            // The list must be exactly as long as read: nothing at `slot`,
            // and the last credential read still last (a shorter list would
            // put the new one, and its answer, at another position).
            let mut expected = vec![(key.clone(), None)];
            if let Some((i, last)) = account.credentials.iter().enumerate().next_back() {
                expected.extend(expect_at(i, &last.id.to_jmap()));
            }
            let mut patch = Map::new();
            patch.insert(key, Value::Object(object.clone()));
            let outcome = patch_own(ctx, own, patch, expected).await?;
            tries += 1;
            if !moved(&outcome) || tries == TRIES {
                break (slot, outcome);
            }
        };
        match outcome {
            Ok(answer) => {
                let entry = &answer["credentials"][&slot];
                let id = entry["credentialId"].clone();
                if let Some(raw) = id.as_str().and_then(ObjectId::from_jmap) {
                    ctx.created_ids.insert(cid.clone(), raw);
                }
                created.insert(cid, json!({"id": id, "secret": entry["secret"], "createdAt": entry["createdAt"]}));
            }
            Err(error) => {
                not_created.insert(cid, unprefixed(error));
            }
        }
    }
    let mut updated = Map::new();
    let mut not_updated = Map::new();
    for (raw, patch) in update {
        let (id, outcome) =
            patch_credential(ctx, own, kind, &raw, Verb::Update, |i| prefixed_patch(kind, i, &patch)).await?;
        match outcome {
            Ok(()) => {
                updated.insert(id, Value::Null);
            }
            Err(error) => {
                not_updated.insert(id, error);
            }
        }
    }
    let mut destroyed = Vec::new();
    let mut not_destroyed = Map::new();
    for raw in destroy {
        let removal = |i: usize| Ok(Map::from_iter([(format!("credentials/{i}"), Value::Null)]));
        let (id, outcome) = patch_credential(ctx, own, kind, &raw, Verb::Destroy, removal).await?;
        match outcome {
            Ok(()) => destroyed.push(Value::String(id)),
            Err(error) => {
                not_destroyed.insert(id, error);
            }
        }
    }
    let (_, new_state) = own_account(ctx, own).await?;
    let or_null = |m: Map<String, Value>| if m.is_empty() { Value::Null } else { Value::Object(m) };
    Ok(json!({
        "accountId": ACCOUNT_ID, "oldState": old_state, "newState": new_state,
        "created": or_null(created), "updated": or_null(updated),
        "destroyed": if destroyed.is_empty() { Value::Null } else { Value::Array(destroyed) },
        "notCreated": or_null(not_created), "notUpdated": or_null(not_updated), "notDestroyed": or_null(not_destroyed),
    }))
}

/// Ids created, updated and destroyed, in that order.
type Changed = (Vec<String>, Vec<String>, Vec<String>);

/// What changed among the caller's credentials of `kind` after position
/// `since`: (created, updated, destroyed) ids, read from its account's
/// history in the log. A credential created and removed in between is in none.
fn credential_changes(
    read: &crate::store::ReadState,
    log: &ledger_events::EventLog,
    own: ObjectId,
    kind: CredentialKind,
    since: u64,
    current: u64,
) -> Result<Changed, MethodError> {
    use ledger_events::Event;
    let view = &read.view;
    let positions = state::history_in(view, own, since.saturating_add(1)..=current)?;
    let mut kinds: std::collections::BTreeMap<ObjectId, CredentialKind> =
        state::account(view, own)?.map(|a| a.credentials.iter().map(|c| (c.id, c.kind)).collect()).unwrap_or_default();
    let (mut created, mut updated, mut destroyed) = (Vec::new(), Vec::new(), Vec::new());
    for seq in positions {
        let Some(record) = log.read(view.snapshot(), seq).map_err(crate::store::StoreError::from)? else { continue };
        let Some(Ok(event)) = record.event() else { continue };
        match event {
            Event::CredentialAdded(e) => {
                kinds.insert(e.credential_id, e.kind);
                if e.kind == kind {
                    created.push(e.credential_id);
                }
            }
            Event::CredentialUpdated(e)
                if kinds.get(&e.credential_id) == Some(&kind)
                    && !created.contains(&e.credential_id)
                    && !updated.contains(&e.credential_id) =>
            {
                updated.push(e.credential_id);
            }
            Event::CredentialRemoved(e) if e.kind == kind => {
                if let Some(i) = created.iter().position(|c| *c == e.credential_id) {
                    created.remove(i);
                } else {
                    updated.retain(|u| *u != e.credential_id);
                    destroyed.push(e.credential_id);
                }
            }
            _ => {}
        }
    }
    let wire = |v: Vec<ObjectId>| v.into_iter().map(|id| id.to_jmap()).collect();
    Ok((wire(created), wire(updated), wire(destroyed)))
}

/// The changes of the caller's credentials of `kind` since `since_state`
/// (needing the `verb`'s permission), with the current state and the
/// caller's account now.
async fn changes_since(
    ctx: &mut CallContext<'_>,
    kind: CredentialKind,
    verb: Verb,
    since_state: String,
) -> Result<(u64, Changed, AccountState), MethodError> {
    if !ctx.principal.may(&permission(kind, verb)) {
        return Err(MethodError::needs(&permission(kind, verb)));
    }
    let own = own_id(ctx)?;
    let read = ctx.services.ledger.read();
    let log = ctx.services.ledger.log().clone();
    blocking(move || {
        let current = type_state(&read.view, Account::TYPE)?;
        let since = super::changes::since(&read.view, &since_state, current)?;
        let changed = credential_changes(&read, &log, own, kind, since, current)?;
        let account = state::account(&read.view, own)?.ok_or(MethodError::AccountNotFound)?;
        Ok((current, changed, account))
    })
    .await
}

/// `x:ApiKey/changes`, `x:AppPassword/changes` (RFC 8620 §5.2): states are
/// `x:Account` states; the changes are the caller's own credentials'.
pub(crate) async fn changes(
    ctx: &mut CallContext<'_>,
    kind: CredentialKind,
    arguments: Value,
) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let since_state: String = args.take("sinceState")?.ok_or_else(|| MethodError::invalid("sinceState is required"))?;
    let _max_changes: Option<u64> = args.take("maxChanges")?;
    args.finish()?;
    let (current, (created, updated, destroyed), _) = changes_since(ctx, kind, Verb::Get, since_state.clone()).await?;
    Ok(json!({"accountId": ACCOUNT_ID, "oldState": since_state, "newState": state_string(current),
        "hasMoreChanges": false, "created": created, "updated": updated, "destroyed": destroyed}))
}

/// `x:ApiKey/queryChanges`, `x:AppPassword/queryChanges` (RFC 8620 §5.6) of
/// the unfiltered query in creation order: `removed` the destroyed (and
/// updated, as RFC 8620 allows) ids, `added` the created and updated ones at
/// their index.
pub(crate) async fn query_changes(
    ctx: &mut CallContext<'_>,
    kind: CredentialKind,
    arguments: Value,
) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let since_state: String =
        args.take("sinceQueryState")?.ok_or_else(|| MethodError::invalid("sinceQueryState is required"))?;
    for ignored in ["filter", "sort", "maxChanges", "upToId", "calculateTotal"] {
        let _: Option<Value> = args.take(ignored)?;
    }
    args.finish()?;
    let (current, (created, updated, destroyed), account) =
        changes_since(ctx, kind, Verb::Query, since_state.clone()).await?;
    let ids: Vec<String> = of_kind(&account, kind).map(|i| account.credentials[i].id.to_jmap()).collect();
    let added: Vec<Value> = ids
        .iter()
        .enumerate()
        .filter(|(_, id)| created.contains(id) || updated.contains(id))
        .map(|(index, id)| json!({"id": id, "index": index}))
        .collect();
    let removed: Vec<&String> = destroyed.iter().chain(updated.iter()).collect();
    Ok(json!({"accountId": ACCOUNT_ID, "oldQueryState": since_state, "newQueryState": state_string(current),
        "total": ids.len(), "removed": removed, "added": added}))
}
