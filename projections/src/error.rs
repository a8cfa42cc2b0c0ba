//! The projections crate's one error type.

use ledger_events::CodecError;

/// Why projections could not be read, written or rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// fjall failed.
    #[error("storage error: {0}")]
    Storage(#[from] fjall::Error),
    /// The log failed or is corrupt (replay).
    #[error(transparent)]
    Log(#[from] ledger_events::Error),
    /// A stored projection value is not what the codec writes.
    #[error("projection value does not decode: {0}")]
    Codec(#[from] CodecError),
    /// The log and the projections disagree; the message says how.
    #[error("{0}")]
    Inconsistent(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
