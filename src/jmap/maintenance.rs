//! `x:Database/purge` (extension): the maintenance behind `ledger database purge`.
//! Today it removes expired credentials, each recorded as CredentialRemoved with
//! reason `expired`. Needs `sysDatabasePurge`.

use serde_json::{Value, json};

use super::error::MethodError;
use super::request::Args;
use super::{CallContext, state_string};
use crate::command::{Command, PurgeExpiredCredentials};

pub const PURGE_PERMISSION: &str = "sysDatabasePurge";

pub async fn purge(ctx: &mut CallContext<'_>, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    args.finish()?;
    if !ctx.principal.may(PURGE_PERMISSION) || ctx.principal.tenant.is_some() {
        return Err(MethodError::Forbidden(format!("{PURGE_PERMISSION} is required")));
    }
    let committed = ctx
        .app
        .ledger
        .commit(ctx.origin.clone(), |tx| {
            let command = Command::PurgeExpiredCredentials(PurgeExpiredCredentials { now: tx.now() });
            tx.execute(&command).map(|events| events.len())
        })
        .await?;
    let removed = committed.value.map_err(|r| {
        tracing::error!(rejection = %r, "purge failed");
        MethodError::ServerFail
    })?;
    Ok(json!({
        "accountId": super::session::ACCOUNT_ID,
        "expiredCredentialsRemoved": removed,
        "lastPosition": state_string(committed.info.last_seq),
    }))
}
