//! Change tracking for `/changes`: what was created, updated and destroyed since a
//! state, coalesced per object, in pages that never split a commit.

use std::collections::BTreeMap;

use ledger_events::ObjectType;
use ledger_events::values::ObjectId;

use crate::apply::ChangeKind;
use crate::error::Result;
use crate::keys;
use crate::view::{Space, StateRead};

/// One page of changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangesPage {
    pub created: Vec<ObjectId>,
    pub updated: Vec<ObjectId>,
    pub destroyed: Vec<ObjectId>,
    /// The state to ask from next: the position of the last change included.
    pub new_state: u64,
    pub has_more: bool,
}

impl ChangesPage {
    pub fn len(&self) -> usize {
        self.created.len() + self.updated.len() + self.destroyed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a page could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangesError {
    /// One commit changed more objects than `max_changes` allows in a page.
    CommitTooLarge { objects: usize },
}

struct Entry {
    seq: u64,
    id: ObjectId,
    kind: ChangeKind,
    commit: [u8; 16],
}

fn read_entries(view: &impl StateRead, t: ObjectType, after: u64, limit: usize) -> Result<Vec<Entry>> {
    let prefix = [t.tag()];
    let start = keys::change(t, after.saturating_add(1));
    let raw = view.scan(Space::Changes, &prefix, Some(&start), limit)?;
    Ok(raw
        .into_iter()
        .filter_map(|(k, v)| {
            let seq = u64::from_be_bytes(k.get(1..9)?.try_into().ok()?);
            let id = keys::decode_id(v.get(..8)?)?;
            let kind = ChangeKind::from_tag(*v.get(8)?)?;
            let commit = v.get(9..25)?.try_into().ok()?;
            Some(Entry { seq, id, kind, commit })
        })
        .collect())
}

fn visible(first: ChangeKind, last: ChangeKind) -> bool {
    // Created and destroyed inside the window: the client never saw it.
    !(first == ChangeKind::Created && last == ChangeKind::Destroyed)
}

/// Reads change entries in order, a chunk at a time, grouped into commits.
struct Commits<'a, V> {
    view: &'a V,
    object_type: ObjectType,
    cursor: u64,
    buffer: std::collections::VecDeque<Entry>,
    exhausted: bool,
}

impl<V: StateRead> Commits<'_, V> {
    fn fill(&mut self) -> Result<()> {
        if self.buffer.is_empty() && !self.exhausted {
            let batch = read_entries(self.view, self.object_type, self.cursor, 4096)?;
            self.exhausted = batch.len() < 4096;
            if let Some(last) = batch.last() {
                self.cursor = last.seq;
            }
            self.buffer.extend(batch);
        }
        Ok(())
    }

    fn next_commit(&mut self) -> Result<Option<Vec<Entry>>> {
        self.fill()?;
        let Some(first) = self.buffer.pop_front() else { return Ok(None) };
        let commit = first.commit;
        let mut entries = vec![first];
        loop {
            self.fill()?;
            match self.buffer.front() {
                Some(next) if next.commit == commit => entries.extend(self.buffer.pop_front()),
                _ => return Ok(Some(entries)),
            }
        }
    }
}

/// Changes to objects of type `t` after position `since`, at most `max_changes`
/// objects, whole commits only.
pub fn changes_since(
    view: &impl StateRead,
    t: ObjectType,
    since: u64,
    max_changes: usize,
) -> Result<std::result::Result<ChangesPage, ChangesError>> {
    // Per object: its first and last change in the window.
    let mut objects: BTreeMap<ObjectId, (ChangeKind, ChangeKind)> = BTreeMap::new();
    let mut shown = 0usize;
    let mut new_state = since;
    let mut has_more = false;
    let mut commits = Commits { view, object_type: t, cursor: since, buffer: Default::default(), exhausted: false };
    let mut accepted_any = false;
    while let Some(entries) = commits.next_commit()? {
        let mut undo = Vec::with_capacity(entries.len());
        for e in &entries {
            let before = objects.get(&e.id).copied();
            let after = match before {
                Some((first, _)) => (first, e.kind),
                None => (e.kind, e.kind),
            };
            shown =
                shown + usize::from(visible(after.0, after.1)) - before.map_or(0, |(f, l)| usize::from(visible(f, l)));
            objects.insert(e.id, after);
            undo.push((e.id, before));
        }
        if shown > max_changes {
            if !accepted_any {
                return Ok(Err(ChangesError::CommitTooLarge { objects: shown }));
            }
            for (id, before) in undo.into_iter().rev() {
                match before {
                    Some(v) => objects.insert(id, v),
                    None => objects.remove(&id),
                };
            }
            has_more = true;
            break;
        }
        accepted_any = true;
        new_state = entries.last().map_or(new_state, |e| e.seq);
    }
    let mut page = ChangesPage { new_state, has_more, ..Default::default() };
    for (id, (first, last)) in objects {
        match (first, last) {
            (ChangeKind::Created, ChangeKind::Destroyed) => {}
            (ChangeKind::Created, _) => page.created.push(id),
            (_, ChangeKind::Destroyed) => page.destroyed.push(id),
            _ => page.updated.push(id),
        }
    }
    Ok(Ok(page))
}
