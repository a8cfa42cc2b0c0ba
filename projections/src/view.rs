//! Read access to projection state: fjall snapshots, and overlays of staged writes.
//!
//! The fold and the decide layer only see [`StateRead`]; whether the bytes come from
//! a snapshot or from writes not yet committed is invisible to them, which is what
//! lets a commit see its own earlier items and a group see its earlier commits.

use std::collections::BTreeMap;

use fjall::{Readable, Snapshot};

use crate::error::Result;
use crate::store::Projections;

/// The projection keyspaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    Accounts,
    Domains,
    Roles,
    Index,
    Changes,
    Meta,
}

impl Space {
    pub const ALL: [Space; 6] =
        [Space::Accounts, Space::Domains, Space::Roles, Space::Index, Space::Changes, Space::Meta];

    pub fn keyspace_name(self) -> &'static str {
        match self {
            Space::Accounts => "proj_accounts",
            Space::Domains => "proj_domains",
            Space::Roles => "proj_roles",
            Space::Index => "proj_index",
            Space::Changes => "proj_changes",
            Space::Meta => "proj_meta",
        }
    }
}

/// One key written (`Some`) or removed (`None`) by the fold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    pub space: Space,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

pub type KeyValue = (Vec<u8>, Vec<u8>);

/// One projection entry with its keyspace, as `Projections::dump` lists them.
pub type Entry = (Space, Vec<u8>, Vec<u8>);

type StagedKey = (Space, Vec<u8>);

/// Read access to projection state.
pub trait StateRead {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Up to `limit` entries whose key starts with `prefix`, in key order, starting
    /// at `from` (inclusive) when given (it must itself start with `prefix`).
    fn scan(&self, space: Space, prefix: &[u8], from: Option<&[u8]>, limit: usize) -> Result<Vec<KeyValue>>;
}

impl<T: StateRead + ?Sized> StateRead for &T {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).get(space, key)
    }
    fn scan(&self, space: Space, prefix: &[u8], from: Option<&[u8]>, limit: usize) -> Result<Vec<KeyValue>> {
        (**self).scan(space, prefix, from, limit)
    }
}

/// A consistent, read-only view of the projections at one instant.
#[derive(Clone)]
pub struct SnapshotView {
    projections: Projections,
    snapshot: Snapshot,
}

impl SnapshotView {
    pub fn new(projections: Projections, snapshot: Snapshot) -> Self {
        SnapshotView { projections, snapshot }
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

impl StateRead for SnapshotView {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.snapshot.get(self.projections.keyspace(space), key)?.map(|v| v.to_vec()))
    }

    fn scan(&self, space: Space, prefix: &[u8], from: Option<&[u8]>, limit: usize) -> Result<Vec<KeyValue>> {
        let keyspace = self.projections.keyspace(space);
        let start = from.unwrap_or(prefix).to_vec();
        let mut out = Vec::new();
        for guard in self.snapshot.range(keyspace, start..) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = guard.into_inner()?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}

/// Writes staged on top of another view; reads see them first.
pub struct Overlay<R> {
    base: R,
    writes: BTreeMap<StagedKey, Option<Vec<u8>>>,
    /// What each write replaced in `writes` (outer `None`: the key was not staged),
    /// so a failed command or commit can be rolled back to a savepoint.
    undo: Vec<(StagedKey, Option<Option<Vec<u8>>>)>,
}

/// A point an [`Overlay`] can be rolled back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Savepoint(usize);

impl<R: StateRead> Overlay<R> {
    pub fn new(base: R) -> Self {
        Overlay { base, writes: BTreeMap::new(), undo: Vec::new() }
    }

    pub fn apply(&mut self, mutations: Vec<Mutation>) {
        for m in mutations {
            let key = (m.space, m.key);
            let previous = self.writes.insert(key.clone(), m.value);
            self.undo.push((key, previous));
        }
    }

    pub fn savepoint(&self) -> Savepoint {
        Savepoint(self.undo.len())
    }

    /// Undoes every write made since `savepoint`.
    pub fn rollback(&mut self, savepoint: Savepoint) {
        while self.undo.len() > savepoint.0 {
            let Some((key, previous)) = self.undo.pop() else {
                break;
            };
            match previous {
                Some(value) => self.writes.insert(key, value),
                None => self.writes.remove(&key),
            };
        }
    }

    /// The staged writes, in (space, key) order, emptying the overlay.
    pub fn take_mutations(&mut self) -> Vec<Mutation> {
        self.undo.clear();
        std::mem::take(&mut self.writes)
            .into_iter()
            .map(|((space, key), value)| Mutation { space, key, value })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    pub fn base(&self) -> &R {
        &self.base
    }
}

impl<R: StateRead> StateRead for Overlay<R> {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.writes.get(&(space, key.to_vec())) {
            Some(staged) => Ok(staged.clone()),
            None => self.base.get(space, key),
        }
    }

    fn scan(&self, space: Space, prefix: &[u8], from: Option<&[u8]>, limit: usize) -> Result<Vec<KeyValue>> {
        let start = from.unwrap_or(prefix).to_vec();
        let staged: Vec<_> = self
            .writes
            .range((space, start.clone())..)
            .take_while(|((s, k), _)| *s == space && k.starts_with(prefix))
            .collect();
        // Staged removals may hide base entries, so ask the base for enough extra.
        let removals = staged.iter().filter(|(_, v)| v.is_none()).count();
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
            self.base.scan(space, prefix, Some(&start), limit.saturating_add(removals))?.into_iter().collect();
        let base_complete_to =
            if merged.len() >= limit.saturating_add(removals) { merged.keys().next_back().cloned() } else { None };
        for ((_, key), value) in staged {
            // Keys past the end of a truncated base scan could hide unseen base keys
            // before them; they are only admitted up to where the base was read.
            if base_complete_to.as_ref().is_some_and(|last| key > last) {
                continue;
            }
            match value {
                Some(v) => merged.insert(key.clone(), v.clone()),
                None => merged.remove(key),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }
}
