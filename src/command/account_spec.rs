//! Parts of an account shared by create and update: aliases, credentials, groups,
//! and the checks on them.

use std::collections::BTreeSet;

use ledger_events::model::{AccountKind, AllowedIps, CredentialKind, CredentialPermissions, QuotaKind, Quotas, Roles};
use ledger_events::values::{EmailLocalPart, ExternalId, ObjectId, SecretHash, UtcDateTime, email_address};
use ledger_events::{CredentialAdded, Event, ObjectType};
use ledger_projections::{AccountState, DomainState, StateRead, state};

use super::{IdAllocator, Rejection, check_description};

/// An alias as the client wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasSpec {
    pub name: EmailLocalPart,
    pub domain_id: ObjectId,
    pub enabled: bool,
    pub description: Option<String>,
}

/// A credential to add. The secret is already hashed by the service.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCredential {
    pub kind: CredentialKind,
    pub description: Option<String>,
    pub secret_hash: SecretHash,
    pub expires_at: Option<UtcDateTime>,
    pub allowed_ips: AllowedIps,
    pub permissions: Option<CredentialPermissions>,
    pub otp_enabled: bool,
    /// The `otpAuth` URI, sealed by the service.
    pub otp_auth_sealed: Option<String>,
}

/// Changes to a credential that stays; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CredentialChange {
    pub id: ObjectId,
    pub new_secret_hash: Option<SecretHash>,
    pub description: Option<Option<String>>,
    pub expires_at: Option<Option<UtcDateTime>>,
    pub allowed_ips: Option<AllowedIps>,
    pub permissions: Option<Option<CredentialPermissions>>,
    pub otp_enabled: Option<bool>,
    pub new_otp_auth_sealed: Option<String>,
}

/// One entry of the credential list of an update: keep (and maybe change) an
/// existing credential, or add a new one. Existing ones not listed are removed.
#[derive(Debug, Clone, PartialEq)]
pub enum CredentialSpec {
    Keep(CredentialChange),
    Add(NewCredential),
}

/// Resolves aliases to addresses, checking domains exist and addresses are free
/// (or already this account's). Returns the addresses in order.
pub(crate) fn resolve_aliases(
    view: &impl StateRead,
    owner: Option<ObjectId>,
    tenant: Option<&ExternalId>,
    primary_address: &str,
    aliases: &[AliasSpec],
) -> Result<Vec<String>, Rejection> {
    let mut seen = BTreeSet::from([primary_address.to_owned()]);
    let mut out = Vec::with_capacity(aliases.len());
    for (i, alias) in aliases.iter().enumerate() {
        let property = format!("aliases/{i}");
        check_description(&format!("{property}/description"), &alias.description)?;
        let domain = tenant_domain(view, &format!("{property}/domainId"), alias.domain_id, tenant)?;
        let address = email_address(&alias.name, &domain.name);
        if !seen.insert(address.clone()) {
            return Err(Rejection::invalid(&property, format!("{address} is listed twice")));
        }
        check_address_free(view, owner, &address, &property)?;
        out.push(address);
    }
    Ok(out)
}

/// The domain `id` if an account of `tenant` may use it: a domain of that
/// tenant or a shared one (no tenant). A domain of another tenant is refused
/// exactly like a missing one, so a tenant learns nothing of others'. (A
/// tenant principal itself uses only its tenant's domains: see
/// [`super::authority`].)
pub(crate) fn tenant_domain(
    view: &impl StateRead,
    property: &str,
    id: ObjectId,
    tenant: Option<&ExternalId>,
) -> Result<DomainState, Rejection> {
    match state::domain(view, id)? {
        Some(d) if shared_or_of(d.member_tenant_id.as_ref(), tenant) => Ok(d),
        _ => Err(no_such_domain(property, id)),
    }
}

/// Whether an account of `tenant` may use a domain or group of `owner`: a
/// shared one (no tenant) or its own tenant's.
fn shared_or_of(owner: Option<&ExternalId>, tenant: Option<&ExternalId>) -> bool {
    owner.is_none() || owner == tenant
}

/// The one answer for a domain an account may not use, whatever the reason.
pub(crate) fn no_such_domain(property: &str, id: ObjectId) -> Rejection {
    Rejection::foreign_key(
        property,
        ObjectType::Domain,
        id.to_jmap(),
        format!("domain {id} does not exist in the account's tenant"),
    )
}

/// The one answer for a group an account may not join, whatever the reason.
pub(crate) fn no_such_group(property: &str, id: ObjectId) -> Rejection {
    Rejection::foreign_key(
        property,
        ObjectType::Account,
        id.to_jmap(),
        format!("{id} is not a group of the account's tenant"),
    )
}

/// An address is free when nobody holds it, or `owner` does. The holder is
/// not named: addresses are unique across tenants, but which account holds one
/// is only for those who may see it (the JMAP layer adds `existingId` then).
pub(crate) fn check_address_free(
    view: &impl StateRead,
    owner: Option<ObjectId>,
    address: &str,
    property: &str,
) -> Result<(), Rejection> {
    match state::address_owner(view, address)? {
        Some((holder, _)) if Some(holder) != owner => Err(Rejection::AlreadyExists {
            existing: ObjectType::Account,
            existing_id: holder,
            property: property.to_owned(),
            description: format!("{address} is already in use"),
        }),
        _ => Ok(()),
    }
}

/// Checks every id names an existing Group of `tenant` (the member's), or a
/// shared one, other than `member`. A missing id, a User and another tenant's
/// group get the same answer, so a tenant learns nothing of others' accounts.
pub(crate) fn check_groups(
    view: &impl StateRead,
    member: Option<ObjectId>,
    tenant: Option<&ExternalId>,
    groups: &[ObjectId],
) -> Result<(), Rejection> {
    for (i, group) in groups.iter().enumerate() {
        let property = format!("memberGroupIds/{i}");
        if Some(*group) == member {
            return Err(Rejection::invalid(&property, "an account cannot be a member of itself"));
        }
        match state::account(view, *group)? {
            Some(a) if a.kind == AccountKind::Group && shared_or_of(a.member_tenant_id.as_ref(), tenant) => {}
            _ => return Err(no_such_group(&property, *group)),
        }
    }
    Ok(())
}

/// Checks a new credential's fields fit its type.
pub(crate) fn check_new_credential(property: &str, c: &NewCredential) -> Result<(), Rejection> {
    check_description(&format!("{property}/description"), &c.description)?;
    match c.kind {
        CredentialKind::Password => {
            if c.permissions.is_some() {
                return Err(Rejection::invalid(&format!("{property}/permissions"), "a Password has no permissions"));
            }
            if c.description.is_some() {
                return Err(Rejection::invalid(&format!("{property}/description"), "a Password has no description"));
            }
        }
        CredentialKind::AppPassword | CredentialKind::ApiKey => {
            if c.description.is_none() {
                return Err(Rejection::invalid(&format!("{property}/description"), "description is required"));
            }
            if c.permissions.is_none() {
                return Err(Rejection::invalid(&format!("{property}/permissions"), "permissions is required"));
            }
            if c.otp_enabled {
                return Err(Rejection::invalid(&format!("{property}/otpAuth"), "only a Password has otpAuth"));
            }
        }
    }
    Ok(())
}

pub(crate) fn credential_added(account_id: ObjectId, id: ObjectId, c: &NewCredential, now: UtcDateTime) -> Event {
    Event::CredentialAdded(CredentialAdded {
        account_id,
        credential_id: id,
        kind: c.kind,
        description: c.description.clone(),
        secret_hash: c.secret_hash.clone(),
        expires_at: c.expires_at,
        allowed_ips: c.allowed_ips.clone(),
        permissions: c.permissions.clone(),
        otp_enabled: c.otp_enabled,
        created_at: now,
        otp_auth_sealed: c.otp_auth_sealed.clone(),
    })
}

/// Adds credentials, allocating their ids.
pub(crate) fn add_credentials(
    events: &mut Vec<Event>,
    ids: &mut IdAllocator,
    account_id: ObjectId,
    new: &[(usize, &NewCredential)],
    now: UtcDateTime,
) -> Result<(), Rejection> {
    for (i, c) in new {
        check_new_credential(&format!("credentials/{i}"), c)?;
        events.push(credential_added(account_id, ids.allocate(), c, now));
    }
    Ok(())
}

/// Checks the final credential mix: one Password at most, and the app password
/// and API key counts within `maxAppPasswords` / `maxApiKeys`.
pub(crate) fn check_credential_counts(kinds: &[CredentialKind], quotas: &Quotas) -> Result<(), Rejection> {
    let count = |k| kinds.iter().filter(|&&x| x == k).count() as u64;
    if count(CredentialKind::Password) > 1 {
        return Err(Rejection::invalid("credentials", "an account has at most one Password"));
    }
    for (kind, quota) in
        [(CredentialKind::AppPassword, QuotaKind::MaxAppPasswords), (CredentialKind::ApiKey, QuotaKind::MaxApiKeys)]
    {
        if let Some(&limit) = quotas.get(&quota)
            && count(kind) > limit
        {
            return Err(Rejection::OverQuota {
                description: format!("more than {quota} = {limit} credentials of type {kind:?}"),
            });
        }
    }
    Ok(())
}

/// Checks `Custom` roles name existing `x:Role` objects.
pub(crate) fn check_roles(view: &impl StateRead, roles: &Roles) -> Result<(), Rejection> {
    if let Roles::Custom { role_ids } = roles {
        for (i, role) in role_ids.iter().enumerate() {
            let exists = match ObjectId::from_jmap(role.as_str()) {
                Some(id) => state::role(view, id)?.is_some(),
                None => false,
            };
            if !exists {
                return Err(Rejection::foreign_key(
                    &format!("roles/roleIds/{i}"),
                    ObjectType::Role,
                    role,
                    format!("role {role} does not exist"),
                ));
            }
        }
    }
    Ok(())
}

/// The existing account, or `notFound`.
pub(crate) fn existing_account(view: &impl StateRead, id: ObjectId) -> Result<AccountState, Rejection> {
    state::account(view, id)?.ok_or(Rejection::NotFound { what: "account", id })
}
