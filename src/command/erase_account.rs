//! EraseAccount: the personal data of a destroyed account goes; the facts that it
//! existed, changed and was erased stay. Lists every record that touched it.

use std::collections::BTreeMap;

use ledger_events::values::ObjectId;
use ledger_events::{AccountErased, ErasedRecord, Event, ObjectType};
use ledger_projections::{ChangeKind, StateRead, state};
use uuid::Uuid;

use super::{Decision, Rejection};

#[derive(Debug, Clone, PartialEq)]
pub struct EraseAccount {
    pub id: ObjectId,
    /// The change and commit id of each position of the account's history
    /// whose change tracking purge has trimmed, as the record headers in the
    /// log give them (decide reads no log: the caller does, see
    /// `maintenance::erase`).
    pub trimmed: BTreeMap<u64, (ChangeKind, Uuid)>,
}

impl EraseAccount {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        if state::account(view, self.id)?.is_some() {
            return Err(Rejection::StillReferenced { description: "destroy the account before erasing it".into() });
        }
        let positions = state::history_positions(view, self.id)?;
        if positions.is_empty() {
            return Err(Rejection::NotFound { what: "account", id: self.id });
        }
        let mut erased = Vec::with_capacity(positions.len());
        for position in positions {
            let (kind, commit) = match state::change_at(view, ObjectType::Account, position)? {
                Some(change) => (change.kind, change.commit),
                None => *self.trimmed.get(&position).ok_or_else(|| {
                    Rejection::Internal(format!("no change entry at position {position}, and no header given"))
                })?,
            };
            erased.push(ErasedRecord { position, change: kind.name().into(), commit_id: commit.to_string() });
        }
        let max_allocated_id = ObjectId(state::next_object_id(view)?.saturating_sub(1));
        Ok(vec![Event::AccountErased(AccountErased { account_id: self.id, erased, max_allocated_id })])
    }
}
