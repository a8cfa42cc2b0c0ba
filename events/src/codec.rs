//! The one codec: record headers (explicit binary layout), event payloads (JSON),
//! keys (big-endian, so byte order is log order), and JSON values for projections.
//!
//! Header layout, format 1 (all integers big-endian, `str` = u32 length + UTF-8):
//!
//! ```text
//! u8   format (= 1)
//! u64  seq
//! [16] event id (uuid v7)
//! [16] commit id
//! i64  committed-at, ms since the Unix epoch, UTC
//! u8   actor auth method   str actor principal id   str actor name
//! str  request id          str call id
//! str  event type          u16 schema version
//! u32  payload length      [32] payload hash (blake3, derive-key "account-ledger payload v1")
//! [32] previous record hash
//! [32] this record hash = blake3 derive-key "account-ledger record v1" over all bytes above
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::event::Event;
use crate::record::{Actor, AuthMethod, CommitMeta, Digest, RecordHeader};
use crate::values::UtcDateTime;

pub const HEADER_FORMAT: u8 = 1;
const RECORD_HASH_CONTEXT: &str = "account-ledger record v1";
const PAYLOAD_HASH_CONTEXT: &str = "account-ledger payload v1";

/// The schema version this build writes for an event type. Version 2 of
/// CredentialAdded and CredentialUpdated added the sealed `otpAuth`; version 2
/// of DomainCreated and DomainUpdated added `memberTenantId`. Version 1
/// payloads upcast by leaving the added field absent.
pub fn schema_version(event_type: &str) -> u16 {
    match event_type {
        "CredentialAdded" | "CredentialUpdated" | "DomainCreated" | "DomainUpdated" => 2,
        _ => 1,
    }
}

/// Bytes that are not what the codec wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("record header is truncated")]
    Truncated,
    #[error("record header has {0} trailing bytes")]
    TrailingBytes(usize),
    #[error("unknown record header format {0}")]
    UnknownFormat(u8),
    #[error("unknown auth method tag {0}")]
    UnknownAuthMethod(u8),
    #[error("a header string is not UTF-8")]
    NotUtf8,
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    #[error("unsupported schema version {version} of {event_type}")]
    UnknownSchemaVersion { event_type: String, version: u16 },
    #[error("payload of {event_type} does not decode: {reason}")]
    BadPayload { event_type: String, reason: String },
    #[error("value does not decode: {0}")]
    BadValue(String),
}

/// The big-endian key of a log position.
pub fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub fn decode_seq_key(key: &[u8]) -> Result<u64, CodecError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| CodecError::Truncated)?;
    Ok(u64::from_be_bytes(bytes))
}

pub fn payload_hash(payload: &[u8]) -> Digest {
    Digest(blake3::derive_key(PAYLOAD_HASH_CONTEXT, payload))
}

/// The record hash of a header (its own `hash` field is not an input).
pub fn record_hash(header: &RecordHeader) -> Digest {
    let mut buf = Vec::with_capacity(256);
    write_header_body(&mut buf, header);
    Digest(blake3::derive_key(RECORD_HASH_CONTEXT, &buf))
}

pub fn encode_header(header: &RecordHeader) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    write_header_body(&mut buf, header);
    buf.extend_from_slice(&header.hash.0);
    buf
}

fn write_header_body(buf: &mut Vec<u8>, h: &RecordHeader) {
    buf.push(HEADER_FORMAT);
    buf.extend_from_slice(&h.seq.to_be_bytes());
    buf.extend_from_slice(h.event_id.as_bytes());
    buf.extend_from_slice(h.commit.commit_id.as_bytes());
    buf.extend_from_slice(&h.commit.committed_at.millis().to_be_bytes());
    buf.push(h.commit.actor.auth_method.tag());
    put_str(buf, &h.commit.actor.principal_id);
    put_str(buf, &h.commit.actor.name);
    put_str(buf, &h.commit.request_id);
    put_str(buf, &h.commit.call_id);
    put_str(buf, &h.event_type);
    buf.extend_from_slice(&h.schema_version.to_be_bytes());
    buf.extend_from_slice(&h.payload_len.to_be_bytes());
    buf.extend_from_slice(&h.payload_hash.0);
    buf.extend_from_slice(&h.prev_hash.0);
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    // Header strings are bounded by the service (names, ids); u32 cannot overflow here.
    buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.bytes.len() < n {
            return Err(CodecError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }

    fn str(&mut self) -> Result<String, CodecError> {
        let len = u32::from_be_bytes(self.array()?) as usize;
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec()).map_err(|_| CodecError::NotUtf8)
    }
}

pub fn decode_header(bytes: &[u8]) -> Result<RecordHeader, CodecError> {
    let mut r = Reader { bytes };
    let format = r.u8()?;
    if format != HEADER_FORMAT {
        return Err(CodecError::UnknownFormat(format));
    }
    let seq = u64::from_be_bytes(r.array()?);
    let event_id = Uuid::from_bytes(r.array()?);
    let commit_id = Uuid::from_bytes(r.array()?);
    let committed_at = UtcDateTime::from_millis(i64::from_be_bytes(r.array()?));
    let tag = r.u8()?;
    let auth_method = AuthMethod::from_tag(tag).ok_or(CodecError::UnknownAuthMethod(tag))?;
    let principal_id = r.str()?;
    let name = r.str()?;
    let request_id = r.str()?;
    let call_id = r.str()?;
    let event_type = r.str()?;
    let schema_version = u16::from_be_bytes(r.array()?);
    let payload_len = u32::from_be_bytes(r.array()?);
    let payload_hash = Digest(r.array()?);
    let prev_hash = Digest(r.array()?);
    let hash = Digest(r.array()?);
    if !r.bytes.is_empty() {
        return Err(CodecError::TrailingBytes(r.bytes.len()));
    }
    Ok(RecordHeader {
        seq,
        event_id,
        commit: CommitMeta {
            commit_id,
            committed_at,
            actor: Actor { principal_id, name, auth_method },
            request_id,
            call_id,
        },
        event_type,
        schema_version,
        payload_len,
        payload_hash,
        prev_hash,
        hash,
    })
}

/// Encodes an event as (type name, schema version, payload bytes).
pub fn encode_event(event: &Event) -> (&'static str, u16, Vec<u8>) {
    // Payload structs hold only strings, numbers, maps with string keys and
    // options: serde_json cannot fail on them.
    let payload = event.payload_json().expect("event payloads always serialize to JSON");
    (event.type_name(), schema_version(event.type_name()), payload)
}

/// Decodes a payload, upcasting older schema versions to the current shape.
pub fn decode_event(event_type: &str, version: u16, payload: &[u8]) -> Result<Event, CodecError> {
    if version == 0 || version > schema_version(event_type) {
        return Err(CodecError::UnknownSchemaVersion { event_type: event_type.to_owned(), version });
    }
    // Upcasters: every change so far only added optional fields, so older
    // payloads decode into the current shape with those fields absent.
    match Event::from_payload_json(event_type, payload) {
        Some(Ok(event)) => Ok(event),
        Some(Err(e)) => Err(CodecError::BadPayload { event_type: event_type.to_owned(), reason: e.to_string() }),
        None => Err(CodecError::UnknownEventType(event_type.to_owned())),
    }
}

/// JSON encoding of stored values (projections). Struct field order and BTreeMaps
/// make it deterministic, which replay-equals-live relies on.
///
/// Panics if `value` does not serialize, which the projected state types (plain
/// structs, strings, numbers, maps with string keys) never do: storing empty
/// bytes instead would lose an object silently.
pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("projected values always serialize to JSON")
}

pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    serde_json::from_slice(bytes).map_err(|e| CodecError::BadValue(e.to_string()))
}
