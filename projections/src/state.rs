//! Projected objects and typed reads over any [`StateRead`]: the current state the
//! decide layer checks commands against and `/get` and `/query` answer from.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use ledger_events::ObjectType;
use ledger_events::codec::{self, from_json};
use ledger_events::model::{
    AccountKind, AllowedIps, CredentialKind, CredentialPermissions, DomainSettings, EncryptionAtRest, Permissions,
    QuotaKind, Quotas, Roles, TenantQuotas,
};
use ledger_events::values::{
    DomainName, EmailLocalPart, ExternalId, Locale, ObjectId, Permission, SecretHash, TimeZoneName, UtcDateTime,
};
use serde::{Deserialize, Serialize};

use crate::changes::ChangeEntry;
use crate::error::Result;
use crate::keys;
use crate::view::{Space, StateRead};

/// An account as it is now: the properties of the Account reference page
/// (Stalwart 0.16), as stored in `proj_accounts` (JSON, camelCase).
#[allow(
    missing_docs,
    reason = "each field is the Account reference page's property of that name, camelCase on the wire"
)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountState {
    pub id: ObjectId,
    #[serde(rename = "@type")]
    pub kind: AccountKind,
    pub name: EmailLocalPart,
    pub domain_id: ObjectId,
    pub email_address: String,
    pub description: Option<String>,
    pub locale: Locale,
    pub time_zone: Option<TimeZoneName>,
    pub member_tenant_id: Option<ExternalId>,
    pub roles: Roles,
    pub permissions: Permissions,
    pub quotas: Quotas,
    /// Measured usage per quota kind; `maxDiskQuota` usage is `usedDiskQuota`.
    pub usage: BTreeMap<QuotaKind, u64>,
    pub aliases: Vec<AliasState>,
    pub credentials: Vec<CredentialState>,
    pub member_group_ids: Vec<ObjectId>,
    pub encryption_at_rest: Option<EncryptionAtRest>,
    pub created_at: UtcDateTime,
}

impl AccountState {
    /// `usedDiskQuota`: bytes stored, as the mail stores last reported.
    pub fn used_disk_quota(&self) -> u64 {
        self.usage.get(&QuotaKind::MaxDiskQuota).copied().unwrap_or(0)
    }
}

/// One `EmailAlias` of an account; `email_address` is derived as name@domain.
#[allow(
    missing_docs,
    reason = "each field is the Account reference page's property of that name, camelCase on the wire"
)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AliasState {
    pub name: EmailLocalPart,
    pub domain_id: ObjectId,
    pub email_address: String,
    pub enabled: bool,
    pub description: Option<String>,
}

/// A credential as stored for authentication; `secret_hash` is never rendered.
#[allow(
    missing_docs,
    reason = "each field is the Account reference page's property of that name, camelCase on the wire"
)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialState {
    pub id: ObjectId,
    #[serde(rename = "@type")]
    pub kind: CredentialKind,
    pub description: Option<String>,
    pub secret_hash: SecretHash,
    pub expires_at: Option<UtcDateTime>,
    pub allowed_ips: AllowedIps,
    pub permissions: Option<CredentialPermissions>,
    pub otp_enabled: bool,
    pub created_at: UtcDateTime,
    /// The sealed `otpAuth` URI, when a second factor is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_auth_sealed: Option<String>,
}

/// A domain as it is now (`proj_domains`).
#[allow(
    missing_docs,
    reason = "each field is the Account reference page's property of that name, camelCase on the wire"
)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainState {
    pub id: ObjectId,
    pub name: DomainName,
    pub description: Option<String>,
    pub created_at: UtcDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_tenant_id: Option<ExternalId>,
    /// Stalwart's other domain fields.
    #[serde(default)]
    pub settings: DomainSettings,
}

/// A tenant as it is now (`proj_tenants`): Stalwart's `x:Tenant`.
#[allow(missing_docs, reason = "each field is the x:Tenant property of that name, camelCase on the wire")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantState {
    pub id: ObjectId,
    pub name: String,
    pub logo: Option<String>,
    pub roles: Roles,
    pub permissions: Permissions,
    pub quotas: TenantQuotas,
    pub created_at: UtcDateTime,
}

/// A role as it is now (`proj_roles`): a named permission list.
#[allow(
    missing_docs,
    reason = "each field is the Account reference page's property of that name, camelCase on the wire"
)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleState {
    pub id: ObjectId,
    /// A version-1 role's name (see `RoleCreated`).
    pub name: Option<String>,
    pub description: Option<String>,
    /// The enabled permissions.
    pub permissions: Vec<Permission>,
    pub disabled_permissions: Vec<Permission>,
    /// The roles this role extends.
    pub role_ids: Vec<ObjectId>,
    pub member_tenant_id: Option<ExternalId>,
}

impl RoleState {
    /// What labels the role: its description, or a version-1 role's name.
    pub fn label(&self) -> String {
        self.description.clone().or_else(|| self.name.clone()).unwrap_or_default()
    }
}

/// Whether an address belongs to an account as its primary address or as an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressUse {
    /// The account's `emailAddress`.
    Primary,
    /// One of its aliases.
    Alias,
}

/// The object stored under `id` in an object keyspace.
fn object<T: serde::de::DeserializeOwned>(view: &impl StateRead, space: Space, id: ObjectId) -> Result<Option<T>> {
    match view.get(space, &id.to_be_bytes())? {
        Some(raw) => Ok(Some(from_json(&raw)?)),
        None => Ok(None),
    }
}

/// Every object of an object keyspace, in id order.
fn objects<T: serde::de::DeserializeOwned>(view: &impl StateRead, space: Space) -> Result<Vec<T>> {
    view.scan(space, &[], None, usize::MAX)?.iter().map(|(_, raw)| Ok(from_json(raw)?)).collect()
}

/// Up to `limit` ids of an object keyspace, in id order.
fn object_ids(view: &impl StateRead, space: Space, limit: usize) -> Result<Vec<ObjectId>> {
    Ok(view.scan(space, &[], None, limit)?.iter().filter_map(|(k, _)| keys::decode_id(k)).collect())
}

/// Ids of index entries under `prefix` (their trailing 8 bytes), in key order.
fn ids_under(view: &impl StateRead, prefix: &[u8], limit: usize) -> Result<Vec<ObjectId>> {
    Ok(view.scan(Space::Index, prefix, None, limit)?.iter().filter_map(|(k, _)| keys::trailing_id(k)).collect())
}

/// The account with `id`, `None` if there is none (never was, or destroyed).
pub fn account(view: &impl StateRead, id: ObjectId) -> Result<Option<AccountState>> {
    view.account(id)
}

/// Every account, in id order.
pub fn accounts(view: &impl StateRead) -> Result<Vec<AccountState>> {
    objects(view, Space::Accounts)
}

/// Up to `limit` account ids, Users first, each kind in id order (the `@type` index).
pub fn account_ids(view: &impl StateRead, limit: usize) -> Result<Vec<ObjectId>> {
    ids_under(view, &[keys::TAG_KIND], limit)
}

/// The domain with `id`, `None` if there is none.
pub fn domain(view: &impl StateRead, id: ObjectId) -> Result<Option<DomainState>> {
    object(view, Space::Domains, id)
}

/// Every domain, in id order.
pub fn domains(view: &impl StateRead) -> Result<Vec<DomainState>> {
    objects(view, Space::Domains)
}

/// Up to `limit` domain ids, in id order.
pub fn domain_ids(view: &impl StateRead, limit: usize) -> Result<Vec<ObjectId>> {
    object_ids(view, Space::Domains, limit)
}

/// Who holds an address (case-insensitive), as primary address or alias.
pub fn address_owner(view: &impl StateRead, address: &str) -> Result<Option<(ObjectId, AddressUse)>> {
    let Some(raw) = view.get(Space::Index, &keys::address(&address.to_ascii_lowercase()))? else {
        return Ok(None);
    };
    Ok(keys::decode_address_value(&raw))
}

/// The tenant with `id`, `None` if there is none.
pub fn tenant(view: &impl StateRead, id: ObjectId) -> Result<Option<TenantState>> {
    object(view, Space::Tenants, id)
}

/// Every tenant, in id order.
pub fn tenants(view: &impl StateRead) -> Result<Vec<TenantState>> {
    objects(view, Space::Tenants)
}

/// Up to `limit` tenant ids, in id order.
pub fn tenant_ids(view: &impl StateRead, limit: usize) -> Result<Vec<ObjectId>> {
    object_ids(view, Space::Tenants, limit)
}

/// Up to `limit` accounts of tenant `tenant` (its `memberTenantId` value), in id order.
pub fn tenant_accounts(view: &impl StateRead, tenant: &str, limit: usize) -> Result<Vec<ObjectId>> {
    ids_under(view, &keys::tenant_prefix(tenant), limit)
}

/// The role with `id`, `None` if there is none.
pub fn role(view: &impl StateRead, id: ObjectId) -> Result<Option<RoleState>> {
    object(view, Space::Roles, id)
}

/// Every role, in id order.
pub fn roles(view: &impl StateRead) -> Result<Vec<RoleState>> {
    objects(view, Space::Roles)
}

/// Up to `limit` role ids, in id order.
pub fn role_ids(view: &impl StateRead, limit: usize) -> Result<Vec<ObjectId>> {
    object_ids(view, Space::Roles, limit)
}

/// Whether any account has the role.
pub fn role_in_use(view: &impl StateRead, role_id: ObjectId) -> Result<bool> {
    Ok(!view.scan(Space::Index, &keys::role_holders_prefix(role_id), None, 1)?.is_empty())
}

/// The accounts (users and groups) whose `Custom` roles name `role_id`.
pub fn role_holders(view: &impl StateRead, role_id: ObjectId) -> Result<Vec<ObjectId>> {
    ids_under(view, &keys::role_holders_prefix(role_id), usize::MAX)
}

/// Log positions of every event that touched the account, oldest first (also
/// after it was destroyed).
pub fn history_positions(view: &impl StateRead, account: ObjectId) -> Result<Vec<u64>> {
    history_in(view, account, 0..=u64::MAX)
}

/// Log positions in `positions` of the events that touched the account, oldest first.
pub fn history_in(view: &impl StateRead, account: ObjectId, positions: RangeInclusive<u64>) -> Result<Vec<u64>> {
    let from = keys::history(account, *positions.start());
    Ok(view
        .scan(Space::Index, &keys::history_prefix(account), Some(&from), usize::MAX)?
        .iter()
        .filter_map(|(k, _)| keys::decode_history(k).map(|(_, p)| p))
        .take_while(|p| p <= positions.end())
        .collect())
}

/// For every account any event up to `position` touched (destroyed ones too),
/// the positions of those events, oldest first; in account id order.
pub fn histories_up_to(view: &impl StateRead, position: u64) -> Result<BTreeMap<ObjectId, Vec<u64>>> {
    let mut out: BTreeMap<ObjectId, Vec<u64>> = BTreeMap::new();
    for (key, _) in view.scan(Space::Index, &[keys::TAG_HISTORY], None, usize::MAX)? {
        if let Some((account, p)) = keys::decode_history(&key).filter(|(_, p)| *p <= position) {
            out.entry(account).or_default().push(p);
        }
    }
    Ok(out)
}

/// The members of a group, in id order.
pub fn group_members(view: &impl StateRead, group: ObjectId) -> Result<Vec<ObjectId>> {
    ids_under(view, &keys::group_members_prefix(group), usize::MAX)
}

/// The change-tracking entry an event of `object_type` left at `position`, if
/// tracking still covers it.
pub fn change_at(view: &impl StateRead, object_type: ObjectType, position: u64) -> Result<Option<ChangeEntry>> {
    match view.get(Space::Changes, &keys::change(object_type, position))? {
        None => Ok(None),
        Some(raw) => ChangeEntry::decode(&raw)
            .map(Some)
            .ok_or_else(|| crate::Error::Inconsistent(format!("a malformed change entry at position {position}"))),
    }
}

/// The account and credential a generated secret's digest belongs to.
pub fn secret_owner(view: &impl StateRead, digest: &str) -> Result<Option<(ObjectId, ObjectId)>> {
    Ok(view.get(Space::Index, &keys::secret(digest))?.and_then(|raw| keys::decode_secret_value(&raw)))
}

/// Accounts that use the name, in any domain.
pub fn accounts_named(view: &impl StateRead, name: &str) -> Result<Vec<ObjectId>> {
    let mut prefix = keys::name_prefix(name);
    prefix.push(0);
    ids_under(view, &prefix, usize::MAX)
}

/// The domain named `name`.
pub fn domain_by_name(view: &impl StateRead, name: &DomainName) -> Result<Option<ObjectId>> {
    Ok(view.get(Space::Index, &keys::domain_name(name))?.and_then(|raw| keys::decode_id(&raw)))
}

/// Whether any account uses the domain (primary address or alias).
pub fn domain_in_use(view: &impl StateRead, domain_id: ObjectId) -> Result<bool> {
    Ok(!view.scan(Space::Index, &keys::domain_refs_prefix(domain_id), None, 1)?.is_empty())
}

/// Up to `limit` accounts that use the domain (for their address or an alias), in id order.
pub fn domain_users(view: &impl StateRead, domain_id: ObjectId, limit: usize) -> Result<Vec<ObjectId>> {
    let mut ids = ids_under(view, &keys::domain_refs_prefix(domain_id), usize::MAX)?;
    ids.dedup();
    ids.truncate(limit);
    Ok(ids)
}

/// Whether any account is a member of the group.
pub fn group_has_members(view: &impl StateRead, group_id: ObjectId) -> Result<bool> {
    Ok(!view.scan(Space::Index, &keys::group_members_prefix(group_id), None, 1)?.is_empty())
}

/// The next unused object id.
pub fn next_object_id(view: &impl StateRead) -> Result<u64> {
    Ok(meta_u64(view, keys::META_NEXT_ID)?.unwrap_or(1))
}

/// The last log position folded into the projections (0 when none).
pub fn applied_seq(view: &impl StateRead) -> Result<u64> {
    Ok(meta_u64(view, keys::META_APPLIED_SEQ)?.unwrap_or(0))
}

/// The last log position that changed an object of this type (0 when none): the
/// basis of JMAP state strings.
pub fn type_state(view: &impl StateRead, object_type: ObjectType) -> Result<u64> {
    Ok(meta_u64(view, &keys::meta_type_state(object_type))?.unwrap_or(0))
}

/// The first position change tracking still covers (1 when never trimmed).
pub fn changes_from(view: &impl StateRead) -> Result<u64> {
    Ok(meta_u64(view, keys::META_CHANGES_FROM)?.unwrap_or(1))
}

fn meta_u64(view: &impl StateRead, key: &[u8]) -> Result<Option<u64>> {
    match view.get(Space::Meta, key)? {
        Some(raw) => Ok(Some(codec::decode_seq_key(&raw)?)),
        None => Ok(None),
    }
}
