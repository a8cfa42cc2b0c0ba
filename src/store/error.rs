//! The store's error type: why the ledger could not open, read or write.

/// Why the ledger could not open, read or write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error(transparent)]
    Log(#[from] ledger_events::Error),
    #[error(transparent)]
    Projections(#[from] ledger_projections::Error),
    #[error("storage error: {0}")]
    Storage(#[from] fjall::Error),
    /// The commit was not made durable; nothing of it was acknowledged.
    #[error("write failed, nothing was committed: {0}")]
    WriteFailed(String),
    #[error("the ledger is shutting down")]
    ShuttingDown,
    /// A thread or task of the ledger failed (a bug or resource exhaustion).
    #[error("internal error: {0}")]
    Internal(String),
    /// An erasure is committed, but its data could not yet be removed from the
    /// files because readers that began before it (long exports) still read it.
    #[error(
        "the erasure is recorded, but after {waited:?} {held}, so files keep it; erase the same ids again once \
         they end"
    )]
    ErasurePending { held: String, waited: std::time::Duration },
    /// Stored bytes are not what the ledger writes (a damaged store).
    #[error("damaged store: {0}")]
    Damaged(String),
}
