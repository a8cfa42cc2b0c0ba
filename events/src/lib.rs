//! Event types, record format, codec, hash chain and the append-only log of account-ledger.
//!
//! A write becomes [`Event`]s, sealed by a [`ChainTail`] into [`Record`]s and staged
//! by an [`EventLog`] into a fjall batch. See `docs/ARCHITECTURE.md` for the on-disk
//! layout and `docs/events.md` for the catalogue.

mod chain;
pub mod codec;
mod event;
mod log;
pub mod merkle;
pub mod model;
mod record;
mod tree;
pub mod values;

pub use crate::{
    chain::{ChainError, ChainFault, ChainTail, ChainVerifier, ErasureCoverage},
    codec::CodecError,
    event::*,
    log::{Error, EventLog, HEADERS_KEYSPACE, PAYLOADS_KEYSPACE, Result},
    record::{
        Actor, AuthMethod, CommitMeta, Digest, MAX_CALL_ID_LEN, MAX_REQUEST_ID_LEN, Payload, Record, RecordHeader,
    },
    tree::{Extended, MerkleTree, TREE_KEYSPACE, TreeView},
    values::{InvalidValue, ObjectId, UtcDateTime},
};

#[cfg(test)]
mod tests;
