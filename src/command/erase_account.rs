//! EraseAccount: the personal data of a destroyed account goes; the facts that it
//! existed, changed and was erased stay. Lists every record that touched it.

use ledger_events::values::ObjectId;
use ledger_events::{AccountErased, ErasedRecord, Event, ObjectType};
use ledger_projections::{StateRead, state};

use super::{Decision, Rejection};

#[derive(Debug, Clone, PartialEq)]
pub struct EraseAccount {
    pub id: ObjectId,
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
            let Some(change) = state::change_at(view, ObjectType::Account, position)? else {
                return Err(Rejection::Internal(format!("no change entry at position {position}")));
            };
            erased.push(ErasedRecord {
                position,
                change: change.kind.name().into(),
                commit_id: change.commit.to_string(),
            });
        }
        let max_allocated_id = ObjectId(state::next_object_id(view)?.saturating_sub(1));
        Ok(vec![Event::AccountErased(AccountErased { account_id: self.id, erased, max_allocated_id })])
    }
}
