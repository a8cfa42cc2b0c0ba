//! UpdateAccount: any change to an existing account, turned into the fine-grained
//! events that say what changed (a new name is a rename, a changed alias address is
//! an alias rename, and so on). `None` fields are left as they are.

use std::collections::BTreeSet;

use ledger_events::model::{AccountKind, Change, CredentialKind, EncryptionAtRest, Permissions, Quotas, Roles};
use ledger_events::values::{EmailLocalPart, ExternalId, Locale, ObjectId, TimeZoneName, email_address};
use ledger_events::{
    AccountRenamed, AccountUpdated, AliasAdded, AliasRemoved, AliasRenamed, AliasUpdated, CredentialRemoved,
    CredentialUpdated, Event, GroupMembershipChanged, PermissionsChanged, QuotaLimitSet, RemovalReason, RolesChanged,
};
use ledger_projections::{AccountState, StateRead, state};

use super::account_spec::{
    AliasSpec, CredentialSpec, add_credentials, check_address_free, check_credential_counts, check_groups, check_roles,
    existing_account, resolve_aliases, tenant_domain,
};
use super::{DecideContext, Decision, IdAllocator, Rejection, check_description};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateAccount {
    pub id: ObjectId,
    pub name: Option<EmailLocalPart>,
    pub domain_id: Option<ObjectId>,
    pub description: Option<Option<String>>,
    pub locale: Option<Locale>,
    pub time_zone: Option<Option<TimeZoneName>>,
    pub member_tenant_id: Option<Option<ExternalId>>,
    pub encryption_at_rest: Option<Option<EncryptionAtRest>>,
    pub roles: Option<Roles>,
    pub permissions: Option<Permissions>,
    /// The whole new quota map.
    pub quotas: Option<Quotas>,
    /// The whole new alias list; entries are matched to the old list by position.
    pub aliases: Option<Vec<AliasSpec>>,
    /// The whole new credential list.
    pub credentials: Option<Vec<CredentialSpec>>,
    /// The whole new group list.
    pub member_group_ids: Option<Vec<ObjectId>>,
}

impl UpdateAccount {
    pub(crate) fn decide(&self, view: &impl StateRead, ctx: &DecideContext) -> Decision {
        let old = existing_account(view, self.id)?;
        self.check_tenant(view, &old)?;
        let mut events = Vec::new();
        self.rename(view, &old, &mut events)?;
        self.profile(&old, &mut events)?;
        if let Some(roles) = &self.roles {
            if !roles.fits(old.kind) {
                return Err(Rejection::invalid("roles", format!("roles {roles:?} do not apply to a {:?}", old.kind)));
            }
            if let Some(c) = Change::between(old.roles.clone(), roles.clone()) {
                check_roles(view, roles)?;
                events.push(Event::RolesChanged(RolesChanged { account_id: self.id, old: c.old, new: c.new }));
            }
        }
        if let Some(c) = Change::requested(&self.permissions, &old.permissions) {
            events.push(Event::PermissionsChanged(PermissionsChanged { account_id: self.id, old: c.old, new: c.new }));
        }
        let quotas = self.quotas.as_ref().unwrap_or(&old.quotas);
        if let Some(new) = &self.quotas {
            let kinds: BTreeSet<_> = old.quotas.keys().chain(new.keys()).copied().collect();
            for quota in kinds {
                let (before, after) = (old.quotas.get(&quota).copied(), new.get(&quota).copied());
                if before != after {
                    events.push(Event::QuotaLimitSet(QuotaLimitSet {
                        account_id: self.id,
                        quota,
                        old: before,
                        new: after,
                    }));
                }
            }
        }
        self.aliases(view, &old, &mut events)?;
        self.credentials(view, &old, quotas, ctx, &mut events)?;
        self.groups(view, &old, &mut events)?;
        Ok(events)
    }

    /// The tenant the account ends in.
    fn tenant<'a>(&'a self, old: &'a AccountState) -> Option<&'a ExternalId> {
        match &self.member_tenant_id {
            Some(new) => new.as_ref(),
            None => old.member_tenant_id.as_ref(),
        }
    }

    /// A move to another tenant takes the account's domain, aliases and groups
    /// with it: each must be the new tenant's. A group with members stays put.
    fn check_tenant(&self, view: &impl StateRead, old: &AccountState) -> Result<(), Rejection> {
        let tenant = self.tenant(old);
        if tenant == old.member_tenant_id.as_ref() {
            return Ok(());
        }
        super::check_tenant(view, "memberTenantId", tenant)?;
        if old.kind == AccountKind::Group && state::group_has_members(view, self.id)? {
            return Err(Rejection::StillReferenced {
                description: "a group with members cannot change tenant".to_owned(),
            });
        }
        if self.domain_id.is_none() && self.name.is_none() {
            tenant_domain(view, "domainId", old.domain_id, tenant)?;
        }
        if self.aliases.is_none() {
            for (i, alias) in old.aliases.iter().enumerate() {
                tenant_domain(view, &format!("aliases/{i}/domainId"), alias.domain_id, tenant)?;
            }
        }
        if self.member_group_ids.is_none() {
            check_groups(view, Some(self.id), tenant, &old.member_group_ids)?;
        }
        Ok(())
    }

    fn rename(&self, view: &impl StateRead, old: &AccountState, events: &mut Vec<Event>) -> Result<(), Rejection> {
        let new_name = self.name.clone().unwrap_or_else(|| old.name.clone());
        let new_domain_id = self.domain_id.unwrap_or(old.domain_id);
        if new_name == old.name && new_domain_id == old.domain_id {
            return Ok(());
        }
        let domain = tenant_domain(view, "domainId", new_domain_id, self.tenant(old))?;
        let new_address = email_address(&new_name, &domain.name);
        check_address_free(view, Some(self.id), &new_address, "name")?;
        let kept_aliases = self.aliases.is_none() && old.aliases.iter().any(|a| a.email_address == new_address);
        if kept_aliases {
            return Err(Rejection::invalid("name", format!("{new_address} is one of this account's aliases")));
        }
        events.push(Event::AccountRenamed(AccountRenamed {
            account_id: self.id,
            old_name: old.name.clone(),
            new_name,
            old_domain_id: old.domain_id,
            new_domain_id,
            old_email_address: old.email_address.clone(),
            new_email_address: new_address,
        }));
        Ok(())
    }

    fn profile(&self, old: &AccountState, events: &mut Vec<Event>) -> Result<(), Rejection> {
        if let Some(d) = &self.description {
            check_description("description", d)?;
        }
        if let Some(Some(_)) = &self.encryption_at_rest
            && old.kind == AccountKind::Group
        {
            return Err(Rejection::invalid("encryptionAtRest", "a Group has no encryptionAtRest"));
        }
        if old.kind == AccountKind::User && matches!(self.encryption_at_rest, Some(None)) {
            return Err(Rejection::invalid("encryptionAtRest", "encryptionAtRest is required for a User"));
        }
        let update = AccountUpdated {
            account_id: self.id,
            description: Change::requested(&self.description, &old.description),
            locale: Change::requested(&self.locale, &old.locale),
            time_zone: Change::requested(&self.time_zone, &old.time_zone),
            member_tenant_id: Change::requested(&self.member_tenant_id, &old.member_tenant_id),
            encryption_at_rest: Change::requested(&self.encryption_at_rest, &old.encryption_at_rest),
        };
        if !update.is_empty() {
            events.push(Event::AccountUpdated(update));
        }
        Ok(())
    }

    fn aliases(&self, view: &impl StateRead, old: &AccountState, events: &mut Vec<Event>) -> Result<(), Rejection> {
        let Some(new) = &self.aliases else {
            return Ok(());
        };
        let primary = match events.iter().find_map(|e| match e {
            Event::AccountRenamed(r) => Some(r.new_email_address.clone()),
            _ => None,
        }) {
            Some(renamed) => renamed,
            None => old.email_address.clone(),
        };
        let addresses = resolve_aliases(view, Some(self.id), self.tenant(old), &primary, new)?;
        for i in 0..old.aliases.len().max(new.len()) {
            let account_id = self.id;
            match (old.aliases.get(i), new.get(i).zip(addresses.get(i))) {
                (Some(before), Some((after, address))) => {
                    if before.email_address != *address {
                        events.push(Event::AliasRenamed(AliasRenamed {
                            account_id,
                            old_name: before.name.clone(),
                            old_domain_id: before.domain_id,
                            old_email_address: before.email_address.clone(),
                            new_name: after.name.clone(),
                            new_domain_id: after.domain_id,
                            new_email_address: address.clone(),
                        }));
                    }
                    let update = AliasUpdated {
                        account_id,
                        email_address: address.clone(),
                        enabled: Change::between(before.enabled, after.enabled),
                        description: Change::between(before.description.clone(), after.description.clone()),
                    };
                    if update.enabled.is_some() || update.description.is_some() {
                        events.push(Event::AliasUpdated(update));
                    }
                }
                (Some(before), None) => events.push(Event::AliasRemoved(AliasRemoved {
                    account_id,
                    name: before.name.clone(),
                    domain_id: before.domain_id,
                    email_address: before.email_address.clone(),
                })),
                (None, Some((after, address))) => events.push(Event::AliasAdded(AliasAdded {
                    account_id,
                    name: after.name.clone(),
                    domain_id: after.domain_id,
                    email_address: address.clone(),
                    enabled: after.enabled,
                    description: after.description.clone(),
                })),
                (None, None) => {}
            }
        }
        // Renames are applied in order, so one alias may not take an address another
        // alias gives up in the same update; reject instead of reordering silently.
        let mut held: BTreeSet<String> = old.aliases.iter().map(|a| a.email_address.clone()).collect();
        for e in events.iter() {
            match e {
                Event::AliasRenamed(r) => {
                    if !held.insert(r.new_email_address.clone()) {
                        return Err(Rejection::invalid(
                            "aliases",
                            format!("{} is still held by another alias of this account", r.new_email_address),
                        ));
                    }
                    held.remove(&r.old_email_address);
                }
                Event::AliasAdded(a) if !held.insert(a.email_address.clone()) => {
                    return Err(Rejection::invalid(
                        "aliases",
                        format!("{} is still held by another alias of this account", a.email_address),
                    ));
                }
                Event::AliasRemoved(a) => {
                    held.remove(&a.email_address);
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn credentials(
        &self,
        view: &impl StateRead,
        old: &AccountState,
        quotas: &Quotas,
        ctx: &DecideContext,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        let Some(specs) = &self.credentials else {
            if self.quotas.is_some() {
                check_credential_counts(&old.credentials.iter().map(|c| c.kind).collect::<Vec<_>>(), quotas)?;
            }
            return Ok(());
        };
        if old.kind == AccountKind::Group && !specs.is_empty() {
            return Err(Rejection::invalid("credentials", "a Group has no credentials"));
        }
        let mut kept = BTreeSet::new();
        let mut final_kinds = Vec::new();
        let mut added = Vec::new();
        let mut updates = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            match spec {
                CredentialSpec::Keep(change) => {
                    let Some(cur) = old.credentials.iter().find(|c| c.id == change.id) else {
                        return Err(Rejection::invalid(
                            &format!("credentials/{i}"),
                            format!("credential {} does not exist", change.id),
                        ));
                    };
                    if !kept.insert(change.id) {
                        return Err(Rejection::invalid(
                            &format!("credentials/{i}"),
                            format!("credential {} is listed twice", change.id),
                        ));
                    }
                    final_kinds.push(cur.kind);
                    if let Some(d) = &change.description {
                        check_description(&format!("credentials/{i}/description"), d)?;
                    }
                    let update = CredentialUpdated {
                        account_id: self.id,
                        credential_id: cur.id,
                        new_secret_hash: change.new_secret_hash.clone(),
                        description: Change::requested(&change.description, &cur.description),
                        expires_at: Change::requested(&change.expires_at, &cur.expires_at),
                        allowed_ips: Change::requested(&change.allowed_ips, &cur.allowed_ips),
                        permissions: Change::requested(&change.permissions, &cur.permissions),
                        otp_enabled: Change::requested(&change.otp_enabled, &cur.otp_enabled),
                        new_otp_auth_sealed: change.new_otp_auth_sealed.clone(),
                    };
                    if cur.kind != CredentialKind::Password
                        && (update.otp_enabled.is_some()
                            || update.new_secret_hash.is_some()
                            || update.new_otp_auth_sealed.is_some())
                    {
                        return Err(Rejection::invalid(
                            &format!("credentials/{i}/secret"),
                            "the secret of an AppPassword or ApiKey is set by the server",
                        ));
                    }
                    let changed = update.new_secret_hash.is_some()
                        || update.description.is_some()
                        || update.expires_at.is_some()
                        || update.allowed_ips.is_some()
                        || update.permissions.is_some()
                        || update.otp_enabled.is_some()
                        || update.new_otp_auth_sealed.is_some();
                    if changed {
                        updates.push(Event::CredentialUpdated(update));
                    }
                }
                CredentialSpec::Add(new) => {
                    final_kinds.push(new.kind);
                    added.push((i, new));
                }
            }
        }
        check_credential_counts(&final_kinds, quotas)?;
        let password_added = added.iter().any(|(_, c)| c.kind == CredentialKind::Password);
        for c in old.credentials.iter().filter(|c| !kept.contains(&c.id)) {
            let reason = if password_added && c.kind == CredentialKind::Password {
                RemovalReason::Replaced
            } else {
                RemovalReason::Removed
            };
            events.push(Event::CredentialRemoved(CredentialRemoved {
                account_id: self.id,
                credential_id: c.id,
                kind: c.kind,
                reason,
            }));
        }
        events.extend(updates);
        let mut ids = IdAllocator::new(view)?;
        add_credentials(events, &mut ids, self.id, &added, ctx.now)
    }

    fn groups(&self, view: &impl StateRead, old: &AccountState, events: &mut Vec<Event>) -> Result<(), Rejection> {
        let Some(new) = &self.member_group_ids else {
            return Ok(());
        };
        if old.kind == AccountKind::Group && !new.is_empty() {
            return Err(Rejection::invalid("memberGroupIds", "a Group cannot be a member of a group"));
        }
        check_groups(view, Some(self.id), self.tenant(old), new)?;
        let before: BTreeSet<_> = old.member_group_ids.iter().copied().collect();
        let after: BTreeSet<_> = new.iter().copied().collect();
        let joined: Vec<_> = after.difference(&before).copied().collect();
        let left: Vec<_> = before.difference(&after).copied().collect();
        if !joined.is_empty() || !left.is_empty() {
            events.push(Event::GroupMembershipChanged(GroupMembershipChanged { account_id: self.id, joined, left }));
        }
        Ok(())
    }
}
