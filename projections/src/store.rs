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
