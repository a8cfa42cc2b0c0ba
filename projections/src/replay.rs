//! Replay: folding log records into the projections, to catch up after a crash or
//! to rebuild them from nothing. It verifies the chain as it goes.

use fjall::{Database, PersistMode, Readable};
use ledger_events::codec::seq_key;
use ledger_events::{ChainTail, ChainVerifier, Event, EventLog, Record};

use crate::bulk::BulkFold;
use crate::error::{Error, Result};
use crate::keys;
use crate::state;
use crate::store::Projections;
use crate::view::{KeyValue, RawRead, SnapshotView, Space};

/// The keyspaces a rebuild replaces (meta keeps its rebuild marker and is
/// cleaned key by key).
const REPLACED: [Space; 6] =
    [Space::Accounts, Space::Domains, Space::Roles, Space::Tenants, Space::Index, Space::Changes];

/// Records folded in memory before their writes go to the store: bounds the
/// memory a replay holds (history and change entries grow with records).
pub const CHUNK_RECORDS: u64 = 2_000_000;
/// The same for [`Write::Batch`]: one write batch goes through fjall's
/// journal (64 MiB), so its chunks stay small.
const BATCH_CHUNK_RECORDS: u64 = 32_768;
/// Objects held decoded in memory before a chunk is written (each account is
/// about a kilobyte): 250k objects stay well under the 1 GiB budget.
const CHUNK_OBJECTS: usize = 250_000;

/// How a replay writes its chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// One atomic write batch per chunk (memtables, the journal): for a short
    /// tail on top of live projections.
    Batch,
    /// fjall's ingestion of sorted keys straight into tables (no memtable, no
    /// journal): for a replay no writer runs beside, many times faster.
    Ingest,
    /// A rebuild: the first chunk folds from nothing, and its ingestion also
    /// lays a tombstone over every other key the object, index and change
    /// keyspaces held (one sorted pass, merged with the new keys); later
    /// chunks as [`Write::Ingest`].
    Replace,
}

/// What a chunk folds on top of: nothing (the first chunk of a rebuild) or
/// the projections as a snapshot shows them.
enum Base {
    Nothing,
    View(SnapshotView),
}

impl RawRead for Base {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self {
            Base::Nothing => Ok(None),
            Base::View(view) => view.get(space, key),
        }
    }

    fn scan(&self, space: Space, prefix: &[u8], from: Option<&[u8]>, limit: usize) -> Result<Vec<KeyValue>> {
        match self {
            Base::Nothing => Ok(Vec::new()),
            Base::View(view) => view.scan(space, prefix, from, limit),
        }
    }
}

/// Reads `records`, checks each with `check`, decodes its event and hands
/// both to `each`, in order; stops at the first error of either side. (A
/// second thread for reading and decoding was measured: on two cores it
/// competes with fjall's compaction threads and gained nothing.)
pub fn decoded<I, E>(
    records: I,
    mut check: impl FnMut(&Record) -> std::result::Result<(), E>,
    mut each: impl FnMut(Record, Option<Event>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E>
where
    I: Iterator<Item = std::result::Result<Record, E>>,
    E: From<Error>,
{
    for record in records {
        let record = record?;
        check(&record)?;
        let event = record.event().transpose().map_err(|e| E::from(Error::from(e)))?;
        each(record, event)?;
    }
    Ok(())
}

/// Folds records into the projections in memory and writes each projection
/// key once per chunk ([`BulkFold`]); reads between chunks see what earlier
/// chunks wrote.
pub struct Replayer<'a> {
    db: &'a Database,
    projections: &'a Projections,
    write: Write,
    fold: Option<BulkFold<Base>>,
    folded: u64,
    /// Whether the next chunk is the first of a [`Write::Replace`].
    replacing: bool,
    chunk_records: u64,
}

impl<'a> Replayer<'a> {
    /// A replay into `projections` of `db`, on top of what they hold now.
    pub fn new(db: &'a Database, projections: &'a Projections, write: Write) -> Self {
        let chunk_records = if write == Write::Batch { BATCH_CHUNK_RECORDS } else { CHUNK_RECORDS };
        Replayer { db, projections, write, fold: None, folded: 0, replacing: write == Write::Replace, chunk_records }
    }

    /// Writes a chunk every `records` records at most (tests make chunk
    /// boundaries fall everywhere with small ones).
    pub fn with_chunk_records(mut self, records: u64) -> Self {
        self.chunk_records = records.max(1);
        self
    }

    /// Folds one record (already chain-checked by the caller). Errors: a
    /// payload that does not decode, an event that does not fit the state.
    pub fn push(&mut self, record: &Record) -> Result<()> {
        let event = record.event().transpose()?;
        self.push_decoded(record, event.as_ref())
    }

    /// Folds one record whose event the caller decoded (`None`: its payload
    /// was erased).
    pub fn push_decoded(&mut self, record: &Record, event: Option<&Event>) -> Result<()> {
        let fold = self.fold.get_or_insert_with(|| {
            BulkFold::new(match self.replacing {
                true => Base::Nothing,
                false => Base::View(self.projections.view(self.db.snapshot())),
            })
        });
        match event {
            Some(event) => fold.apply(&record.header, event)?,
            None => fold.apply_erased(&record.header),
        }
        self.folded += 1;
        if fold.folded() >= self.chunk_records || fold.objects() >= CHUNK_OBJECTS {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes what is folded so far.
    fn flush(&mut self) -> Result<()> {
        let Some(fold) = self.fold.take() else { return Ok(()) };
        let mutations = fold.finish()?;
        match self.write {
            Write::Batch => {
                let mut batch = self.db.batch();
                self.projections.stage(&mut batch, mutations);
                batch.commit()?;
            }
            Write::Ingest => self.projections.ingest(mutations, None)?,
            Write::Replace if self.replacing => {
                self.projections.ingest(mutations, Some((&self.db.snapshot(), &REPLACED)))?;
            }
            Write::Replace => self.projections.ingest(mutations, None)?,
        }
        self.replacing = false;
        Ok(())
    }

    /// Writes the rest and makes it durable; returns how many records were folded.
    pub fn finish(mut self) -> Result<u64> {
        self.flush()?;
        self.db.persist(PersistMode::SyncAll)?;
        Ok(self.folded)
    }
}

/// Folds every record after the projections' applied position into them. Fails if
/// the projections are ahead of the log, which means the log lost records.
pub fn catch_up(db: &Database, log: &EventLog, projections: &Projections) -> Result<u64> {
    catch_up_with(db, log, projections, Write::Batch, &mut |_, _| {})
}

/// [`catch_up`], writing as `write` says and telling `progress` (position,
/// last position) as it goes.
pub fn catch_up_with(
    db: &Database,
    log: &EventLog,
    projections: &Projections,
    write: Write,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64> {
    catch_up_in_chunks(db, log, projections, write, None, progress)
}

fn catch_up_in_chunks(
    db: &Database,
    log: &EventLog,
    projections: &Projections,
    write: Write,
    chunk_records: Option<u64>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64> {
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
    if applied == last && write != Write::Replace {
        return Ok(0);
    }
    let tail = match applied {
        0 => ChainTail::GENESIS,
        n => ChainTail::after(
            &log.read(&snap, n)?.ok_or_else(|| Error::Inconsistent(format!("log record {n} is missing")))?.header,
        ),
    };
    let mut verifier = ChainVerifier::from_tail(tail);
    let mut replayer = Replayer::new(db, projections, write);
    if let Some(records) = chunk_records {
        replayer = replayer.with_chunk_records(records);
    }
    decoded(
        log.scan(&snap, applied + 1).map(|r| r.map_err(Error::from)),
        |record| verifier.check(&record.header, record.payload.as_ref()).map_err(|fault| log.corrupt(fault).into()),
        |record, event| {
            replayer.push_decoded(&record, event.as_ref())?;
            progress(record.seq(), last);
            Ok(())
        },
    )?;
    // A rebuild of an empty log still replaces what the keyspaces held.
    if replayer.replacing {
        replayer.projections.ingest(Vec::new(), Some((&db.snapshot(), &REPLACED)))?;
    }
    replayer.finish()
}

/// Drops the projections and replays the whole log. A crash part-way leaves a
/// marker, and `open_projections` finishes the rebuild on the next open.
pub fn rebuild(db: &Database, log: &EventLog, projections: &Projections) -> Result<u64> {
    rebuild_with(db, log, projections, &mut |_, _| {})
}

/// [`rebuild`], telling `progress` (position, last position) as it goes.
pub fn rebuild_with(
    db: &Database,
    log: &EventLog,
    projections: &Projections,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64> {
    rebuild_in_chunks(db, log, projections, CHUNK_RECORDS, progress)
}

/// [`rebuild_with`], writing a chunk every `chunk_records` records at most
/// (tests make chunk boundaries fall everywhere with small ones).
pub fn rebuild_in_chunks(
    db: &Database,
    log: &EventLog,
    projections: &Projections,
    chunk_records: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64> {
    projections.keyspace(Space::Meta).insert(keys::META_REBUILDING, seq_key(0))?;
    db.persist(PersistMode::SyncAll)?;
    let meta = projections.keyspace(Space::Meta);
    let stale: Vec<_> = db.snapshot().iter(meta).map(|g| g.key()).collect::<std::result::Result<_, _>>()?;
    for key in stale {
        if &*key != keys::META_REBUILDING {
            meta.remove(key)?;
        }
    }
    db.persist(PersistMode::SyncAll)?;
    let folded = catch_up_in_chunks(db, log, projections, Write::Replace, Some(chunk_records), progress)?;
    meta.insert(keys::META_FORMAT, keys::PROJECTION_FORMAT.to_be_bytes())?;
    meta.remove(keys::META_REBUILDING)?;
    db.persist(PersistMode::SyncAll)?;
    Ok(folded)
}

/// Records that the projections were built from the whole log in today's
/// layout ([`keys::PROJECTION_FORMAT`]), as a rebuild does at its end: for a
/// store filled by [`Replayer`] from its first record (a restore).
pub fn mark_built(db: &Database, projections: &Projections) -> Result<()> {
    projections.keyspace(Space::Meta).insert(keys::META_FORMAT, keys::PROJECTION_FORMAT.to_be_bytes())?;
    db.persist(PersistMode::SyncAll)?;
    Ok(())
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
