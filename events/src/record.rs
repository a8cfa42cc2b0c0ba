//! A log record: the chained header (who, when, what type, which payload) and its payload.
//!
//! The header is hashed; the payload is covered only through `payload_hash`. That
//! split lets an erasure drop a payload while every hash in the chain still verifies.
//! From record format 2 the payload hash commits to a random salt kept with the
//! payload (and erased with it), and secrets are kept beside the payload, which
//! holds only commitments to them; see [`Payload`] and `docs/events.md`.

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

/// Longest JMAP call id (bytes, printable ASCII) a record header keeps: the
/// client chooses it, and a header is never erased (RFC 8620 §3.2 sets no
/// bound; this service does).
pub const MAX_CALL_ID_LEN: usize = 64;

/// Longest request id (bytes) a record header keeps; the client may choose it
/// (`X-Request-Id`), so it is bounded like the call id.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// The hashed part of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// The record format (1 or 2, see `codec`); this build writes 2.
    pub format: u8,
    pub seq: u64,
    pub event_id: Uuid,
    pub commit: CommitMeta,
    pub event_type: String,
    pub schema_version: u16,
    /// The payload's length in bytes: format 1 only. Format 2 leaves it out, as
    /// a length that survives erasure narrows a guess of what was erased.
    pub payload_len: Option<u32>,
    pub payload_hash: Digest,
    pub prev_hash: Digest,
    pub hash: Digest,
}

/// A record's payload, as its header's format defines it.
#[derive(Clone, PartialEq, Eq)]
pub enum Payload {
    /// Record format 1: the event's JSON, hashed as is. Secrets are inside it,
    /// and the unsalted hash lets a guess of an erased payload be confirmed.
    V1(Vec<u8>),
    /// Record format 2: `body` is the event's JSON with every secret replaced by
    /// a salted commitment; the payload hash covers `salt` and `body`; `sealed`
    /// holds the secrets themselves (codec's sealed-secrets JSON, empty when
    /// the event has none). All three are erased together.
    V2 { salt: [u8; 32], body: Vec<u8>, sealed: Vec<u8> },
}

impl Payload {
    /// The JSON the payload hash covers (and exports and the feed show).
    pub fn body(&self) -> &[u8] {
        match self {
            Payload::V1(body) | Payload::V2 { body, .. } => body,
        }
    }

    /// The salt the payload hash commits to (format 2).
    pub fn salt(&self) -> Option<&[u8; 32]> {
        match self {
            Payload::V1(_) => None,
            Payload::V2 { salt, .. } => Some(salt),
        }
    }
}

impl fmt::Debug for Payload {
    // Never prints the sealed secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = String::from_utf8_lossy(self.body());
        match self {
            Payload::V1(_) => f.debug_tuple("V1").field(&body).finish(),
            Payload::V2 { sealed, .. } => {
                f.debug_struct("V2").field("body", &body).field("sealed_len", &sealed.len()).finish_non_exhaustive()
            }
        }
    }
}

/// A header with its payload. `payload` is `None` once erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub header: RecordHeader,
    pub payload: Option<Payload>,
}

impl Record {
    pub fn seq(&self) -> u64 {
        self.header.seq
    }

    /// The decoded event; `None` when the payload was erased.
    pub fn event(&self) -> Option<Result<crate::Event, crate::CodecError>> {
        let payload = self.payload.as_ref()?;
        Some(crate::codec::decode_event(&self.header.event_type, self.header.schema_version, payload))
    }
}
