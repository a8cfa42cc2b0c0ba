//! Replay: folding log records into the projections, to catch up after a crash or
//! to rebuild them from nothing. It verifies the chain as it goes.

use fjall::{Database, PersistMode, Readable};
use ledger_events::codec::seq_key;
use ledger_events::{ChainTail, ChainVerifier, EventLog};

use crate::apply::{apply, apply_erased};
use crate::error::{Error, Result};
use crate::keys;
use crate::state;
use crate::store::Projections;
use crate::view::{Overlay, Space};

/// Records folded per write batch during replay.
const REPLAY_CHUNK: usize = 32_768;

/// Folds every record after the projections' applied position into them. Fails if
/// the projections are ahead of the log, which means the log lost records.
pub fn catch_up(db: &Database, log: &EventLog, projections: &Projections) -> Result<u64> {
    let snap = db.snapshot();
    let view = projections.view(snap.clone());
    let applied = state::applied_seq(&view)?;
    let last = log.last_seq(&snap)?;
    if applied > last {
        return Err(Error::Inconsistent(format!(
            "the event log in {} ends at position {last} but projections were built up to {applied}: \
             the log was truncated; restore it from a backup (projections are never trusted over the log)",
            log.path().display()
        )));
    }
    if applied == last {
        return Ok(0);
    }
    let tail = match applied {
        0 => ChainTail::GENESIS,
        n => ChainTail::after(
            &log.read(&snap, n)?.ok_or_else(|| Error::Inconsistent(format!("log record {n} is missing")))?.header,
        ),
    };
    let mut verifier = ChainVerifier::from_tail(tail);
    let mut folded = 0u64;
    let mut next = applied + 1;
    while next <= last {
        let snap = db.snapshot();
        let mut overlay = Overlay::new(projections.view(snap.clone()));
        let mut chunk_end = next;
        for record in log.scan(&snap, next).take(REPLAY_CHUNK) {
            let record = record?;
            verifier.check(&record.header, record.payload.as_ref()).map_err(|fault| log.corrupt(fault))?;
            let mutations = match record.event() {
                Some(decoded) => apply(&overlay, &record.header, &decoded?)?,
                // An erased payload: its AccountErased event restores the rest.
                None => apply_erased(&record.header),
            };
            overlay.apply(mutations);
            chunk_end = record.seq();
            folded += 1;
        }
        let mut batch = db.batch();
        projections.stage(&mut batch, overlay.take_mutations());
        batch.commit()?;
        next = chunk_end + 1;
    }
    db.persist(PersistMode::SyncAll)?;
    Ok(folded)
}

/// Drops the projections and replays the whole log. A crash part-way leaves a
/// marker, and `open_projections` finishes the rebuild on the next open.
pub fn rebuild(db: &Database, log: &EventLog, projections: &Projections) -> Result<u64> {
    let meta = projections.keyspace(Space::Meta);
    meta.insert(keys::META_REBUILDING, seq_key(0))?;
    db.persist(PersistMode::SyncAll)?;
    for space in [Space::Accounts, Space::Domains, Space::Roles, Space::Tenants, Space::Index, Space::Changes] {
        projections.keyspace(space).clear()?;
    }
    let stale: Vec<_> = db.snapshot().iter(meta).map(|g| g.key()).collect::<std::result::Result<_, _>>()?;
    for key in stale {
        if &*key != keys::META_REBUILDING {
            meta.remove(key)?;
        }
    }
    db.persist(PersistMode::SyncAll)?;
    let folded = catch_up(db, log, projections)?;
    meta.insert(keys::META_FORMAT, keys::PROJECTION_FORMAT.to_be_bytes())?;
    meta.remove(keys::META_REBUILDING)?;
    db.persist(PersistMode::SyncAll)?;
    Ok(folded)
}

/// Brings projections in line with the log on open: finishes an interrupted
/// rebuild, rebuilds projections of another layout ([`keys::PROJECTION_FORMAT`]),
/// or folds records that were logged but not yet projected.
pub fn open_projections(db: &Database, log: &EventLog, projections: &Projections) -> Result<u64> {
    let meta = projections.keyspace(Space::Meta);
    let snapshot = db.snapshot();
    let format = snapshot.get(meta, keys::META_FORMAT)?;
    let current = format.as_deref() == Some(&keys::PROJECTION_FORMAT.to_be_bytes()[..]);
    if !current || snapshot.contains_key(meta, keys::META_REBUILDING)? {
        return rebuild(db, log, projections);
    }
    catch_up(db, log, projections)
}
