//! The log's Merkle tree: hashing, compact ranges, inclusion and consistency
//! proofs, and their verification, exactly as RFC 9162 §2.1 (and C2SP
//! `merkle-tree`) define them, so that any RFC 6962 verifier checks them.
//!
//! - Hash: SHA-256. Leaf hash `SHA-256(0x00 || leaf)`, node hash
//!   `SHA-256(0x01 || left || right)`, empty tree `SHA-256("")`.
//! - Shape: `MTH(D[n])` splits at `k`, the largest power of two below `n`.
//! - The ledger's leaf `i` (from 0) is the 32-byte record hash (blake3 of the
//!   header bytes) of log position `i + 1`. The header survives erasure, so
//!   the tree never changes when a payload is erased.
//!
//! Proof generation reads perfect subtrees through [`Nodes`] (node `(level,
//! index)` is `MTH` of leaves `index·2^level .. (index+1)·2^level`), so a store
//! that keeps every perfect subtree answers any proof in O(log² n) reads.
//! Everything here is pure.

use sha2::{Digest as _, Sha256};

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)` (RFC 9162 §2.1.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)` (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Where proof generation reads perfect subtrees.
pub trait Nodes {
    type Error;
    /// `MTH(D[index·2^level : (index+1)·2^level])`; level 0 is the leaf hash.
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// `MTH(D[start:end])`, `start < end`, for the ranges the RFC's recursion
/// reaches (`start` a multiple of the smallest power of two `>= end - start`).
pub fn subtree_root<N: Nodes>(nodes: &N, start: u64, end: u64) -> Result<Hash, N::Error> {
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let level = n.trailing_zeros();
        return nodes.node(level, start >> level);
    }
    let k = split(n);
    Ok(node_hash(&subtree_root(nodes, start, start + k)?, &subtree_root(nodes, start + k, end)?))
}

/// The root of the tree of `size` leaves.
pub fn root<N: Nodes>(nodes: &N, size: u64) -> Result<Hash, N::Error> {
    if size == 0 { Ok(empty_root()) } else { subtree_root(nodes, 0, size) }
}

/// `PATH(index, D[size])` (RFC 9162 §2.1.3.1), leaf side first. `index < size`.
pub fn inclusion_proof<N: Nodes>(nodes: &N, index: u64, size: u64) -> Result<Vec<Hash>, N::Error> {
    fn path<N: Nodes>(nodes: &N, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), N::Error> {
        let n = end - start;
        if n <= 1 {
            return Ok(());
        }
        let k = split(n);
        if m < k {
            path(nodes, m, start, start + k, out)?;
            out.push(subtree_root(nodes, start + k, end)?);
        } else {
            path(nodes, m - k, start + k, end, out)?;
            out.push(subtree_root(nodes, start, start + k)?);
        }
        Ok(())
    }
    debug_assert!(index < size);
    let mut out = Vec::new();
    path(nodes, index, 0, size, &mut out)?;
    Ok(out)
}

/// `PROOF(from, D[to])` (RFC 9162 §2.1.4.1); empty when `from` is 0 or equals `to`. `from <= to`.
pub fn consistency_proof<N: Nodes>(nodes: &N, from: u64, to: u64) -> Result<Vec<Hash>, N::Error> {
    fn subproof<N: Nodes>(
        nodes: &N,
        m: u64,
        start: u64,
        end: u64,
        whole: bool,
        out: &mut Vec<Hash>,
    ) -> Result<(), N::Error> {
        let n = end - start;
        if m == n {
            if !whole {
                out.push(subtree_root(nodes, start, end)?);
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            subproof(nodes, m, start, start + k, whole, out)?;
            out.push(subtree_root(nodes, start + k, end)?);
        } else {
            subproof(nodes, m - k, start + k, end, false, out)?;
            out.push(subtree_root(nodes, start, start + k)?);
        }
        Ok(())
    }
    debug_assert!(from <= to);
    let mut out = Vec::new();
    if from > 0 && from < to {
        subproof(nodes, from, 0, to, true, &mut out)?;
    }
    Ok(out)
}

/// Why a proof does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the index {index} is not below the tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the first tree size {from} is larger than the second {to}")]
    SizesReversed { from: u64, to: u64 },
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof does not lead to the root hash")]
    RootMismatch,
}

/// Checks `proof` shows that `leaf` (a leaf hash) is leaf `index` of the tree
/// of `size` leaves with root `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f, mut s, mut r) = (index, size - 1, *leaf);
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if r == *root { Ok(()) } else { Err(ProofError::RootMismatch) }
}

/// Checks `proof` shows that the tree of `from` leaves with root `from_root`
/// is a prefix of the tree of `to` leaves with root `to_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    from: u64,
    to: u64,
    from_root: &Hash,
    to_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if from > to {
        return Err(ProofError::SizesReversed { from, to });
    }
    if from == to {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if from_root == to_root { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    if from == 0 {
        return if proof.is_empty() { Ok(()) } else { Err(ProofError::WrongLength) };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if from.is_power_of_two() {
        path.push(*from_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (from - 1, to - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr == *from_root && sr == *to_root { Ok(()) } else { Err(ProofError::RootMismatch) }
}

/// The perfect subtrees covering leaves `0..size`, largest first: what
/// appending needs, and all a verifier needs to go on from `size`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    hashes: Vec<Hash>,
}

impl CompactRange {
    /// The range of the empty tree.
    pub fn new() -> Self {
        CompactRange::default()
    }

    /// A range from its size and subtree hashes; `None` unless there is one
    /// hash per set bit of `size` and `size` is below 2^63 (no log holds
    /// that many leaves, and appending stays clear of overflow).
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Option<Self> {
        (size < 1 << 63 && hashes.len() == size.count_ones() as usize).then_some(CompactRange { size, hashes })
    }

    /// Reads the range of the tree of `size` leaves from `nodes`.
    pub fn read<N: Nodes>(nodes: &N, size: u64) -> Result<Self, N::Error> {
        let mut hashes = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                hashes.push(nodes.node(level, start >> level)?);
                start += 1 << level;
            }
        }
        Ok(CompactRange { size, hashes })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree hashes, largest (leftmost) first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends the leaf whose hash is `leaf`; `completed` sees each perfect
    /// subtree this completes, as `(level, index, hash)`, the leaf first.
    pub fn append(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        let index = self.size;
        let mut hash = leaf;
        let mut level = 0u32;
        completed(0, index, &hash);
        while (index >> level) & 1 == 1 {
            let left = self.hashes.pop().expect("a set bit of the size has its subtree");
            hash = node_hash(&left, &hash);
            level += 1;
            completed(level, index >> level, &hash);
        }
        self.hashes.push(hash);
        self.size += 1;
    }

    /// The root of the tree of `size` leaves.
    pub fn root(&self) -> Hash {
        let mut hashes = self.hashes.iter().rev();
        let Some(last) = hashes.next() else { return empty_root() };
        hashes.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests;
