//! The hash chain: sealing new records onto the tail and verifying runs of records.

use uuid::Uuid;

use crate::codec::{self, CodecError};
use crate::event::Event;
use crate::record::{CommitMeta, Digest, Payload, Record, RecordHeader};

/// The end of the chain: the next position and the hash new records link to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainTail {
    pub next_seq: u64,
    pub last_hash: Digest,
}

impl ChainTail {
    /// The tail of an empty log. Positions start at 1; the genesis link is all zeros.
    pub const GENESIS: ChainTail = ChainTail { next_seq: 1, last_hash: Digest::ZERO };

    /// The tail right after `header`.
    pub fn after(header: &RecordHeader) -> Self {
        ChainTail { next_seq: header.seq + 1, last_hash: header.hash }
    }

    /// Seals `event` as the next record (format [`codec::HEADER_FORMAT`]) and
    /// advances the tail. Pure: the event id, commit metadata and `entropy` (32
    /// random bytes that salt the payload hash and the secrets' commitments,
    /// never stored) come from the caller.
    pub fn seal(&mut self, commit: &CommitMeta, event_id: Uuid, event: &Event, entropy: &[u8; 32]) -> Record {
        let (event_type, schema_version, payload) = codec::seal_event(event, entropy);
        let mut header = RecordHeader {
            format: codec::HEADER_FORMAT,
            seq: self.next_seq,
            event_id,
            commit: commit.clone(),
            event_type: event_type.to_owned(),
            schema_version,
            payload_len: None,
            payload_hash: codec::payload_hash(&payload),
            prev_hash: self.last_hash,
            hash: Digest::ZERO,
        };
        header.hash = codec::record_hash(&header);
        *self = ChainTail::after(&header);
        Record { header, payload: Some(payload) }
    }
}

/// What is wrong at a position of the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainFault {
    #[error("record does not decode: {0}")]
    Undecodable(CodecError),
    #[error("expected position {expected}, found {found} (a record was removed, inserted or reordered)")]
    OutOfSequence { expected: u64, found: u64 },
    #[error("previous-hash link {found} does not match the preceding record's hash {expected}")]
    BrokenLink { expected: Digest, found: Digest },
    #[error("record hash {stored} does not match its contents (computed {computed})")]
    HashMismatch { stored: Digest, computed: Digest },
    #[error("payload does not match the payload hash in its header")]
    PayloadMismatch,
    #[error("payload layout does not match the record format: {0}")]
    BadPayload(CodecError),
    /// A payload is gone but no AccountErased record lists its position: it
    /// was removed outside an erasure (the chain cannot show it, since a
    /// record's hash covers only its payload's hash).
    #[error("the payload is missing and no AccountErased record lists this position (removed outside an erasure)")]
    PayloadMissing,
    /// An AccountErased record lists this position, yet its payload is there.
    #[error("an AccountErased record lists this position, yet its payload is present (erased data put back)")]
    ErasedPayloadPresent,
}

/// Checks, over a whole log, that every record without a payload is listed
/// by an AccountErased record: the hash chain alone accepts a payload
/// dropped by anyone (that is what makes erasure possible), so a copy with
/// payloads stripped (a password change, a key's removal) would otherwise
/// verify and replay to an older state.
#[derive(Debug, Default)]
pub struct ErasureCoverage {
    missing: Vec<u64>,
    present: std::collections::HashSet<u64>,
    /// Each erased position, and the position of the AccountErased that lists it.
    erased: std::collections::HashMap<u64, u64>,
}

impl ErasureCoverage {
    /// Takes note of one record (in any order).
    pub fn observe(&mut self, record: &crate::Record) {
        match &record.payload {
            None => self.missing.push(record.seq()),
            Some(_) => {
                self.present.insert(record.seq());
                if record.header.event_type == "AccountErased"
                    && let Some(Ok(crate::Event::AccountErased(e))) = record.event()
                {
                    for r in &e.erased {
                        self.erased.entry(r.position).or_insert(record.seq());
                    }
                }
            }
        }
    }

    /// The first payload-less record no erasure lists, or the first listed
    /// record whose payload is still there (erased data put back), as an error.
    pub fn finish(&self) -> Result<(), ChainError> {
        if let Some(&seq) = self.missing.iter().find(|seq| !self.erased.contains_key(seq)) {
            return Err(ChainError { seq, fault: ChainFault::PayloadMissing });
        }
        match self.erased.keys().filter(|p| self.present.contains(p)).min() {
            Some(&seq) => Err(ChainError { seq, fault: ChainFault::ErasedPayloadPresent }),
            None => Ok(()),
        }
    }

    /// For a log cut after position `end`: the first payload-less record up
    /// to `end` whose erasure comes after `end`, with that erasure's position.
    pub fn erased_after(&self, end: u64) -> Option<(u64, u64)> {
        self.missing
            .iter()
            .filter(|&&seq| seq <= end)
            .filter_map(|seq| self.erased.get(seq).filter(|&&by| by > end).map(|&by| (*seq, by)))
            .min()
    }
}

/// A fault and where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("position {seq}: {fault}")]
pub struct ChainError {
    pub seq: u64,
    pub fault: ChainFault,
}

/// Checks records one by one against the tail they should extend.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected: ChainTail,
    checked: u64,
}

impl ChainVerifier {
    /// Verifies from the start of the log.
    pub fn from_genesis() -> Self {
        Self::from_tail(ChainTail::GENESIS)
    }

    /// Verifies a run that must start right after `tail`.
    pub fn from_tail(tail: ChainTail) -> Self {
        ChainVerifier { expected: tail, checked: 0 }
    }

    pub fn tail(&self) -> ChainTail {
        self.expected
    }

    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// Checks one record. An erased payload (`None`) is accepted: the header still
    /// carries the payload hash, so the chain stays whole. A present payload
    /// must match the header's hash (and length, format 1), and its sealed
    /// secrets their commitments (format 2).
    pub fn check(&mut self, header: &RecordHeader, payload: Option<&Payload>) -> Result<(), ChainError> {
        let at = |fault| ChainError { seq: header.seq, fault };
        if header.seq != self.expected.next_seq {
            return Err(ChainError {
                seq: self.expected.next_seq,
                fault: ChainFault::OutOfSequence { expected: self.expected.next_seq, found: header.seq },
            });
        }
        if header.prev_hash != self.expected.last_hash {
            return Err(at(ChainFault::BrokenLink { expected: self.expected.last_hash, found: header.prev_hash }));
        }
        let computed = codec::record_hash(header);
        if computed != header.hash {
            return Err(at(ChainFault::HashMismatch { stored: header.hash, computed }));
        }
        if let Some(payload) = payload {
            let layout_ok = match payload {
                Payload::V1(body) => header.format == 1 && header.payload_len == Some(body.len() as u32),
                Payload::V2 { .. } => header.format == 2,
            };
            if !layout_ok
                || codec::payload_hash(payload) != header.payload_hash
                || !codec::sealed_secrets_match(&header.event_type, payload)
            {
                return Err(at(ChainFault::PayloadMismatch));
            }
        }
        self.expected = ChainTail::after(header);
        self.checked += 1;
        Ok(())
    }

    /// Decodes and checks a stored (header bytes, payload bytes) pair.
    pub fn check_raw(
        &mut self,
        seq_hint: u64,
        header: &[u8],
        payload: Option<&[u8]>,
    ) -> Result<RecordHeader, ChainError> {
        let header = codec::decode_header(header)
            .map_err(|e| ChainError { seq: seq_hint, fault: ChainFault::Undecodable(e) })?;
        let payload = payload
            .map(|p| codec::decode_payload(header.format, p))
            .transpose()
            .map_err(|e| ChainError { seq: header.seq, fault: ChainFault::BadPayload(e) })?;
        self.check(&header, payload.as_ref())?;
        Ok(header)
    }
}
