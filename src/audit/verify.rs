//! Offline verification of an audit export: every hash recomputed from the bytes
//! in the file, every link and position checked, the trailer matched. Reports the
//! first bad record with its position.

use ledger_events::codec::{decode_header, payload_hash_v1, payload_hash_v2, record_hash};
use ledger_events::{ChainTail, Digest};
use serde_json::value::RawValue;

use super::line::{ExportLine, LineActor};

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
}

/// The first problem found, at a log position (0 when not tied to one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("position {position}: {reason}")]
pub struct ExportFault {
    pub position: u64,
    pub reason: String,
}

/// Verifies an export. `checkpoint` (position, hash), if given, must appear in it
/// unchanged: proof that the log only grew since the checkpoint was taken.
pub fn verify_export(text: &str, checkpoint: Option<(u64, Digest)>) -> Result<Verified, ExportFault> {
    let fault = |position: u64, reason: String| ExportFault { position, reason };
    let mut digest = blake3::Hasher::new();
    let mut expected: Option<ChainTail> = None;
    let mut first: Option<u64> = None;
    let (mut records, mut skipped, mut erased, mut redacted) = (0u64, 0u64, 0u64, 0u64);
    let mut checkpoint_seen = false;
    for (number, raw) in text.lines().enumerate() {
        let at = expected.map_or(0, |t| t.next_seq);
        let line: ExportLine<'_> = serde_json::from_str(raw)
            .map_err(|e| fault(at, format!("line {} is not an export line: {e}", number + 1)))?;
        if let Some(t) = line.trailer {
            let tail = expected.unwrap_or(ChainTail { next_seq: t.from, last_hash: Digest::ZERO });
            let checks = [
                (t.from == first.unwrap_or(t.from), "the trailer's first position does not match the first record"),
                (
                    t.last_seq == tail.next_seq - 1,
                    "the trailer's last position does not match the last record (records were removed from the end?)",
                ),
                (
                    expected.is_none() || t.last_hash == tail.last_hash.to_hex(),
                    "the trailer's last hash does not match the last record",
                ),
                (t.records == records && t.skipped == skipped, "the trailer's counts do not match the records"),
                (t.digest == digest.finalize().to_hex().as_str(), "the export digest does not match its lines"),
            ];
            if let Some((_, why)) = checks.iter().find(|(ok, _)| !ok) {
                return Err(fault(t.last_seq, (*why).to_owned()));
            }
            if let Some((seq, _)) = checkpoint
                && !checkpoint_seen
            {
                return Err(fault(seq, "the checkpoint's position is not in this export".into()));
            }
            if text.lines().nth(number + 1).is_some() {
                return Err(fault(t.last_seq, "lines after the trailer".into()));
            }
            return Ok(Verified {
                from: t.from,
                last_seq: t.last_seq,
                last_hash: t.last_hash,
                records,
                skipped,
                erased,
                redacted,
            });
        }
        digest.update(raw.as_bytes());
        digest.update(b"\n");
        let seq = line.seq.ok_or_else(|| fault(at, format!("line {} has no position", number + 1)))?;
        if let Some(tail) = expected
            && seq != tail.next_seq
        {
            return Err(fault(
                tail.next_seq,
                format!(
                    "expected position {}, found {seq} (a record was removed, inserted or reordered)",
                    tail.next_seq
                ),
            ));
        }
        first.get_or_insert(seq);
        let (Some(hash), Some(prev)) = (line.hash.as_deref(), line.prev_hash.as_deref()) else {
            return Err(fault(seq, "the line has no hash or previous hash".into()));
        };
        let (Some(hash), Some(prev)) = (Digest::from_hex(hash), Digest::from_hex(prev)) else {
            return Err(fault(seq, "a hash is not 64 hex digits".into()));
        };
        if let Some(tail) = expected
            && prev != tail.last_hash
        {
            return Err(fault(seq, "its previous hash does not link to the record before it".into()));
        }
        if seq == 1 && prev != Digest::ZERO {
            return Err(fault(seq, "the first record does not start the chain".into()));
        }
        if line.skipped {
            skipped += 1;
        } else {
            records += 1;
            let bytes = line
                .header
                .as_deref()
                .and_then(|h| hex::decode(h).ok())
                .ok_or_else(|| fault(seq, "the header is not hex".into()))?;
            let header = decode_header(&bytes).map_err(|e| fault(seq, format!("the header does not decode: {e}")))?;
            if record_hash(&header) != header.hash
                || header.hash != hash
                || header.prev_hash != prev
                || header.seq != seq
            {
                return Err(fault(seq, "the record's hash does not match its contents (it was edited)".into()));
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
                return Err(fault(seq, "a readable field differs from the hashed header (it was edited)".into()));
            }
            match line.payload.map(RawValue::get) {
                None | Some("null") => erased += 1,
                Some(_) if line.redacted && header.format == 1 => redacted += 1,
                Some(_) if line.redacted => {
                    return Err(fault(seq, "a format-2 record is never redacted (the line was edited)".into()));
                }
                Some(p) => {
                    let matches = match header.format {
                        1 => {
                            header.payload_len == Some(p.len() as u32)
                                && payload_hash_v1(p.as_bytes()) == header.payload_hash
                        }
                        _ => {
                            let salt = line.payload_salt.as_deref().and_then(|s| {
                                let mut salt = [0u8; 32];
                                hex::decode_to_slice(s, &mut salt).ok().map(|()| salt)
                            });
                            let Some(salt) = salt else {
                                return Err(fault(seq, "the payload has no 64-hex-digit payloadSalt".into()));
                            };
                            payload_hash_v2(&salt, p.as_bytes()) == header.payload_hash
                        }
                    };
                    if !matches {
                        return Err(fault(seq, "the payload does not match its hash (it was edited)".into()));
                    }
                }
            }
        }
        if let Some((cp_seq, cp_hash)) = checkpoint
            && cp_seq == seq
        {
            if cp_hash != hash {
                return Err(fault(
                    seq,
                    "the record at the checkpoint's position has another hash: the log was rewritten".into(),
                ));
            }
            checkpoint_seen = true;
        }
        expected = Some(ChainTail { next_seq: seq + 1, last_hash: hash });
    }
    Err(fault(expected.map_or(0, |t| t.next_seq), "the export has no trailer (it was cut short)".into()))
}
