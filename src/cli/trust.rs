//! What an auditor's `ledger` remembers of each log it checked (trust on first
//! use, as `rekor-cli` does): the log's verifier key and the latest
//! checkpoint it verified, one JSON file per origin under the trust directory
//! (`--trust-dir`, `LEDGER_TRUST_DIR`, else `$XDG_STATE_HOME/ledger/trust` or
//! `~/.local/state/ledger/trust`).
//!
//! A later checkpoint is accepted only when it is consistent with the one
//! remembered, and a log that presents another key is refused: both mean the
//! log's history or identity changed.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::output::printable;
use crate::audit::note::{Checkpoint, VerifierKey};

/// The trust directory.
pub(super) struct TrustStore {
    dir: PathBuf,
}

/// What is remembered of one log.
pub(super) struct Trusted {
    pub(super) key: VerifierKey,
    /// The latest checkpoint verified, with its signed note.
    pub(super) checkpoint: Option<(Checkpoint, String)>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    origin: String,
    verifier_key: String,
    checkpoint: Option<String>,
}

impl TrustStore {
    /// The directory given, or the default one.
    pub(super) fn at(dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let dir = match dir {
            Some(dir) => dir,
            None => {
                let state = std::env::var_os("XDG_STATE_HOME")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state")))
                    .context("no trust directory: set --trust-dir (or LEDGER_TRUST_DIR, XDG_STATE_HOME, HOME)")?;
                state.join("ledger/trust")
            }
        };
        Ok(TrustStore { dir })
    }

    /// The file that remembers the log `origin`.
    pub(super) fn path_of(&self, origin: &str) -> PathBuf {
        self.file(origin)
    }

    fn file(&self, origin: &str) -> PathBuf {
        let readable: String = origin
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' })
            .take(80)
            .collect();
        let digest = hex::encode(&sha2::Sha256::digest(origin.as_bytes())[..6]);
        self.dir.join(format!("{readable}-{digest}.json"))
    }

    /// What is remembered of the log `origin`, if anything.
    pub(super) fn load(&self, origin: &str) -> anyhow::Result<Option<Trusted>> {
        let path = self.file(origin);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let stored: Stored = serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))?;
        let key = VerifierKey::parse(&stored.verifier_key)
            .ok()
            .filter(|k| k.name() == origin)
            .with_context(|| format!("{} is damaged (not a verifier key of {origin:?})", path.display()))?;
        let checkpoint = match stored.checkpoint {
            None => None,
            Some(note) => Some((
                Checkpoint::open(&note, &key)
                    .with_context(|| format!("{} holds a checkpoint its key did not sign", path.display()))?,
                note,
            )),
        };
        Ok(Some(Trusted { key, checkpoint }))
    }

    /// Remembers `key` and, if given, `note` (a checkpoint it signed) for its origin.
    fn save(&self, key: &VerifierKey, note: Option<&str>) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let path = self.file(key.name());
        let stored =
            Stored { origin: key.name().to_owned(), verifier_key: key.encode(), checkpoint: note.map(str::to_owned) };
        let text = serde_json::to_string_pretty(&stored)?;
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        std::io::Write::write_all(&mut file, text.as_bytes())?;
        file.as_file().sync_all()?;
        file.persist(&path).map_err(|e| e.error).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// The key to check `origin`'s checkpoints with: `given` (`--key`), else
    /// the one remembered, else `offered` (by the server or the export), to
    /// be trusted on first use. Nothing is remembered here: the caller calls
    /// [`TrustStore::remember`] once a checkpoint has verified with the key.
    /// Refused: a key not named `origin`, and a log whose key differs from the
    /// one remembered.
    pub(super) fn key_for(
        &self,
        origin: &str,
        given: Option<&str>,
        offered: Option<&str>,
    ) -> anyhow::Result<KeyChoice> {
        let shown = printable(origin);
        let parse = |text: &str, what: &str| -> anyhow::Result<VerifierKey> {
            let key =
                VerifierKey::parse(text).with_context(|| format!("{what} is not a verifier key (NAME+ID+KEY)"))?;
            if key.name() != origin {
                bail!("{what} {} is not the key of the log {shown:?}", printable(&key.encode()));
            }
            Ok(key)
        };
        let given = given.map(|g| parse(g, "--key")).transpose()?;
        let offered_key = offered.map(|o| parse(o, "the log's verifier key")).transpose()?;
        let remembered = self.load(origin)?;
        if let Some(r) = &remembered {
            if let Some(given) = &given
                && *given != r.key
            {
                bail!(
                    "the log {shown:?} was trusted with the key {}, but {} is given: if the log's key really \
                     changed, remove {} to trust the new one",
                    r.key.encode(),
                    given.encode(),
                    self.file(origin).display()
                );
            }
            if let Some(offered) = &offered_key
                && *offered != r.key
            {
                bail!(
                    "the log {shown:?} now presents the key {}, not {} trusted before: another key signs \
                     this log (rotated, or an impostor); check with its operator, then remove {} to trust the new one",
                    offered.encode(),
                    r.key.encode(),
                    self.file(origin).display()
                );
            }
        }
        let (key, first_use) = match (given, &remembered, offered_key) {
            (Some(given), _, _) => (given, remembered.is_none()),
            (None, Some(r), _) => (r.key.clone(), false),
            (None, None, Some(offered)) => (offered, true),
            (None, None, None) => bail!("no key to check the checkpoint with: give --key (from `ledger audit key`)"),
        };
        Ok(KeyChoice { key, remembered, first_use })
    }

    /// Remembers `note`, a checkpoint `choice.key` signed and the caller
    /// verified (consistent with the one remembered, and not smaller), as the
    /// log's latest; the first time, says where the key is now trusted.
    /// Compare-and-swap under a lock on the directory: if another `ledger`
    /// changed what is remembered of the log since `choice` was read, nothing
    /// is written and the command fails (run it again), so the remembered
    /// checkpoint never moves back.
    pub(super) fn remember(&self, choice: &KeyChoice, note: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let lock_path = self.dir.join(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
        let seen =
            |t: &Option<Trusted>| t.as_ref().map(|t| (t.key.encode(), t.checkpoint.as_ref().map(|c| c.1.clone())));
        if seen(&self.load(choice.key.name())?) != seen(&choice.remembered) {
            bail!(
                "what is remembered of the log {:?} changed while this command checked it (another ledger command \
                 ran): nothing was remembered; run it again",
                printable(choice.key.name())
            );
        }
        let path = self.save(&choice.key, Some(note))?;
        drop(lock);
        if choice.first_use {
            eprintln!(
                "trusting the log key {} of {} from now on (remembered in {}); compare it with the verifier \
                 key the operator published through another channel than this server",
                choice.key.encode(),
                choice.key.name(),
                path.display()
            );
        }
        Ok(())
    }
}

/// The key chosen for a log, and what was remembered of it.
pub(super) struct KeyChoice {
    pub(super) key: VerifierKey,
    pub(super) remembered: Option<Trusted>,
    /// Nothing was remembered for the log: the key is trusted on first use
    /// (or on `--key`) once a checkpoint verifies.
    pub(super) first_use: bool,
}
