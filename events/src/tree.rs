//! The log's Merkle tree in fjall: every perfect subtree of the leaves, so any
//! root, inclusion proof or consistency proof is a few dozen point reads.
//!
//! Keyspace `log_tree`:
//! - key `[level: u8][index: u64 BE]` (9 bytes) → the 32-byte hash of the
//!   perfect subtree `(level, index)` (see [`crate::merkle::Nodes`]);
//! - key `size` (4 bytes) → the number of leaves, u64 BE, written in the same
//!   batch as the nodes it adds.
//!
//! The tree is derived from the log (leaf `i` = record hash of position
//! `i + 1`) and follows it: [`MerkleTree::extend`] appends what the log has
//! beyond the tree. Appending touches the compact range only: O(1) amortized
//! writes per record. Nothing here signs; see `ledger::audit::notary`.

use fjall::{Database, Keyspace, KeyspaceCreateOptions, Readable, Snapshot};

use crate::chain::{ChainError, ChainFault};
use crate::log::{Error, EventLog, Result};
use crate::merkle::{self, CompactRange, Hash, Nodes};

/// Keyspace holding the tree's nodes.
pub const TREE_KEYSPACE: &str = "log_tree";
const SIZE_KEY: &[u8] = b"size";
/// Leaves appended per batch while catching up.
const BATCH_LEAVES: u64 = 8192;

fn node_key(level: u32, index: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = level as u8;
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

/// What [`MerkleTree::extend`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extended {
    /// The tree's size now.
    pub size: u64,
    /// The stored tree did not match the log and was rebuilt.
    pub rebuilt: bool,
}

/// Handle to the tree keyspace of a fjall database.
#[derive(Clone)]
pub struct MerkleTree {
    nodes: Keyspace,
}

/// The tree as one snapshot sees it: reads for proofs.
pub struct TreeView<'a> {
    tree: &'a MerkleTree,
    snap: &'a Snapshot,
}

impl Nodes for TreeView<'_> {
    type Error = Error;
    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        let missing = || Error::MissingNode { level, index };
        let raw = self.snap.get(&self.tree.nodes, node_key(level, index))?.ok_or_else(missing)?;
        <Hash>::try_from(raw.as_ref()).map_err(|_| missing())
    }
}

impl MerkleTree {
    /// Opens (creating if needed) the tree keyspace in `db`.
    pub fn open(db: &Database) -> Result<Self> {
        Ok(MerkleTree { nodes: db.keyspace(TREE_KEYSPACE, KeyspaceCreateOptions::default)? })
    }

    /// The keyspace, for maintenance (flush).
    pub fn keyspace(&self) -> &Keyspace {
        &self.nodes
    }

    /// The tree as `snap` sees it.
    pub fn view<'a>(&'a self, snap: &'a Snapshot) -> TreeView<'a> {
        TreeView { tree: self, snap }
    }

    /// The number of leaves in `snap`.
    pub fn size(&self, snap: &Snapshot) -> Result<u64> {
        Ok(snap
            .get(&self.nodes, SIZE_KEY)?
            .and_then(|raw| <[u8; 8]>::try_from(raw.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Appends the leaves of log positions after the tree's size up to
    /// `upto` (which the log must hold). A tree that does not match the log
    /// (its last leaf is not the log's record there, or it is longer than the
    /// log) is rebuilt from the start. Blocking.
    pub fn extend(&self, db: &Database, log: &EventLog, upto: u64) -> Result<Extended> {
        let snap = db.snapshot();
        let mut size = self.size(&snap)?;
        let rebuilt = size > 0 && !self.matches(&snap, log, size)?;
        if rebuilt {
            self.clear(db)?;
            size = 0;
        }
        if size >= upto {
            return Ok(Extended { size, rebuilt });
        }
        let mut range = CompactRange::read(&self.view(&snap), size)?;
        let mut batch = db.batch();
        for item in log.hashes(&snap, size + 1) {
            let (seq, hash) = item?;
            if seq > upto {
                break;
            }
            if seq != range.size() + 1 {
                return Err(log.corrupt(ChainError {
                    seq,
                    fault: ChainFault::OutOfSequence { expected: range.size() + 1, found: seq },
                }));
            }
            range.append(merkle::leaf_hash(&hash.0), |level, index, node| {
                batch.insert(&self.nodes, node_key(level, index), node.to_vec());
            });
            if range.size().is_multiple_of(BATCH_LEAVES) {
                batch.insert(&self.nodes, SIZE_KEY, range.size().to_be_bytes().to_vec());
                std::mem::replace(&mut batch, db.batch()).commit()?;
            }
        }
        batch.insert(&self.nodes, SIZE_KEY, range.size().to_be_bytes().to_vec());
        batch.commit()?;
        Ok(Extended { size: range.size(), rebuilt })
    }

    /// Whether leaf `size - 1` is the log's record at position `size`.
    fn matches(&self, snap: &Snapshot, log: &EventLog, size: u64) -> Result<bool> {
        let Some(Ok((seq, hash))) = log.hashes(snap, size).next() else { return Ok(false) };
        Ok(seq == size && self.view(snap).node(0, size - 1)? == merkle::leaf_hash(&hash.0))
    }

    fn clear(&self, db: &Database) -> Result<()> {
        let snap = db.snapshot();
        let mut batch = db.batch();
        for guard in snap.iter(&self.nodes) {
            let key = guard.key()?;
            batch.remove(&self.nodes, key);
        }
        batch.commit()?;
        Ok(())
    }
}
