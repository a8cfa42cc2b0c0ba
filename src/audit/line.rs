//! One line of the audit export and the change feed (NDJSON), the single
//! definition both the writer ([`super::export`]) and the offline verifier
//! ([`super::verify`]) use. Three shapes share it: a record in full, a skipped
//! record (position and hashes only), and the trailer. Keys are written in
//! this order (the order of the fields below), which is the format's byte
//! layout: the trailer's digest covers these exact bytes.
//!
//! A line never carries secret material: a record of format 2 keeps its
//! secrets beside the payload (the line shows the body, with commitments); a
//! record of format 1 has its secret fields replaced by `"redacted"` and is
//! marked `"redacted": true` (its payload hash can then not be checked).
//! `payloadSalt` appears for format 2 while the payload is there; an erased
//! payload (`null`) takes its salt with it.
//!
//! ```text
//! {"actor":{"authMethod":"fallback","id":"","name":"admin"},"callId":"c1","commitId":"…",
//!  "committedAt":"…","eventId":"…","hash":"…","header":"02…","payloadHash":"…","payloadSalt":"…",
//!  "prevHash":"…","requestId":"…","schemaVersion":1,"seq":7,"type":"AccountCreated","payload":{…}|null}
//! {"hash":"…","prevHash":"…","seq":8,"skipped":true}
//! {"trailer":{"digest":"…","from":7,"lastHash":"…","lastSeq":8,"records":1,"skipped":1,"to":8}}
//! ```

use ledger_events::Record;
use ledger_events::codec::{SECRET_FIELDS, encode_header};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// An export or feed line; absent fields are not written.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExportLine<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<LineActor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The record hash, 64 hex digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// The exact header bytes, hex: what the record hash is computed over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// In a one-account export: the record's inclusion proof (RFC 9162
    /// §2.1.3, hex hashes, leaf side first) in the tree of the trailer's
    /// signed checkpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inclusion: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_hash: Option<String>,
    /// Record format 2: the payload's salt, 64 hex digits, while the payload exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_salt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<u16>,
    /// The log position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// Secret fields of a format-1 payload (`secretHash`, sealed seeds) were
    /// replaced by `"redacted"`: the payload no longer matches `payloadHash`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The payload's exact body bytes (so its hash can be checked), `null`
    /// once erased; absent on skipped lines.
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub payload: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trailer: Option<Trailer>,
}

/// Who committed a record, as the header names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LineActor {
    pub auth_method: String,
    pub id: String,
    pub name: String,
}

/// The export's last line: what it covers and a digest of every line before
/// it; since signed checkpoints, also the evidence that binds it to one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Trailer {
    /// The signed checkpoint (C2SP tlog-checkpoint note) of tree size `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// Of a whole-log export: the compact range (hex, largest subtree first)
    /// of the tree of size `from - 1`, which the records then extend to `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact_range: Option<Vec<String>>,
    /// Asked for with `since`: the consistency proof between that size and `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyLine>,
    /// blake3 (hex) over every line before the trailer, each with its newline.
    pub digest: String,
    pub from: u64,
    pub last_hash: String,
    pub last_seq: u64,
    pub records: u64,
    pub skipped: u64,
    pub to: u64,
    /// The log's verifier key (C2SP signed-note), for trust on first use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier_key: Option<String>,
}

/// A consistency proof in an export's trailer: from tree size `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConsistencyLine {
    pub from: u64,
    pub to: u64,
    /// Hex hashes (RFC 9162 §2.1.4).
    pub hashes: Vec<String>,
}

/// Whether `field` names secret material in a payload (format 1).
pub(crate) fn is_secret_field(field: &str) -> bool {
    SECRET_FIELDS.iter().any(|(secret, _)| *secret == field)
}

/// Replaces secret fields, at any depth, by `"redacted"`; whether there were any.
fn redact(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => {
            let mut any = false;
            for (k, v) in map.iter_mut() {
                if is_secret_field(k) && !v.is_null() {
                    *v = serde_json::Value::String("redacted".to_owned());
                    any = true;
                } else {
                    any |= redact(v);
                }
            }
            any
        }
        serde_json::Value::Array(items) => {
            // Every item, not only up to the first with a secret.
            let mut any = false;
            for v in items {
                any |= redact(v);
            }
            any
        }
        _ => false,
    }
}

/// A stored payload that is not JSON: the store is damaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the payload at position {0} is not JSON")]
pub(crate) struct BadPayload(pub u64);

impl From<BadPayload> for crate::StoreError {
    fn from(e: BadPayload) -> Self {
        crate::StoreError::Damaged(e.to_string())
    }
}

impl<'a> ExportLine<'a> {
    /// The line of a record included in full, as stored (format 1 secrets included).
    fn record(record: &'a Record) -> Result<Self, BadPayload> {
        let h = &record.header;
        let payload = match &record.payload {
            Some(p) => serde_json::from_slice::<&RawValue>(p.body()).map_err(|_| BadPayload(h.seq))?,
            None => RawValue::NULL,
        };
        Ok(ExportLine {
            actor: Some(LineActor {
                auth_method: h.commit.actor.auth_method.as_str().to_owned(),
                id: h.commit.actor.principal_id.clone(),
                name: h.commit.actor.name.clone(),
            }),
            call_id: Some(h.commit.call_id.clone()),
            commit_id: Some(h.commit.commit_id.to_string()),
            committed_at: Some(h.commit.committed_at.to_string()),
            event_id: Some(h.event_id.to_string()),
            hash: Some(h.hash.to_hex()),
            header: Some(hex::encode(encode_header(h))),
            payload_hash: Some(h.payload_hash.to_hex()),
            payload_salt: record.payload.as_ref().and_then(|p| p.salt()).map(hex::encode),
            prev_hash: Some(h.prev_hash.to_hex()),
            request_id: Some(h.commit.request_id.clone()),
            schema_version: Some(h.schema_version),
            seq: Some(h.seq),
            event_type: Some(h.event_type.clone()),
            payload: Some(payload),
            ..ExportLine::default()
        })
    }

    /// The line of a record included in full, for the audit export and the
    /// change feed alike: never with secret material. A format-2 body holds
    /// none (its secrets are kept beside it, and only commitments show); the
    /// secret fields of a format-1 payload (password hashes, API key digests,
    /// sealed second-factor seeds) are replaced by `"redacted"` and the line is
    /// marked so. Whoever reads the export or the feed holds nothing that
    /// would let them guess a password offline.
    pub(crate) fn record_text(record: &Record) -> Result<String, BadPayload> {
        Self::record_text_with(record, None)
    }

    /// [`Self::record_text`] with an inclusion proof (hex hashes).
    pub(crate) fn record_text_with(record: &Record, inclusion: Option<Vec<String>>) -> Result<String, BadPayload> {
        let line = ExportLine { inclusion, ..ExportLine::record(record)? };
        let Some(raw) = line.payload else { return Ok(line.to_text()) };
        if record.header.format != 1 || !SECRET_FIELDS.iter().any(|(secret, _)| raw.get().contains(secret)) {
            return Ok(line.to_text());
        }
        let mut value: serde_json::Value = serde_json::from_str(raw.get()).map_err(|_| BadPayload(record.seq()))?;
        if !redact(&mut value) {
            return Ok(line.to_text());
        }
        let redacted = RawValue::from_string(value.to_string()).map_err(|_| BadPayload(record.seq()))?;
        Ok(ExportLine { payload: Some(&redacted), redacted: true, ..line }.to_text())
    }

    /// The line of a record outside an account filter: position and hashes only.
    pub(crate) fn skipped(record: &Record) -> Self {
        ExportLine {
            hash: Some(record.header.hash.to_hex()),
            prev_hash: Some(record.header.prev_hash.to_hex()),
            seq: Some(record.header.seq),
            skipped: true,
            ..ExportLine::default()
        }
    }

    pub(crate) fn trailer(trailer: Trailer) -> Self {
        ExportLine { trailer: Some(trailer), ..ExportLine::default() }
    }

    /// The line as written: compact JSON, no newline.
    pub(crate) fn to_text(&self) -> String {
        // Strings, numbers, booleans and raw JSON only: serializing cannot fail.
        serde_json::to_string(self).expect("an export line always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_events::{Actor, AuthMethod, ChainTail, CommitMeta, Event, Payload, UtcDateTime};

    fn meta() -> CommitMeta {
        CommitMeta {
            commit_id: uuid::Uuid::nil(),
            committed_at: UtcDateTime::from_millis(1_795_000_000_000),
            actor: Actor { principal_id: "b".into(), name: String::new(), auth_method: AuthMethod::Password },
            request_id: "r".into(),
            call_id: "c1".into(),
        }
    }

    fn record(body: Option<&[u8]>) -> Record {
        let event = Event::ChangesTrimmed(ledger_events::ChangesTrimmed { before: 3 });
        let mut record = { ChainTail::GENESIS }.seal(&meta(), uuid::Uuid::nil(), &event, &[0; 32]);
        record.payload = body.map(|b| Payload::V2 { salt: [7; 32], body: b.to_vec(), sealed: Vec::new() });
        record
    }

    #[test]
    fn lines_keep_their_byte_layout() {
        let full = record(Some(br#"{"before":3}"#));
        let text = ExportLine::record_text(&full).unwrap();
        let h = &full.header;
        let expected = format!(
            concat!(
                r#"{{"actor":{{"authMethod":"password","id":"b","name":""}},"callId":"c1","#,
                r#""commitId":"00000000-0000-0000-0000-000000000000","committedAt":"2026-11-18T11:06:40Z","#,
                r#""eventId":"00000000-0000-0000-0000-000000000000","hash":"{}","header":"{}","payloadHash":"{}","#,
                r#""payloadSalt":"{}","prevHash":"{}","requestId":"r","schemaVersion":1,"seq":1,"#,
                r#""type":"ChangesTrimmed","payload":{{"before":3}}}}"#
            ),
            h.hash,
            hex::encode(encode_header(h)),
            h.payload_hash,
            hex::encode([7u8; 32]),
            h.prev_hash
        );
        assert_eq!(text, expected);
        let erased = ExportLine::record_text(&record(None)).unwrap();
        assert!(erased.ends_with(r#""payload":null}"#) && !erased.contains("payloadSalt"), "{erased}");
        assert_eq!(
            ExportLine::skipped(&full).to_text(),
            format!(r#"{{"hash":"{}","prevHash":"{}","seq":1,"skipped":true}}"#, h.hash, h.prev_hash)
        );
        let trailer = Trailer {
            digest: "d".into(),
            from: 1,
            last_hash: "h".into(),
            last_seq: 2,
            records: 1,
            skipped: 1,
            to: 2,
            ..Trailer::default()
        };
        assert_eq!(
            ExportLine::trailer(trailer).to_text(),
            r#"{"trailer":{"digest":"d","from":1,"lastHash":"h","lastSeq":2,"records":1,"skipped":1,"to":2}}"#
        );
        assert_eq!(ExportLine::record_text(&record(Some(b"{not json"))).unwrap_err(), BadPayload(1));
    }

    /// A format-1 payload's secret fields never leave in a line; the line says so.
    #[test]
    fn format_1_secrets_are_redacted() {
        let mut old = record(None);
        old.header.format = 1;
        let body = br#"{"accountId":"b","secretHash":"$argon2id$v=19$x","nested":[{"newSecretHash":"blake3:00"}]}"#;
        old.payload = Some(Payload::V1(body.to_vec()));
        let text = ExportLine::record_text(&old).unwrap();
        assert!(!text.contains("argon2") && !text.contains("blake3:00"), "{text}");
        assert!(text.contains(r#""redacted":true"#), "{text}");
        assert!(!text.contains("payloadSalt"), "{text}");
    }
}
