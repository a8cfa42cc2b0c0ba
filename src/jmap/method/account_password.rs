//! The `x:AccountPassword` singleton (Stalwart 0.16): the calling
//! account's login password as an object of its own. `get` shows it masked;
//! `set` changes it as a patch of the caller's `x:Account`, and needs
//! `currentSecret` when the account has a password (checked with argon2id,
//! counted against the request's password checks).

use ledger_events::model::CredentialKind;
use ledger_events::values::ObjectId;
use serde_json::{Map, Value, json};

use super::credential::{expect_at, own_account, own_id, patch_own, permission, unprefixed};
use super::set;
use crate::jmap::context::{CallContext, blocking};
use crate::jmap::error::{MethodError, SetError};
use crate::jmap::object::Verb;
use crate::jmap::object::account::render::MASKED;
use crate::jmap::request::Args;
use crate::jmap::session::ACCOUNT_ID;

/// The singleton's id (Stalwart: omitted or `singleton`).
const SINGLETON: &str = "singleton";

/// `x:AccountPassword/get`: `{"id": "singleton", "secret": "****"}` (no
/// `secret` when the account has no password).
pub(crate) async fn get(ctx: &mut CallContext<'_>, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let ids: Option<Vec<String>> = args.take("ids")?;
    let _properties: Option<Vec<String>> = args.take("properties")?;
    args.finish()?;
    let kind = CredentialKind::Password;
    if !ctx.principal.may(&permission(kind, Verb::Get)) {
        return Err(MethodError::needs(&permission(kind, Verb::Get)));
    }
    let own = own_id(ctx)?;
    let (account, state) = own_account(ctx, own).await?;
    let has = account.credentials.iter().any(|c| c.kind == kind);
    let object =
        json!({"id": SINGLETON, "secret": if has { json!(MASKED) } else { Value::Null }, "currentSecret": null});
    let (list, not_found): (Vec<Value>, Vec<Value>) = match ids {
        None => (vec![object], vec![]),
        Some(ids) => {
            let (found, missing): (Vec<String>, Vec<String>) = ids.into_iter().partition(|i| i == SINGLETON);
            (found.iter().map(|_| object.clone()).take(1).collect(), missing.into_iter().map(Value::String).collect())
        }
    };
    Ok(json!({"accountId": ACCOUNT_ID, "state": state, "list": list, "notFound": not_found}))
}

/// `x:AccountPassword/set`: `update: {"singleton": {"secret": NEW,
/// "currentSecret": OLD}}` changes one's own password once `currentSecret`
/// matches the current one (`forbidden` otherwise; each check is one of the
/// request's password hashes). Only a principal logged in with the password
/// may (so no key holder can guess it here). Create and destroy are
/// `singleton` errors.
pub(crate) async fn set(ctx: &mut CallContext<'_>, arguments: Value) -> Result<Value, MethodError> {
    let set::SetArguments { create, update, destroy, .. } = set::SetArguments::parse(ctx, arguments)?;
    let kind = CredentialKind::Password;
    if !ctx.principal.may(&permission(kind, Verb::Update)) {
        return Err(MethodError::needs(&permission(kind, Verb::Update)));
    }
    // Only a password login may change the password: an API key or app
    // password holder could otherwise guess `currentSecret` here, past the
    // login limiter, and take the account.
    if ctx.principal.method != ledger_events::AuthMethod::Password {
        return Err(MethodError::Forbidden(
            "the password can be changed only when logged in with it (not with an API key or app password)".into(),
        ));
    }
    let own = own_id(ctx)?;
    let (_, old_state) = own_account(ctx, own).await?;
    let singleton = |what: &str| SetError::new(crate::jmap::error::SetErrorType::Singleton, what).to_json();
    let not_created: Map<String, Value> =
        create.keys().map(|k| (k.clone(), singleton("x:AccountPassword is a singleton: update it"))).collect();
    let not_destroyed: Map<String, Value> =
        destroy.iter().map(|k| (k.clone(), singleton("Singleton objects cannot be deleted"))).collect();
    let mut updated = Map::new();
    let mut not_updated = Map::new();
    for (id, patch) in update {
        if id != SINGLETON {
            not_updated.insert(id, SetError::invalid_properties(vec![], "Invalid singleton id").to_json());
            continue;
        }
        match change_password(ctx, own, patch).await? {
            Ok(()) => {
                updated.insert(id, Value::Null);
            }
            Err(error) => {
                not_updated.insert(id, error);
            }
        }
    }
    let (_, new_state) = own_account(ctx, own).await?;
    let or_null = |m: Map<String, Value>| if m.is_empty() { Value::Null } else { Value::Object(m) };
    Ok(json!({
        "accountId": ACCOUNT_ID, "oldState": old_state, "newState": new_state,
        "created": null, "updated": or_null(updated), "destroyed": null,
        "notCreated": or_null(not_created), "notUpdated": or_null(not_updated), "notDestroyed": or_null(not_destroyed),
    }))
}

async fn change_password(
    ctx: &mut CallContext<'_>,
    own: ObjectId,
    patch: Value,
) -> Result<Result<(), Value>, MethodError> {
    let Value::Object(mut patch) = patch else {
        return Ok(Err(SetError::invalid_patch("a patch must be an object").to_json()));
    };
    let new = match patch.remove("secret") {
        Some(Value::String(s)) if s != MASKED => s,
        None | Some(Value::String(_)) => return Ok(Ok(())),
        Some(_) => return Ok(Err(SetError::invalid("secret", "secret must be a string").to_json())),
    };
    let current = match patch.remove("currentSecret") {
        Some(Value::String(s)) => s,
        _ => return Ok(Err(SetError::invalid("currentSecret", "currentSecret is required").to_json())),
    };
    if let Some(other) = patch.keys().next() {
        return Ok(Err(SetError::invalid(other, format!("{other} is not an AccountPassword property")).to_json()));
    }
    let (account, _) = own_account(ctx, own).await?;
    let slot = account.credentials.iter().position(|c| c.kind == CredentialKind::Password);
    if let Some(i) = slot {
        if *ctx.passwords_left == 0 {
            return Err(MethodError::RequestTooLarge("no more password checks in this request".into()));
        }
        *ctx.passwords_left -= 1;
        let hash = account.credentials[i].secret_hash.clone();
        let checked = blocking(move || Ok(crate::secrets::verify_password(&current, &hash))).await?;
        match checked {
            crate::secrets::Checked::Match => {}
            crate::secrets::Checked::Busy => {
                return Err(MethodError::ServerUnavailable("the password check is busy; try again".into()));
            }
            _ => return Ok(Err(SetError::forbidden("currentSecret does not match the current password").to_json())),
        }
    }
    let key = match slot {
        Some(i) => format!("credentials/{i}/secret"),
        None => format!("credentials/{}", account.credentials.len()),
    };
    let value = match slot {
        Some(_) => json!(new),
        None => json!({"@type": "Password", "secret": new}),
    };
    let expected = match slot {
        Some(i) => expect_at(i, &account.credentials[i].id.to_jmap()),
        None => vec![(key.clone(), None)],
    };
    let mut patch = Map::new();
    patch.insert(key, value);
    Ok(patch_own(ctx, own, patch, expected).await?.map(|_| ()).map_err(unprefixed))
}
