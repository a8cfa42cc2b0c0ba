//! `x:Database/purge` (extension): the maintenance behind `ledger database purge`.
//! Today it removes expired credentials, each recorded as CredentialRemoved with
//! reason `expired`. Needs `sysDatabasePurge`.

use serde_json::{Value, json};

use super::error::MethodError;
use super::request::Args;
use super::{CallContext, state_string};
use ledger_events::Event;
use ledger_events::values::ObjectId;
use ledger_projections::state;

use super::error::SetError;
use crate::command::{Command, DestroyAccount, EraseAccount};

pub const PURGE_PERMISSION: &str = "sysDatabasePurge";
pub const ERASE_PERMISSION: &str = "sysDatabaseErase";

/// `x:Database/erase` (extension): destroys each account (if it still exists) and
/// erases the payloads of every record that touched it, then compacts the store so
/// the bytes are gone from disk. Needs `sysDatabaseErase`.
pub async fn erase(ctx: &mut CallContext<'_>, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let ids: Vec<String> = args.take("ids")?.ok_or_else(|| MethodError::invalid("ids is required"))?;
    args.finish()?;
    if !ctx.principal.may(ERASE_PERMISSION) || ctx.principal.tenant.is_some() {
        return Err(MethodError::Forbidden(format!("{ERASE_PERMISSION} is required")));
    }
    let committed = ctx
        .app
        .ledger
        .commit(ctx.origin.clone(), move |tx| {
            let mut erased = Vec::new();
            let mut not_erased = serde_json::Map::new();
            for raw in ids {
                let Some(id) = ObjectId::from_jmap(&raw) else {
                    not_erased.insert(raw, SetError::not_found("no such account").to_json());
                    continue;
                };
                let savepoint_ok = (|| -> Result<(), SetError> {
                    if state::account(tx.state(), id).map_err(|_| SetError::new("forbidden", "unreadable"))?.is_some() {
                        tx.execute(&Command::DestroyAccount(DestroyAccount { id }))?;
                    }
                    let events = tx.execute(&Command::EraseAccount(EraseAccount { id }))?;
                    for event in events {
                        if let Event::AccountErased(e) = event {
                            let positions: Vec<u64> = e.erased.iter().map(|r| r.position).collect();
                            tx.erase_payloads(&positions);
                        }
                    }
                    Ok(())
                })();
                match savepoint_ok {
                    Ok(()) => erased.push(json!(raw)),
                    Err(e) => {
                        not_erased.insert(raw, e.to_json());
                    }
                }
            }
            (erased, not_erased)
        })
        .await?;
    let (erased, not_erased) = committed.value;
    if !erased.is_empty() {
        let ledger = ctx.app.ledger.clone();
        super::blocking(move || Ok(ledger.compact()?)).await?;
    }
    Ok(json!({
        "accountId": super::session::ACCOUNT_ID,
        "erased": erased,
        "notErased": if not_erased.is_empty() { Value::Null } else { Value::Object(not_erased) },
        "lastPosition": state_string(committed.info.last_seq),
    }))
}

pub async fn purge(ctx: &mut CallContext<'_>, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    // Drop change tracking before this position now, whatever the retention policy says.
    let trim_before: Option<u64> = args.take("trimChangesBefore")?;
    args.finish()?;
    if !ctx.principal.may(PURGE_PERMISSION) || ctx.principal.tenant.is_some() {
        return Err(MethodError::Forbidden(format!("{PURGE_PERMISSION} is required")));
    }
    let report =
        crate::maintenance::purge(&ctx.app.ledger, ctx.origin.clone(), ctx.app.purge_policy, trim_before).await?;
    Ok(json!({
        "accountId": super::session::ACCOUNT_ID,
        "expiredCredentialsRemoved": report.expired_credentials_removed,
        "changesFrom": report.changes_from,
        "lastPosition": state_string(report.last_position),
    }))
}
