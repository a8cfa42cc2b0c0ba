//! DestroyDomain: remove a domain no account or alias uses any more.

use ledger_events::values::ObjectId;
use ledger_events::{DomainDestroyed, Event};
use ledger_projections::{StateRead, state};

use super::{Decision, Rejection};

#[derive(Debug, Clone, PartialEq)]
pub struct DestroyDomain {
    pub id: ObjectId,
}

impl DestroyDomain {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        let domain = state::domain(view, self.id)?.ok_or(Rejection::NotFound { what: "domain", id: self.id })?;
        if state::domain_in_use(view, self.id)? {
            return Err(Rejection::StillReferenced {
                description: format!("domain {} still has accounts or aliases", domain.name),
            });
        }
        Ok(vec![Event::DomainDestroyed(DomainDestroyed { domain_id: self.id, name: domain.name })])
    }
}
