//! Projected objects and typed reads over any [`StateRead`]: the current state the
//! decide layer checks commands against and `/get` and `/query` answer from.

use std::collections::BTreeMap;

use ledger_events::ObjectType;
use ledger_events::codec::{self, from_json};
use ledger_events::model::{
    AccountKind, AllowedIps, CredentialKind, CredentialPermissions, EncryptionAtRest, Permissions, QuotaKind, Quotas,
    Roles,
};
use ledger_events::values::{
    DomainName, EmailLocalPart, ExternalId, Locale, ObjectId, Permission, SecretHash, TimeZoneName, UtcDateTime,
};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::keys;
use crate::view::{Space, StateRead};

/// An account as it is now.
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
    pub fn used_disk_quota(&self) -> u64 {
        self.usage.get(&QuotaKind::MaxDiskQuota).copied().unwrap_or(0)
    }
}

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainState {
    pub id: ObjectId,
    pub name: DomainName,
    pub description: Option<String>,
    pub created_at: UtcDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleState {
    pub id: ObjectId,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<Permission>,
}

/// Whether an address belongs to an account as its primary address or as an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressUse {
    Primary,
    Alias,
}

pub fn account(view: &impl StateRead, id: ObjectId) -> Result<Option<AccountState>> {
    match view.get(Space::Accounts, &id.to_be_bytes())? {
        Some(raw) => Ok(Some(from_json(&raw)?)),
        None => Ok(None),
    }
}

pub fn domain(view: &impl StateRead, id: ObjectId) -> Result<Option<DomainState>> {
    match view.get(Space::Domains, &id.to_be_bytes())? {
        Some(raw) => Ok(Some(from_json(&raw)?)),
        None => Ok(None),
    }
}

/// Who holds an address (case-insensitive), as primary address or alias.
pub fn address_owner(view: &impl StateRead, address: &str) -> Result<Option<(ObjectId, AddressUse)>> {
    let Some(raw) = view.get(Space::Index, &keys::address(&address.to_ascii_lowercase()))? else {
        return Ok(None);
    };
    Ok(keys::decode_address_value(&raw))
}

pub fn role(view: &impl StateRead, id: ObjectId) -> Result<Option<RoleState>> {
    match view.get(Space::Roles, &id.to_be_bytes())? {
        Some(raw) => Ok(Some(from_json(&raw)?)),
        None => Ok(None),
    }
}

pub fn role_by_name(view: &impl StateRead, name: &str) -> Result<Option<ObjectId>> {
    Ok(view.get(Space::Index, &keys::role_name(name))?.and_then(|raw| keys::decode_id(&raw)))
}

/// Whether any account has the role.
pub fn role_in_use(view: &impl StateRead, role_id: ObjectId) -> Result<bool> {
    Ok(!view.scan(Space::Index, &keys::role_holders_prefix(role_id), None, 1)?.is_empty())
}

/// Log positions of every event that touched the account, oldest first (also
/// after it was destroyed).
pub fn history_positions(view: &impl StateRead, account: ObjectId) -> Result<Vec<u64>> {
    Ok(view
        .scan(Space::Index, &keys::history_prefix(account), None, usize::MAX)?
        .iter()
        .filter_map(|(k, _)| Some(u64::from_be_bytes(k.get(k.len().checked_sub(8)?..)?.try_into().ok()?)))
        .collect())
}

/// The account and credential a generated secret's digest belongs to.
pub fn secret_owner(view: &impl StateRead, digest: &str) -> Result<Option<(ObjectId, ObjectId)>> {
    Ok(view.get(Space::Index, &keys::secret(digest))?.and_then(|raw| keys::decode_secret_value(&raw)))
}

/// Accounts that use the name, in any domain.
pub fn accounts_named(view: &impl StateRead, name: &str) -> Result<Vec<ObjectId>> {
    let mut prefix = keys::name_prefix(name);
    prefix.push(0);
    Ok(view.scan(Space::Index, &prefix, None, usize::MAX)?.iter().filter_map(|(k, _)| keys::trailing_id(k)).collect())
}

pub fn domain_by_name(view: &impl StateRead, name: &DomainName) -> Result<Option<ObjectId>> {
    Ok(view.get(Space::Index, &keys::domain_name(name))?.and_then(|raw| keys::decode_id(&raw)))
}

/// Whether any account uses the domain (primary address or alias).
pub fn domain_in_use(view: &impl StateRead, domain_id: ObjectId) -> Result<bool> {
    Ok(!view.scan(Space::Index, &keys::domain_refs_prefix(domain_id), None, 1)?.is_empty())
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

pub(crate) fn meta_u64(view: &impl StateRead, key: &[u8]) -> Result<Option<u64>> {
    match view.get(Space::Meta, key)? {
        Some(raw) => Ok(Some(codec::decode_seq_key(&raw)?)),
        None => Ok(None),
    }
}
