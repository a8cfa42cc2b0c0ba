//! Read access to projection state: fjall snapshots, and overlays of staged writes.
//!
//! The fold and the decide layer only see [`StateRead`]; whether the bytes come from
//! a snapshot or from writes not yet committed is invisible to them, which is what
//! lets a commit see its own earlier items and a group see its earlier commits.
//!
//! `StateRead` is sealed: its raw key-value reads ([`RawRead`]) are reachable only
//! inside this crate, so callers read through the typed functions of
//! [`crate::state`] and never depend on key layouts.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use fjall::{Readable, Snapshot};
use ledger_events::codec::from_json;
use ledger_events::values::ObjectId;

use crate::error::Result;
use crate::state::AccountState;
use crate::store::Projections;

/// The projection keyspaces. Public only in name (like [`RawRead`], whose reads
/// take it): this module is private, so no caller outside the crate can name a
/// keyspace, and so none can read raw keys.
#[allow(unreachable_pub, reason = "sealed: the argument type of RawRead's reads")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    Accounts,
    Domains,
    Roles,
    Tenants,
    Index,
    Changes,
    Meta,
}

impl Space {
    pub(crate) const ALL: [Space; 7] =
        [Space::Accounts, Space::Domains, Space::Roles, Space::Tenants, Space::Index, Space::Changes, Space::Meta];

    pub(crate) const fn keyspace_name(self) -> &'static str {
        match self {
            Space::Accounts => "proj_accounts",
            Space::Domains => "proj_domains",
            Space::Roles => "proj_roles",
            Space::Tenants => "proj_tenants",
            Space::Index => "proj_index",
            Space::Changes => "proj_changes",
            Space::Meta => "proj_meta",
        }
    }
}

/// One key written or removed by the fold: opaque outside this crate, where it
/// only travels from [`crate::apply`] to an [`Overlay`] or a write batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    pub(crate) space: Space,
    pub(crate) key: Vec<u8>,
    /// `None` removes the key.
    pub(crate) value: Option<Vec<u8>>,
}

#[allow(unreachable_pub, reason = "sealed: the result type of RawRead::scan")]
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// One projection entry: keyspace name, key, value (as `Projections::dump` lists them).
pub type Entry = (&'static str, Vec<u8>, Vec<u8>);

type StagedKey = (Space, Vec<u8>);

/// Read access to projection state, through the typed reads of [`crate::state`].
/// Implemented by [`SnapshotView`], [`Overlay`] and [`Empty`]; sealed.
pub trait StateRead: RawRead {}

impl<T: RawRead + ?Sized> StateRead for T {}

/// The raw reads behind [`StateRead`]. Public only in name, so that it can be
/// `StateRead`'s supertrait: it lives in a private module and cannot be named,
/// implemented or called outside this crate.
#[allow(unreachable_pub, reason = "the sealed supertrait of the public StateRead")]
pub trait RawRead {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Up to `limit` entries whose key starts with `prefix`, in key order, starting
    /// at `from` (inclusive) when given (it must itself start with `prefix`).
    fn scan(&self, space: Space, prefix: &[u8], from: Option<&[u8]>, limit: usize) -> Result<Vec<KeyValue>>;

    /// The account with `id`, decoded ([`crate::state::account`] reads
    /// through this). An [`Overlay`] decodes each account once per commit
    /// group, however often decide, authority and fold read it.
    fn account(&self, id: ObjectId) -> Result<Option<AccountState>> {
        match self.get(Space::Accounts, &id.to_be_bytes())? {
            Some(raw) => Ok(Some(from_json(&raw)?)),
            None => Ok(None),
        }
    }
}

/// A state with nothing in it: the start of a ledger, for deciding and folding
/// in memory (tests; an [`Overlay`] on top holds what they write).
#[derive(Debug, Clone, Copy, Default)]
pub struct Empty;

impl RawRead for Empty {
    fn get(&self, _: Space, _: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn scan(&self, _: Space, _: &[u8], _: Option<&[u8]>, _: usize) -> Result<Vec<KeyValue>> {
        Ok(vec![])
    }
}

impl<T: RawRead + ?Sized> RawRead for &T {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).get(space, key)
    }
    fn scan(&self, space: Space, prefix: &[u8], from: Option<&[u8]>, limit: usize) -> Result<Vec<KeyValue>> {
        (**self).scan(space, prefix, from, limit)
    }
    fn account(&self, id: ObjectId) -> Result<Option<AccountState>> {
        (**self).account(id)
    }
}

/// A consistent, read-only view of the projections at one instant.
#[derive(Clone)]
pub struct SnapshotView {
    projections: Projections,
    snapshot: Snapshot,
}

impl SnapshotView {
    pub(crate) fn new(projections: Projections, snapshot: Snapshot) -> Self {
        SnapshotView { projections, snapshot }
    }

    /// The fjall snapshot under the view: the log read through it shows the
    /// records these projections include.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

impl RawRead for SnapshotView {
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
    /// Accounts decoded from what reads see now (staged or base). An entry
    /// goes when its key is written, and all go on rollback, so it never
    /// answers differently from decoding [`RawRead::get`].
    decoded: RefCell<HashMap<ObjectId, Option<AccountState>>>,
}

/// A point an [`Overlay`] can be rolled back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Savepoint(usize);

impl<R: RawRead> Overlay<R> {
    /// An overlay with nothing staged on `base`.
    pub fn new(base: R) -> Self {
        Overlay { base, writes: BTreeMap::new(), undo: Vec::new(), decoded: RefCell::default() }
    }

    /// Stages fold output; later reads see it.
    pub fn apply(&mut self, mutations: Vec<Mutation>) {
        let decoded = self.decoded.get_mut();
        for m in mutations {
            if m.space == Space::Accounts
                && let Some(id) = crate::keys::decode_id(&m.key)
            {
                decoded.remove(&id);
            }
            let key = (m.space, m.key);
            let previous = self.writes.insert(key.clone(), m.value);
            self.undo.push((key, previous));
        }
    }

    /// The point to roll back to, to undo what is staged after it.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint(self.undo.len())
    }

    /// Undoes every write made since `savepoint`.
    pub fn rollback(&mut self, savepoint: Savepoint) {
        self.decoded.get_mut().clear();
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
        self.decoded.get_mut().clear();
        std::mem::take(&mut self.writes)
            .into_iter()
            .map(|((space, key), value)| Mutation { space, key, value })
            .collect()
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

impl<R: RawRead> RawRead for Overlay<R> {
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

    fn account(&self, id: ObjectId) -> Result<Option<AccountState>> {
        if let Some(account) = self.decoded.borrow().get(&id) {
            return Ok(account.clone());
        }
        let key = (Space::Accounts, id.to_be_bytes().to_vec());
        let account = match self.writes.get(&key) {
            Some(Some(raw)) => Some(from_json(raw)?),
            Some(None) => None,
            None => self.base.account(id)?,
        };
        self.decoded.borrow_mut().insert(id, account.clone());
        Ok(account)
    }
}

#[cfg(test)]
mod tests {
    //! `Overlay` against a model: a `BTreeMap` that applies the same writes and
    //! keeps a copy at each savepoint. Small key alphabets make prefixes,
    //! `from` bounds and scan limits collide with staged writes and removals.

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    type Model = BTreeMap<(Space, Vec<u8>), Vec<u8>>;

    /// A base state held in memory, with the scan semantics of `SnapshotView`.
    struct Memory(Model);

    impl RawRead for Memory {
        fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
            Ok(self.0.get(&(space, key.to_vec())).cloned())
        }
        fn scan(&self, space: Space, prefix: &[u8], from: Option<&[u8]>, limit: usize) -> Result<Vec<KeyValue>> {
            Ok(model_scan(&self.0, space, prefix, from, limit))
        }
    }

    fn model_scan(model: &Model, space: Space, prefix: &[u8], from: Option<&[u8]>, limit: usize) -> Vec<KeyValue> {
        let start = from.unwrap_or(prefix).to_vec();
        model
            .range((space, start)..)
            .take_while(|((s, k), _)| *s == space && k.starts_with(prefix))
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect()
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(Vec<(bool, Vec<u8>, Option<Vec<u8>>)>),
        Savepoint,
        /// Roll back to the n-th savepoint still open (modulo their number).
        Rollback(usize),
        Get(bool, Vec<u8>),
        Scan {
            index: bool,
            prefix: Vec<u8>,
            suffix: Option<Vec<u8>>,
            limit: usize,
        },
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, 0xff]), 0..4)
    }

    fn space(index: bool) -> Space {
        if index { Space::Index } else { Space::Meta }
    }

    fn op() -> impl Strategy<Value = Op> {
        let write = (any::<bool>(), key(), prop::option::of(prop::collection::vec(any::<u8>(), 0..3)));
        prop_oneof![
            4 => prop::collection::vec(write, 1..4).prop_map(Op::Write),
            1 => Just(Op::Savepoint),
            1 => (0usize..8).prop_map(Op::Rollback),
            2 => (any::<bool>(), key()).prop_map(|(i, k)| Op::Get(i, k)),
            3 => (any::<bool>(), prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, 0xff]), 0..2), prop::option::of(key()), 0usize..6)
                .prop_map(|(index, prefix, suffix, limit)| Op::Scan { index, prefix, suffix, limit }),
        ]
    }

    fn base() -> impl Strategy<Value = Model> {
        prop::collection::btree_map(
            (any::<bool>(), key()).prop_map(|(i, k)| (space(i), k)),
            prop::collection::vec(any::<u8>(), 0..3),
            0..12,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn overlay_reads_like_the_model(base in base(), ops in prop::collection::vec(op(), 1..40)) {
            let mut overlay = Overlay::new(Memory(base.clone()));
            let mut model = base.clone();
            let mut savepoints: Vec<(Savepoint, Model)> = Vec::new();
            for op in ops {
                match op {
                    Op::Write(writes) => {
                        let mutations = writes
                            .into_iter()
                            .map(|(i, key, value)| Mutation { space: space(i), key, value })
                            .collect::<Vec<_>>();
                        for m in &mutations {
                            match &m.value {
                                Some(v) => model.insert((m.space, m.key.clone()), v.clone()),
                                None => model.remove(&(m.space, m.key.clone())),
                            };
                        }
                        overlay.apply(mutations);
                    }
                    Op::Savepoint => savepoints.push((overlay.savepoint(), model.clone())),
                    Op::Rollback(n) if !savepoints.is_empty() => {
                        let n = n % savepoints.len();
                        savepoints.truncate(n + 1);
                        let (savepoint, saved) = savepoints[n].clone();
                        overlay.rollback(savepoint);
                        model = saved;
                    }
                    Op::Rollback(_) => {}
                    Op::Get(i, key) => {
                        prop_assert_eq!(overlay.get(space(i), &key).unwrap(), model.get(&(space(i), key.clone())).cloned());
                    }
                    Op::Scan { index, prefix, suffix, limit } => {
                        let from = suffix.map(|s| [prefix.clone(), s].concat());
                        let got = overlay.scan(space(index), &prefix, from.as_deref(), limit).unwrap();
                        let want = model_scan(&model, space(index), &prefix, from.as_deref(), limit);
                        prop_assert_eq!(got, want, "scan {:?} from {:?} limit {}", prefix, from, limit);
                    }
                }
            }
            // What the overlay hands to the write batch turns the base into the model.
            let mut written = base;
            for m in overlay.take_mutations() {
                match m.value {
                    Some(v) => written.insert((m.space, m.key), v),
                    None => written.remove(&(m.space, m.key)),
                };
            }
            prop_assert_eq!(written, model);
            prop_assert!(overlay.is_empty());
        }
    }
}
