//! Making removed data physically gone (erasure's last step): every keyspace
//! flushed and fully compacted, fjall's journal retired, and the replaced
//! table files deleted once no reader can reach them.

use super::files::{compact_fully, journal_files, remove_files, wait_for_sealed_memtables};
use super::{
    ERASURE_SETTLE_LIMIT, Inner, ReadState, SCRATCH_KEYSPACE, StoreError, all_keyspaces, flush_memtables, location,
};

impl Inner {
    /// Flushes every keyspace and compacts it fully, so that data removed from the
    /// store up to position `through` (erased payloads, superseded projection
    /// values) is gone from disk, not only from view; returns once no file of
    /// the data directory holds it (or fails with [`StoreError::ErasurePending`]).
    /// First waits for readers that began before `through` (their snapshots
    /// would make the compaction keep the data), then holds the writer while
    /// it compacts. Slow; run it off the executor.
    pub(crate) fn compact(&self, through: u64) -> Result<(), StoreError> {
        self.wait_for_readers(|r| r.last_seq < through, "readers that began before it (a long export?)")?;
        let inner = self;
        // A private copy left by a killed tool links tables this would replace.
        location::sweep_private_copies(inner.log.path());
        let journals = journal_files(inner.log.path())?;
        let mut replaced = Vec::new();
        let compacted_at = {
            let _paused = self.write_gate.lock().unwrap_or_else(|p| p.into_inner());
            flush_memtables(&inner.log, &inner.projections)?;
            for keyspace in all_keyspaces(&inner.log, &inner.projections) {
                wait_for_sealed_memtables(keyspace)?;
                replaced.push((keyspace, compact_fully(keyspace)?));
            }
            inner.db.persist(fjall::PersistMode::SyncAll)?;
            self.retire_journal(&journals)?;
            self.generation()
        };
        // Writes go on while readers that may still use the tables the
        // compaction replaced are waited for; then those files go.
        self.wait_for_readers(|r| r.generation < compacted_at, "readers that began during it")?;
        for (keyspace, files) in replaced {
            remove_files(keyspace, &files)?;
        }
        Ok(())
    }

    /// Publishes a new read snapshot of the same log position, so that the
    /// published one no longer holds older data in place. Only while writes
    /// are paused.
    fn republish(&self) {
        let inner = self;
        let last_seq = self.read_state().last_seq;
        inner.publish(inner.projections.view(inner.db.snapshot()), last_seq);
    }

    /// Waits until no reader holds a read state that `older` says is too old
    /// (its snapshot would keep erased data in files); gives up after
    /// [`ERASURE_SETTLE_LIMIT`] with [`StoreError::ErasurePending`] naming `who`.
    fn wait_for_readers(&self, older: impl Fn(&ReadState) -> bool, who: &str) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            let held = {
                let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
                published.retain(|w| w.strong_count() > 0);
                published.iter().filter(|w| w.upgrade().is_some_and(|r| older(&r))).count()
            };
            if held == 0 {
                return Ok(());
            }
            if started.elapsed() > ERASURE_SETTLE_LIMIT {
                return Err(StoreError::ErasurePending {
                    held: format!("{held} {who} still read the erased data"),
                    waited: ERASURE_SETTLE_LIMIT,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(200));
        }
    }

    /// The generation of the read state published last.
    fn generation(&self) -> u64 {
        self.read_state().generation
    }

    /// Makes fjall seal and delete its write-ahead journal, which still holds the
    /// bytes of everything written since it was opened. fjall offers no call for
    /// that: it seals the journal at a flush once the journal is past 64 MB, and
    /// deletes a sealed journal once every keyspace is flushed past it. So this
    /// writes 65 MB of filler into a scratch keyspace, flushes it (sealing and
    /// evicting the old journal), and drops the scratch keyspace. Costly, and only
    /// for erasure. The erasure test scans the data directory to catch a fjall
    /// upgrade that changes this behaviour.
    /// `journals` are the journal files present before; each must be gone
    /// afterwards. fjall deletes a sealed journal at a later flush, so this
    /// checks after a few small flushes, and writes the filler again (at most
    /// three times in all) if a journal is still there.
    fn retire_journal(&self, journals: &[std::path::PathBuf]) -> Result<(), StoreError> {
        const FILLER_CHUNK: usize = 1 << 20;
        const FILLER_CHUNKS: u32 = 65;
        let db = &self.db;
        let mut filler = vec![0u8; FILLER_CHUNK];
        // Incompressible, in case journal compression is ever turned on.
        getrandom::fill(&mut filler).map_err(|e| StoreError::Internal(format!("no random filler: {e}")))?;
        let gone = || journals.iter().all(|j| !j.exists());
        for _ in 0..3 {
            for chunks in std::iter::once(FILLER_CHUNKS).chain([1, 1, 1]) {
                let scratch = db.keyspace(SCRATCH_KEYSPACE, fjall::KeyspaceCreateOptions::default)?;
                for i in 0..chunks {
                    scratch.insert(i.to_be_bytes(), if chunks == 1 { &filler[..1] } else { filler.as_slice() })?;
                }
                // A snapshot after the filler lets fjall free what compaction replaced.
                self.republish();
                scratch.rotate_memtable_and_wait()?;
                wait_for_sealed_memtables(&scratch)?;
                db.delete_keyspace(scratch)?;
                db.persist(fjall::PersistMode::SyncAll)?;
                if gone() {
                    return Ok(());
                }
            }
        }
        let left: Vec<String> = journals.iter().filter(|j| j.exists()).map(|j| j.display().to_string()).collect();
        Err(StoreError::Internal(format!("fjall kept the journals {left:?} that hold erased data")))
    }
}
