//! UpdateDomain: change a domain's description (its name is fixed, since every
//! address under it is derived from it).

use ledger_events::model::Change;
use ledger_events::values::ObjectId;
use ledger_events::{DomainUpdated, Event};
use ledger_projections::{StateRead, state};

use super::{Decision, Rejection, check_description};

#[derive(Debug, Clone, PartialEq)]
pub struct UpdateDomain {
    pub id: ObjectId,
    pub description: Option<Option<String>>,
}

impl UpdateDomain {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        let domain = state::domain(view, self.id)?.ok_or(Rejection::NotFound { what: "domain", id: self.id })?;
        let Some(description) = &self.description else {
            return Ok(vec![]);
        };
        check_description("description", description)?;
        let change = Change::between(domain.description, description.clone());
        Ok(change
            .map(|c| Event::DomainUpdated(DomainUpdated { domain_id: self.id, description: Some(c) }))
            .into_iter()
            .collect())
    }
}
