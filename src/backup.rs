//! The backup file (`ledger backup`, `GET /api/backup`): the log, record by
//! record exactly as stored, taken from one snapshot, so a copy made while
//! the service runs is consistent; `ledger restore --from FILE` rebuilds a
//! store (projections included) from it.
//!
//! Layout (all integers big-endian):
//!
//! ```text
//! "LEDGERBK"  u8 format (1)  u64 last position of the snapshot
//! { u32 length (> 0)  record (codec::encode_record) } ...
//! u32 0  u64 records  u64 last position  [32] last record hash
//! [32] blake3 of every byte before it
//! ```
//!
//! A writer and a reader both check the hash chain record by record; a reader
//! also checks the trailer (a truncated or damaged file is refused) and that
//! every payload-less record is listed by an AccountErased record (payloads
//! stripped to bring back an older state are refused). The digest has no
//! key: compare the head hash with a checkpoint kept elsewhere
//! (`ledger audit checkpoint`) to know the backup is the log you had. The
//! file holds the log only: not the sealing key (`sealing.key`, needed to
//! use TOTP and other sealed secrets), not the administrator's hash.

use std::io::{Read, Write};

use ledger_events::codec::{decode_record, encode_record};
use ledger_events::{ChainTail, ChainVerifier, Digest, ErasureCoverage, Record};

use crate::StoreError;

/// The first bytes of every backup.
pub const MAGIC: &[u8; 8] = b"LEDGERBK";
/// The layout this build writes and reads.
pub const FORMAT: u8 = 1;
/// Longest record frame accepted (a record is far smaller).
/// (A record is bounded by the request size, 10 MB by default; the writer
/// refuses a larger one, so every backup it writes reads back.)
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Whether the file at `path` starts as a backup does (only its head is read).
pub fn is_backup_file(path: &std::path::Path) -> bool {
    let mut head = [0u8; 8];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok_and(|()| &head == MAGIC)
}

/// What a complete backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    pub last_seq: u64,
    pub last_hash: Digest,
}

fn fault(what: impl std::fmt::Display) -> StoreError {
    StoreError::Backup(what.to_string())
}

/// Writes a backup to `out`, checking the chain of what it is given.
pub struct BackupWriter<W: Write> {
    out: W,
    hasher: blake3::Hasher,
    verifier: ChainVerifier,
}

impl<W: Write> BackupWriter<W> {
    /// Starts a backup of a snapshot whose last position is `last_seq`.
    pub fn new(mut out: W, last_seq: u64) -> Result<Self, StoreError> {
        let mut hasher = blake3::Hasher::new();
        let mut head = MAGIC.to_vec();
        head.push(FORMAT);
        head.extend_from_slice(&last_seq.to_be_bytes());
        out.write_all(&head).map_err(fault)?;
        hasher.update(&head);
        Ok(BackupWriter { out, hasher, verifier: ChainVerifier::from_genesis() })
    }

    /// Appends the next record (positions 1, 2, … in order).
    pub fn push(&mut self, record: &Record) -> Result<(), StoreError> {
        self.verifier
            .check(&record.header, record.payload.as_ref())
            .map_err(|e| fault(format!("the store's chain is broken: {e}")))?;
        let frame = encode_record(record);
        if frame.len() > MAX_FRAME {
            return Err(fault(format!(
                "cannot hold position {}: its record is {} bytes, more than {MAX_FRAME}",
                record.seq(),
                frame.len()
            )));
        }
        let mut bytes = (frame.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&frame);
        self.out.write_all(&bytes).map_err(fault)?;
        self.hasher.update(&bytes);
        Ok(())
    }

    /// Writes the trailer; returns what the backup holds and the writer.
    pub fn finish(mut self) -> Result<(Summary, W), StoreError> {
        let tail = self.verifier.tail();
        let summary =
            Summary { records: self.verifier.checked(), last_seq: tail.next_seq - 1, last_hash: tail.last_hash };
        let mut trailer = 0u32.to_be_bytes().to_vec();
        trailer.extend_from_slice(&summary.records.to_be_bytes());
        trailer.extend_from_slice(&summary.last_seq.to_be_bytes());
        trailer.extend_from_slice(&summary.last_hash.0);
        self.hasher.update(&trailer);
        trailer.extend_from_slice(self.hasher.finalize().as_bytes());
        self.out.write_all(&trailer).map_err(fault)?;
        self.out.flush().map_err(fault)?;
        Ok((summary, self.out))
    }
}

/// Reads a backup record by record, checking the chain; [`BackupReader::finish`]
/// checks the trailer.
pub struct BackupReader<R: Read> {
    input: R,
    hasher: blake3::Hasher,
    verifier: ChainVerifier,
    coverage: ErasureCoverage,
    /// The last position the file says it holds (for progress).
    pub announced_last_seq: u64,
    ended: bool,
}

impl<R: Read> BackupReader<R> {
    /// Reads the file's head. Errors: not a backup, or another format.
    pub fn new(mut input: R) -> Result<Self, StoreError> {
        let mut head = [0u8; 17];
        input.read_exact(&mut head).map_err(|_| fault("is not a ledger backup (too short)"))?;
        if &head[..8] != MAGIC {
            return Err(fault("is not a ledger backup (no LEDGERBK header)"));
        }
        if head[8] != FORMAT {
            return Err(fault(format!("has format {}, this build reads {FORMAT}", head[8])));
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(&head);
        let announced_last_seq = u64::from_be_bytes(head[9..17].try_into().expect("8 bytes"));
        Ok(BackupReader {
            input,
            hasher,
            verifier: ChainVerifier::from_genesis(),
            coverage: ErasureCoverage::default(),
            announced_last_seq,
            ended: false,
        })
    }

    fn exact(&mut self, buf: &mut [u8]) -> Result<(), StoreError> {
        self.input.read_exact(buf).map_err(|_| fault("is truncated (no trailer): the copy did not finish"))?;
        self.hasher.update(buf);
        Ok(())
    }

    /// The next record, or `None` at the trailer.
    pub fn next_record(&mut self) -> Result<Option<Record>, StoreError> {
        if self.ended {
            return Ok(None);
        }
        let mut len = [0u8; 4];
        self.exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            self.ended = true;
            return Ok(None);
        }
        if len > MAX_FRAME {
            return Err(fault(format!("has a record of {len} bytes: damaged")));
        }
        let mut frame = vec![0u8; len];
        self.exact(&mut frame)?;
        let record = decode_record(&frame).map_err(|e| fault(format!("has an undecodable record: {e}")))?;
        self.verifier
            .check(&record.header, record.payload.as_ref())
            .map_err(|e| fault(format!("does not hold an intact chain: {e}")))?;
        self.coverage.observe(&record);
        Ok(Some(record))
    }

    /// Reads the rest (checking it) and the trailer; what the backup holds.
    pub fn finish(self) -> Result<Summary, StoreError> {
        self.finish_with_coverage().map(|(summary, _)| summary)
    }

    /// [`BackupReader::finish`], also giving the erasures it saw.
    pub fn finish_with_coverage(mut self) -> Result<(Summary, ErasureCoverage), StoreError> {
        while self.next_record()?.is_some() {}
        let mut trailer = [0u8; 48];
        self.exact(&mut trailer)?;
        let digest = self.hasher.finalize();
        let mut stored = [0u8; 32];
        self.input.read_exact(&mut stored).map_err(|_| fault("is truncated (no digest)"))?;
        if digest.as_bytes() != &stored {
            return Err(fault("does not match its digest: altered or damaged"));
        }
        let mut extra = [0u8; 1];
        if self.input.read(&mut extra).map_err(fault)? != 0 {
            return Err(fault("has bytes after its trailer"));
        }
        let tail: ChainTail = self.verifier.tail();
        let summary = Summary {
            records: u64::from_be_bytes(trailer[..8].try_into().expect("8 bytes")),
            last_seq: u64::from_be_bytes(trailer[8..16].try_into().expect("8 bytes")),
            last_hash: Digest(trailer[16..48].try_into().expect("32 bytes")),
        };
        let read = Summary { records: self.verifier.checked(), last_seq: tail.next_seq - 1, last_hash: tail.last_hash };
        if summary != read || summary.last_seq != self.announced_last_seq {
            return Err(fault("has a trailer that does not match its records"));
        }
        // The digest has no key: it shows damage, not intent. Payloads
        // dropped outside an erasure are caught here.
        self.coverage.finish().map_err(|e| fault(format!("was altered: {e}")))?;
        Ok((summary, self.coverage))
    }
}

/// Writes a backup of the log in `snap` (positions 1..=`last_seq`) to `out`;
/// `progress` gets each position written.
pub fn write_from_log<W: Write>(
    log: &ledger_events::EventLog,
    snap: &fjall::Snapshot,
    last_seq: u64,
    out: W,
    mut progress: impl FnMut(u64) -> bool,
) -> Result<(Summary, W), StoreError> {
    let mut writer = BackupWriter::new(out, last_seq)?;
    for record in log.scan(snap, 1) {
        let record = record?;
        if record.seq() > last_seq {
            break;
        }
        writer.push(&record)?;
        if !progress(record.seq()) {
            return Err(fault("was abandoned by its reader"));
        }
    }
    writer.finish()
}

/// Checks a whole backup file; what it holds.
pub fn verify_file(path: &std::path::Path, progress: impl FnMut(u64, u64)) -> Result<Summary, StoreError> {
    let file = std::fs::File::open(path)
        .map_err(|e| StoreError::DataDir { path: path.display().to_string(), reason: e.to_string() })?;
    let mut reader = BackupReader::new(std::io::BufReader::new(file))?;
    let mut progress = progress;
    let total = reader.announced_last_seq;
    while let Some(record) = reader.next_record()? {
        progress(record.seq(), total);
    }
    reader.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_backup_round_trips_and_damage_is_refused() {
        let (summary, bytes) = BackupWriter::new(Vec::new(), 0).unwrap().finish().unwrap();
        assert_eq!(summary.records, 0);
        let read = BackupReader::new(bytes.as_slice()).unwrap().finish().unwrap();
        assert_eq!(read, summary);
        for cut in [0, 5, 17, bytes.len() - 1] {
            let short = &bytes[..cut];
            let refused = BackupReader::new(short).and_then(|r| r.finish());
            assert!(refused.is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 40;
        flipped[last] ^= 1;
        assert!(BackupReader::new(flipped.as_slice()).and_then(|r| r.finish()).is_err());
    }
}
