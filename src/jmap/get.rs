//! `/get` (RFC 8620 §5.1) for accounts and domains.

use ledger_events::ObjectType;
use ledger_events::values::ObjectId;
use ledger_projections::{StateRead, state};
use serde_json::{Map, Value, json};

use std::sync::Arc;

use super::error::MethodError;
use super::permissions::get_permission;
use super::request::Args;
use super::{CallContext, account, blocking, domain, role, state_string};
use crate::auth::Principal;

/// The properties `/get` knows for a type.
pub fn known_properties(t: ObjectType) -> &'static [&'static str] {
    match t {
        ObjectType::Account => account::render::USER_PROPERTIES,
        ObjectType::Domain => domain::PROPERTIES,
        ObjectType::Role => role::PROPERTIES,
    }
}

/// The rendered object, or `None` when it does not exist.
pub fn fetch(view: &impl StateRead, t: ObjectType, id: ObjectId) -> Result<Option<Map<String, Value>>, MethodError> {
    Ok(match t {
        ObjectType::Account => state::account(view, id)?.map(|a| account::render::render(&a)),
        ObjectType::Domain => state::domain(view, id)?.map(|d| domain::render(&d)),
        ObjectType::Role => state::role(view, id)?.map(|r| role::render(&r)),
    })
}

/// Ids of every object of a type, up to `limit`.
pub fn all_ids(view: &impl StateRead, t: ObjectType, limit: usize) -> Result<Vec<ObjectId>, MethodError> {
    Ok(match t {
        ObjectType::Account => state::account_ids(view, limit)?,
        ObjectType::Domain => state::domain_ids(view, limit)?,
        ObjectType::Role => state::role_ids(view, limit)?,
    })
}

/// Whether the principal may see the object at all (tenant scope); objects it may
/// not see are reported as not found.
pub fn visible(view: &impl StateRead, principal: &Principal, t: ObjectType, id: ObjectId) -> Result<bool, MethodError> {
    if t != ObjectType::Account || principal.tenant.is_none() {
        return Ok(true);
    }
    Ok(state::account(view, id)?.is_some_and(|a| principal.sees(&a)))
}

/// Takes the `asOf` extension argument (a log position or time), which only
/// `x:Account` `/get` and `/query` accept.
pub fn take_as_of(args: &mut Args, t: ObjectType) -> Result<Option<Value>, MethodError> {
    let as_of = args.take_raw("asOf");
    if as_of.is_some() && t != ObjectType::Account {
        return Err(MethodError::invalid("asOf is supported for x:Account"));
    }
    Ok(as_of)
}

/// The log position an `asOf` argument stands for.
pub fn resolve_as_of(
    as_of: Option<&Value>,
    log: &ledger_events::EventLog,
    snap: &fjall::Snapshot,
) -> Result<Option<u64>, MethodError> {
    match as_of {
        None => Ok(None),
        Some(v) => Ok(Some(crate::audit::asof::resolve_as_of(v, log, snap)?.map_err(MethodError::InvalidArguments)?)),
    }
}

/// Resolves a `#creationId` to the id created earlier in the request.
pub fn resolve_reference(ctx: &CallContext<'_>, raw: &str) -> String {
    match raw.strip_prefix('#') {
        Some(creation) => ctx.created_ids.get(creation).cloned().unwrap_or_else(|| raw.to_owned()),
        None => raw.to_owned(),
    }
}

pub async fn get(ctx: &mut CallContext<'_>, t: ObjectType, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let ids: Option<Vec<String>> = args.take("ids")?;
    let properties: Option<Vec<String>> = args.take("properties")?;
    let as_of = take_as_of(&mut args, t)?;
    args.finish()?;
    let known = known_properties(t);
    if let Some(unknown) = properties.iter().flatten().find(|p| !known.contains(&p.as_str())) {
        return Err(MethodError::invalid(format!("unknown property {unknown:?}")));
    }
    let max = ctx.app.limits.max_objects_in_get;
    if ids.as_ref().is_some_and(|ids| ids.len() > max) {
        return Err(MethodError::RequestTooLarge(format!("at most {max} ids per /get")));
    }
    let ids: Option<Vec<String>> = ids.map(|ids| ids.iter().map(|id| resolve_reference(ctx, id)).collect());
    let principal = Arc::clone(ctx.principal);
    if !principal.may(get_permission(t)) {
        // Without the permission an account may still read itself, by id.
        let own = principal.account_id.map(|id| id.to_jmap());
        let only_self = t == ObjectType::Account
            && ids.as_ref().is_some_and(|ids| !ids.is_empty() && ids.iter().all(|id| Some(id) == own.as_ref()));
        if !only_self {
            return Err(MethodError::Forbidden(format!("{} is required", get_permission(t))));
        }
    }
    let read = ctx.app.ledger.read();
    let log = ctx.app.ledger.log().clone();
    blocking(move || {
        let view = &read.view;
        let state = state::type_state(view, t)?;
        let as_of = resolve_as_of(as_of.as_ref(), &log, view.snapshot())?;
        let wanted: Vec<String> = match ids {
            Some(ids) => ids,
            None => {
                let all = all_ids(view, t, max + 1)?;
                if all.len() > max {
                    return Err(MethodError::RequestTooLarge(format!(
                        "more than {max} objects; ask for ids (use /query)"
                    )));
                }
                all.iter().map(|id| id.to_jmap()).collect()
            }
        };
        let mut list = Vec::new();
        let mut not_found = Vec::new();
        for raw in wanted {
            let found = match (ObjectId::from_jmap(&raw), as_of) {
                (Some(id), Some(p)) => crate::audit::asof::account_at(view, &log, view.snapshot(), id, p)?
                    .filter(|a| principal.sees(a))
                    .map(|a| account::render::render(&a)),
                (Some(id), None) if visible(view, &principal, t, id)? => fetch(view, t, id)?,
                _ => None,
            };
            match found {
                Some(mut object) => {
                    if let Some(props) = &properties {
                        object.retain(|k, _| k == "id" || props.iter().any(|p| p == k));
                    }
                    list.push(Value::Object(object));
                }
                None => not_found.push(Value::String(raw)),
            }
        }
        let mut out = json!({
            "accountId": super::session::ACCOUNT_ID,
            "state": state_string(state),
            "list": list,
            "notFound": not_found,
        });
        if let Some(p) = as_of {
            out["asOf"] = json!(p);
        }
        Ok(out)
    })
    .await
}
