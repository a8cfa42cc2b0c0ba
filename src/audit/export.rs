//! The audit export: NDJSON, one line per log record, then a trailer. Each record
//! line carries the exact header bytes (hex) and payload bytes, so a verifier
//! recomputes every hash offline. The trailer carries a signed checkpoint of
//! the tree at the export's last position and what ties the records to it: a
//! whole-log export the compact range before its first record (the verifier
//! rebuilds the root); a one-account export an inclusion proof on each record
//! (and no line for the others, so its size grows with log2 of the log).
//! Exports made before signed checkpoints (chain only, other records as
//! `skipped` lines) still verify.
//!
//! The line format is [`super::line::ExportLine`]. The trailer's `digest` is
//! blake3 over every line before it, each with its newline.

use std::collections::HashSet;

use fjall::Snapshot;
use ledger_events::EventLog;
use ledger_events::values::UtcDateTime;

use ledger_events::merkle::Hash;

use super::line::{ConsistencyLine, ExportLine, Trailer};
use super::notary::Consistency;
use crate::StoreError;

/// A position or a time, as `--from` / `--to` take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Seq(u64),
    Time(UtcDateTime),
}

impl std::str::FromStr for Bound {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(seq) = s.parse::<u64>() {
            return Ok(Bound::Seq(seq));
        }
        s.parse::<UtcDateTime>()
            .map(Bound::Time)
            .map_err(|_| format!("{s:?} is neither a log position nor an RFC 3339 UTC time"))
    }
}

/// The first position at or after `from`, and the last at or before `to`.
pub(crate) fn resolve_range(
    log: &EventLog,
    snap: &Snapshot,
    from: Option<Bound>,
    to: Option<Bound>,
) -> Result<(u64, u64), StoreError> {
    let last = log.last_seq(snap)?;
    let start = match from {
        None => 1,
        Some(Bound::Seq(n)) => n.max(1),
        Some(Bound::Time(t)) => log.first_position_from(snap, t)?,
    };
    let end = match to {
        None => last,
        Some(Bound::Seq(n)) => n.min(last),
        Some(Bound::Time(t)) => log.position_at(snap, t)?,
    };
    Ok((start, end))
}

/// What binds an export to a signed checkpoint of tree size `to`.
pub(crate) struct Evidence {
    /// The signed note.
    pub(crate) checkpoint: String,
    pub(crate) verifier_key: String,
    /// Whole-log exports: the compact range of the tree of size `from - 1`.
    pub(crate) compact_range: Option<Vec<Hash>>,
    /// The consistency proof asked for with `since`.
    pub(crate) consistency: Option<Consistency>,
}

/// The inclusion proof of a position in the tree of the export's checkpoint.
pub(crate) type Prove<'a> = &'a dyn Fn(u64) -> Result<Vec<Hash>, StoreError>;

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// Writes the export of positions `from..=to` to `emit`, one line at a time,
/// trailer last. With `only`, only those positions are in full: the others
/// are `skipped` lines, or, with `prove`, left out and each full record
/// carries its inclusion proof instead (a one-account slice, O(log n) a record).
pub(crate) fn export(
    log: &EventLog,
    snap: &Snapshot,
    (from, to): (u64, u64),
    only: Option<(&HashSet<u64>, Option<Prove<'_>>)>,
    evidence: Option<Evidence>,
    mut emit: impl FnMut(String) -> bool,
) -> Result<(), StoreError> {
    let mut digest = blake3::Hasher::new();
    let (mut records, mut skipped, mut last) = (0u64, 0u64, None);
    for record in log.scan(snap, from) {
        let record = record?;
        if record.seq() > to {
            break;
        }
        let full = only.is_none_or(|(set, _)| set.contains(&record.seq()));
        let prove = only.and_then(|(_, prove)| prove);
        let line = match (full, prove) {
            (true, None) => ExportLine::record_text(&record)?,
            (true, Some(prove)) => ExportLine::record_text_with(&record, Some(hexes(&prove(record.seq())?)))?,
            (false, Some(_)) => continue,
            (false, None) => ExportLine::skipped(&record).to_text(),
        };
        if full {
            records += 1
        } else {
            skipped += 1
        }
        digest.update(line.as_bytes());
        digest.update(b"\n");
        last = Some((record.seq(), record.header.hash));
        if !emit(line) {
            return Ok(());
        }
    }
    let (last_seq, last_hash) = last.map_or((from.saturating_sub(1), String::new()), |(s, h)| (s, h.to_hex()));
    let digest = digest.finalize().to_hex().to_string();
    let mut trailer = Trailer { digest, from, last_hash, last_seq, records, skipped, to, ..Trailer::default() };
    if let Some(e) = evidence {
        trailer.checkpoint = Some(e.checkpoint);
        trailer.verifier_key = Some(e.verifier_key);
        trailer.compact_range = e.compact_range.as_deref().map(hexes);
        trailer.consistency =
            e.consistency.map(|c| ConsistencyLine { from: c.from, to: c.to, hashes: hexes(&c.hashes) });
    }
    emit(ExportLine::trailer(trailer).to_text());
    Ok(())
}
