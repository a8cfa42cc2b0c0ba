//! The append-only log in fjall: headers and payloads keyed by big-endian position.
//!
//! Nothing here rewrites or deletes a header. `stage` only adds records to a write
//! batch the caller commits, so the caller can put projection updates into the same
//! atomic batch.

use std::path::{Path, PathBuf};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, Readable, Snapshot};

use crate::chain::{ChainError, ChainFault, ChainTail, ChainVerifier};
use crate::codec::{self, seq_key};
use crate::record::{Digest, Record};
use crate::values::UtcDateTime;

/// Keyspace holding record headers, key = position (u64 BE).
pub const HEADERS_KEYSPACE: &str = "log_headers";
/// Keyspace holding record payloads, key = position (u64 BE).
pub const PAYLOADS_KEYSPACE: &str = "log_payloads";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage error: {0}")]
    Storage(#[from] fjall::Error),
    #[error("corrupt event log in {path}: {source}", path = path.display())]
    Corrupt { path: PathBuf, source: ChainError },
    /// The Merkle tree lacks a node it must have (it is damaged; it is
    /// derived from the log, so removing `log_tree` rebuilds it).
    #[error("the Merkle tree (keyspace log_tree) lacks its node at level {level}, index {index}")]
    MissingNode { level: u32, index: u64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Handle to the two log keyspaces of a fjall database.
#[derive(Clone)]
pub struct EventLog {
    path: PathBuf,
    headers: Keyspace,
    payloads: Keyspace,
}

impl EventLog {
    /// Opens (creating if needed) the log keyspaces in `db`, which lives at `path`.
    pub fn open(db: &Database, path: &Path) -> Result<Self> {
        Ok(EventLog {
            path: path.to_owned(),
            headers: db.keyspace(HEADERS_KEYSPACE, KeyspaceCreateOptions::default)?,
            payloads: db.keyspace(PAYLOADS_KEYSPACE, KeyspaceCreateOptions::default)?,
        })
    }

    /// The two keyspaces, for maintenance (flush and compaction).
    pub fn keyspaces(&self) -> [&Keyspace; 2] {
        [&self.headers, &self.payloads]
    }

    /// The data directory the log lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The error for a chain fault found in this log, naming its file.
    pub fn corrupt(&self, source: ChainError) -> Error {
        Error::Corrupt { path: self.path.join(HEADERS_KEYSPACE), source }
    }

    /// Adds a sealed record to `batch`.
    pub fn stage(&self, batch: &mut OwnedWriteBatch, record: &Record) {
        let key = seq_key(record.header.seq);
        batch.insert(&self.headers, key, codec::encode_header(&record.header));
        if let Some(payload) = &record.payload {
            batch.insert(&self.payloads, key, codec::encode_payload(payload));
        }
    }

    /// Writes records straight into tables (fjall's ingestion: no memtable,
    /// no journal), for filling an empty log (a restore): `fill` is called
    /// once with a `push` for each record, in position order; the records are
    /// durable once this returns, and it returns how many. Errors: the first
    /// error of `fill`, a position not after the previous one (fjall's
    /// ingestion would panic on it), a storage error.
    pub fn ingest_with<E: From<Error>>(
        &self,
        fill: impl FnOnce(&mut dyn FnMut(&Record) -> Result<(), E>) -> Result<(), E>,
    ) -> Result<u64, E> {
        let mut headers = self.headers.start_ingestion().map_err(Error::from)?;
        let mut payloads = self.payloads.start_ingestion().map_err(Error::from)?;
        let mut last = 0u64;
        let mut written = 0u64;
        fill(&mut |record: &Record| {
            let seq = record.header.seq;
            if seq <= last {
                let fault = ChainFault::OutOfSequence { expected: last + 1, found: seq };
                return Err(self.corrupt(ChainError { seq, fault }).into());
            }
            last = seq;
            let key = seq_key(seq);
            headers.write(key, codec::encode_header(&record.header)).map_err(Error::from)?;
            if let Some(payload) = &record.payload {
                payloads.write(key, codec::encode_payload(payload)).map_err(Error::from)?;
            }
            written += 1;
            Ok(())
        })?;
        headers.finish().map_err(Error::from)?;
        payloads.finish().map_err(Error::from)?;
        Ok(written)
    }

    /// Adds the removal of a record's payload to `batch`: the one deletion the log
    /// allows, for erasure. The header, and so the chain, stays.
    pub fn erase_payload(&self, batch: &mut OwnedWriteBatch, seq: u64) {
        batch.remove(&self.payloads, seq_key(seq));
    }

    /// The position of the last record, 0 for an empty log.
    pub fn last_seq(&self, snap: &Snapshot) -> Result<u64> {
        match snap.last_key_value(&self.headers) {
            None => Ok(0),
            Some(guard) => {
                let key = guard.key()?;
                codec::decode_seq_key(&key)
                    .map_err(|e| self.corrupt(ChainError { seq: 0, fault: ChainFault::Undecodable(e) }))
            }
        }
    }

    /// The last position committed at or before `at` (0 if none). Commit times
    /// never go backwards along the log, so this is a binary search.
    pub fn position_at(&self, snap: &Snapshot, at: UtcDateTime) -> Result<u64> {
        let (mut lo, mut hi) = (1u64, self.last_seq(snap)? + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.read(snap, mid)?.map(|r| r.header.commit.committed_at) {
                Some(t) if t <= at => lo = mid + 1,
                _ => hi = mid,
            }
        }
        Ok(lo - 1)
    }

    /// The first position committed at or after `at` (one past the end if none).
    pub fn first_position_from(&self, snap: &Snapshot, at: UtcDateTime) -> Result<u64> {
        let before = UtcDateTime::from_millis(at.millis().saturating_sub(1));
        Ok(self.position_at(snap, before)? + 1)
    }

    /// Verifies the last `depth` records (links, hashes, payload hashes, contiguous
    /// positions) and returns the tail to append after. This is the open-time check:
    /// a damaged or truncated tail is an error naming the position and file.
    pub fn check_tail(&self, snap: &Snapshot, depth: u64) -> Result<ChainTail> {
        let last = self.last_seq(snap)?;
        if last == 0 {
            return Ok(ChainTail::GENESIS);
        }
        let first = last.saturating_sub(depth.max(1) - 1).max(1);
        let start_tail = if first == 1 {
            ChainTail::GENESIS
        } else {
            let prev = self.read_header_checked(snap, first - 1)?;
            ChainTail::after(&prev)
        };
        let mut verifier = ChainVerifier::from_tail(start_tail);
        self.verify_range(snap, first, &mut verifier)?;
        if verifier.tail().next_seq != last + 1 {
            return Err(self.corrupt(ChainError {
                seq: verifier.tail().next_seq,
                fault: ChainFault::OutOfSequence { expected: verifier.tail().next_seq, found: last + 1 },
            }));
        }
        Ok(verifier.tail())
    }

    fn read_header_checked(&self, snap: &Snapshot, seq: u64) -> Result<crate::RecordHeader> {
        let missing = || ChainError { seq, fault: ChainFault::OutOfSequence { expected: seq, found: seq + 1 } };
        let raw = snap.get(&self.headers, seq_key(seq))?.ok_or_else(|| self.corrupt(missing()))?;
        codec::decode_header(&raw).map_err(|e| self.corrupt(ChainError { seq, fault: ChainFault::Undecodable(e) }))
    }

    /// Verifies every record from `from` on, feeding `verifier`.
    pub fn verify_range(&self, snap: &Snapshot, from: u64, verifier: &mut ChainVerifier) -> Result<()> {
        for guard in snap.range(&self.headers, seq_key(from)..) {
            let (key, header) = guard.into_inner()?;
            let seq = codec::decode_seq_key(&key)
                .map_err(|e| self.corrupt(ChainError { seq: 0, fault: ChainFault::Undecodable(e) }))?;
            let payload = snap.get(&self.payloads, key)?;
            verifier.check_raw(seq, &header, payload.as_deref()).map_err(|e| self.corrupt(e))?;
        }
        Ok(())
    }

    /// Verifies the whole log from genesis; returns the tail and how many records were checked.
    pub fn verify_all(&self, snap: &Snapshot) -> Result<(ChainTail, u64)> {
        let mut verifier = ChainVerifier::from_genesis();
        self.verify_range(snap, 1, &mut verifier)?;
        Ok((verifier.tail(), verifier.checked()))
    }

    /// Reads one record.
    pub fn read(&self, snap: &Snapshot, seq: u64) -> Result<Option<Record>> {
        let Some(raw) = snap.get(&self.headers, seq_key(seq))? else {
            return Ok(None);
        };
        let header = codec::decode_header(&raw)
            .map_err(|e| self.corrupt(ChainError { seq, fault: ChainFault::Undecodable(e) }))?;
        let payload = self.payload(&header, snap.get(&self.payloads, seq_key(seq))?.as_deref())?;
        Ok(Some(Record { header, payload }))
    }

    fn payload(&self, header: &crate::RecordHeader, stored: Option<&[u8]>) -> Result<Option<crate::Payload>> {
        stored
            .map(|p| codec::decode_payload(header.format, p))
            .transpose()
            .map_err(|e| self.corrupt(ChainError { seq: header.seq, fault: ChainFault::BadPayload(e) }))
    }

    /// A stored header entry: its position and header, or corruption named.
    fn decode_stored(&self, key: &[u8], raw: &[u8]) -> Result<(u64, crate::RecordHeader)> {
        let seq = codec::decode_seq_key(key)
            .map_err(|e| self.corrupt(ChainError { seq: 0, fault: ChainFault::Undecodable(e) }))?;
        let header = codec::decode_header(raw)
            .map_err(|e| self.corrupt(ChainError { seq, fault: ChainFault::Undecodable(e) }))?;
        Ok((seq, header))
    }

    /// The record hash of each position from `from` on, in log order (headers
    /// only, no payload read): what the Merkle tree's leaves commit to.
    pub fn hashes<'a>(&'a self, snap: &'a Snapshot, from: u64) -> impl Iterator<Item = Result<(u64, Digest)>> + 'a {
        snap.range(&self.headers, seq_key(from)..).map(move |guard| {
            let (key, raw) = guard.into_inner()?;
            let (seq, header) = self.decode_stored(&key, &raw)?;
            Ok((seq, header.hash))
        })
    }

    /// Records from position `from` on, in log order. Headers and payloads are
    /// read as two ranges walked side by side (payload keys are a subset of
    /// header keys: an erased record has none), not a lookup per record.
    pub fn scan<'a>(&'a self, snap: &'a Snapshot, from: u64) -> impl Iterator<Item = Result<Record>> + 'a {
        let mut payloads = snap.range(&self.payloads, seq_key(from)..);
        // A payload read past the current header: it belongs to a later one.
        let mut ahead: Option<fjall::KvPair> = None;
        snap.range(&self.headers, seq_key(from)..).map(move |guard| {
            let (key, raw) = guard.into_inner()?;
            let (_, header) = self.decode_stored(&key, &raw)?;
            let stored = loop {
                let (payload_key, value) = match ahead.take() {
                    Some(pair) => pair,
                    None => match payloads.next() {
                        Some(guard) => guard.into_inner()?,
                        None => break None,
                    },
                };
                match payload_key.as_ref().cmp(key.as_ref()) {
                    // A payload without a header (never written so): not part of the log.
                    std::cmp::Ordering::Less => continue,
                    std::cmp::Ordering::Equal => break Some(value),
                    std::cmp::Ordering::Greater => {
                        ahead = Some((payload_key, value));
                        break None;
                    }
                }
            };
            let payload = self.payload(&header, stored.as_deref())?;
            Ok(Record { header, payload })
        })
    }
}
