//! A log record: the chained header (who, when, what type, which payload) and its payload.
//!
//! The header is hashed; the payload is covered only through `payload_hash`. That
//! split lets an erasure drop a payload while every hash in the chain still verifies.

use std::fmt;

use uuid::Uuid;

use crate::values::UtcDateTime;

/// A blake3 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub const ZERO: Digest = Digest([0; 32]);

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits (either case); `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Digest> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Digest(out))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// How the actor proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// Internal work of the ledger itself (maintenance, restore).
    System,
    /// The fallback administrator that lives outside the log.
    Fallback,
    Password,
    AppPassword,
    ApiKey,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::System => "system",
            AuthMethod::Fallback => "fallback",
            AuthMethod::Password => "password",
            AuthMethod::AppPassword => "appPassword",
            AuthMethod::ApiKey => "apiKey",
        }
    }

    pub(crate) fn tag(self) -> u8 {
        match self {
            AuthMethod::System => 0,
            AuthMethod::Fallback => 1,
            AuthMethod::Password => 2,
            AuthMethod::AppPassword => 3,
            AuthMethod::ApiKey => 4,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<Self> {
        Some(match tag {
            0 => AuthMethod::System,
            1 => AuthMethod::Fallback,
            2 => AuthMethod::Password,
            3 => AuthMethod::AppPassword,
            4 => AuthMethod::ApiKey,
            _ => return None,
        })
    }
}

/// Who caused a commit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor {
    /// Principal id (a JMAP id), or empty for `system`.
    pub principal_id: String,
    pub name: String,
    pub auth_method: AuthMethod,
}

impl Actor {
    pub fn system() -> Self {
        Actor { principal_id: String::new(), name: "system".to_owned(), auth_method: AuthMethod::System }
    }
}

/// What every event of one commit (one `/set` call) shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitMeta {
    pub commit_id: Uuid,
    pub committed_at: UtcDateTime,
    pub actor: Actor,
    /// The HTTP request id and JMAP method call id that caused the commit, if any.
    pub request_id: String,
    pub call_id: String,
}

/// The hashed part of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub seq: u64,
    pub event_id: Uuid,
    pub commit: CommitMeta,
    pub event_type: String,
    pub schema_version: u16,
    pub payload_len: u32,
    pub payload_hash: Digest,
    pub prev_hash: Digest,
    pub hash: Digest,
}

/// A header with its payload. `payload` is `None` once erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub header: RecordHeader,
    pub payload: Option<Vec<u8>>,
}

impl Record {
    pub fn seq(&self) -> u64 {
        self.header.seq
    }

    /// The decoded event; `None` when the payload was erased.
    pub fn event(&self) -> Option<Result<crate::Event, crate::CodecError>> {
        let payload = self.payload.as_deref()?;
        Some(crate::codec::decode_event(&self.header.event_type, self.header.schema_version, payload))
    }
}
