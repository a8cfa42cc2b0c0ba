//! The audit export: NDJSON, one line per log record, then a trailer. Each record
//! line carries the exact header bytes (hex) and payload bytes, so a verifier
//! recomputes every hash offline. With an account filter, other records appear
//! as `skipped` lines holding only their position and hashes, so the chain still
//! links from the first line to the trailer (the choice over Merkle proofs: it
//! keeps one simple format and one verifier).
//!
//! The line format is [`super::line::ExportLine`]. The trailer's `digest` is
//! blake3 over every line before it, each with its newline.

use std::collections::HashSet;

use fjall::Snapshot;
use ledger_events::EventLog;
use ledger_events::values::UtcDateTime;

use super::line::{ExportLine, Trailer};
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

/// Writes the export of positions `from..=to` (only `only`'s records in full, if
/// given) to `emit`, one line at a time, trailer last.
pub fn export(
    log: &EventLog,
    snap: &Snapshot,
    from: u64,
    to: u64,
    only: Option<&HashSet<u64>>,
    mut emit: impl FnMut(String) -> bool,
) -> Result<(), StoreError> {
    let mut digest = blake3::Hasher::new();
    let (mut records, mut skipped, mut last) = (0u64, 0u64, None);
    for record in log.scan(snap, from) {
        let record = record?;
        if record.seq() > to {
            break;
        }
        let full = only.is_none_or(|set| set.contains(&record.seq()));
        let line = if full { ExportLine::record_text(&record)? } else { ExportLine::skipped(&record).to_text() };
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
    emit(ExportLine::trailer(Trailer { digest, from, last_hash, last_seq, records, skipped, to }).to_text());
    Ok(())
}
