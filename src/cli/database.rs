//! `ledger database delete|rename|purge`, and the older `ledger account delete|update`.

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;

use super::client::{Client, Kind, describe, get, label, resolve, resolve_name, set_result};
use super::confirm::Confirm;
use super::output::Output;

#[derive(Debug, Subcommand)]
pub enum DatabaseCommand {
    /// Delete an account and erase its personal data: `ledger database delete john --yes`.
    Delete {
        name: String,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Rename an account, keeping its id and history: `ledger database rename john john.doe`.
    Rename { old: String, new: String },
    /// Run maintenance now (removes expired credentials).
    Purge,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Same as `database delete`.
    Delete {
        name: String,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Same as `database rename OLD NEW`.
    Update { old: String, new: String },
}

pub(super) enum Maintenance {
    Delete(String, Confirm),
    Rename(String, String),
    Purge,
}

impl From<DatabaseCommand> for Maintenance {
    fn from(c: DatabaseCommand) -> Self {
        match c {
            DatabaseCommand::Delete { name, confirm } => Maintenance::Delete(name, confirm),
            DatabaseCommand::Rename { old, new } => Maintenance::Rename(old, new),
            DatabaseCommand::Purge => Maintenance::Purge,
        }
    }
}

impl From<AccountCommand> for Maintenance {
    fn from(c: AccountCommand) -> Self {
        match c {
            AccountCommand::Delete { name, confirm } => Maintenance::Delete(name, confirm),
            AccountCommand::Update { old, new } => Maintenance::Rename(old, new),
        }
    }
}

pub(super) async fn run(client: &Client, out: &Output, m: Maintenance) -> anyhow::Result<()> {
    match m {
        Maintenance::Delete(name, confirm) => {
            let id = resolve_name(client, Kind::Account, &name).await?;
            let account = get(client, Kind::Account, std::slice::from_ref(&id)).await?;
            let shown = account.first().map(label).unwrap_or_else(|| format!("id {id}"));
            let plan =
                [format!("delete account {shown} and erase its personal data from every past event (irreversible)")];
            if !confirm.approve(&plan, true)? {
                return Ok(());
            }
            let answer = client.call("x:Database/erase", json!({"ids": [id]})).await?;
            if let Some(error) = answer["notErased"].get(&id) {
                bail!("could not delete {name}: {}", describe(error));
            }
            out.message(&format!("deleted account {name} (id {id}) and erased its personal data"), answer);
        }
        Maintenance::Rename(old, new) => {
            let id = resolve_name(client, Kind::Account, &old).await?;
            let mut patch = json!({});
            match new.split_once('@') {
                Some((name, domain)) => {
                    patch["name"] = json!(name);
                    patch["domainId"] = json!(resolve(client, Kind::Domain, domain).await?);
                }
                None => patch["name"] = json!(new),
            }
            let answer = client.call("x:Account/set", json!({"update": {(id.clone()): patch}})).await?;
            set_result(&answer, "updated", "notUpdated", &id, "rename")?;
            out.message(&format!("renamed account {old} to {new} (id {id} kept)"), json!({"updated": id}));
        }
        Maintenance::Purge => {
            let answer = client.call("x:Database/purge", json!({})).await?;
            let removed = answer["expiredCredentialsRemoved"].as_u64().unwrap_or(0);
            out.message(&format!("purge done: {removed} expired credentials removed"), answer);
        }
    }
    Ok(())
}
