//! CreateAccount: a User or Group with its aliases, credentials and group memberships.

use ledger_events::model::{AccountKind, EncryptionAtRest, Permissions, Quotas, Roles, TenantQuotaKind};
use ledger_events::values::{EmailLocalPart, ExternalId, Locale, ObjectId, TimeZoneName, email_address};
use ledger_events::{AccountCreated, AliasAdded, Event, GroupMembershipChanged};
use ledger_projections::StateRead;

use super::account_spec::{
    AliasSpec, NewCredential, add_credentials, check_address_free, check_credential_counts, check_groups, check_roles,
    resolve_aliases, tenant_domain,
};
use super::{DecideContext, Decision, IdAllocator, Rejection, check_description};

#[derive(Debug, Clone, PartialEq)]
pub struct CreateAccount {
    pub kind: AccountKind,
    pub name: EmailLocalPart,
    pub domain_id: ObjectId,
    pub description: Option<String>,
    pub locale: Locale,
    pub time_zone: Option<TimeZoneName>,
    pub member_tenant_id: Option<ExternalId>,
    pub roles: Roles,
    pub permissions: Permissions,
    pub quotas: Quotas,
    /// Users only; `None` for groups.
    pub encryption_at_rest: Option<EncryptionAtRest>,
    pub aliases: Vec<AliasSpec>,
    /// Users only.
    pub credentials: Vec<NewCredential>,
    /// Users only.
    pub member_group_ids: Vec<ObjectId>,
}

impl CreateAccount {
    /// A User with the reference page's defaults (role User, permissions Inherit,
    /// locale en_US, encryption at rest disabled, nothing else).
    pub fn user(name: EmailLocalPart, domain_id: ObjectId) -> Self {
        CreateAccount {
            kind: AccountKind::User,
            name,
            domain_id,
            description: None,
            locale: Locale::default(),
            time_zone: None,
            member_tenant_id: None,
            roles: Roles::User,
            permissions: Permissions::Inherit,
            quotas: Quotas::new(),
            encryption_at_rest: Some(EncryptionAtRest::Disabled),
            aliases: vec![],
            credentials: vec![],
            member_group_ids: vec![],
        }
    }

    /// A Group with the defaults (role Default, permissions Inherit).
    pub fn group(name: EmailLocalPart, domain_id: ObjectId) -> Self {
        CreateAccount {
            kind: AccountKind::Group,
            roles: Roles::Default,
            encryption_at_rest: None,
            ..Self::user(name, domain_id)
        }
    }

    pub(crate) fn decide(&self, view: &impl StateRead, ctx: &DecideContext) -> Decision {
        check_description("description", &self.description)?;
        if !self.roles.fits(self.kind) {
            return Err(Rejection::invalid(
                "roles",
                format!("roles {:?} do not apply to a {:?}", self.roles, self.kind),
            ));
        }
        if self.kind == AccountKind::Group {
            for (property, present) in [
                ("encryptionAtRest", self.encryption_at_rest.is_some()),
                ("credentials", !self.credentials.is_empty()),
                ("memberGroupIds", !self.member_group_ids.is_empty()),
            ] {
                if present {
                    return Err(Rejection::invalid(property, format!("a Group has no {property}")));
                }
            }
        } else if self.encryption_at_rest.is_none() {
            return Err(Rejection::invalid("encryptionAtRest", "encryptionAtRest is required for a User"));
        }
        check_roles(view, &self.roles)?;
        let tenant = self.member_tenant_id.as_ref();
        super::check_tenant(view, "memberTenantId", tenant)?;
        let room =
            if self.kind == AccountKind::Group { TenantQuotaKind::MaxGroups } else { TenantQuotaKind::MaxAccounts };
        super::tenant::check_room(view, tenant, room)?;
        let domain = tenant_domain(view, "domainId", self.domain_id, tenant)?;
        let address = email_address(&self.name, &domain.name);
        check_address_free(view, None, &address, "name")?;
        let alias_addresses = resolve_aliases(view, None, tenant, &address, &self.aliases)?;
        check_groups(view, None, tenant, &self.member_group_ids)?;
        check_credential_counts(&self.credentials.iter().map(|c| c.kind).collect::<Vec<_>>(), &self.quotas)?;

        let mut ids = IdAllocator::new(view)?;
        let account_id = ids.allocate();
        let mut events = vec![Event::AccountCreated(AccountCreated {
            account_id,
            kind: self.kind,
            name: self.name.clone(),
            domain_id: self.domain_id,
            email_address: address,
            description: self.description.clone(),
            locale: self.locale.clone(),
            time_zone: self.time_zone.clone(),
            member_tenant_id: self.member_tenant_id.clone(),
            roles: self.roles.clone(),
            permissions: self.permissions.clone(),
            quotas: self.quotas.clone(),
            encryption_at_rest: self.encryption_at_rest.clone(),
            created_at: ctx.now,
        })];
        for (alias, address) in self.aliases.iter().zip(alias_addresses) {
            events.push(Event::AliasAdded(AliasAdded {
                account_id,
                name: alias.name.clone(),
                domain_id: alias.domain_id,
                email_address: address,
                enabled: alias.enabled,
                description: alias.description.clone(),
            }));
        }
        let new: Vec<_> = self.credentials.iter().enumerate().collect();
        add_credentials(&mut events, &mut ids, account_id, &new, ctx.now)?;
        if !self.member_group_ids.is_empty() {
            let mut joined = self.member_group_ids.clone();
            joined.sort();
            joined.dedup();
            events.push(Event::GroupMembershipChanged(GroupMembershipChanged { account_id, joined, left: vec![] }));
        }
        Ok(events)
    }
}
