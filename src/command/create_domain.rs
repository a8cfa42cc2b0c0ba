//! CreateDomain: a new mail domain with a unique name (and alias names no
//! other domain has), and Stalwart's other domain fields, checked.

use ledger_events::model::DomainSettings;
use ledger_events::values::{DomainName, ExternalId, ObjectId};
use ledger_events::{DomainCreated, Event, ObjectType};
use ledger_projections::{StateRead, state};

use super::{DecideContext, Decision, IdAllocator, Rejection, Validation, check_description};

#[derive(Debug, Clone, PartialEq)]
pub struct CreateDomain {
    pub name: DomainName,
    pub description: Option<String>,
    /// The tenant whose accounts may use it; `None`: accounts without a tenant.
    pub member_tenant_id: Option<ExternalId>,
    pub settings: DomainSettings,
}

/// Longest logo, report URI or catch-all address a domain takes.
const MAX_LOGO: usize = 65_536;
const MAX_TEXT: usize = 1024;

/// Checks domain `this` (named `name`) with `settings`: its name and alias
/// names are no other domain's name or alias (`primaryKeyViolation`), the
/// catch-all is an address, texts are bounded.
pub(crate) fn check_settings(
    view: &impl StateRead,
    name: &DomainName,
    settings: &DomainSettings,
    this: Option<ObjectId>,
) -> Result<(), Rejection> {
    let taken = |wanted: &DomainName, property: &str| -> Result<(), Rejection> {
        for d in state::domains(view)?.into_iter().filter(|d| Some(d.id) != this) {
            if d.name == *wanted || d.settings.aliases.contains(wanted) {
                return Err(Rejection::AlreadyExists {
                    existing: ObjectType::Domain,
                    existing_id: d.id,
                    property: property.to_owned(),
                    description: format!("domain {wanted} is already in use"),
                });
            }
        }
        Ok(())
    };
    taken(name, "name")?;
    for (i, alias) in settings.aliases.iter().enumerate() {
        if alias == name {
            return Err(Rejection::validation("aliases", Validation::Invalid, "a domain is not an alias of itself"));
        }
        taken(alias, &format!("aliases/{i}"))?;
    }
    if let Some(address) = &settings.catch_all_address {
        let valid = address.split_once('@').is_some_and(|(local, domain)| {
            local.parse::<ledger_events::values::EmailLocalPart>().is_ok() && domain.parse::<DomainName>().is_ok()
        });
        if !valid {
            return Err(Rejection::validation(
                "catchAllAddress",
                Validation::Invalid,
                "catchAllAddress is not an email address",
            ));
        }
    }
    for (property, text, max) in
        [("reportAddressUri", &settings.report_address_uri, MAX_TEXT), ("logo", &settings.logo, MAX_LOGO)]
    {
        if text.as_ref().is_some_and(|t| t.len() > max) {
            return Err(Rejection::validation(property, Validation::MaxLength(max), format!("{property} is too long")));
        }
    }
    Ok(())
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
        check_settings(view, &self.name, &self.settings, None)?;
        let domain_id: ObjectId = IdAllocator::new(view)?.allocate();
        Ok(vec![Event::DomainCreated(DomainCreated {
            domain_id,
            name: self.name.clone(),
            description: self.description.clone(),
            created_at: ctx.now,
            member_tenant_id: self.member_tenant_id.clone(),
            settings: Some(Box::new(self.settings.clone())),
        })])
    }
}
