//! `ledger backup FILE` (from a running server, or `--data-dir` from a
//! stopped store) and `ledger restore`: a verified, restorable copy written
//! beside its destination and renamed over it only once checked.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tokio_stream::StreamExt;

use super::client::Client;
use crate::audit::export::Bound;
use crate::audit::restore::{Source, restore};
use crate::backup::{Summary, verify_file, write_from_log};
use crate::store::ReadOnlyStore;

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The backup file to write (replaced only once the new copy is verified).
    pub file: PathBuf,
    /// Copy this stopped store instead of asking the server at --url.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A backup file (`ledger backup`) to restore from.
    #[arg(long, conflicts_with = "data_dir", required_unless_present = "data_dir")]
    pub from: Option<PathBuf>,
    /// A stopped store to restore from (it is only read).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The new store; it must be empty or not exist.
    #[arg(long, required_unless_present = "to_log", conflicts_with = "to_log")]
    pub to: Option<PathBuf>,
    /// Restore into a new, empty log stream of a NATS JetStream cluster
    /// instead (`nats://host:port[,…]`); nodes started on it with empty
    /// data directories then copy it (docs/operations.md, "Running a cluster").
    #[arg(long, value_name = "nats://HOST:PORT[,…]")]
    pub to_log: Option<String>,
    /// With --to-log: the new stream's name.
    #[arg(long, default_value = "LEDGER", requires = "to_log")]
    pub log_stream: String,
    /// With --to-log: copies the servers keep of each stream.
    #[arg(long, default_value_t = 3, requires = "to_log")]
    pub log_replicas: usize,
    /// With --to-log: the sealing.key kept with the backup, made the new
    /// cluster's (without it, TOTP and other sealed secrets are lost).
    #[arg(long, requires = "to_log")]
    pub sealing_key: Option<PathBuf>,
    /// Keep the log up to this RFC 3339 UTC time.
    #[arg(long, conflicts_with = "seq")]
    pub at: Option<ledger_events::values::UtcDateTime>,
    /// Keep the log up to this position (default: all of it).
    #[arg(long)]
    pub seq: Option<u64>,
}

use super::progress::positions as bar;

fn note(summary: &Summary, file: &Path) -> String {
    format!(
        "backup {} verified: {} records, positions 1..={}, head hash {}. It holds the log only: keep the \
         store's sealing.key with it (separately, like a password) — without that key, TOTP and other sealed \
         secrets cannot be used after a restore",
        file.display(),
        summary.records,
        summary.last_seq,
        summary.last_hash
    )
}

/// The temporary file beside `file` that becomes it.
/// Refuses a destination that is a directory, or a file that is not a
/// ledger backup (replacing an older backup is what rotation does).
fn beside(file: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    if file.is_dir() {
        bail!("{} is a directory: give the backup file's name (e.g. {}/ledger.bak)", file.display(), file.display());
    }
    if file.exists() && !crate::backup::is_backup_file(file) {
        bail!("{} exists and is not a ledger backup: choose another name, or remove it first", file.display());
    }
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        bail!("{} does not exist: create it first", dir.display());
    }
    tempfile::Builder::new()
        .prefix(".ledger-backup-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))
}

/// Checks the written copy, syncs it and puts it in place.
fn verify_and_keep(partial: tempfile::NamedTempFile, file: &Path) -> anyhow::Result<Summary> {
    partial.as_file().sync_all().context("syncing the backup")?;
    let check = bar(0, "verifying");
    let summary = verify_file(partial.path(), |seq, total| {
        check.set_length(total);
        check.set_position(seq);
    })
    .context("the copy did not verify; nothing was kept")?;
    check.finish_and_clear();
    partial
        .persist(file)
        .map_err(|e| anyhow::anyhow!("putting the backup in place at {}: {}", file.display(), e.error))?;
    Ok(summary)
}

/// `ledger backup --data-dir DIR FILE`.
pub(super) fn offline(data_dir: &Path, file: &Path) -> anyhow::Result<()> {
    let store = ReadOnlyStore::open(data_dir)?;
    let snap = store.db.snapshot();
    let last = store.log.last_seq(&snap)?;
    let partial = beside(file)?;
    let progress = bar(last, "copying");
    let out = std::io::BufWriter::new(partial.as_file());
    let (_, out) = write_from_log(&store.log, &snap, last, out, |seq| {
        progress.set_position(seq);
        true
    })?;
    drop(out);
    progress.finish_and_clear();
    let summary = verify_and_keep(partial, file)?;
    eprintln!("{}", note(&summary, file));
    Ok(())
}

/// `ledger backup FILE` from the server.
pub(super) async fn online(client: &Client, file: &Path) -> anyhow::Result<()> {
    let response = client.get_with_accept("/api/backup", "application/octet-stream").await?;
    let last: u64 = response
        .headers()
        .get("x-ledger-last-seq")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let partial = beside(file)?;
    let progress = bar(0, "copying");
    progress.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bytes} ({bytes_per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    progress.set_message(format!("copying positions 1..={last}"));
    let mut out = std::io::BufWriter::new(partial.as_file());
    let mut body = response.bytes_stream();
    // Ctrl-C ends the copy here, so that the partial file is removed.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let chunk = tokio::select! {
            chunk = body.next() => chunk,
            _ = &mut interrupted => bail!("interrupted; nothing was kept"),
        };
        let Some(chunk) = chunk else { break };
        let chunk = chunk.context("the server stopped sending the backup; nothing was kept")?;
        out.write_all(&chunk).context("writing the backup")?;
        progress.inc(chunk.len() as u64);
    }
    out.flush().context("writing the backup")?;
    drop(out);
    progress.finish_and_clear();
    let summary = verify_and_keep(partial, file)?;
    eprintln!("{}", note(&summary, file));
    Ok(())
}

/// `ledger restore`.
pub(super) fn run_restore(args: RestoreArgs) -> anyhow::Result<()> {
    let to = match (args.seq, args.at) {
        (Some(seq), _) => Some(Bound::Seq(seq)),
        (None, Some(at)) => Some(Bound::Time(at)),
        (None, None) => None,
    };
    let (source, shown) = match (&args.from, &args.data_dir) {
        (Some(file), _) => (Source::Backup(file), file.display().to_string()),
        (None, Some(dir)) => (Source::Store(dir), dir.display().to_string()),
        (None, None) => bail!("give --from BACKUP_FILE or --data-dir STORE"),
    };
    if let Some(urls) = &args.to_log {
        return restore_to_log(&args, urls, source, &shown, to);
    }
    let Some(target) = &args.to else { bail!("give --to DIR or --to-log nats://…") };
    let started = std::time::Instant::now();
    let progress = bar(0, "restoring");
    let restored = restore(source, target, to, super::progress::follow(&progress))
        .with_context(|| format!("restoring {shown} into {}", target.display()))?;
    progress.finish_and_clear();
    super::output::emit(format_args!(
        "restored positions 1..={} into {} (head hash {}; {})",
        restored.last_seq,
        target.display(),
        restored.last_hash,
        super::progress::rate(restored.last_seq, started)
    ));
    if matches!(source, Source::Backup(_)) {
        eprintln!(
            "copy the sealing.key kept with the backup into {} before `ledger serve` (without it, TOTP and other \
             sealed secrets cannot be used)",
            target.display()
        );
    }
    Ok(())
}

/// `ledger restore --to-log`: restores into a scratch store (the same cut,
/// checks and erasure rules as a restore into a directory), then appends its
/// log to the new, empty stream.
fn restore_to_log(
    args: &RestoreArgs,
    urls: &str,
    source: Source<'_>,
    shown: &str,
    to: Option<Bound>,
) -> anyhow::Result<()> {
    let sealing_key = match &args.sealing_key {
        None => None,
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let key: [u8; 32] =
                bytes.try_into().map_err(|_| anyhow::anyhow!("{} is not a 32-byte sealing key", path.display()))?;
            Some(key)
        }
    };
    let scratch = tempfile::tempdir().context("a scratch directory")?;
    let target = scratch.path().join("store");
    let progress = bar(0, "restoring");
    let restored = restore(source, &target, to, super::progress::follow(&progress))
        .with_context(|| format!("restoring {shown}"))?;
    progress.finish_and_clear();
    let records = {
        let ledger = crate::store::Ledger::open(&target, crate::store::Durability::Buffered)?;
        let snapshot = ledger.database().snapshot();
        let records = ledger.log().scan(&snapshot, 1).collect::<Result<Vec<_>, _>>()?;
        drop(snapshot);
        ledger.shutdown();
        records
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let started = std::time::Instant::now();
    let progress = bar(restored.last_seq, "appending");
    let commits = runtime.block_on(async {
        let log = crate::cluster::StreamLog::open(urls, &args.log_stream, args.log_replicas).await?;
        let payloads = log.payload_store(args.log_replicas).await?;
        if let Some(key) = sealing_key {
            payloads.adopt_sealing_key(key).await?;
        }
        crate::cluster::restore::append_all(&log, &payloads, records.into_iter(), |position| {
            progress.set_position(position)
        })
        .await
    });
    progress.finish_and_clear();
    let commits = commits.with_context(|| format!("appending to the log stream {} at {urls}", args.log_stream))?;
    super::output::emit(format_args!(
        "restored positions 1..={} into the log stream {} as {commits} commits (head hash {}; {})",
        restored.last_seq,
        args.log_stream,
        restored.last_hash,
        super::progress::rate(restored.last_seq, started)
    ));
    if sealing_key.is_none() {
        eprintln!(
            "no --sealing-key: the first node makes a new one, and TOTP and other secrets sealed before cannot be used"
        );
    }
    Ok(())
}
