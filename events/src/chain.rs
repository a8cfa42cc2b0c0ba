//! The hash chain: sealing new records onto the tail and verifying runs of records.

use uuid::Uuid;

use crate::codec::{self, CodecError};
use crate::event::Event;
use crate::record::{CommitMeta, Digest, Record, RecordHeader};

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

    /// Seals `event` as the next record and advances the tail. Pure: the event id
    /// and commit metadata come from the caller.
    pub fn seal(&mut self, commit: &CommitMeta, event_id: Uuid, event: &Event) -> Record {
        let (event_type, schema_version, payload) = codec::encode_event(event);
        let mut header = RecordHeader {
            seq: self.next_seq,
            event_id,
            commit: commit.clone(),
            event_type: event_type.to_owned(),
            schema_version,
            payload_len: payload.len() as u32,
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
    /// carries the payload hash, so the chain stays whole.
    pub fn check(&mut self, header: &RecordHeader, payload: Option<&[u8]>) -> Result<(), ChainError> {
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
        if let Some(payload) = payload
            && (payload.len() != header.payload_len as usize || codec::payload_hash(payload) != header.payload_hash)
        {
            return Err(at(ChainFault::PayloadMismatch));
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
        self.check(&header, payload)?;
        Ok(header)
    }
}
