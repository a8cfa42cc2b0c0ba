//! Offline verification of an audit export: every hash recomputed from the bytes
//! in the file, every link and position checked, the trailer matched; then the
//! signed checkpoint in the trailer checked with the log's key, the records
//! shown to make its tree (a whole-log export rebuilds the root; a one-account
//! export checks each record's inclusion proof), and the checkpoint shown
//! consistent with one trusted before. Every problem is reported with its
//! position, not only the first.

use ledger_events::codec::{decode_header, payload_hash_v1, payload_hash_v2, record_hash};
use ledger_events::merkle::{self, CompactRange, Hash};
use ledger_events::{ChainTail, Digest, RecordHeader};
use serde_json::value::RawValue;

use super::line::{ExportLine, LineActor, Trailer};
use super::note::{Checkpoint, VerifierKey};

/// What a verified export covers. Of the `records` in full, `erased` have no
/// payload left and `redacted` (format 1 only) had secret fields replaced, so
/// only their headers and links were checked; every other payload was checked
/// against its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub from: u64,
    pub last_seq: u64,
    pub last_hash: String,
    pub records: u64,
    pub skipped: u64,
    pub erased: u64,
    pub redacted: u64,
    /// The export's checkpoint, when it has one: checked against the key
    /// given, or only parsed (`signed` false) when none was given.
    pub checkpoint: Option<Checkpoint>,
    /// The checkpoint's signature was checked with the key given.
    pub signed: bool,
    /// One account's records, each with its inclusion proof (not a range).
    pub one_account: bool,
    /// The size of the trusted checkpoint this export was shown consistent with.
    pub consistent_with: Option<u64>,
    /// [`Against::also`] was given and shown consistent.
    pub also_consistent: Option<bool>,
    /// Erased records (of `erased`) that no AccountErased record in this
    /// export lists: erased after the export's range, or payloads withheld.
    pub erased_unexplained: u64,
}

/// A problem found, at a log position (0 when not tied to one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("position {position}: {reason}")]
pub struct ExportFault {
    pub position: u64,
    pub reason: String,
}

/// What to check an export against.
#[derive(Debug, Clone, Copy, Default)]
pub struct Against<'a> {
    /// `(position, hash)` of the chain (`ledger audit checkpoint` before
    /// signed checkpoints): must be in the export unchanged.
    pub chain: Option<(u64, Digest)>,
    /// The log's key: the trailer's checkpoint must be signed by it.
    pub key: Option<&'a VerifierKey>,
    /// A checkpoint trusted before: the export's must be consistent with it.
    pub trusted: Option<&'a Checkpoint>,
    /// Another checkpoint trusted before (the one remembered, when the
    /// auditor names a file): the export must be shown consistent with it
    /// too, from its root or a proof for its size.
    pub also: Option<&'a Checkpoint>,
}

/// Verifies an export; the first problem, if any. `checkpoint`, if given,
/// must appear in it unchanged: proof that the log only grew since.
pub fn verify_export(text: &str, checkpoint: Option<(u64, Digest)>) -> Result<Verified, ExportFault> {
    verify(text, Against { chain: checkpoint, ..Against::default() }).map_err(|mut all| all.swap_remove(0))
}

fn fault(position: u64, reason: impl Into<String>) -> ExportFault {
    ExportFault { position, reason: reason.into() }
}

fn hash_of(hex: &str) -> Option<Hash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex, &mut out).ok().map(|()| out)
}

/// Checks that a full line's header, readable fields and payload agree.
fn check_record(line: &ExportLine<'_>, seq: u64, hash: Digest) -> Result<(RecordHeader, Outcome), ExportFault> {
    let bytes =
        line.header.as_deref().and_then(|h| hex::decode(h).ok()).ok_or_else(|| fault(seq, "the header is not hex"))?;
    let header = decode_header(&bytes).map_err(|e| fault(seq, format!("the header does not decode: {e}")))?;
    if record_hash(&header) != header.hash || header.hash != hash || header.seq != seq {
        return Err(fault(seq, "the record's hash does not match its contents (it was edited)"));
    }
    let readable_ok = line.event_type.as_deref() == Some(header.event_type.as_str())
        && line.schema_version == Some(header.schema_version)
        && line.committed_at == Some(header.commit.committed_at.to_string())
        && line.commit_id == Some(header.commit.commit_id.to_string())
        && line.event_id == Some(header.event_id.to_string())
        && line.request_id.as_deref() == Some(header.commit.request_id.as_str())
        && line.call_id.as_deref() == Some(header.commit.call_id.as_str())
        && line.payload_hash == Some(header.payload_hash.to_hex())
        && line.actor
            == Some(LineActor {
                id: header.commit.actor.principal_id.clone(),
                name: header.commit.actor.name.clone(),
                auth_method: header.commit.actor.auth_method.as_str().to_owned(),
            });
    if !readable_ok {
        return Err(fault(seq, "a readable field differs from the hashed header (it was edited)"));
    }
    let outcome = match line.payload.map(RawValue::get) {
        None | Some("null") => Outcome::Erased,
        Some(_) if line.redacted && header.format == 1 => Outcome::Redacted,
        Some(_) if line.redacted => {
            return Err(fault(seq, "a format-2 record is never redacted (the line was edited)"));
        }
        Some(p) => {
            let matches = match header.format {
                1 => header.payload_len == Some(p.len() as u32) && payload_hash_v1(p.as_bytes()) == header.payload_hash,
                _ => {
                    let Some(salt) = line.payload_salt.as_deref().and_then(hash_of) else {
                        return Err(fault(seq, "the payload has no 64-hex-digit payloadSalt"));
                    };
                    payload_hash_v2(&salt, p.as_bytes()) == header.payload_hash
                }
            };
            if !matches {
                return Err(fault(seq, "the payload does not match its hash (it was edited)"));
            }
            Outcome::Checked
        }
    };
    Ok((header, outcome))
}

enum Outcome {
    Checked,
    Erased,
    Redacted,
}

/// Verifies an export against `against`; every problem found, in file order.
pub fn verify(text: &str, against: Against<'_>) -> Result<Verified, Vec<ExportFault>> {
    let mut faults = Vec::new();
    let mut digest = blake3::Hasher::new();
    let mut expected: Option<ChainTail> = None;
    let mut first: Option<u64> = None;
    let (mut records, mut skipped, mut erased, mut redacted) = (0u64, 0u64, 0u64, 0u64);
    let mut chain_checkpoint_seen = false;
    // Whole-log mode: the leaves in order. One-account mode: (position, leaf, proof).
    let mut leaves: Vec<Hash> = Vec::new();
    let mut proven: Vec<(u64, Hash, Vec<Hash>)> = Vec::new();
    let mut proof_mode: Option<bool> = None;
    // Positions without payload, and the positions AccountErased records list.
    let (mut without_payload, mut listed) = (Vec::new(), std::collections::HashSet::new());
    let mut lines = text.lines().enumerate().peekable();
    while let Some((number, raw)) = lines.next() {
        let at = expected.map_or(0, |t| t.next_seq);
        let line: ExportLine<'_> = match serde_json::from_str(raw) {
            Ok(line) => line,
            Err(e) => {
                faults.push(fault(at, format!("line {} is not an export line: {e}", number + 1)));
                return Err(faults);
            }
        };
        if let Some(t) = line.trailer {
            if lines.any(|(_, rest)| !rest.trim().is_empty()) {
                faults.push(fault(t.last_seq, "lines after the trailer"));
            }
            let tail = expected.unwrap_or(ChainTail { next_seq: t.from, last_hash: Digest::ZERO });
            let in_proof_mode = proof_mode == Some(true);
            let last_ok = if in_proof_mode {
                proven.last().map_or(t.from.saturating_sub(1), |p| p.0) == t.last_seq
            } else {
                tail.next_seq.checked_sub(1) == Some(t.last_seq)
            };
            let checks = [
                (
                    t.from == first.unwrap_or(t.from) || in_proof_mode,
                    "the trailer's first position does not match the first record",
                ),
                (
                    last_ok,
                    "the trailer's last position does not match the last record (records were removed from the end?)",
                ),
                (
                    if expected.is_none() {
                        Digest::from_hex(&t.last_hash).is_some()
                    } else {
                        t.last_hash == tail.last_hash.to_hex()
                    },
                    "the trailer's last hash does not match the last record",
                ),
                (t.records == records && t.skipped == skipped, "the trailer's counts do not match the records"),
                (t.digest == digest.finalize().to_hex().as_str(), "the export digest does not match its lines"),
            ];
            for (_, why) in checks.iter().filter(|(ok, _)| !ok) {
                faults.push(fault(t.last_seq, *why));
            }
            if let Some((seq, _)) = against.chain
                && !chain_checkpoint_seen
            {
                faults.push(fault(seq, "the checkpoint's position is not in this export"));
            }
            if t.checkpoint.is_some() && skipped > 0 {
                // Signed exports hold every record they cover in full (one
                // account's with inclusion proofs): a skipped line hides one.
                faults.push(fault(
                    t.last_seq,
                    format!("{skipped} record(s) skipped in a signed export (their contents were withheld)"),
                ));
            }
            let tree = check_tree(&t, against, in_proof_mode, &leaves, &proven, &mut faults);
            if !faults.is_empty() {
                return Err(faults);
            }
            let erased_unexplained = without_payload.iter().filter(|p| !listed.contains(*p)).count() as u64;
            return Ok(Verified {
                from: t.from,
                last_seq: t.last_seq,
                last_hash: t.last_hash,
                records,
                skipped,
                erased,
                redacted,
                checkpoint: tree.checkpoint,
                signed: tree.signed,
                one_account: in_proof_mode,
                consistent_with: tree.consistent_with,
                also_consistent: tree.also_consistent,
                erased_unexplained,
            });
        }
        digest.update(raw.as_bytes());
        digest.update(b"\n");
        let Some(seq) = line.seq else {
            faults.push(fault(at, format!("line {} has no position", number + 1)));
            continue;
        };
        if seq == 0 || seq >= 1 << 63 {
            faults.push(fault(at, format!("line {} has position {seq}, which no log has", number + 1)));
            continue;
        }
        let line_proven = line.inclusion.is_some();
        if *proof_mode.get_or_insert(line_proven) != line_proven {
            faults.push(fault(seq, "some records carry inclusion proofs and others do not"));
            continue;
        }
        if let Some(tail) = expected {
            if line_proven && seq < tail.next_seq {
                faults
                    .push(fault(seq, format!("position {seq} comes after {} (records reordered)", tail.next_seq - 1)));
            } else if !line_proven && seq != tail.next_seq {
                faults.push(fault(
                    tail.next_seq,
                    format!(
                        "expected position {}, found {seq} (a record was removed, inserted or reordered)",
                        tail.next_seq
                    ),
                ));
            }
        }
        first.get_or_insert(seq);
        let (Some(hash), Some(prev)) = (line.hash.as_deref(), line.prev_hash.as_deref()) else {
            faults.push(fault(seq, "the line has no hash or previous hash"));
            continue;
        };
        let (Some(hash), Some(prev)) = (Digest::from_hex(hash), Digest::from_hex(prev)) else {
            faults.push(fault(seq, "a hash is not 64 hex digits"));
            continue;
        };
        if let Some(tail) = expected
            && !line_proven
            && prev != tail.last_hash
        {
            faults.push(fault(seq, "its previous hash does not link to the record before it"));
        }
        if seq == 1 && prev != Digest::ZERO {
            faults.push(fault(seq, "the first record does not start the chain"));
        }
        expected = Some(ChainTail { next_seq: seq + 1, last_hash: hash });
        if line.skipped {
            skipped += 1;
        } else {
            records += 1;
            match check_record(&line, seq, hash) {
                Ok((header, outcome)) => {
                    if header.prev_hash != prev {
                        faults.push(fault(seq, "the record's hash does not match its contents (it was edited)"));
                    }
                    match outcome {
                        Outcome::Erased => {
                            erased += 1;
                            without_payload.push(seq);
                        }
                        Outcome::Redacted => redacted += 1,
                        Outcome::Checked if header.event_type == "AccountErased" => {
                            listed.extend(erased_positions(&line));
                        }
                        Outcome::Checked => {}
                    }
                }
                Err(f) => faults.push(f),
            }
        }
        let leaf = merkle::leaf_hash(&hash.0);
        match line.inclusion {
            Some(proof) => match proof.iter().map(|h| hash_of(h)).collect::<Option<Vec<_>>>() {
                Some(proof) => proven.push((seq, leaf, proof)),
                None => faults.push(fault(seq, "an inclusion proof hash is not 64 hex digits")),
            },
            None => leaves.push(leaf),
        }
        if let Some((cp_seq, cp_hash)) = against.chain
            && cp_seq == seq
        {
            if cp_hash != hash {
                faults.push(fault(
                    seq,
                    "the record at the checkpoint's position has another hash: the log was rewritten",
                ));
            }
            chain_checkpoint_seen = true;
        }
    }
    faults.push(fault(expected.map_or(0, |t| t.next_seq), "the export has no trailer (it was cut short)"));
    Err(faults)
}

/// The positions an AccountErased record's checked payload lists.
fn erased_positions(line: &ExportLine<'_>) -> Vec<u64> {
    #[derive(serde::Deserialize)]
    struct Listed {
        erased: Vec<Position>,
    }
    #[derive(serde::Deserialize)]
    struct Position {
        position: u64,
    }
    line.payload
        .and_then(|p| serde_json::from_str::<Listed>(p.get()).ok())
        .map(|l| l.erased.into_iter().map(|e| e.position).collect())
        .unwrap_or_default()
}

/// What [`check_tree`] found.
#[derive(Default)]
struct Tree {
    checkpoint: Option<Checkpoint>,
    signed: bool,
    consistent_with: Option<u64>,
    also_consistent: Option<bool>,
}

/// Checks the trailer's checkpoint: its signature, that the records make its
/// tree, and its consistency with the trusted checkpoints.
fn check_tree(
    t: &Trailer,
    against: Against<'_>,
    proof_mode: bool,
    leaves: &[Hash],
    proven: &[(u64, Hash, Vec<Hash>)],
    faults: &mut Vec<ExportFault>,
) -> Tree {
    let Some(note) = t.checkpoint.as_deref() else {
        if against.key.is_some() || against.trusted.is_some() {
            faults.push(fault(t.to, "the export carries no signed checkpoint (it was made before signed checkpoints, or the trailer was edited)"));
        }
        return Tree::default();
    };
    let parsed = match against.key {
        Some(key) => Checkpoint::open(note, key).map(|c| (c, true)),
        None => note
            .rfind("\n\n")
            .map_or_else(|| Checkpoint::parse(note), |split| Checkpoint::parse(&note[..split + 1]))
            .map(|c| (c, false)),
    };
    let (checkpoint, signed) = match parsed {
        Ok(c) => c,
        Err(e) => {
            faults.push(fault(t.to, format!("the checkpoint is not one the log's key signed: {e}")));
            return Tree::default();
        }
    };
    let mut tree = Tree { checkpoint: None, signed, consistent_with: None, also_consistent: None };
    if checkpoint.size != t.to {
        faults.push(fault(
            t.to,
            format!("the checkpoint is of tree size {}, not the export's last position {}", checkpoint.size, t.to),
        ));
        tree.checkpoint = Some(checkpoint);
        return tree;
    }
    // The roots at the trusted sizes, when the export itself shows them.
    let trusted_sizes: Vec<u64> = [against.trusted, against.also].into_iter().flatten().map(|c| c.size).collect();
    let mut shown_roots: Vec<(u64, Hash)> = Vec::new();
    if proof_mode {
        for (seq, leaf, proof) in proven {
            if let Err(e) = merkle::verify_inclusion(seq - 1, checkpoint.size, leaf, proof, &checkpoint.root) {
                faults.push(fault(*seq, format!("the record is not in the signed tree: {e}")));
            }
        }
    } else {
        let range = t
            .compact_range
            .as_ref()
            .and_then(|r| r.iter().map(|h| hash_of(h)).collect::<Option<Vec<_>>>())
            .and_then(|hashes| CompactRange::from_parts(t.from.saturating_sub(1), hashes));
        let Some(mut range) = range else {
            faults.push(fault(t.from, "the trailer has no valid compact range for the tree before the first record"));
            tree.checkpoint = Some(checkpoint);
            return tree;
        };
        for leaf in leaves {
            if trusted_sizes.contains(&range.size()) {
                shown_roots.push((range.size(), range.root()));
            }
            range.append(*leaf, |_, _, _| {});
        }
        if trusted_sizes.contains(&range.size()) {
            shown_roots.push((range.size(), range.root()));
        }
        if range.root() != checkpoint.root {
            faults.push(fault(t.to, "the records do not make the signed tree (its root hash differs)"));
            // Roots of edited records say nothing about the log.
            shown_roots.clear();
        }
    }
    if let Some(trusted) = against.trusted {
        match consistency(t, &checkpoint, trusted, &shown_roots) {
            Some(true) => tree.consistent_with = Some(trusted.size),
            Some(false) => faults.push(inconsistent(t, &checkpoint, trusted)),
            None => faults.push(no_proof(&checkpoint, trusted)),
        }
    }
    if let Some(also) = against.also {
        tree.also_consistent = consistency(t, &checkpoint, also, &shown_roots);
        match tree.also_consistent {
            Some(true) => {}
            Some(false) => faults.push(inconsistent(t, &checkpoint, also)),
            None => faults.push(no_proof(&checkpoint, also)),
        }
    }
    tree.checkpoint = Some(checkpoint);
    tree
}

/// Not a fault of the file: it holds no proof linking its checkpoint to a
/// trusted one of another size.
fn no_proof(checkpoint: &Checkpoint, trusted: &Checkpoint) -> ExportFault {
    let (small, large) = (trusted.size.min(checkpoint.size), trusted.size.max(checkpoint.size));
    fault(
        0,
        format!(
            "the export's checkpoint (tree size {}) cannot be linked to the one of tree size {} you trust: the file \
             holds no consistency proof between them (nothing in it was found altered). Export again with --since \
             {}; for a file made earlier, `ledger audit proof consistency --from {small} --to {large}` checks the \
             link with the server",
            checkpoint.size, trusted.size, trusted.size
        ),
    )
}

fn inconsistent(t: &Trailer, checkpoint: &Checkpoint, trusted: &Checkpoint) -> ExportFault {
    if trusted.origin != checkpoint.origin {
        return fault(
            t.to,
            format!("the trusted checkpoint is of log {:?}, this export of {:?}", trusted.origin, checkpoint.origin),
        );
    }
    fault(
        t.to,
        format!(
            "the log is not consistent with the checkpoint of tree size {} trusted before: it was rewritten or forked",
            trusted.size
        ),
    )
}

/// Whether the export's `checkpoint` is consistent with `trusted`: from a
/// root the records showed, equal sizes, or the trailer's consistency proof;
/// `None` when the export holds nothing to tell.
fn consistency(t: &Trailer, checkpoint: &Checkpoint, trusted: &Checkpoint, shown: &[(u64, Hash)]) -> Option<bool> {
    if trusted.origin != checkpoint.origin {
        return Some(false);
    }
    if let Some((_, root)) = shown.iter().find(|(size, _)| *size == trusted.size) {
        return Some(*root == trusted.root);
    }
    if trusted.size == checkpoint.size {
        return Some(trusted.root == checkpoint.root);
    }
    let (small, large) = if trusted.size < checkpoint.size { (trusted, checkpoint) } else { (checkpoint, trusted) };
    match &t.consistency {
        Some(c) if c.from == small.size && c.to == large.size => {
            let proof = c.hashes.iter().map(|h| hash_of(h)).collect::<Option<Vec<_>>>()?;
            Some(merkle::verify_consistency(small.size, large.size, &small.root, &large.root, &proof).is_ok())
        }
        _ => None,
    }
}
