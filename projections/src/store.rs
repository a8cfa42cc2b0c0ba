//! The projection keyspaces in fjall, and staging fold output into a write batch.

use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, Readable, Snapshot};

use crate::error::Result;
use crate::view::{Entry, Mutation, SnapshotView, Space};

/// The names of the projection keyspaces in the fjall database (their layouts
/// are this crate's own; docs/ARCHITECTURE.md lists them).
pub const KEYSPACES: [&str; 7] = [
    Space::Accounts.keyspace_name(),
    Space::Domains.keyspace_name(),
    Space::Roles.keyspace_name(),
    Space::Tenants.keyspace_name(),
    Space::Index.keyspace_name(),
    Space::Changes.keyspace_name(),
    Space::Meta.keyspace_name(),
];

/// Handles to the projection keyspaces of a database.
#[derive(Clone)]
pub struct Projections {
    accounts: Keyspace,
    domains: Keyspace,
    roles: Keyspace,
    tenants: Keyspace,
    index: Keyspace,
    changes: Keyspace,
    meta: Keyspace,
}

impl Projections {
    /// Opens (creating if needed) the projection keyspaces of `db`.
    pub fn open(db: &Database) -> Result<Self> {
        let open = |s: Space| db.keyspace(s.keyspace_name(), KeyspaceCreateOptions::default);
        Ok(Projections {
            accounts: open(Space::Accounts)?,
            domains: open(Space::Domains)?,
            roles: open(Space::Roles)?,
            tenants: open(Space::Tenants)?,
            index: open(Space::Index)?,
            changes: open(Space::Changes)?,
            meta: open(Space::Meta)?,
        })
    }

    pub(crate) fn keyspace(&self, space: Space) -> &Keyspace {
        match space {
            Space::Accounts => &self.accounts,
            Space::Domains => &self.domains,
            Space::Roles => &self.roles,
            Space::Tenants => &self.tenants,
            Space::Index => &self.index,
            Space::Changes => &self.changes,
            Space::Meta => &self.meta,
        }
    }

    /// Every projection keyspace, for flushing and compaction.
    pub fn keyspaces(&self) -> [&Keyspace; 7] {
        Space::ALL.map(|space| self.keyspace(space))
    }

    /// Adds fold output to `batch`.
    pub fn stage(&self, batch: &mut OwnedWriteBatch, mutations: impl IntoIterator<Item = Mutation>) {
        for m in mutations {
            let ks = self.keyspace(m.space);
            match m.value {
                Some(v) => batch.insert(ks, m.key, v),
                None => batch.remove(ks, m.key),
            }
        }
    }

    /// Writes sorted fold output with fjall's ingestion, one table run per
    /// keyspace: no memtable and no journal (`mutations` must be sorted by
    /// keyspace and key, each key once, as [`crate::bulk::BulkFold::finish`]
    /// gives them). With `replace`, every key the keyspaces it names hold in
    /// its snapshot and `mutations` do not write gets a tombstone in the same
    /// pass. For keyspaces no writer uses meanwhile (a replay).
    /// Errors: keys out of order ([`crate::Error::Inconsistent`]; fjall would
    /// panic), storage errors.
    pub fn ingest(&self, mutations: Vec<Mutation>, replace: Option<(&Snapshot, &[Space])>) -> Result<()> {
        let mut mutations = mutations.into_iter().peekable();
        for space in Space::ALL {
            let replaced = replace.filter(|(_, spaces)| spaces.contains(&space)).map(|(snapshot, _)| snapshot);
            if replaced.is_none() && mutations.peek().is_none_or(|m| m.space != space) {
                continue;
            }
            let keyspace = self.keyspace(space);
            let mut ingestion = keyspace.start_ingestion()?;
            let mut old =
                replaced.map(|snapshot| snapshot.iter(keyspace).map(|guard| guard.key())).into_iter().flatten();
            let mut pending_old = old.next().transpose()?;
            let mut last: Option<Vec<u8>> = None;
            while let Some(m) = mutations.next_if(|m| m.space == space) {
                // fjall panics on keys out of order; say so instead.
                if last.as_ref().is_some_and(|l| *l >= m.key) {
                    return Err(crate::Error::Inconsistent(format!(
                        "{}: keys to ingest out of order",
                        space.keyspace_name()
                    )));
                }
                while let Some(gone) = pending_old.take_if(|k| k.as_ref() <= m.key.as_slice()) {
                    if gone.as_ref() < m.key.as_slice() {
                        ingestion.write_tombstone(gone)?;
                    }
                    pending_old = old.next().transpose()?;
                }
                last = Some(m.key.clone());
                match m.value {
                    Some(v) => ingestion.write(m.key, v)?,
                    None => ingestion.write_tombstone(m.key)?,
                }
            }
            while let Some(gone) = pending_old.take() {
                ingestion.write_tombstone(gone)?;
                pending_old = old.next().transpose()?;
            }
            ingestion.finish()?;
        }
        if let Some(m) = mutations.next() {
            return Err(crate::Error::Inconsistent(format!(
                "{}: keys to ingest out of order",
                m.space.keyspace_name()
            )));
        }
        Ok(())
    }

    /// The projections as `snapshot` sees them.
    pub fn view(&self, snapshot: Snapshot) -> SnapshotView {
        SnapshotView::new(self.clone(), snapshot)
    }

    /// Every projection entry, in (keyspace, key) order: what replay must reproduce.
    pub fn dump(&self, snapshot: &Snapshot) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        for space in Space::ALL {
            for guard in snapshot.iter(self.keyspace(space)) {
                let (k, v) = guard.into_inner()?;
                out.push((space.keyspace_name(), k.to_vec(), v.to_vec()));
            }
        }
        Ok(out)
    }
}
