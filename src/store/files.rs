//! The files under a store that erasure must reach: compacting a keyspace
//! until every table is rewritten, the table and journal files fjall left,
//! and removing replaced tables once no reader can reach them. Blocking; only
//! erasure uses it (see `Ledger::compact`).

use std::path::Path;

use super::{ERASURE_SETTLE_LIMIT, StoreError};

/// Waits until `keyspace` has no memtable waiting to be flushed (one a
/// background rotation sealed; `rotate_memtable_and_wait` does not wait for
/// it). A flush that cannot write (full disk) never ends: after a minute this
/// gives up rather than hold writes for ever.
pub(super) fn wait_for_sealed_memtables(keyspace: &fjall::Keyspace) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    while keyspace.sealed_memtable_count() > 0 {
        if started.elapsed() > ERASURE_SETTLE_LIMIT {
            return Err(StoreError::Internal(format!("{:?} could not flush its memtables", keyspace.name())));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Ok(())
}

/// The `*.jnl` journal files in `data_dir`.
pub(super) fn journal_files(data_dir: &Path) -> Result<Vec<std::path::PathBuf>, StoreError> {
    Ok(list(data_dir)?.into_iter().filter(|p| p.extension().is_some_and(|x| x == "jnl")).collect())
}

/// The paths in `folder` (none if it does not exist).
fn list(folder: &Path) -> Result<Vec<std::path::PathBuf>, StoreError> {
    let cannot = |e: std::io::Error| StoreError::Internal(format!("cannot list {}: {e}", folder.display()));
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(cannot(e)),
    };
    entries.map(|e| e.map(|e| e.path()).map_err(cannot)).collect()
}

/// The ids of the tables of `keyspace`'s current version.
fn current_tables(keyspace: &fjall::Keyspace) -> std::collections::BTreeSet<u64> {
    use fjall::AbstractTree;
    keyspace.tree.current_version().iter_tables().map(|t| t.id()).collect()
}

/// The table ids that have a file in `keyspace`'s `tables` folder.
fn table_files(keyspace: &fjall::Keyspace) -> Result<std::collections::BTreeSet<u64>, StoreError> {
    let files = list(&keyspace.path().join("tables"))?;
    Ok(files.iter().filter_map(|p| p.file_name()?.to_str()?.parse().ok()).collect())
}

/// Compacts `keyspace` into new tables and checks that it did (fjall's major
/// compaction does nothing, without saying so, while another compaction holds
/// some of the tables). Returns the table files that were there before and
/// are now replaced: fjall's major compaction waits for every compaction in
/// flight, and no flush runs (writes are held, sealed memtables flushed), so
/// each of those files is garbage once no reader can reach the versions that
/// held it.
pub(super) fn compact_fully(keyspace: &fjall::Keyspace) -> Result<std::collections::BTreeSet<u64>, StoreError> {
    let before = current_tables(keyspace);
    let files = table_files(keyspace)?;
    for _ in 0..100 {
        keyspace.major_compact()?;
        let now = current_tables(keyspace);
        if now.is_disjoint(&before) {
            return Ok(files.difference(&now).copied().collect());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(StoreError::Internal(format!("the compaction of {:?} did not rewrite its tables", keyspace.name())))
}

/// Deletes the table `files` of `keyspace` that its current version does not
/// use, and syncs the folder. fjall deletes a replaced table only once no
/// snapshot can reach it, and after a restart not until the next open; the
/// caller has waited for every reader that could. fjall later logs a warning
/// when its own deletion finds a file gone; the next open drops what is left.
pub(super) fn remove_files(
    keyspace: &fjall::Keyspace,
    files: &std::collections::BTreeSet<u64>,
) -> Result<(), StoreError> {
    let current = current_tables(keyspace);
    let folder = keyspace.path().join("tables");
    let cannot =
        |e: std::io::Error| StoreError::Internal(format!("cannot remove a table in {}: {e}", folder.display()));
    for id in files.difference(&current) {
        match std::fs::remove_file(folder.join(id.to_string())) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(cannot(e)),
        }
    }
    std::fs::File::open(&folder).and_then(|dir| dir.sync_all()).or_else(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(cannot(e)),
    })
}
