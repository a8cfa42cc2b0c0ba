//! Point-in-time restore: a new store holding the log up to a position or time,
//! chain intact, with projections rebuilt from it. The source is a stopped
//! store (read through a private copy, never written) or a backup file
//! (`ledger backup`). A restore that fails removes what it wrote.

use std::path::Path;

use ledger_events::{ChainTail, ChainVerifier, ErasureCoverage, Record};
use ledger_projections::replay;

use super::export::{Bound, resolve_range};
use crate::StoreError;
use crate::backup::BackupReader;
use crate::store::{location, open_parts};

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
    if let Some(why) = overlap(source_path, target) {
        return Err(StoreError::DataDir { path: target.display().to_string(), reason: why.into() });
    }
    if let Some(Bound::Seq(0)) = to {
        return Err(StoreError::DataDir {
            path: source_path.display().to_string(),
            reason: "positions start at 1; --seq 0 would restore nothing".into(),
        });
    }
    // The store is built in a hidden folder and moved into place once whole:
    // an interrupted restore (Ctrl-C, a crash) leaves no target that looks
    // like a store. An existing (empty) target keeps its owner and mode, and
    // may be a mount point: the folder is then inside it; else beside it.
    let existing = target.is_dir();
    let parent =
        if existing { target } else { target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")) };
    location::create_private_dir(parent)
        .map_err(|e| StoreError::DataDir { path: parent.display().to_string(), reason: e.to_string() })?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".ledger-restore-");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
    let building = builder
        .tempdir_in(parent)
        .map_err(|e| StoreError::DataDir { path: parent.display().to_string(), reason: e.to_string() })?;
    let restored = match source {
        Source::Store(path) => from_store(path, building.path(), to, &mut progress)?,
        Source::Backup(path) => from_backup(path, building.path(), to, &mut progress)?,
    };
    if to.is_some() && restored.last_seq == 0 {
        return Err(StoreError::DataDir {
            path: source_path.display().to_string(),
            reason: "no commit is at or before that point: the restored store would be empty".into(),
        });
    }
    let failed = |e: std::io::Error| StoreError::DataDir { path: target.display().to_string(), reason: e.to_string() };
    if existing {
        // Renames inside the target; fjall's `version` marker goes last, so
        // a store is only recognised once every other part is there.
        let mut entries: Vec<_> =
            std::fs::read_dir(building.path()).map_err(failed)?.collect::<Result<_, _>>().map_err(failed)?;
        entries.sort_by_key(|e| e.file_name() == "version");
        for entry in entries {
            std::fs::rename(entry.path(), target.join(entry.file_name())).map_err(failed)?;
        }
        drop(building);
    } else {
        let built = building.keep();
        std::fs::rename(&built, target).map_err(|e| {
            let _ = std::fs::remove_dir_all(&built);
            failed(e)
        })?;
    }
    Ok(restored)
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
    past_the_end(to, src_log.last_seq(&snap)?, source.path())?;
    // Payloads stripped outside an erasure would replay to an older state:
    // what erasures cover is noted while copying, then over the rest of the
    // log, in one pass.
    let mut coverage = ErasureCoverage::default();
    let records = src_log
        .scan(&snap, 1)
        .map(|r| r.map_err(StoreError::from))
        .take_while(|r| r.as_ref().map_or(true, |r| r.seq() <= end))
        .inspect(|r| {
            if let Ok(r) = r {
                coverage.observe(r);
            }
        });
    let restored = copy(records, target, |_| true, end, progress)?;
    for record in src_log.scan(&snap, end + 1) {
        coverage.observe(&record?);
    }
    coverage.finish().map_err(|e| src_log.corrupt(e))?;
    cut_before_erasure(&coverage, end)?;
    // The sealed secrets in the log need the key they were sealed with.
    let key = source.path().join(crate::secrets::SEALING_KEY_FILE);
    match std::fs::read(&key) {
        Ok(bytes) => crate::secrets::write_private(&target.join(crate::secrets::SEALING_KEY_FILE), &bytes)
            .map_err(|e| StoreError::DataDir { path: target.display().to_string(), reason: e.to_string() })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::DataDir { path: key.display().to_string(), reason: e.to_string() }),
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
        .map_err(|e| StoreError::Backup(format!("{} cannot be read: {e}", source.display())))?;
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
    let (whole, coverage) = reader.finish_with_coverage().map_err(named)?;
    past_the_end(to, whole.last_seq, source)?;
    cut_before_erasure(&coverage, restored.last_seq)?;
    Ok(restored)
}

/// Why `target` may not be written for `source`: it is the source, inside
/// it (the restore would write into the store it only reads), or holds it.
fn overlap(source: &Path, target: &Path) -> Option<&'static str> {
    if target.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Some("the target path may not contain `..`");
    }
    let Ok(source) = source.canonicalize() else { return Some("the source cannot be resolved") };
    overlap_resolved(source, target)
}

fn overlap_resolved(source: std::path::PathBuf, target: &Path) -> Option<&'static str> {
    // The target may not exist yet: its nearest existing ancestor decides.
    let mut probe = target.to_path_buf();
    let mut rest = Vec::new();
    while !probe.exists() {
        let Some(name) = probe.file_name() else { return Some("the target cannot be resolved") };
        rest.push(name.to_owned());
        probe = probe.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    }
    let Ok(mut target) = probe.canonicalize() else { return Some("the target cannot be resolved") };
    target.extend(rest.iter().rev());
    if target == source {
        return Some("the target is the source");
    }
    if source.starts_with(&target) {
        return Some("the source store is inside the target");
    }
    // Every folder of the source, links followed (a keyspace on another disk).
    let mut folders = vec![source];
    let mut i = 0;
    // A store has a few dozen folders; a link to `/` is not walked whole.
    while i < folders.len() && folders.len() < 10_000 {
        let entries = std::fs::read_dir(&folders[i]).ok().into_iter().flatten().flatten();
        for entry in entries {
            if let Ok(real) = entry.path().canonicalize()
                && real.is_dir()
                && !folders.contains(&real)
            {
                folders.push(real);
            }
        }
        i += 1;
    }
    folders.iter().any(|f| target.starts_with(f)).then_some("the target is inside the source store")
}

/// Refuses a restore point that keeps records whose payloads an erasure
/// after it removed: the restored log would hold payload-less records and not
/// the erasure that explains them (and so would not verify).
fn cut_before_erasure(coverage: &ErasureCoverage, end: u64) -> Result<(), StoreError> {
    match coverage.erased_after(end) {
        None => Ok(()),
        Some((seq, by)) => Err(StoreError::DataDir {
            path: format!("position {end}"),
            reason: format!(
                "the erasure at position {by} removed the payload of position {seq}, which this point keeps: restore \
                 to position {by} or later (erased data cannot come back)"
            ),
        }),
    }
}

/// Refuses `--seq N` past the last position `last` of the source: the
/// operator asked for a point the source never reached.
fn past_the_end(to: Option<Bound>, last: u64, source: &Path) -> Result<(), StoreError> {
    match to {
        Some(Bound::Seq(n)) if n > last => Err(StoreError::DataDir {
            path: source.display().to_string(),
            reason: format!("its log ends at position {last}; position {n} is past it"),
        }),
        _ => Ok(()),
    }
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
    // One pass: each record is read, checked and decoded, written straight
    // into the new log's tables and folded into the projections in memory.
    let mut replayer = replay::Replayer::new(&db, &projections, replay::Write::Ingest);
    log.ingest_with(|push| {
        replay::decoded(
            records.take_while(move |r| r.as_ref().map_or(true, &keep)),
            |record| verifier.check(&record.header, record.payload.as_ref()).map_err(|e| log.corrupt(e).into()),
            |record, event| {
                push(&record)?;
                replayer.push_decoded(&record, event.as_ref())?;
                progress(record.seq(), total);
                Ok(())
            },
        )
    })?;
    replayer.finish()?;
    replay::mark_built(&db, &projections)?;
    crate::store::flush_memtables(&log, &projections)?;
    let tail = verifier.tail();
    Ok(Restored { last_seq: tail.next_seq - 1, last_hash: tail.last_hash.to_hex() })
}
