//! CreateTenant, UpdateTenant, DestroyTenant: Stalwart's `x:Tenant`. Accounts,
//! domains and roles name a tenant by its id in `memberTenantId`, which must
//! name one that exists; a tenant with members cannot go. A tenant's
//! `permissions` can only take away from its members (what it disables is
//! disabled for them; what it enables grants nothing by itself), so a tenant
//! change never widens anyone's rights.

use ledger_events::model::{AccountKind, Change, Permissions, Roles, TenantQuotaKind, TenantQuotas};
use ledger_events::values::ObjectId;
use ledger_events::{Event, ObjectType, TenantCreated, TenantDestroyed, TenantUpdated};
use ledger_projections::{StateRead, state};

use super::account_spec::check_roles;
use super::{DecideContext, Decision, IdAllocator, LINKED_SHOWN, Rejection, Validation};

/// Longest tenant name.
const MAX_NAME: usize = 128;
/// Longest logo (a URL or a `data:` URI).
pub(crate) const MAX_LOGO: usize = 65_536;

/// A tenant's fields, as a create gives them or an update leaves them.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantFields {
    pub name: String,
    pub logo: Option<String>,
    pub roles: Roles,
    pub permissions: Permissions,
    pub quotas: TenantQuotas,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateTenant {
    pub fields: TenantFields,
}

/// The whole tenant after a patch.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateTenant {
    pub id: ObjectId,
    pub fields: TenantFields,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DestroyTenant {
    pub id: ObjectId,
}

fn check(view: &impl StateRead, f: &TenantFields, this: Option<ObjectId>) -> Result<(), Rejection> {
    let length = f.name.trim().chars().count();
    if length == 0 {
        return Err(Rejection::validation("name", Validation::Required, "a tenant needs a name"));
    }
    if f.name.chars().count() > MAX_NAME {
        return Err(Rejection::validation(
            "name",
            Validation::MaxLength(MAX_NAME),
            "a tenant name is 1 to 128 characters",
        ));
    }
    if f.logo.as_ref().is_some_and(|l| l.len() > MAX_LOGO) {
        return Err(Rejection::validation("logo", Validation::MaxLength(MAX_LOGO), "logo is longer than 64 KiB"));
    }
    if !matches!(f.roles, Roles::Default | Roles::Custom { .. }) {
        return Err(Rejection::invalid("roles", "a tenant's roles are Default or Custom"));
    }
    check_roles(view, &f.roles)?;
    let clash = state::tenants(view)?
        .into_iter()
        .find(|t| Some(t.id) != this && t.name.to_lowercase() == f.name.to_lowercase());
    if let Some(t) = clash {
        return Err(Rejection::AlreadyExists {
            existing: ObjectType::Tenant,
            existing_id: t.id,
            property: "name".into(),
            description: format!("tenant {:?} already exists", f.name),
        });
    }
    Ok(())
}

impl CreateTenant {
    pub(crate) fn decide(&self, view: &impl StateRead, ctx: &DecideContext) -> Decision {
        let f = &self.fields;
        check(view, f, None)?;
        Ok(vec![Event::TenantCreated(TenantCreated {
            tenant_id: IdAllocator::new(view)?.allocate(),
            name: f.name.clone(),
            logo: f.logo.clone(),
            roles: f.roles.clone(),
            permissions: f.permissions.clone(),
            quotas: f.quotas.clone(),
            created_at: ctx.now,
        })])
    }
}

impl UpdateTenant {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        let old = state::tenant(view, self.id)?.ok_or(Rejection::NotFound { what: "tenant", id: self.id })?;
        let f = &self.fields;
        check(view, f, Some(self.id))?;
        let update = TenantUpdated {
            tenant_id: self.id,
            name: Change::requested(&Some(f.name.clone()), &old.name),
            logo: Change::requested(&Some(f.logo.clone()), &old.logo),
            roles: Change::requested(&Some(f.roles.clone()), &old.roles),
            permissions: Change::requested(&Some(f.permissions.clone()), &old.permissions),
            quotas: Change::requested(&Some(f.quotas.clone()), &old.quotas),
        };
        let changed = update.name.is_some()
            || update.logo.is_some()
            || update.roles.is_some()
            || update.permissions.is_some()
            || update.quotas.is_some();
        Ok(if changed { vec![Event::TenantUpdated(update)] } else { vec![] })
    }
}

impl DestroyTenant {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        let old = state::tenant(view, self.id)?.ok_or(Rejection::NotFound { what: "tenant", id: self.id })?;
        let own = self.id.to_jmap();
        let mut linked: Vec<(ObjectType, ObjectId)> =
            state::tenant_accounts(view, &own, LINKED_SHOWN)?.into_iter().map(|id| (ObjectType::Account, id)).collect();
        let of_tenant = |t: Option<&ledger_events::values::ExternalId>| t.is_some_and(|t| t.as_str() == own);
        linked.extend(
            state::domains(view)?
                .into_iter()
                .filter(|d| of_tenant(d.member_tenant_id.as_ref()))
                .map(|d| (ObjectType::Domain, d.id)),
        );
        linked.extend(
            state::roles(view)?
                .into_iter()
                .filter(|r| of_tenant(r.member_tenant_id.as_ref()))
                .map(|r| (ObjectType::Role, r.id)),
        );
        if !linked.is_empty() {
            linked.truncate(LINKED_SHOWN);
            return Err(Rejection::Linked {
                linked,
                description: format!("tenant {:?} still has accounts, domains or roles", old.name),
            });
        }
        Ok(vec![Event::TenantDestroyed(TenantDestroyed { tenant_id: self.id, name: old.name })])
    }
}

/// Refuses (`overQuota`) a new account, group or domain of `tenant` past the
/// tenant's `maxAccounts`, `maxGroups` or `maxDomains`. Counting reads the
/// tenant's objects of that kind, so it runs only where a limit is set.
pub(crate) fn check_room(
    view: &impl StateRead,
    tenant: Option<&ledger_events::values::ExternalId>,
    kind: TenantQuotaKind,
) -> Result<(), Rejection> {
    let Some(tenant) = tenant else { return Ok(()) };
    let Some(t) = ObjectId::from_jmap(tenant.as_str()).map(|id| state::tenant(view, id)).transpose()?.flatten() else {
        return Ok(());
    };
    let Some(&limit) = t.quotas.get(&kind) else { return Ok(()) };
    let used = match kind {
        TenantQuotaKind::MaxDomains => {
            state::domains(view)?.iter().filter(|d| d.member_tenant_id.as_ref() == Some(tenant)).count() as u64
        }
        _ => {
            let wanted = if kind == TenantQuotaKind::MaxGroups { AccountKind::Group } else { AccountKind::User };
            let mut n = 0u64;
            for id in state::tenant_accounts(view, tenant.as_str(), usize::MAX)? {
                if state::account(view, id)?.is_some_and(|a| a.kind == wanted) {
                    n += 1;
                }
            }
            n
        }
    };
    if used >= limit {
        return Err(Rejection::OverQuota {
            description: format!("tenant {:?} holds its {kind} = {limit}", t.name, kind = kind.as_str()),
        });
    }
    Ok(())
}
