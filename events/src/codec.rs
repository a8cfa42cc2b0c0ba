//! The one codec: record headers (explicit binary layout), event payloads (JSON),
//! keys (big-endian, so byte order is log order), and JSON values for projections.
//!
//! Header layout (all integers big-endian, `str` = u32 length + UTF-8):
//!
//! ```text
//! u8   format (1 or 2; this build writes 2)
//! u64  seq
//! [16] event id (uuid v7)
//! [16] commit id
//! i64  committed-at, ms since the Unix epoch, UTC
//! u8   actor auth method   str actor principal id   str actor name
//! str  request id          str call id               (each at most 64 bytes from format 2)
//! str  event type          u16 schema version
//! u32  payload length                                 (format 1 only)
//! [32] payload hash
//! [32] previous record hash
//! [32] this record hash = blake3 derive-key "account-ledger record v1" over all bytes above
//! ```
//!
//! Payload, format 1: the event's JSON; payload hash = blake3 derive-key
//! "account-ledger payload v1" over it. Unsalted: whoever can rebuild an erased
//! payload's bytes from a guess can confirm the guess against the hash.
//!
//! Payload, format 2 (stored bytes):
//!
//! ```text
//! [32] salt, random per record
//! u32  body length     body: the event's JSON, secrets replaced by commitments
//! ...  sealed: the secrets, JSON {"<field>": {"salt": hex, "value": "<secret>"}}, or empty
//! ```
//!
//! Payload hash = blake3 derive-key "account-ledger payload v2" over salt ‖ body.
//! A secret field `f` (see [`SECRET_FIELDS`]) leaves the body; its commitment
//! field holds blake3 derive-key "account-ledger secret v2" over the secret's
//! own salt ‖ the secret, hex. Erasure removes salt, body and sealed together:
//! what stays (the header) commits to 256 random bits nobody keeps.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::event::Event;
use crate::record::{Actor, AuthMethod, CommitMeta, Digest, Payload, Record, RecordHeader};
use crate::values::UtcDateTime;

/// The record format this build writes.
pub const HEADER_FORMAT: u8 = 2;
const RECORD_HASH_CONTEXT: &str = "account-ledger record v1";
const PAYLOAD_HASH_CONTEXT: &str = "account-ledger payload v1";
const PAYLOAD_HASH_CONTEXT_V2: &str = "account-ledger payload v2";
const SECRET_COMMITMENT_CONTEXT: &str = "account-ledger secret v2";
const RECORD_SALT_CONTEXT: &str = "account-ledger record salt v2";
const SECRET_SALT_CONTEXT: &str = "account-ledger secret salt v2";

/// Payload fields that hold secret material (password hashes, API key and app
/// password digests, sealed TOTP seeds), each with the field that replaces it
/// in a format-2 body: a commitment to it.
pub const SECRET_FIELDS: [(&str, &str); 4] = [
    ("secretHash", "secretCommitment"),
    ("newSecretHash", "newSecretCommitment"),
    ("otpAuthSealed", "otpAuthCommitment"),
    ("newOtpAuthSealed", "newOtpAuthCommitment"),
];

/// The event types whose payloads hold secrets (top-level fields only).
const SECRET_BEARING: [&str; 2] = ["CredentialAdded", "CredentialUpdated"];

/// The schema version this build writes for an event type. Version 2 of
/// CredentialAdded and CredentialUpdated added the sealed `otpAuth`; version 3
/// moved their secrets out of the body (record format 2 only: `secretHash`
/// becomes `secretCommitment`, and so on, see [`SECRET_FIELDS`]). Version 2 of
/// DomainCreated and DomainUpdated added `memberTenantId`, and version 3 their
/// `settings` (Stalwart's other domain fields). Version 2 of
/// RoleCreated and RoleUpdated took Stalwart's shape: `name` became optional
/// (absent in version 2) and `disabledPermissions`, `roleIds` and
/// `memberTenantId` were added. Older payloads upcast by leaving the added
/// fields absent.
pub fn schema_version(event_type: &str) -> u16 {
    match event_type {
        "CredentialAdded" | "CredentialUpdated" => 3,
        "DomainCreated" | "DomainUpdated" => 3,
        "RoleCreated" | "RoleUpdated" => 2,
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
    #[error("record format {0} has no such payload layout")]
    BadPayloadLayout(u8),
    #[error("a secret kept beside the payload does not match its commitment in the payload")]
    SealedMismatch,
}

/// The big-endian key of a log position.
pub fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub fn decode_seq_key(key: &[u8]) -> Result<u64, CodecError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| CodecError::Truncated)?;
    Ok(u64::from_be_bytes(bytes))
}

/// The payload hash of record format 1: unsalted, over the JSON bytes.
pub fn payload_hash_v1(body: &[u8]) -> Digest {
    Digest(blake3::derive_key(PAYLOAD_HASH_CONTEXT, body))
}

/// The payload hash of record format 2: over the record's salt and the body.
pub fn payload_hash_v2(salt: &[u8; 32], body: &[u8]) -> Digest {
    let mut hasher = blake3::Hasher::new_derive_key(PAYLOAD_HASH_CONTEXT_V2);
    hasher.update(salt);
    hasher.update(body);
    Digest(*hasher.finalize().as_bytes())
}

/// The hash a header holds for `payload`.
pub fn payload_hash(payload: &Payload) -> Digest {
    match payload {
        Payload::V1(body) => payload_hash_v1(body),
        Payload::V2 { salt, body, .. } => payload_hash_v2(salt, body),
    }
}

/// The bytes the log stores for a payload (layouts above).
pub fn encode_payload(payload: &Payload) -> Vec<u8> {
    match payload {
        Payload::V1(body) => body.clone(),
        Payload::V2 { salt, body, sealed } => {
            let mut out = Vec::with_capacity(36 + body.len() + sealed.len());
            out.extend_from_slice(salt);
            // Payloads are bounded far below 4 GiB by the request size limits.
            out.extend_from_slice(&(body.len() as u32).to_be_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(sealed);
            out
        }
    }
}

/// Reads stored payload bytes of a record of `format`.
pub fn decode_payload(format: u8, stored: &[u8]) -> Result<Payload, CodecError> {
    match format {
        1 => Ok(Payload::V1(stored.to_vec())),
        2 => {
            let mut r = Reader { bytes: stored };
            let salt = r.array::<32>()?;
            let len = u32::from_be_bytes(r.array()?) as usize;
            let body = r.take(len)?.to_vec();
            Ok(Payload::V2 { salt, body, sealed: r.bytes.to_vec() })
        }
        other => Err(CodecError::BadPayloadLayout(other)),
    }
}

fn commitment(salt: &[u8], secret: &str) -> String {
    let mut hasher = blake3::Hasher::new_derive_key(SECRET_COMMITMENT_CONTEXT);
    hasher.update(salt);
    hasher.update(secret.as_bytes());
    hasher.finalize().to_hex().to_string()
}

/// One secret kept beside a format-2 body.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedSecret {
    /// 32 random bytes, hex: the commitment's salt.
    salt: String,
    value: String,
}

/// Encodes an event as record format 2: (type name, schema version, payload).
/// `entropy` (32 random bytes from the caller, never stored) seeds the record's
/// salt and each secret's salt; one cannot be derived from another.
pub fn seal_event(event: &Event, entropy: &[u8; 32]) -> (&'static str, u16, Payload) {
    let event_type = event.type_name();
    // Payload structs hold only strings, numbers, maps with string keys and
    // options: serde_json cannot fail on them.
    let json = event.payload_json().expect("event payloads always serialize to JSON");
    let salt = blake3::derive_key(RECORD_SALT_CONTEXT, entropy);
    let (body, sealed) =
        if SECRET_BEARING.contains(&event_type) { split_secrets(json, entropy) } else { (json, Vec::new()) };
    (event_type, schema_version(event_type), Payload::V2 { salt, body, sealed })
}

/// Moves the secret fields of a payload's JSON out to the sealed JSON, leaving
/// commitments in their place.
fn split_secrets(json: Vec<u8>, entropy: &[u8; 32]) -> (Vec<u8>, Vec<u8>) {
    let mut body: Map<String, Value> = serde_json::from_slice(&json).expect("an event payload is a JSON object");
    let mut sealed = Map::new();
    for (field, commitment_field) in SECRET_FIELDS {
        let Some(Value::String(secret)) = body.remove(field) else { continue };
        let mut key_material = entropy.to_vec();
        key_material.extend_from_slice(field.as_bytes());
        let salt = blake3::derive_key(SECRET_SALT_CONTEXT, &key_material);
        body.insert(commitment_field.to_owned(), Value::String(commitment(&salt, &secret)));
        let entry = SealedSecret { salt: hex::encode(salt), value: secret };
        sealed.insert(field.to_owned(), serde_json::to_value(entry).expect("strings serialize"));
    }
    let sealed = if sealed.is_empty() { Vec::new() } else { serde_json::to_vec(&sealed).expect("strings serialize") };
    (serde_json::to_vec(&body).expect("a JSON object serializes"), sealed)
}

/// Puts the sealed secrets of a format-2 payload back into its body, checking
/// each against its commitment; the JSON of the event as it was decided.
fn join_secrets(body: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CodecError> {
    let bad = |e: serde_json::Error| CodecError::BadValue(e.to_string());
    let mut sealed: Map<String, Value> =
        if sealed.is_empty() { Map::new() } else { serde_json::from_slice(sealed).map_err(bad)? };
    let mut object: Map<String, Value> = serde_json::from_slice(body).map_err(bad)?;
    for (field, commitment_field) in SECRET_FIELDS {
        let Some(committed) = object.remove(commitment_field) else { continue };
        let entry: SealedSecret =
            serde_json::from_value(sealed.remove(field).ok_or(CodecError::SealedMismatch)?).map_err(bad)?;
        let salt = hex::decode(&entry.salt).map_err(|_| CodecError::SealedMismatch)?;
        if committed.as_str() != Some(commitment(&salt, &entry.value).as_str()) {
            return Err(CodecError::SealedMismatch);
        }
        object.insert(field.to_owned(), Value::String(entry.value));
    }
    if !sealed.is_empty() {
        return Err(CodecError::SealedMismatch);
    }
    serde_json::to_vec(&object).map_err(bad)
}

/// Whether a format-2 payload's sealed secrets match the commitments in its
/// body (part of the chain check of a stored record): an event type without
/// secrets keeps none beside its body. Format 1 keeps secrets in the body.
pub fn sealed_secrets_match(event_type: &str, payload: &Payload) -> bool {
    match payload {
        Payload::V1(_) => true,
        Payload::V2 { sealed, .. } if !SECRET_BEARING.contains(&event_type) => sealed.is_empty(),
        Payload::V2 { body, sealed, .. } => join_secrets(body, sealed).is_ok(),
    }
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
    buf.push(h.format);
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
    if h.format == 1 {
        buf.extend_from_slice(&h.payload_len.unwrap_or_default().to_be_bytes());
    }
    buf.extend_from_slice(&h.payload_hash.0);
    buf.extend_from_slice(&h.prev_hash.0);
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    // Header strings are bounded by the service (names, ids, and the call and
    // request ids the JMAP layer caps); u32 cannot overflow here.
    buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// One record as a backup file carries it (`ledger backup`): the header's
/// length (u32 big-endian), the header as the log stores it, then one byte,
/// 1 when the stored payload follows (to the end) or 0 when it was erased.
/// Reading it back gives the very record the log held.
pub fn encode_record(record: &Record) -> Vec<u8> {
    let header = encode_header(&record.header);
    let payload = record.payload.as_ref().map(encode_payload);
    let mut out = Vec::with_capacity(5 + header.len() + payload.as_ref().map_or(0, Vec::len));
    // A header is bounded (ids and names of bounded length) far below 4 GiB.
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(&header);
    match payload {
        Some(p) => {
            out.push(1);
            out.extend_from_slice(&p);
        }
        None => out.push(0),
    }
    out
}

/// Reads what [`encode_record`] wrote. Errors: [`CodecError::Truncated`],
/// a bad header, or a payload that does not fit its header's format.
pub fn decode_record(bytes: &[u8]) -> Result<Record, CodecError> {
    let mut r = Reader { bytes };
    let len = u32::from_be_bytes(r.array()?) as usize;
    let header = decode_header(r.take(len)?)?;
    let payload = match r.u8()? {
        0 if r.bytes.is_empty() => None,
        0 => return Err(CodecError::TrailingBytes(r.bytes.len())),
        1 => Some(decode_payload(header.format, r.bytes)?),
        other => return Err(CodecError::BadValue(format!("payload marker {other}"))),
    };
    Ok(Record { header, payload })
}

/// The format byte of a commit message ([`encode_commit`]).
pub const COMMIT_MESSAGE_FORMAT: u8 = 1;

/// One commit as one message of a replicated log (a cluster's JetStream
/// stream): the format byte [`COMMIT_MESSAGE_FORMAT`], the number of records
/// (u32 big-endian), then each record as [`encode_record`] writes it,
/// prefixed with its length (u32 big-endian). A record whose payload was
/// erased travels without it, as in a backup.
pub fn encode_commit(records: &[Record]) -> Vec<u8> {
    let mut out = vec![COMMIT_MESSAGE_FORMAT];
    // A commit is bounded by the message size (1 MiB) far below 4G records.
    out.extend_from_slice(&(records.len() as u32).to_be_bytes());
    for record in records {
        let bytes = encode_record(record);
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

/// Reads what [`encode_commit`] wrote. Errors: an unknown format byte
/// ([`CodecError::BadValue`]), [`CodecError::Truncated`],
/// [`CodecError::TrailingBytes`], or a record that does not decode.
pub fn decode_commit(bytes: &[u8]) -> Result<Vec<Record>, CodecError> {
    let mut r = Reader { bytes };
    match r.u8()? {
        COMMIT_MESSAGE_FORMAT => {}
        other => return Err(CodecError::BadValue(format!("commit message format {other}"))),
    }
    let count = u32::from_be_bytes(r.array()?) as usize;
    // Every record takes at least its 4-byte length: never reserve more than the bytes can hold.
    let mut records = Vec::with_capacity(count.min(r.bytes.len() / 4));
    for _ in 0..count {
        let len = u32::from_be_bytes(r.array()?) as usize;
        records.push(decode_record(r.take(len)?)?);
    }
    if !r.bytes.is_empty() {
        return Err(CodecError::TrailingBytes(r.bytes.len()));
    }
    Ok(records)
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
    if !(1..=HEADER_FORMAT).contains(&format) {
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
    let payload_len = if format == 1 { Some(u32::from_be_bytes(r.array()?)) } else { None };
    let payload_hash = Digest(r.array()?);
    let prev_hash = Digest(r.array()?);
    let hash = Digest(r.array()?);
    if !r.bytes.is_empty() {
        return Err(CodecError::TrailingBytes(r.bytes.len()));
    }
    Ok(RecordHeader {
        format,
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

/// Decodes a payload, upcasting older schema versions to the current shape.
pub fn decode_event(event_type: &str, version: u16, payload: &Payload) -> Result<Event, CodecError> {
    if version == 0 || version > schema_version(event_type) {
        return Err(CodecError::UnknownSchemaVersion { event_type: event_type.to_owned(), version });
    }
    let joined;
    let json = match payload {
        Payload::V1(body) => body.as_slice(),
        Payload::V2 { body, sealed, .. } => {
            joined = join_secrets(body, sealed)?;
            joined.as_slice()
        }
    };
    // Upcasters: every change so far only added optional fields (or, in v3,
    // moved secrets beside the body, joined back above), so older payloads
    // decode into the current shape with those fields absent.
    match Event::from_payload_json(event_type, json) {
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
