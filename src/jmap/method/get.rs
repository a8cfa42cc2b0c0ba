//! `/get` (RFC 8620 §5.1) of any object type, with the `asOf` extension (the
//! objects as they were at a log position or time) for types with history.

use std::sync::Arc;

use ledger_events::values::ObjectId;
use serde_json::{Value, json};

use super::query::{resolve_as_of, take_as_of};
use crate::auth::permissions::self_service;
use crate::jmap::context::{CallContext, ResponseBudget, blocking};
use crate::jmap::error::MethodError;
use crate::jmap::object::{JmapObject, Verb, has_property, in_scope, wire_render};
use crate::jmap::request::Args;
use crate::jmap::session::ACCOUNT_ID;
use crate::jmap::state::{state_string, type_state};
use ledger_projections::query::Filter;

pub(crate) async fn get<O: JmapObject>(ctx: &mut CallContext<'_>, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let ids: Option<Vec<String>> = args.take("ids")?;
    let properties: Option<Vec<String>> = args.take("properties")?;
    let as_of = take_as_of::<O>(&mut args)?;
    args.finish()?;
    if let Some(unknown) = properties.iter().flatten().find(|p| !has_property::<O>(p)) {
        return Err(MethodError::invalid(format!("unknown property {unknown:?}")));
    }
    let max = ctx.services.limits.max_objects_in_get;
    if ids.as_ref().is_some_and(|ids| ids.len() > max) {
        return Err(MethodError::RequestTooLarge(format!("at most {max} ids per /get")));
    }
    // Each id as given, resolved (`None` when it names nothing), and as shown back.
    let ids: Option<Vec<(Option<ObjectId>, String)>> =
        ids.map(|ids| ids.iter().map(|raw| ctx.created_ids.resolve_shown(raw)).collect());
    let principal = Arc::clone(ctx.principal);
    if !principal.may(O::permission(Verb::Get)) {
        // Without the permission an account may still read itself, by id, with
        // the User role's self-service permission.
        let only_self = principal.may(self_service::ACCOUNT_READ)
            && ids.as_ref().is_some_and(|ids| {
                !ids.is_empty() && ids.iter().all(|(id, _)| id.is_some_and(|id| O::is_self(&principal, id)))
            });
        if !only_self {
            return Err(MethodError::needs(O::permission(Verb::Get)));
        }
    }
    let response_left = ctx.response_left;
    let read = ctx.services.ledger.read();
    let log = ctx.services.ledger.log().clone();
    blocking(move || {
        let view = &read.view;
        let state = type_state(view, O::TYPE)?;
        let as_of = resolve_as_of(as_of.as_ref(), &log, view.snapshot())?;
        // Without ids, every object the principal may see: another tenant's
        // are left out, not reported as notFound.
        let listed = ids.is_none();
        let wanted = match ids {
            Some(ids) => ids,
            None => {
                // A tenant principal lists its tenant's objects only: neither
                // their ids nor how many others there are reach it.
                let all = match (O::TENANT_SCOPED, &principal.tenant) {
                    (true, Some(t)) => {
                        let mut ids = O::query(view, &Filter::MemberTenantId(t.as_str().to_owned()), &[])?;
                        ids.truncate(max + 1);
                        ids
                    }
                    _ => O::list(view, max + 1)?,
                };
                if all.len() > max {
                    return Err(MethodError::RequestTooLarge(format!(
                        "more than {max} objects; ask for ids (use /query)"
                    )));
                }
                all.into_iter().map(|id| (Some(id), id.to_jmap())).collect()
            }
        };
        let mut list = Vec::new();
        let mut not_found = Vec::new();
        let mut budget = ResponseBudget::new(response_left);
        for (id, shown) in wanted {
            let found = match (id, as_of) {
                (Some(id), Some(p)) => O::fetch_at(view, &log, id, p)?,
                (Some(id), None) => O::fetch(view, id)?,
                (None, _) => None,
            };
            match found.filter(|state| in_scope::<O>(&principal, state)) {
                Some(state) => {
                    let mut object = wire_render::<O>(&state);
                    if let Some(props) = &properties {
                        object.retain(|k, _| k == "id" || props.iter().any(|p| p == k));
                    }
                    let object = Value::Object(object);
                    budget.charge(&object)?;
                    list.push(object);
                }
                None if listed => {}
                None => not_found.push(Value::String(shown)),
            }
        }
        let mut out = json!({
            "accountId": ACCOUNT_ID,
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
