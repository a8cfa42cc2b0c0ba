//! UpdateDomain: change a domain's description or tenant (its name is fixed,
//! since every address under it is derived from it). A domain in use keeps its
//! tenant: accounts and their domains are always in the same tenant.

use ledger_events::model::Change;
use ledger_events::values::{ExternalId, ObjectId};
use ledger_events::{DomainUpdated, Event};
use ledger_projections::{StateRead, state};

use super::{Decision, Rejection, check_description};

#[derive(Debug, Clone, PartialEq)]
pub struct UpdateDomain {
    pub id: ObjectId,
    pub description: Option<Option<String>>,
    pub member_tenant_id: Option<Option<ExternalId>>,
    pub settings: Option<ledger_events::model::DomainSettings>,
}

impl UpdateDomain {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        let domain = state::domain(view, self.id)?.ok_or(Rejection::NotFound { what: "domain", id: self.id })?;
        if let Some(d) = &self.description {
            check_description("description", d)?;
        }
        let update = DomainUpdated {
            domain_id: self.id,
            description: Change::requested(&self.description, &domain.description),
            member_tenant_id: Change::requested(&self.member_tenant_id, &domain.member_tenant_id),
            settings: Change::requested(&self.settings, &domain.settings).map(Box::new),
        };
        if let Some(change) = &update.settings {
            super::create_domain::check_settings(view, &domain.name, &change.new, Some(self.id))?;
        }
        if let Some(change) = &update.member_tenant_id {
            super::check_tenant(view, "memberTenantId", change.new.as_ref())?;
        }
        if update.member_tenant_id.is_some() && state::domain_in_use(view, self.id)? {
            return Err(Rejection::StillReferenced {
                description: "a domain accounts or aliases use cannot change tenant".to_owned(),
            });
        }
        let changed = update.description.is_some() || update.member_tenant_id.is_some() || update.settings.is_some();
        Ok(if changed { vec![Event::DomainUpdated(update)] } else { vec![] })
    }
}
