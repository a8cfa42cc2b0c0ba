//! CreateDomain: a new mail domain with a unique name.

use ledger_events::values::{DomainName, ExternalId, ObjectId};
use ledger_events::{DomainCreated, Event, ObjectType};
use ledger_projections::{StateRead, state};

use super::{DecideContext, Decision, IdAllocator, Rejection, check_description};

#[derive(Debug, Clone, PartialEq)]
pub struct CreateDomain {
    pub name: DomainName,
    pub description: Option<String>,
    /// The tenant whose accounts may use it; `None`: accounts without a tenant.
    pub member_tenant_id: Option<ExternalId>,
}

impl CreateDomain {
    pub(crate) fn decide(&self, view: &impl StateRead, ctx: &DecideContext) -> Decision {
        check_description("description", &self.description)?;
        super::check_tenant(view, "memberTenantId", self.member_tenant_id.as_ref())?;
        super::tenant::check_room(
            view,
            self.member_tenant_id.as_ref(),
            ledger_events::model::TenantQuotaKind::MaxDomains,
        )?;
        if let Some(existing) = state::domain_by_name(view, &self.name)? {
            return Err(Rejection::AlreadyExists {
                existing: ObjectType::Domain,
                existing_id: existing,
                property: "name".into(),
                description: format!("domain {} already exists", self.name),
            });
        }
        let domain_id: ObjectId = IdAllocator::new(view)?.allocate();
        Ok(vec![Event::DomainCreated(DomainCreated {
            domain_id,
            name: self.name.clone(),
            description: self.description.clone(),
            created_at: ctx.now,
            member_tenant_id: self.member_tenant_id.clone(),
        })])
    }
}
