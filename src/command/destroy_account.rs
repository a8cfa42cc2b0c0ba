//! DestroyAccount: remove an account; a group's members leave it first, so the
//! log says who lost the membership.

use ledger_events::model::AccountKind;
use ledger_events::values::ObjectId;
use ledger_events::{AccountDestroyed, Event, GroupMembershipChanged};
use ledger_projections::{StateRead, state};

use super::Decision;
use super::account_spec::existing_account;

#[derive(Debug, Clone, PartialEq)]
pub struct DestroyAccount {
    pub id: ObjectId,
}

impl DestroyAccount {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        let account = existing_account(view, self.id)?;
        let mut events = Vec::new();
        if account.kind == AccountKind::Group {
            for member in state::group_members(view, self.id)? {
                events.push(Event::GroupMembershipChanged(GroupMembershipChanged {
                    account_id: member,
                    joined: vec![],
                    left: vec![self.id],
                }));
            }
        }
        events.push(Event::AccountDestroyed(AccountDestroyed {
            account_id: self.id,
            kind: account.kind,
            email_address: account.email_address,
        }));
        Ok(events)
    }
}
