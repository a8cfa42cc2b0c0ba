//! `x:AccountHistory/get` (extension): the audit history of accounts by id, kept
//! after an account is destroyed. Needs `sysAccountGet`, or is one's own.

use std::sync::Arc;

use ledger_events::values::ObjectId;
use ledger_projections::state;
use serde_json::{Value, json};

use super::error::MethodError;
use super::request::Args;
use super::{CallContext, blocking};
use crate::audit::history::account_history;

pub async fn get(ctx: &mut CallContext<'_>, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let ids: Vec<String> = args.take("ids")?.ok_or_else(|| MethodError::invalid("ids is required"))?;
    args.finish()?;
    let ids: Vec<String> = ids.iter().map(|id| super::get::resolve_reference(ctx, id)).collect();
    let principal = Arc::clone(ctx.principal);
    let own = principal.account_id.map(|id| id.to_jmap());
    if !principal.may("sysAccountGet") && !ids.iter().all(|id| Some(id) == own.as_ref()) {
        return Err(MethodError::Forbidden("sysAccountGet is required".into()));
    }
    let read = ctx.app.ledger.read();
    let log = ctx.app.ledger.log().clone();
    blocking(move || {
        let (mut list, mut not_found) = (Vec::new(), Vec::new());
        for raw in ids {
            let id = ObjectId::from_jmap(&raw);
            let visible = match (id, &principal.tenant) {
                (Some(id), Some(_)) => state::account(&read.view, id)?.is_some_and(|a| principal.sees(&a)),
                (Some(_), None) => true,
                (None, _) => false,
            };
            let history = match id.filter(|_| visible) {
                Some(id) => account_history(&read.view, &log, read.view.snapshot(), id)?,
                None => None,
            };
            match history {
                Some(events) => list.push(json!({"id": raw, "events": events})),
                None => not_found.push(json!(raw)),
            }
        }
        Ok(json!({"accountId": super::session::ACCOUNT_ID, "list": list, "notFound": not_found}))
    })
    .await
}
