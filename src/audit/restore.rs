//! Point-in-time restore: a new store holding the log up to a position or time,
//! chain intact, with projections rebuilt from it. The source is a stopped
//! store (read through a private copy, never written) or a backup file
//! (`ledger backup`). A restore that fails removes what it wrote.

use std::path::Path;

use fjall::PersistMode;
use ledger_events::{ChainTail, ChainVerifier, Record};
use ledger_projections::replay;

use super::export::{Bound, resolve_range};
use crate::StoreError;
use crate::backup::BackupReader;
use crate::store::open_parts;

/// Records copied per write batch.
const BATCH: usize = 8192;

/// Where a restore ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub last_seq: u64,
    pub last_hash: String,
}

/// Where a restore reads.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A stopped store's data directory.
    Store(&'a Path),
    /// A backup file.
    Backup(&'a Path),
}

/// Copies the log of `source` up to `to` (all of it when `None`) into the
/// empty `target` and builds its projections. `progress` gets (position,
/// last position of the source) as records are copied.
/// Errors: the target is not empty or is the source; the source is not a
/// store or a backup, is held by a running server, or is damaged.
pub fn restore(
    source: Source<'_>,
    target: &Path,
    to: Option<Bound>,
    mut progress: impl FnMut(u64, u64),
) -> Result<Restored, StoreError> {
    let not_empty = target.exists() && std::fs::read_dir(target).map(|mut d| d.next().is_some()).unwrap_or(true);
    if not_empty {
        return Err(StoreError::DataDir {
            path: target.display().to_string(),
            reason: "the restore target must be empty or not exist".into(),
        });
    }
    let source_path = match source {
        Source::Store(p) | Source::Backup(p) => p,
    };
    if source_path.canonicalize().ok() == target.canonicalize().ok() && target.exists() {
        return Err(StoreError::DataDir {
            path: target.display().to_string(),
            reason: "the target is the source".into(),
        });
    }
    let created = !target.exists();
    let result = match source {
        Source::Store(path) => from_store(path, target, to, &mut progress),
        Source::Backup(path) => from_backup(path, target, to, &mut progress),
    };
    if result.is_err() {
        // Nothing half-restored is left to be mistaken for a store.
        let _ = if created { std::fs::remove_dir_all(target) } else { clear(target) };
    }
    result
}

fn clear(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() { std::fs::remove_dir_all(&path)? } else { std::fs::remove_file(&path)? }
    }
    Ok(())
}

fn from_store(
    source: &Path,
    target: &Path,
    to: Option<Bound>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Restored, StoreError> {
    let source = crate::store::ReadOnlyStore::open(source)?;
    let (src_db, src_log) = (&source.db, &source.log);
    let snap = src_db.snapshot();
    src_log.check_tail(&snap, 1024)?;
    let (_, end) = resolve_range(src_log, &snap, None, to)?;
    let records = src_log.scan(&snap, 1).map(|r| r.map_err(StoreError::from));
    let restored = copy(records, target, |r| r.seq() <= end, end, progress)?;
    // The sealed secrets in the log need the key they were sealed with.
    let key = source.path().join(crate::secrets::SEALING_KEY_FILE);
    if let Ok(bytes) = std::fs::read(&key) {
        crate::secrets::write_private(&target.join(crate::secrets::SEALING_KEY_FILE), &bytes)
            .map_err(|e| StoreError::DataDir { path: target.display().to_string(), reason: e.to_string() })?;
    }
    Ok(restored)
}

fn from_backup(
    source: &Path,
    target: &Path,
    to: Option<Bound>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Restored, StoreError> {
    let file = std::fs::File::open(source)
        .map_err(|e| StoreError::DataDir { path: source.display().to_string(), reason: e.to_string() })?;
    let named = |e: StoreError| match e {
        StoreError::Backup(why) => StoreError::Backup(format!("{} {why}", source.display())),
        other => other,
    };
    let mut reader = BackupReader::new(std::io::BufReader::new(file)).map_err(named)?;
    let total = reader.announced_last_seq;
    let records = std::iter::from_fn(|| reader.next_record().transpose());
    let keep = |r: &Record| match to {
        None => true,
        Some(Bound::Seq(n)) => r.seq() <= n,
        // Commit times never go backwards along the log.
        Some(Bound::Time(t)) => r.header.commit.committed_at <= t,
    };
    let restored = copy(records, target, keep, total, progress).map_err(named)?;
    // The rest is read too: a backup that is not whole is refused.
    reader.finish().map_err(named)?;
    Ok(restored)
}

/// Copies the leading `records` that `keep` accepts into the new store in
/// `target`, checking the chain, then builds the projections.
fn copy(
    records: impl Iterator<Item = Result<Record, StoreError>>,
    target: &Path,
    keep: impl Fn(&Record) -> bool,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Restored, StoreError> {
    let (db, log, projections) = open_parts(target)?;
    let mut verifier = ChainVerifier::from_tail(ChainTail::GENESIS);
    let mut batch = db.batch();
    let mut pending = 0;
    for record in records {
        let record = record?;
        if !keep(&record) {
            break;
        }
        verifier.check(&record.header, record.payload.as_ref()).map_err(|e| log.corrupt(e))?;
        log.stage(&mut batch, &record);
        progress(record.seq(), total);
        pending += 1;
        if pending == BATCH {
            std::mem::replace(&mut batch, db.batch()).commit()?;
            pending = 0;
        }
    }
    batch.commit()?;
    db.persist(PersistMode::SyncAll)?;
    replay::rebuild(&db, &log, &projections)?;
    crate::store::flush_memtables(&log, &projections)?;
    let tail = verifier.tail();
    Ok(Restored { last_seq: tail.next_seq - 1, last_hash: tail.last_hash.to_hex() })
}
