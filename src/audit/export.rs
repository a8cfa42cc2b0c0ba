//! The audit export: NDJSON, one line per log record, then a trailer. Each record
//! line carries the exact header bytes (hex) and payload bytes, so a verifier
//! recomputes every hash offline. With an account filter, other records appear
//! as `skipped` lines holding only their position and hashes, so the chain still
//! links from the first line to the trailer (the choice over Merkle proofs: it
//! keeps one simple format and one verifier).
//!
//! ```text
//! {"seq":7,"hash":"…","prevHash":"…","header":"01…","type":"AccountCreated","schemaVersion":1,
//!  "committedAt":"…","actor":{"id":"","name":"admin","authMethod":"fallback"},"commitId":"…",
//!  "eventId":"…","requestId":"…","callId":"…","payloadHash":"…","payload":{…}|null}
//! {"seq":8,"skipped":true,"hash":"…","prevHash":"…"}
//! {"trailer":{"from":7,"to":8,"lastSeq":8,"lastHash":"…","records":1,"skipped":1,"digest":"…"}}
//! ```
//!
//! `digest` is blake3 over every line before the trailer, each with its newline.

use std::collections::HashSet;

use fjall::Snapshot;
use ledger_events::codec::encode_header;
use ledger_events::values::UtcDateTime;
use ledger_events::{EventLog, Record};
use serde_json::{Map, Value, json};

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
pub fn resolve_range(
    log: &EventLog,
    snap: &Snapshot,
    from: Option<Bound>,
    to: Option<Bound>,
) -> Result<(u64, u64), StoreError> {
    let last = log.last_seq(snap)?;
    let first_at = |t: UtcDateTime| -> Result<u64, StoreError> {
        for r in log.scan(snap, 1) {
            let r = r?;
            if r.header.commit.committed_at >= t {
                return Ok(r.seq());
            }
        }
        Ok(last + 1)
    };
    let start = match from {
        None => 1,
        Some(Bound::Seq(n)) => n.max(1),
        Some(Bound::Time(t)) => first_at(t)?,
    };
    let end = match to {
        None => last,
        Some(Bound::Seq(n)) => n.min(last),
        Some(Bound::Time(t)) => first_at(UtcDateTime::from_millis(t.millis().saturating_add(1)))?.saturating_sub(1),
    };
    Ok((start, end))
}

/// The line of a record included in full.
pub fn record_line(record: &Record) -> String {
    let h = &record.header;
    let mut m = Map::new();
    m.insert("seq".into(), json!(h.seq));
    m.insert("hash".into(), json!(h.hash.to_hex()));
    m.insert("prevHash".into(), json!(h.prev_hash.to_hex()));
    m.insert("header".into(), json!(hex::encode(encode_header(h))));
    m.insert("type".into(), json!(h.event_type));
    m.insert("schemaVersion".into(), json!(h.schema_version));
    m.insert("committedAt".into(), json!(h.commit.committed_at.to_string()));
    m.insert(
        "actor".into(),
        json!({"id": h.commit.actor.principal_id, "name": h.commit.actor.name, "authMethod": h.commit.actor.auth_method.as_str()}),
    );
    m.insert("commitId".into(), json!(h.commit.commit_id.to_string()));
    m.insert("eventId".into(), json!(h.event_id.to_string()));
    m.insert("requestId".into(), json!(h.commit.request_id));
    m.insert("callId".into(), json!(h.commit.call_id));
    m.insert("payloadHash".into(), json!(h.payload_hash.to_hex()));
    let head = serde_json::to_string(&Value::Object(m)).unwrap_or_default();
    // The payload goes in as its exact stored bytes (JSON), so its hash can be checked.
    let payload = match &record.payload {
        Some(p) => String::from_utf8_lossy(p).into_owned(),
        None => "null".to_owned(),
    };
    format!("{},\"payload\":{payload}}}", &head[..head.len() - 1])
}

pub fn skipped_line(record: &Record) -> String {
    json!({"seq": record.header.seq, "skipped": true, "hash": record.header.hash.to_hex(), "prevHash": record.header.prev_hash.to_hex()})
        .to_string()
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
        let line = if full { record_line(&record) } else { skipped_line(&record) };
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
    let trailer = json!({"trailer": {
        "from": from, "to": to, "lastSeq": last_seq, "lastHash": last_hash,
        "records": records, "skipped": skipped, "digest": digest.finalize().to_hex().to_string(),
    }});
    emit(trailer.to_string());
    Ok(())
}
