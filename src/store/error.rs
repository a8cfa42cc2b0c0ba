//! The store's error type: why the ledger could not open, read or write.

/// Why the ledger could not open, read or write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    /// An offline tool was pointed at a path that holds no ledger store.
    #[error("{path} is not a ledger store: {reason}; check the path (a store is the --data-dir of a `ledger serve`)")]
    NotAStore { path: String, reason: String },
    /// A running process (a `ledger serve`) has the store open.
    #[error(
        "{path} is held by a running `ledger serve`{}; stop it first, or work online: `ledger backup --url URL \
         FILE` for a copy, `ledger audit export` and `ledger audit verify FILE` for a check",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Held { path: String, pid: Option<u32> },
    #[error(transparent)]
    Log(#[from] ledger_events::Error),
    #[error(transparent)]
    Projections(#[from] ledger_projections::Error),
    #[error("storage error: {}", fjall_text(.0))]
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
    /// A backup file that cannot be used (its path is in the message).
    #[error("the backup {0}")]
    Backup(String),
    /// Stored bytes are not what the ledger writes (a damaged store).
    #[error("damaged store: {0}")]
    Damaged(String),
    /// A cluster node could not append to or follow its log stream (the
    /// message says which, and whether the write may still land).
    #[error("cluster log: {0}")]
    Cluster(String),
}

impl StoreError {
    /// The same error for another waiter of the same failed group.
    pub(crate) fn duplicate(&self) -> StoreError {
        match self {
            StoreError::WriteFailed(s) => StoreError::WriteFailed(s.clone()),
            StoreError::Cluster(s) => StoreError::Cluster(s.clone()),
            StoreError::ShuttingDown => StoreError::ShuttingDown,
            other => StoreError::Internal(other.to_string()),
        }
    }
}

/// A fjall error as an operator reads it: the operating system's words for
/// an I/O error ("No space left on device"), not fjall's debug form.
pub(crate) fn fjall_text(e: &fjall::Error) -> String {
    match e {
        fjall::Error::Io(io) => io.to_string(),
        fjall::Error::Locked => "another process has the store open".to_owned(),
        fjall::Error::Poisoned => {
            "the store refuses writes after a failed write; free disk space, then restart the service".to_owned()
        }
        other => other.to_string(),
    }
}
