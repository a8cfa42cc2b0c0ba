//! The projections crate's one error type.

use ledger_events::CodecError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage error: {0}")]
    Storage(#[from] fjall::Error),
    #[error(transparent)]
    Log(#[from] ledger_events::Error),
    #[error("projection value does not decode: {0}")]
    Codec(#[from] CodecError),
    /// The log and the projections disagree; the message says how.
    #[error("{0}")]
    Inconsistent(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
