//! `ledger audit history|export|verify|checkpoint` and `ledger restore`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::json;

use super::client::{Client, Kind, find};
use super::output::{Output, emit, event_line, printable};
use crate::audit::export::Bound;
use crate::audit::verify::verify_export;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Every event that touched an account, oldest first (also after it was destroyed).
    History {
        /// Account id or address.
        account: String,
    },
    /// Write the log as NDJSON with hashes and a trailer, for offline verification.
    Export {
        /// First log position or RFC 3339 UTC time.
        #[arg(long)]
        from: Option<Bound>,
        /// Last log position or RFC 3339 UTC time.
        #[arg(long)]
        to: Option<Bound>,
        /// Only this account's records in full (others as skipped hashes).
        #[arg(long)]
        account: Option<String>,
    },
    /// Verify an export or backup file offline, or a whole stopped store with --data-dir.
    Verify {
        /// The export to check.
        file: Option<PathBuf>,
        /// Check a store instead of a file.
        #[arg(long, conflicts_with = "file")]
        data_dir: Option<PathBuf>,
        /// `POSITION:HASH` from `ledger audit checkpoint`: prove the log only grew since.
        #[arg(long)]
        checkpoint: Option<String>,
    },
    /// Print the current end of the chain as `POSITION:HASH`, to keep.
    Checkpoint,
}

/// Whether the command needs a server.
pub(super) fn needs_server(c: &AuditCommand) -> bool {
    !matches!(c, AuditCommand::Verify { .. })
}

pub(super) async fn run_remote(client: &Client, out: &Output, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::History { account } => {
            let id = match find(client, Kind::Account, &account, client.lookup).await? {
                Some(id) => id,
                // Destroyed (or renamed) since: the log still knows the address.
                None if account.contains('@') => match ever_addressed(client, &account).await? {
                    Some(id) => id,
                    None => bail!("no account has or had the address {account:?}"),
                },
                // An id no live account has: a destroyed account's.
                None => account.clone(),
            };
            let answer = client.call("x:AccountHistory/get", json!({"ids": [id]})).await?;
            let Some(entry) = answer["list"].get(0) else { bail!("no history for {account:?}") };
            if out.is_json() {
                out.object(&entry["events"]);
            } else {
                for e in entry["events"].as_array().into_iter().flatten() {
                    emit(event_line(&e["position"], &e["at"], &e["event"], &e["actor"], &e["details"]));
                }
            }
        }
        AuditCommand::Export { from, to, account } => {
            let mut query = Vec::new();
            let bound = |b: Bound| match b {
                Bound::Seq(n) => n.to_string(),
                Bound::Time(t) => t.to_string(),
            };
            if let Some(f) = from {
                query.push(format!("from={}", bound(f)));
            }
            if let Some(t) = to {
                query.push(format!("to={}", bound(t)));
            }
            if let Some(a) = account {
                // Ambiguity is an error; a value nothing live matches is
                // passed on (a destroyed account's id or address).
                let id = find(client, Kind::Account, &a, client.lookup).await?.unwrap_or(a);
                query.push(format!("account={id}"));
            }
            let mut response = client.get(&format!("/api/audit/export?{}", query.join("&"))).await?;
            // `x-ledger-positions: FROM-TO`: one line per position, then the trailer.
            let lines = response
                .headers()
                .get("x-ledger-positions")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once('-'))
                .and_then(|(a, b)| Some(b.parse::<u64>().ok()?.saturating_sub(a.parse::<u64>().ok()?) + 1))
                .unwrap_or(0);
            let started = std::time::Instant::now();
            let bar = super::progress::positions(lines, "exporting");
            let mut written = 0u64;
            let mut stdout = std::io::stdout().lock();
            while let Some(chunk) = response.chunk().await.context("reading the export")? {
                stdout.write_all(&chunk)?;
                written += chunk.iter().filter(|b| **b == b'\n').count() as u64;
                bar.set_position(written);
            }
            stdout.flush()?;
            bar.finish_and_clear();
            eprintln!(
                "exported {}",
                super::progress::rate(written.saturating_sub(1), started).replace(" events", " records")
            );
        }
        AuditCommand::Checkpoint => {
            let v: serde_json::Value = client.get("/api/audit/checkpoint").await?.json().await?;
            emit(format_args!("{}:{}", v["position"], printable(v["hash"].as_str().unwrap_or_default())));
        }
        AuditCommand::Verify { .. } => unreachable!("verify runs offline"),
    }
    Ok(())
}

pub(super) fn run_offline(command: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::Verify { file, data_dir, checkpoint } = command else { bail!("not an offline command") };
    if let Some(dir) = data_dir {
        return super::verify_store(&dir);
    }
    let Some(file) = file else { bail!("give an export file, or --data-dir") };
    if crate::backup::is_backup_file(&file) {
        // A backup file (`ledger backup`): its chain and digest.
        if checkpoint.is_some() {
            bail!("--checkpoint applies to exports; a backup is checked whole");
        }
        let summary = crate::backup::verify_file(&file, |_, _| {})?;
        emit(format_args!(
            "ok: backup of positions 1..={}, {} records, head hash {}",
            summary.last_seq, summary.records, summary.last_hash
        ));
        return Ok(());
    }
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{} is neither an audit export (NDJSON) nor a ledger backup", file.display()))?;
    let checkpoint = match checkpoint {
        None => None,
        Some(c) => {
            let parsed =
                c.split_once(':').and_then(|(s, h)| Some((s.parse().ok()?, ledger_events::Digest::from_hex(h)?)));
            Some(parsed.with_context(|| format!("{c:?} is not POSITION:HASH"))?)
        }
    };
    match verify_export(&text, checkpoint) {
        Ok(v) => {
            let grew = match checkpoint {
                Some((position, _)) => format!("; the checkpoint at position {position} is in it: the log only grew"),
                None => String::new(),
            };
            emit(format_args!(
                "ok: positions {}..={}, {} records in full ({} erased, {} with secrets redacted), {} skipped, last hash {}{grew}",
                v.from, v.last_seq, v.records, v.erased, v.redacted, v.skipped, v.last_hash
            ));
            Ok(())
        }
        Err(fault) => bail!("{} is not a faithful export: {fault}", file.display()),
    }
}

/// The id of the account that was ever created or renamed with the address
/// `given`, from the log (the change feed's AccountCreated and AccountRenamed
/// records): for one destroyed since. Several such accounts are refused with
/// their ids.
async fn ever_addressed(client: &Client, given: &str) -> anyhow::Result<Option<String>> {
    if !given.contains('@') {
        return Ok(None);
    }
    let wanted = given.to_lowercase();
    let response = client
        .get_with_accept("/api/feed?after=0&follow=false&types=AccountCreated,AccountRenamed", "application/x-ndjson")
        .await?;
    let text = response.text().await.context("reading the feed")?;
    let mut ids: Vec<String> = Vec::new();
    for line in text.lines() {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let payload = &record["payload"];
        let had = ["emailAddress", "oldEmailAddress", "newEmailAddress"]
            .iter()
            .any(|k| payload[*k].as_str().is_some_and(|a| a.eq_ignore_ascii_case(&wanted)));
        if let Some(id) = payload["accountId"].as_str().filter(|_| had)
            && !ids.iter().any(|i| i == id)
        {
            ids.push(id.to_owned());
        }
    }
    match ids.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        several => {
            bail!("{given:?} was the address of {} accounts (ids {}); give the id", several.len(), several.join(", "))
        }
    }
}
