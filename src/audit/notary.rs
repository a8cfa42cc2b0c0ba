//! The log's notary: keeps the Merkle tree up with the durable log, signs
//! checkpoints with the log key, and answers inclusion and consistency proofs.
//!
//! Invariant: **the notary never signs two checkpoints that are inconsistent
//! with each other** (C2SP tlog-checkpoint §Signatures). The last checkpoint
//! it signed is kept beside the key (`KEY.checkpoint`, fsynced before the new
//! checkpoint is handed out); before signing, the tree's root at that size must
//! equal the kept root, so any tree it signs extends every tree it signed. A
//! log that lost or rewrote records (a restore, a copied data directory) under
//! the same key is refused: at start when the tree already reaches the kept
//! size, else at the first checkpoint.
//!
//! The key: `--log-key FILE`, or `log.key` in the data directory, made on
//! first start (mode 0600) and named by `--log-origin`. A key file readable
//! by group or others is refused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ledger_events::merkle::{self, CompactRange, Hash};
use ledger_events::{Digest, MerkleTree};

use super::note::{Checkpoint, NoteError, SignerKey, VerifierKey};
use crate::store::Ledger;

/// The key file made in the data directory when none is given.
pub const LOG_KEY_FILE: &str = "log.key";

/// Where the key comes from.
#[derive(Debug, Clone, Default)]
pub struct NotaryConfig {
    /// The operator's key file; `None` for `log.key` in the data directory.
    pub key_file: Option<PathBuf>,
    /// The origin (key name) the key must have; a key made on first start gets it.
    pub origin: Option<String>,
    /// The origin of a key made on first start when `origin` is not given.
    pub fallback_origin: Option<String>,
}

/// Why the notary cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum NotaryError {
    #[error("the log key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error(
        "the log key already signed a checkpoint of tree size {signed}, but this log is inconsistent with it (the \
         log was restored or replaced): it will not sign a second history; give this log a new key (--log-key)"
    )]
    Inconsistent { signed: u64 },
    #[error("the log key already signed a checkpoint of tree size {signed}; this log has {size} records so far")]
    Behind { signed: u64, size: u64 },
    #[error("{what} {value} is beyond the log (tree size {size})")]
    BeyondLog { what: &'static str, value: u64, size: u64 },
    #[error("{0}")]
    Bad(String),
    /// Boxed: a store error is large, and every notary call returns this.
    #[error(transparent)]
    Store(Box<crate::StoreError>),
}

impl From<crate::StoreError> for NotaryError {
    fn from(e: crate::StoreError) -> Self {
        NotaryError::Store(Box::new(e))
    }
}

impl From<ledger_events::Error> for NotaryError {
    fn from(e: ledger_events::Error) -> Self {
        NotaryError::Store(Box::new(e.into()))
    }
}

/// A signed checkpoint and the chain's end at its size.
#[derive(Debug, Clone)]
pub struct Signed {
    pub checkpoint: Checkpoint,
    /// The whole signed note.
    pub note: String,
    /// The record hash at position `checkpoint.size` (zero for size 0).
    pub head: Digest,
}

/// An inclusion proof of one record.
#[derive(Debug, Clone)]
pub struct Inclusion {
    pub position: u64,
    pub size: u64,
    pub record_hash: Digest,
    pub hashes: Vec<Hash>,
    pub root: Hash,
}

/// A consistency proof between two sizes.
#[derive(Debug, Clone)]
pub struct Consistency {
    pub from: u64,
    pub to: u64,
    pub from_root: Hash,
    pub to_root: Hash,
    pub hashes: Vec<Hash>,
}

/// The notary of one ledger. Every method blocks (fjall, files): call it off
/// the async executor.
pub struct Notary {
    ledger: Ledger,
    tree: MerkleTree,
    key: SignerKey,
    /// `KEY.checkpoint`: the last checkpoint signed.
    guard: PathBuf,
    /// The last checkpoint signed; held while catching up and signing.
    signed: Mutex<Option<Checkpoint>>,
}

impl std::fmt::Debug for Notary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Notary({})", self.key.verifier().encode())
    }
}

fn key_error(path: &Path, reason: impl Into<String>) -> NotaryError {
    NotaryError::Key { path: path.display().to_string(), reason: reason.into() }
}

/// The origin of a key made without `--log-origin`: unique, stable once made.
fn default_origin() -> String {
    let mut id = [0u8; 8];
    let _ = getrandom::fill(&mut id);
    format!("account-ledger.invalid/{}", hex::encode(id))
}

impl Notary {
    /// Loads (or makes) the key, reads the last signed checkpoint, and checks
    /// the log against it as far as the tree reaches.
    pub fn open(ledger: &Ledger, data_dir: &Path, config: &NotaryConfig) -> Result<Self, NotaryError> {
        let path = config.key_file.clone().unwrap_or_else(|| data_dir.join(LOG_KEY_FILE));
        let key = match std::fs::read_to_string(&path) {
            Ok(text) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode =
                        std::fs::metadata(&path).map_err(|e| key_error(&path, e.to_string()))?.permissions().mode();
                    if mode & 0o077 != 0 {
                        return Err(key_error(
                            &path,
                            format!("is readable by others (mode {:o}): chmod 600 it", mode & 0o777),
                        ));
                    }
                }
                let key = SignerKey::parse(&text).map_err(|e| key_error(&path, e.to_string()))?;
                if let Some(origin) = &config.origin
                    && origin != key.name()
                {
                    return Err(key_error(
                        &path,
                        format!("is named {:?}, not {origin:?}: the origin is fixed when the key is made", key.name()),
                    ));
                }
                key
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && config.key_file.is_none() => {
                let origin =
                    config.origin.clone().or_else(|| config.fallback_origin.clone()).unwrap_or_else(default_origin);
                let key = SignerKey::generate(&origin).map_err(|e| key_error(&path, e.to_string()))?;
                crate::secrets::write_private(&path, key.encode().as_bytes())
                    .map_err(|e| key_error(&path, format!("cannot be written: {e}")))?;
                tracing::info!(verifier_key = %key.verifier().encode(), "made the log key");
                key
            }
            Err(e) => return Err(key_error(&path, e.to_string())),
        };
        let mut guard = path.clone().into_os_string();
        guard.push(".checkpoint");
        let guard = PathBuf::from(guard);
        let signed = match std::fs::read_to_string(&guard) {
            Ok(note) => Some(Checkpoint::open(&note, &key.verifier()).map_err(|e| {
                key_error(&guard, format!("is not a checkpoint this key signed ({e}); it must not be edited"))
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(key_error(&guard, e.to_string())),
        };
        let notary = Notary {
            tree: MerkleTree::open(ledger.database())?,
            ledger: ledger.clone(),
            key,
            guard,
            signed: Mutex::new(signed),
        };
        {
            let signed = notary.signed.lock().unwrap_or_else(|p| p.into_inner());
            let size = notary.catch_up()?;
            if let Some(kept) = signed.as_ref()
                && size >= kept.size
            {
                notary.check_consistent(kept)?;
            }
        }
        Ok(notary)
    }

    /// The log's public key.
    pub fn verifier(&self) -> VerifierKey {
        self.key.verifier()
    }

    /// The log's origin (its key's name).
    pub fn origin(&self) -> &str {
        self.key.name()
    }

    /// Appends to the tree what the durable log has beyond it; its size.
    pub fn catch_up(&self) -> Result<u64, NotaryError> {
        let upto = self.ledger.read().last_seq;
        let extended = self.tree.extend(self.ledger.database(), self.ledger.log(), upto)?;
        if extended.rebuilt {
            tracing::warn!(size = extended.size, "the Merkle tree did not match the log; it was rebuilt");
        }
        Ok(extended.size)
    }

    fn root_at(&self, size: u64) -> Result<Hash, NotaryError> {
        let snap = self.ledger.database().snapshot();
        Ok(merkle::root(&self.tree.view(&snap), size)?)
    }

    fn check_consistent(&self, kept: &Checkpoint) -> Result<(), NotaryError> {
        if self.root_at(kept.size)? != kept.root {
            tracing::error!(signed = kept.size, "the log is inconsistent with the last checkpoint its key signed");
            return Err(NotaryError::Inconsistent { signed: kept.size });
        }
        Ok(())
    }

    /// The last checkpoint signed, without signing.
    pub fn last_signed(&self) -> Option<Checkpoint> {
        self.signed.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A checkpoint of tree size `size` (the whole durable log when `None`),
    /// signed. Errors: `size` beyond the log; the log inconsistent with (or,
    /// while a node catches up, behind) the last checkpoint signed.
    pub fn checkpoint(&self, size: Option<u64>) -> Result<Signed, NotaryError> {
        let mut signed = self.signed.lock().unwrap_or_else(|p| p.into_inner());
        let tree_size = self.catch_up()?;
        let size = size.unwrap_or(tree_size);
        if size > tree_size {
            return Err(NotaryError::BeyondLog { what: "the tree size", value: size, size: tree_size });
        }
        if let Some(kept) = signed.as_ref() {
            if tree_size < kept.size {
                return Err(NotaryError::Behind { signed: kept.size, size: tree_size });
            }
            self.check_consistent(kept)?;
        }
        let checkpoint = Checkpoint { origin: self.key.name().to_owned(), size, root: self.root_at(size)? };
        let note = self.key.sign(&checkpoint.text());
        if signed.as_ref().is_none_or(|kept| size > kept.size) {
            write_replacing(&self.guard, note.as_bytes())
                .map_err(|e| key_error(&self.guard, format!("cannot be written: {e}")))?;
            *signed = Some(checkpoint.clone());
        }
        drop(signed);
        let head = match size {
            0 => Digest::ZERO,
            n => self.record_hash(n)?,
        };
        Ok(Signed { checkpoint, note, head })
    }

    fn record_hash(&self, position: u64) -> Result<Digest, NotaryError> {
        let snap = self.ledger.database().snapshot();
        match self.ledger.log().hashes(&snap, position).next() {
            Some(Ok((seq, hash))) if seq == position => Ok(hash),
            Some(Err(e)) => Err(e.into()),
            _ => Err(NotaryError::Bad(format!("no record at position {position}"))),
        }
    }

    /// The inclusion proof of log position `position` in the tree of `size`
    /// (the whole durable log when `None`). Errors: position 0 or beyond the
    /// size, size beyond the log.
    pub fn inclusion(&self, position: u64, size: Option<u64>) -> Result<Inclusion, NotaryError> {
        let tree_size = self.caught_up()?;
        let size = size.unwrap_or(tree_size);
        if size > tree_size {
            return Err(NotaryError::BeyondLog { what: "size", value: size, size: tree_size });
        }
        if position == 0 || position > size {
            return Err(NotaryError::Bad(format!("position must be between 1 and the size {size}, not {position}")));
        }
        let snap = self.ledger.database().snapshot();
        let view = self.tree.view(&snap);
        Ok(Inclusion {
            position,
            size,
            record_hash: self.record_hash(position)?,
            hashes: merkle::inclusion_proof(&view, position - 1, size)?,
            root: merkle::root(&view, size)?,
        })
    }

    /// The consistency proof from tree size `from` to `to`.
    pub fn consistency(&self, from: u64, to: u64) -> Result<Consistency, NotaryError> {
        let tree_size = self.caught_up()?;
        if to > tree_size {
            return Err(NotaryError::BeyondLog { what: "to", value: to, size: tree_size });
        }
        if from > to {
            return Err(NotaryError::Bad(format!("from ({from}) is larger than to ({to})")));
        }
        let snap = self.ledger.database().snapshot();
        let view = self.tree.view(&snap);
        Ok(Consistency {
            from,
            to,
            from_root: merkle::root(&view, from)?,
            to_root: merkle::root(&view, to)?,
            hashes: merkle::consistency_proof(&view, from, to)?,
        })
    }

    /// The compact range of the tree of `size` (`size` within the tree).
    pub fn compact_range(&self, size: u64) -> Result<CompactRange, NotaryError> {
        let tree_size = self.caught_up()?;
        if size > tree_size {
            return Err(NotaryError::BeyondLog { what: "size", value: size, size: tree_size });
        }
        let snap = self.ledger.database().snapshot();
        Ok(CompactRange::read(&self.tree.view(&snap), size)?)
    }

    fn caught_up(&self) -> Result<u64, NotaryError> {
        let _held = self.signed.lock().unwrap_or_else(|p| p.into_inner());
        self.catch_up()
    }

    /// Keeps the tree up with the log as it grows and signs a checkpoint every
    /// `every` while the log grew, until `stopping` turns true.
    pub fn spawn(self: Arc<Self>, every: std::time::Duration, mut stopping: tokio::sync::watch::Receiver<bool>) {
        let mut durable = self.ledger.subscribe();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every.max(std::time::Duration::from_secs(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let sign = tokio::select! {
                    _ = async { stopping.wait_for(|s| *s).await.is_ok() } => return,
                    changed = durable.changed() => {
                        if changed.is_err() { return; }
                        // Let a burst of commits land, then append them at once.
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        false
                    }
                    _ = ticks.tick() => !every.is_zero(),
                };
                let notary = Arc::clone(&self);
                let done = tokio::task::spawn_blocking(move || {
                    let size = notary.caught_up()?;
                    if sign && notary.last_signed().is_none_or(|kept| size > kept.size) {
                        let signed = notary.checkpoint(Some(size))?;
                        tracing::info!(size, root = %hex::encode(signed.checkpoint.root), "signed a checkpoint");
                    }
                    Ok::<_, NotaryError>(())
                })
                .await;
                match done {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "the Merkle tree or checkpoint could not be brought up to date")
                    }
                    Err(e) => tracing::error!(error = %e, "the notary's task failed"),
                }
            }
        });
    }
}

/// Replaces `path` with `bytes` atomically (a temporary file renamed over it), durably.
fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

impl From<NoteError> for NotaryError {
    fn from(e: NoteError) -> Self {
        NotaryError::Bad(e.to_string())
    }
}
