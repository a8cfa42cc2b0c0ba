//! `x:AccountHistory/get` (extension): the audit history of accounts by id,
//! kept after an account is destroyed. Needs the account read permission
//! (`sysAccountGet`), or is one's own with the self-service read permission
//! (`sysAccountSettingsGet`). A tenant principal sees only the part of the
//! history spent in its tenant, and no actor from outside it.

use std::sync::Arc;

use ledger_projections::state;
use serde_json::{Value, json};

use crate::audit::history::account_history;
use crate::auth::permissions::self_service;
use crate::jmap::context::{CallContext, ResponseBudget, blocking};
use crate::jmap::error::MethodError;
use crate::jmap::object::account::Account;
use crate::jmap::object::{JmapObject, Verb, in_scope};
use crate::jmap::request::Args;
use crate::jmap::session::ACCOUNT_ID;

pub(crate) async fn get(ctx: &mut CallContext<'_>, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let ids: Vec<String> = args.take("ids")?.ok_or_else(|| MethodError::invalid("ids is required"))?;
    args.finish()?;
    let max = ctx.services.limits.max_objects_in_get;
    if ids.len() > max {
        return Err(MethodError::RequestTooLarge(format!("at most {max} ids per x:AccountHistory/get")));
    }
    let ids: Vec<_> = ids.iter().map(|raw| ctx.created_ids.resolve_shown(raw)).collect();
    let principal = Arc::clone(ctx.principal);
    let permission = Account::permission(Verb::Get);
    let own = |id: &Option<_>| id.is_some_and(|id| Account::is_self(&principal, id));
    let self_read = principal.may(self_service::ACCOUNT_READ) && ids.iter().all(|(id, _)| own(id));
    if !principal.may(permission) && !self_read {
        return Err(MethodError::needs(permission));
    }
    let read = ctx.services.ledger.read();
    let log = ctx.services.ledger.log().clone();
    let mut budget = ResponseBudget::new(ctx.response_left);
    blocking(move || {
        let (mut list, mut not_found) = (Vec::new(), Vec::new());
        for (id, shown) in ids {
            let visible = match (id, &principal.tenant) {
                (Some(id), Some(_)) => {
                    state::account(&read.view, id)?.is_some_and(|a| in_scope::<Account>(&principal, &a))
                }
                (Some(_), None) => true,
                (None, _) => false,
            };
            let history = match id.filter(|_| visible) {
                Some(id) => account_history(&read.view, &log, read.view.snapshot(), id, principal.tenant.as_ref())?,
                None => None,
            };
            match history {
                Some(events) => {
                    let entry = json!({"id": shown, "events": events});
                    budget.charge(&entry)?;
                    list.push(entry);
                }
                None => not_found.push(json!(shown)),
            }
        }
        Ok(json!({"accountId": ACCOUNT_ID, "list": list, "notFound": not_found}))
    })
    .await
}
