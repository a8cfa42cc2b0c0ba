//! DestroyDomain: remove a domain no account or alias uses any more.

use ledger_events::values::ObjectId;
use ledger_events::{DomainDestroyed, Event, ObjectType};
use ledger_projections::{StateRead, state};

use super::{Decision, LINKED_SHOWN, Rejection};

#[derive(Debug, Clone, PartialEq)]
pub struct DestroyDomain {
    pub id: ObjectId,
}

impl DestroyDomain {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        let domain = state::domain(view, self.id)?.ok_or(Rejection::NotFound { what: "domain", id: self.id })?;
        let users = state::domain_users(view, self.id, LINKED_SHOWN)?;
        if !users.is_empty() {
            return Err(Rejection::Linked {
                linked: users.into_iter().map(|id| (ObjectType::Account, id)).collect(),
                description: format!("domain {} still has accounts or aliases", domain.name),
            });
        }
        Ok(vec![Event::DomainDestroyed(DomainDestroyed { domain_id: self.id, name: domain.name })])
    }
}
