//! `x:Database/erase` and `x:Database/purge` (extensions): the maintenance
//! behind `ledger database delete` and `ledger database purge`, done by
//! `crate::maintenance`. Erase needs `sysDatabaseErase`, purge
//! `sysDatabasePurge`; neither is open to a tenant-scoped principal.

use serde_json::{Map, Value, json};

use crate::jmap::context::CallContext;
use crate::jmap::error::{MethodError, SetError};
use crate::jmap::request::Args;
use crate::jmap::session::ACCOUNT_ID;
use crate::jmap::state::state_string;

use crate::auth::permissions::ledger_wide::{DATABASE_ERASE, DATABASE_PURGE};

/// `ids` (accounts) are destroyed if they still exist and their personal data
/// erased; answers `erased`, `notErased` (SetErrors) and `lastPosition`.
pub(crate) async fn erase(ctx: &mut CallContext<'_>, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let ids: Vec<String> = args.take("ids")?.ok_or_else(|| MethodError::invalid("ids is required"))?;
    args.finish()?;
    ctx.require_globally(DATABASE_ERASE)?;
    let mut not_erased = Map::new();
    let mut wanted = Vec::new();
    for raw in ids {
        match ctx.created_ids.resolve(&raw) {
            Ok(id) => wanted.push(id),
            Err(_) => {
                not_erased.insert(raw, SetError::not_found("no such account").to_json());
            }
        }
    }
    let report =
        crate::maintenance::erase(&ctx.services.ledger, ctx.origin.clone(), wanted, ctx.principal.writer()).await?;
    let mut erased = Vec::new();
    for (id, outcome) in report.outcomes {
        match outcome {
            Ok(()) => erased.push(json!(id.to_jmap())),
            Err(rejection) => {
                not_erased.insert(id.to_jmap(), SetError::from(rejection).to_json());
            }
        }
    }
    Ok(json!({
        "accountId": ACCOUNT_ID,
        "erased": erased,
        "notErased": if not_erased.is_empty() { Value::Null } else { Value::Object(not_erased) },
        "lastPosition": state_string(report.last_position),
    }))
}

/// Purges now: expired credentials, and change tracking by the retention
/// policy or before `trimChangesBefore` (a position).
pub(crate) async fn purge(ctx: &mut CallContext<'_>, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let trim_before: Option<u64> = args.take("trimChangesBefore")?;
    args.finish()?;
    ctx.require_globally(DATABASE_PURGE)?;
    let report =
        crate::maintenance::purge(&ctx.services.ledger, ctx.origin.clone(), ctx.services.purge_policy, trim_before)
            .await?;
    Ok(json!({
        "accountId": ACCOUNT_ID,
        "expiredCredentialsRemoved": report.expired_credentials_removed,
        "changesFrom": report.changes_from,
        "lastPosition": state_string(report.last_position),
    }))
}
