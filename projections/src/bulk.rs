//! The bulk fold: many records folded in memory, each projection key written once.
//!
//! Replay (`rebuild`, `restore`, catching up on open) folds whole runs of the
//! log. [`crate::apply`] answers one event with the key writes it causes, which
//! the writer needs (later commands of a group read them); replayed through it,
//! every event re-reads its account as JSON, derives all its index keys twice
//! and writes the difference. [`BulkFold`] instead keeps each object it touches
//! decoded in memory, folds with the same pure functions (`fold_account`, …),
//! and at [`BulkFold::finish`] derives what to write from where each object
//! started (its state in the base view) and where it ended: one object value,
//! one index difference per object, the history and change entries of every
//! event, and the meta counters.
//!
//! Invariant (guarded by the `replay == live` property test): the keys
//! `finish` writes on top of the base are exactly those that applying the same
//! records one by one with [`crate::apply`] would leave.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ledger_events::codec::{seq_key, to_json};
use ledger_events::values::{ExternalId, ObjectId};
use ledger_events::{Event, ObjectType, RecordHeader};

use crate::apply::{allocated_id, erased_changes, fold_account, fold_domain, fold_role, fold_tenant, trimmed_changes};
use crate::changes::{ChangeEntry, ChangeKind};
use crate::error::{Error, Result};
use crate::index::{account_index, domain_index};
use crate::keys;
use crate::state::{self, AccountState, DomainState, RoleState, TenantState};
use crate::view::{Mutation, Space, StateRead};

/// An object as the base view had it, and as folded so far.
struct Slot<T> {
    base: Option<T>,
    now: Option<T>,
}

/// Records folded in memory over a base view; [`BulkFold::finish`] gives the
/// writes, sorted by keyspace and key (ready for a batch or an ingestion).
pub(crate) struct BulkFold<R> {
    base: R,
    accounts: HashMap<ObjectId, Slot<AccountState>>,
    domains: HashMap<ObjectId, Slot<DomainState>>,
    roles: HashMap<ObjectId, Option<RoleState>>,
    tenants: HashMap<ObjectId, Option<TenantState>>,
    /// `v` keys: account id and position, 17 bytes.
    history: Vec<[u8; 17]>,
    /// `proj_changes` keys (type tag, position) and entries, in fold order; a
    /// later entry under the same key replaces an earlier one.
    changes: Vec<([u8; 9], Vec<u8>)>,
    /// The last `ChangesTrimmed` boundary folded, if any.
    trimmed_before: Option<u64>,
    applied: Option<u64>,
    type_states: BTreeMap<ObjectType, u64>,
    next_id: Option<u64>,
    folded: u64,
}

impl<R: StateRead> BulkFold<R> {
    /// A fold on top of `base` (the projections as they are before the first record).
    pub(crate) fn new(base: R) -> Self {
        BulkFold {
            base,
            accounts: HashMap::new(),
            domains: HashMap::new(),
            roles: HashMap::new(),
            tenants: HashMap::new(),
            history: Vec::new(),
            changes: Vec::new(),
            trimmed_before: None,
            applied: None,
            type_states: BTreeMap::new(),
            next_id: None,
            folded: 0,
        }
    }

    /// How many records were folded.
    pub(crate) fn folded(&self) -> u64 {
        self.folded
    }

    /// How many objects are held in memory (to bound a chunk).
    pub(crate) fn objects(&self) -> usize {
        self.accounts.len() + self.domains.len() + self.roles.len() + self.tenants.len()
    }

    /// Folds one record's event. Errors: [`Error::Inconsistent`] when the event
    /// does not fit the state (a damaged or misordered log), as `apply` says it.
    pub(crate) fn apply(&mut self, header: &RecordHeader, event: &Event) -> Result<()> {
        self.folded += 1;
        self.applied = Some(header.seq);
        let Some((object_type, id)) = event.subject() else {
            if let Event::ChangesTrimmed(e) = event {
                self.changes.retain(|(key, _)| keys::change_position(key).unwrap_or(u64::MAX) >= e.before);
                self.trimmed_before = Some(e.before);
            }
            return Ok(());
        };
        let fail =
            |why: &str| Error::Inconsistent(format!("position {}: {} {}: {why}", header.seq, event.type_name(), id));
        let mut tenants: Vec<ExternalId> = Vec::new();
        let mut belongs = |t: Option<&ExternalId>| {
            if let Some(t) = t.filter(|t| !tenants.contains(*t)) {
                tenants.push(t.clone());
            }
        };
        match object_type {
            ObjectType::Account => {
                let slot = slot(&mut self.accounts, id, |id| state::account(&self.base, id))?;
                let old = slot.now.take();
                // An erasure's change entry names no tenant: live, its account
                // is already destroyed when it is folded; a fold that meets the
                // destroy erased (a cluster node catching up) must agree.
                if !matches!(event, Event::AccountErased(_)) {
                    belongs(old.as_ref().and_then(|a| a.member_tenant_id.as_ref()));
                }
                slot.now = fold_account(old, event).map_err(fail)?;
                belongs(slot.now.as_ref().and_then(|a| a.member_tenant_id.as_ref()));
                self.history.push(history_key(id, header.seq));
                if let Event::AccountErased(e) = event {
                    for (position, change) in erased_changes(e)? {
                        self.history.push(history_key(e.account_id, position));
                        self.changes.push((change_key(ObjectType::Account, position), change.encode()));
                    }
                    self.allocate(e.max_allocated_id)?;
                }
            }
            ObjectType::Role => {
                let now = take_or_load(&mut self.roles, id, |id| state::role(&self.base, id))?;
                self.roles.insert(id, fold_role(now, event).map_err(fail)?);
            }
            ObjectType::Tenant => {
                let now = take_or_load(&mut self.tenants, id, |id| state::tenant(&self.base, id))?;
                self.tenants.insert(id, fold_tenant(now, event).map_err(fail)?);
                if let Ok(own) = id.to_jmap().parse::<ExternalId>() {
                    belongs(Some(&own));
                }
            }
            ObjectType::Domain => {
                let slot = slot(&mut self.domains, id, |id| state::domain(&self.base, id))?;
                let old = slot.now.take();
                belongs(old.as_ref().and_then(|d| d.member_tenant_id.as_ref()));
                slot.now = fold_domain(old, event).map_err(fail)?;
                belongs(slot.now.as_ref().and_then(|d| d.member_tenant_id.as_ref()));
            }
        }
        let change = ChangeEntry { id, kind: ChangeKind::of(event), commit: header.commit.commit_id, tenants };
        self.changes.push((change_key(object_type, header.seq), change.encode()));
        self.type_states.insert(object_type, header.seq);
        if let Some(allocated) = allocated_id(event) {
            self.allocate(allocated)?;
        }
        Ok(())
    }

    /// Folds a record whose payload was erased: only its position counts (its
    /// history and change entries come back with the AccountErased event).
    pub(crate) fn apply_erased(&mut self, header: &RecordHeader) {
        self.folded += 1;
        self.applied = Some(header.seq);
        self.type_states.insert(ObjectType::Account, header.seq);
    }

    fn allocate(&mut self, id: ObjectId) -> Result<()> {
        let next = match self.next_id {
            Some(n) => n,
            None => state::next_object_id(&self.base)?,
        };
        self.next_id = Some(next.max(id.0 + 1));
        Ok(())
    }

    /// The writes that bring the base to the folded state, sorted by
    /// (keyspace, key), each key once.
    pub(crate) fn finish(self) -> Result<Vec<Mutation>> {
        let mut out: Vec<Mutation> = Vec::new();
        // Index keys given up (removals), sorted.
        let mut removed: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut objects = |space: Space, id: ObjectId, had: bool, value: Option<Vec<u8>>| {
            if value.is_some() || had {
                out.push(Mutation { space, key: id.to_be_bytes().to_vec(), value });
            }
        };
        // An index key one object gives up and another takes (a freed address)
        // ends with the taker: removals first, then what the final states hold.
        let mut added: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut diff = |old: BTreeMap<Vec<u8>, Vec<u8>>, new: BTreeMap<Vec<u8>, Vec<u8>>| {
            for key in old.keys().filter(|k| !new.contains_key(*k)) {
                removed.insert(key.clone());
            }
            for (key, value) in new {
                if old.get(&key) != Some(&value) {
                    added.push((key, value));
                }
            }
        };
        for (id, slot) in &self.accounts {
            objects(Space::Accounts, *id, slot.base.is_some(), slot.now.as_ref().map(to_json));
            diff(account_index(slot.base.as_ref()), account_index(slot.now.as_ref()));
        }
        for (id, slot) in &self.domains {
            objects(Space::Domains, *id, slot.base.is_some(), slot.now.as_ref().map(to_json));
            diff(domain_index(slot.base.as_ref()), domain_index(slot.now.as_ref()));
        }
        // Roles and tenants have no index: a removal of a key never written is harmless.
        for (id, now) in &self.roles {
            objects(Space::Roles, *id, true, now.as_ref().map(to_json));
        }
        for (id, now) in &self.tenants {
            objects(Space::Tenants, *id, true, now.as_ref().map(to_json));
        }
        // Keys added are unique (each belongs to one final state), and so are
        // history keys (one position each).
        let mut put: Vec<(Vec<u8>, Vec<u8>)> = added;
        put.extend(self.history.iter().map(|key| (key.to_vec(), Vec::new())));
        put.sort_by(|a, b| a.0.cmp(&b.0));
        // A log the writer wrote never gives one unique key to two final
        // states; one that does (a forged backup with a recomputed chain)
        // must not make the ingestion fail on a repeated key: keep one.
        put.dedup_by(|later, earlier| later.0 == earlier.0);
        merge(&mut out, Space::Index, put, removed);

        // Entries the base holds below the last trim boundary go (sorted: one
        // scan per type, in type order).
        let trimmed = match self.trimmed_before {
            Some(before) => trimmed_changes(&self.base, before)?,
            None => Vec::new(),
        };
        // Later entries under one key (an erasure rewriting them) replace earlier ones.
        let mut written = self.changes;
        written.reverse();
        written.sort_by_key(|entry| entry.0);
        written.dedup_by(|later, earlier| later.0 == earlier.0);
        let written = written.into_iter().map(|(key, value)| (key.to_vec(), value)).collect();
        merge(&mut out, Space::Changes, written, trimmed);

        let mut meta: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        if let Some(applied) = self.applied {
            meta.insert(keys::META_APPLIED_SEQ.to_vec(), seq_key(applied).to_vec());
        }
        for (object_type, seq) in &self.type_states {
            meta.insert(keys::meta_type_state(*object_type), seq_key(*seq).to_vec());
        }
        if let Some(next) = self.next_id {
            meta.insert(keys::META_NEXT_ID.to_vec(), seq_key(next).to_vec());
        }
        if let Some(before) = self.trimmed_before {
            meta.insert(keys::META_CHANGES_FROM.to_vec(), seq_key(before).to_vec());
        }
        out.extend(meta.into_iter().map(|(key, value)| Mutation { space: Space::Meta, key, value: Some(value) }));
        // Objects came in hash order; the rest is sorted already (a stable
        // sort over mostly sorted runs is cheap).
        out.sort_by(|a, b| (a.space, &a.key).cmp(&(b.space, &b.key)));
        Ok(out)
    }
}

/// Appends to `out` the writes of `space`: `put` (sorted, each key once) and
/// a removal of each key of `removed` (sorted) that `put` does not write: a
/// key both given up and taken ends with the taker.
fn merge(
    out: &mut Vec<Mutation>,
    space: Space,
    put: Vec<(Vec<u8>, Vec<u8>)>,
    removed: impl IntoIterator<Item = Vec<u8>>,
) {
    let mut removed = removed.into_iter().peekable();
    for (key, value) in put {
        while let Some(gone) = removed.next_if(|gone| *gone < key) {
            out.push(Mutation { space, key: gone, value: None });
        }
        removed.next_if(|gone| *gone == key);
        out.push(Mutation { space, key, value: Some(value) });
    }
    out.extend(removed.map(|key| Mutation { space, key, value: None }));
}

/// The slot of `id`, loaded from the base the first time.
/// The state of `id` this chunk has folded so far, taken out of `states`
/// (the caller puts the next one back), or read with `load` the first time.
fn take_or_load<T>(
    states: &mut HashMap<ObjectId, Option<T>>,
    id: ObjectId,
    load: impl FnOnce(ObjectId) -> Result<Option<T>>,
) -> Result<Option<T>> {
    match states.remove(&id) {
        Some(now) => Ok(now),
        None => load(id),
    }
}

fn slot<T>(
    slots: &mut HashMap<ObjectId, Slot<T>>,
    id: ObjectId,
    load: impl FnOnce(ObjectId) -> Result<Option<T>>,
) -> Result<&mut Slot<T>>
where
    T: Clone,
{
    Ok(match slots.entry(id) {
        std::collections::hash_map::Entry::Occupied(slot) => slot.into_mut(),
        std::collections::hash_map::Entry::Vacant(vacant) => {
            let base = load(id)?;
            vacant.insert(Slot { now: base.clone(), base })
        }
    })
}

fn history_key(account: ObjectId, seq: u64) -> [u8; 17] {
    let mut key = [0u8; 17];
    key.copy_from_slice(&keys::history(account, seq));
    key
}

fn change_key(t: ObjectType, seq: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key.copy_from_slice(&keys::change(t, seq));
    key
}
