//! Change tracking for `/changes`: what was created, updated and destroyed since a
//! state, coalesced per object, in pages that never split a commit.

use std::collections::BTreeMap;

use ledger_events::values::{ExternalId, ObjectId};
use ledger_events::{Event, ObjectType};
use uuid::Uuid;

use crate::error::Result;
use crate::keys;
use crate::view::{Space, StateRead};

/// What an event did to its object, as `/changes` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The event created the object.
    Created,
    /// The event changed it.
    Updated,
    /// The event destroyed (or erased) it.
    Destroyed,
}

impl ChangeKind {
    fn tag(self) -> u8 {
        match self {
            ChangeKind::Created => b'c',
            ChangeKind::Updated => b'u',
            ChangeKind::Destroyed => b'd',
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            b'c' => Some(ChangeKind::Created),
            b'u' => Some(ChangeKind::Updated),
            b'd' => Some(ChangeKind::Destroyed),
            _ => None,
        }
    }

    /// The name AccountErased records it under: `created`, `updated`, `destroyed`.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Destroyed => "destroyed",
        }
    }

    /// The kind of a [`ChangeKind::name`]; any other name counts as an update.
    pub fn from_name(name: &str) -> Self {
        match name {
            "created" => ChangeKind::Created,
            "destroyed" => ChangeKind::Destroyed,
            _ => ChangeKind::Updated,
        }
    }

    pub(crate) fn of(event: &Event) -> Self {
        Self::of_type(event.type_name())
    }

    /// The kind of change an event of type `event_type` (a record header's
    /// type name) is to the object it touches.
    pub fn of_type(event_type: &str) -> Self {
        match event_type {
            "AccountCreated" | "DomainCreated" | "RoleCreated" => ChangeKind::Created,
            "AccountDestroyed" | "DomainDestroyed" | "RoleDestroyed" | "AccountErased" => ChangeKind::Destroyed,
            _ => ChangeKind::Updated,
        }
    }
}

/// One change-tracking entry: what happened to which object in which commit,
/// and the tenants it belonged to before and after (for a tenant principal's
/// `/changes`), stored under its type and log position. Value layout (this is
/// its only encoder and decoder): object id u64 BE, kind tag (`c`/`u`/`d`),
/// commit id (16 bytes), then per tenant a u8 length and its bytes (none for
/// global objects; entries written before tenants were tracked have none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEntry {
    /// The object changed.
    pub id: ObjectId,
    /// What happened to it.
    pub kind: ChangeKind,
    /// The commit the change belongs to (a page never splits one).
    pub commit: Uuid,
    /// The tenants the object belonged to just before and just after the change.
    pub tenants: Vec<ExternalId>,
}

impl ChangeEntry {
    /// Whether a principal confined to `tenant` (`None`: not confined) may learn of it.
    pub fn visible_to(&self, tenant: Option<&ExternalId>) -> bool {
        tenant.is_none_or(|t| self.tenants.contains(t))
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(25);
        value.extend_from_slice(&self.id.to_be_bytes());
        value.push(self.kind.tag());
        value.extend_from_slice(self.commit.as_bytes());
        for t in &self.tenants {
            // An ExternalId is at most 255 bytes.
            value.push(t.as_str().len() as u8);
            value.extend_from_slice(t.as_str().as_bytes());
        }
        value
    }

    pub(crate) fn decode(raw: &[u8]) -> Option<Self> {
        let id = keys::decode_id(raw.get(..8)?)?;
        let kind = ChangeKind::from_tag(*raw.get(8)?)?;
        let commit = Uuid::from_slice(raw.get(9..25)?).ok()?;
        let mut tenants = Vec::new();
        let mut rest = raw.get(25..)?;
        while let Some((&len, tail)) = rest.split_first() {
            let (name, tail) = tail.split_at_checked(usize::from(len))?;
            tenants.push(std::str::from_utf8(name).ok()?.parse().ok()?);
            rest = tail;
        }
        Some(ChangeEntry { id, kind, commit, tenants })
    }
}

/// One page of changes (RFC 8620 §5.2), each object once, in id order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangesPage {
    /// Objects created in the window (and not destroyed in it).
    pub created: Vec<ObjectId>,
    /// Objects that existed before the window and changed in it.
    pub updated: Vec<ObjectId>,
    /// Objects that existed before the window and were destroyed in it.
    pub destroyed: Vec<ObjectId>,
    /// The state to ask from next: the position of the last change included.
    pub new_state: u64,
    /// Whether more changes follow `new_state`.
    pub has_more: bool,
}

impl ChangesPage {
    /// How many objects the page shows.
    pub fn len(&self) -> usize {
        self.created.len() + self.updated.len() + self.destroyed.len()
    }

    /// Whether the page shows nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a page could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    /// One commit changed more objects than `max_changes` allows in a page.
    #[error("one commit changed {objects} objects, more than a page holds")]
    CommitTooLarge {
        /// How many objects that commit shows.
        objects: usize,
    },
    /// The change tracking could not be read.
    #[error(transparent)]
    Read(#[from] crate::Error),
}

/// A change entry with its position.
struct Entry {
    seq: u64,
    change: ChangeEntry,
}

fn read_entries(view: &impl StateRead, t: ObjectType, after: u64, limit: usize) -> Result<Vec<Entry>> {
    let prefix = [t.tag()];
    let start = keys::change(t, after.saturating_add(1));
    let raw = view.scan(Space::Changes, &prefix, Some(&start), limit)?;
    Ok(raw
        .into_iter()
        .filter_map(|(k, v)| Some(Entry { seq: keys::change_position(&k)?, change: ChangeEntry::decode(&v)? }))
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
        let commit = first.change.commit;
        let mut entries = vec![first];
        loop {
            self.fill()?;
            match self.buffer.front() {
                Some(next) if next.change.commit == commit => entries.extend(self.buffer.pop_front()),
                _ => return Ok(Some(entries)),
            }
        }
    }
}

/// Whether an object of type `t` visible to `scope` changed after position
/// `since` (JMAP push: is there anything to tell this principal).
pub fn any_change_since(view: &impl StateRead, t: ObjectType, since: u64, scope: Option<&ExternalId>) -> Result<bool> {
    let mut cursor = since;
    loop {
        let batch = read_entries(view, t, cursor, 4096)?;
        if batch.iter().any(|e| e.change.visible_to(scope)) {
            return Ok(true);
        }
        match batch.last() {
            Some(last) if batch.len() == 4096 => cursor = last.seq,
            _ => return Ok(false),
        }
    }
}

/// Changes to objects of type `t` after position `since`, at most `max_changes`
/// objects, whole commits only. With `scope`, only changes to objects of that
/// tenant (before or after the change): another tenant's objects do not exist
/// for a tenant principal.
pub fn changes_since(
    view: &impl StateRead,
    t: ObjectType,
    since: u64,
    max_changes: usize,
    scope: Option<&ExternalId>,
) -> std::result::Result<ChangesPage, ChangesError> {
    // Per object: its first and last change in the window.
    let mut objects: BTreeMap<ObjectId, (ChangeKind, ChangeKind)> = BTreeMap::new();
    let mut shown = 0usize;
    let mut new_state = since;
    let mut has_more = false;
    let mut commits = Commits { view, object_type: t, cursor: since, buffer: Default::default(), exhausted: false };
    let mut accepted_any = false;
    while let Some(entries) = commits.next_commit()? {
        let mut undo = Vec::with_capacity(entries.len());
        for e in entries.iter().map(|e| &e.change).filter(|e| e.visible_to(scope)) {
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
                return Err(ChangesError::CommitTooLarge { objects: shown });
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
    Ok(page)
}

#[cfg(test)]
mod tests {
    //! Paging of `/changes` over commits folded in memory: coalescing per
    //! object, objects created and destroyed inside the window, pages that never
    //! split a commit, and commits larger than a read chunk.

    use ledger_events::model::Change;
    use ledger_events::{Actor, ChainTail, CommitMeta, DomainCreated, DomainDestroyed, DomainUpdated, UtcDateTime};

    use super::*;
    use crate::{Empty, Overlay, apply, state};

    struct World {
        state: Overlay<Empty>,
        tail: ChainTail,
    }

    enum Step {
        Create(u64),
        Update(u64),
        Destroy(u64),
        /// To another tenant.
        Move(u64, &'static str),
    }

    fn name(id: u64) -> ledger_events::values::DomainName {
        format!("d{id}.example").parse().unwrap()
    }

    impl World {
        fn new() -> Self {
            World { state: Overlay::new(Empty), tail: ChainTail::GENESIS }
        }

        /// Folds one commit; returns its last position.
        fn commit(&mut self, steps: &[Step]) -> u64 {
            let meta = CommitMeta {
                commit_id: Uuid::now_v7(),
                committed_at: UtcDateTime::from_millis(0),
                actor: Actor::system(),
                request_id: String::new(),
                call_id: String::new(),
            };
            for step in steps {
                let event = match *step {
                    Step::Create(id) => Event::DomainCreated(DomainCreated {
                        domain_id: ObjectId(id),
                        name: name(id),
                        description: None,
                        created_at: UtcDateTime::from_millis(0),
                        // Odd ids belong to tenant "odd"; even ones to none.
                        member_tenant_id: (id % 2 == 1).then(|| "odd".parse().unwrap()),
                        settings: None,
                    }),
                    Step::Update(id) => Event::DomainUpdated(DomainUpdated {
                        domain_id: ObjectId(id),
                        description: Some(Change { old: None, new: Some(format!("v{}", self.tail.next_seq)) }),
                        member_tenant_id: None,
                        settings: None,
                    }),
                    Step::Move(id, to) => Event::DomainUpdated(DomainUpdated {
                        domain_id: ObjectId(id),
                        description: None,
                        member_tenant_id: Some(Change {
                            old: (id % 2 == 1).then(|| "odd".parse().unwrap()),
                            new: Some(to.parse().unwrap()),
                        }),
                        settings: None,
                    }),
                    Step::Destroy(id) => {
                        Event::DomainDestroyed(DomainDestroyed { domain_id: ObjectId(id), name: name(id) })
                    }
                };
                let record = self.tail.seal(&meta, Uuid::now_v7(), &event, &[0; 32]);
                let mutations = apply(&self.state, &record.header, &event).unwrap();
                self.state.apply(mutations);
            }
            self.tail.next_seq - 1
        }

        fn page(&self, since: u64, max: usize) -> std::result::Result<ChangesPage, ChangesError> {
            changes_since(&self.state, ObjectType::Domain, since, max, None)
        }

        fn page_of(&self, tenant: &str, since: u64) -> ChangesPage {
            let tenant: ExternalId = tenant.parse().unwrap();
            changes_since(&self.state, ObjectType::Domain, since, usize::MAX, Some(&tenant)).unwrap()
        }
    }

    fn ids(list: &[u64]) -> Vec<ObjectId> {
        list.iter().map(|n| ObjectId(*n)).collect()
    }

    #[test]
    fn pages_coalesce_per_object_and_never_split_a_commit() {
        let mut w = World::new();
        let c1 = w.commit(&[Step::Create(1), Step::Create(2)]);
        let c2 = w.commit(&[Step::Update(1)]);
        let c3 = w.commit(&[Step::Create(3), Step::Destroy(2)]);
        let c4 = w.commit(&[Step::Create(4), Step::Destroy(4)]);

        // Everything: 2 and 4 were created and destroyed inside the window.
        let all = w.page(0, usize::MAX).unwrap();
        assert_eq!((all.created, all.updated, all.destroyed), (ids(&[1, 3]), vec![], vec![]));
        assert_eq!((all.new_state, all.has_more), (c4, false));

        // From after the first commit, each object shows its net change.
        let later = w.page(c1, usize::MAX).unwrap();
        assert_eq!((later.created, later.updated, later.destroyed), (ids(&[3]), ids(&[1]), ids(&[2])));

        // A first commit larger than the page cannot be split.
        assert!(matches!(w.page(0, 1), Err(ChangesError::CommitTooLarge { objects: 2 })));

        // Two shown objects fit every commit, since 2 and 4 come and go.
        let two = w.page(0, 2).unwrap();
        assert_eq!((two.created.clone(), two.len(), two.has_more), (ids(&[1, 3]), 2, false));

        // One object per page: c2 fits, c3 (two objects) ends the page before it.
        let first = w.page(c1, 1).unwrap();
        assert_eq!((first.updated, first.new_state, first.has_more), (ids(&[1]), c2, true));
        assert!(matches!(w.page(first.new_state, 1), Err(ChangesError::CommitTooLarge { objects: 2 })));
        let next = w.page(first.new_state, 2).unwrap();
        assert_eq!((next.created, next.destroyed, next.new_state, next.has_more), (ids(&[3]), ids(&[2]), c4, false));
        assert_eq!(c3 + 2, c4);

        // Nothing after the last position.
        let none = w.page(c4, 5).unwrap();
        assert!(none.is_empty() && !none.has_more && none.new_state == c4);
    }

    #[test]
    fn a_tenant_sees_only_changes_to_its_objects_before_or_after_each() {
        let mut w = World::new();
        let c1 = w.commit(&[Step::Create(1), Step::Create(2), Step::Create(3)]);
        w.commit(&[Step::Update(2), Step::Update(3), Step::Destroy(1)]);
        let all = w.page_of("odd", 0);
        assert_eq!((all.created, all.updated, all.destroyed), (ids(&[3]), vec![], vec![]), "1 came and went");
        let later = w.page_of("odd", c1);
        assert_eq!((later.created, later.updated, later.destroyed), (vec![], ids(&[3]), ids(&[1])), "2 is not its");
        // A move out is still shown to the tenant it left (as an update; /get
        // then answers notFound), and to the one it joined.
        let c3 = w.commit(&[Step::Move(3, "other")]);
        assert_eq!(w.page_of("odd", c3 - 1).updated, ids(&[3]));
        assert_eq!(w.page_of("other", c3 - 1).updated, ids(&[3]));
        assert!(w.page_of("nobody", 0).is_empty());
        let stored = state::change_at(&w.state, ObjectType::Domain, c3).unwrap().unwrap();
        assert_eq!(ChangeEntry::decode(&stored.encode()), Some(stored.clone()), "tenants round-trip");
        assert_eq!(stored.tenants.len(), 2);
    }

    #[test]
    fn a_commit_larger_than_a_read_chunk_stays_whole() {
        let mut w = World::new();
        let big: Vec<Step> = (1..=4100).map(Step::Create).collect();
        let c1 = w.commit(&big);
        let c2 = w.commit(&[Step::Update(1), Step::Create(5000)]);
        assert!(matches!(w.page(0, 4099), Err(ChangesError::CommitTooLarge { objects: 4100 })));
        let whole = w.page(0, 4100).unwrap();
        assert_eq!((whole.created.len(), whole.new_state, whole.has_more), (4100, c1, true));
        let rest = w.page(c1, 4100).unwrap();
        assert_eq!((rest.created, rest.updated, rest.new_state), (ids(&[5000]), ids(&[1]), c2));
    }
}
