//! Point-in-time restore: a new store holding the log up to a position or time,
//! chain intact, with projections rebuilt from it. The source is only read.

use std::path::Path;

use fjall::PersistMode;
use ledger_events::{ChainTail, ChainVerifier};
use ledger_projections::replay;

use super::export::{Bound, resolve_range};
use crate::StoreError;
use crate::store::open_parts;

/// Records copied per write batch.
const BATCH: usize = 8192;

/// Where a restore ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub last_seq: u64,
    pub last_hash: String,
}

/// Copies the log of `source` up to `to` into the empty `target` and builds its
/// projections. `source` must not be open in a running server.
pub fn restore(source: &Path, target: &Path, to: Bound) -> Result<Restored, StoreError> {
    let not_empty = target.exists() && std::fs::read_dir(target).map(|mut d| d.next().is_some()).unwrap_or(true);
    if not_empty {
        return Err(StoreError::DataDir {
            path: target.display().to_string(),
            reason: "the restore target must be empty or not exist".into(),
        });
    }
    if source.canonicalize().ok() == target.canonicalize().ok() && target.exists() {
        return Err(StoreError::DataDir {
            path: target.display().to_string(),
            reason: "the target is the source".into(),
        });
    }
    let (src_db, src_log, _) = open_parts(source)?;
    let snap = src_db.snapshot();
    src_log.check_tail(&snap, 1024)?;
    let (_, end) = resolve_range(&src_log, &snap, None, Some(to))?;
    let (db, log, projections) = open_parts(target)?;
    let mut verifier = ChainVerifier::from_tail(ChainTail::GENESIS);
    let mut batch = db.batch();
    let mut pending = 0;
    for record in src_log.scan(&snap, 1) {
        let record = record?;
        if record.seq() > end {
            break;
        }
        verifier.check(&record.header, record.payload.as_ref()).map_err(|e| src_log.corrupt(e))?;
        log.stage(&mut batch, &record);
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
