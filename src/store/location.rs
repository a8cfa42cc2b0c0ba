//! Where a store lives, seen from outside the store: whether a directory holds
//! a ledger store at all, whether a running `ledger serve` holds it, the
//! server's pid file, and private copies through which offline tools read a
//! store without writing to it.
//!
//! fjall has no read-only open: opening a database takes its lock and may
//! recover its journal, write a new version and delete tables. So a tool that
//! must only read (verify, restore's source, an offline backup) opens a
//! private copy: every table file hard-linked (tables are immutable once
//! written; the copy's fjall may unlink its links, never write into them),
//! everything else copied.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use fjall::Database;
use ledger_events::{ChainTail, ChainVerifier, ErasureCoverage, EventLog};

use super::{StoreError, open_parts};

/// The file fjall writes first in a database directory.
const FJALL_MARKER: &str = "version";
/// fjall's lock file (an exclusive `flock` while a process has the store open).
const FJALL_LOCK: &str = "lock";
/// `ledger serve` writes its process id here while it runs.
pub const PID_FILE: &str = "serve.pid";

/// Fails with [`StoreError::NotAStore`] unless `path` is a directory holding
/// a ledger store (fjall's marker and keyspaces are there), and with
/// [`StoreError::Held`] while a process (a running `ledger serve`) has it open.
pub fn check_existing(path: &Path) -> Result<(), StoreError> {
    let not = |reason: &str| StoreError::NotAStore { path: path.display().to_string(), reason: reason.to_owned() };
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(not("it is not a directory")),
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(not("it does not exist")),
        Err(e) => return Err(not(&e.to_string())),
    }
    if !holds_store(path) {
        return Err(not("it holds no ledger store (no fjall database)"));
    }
    check_not_held(path)
}

/// Whether the directory `path` holds a store: fjall's marker and keyspaces.
pub fn holds_store(path: &Path) -> bool {
    path.join(FJALL_MARKER).is_file() && path.join("keyspaces").is_dir()
}

/// How long opening a store waits for a lock that no running `ledger serve`
/// holds: a store closed a moment ago (by this process or another) stays
/// locked until fjall's background threads (a flush, a compaction) end.
pub(crate) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Fails with [`StoreError::Held`] while another process holds the store's lock.
/// When the pid file names a live process other than this one (a running
/// `ledger serve`), at once; otherwise the lock is waited for, up to
/// [`LOCK_WAIT`]: a store just closed is still held while fjall's background
/// threads end.
pub fn check_not_held(path: &Path) -> Result<(), StoreError> {
    check_not_held_until(path, std::time::Instant::now() + LOCK_WAIT)
}

/// [`check_not_held`], waiting until `deadline` at most.
pub(crate) fn check_not_held_until(path: &Path, deadline: std::time::Instant) -> Result<(), StoreError> {
    let Ok(file) = std::fs::File::open(path.join(FJALL_LOCK)) else { return Ok(()) };
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match file.try_lock_shared() {
            // Dropping the file releases the shared lock.
            Ok(()) | Err(std::fs::TryLockError::Error(_)) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {}
        }
        let pid = server_pid(path);
        if pid.is_some_and(|p| p != std::process::id() && process_alive(p)) || std::time::Instant::now() > deadline {
            return Err(StoreError::Held { path: path.display().to_string(), pid });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(200));
    }
}

/// Whether a process with this pid exists (signal 0; a process of another
/// user answers "not permitted", and exists).
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    rustix::process::Pid::from_raw(pid).is_some_and(|pid| match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    })
}

/// The pid `ledger serve` wrote in `data_dir`, if any.
pub fn server_pid(data_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(data_dir.join(PID_FILE)).ok()?.trim().parse().ok()
}

/// Creates `path` (and missing parents) readable by the owner only (0700).
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// A private copy of the store in `source`, removed when dropped; see the
/// module docs. The caller checked that no process holds `source`.
/// The copy is made beside the store when its parent directory takes it
/// (the same file system, so table files are linked, not copied), else in
/// the system's temporary directory.
pub fn private_copy(source: &Path) -> Result<tempfile::TempDir, StoreError> {
    let prefix = copy_prefix(source);
    let builder = || {
        let mut b = tempfile::Builder::new();
        b.prefix(&prefix);
        // The copy holds what the store holds: the owner's only, from the start.
        #[cfg(unix)]
        b.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
        b
    };
    let beside = source.canonicalize().ok().and_then(|s| s.parent().map(Path::to_path_buf));
    let copy = match beside.and_then(|parent| builder().tempdir_in(parent).ok()) {
        Some(copy) => copy,
        None => {
            let parent = std::env::temp_dir();
            builder().tempdir_in(&parent).map_err(|e| StoreError::DataDir {
                path: parent.display().to_string(),
                reason: format!("cannot make a private copy: {e}"),
            })?
        }
    };
    copy_tree(source, copy.path(), false, &mut Vec::new()).map_err(|e| StoreError::DataDir {
        path: source.display().to_string(),
        reason: format!("cannot make a private copy to read: {e}"),
    })?;
    Ok(copy)
}

/// `visited`: the real folders on the way here, so that a link back up (a
/// cycle) is an error, not an endless copy.
fn copy_tree(from: &Path, to: &Path, in_tables: bool, visited: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let real = std::fs::canonicalize(from)?;
    if visited.contains(&real) {
        return Err(std::io::Error::other(format!("{} links back to a folder above it", from.display())));
    }
    visited.push(real);
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target): (PathBuf, PathBuf) = (entry.path(), to.join(entry.file_name()));
        // Links are followed (a keyspace on another disk is part of the
        // store); anything else that is not a file or a directory is an error,
        // never silently left out of what is read.
        let kind = std::fs::metadata(&source)?.file_type();
        if kind.is_dir() {
            copy_tree(&source, &target, entry.file_name() == "tables", visited)?;
        } else if !kind.is_file() {
            return Err(std::io::Error::other(format!("{} is neither a file nor a directory", source.display())));
        } else {
            if entry.file_name() == PID_FILE {
                continue;
            }
            if entry.file_name() == FJALL_LOCK {
                // The copy's own lock: fjall needs the file, not the source's lock.
                std::fs::File::create(&target)?;
                continue;
            }
            // A table is immutable; a link costs no space. Elsewhere (another
            // file system) it is copied. A symbolic link is resolved first, so
            // the copy never links to the link.
            let real = std::fs::canonicalize(&source)?;
            if !(in_tables && std::fs::hard_link(&real, &target).is_ok()) {
                std::fs::copy(&real, &target)?;
            }
        }
    }
    visited.pop();
    Ok(())
}

/// The name private copies of the store in `data_dir` start with:
/// `.ledger-read-NAME-` (NAME the store folder's), so that stores that share
/// a parent folder never touch each other's.
fn copy_prefix(data_dir: &Path) -> String {
    let name = data_dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    format!(".ledger-read-{name}-")
}

/// Removes private copies (`.ledger-read-NAME-*`) that tools killed before they
/// could clean up left beside the store in `data_dir`: their table files are
/// hard links, which would keep erased data on disk after a compaction.
/// Run while the store is held (at `ledger serve` start, before compacting),
/// so no tool is reading one.
pub fn sweep_private_copies(data_dir: &Path) {
    let Some(parent) = data_dir.canonicalize().ok().and_then(|d| d.parent().map(Path::to_path_buf)) else { return };
    let prefix = copy_prefix(data_dir);
    let Ok(entries) = std::fs::read_dir(&parent) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) && entry.path().is_dir() {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => tracing::info!(path = %entry.path().display(), "removed a private copy a killed tool left"),
                Err(e) => {
                    tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove a left private copy")
                }
            }
        }
    }
}

/// A stopped store opened for reading only: through a private copy (see
/// the module docs), which lives as long as this.
pub(crate) struct ReadOnlyStore {
    pub(crate) db: Database,
    pub(crate) log: EventLog,
    source: std::path::PathBuf,
    // Dropped after the database that reads it.
    _copy: tempfile::TempDir,
}

impl ReadOnlyStore {
    /// Opens the existing, stopped store in `data_dir` without writing to it.
    /// Errors: [`StoreError::NotAStore`], [`StoreError::Held`], and those of opening.
    pub(crate) fn open(data_dir: &Path) -> Result<Self, StoreError> {
        check_existing(data_dir)?;
        let copy = private_copy(data_dir)?;
        let (db, log, _) = open_parts(copy.path())?;
        Ok(ReadOnlyStore { db, log, source: data_dir.to_path_buf(), _copy: copy })
    }

    /// The store's own directory (not the copy).
    pub(crate) fn path(&self) -> &Path {
        &self.source
    }
}

/// Verifies the whole chain of the stopped store in `data_dir`, reading it
/// only (`ledger verify`). Returns where the chain ends and how many records
/// were checked.
/// Also checks that every payload-less record is listed by an erasure
/// ([`ErasureCoverage`]).
pub fn verify_offline(data_dir: &Path) -> Result<(ChainTail, u64), StoreError> {
    verify_offline_with(data_dir, &mut |_, _| {})
}

/// [`verify_offline`], telling `progress` (position, last position) as it goes.
pub fn verify_offline_with(
    data_dir: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(ChainTail, u64), StoreError> {
    let store = ReadOnlyStore::open(data_dir)?;
    let snapshot = store.db.snapshot();
    let last = store.log.last_seq(&snapshot)?;
    // One pass: each record's links and hashes, and what erasures cover.
    let mut verifier = ChainVerifier::from_genesis();
    let mut coverage = ErasureCoverage::default();
    for record in store.log.scan(&snapshot, 1) {
        let record = record?;
        verifier.check(&record.header, record.payload.as_ref()).map_err(|e| store.log.corrupt(e))?;
        coverage.observe(&record);
        progress(record.seq(), last);
    }
    coverage.finish().map_err(|e| store.log.corrupt(e))?;
    Ok((verifier.tail(), verifier.checked()))
}
