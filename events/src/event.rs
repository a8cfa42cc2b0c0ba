//! The event catalogue: every fact the ledger records, one past-tense type each.
//!
//! Events are history. A shipped payload shape is never edited; a change adds a new
//! schema version and `codec::decode_event` upcasts older versions on read.

use serde::{Deserialize, Serialize};

use crate::model::{
    AccountKind, AllowedIps, Change, CredentialKind, CredentialPermissions, DomainSettings, EncryptionAtRest,
    Permissions, QuotaKind, Quotas, Roles, TenantQuotas,
};
use crate::values::{
    DomainName, EmailLocalPart, ExternalId, Locale, ObjectId, Permission, SecretHash, TimeZoneName, UtcDateTime,
};

/// An account came into existence with this profile. Credentials, aliases and group
/// memberships given at creation follow as their own events in the same commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountCreated {
    pub account_id: ObjectId,
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
    pub encryption_at_rest: Option<EncryptionAtRest>,
    pub created_at: UtcDateTime,
}

/// Profile fields of an account changed; only the changed ones are present.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountUpdated {
    pub account_id: ObjectId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Change<Option<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<Change<Locale>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<Change<Option<TimeZoneName>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_tenant_id: Option<Change<Option<ExternalId>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_at_rest: Option<Change<Option<EncryptionAtRest>>>,
}

impl AccountUpdated {
    pub fn is_empty(&self) -> bool {
        self.description.is_none()
            && self.locale.is_none()
            && self.time_zone.is_none()
            && self.member_tenant_id.is_none()
            && self.encryption_at_rest.is_none()
    }
}

/// The account's name and/or domain changed; its id, and so its history, stay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountRenamed {
    pub account_id: ObjectId,
    pub old_name: EmailLocalPart,
    pub new_name: EmailLocalPart,
    pub old_domain_id: ObjectId,
    pub new_domain_id: ObjectId,
    pub old_email_address: String,
    pub new_email_address: String,
}

/// The account was destroyed. Its credentials, aliases and memberships went with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountDestroyed {
    pub account_id: ObjectId,
    #[serde(rename = "@type")]
    pub kind: AccountKind,
    pub email_address: String,
}

/// A credential was attached. Only a hash of the secret is ever recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialAdded {
    pub account_id: ObjectId,
    pub credential_id: ObjectId,
    #[serde(rename = "@type")]
    pub kind: CredentialKind,
    pub description: Option<String>,
    pub secret_hash: SecretHash,
    pub expires_at: Option<UtcDateTime>,
    pub allowed_ips: AllowedIps,
    pub permissions: Option<CredentialPermissions>,
    /// Whether a TOTP second factor is required (Password only).
    pub otp_enabled: bool,
    pub created_at: UtcDateTime,
    /// Schema v2: the `otpAuth` URI, sealed (XChaCha20-Poly1305) with the data
    /// directory's key; never plaintext. Absent in v1 payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_auth_sealed: Option<String>,
}

/// Why a credential went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RemovalReason {
    Removed,
    Expired,
    Replaced,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialRemoved {
    pub account_id: ObjectId,
    pub credential_id: ObjectId,
    #[serde(rename = "@type")]
    pub kind: CredentialKind,
    pub reason: RemovalReason,
}

/// Settings of a credential changed. A new secret is recorded as its hash, and the
/// audit view shows it only as "changed".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialUpdated {
    pub account_id: ObjectId,
    pub credential_id: ObjectId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_secret_hash: Option<SecretHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Change<Option<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Change<Option<UtcDateTime>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_ips: Option<Change<AllowedIps>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Change<Option<CredentialPermissions>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_enabled: Option<Change<bool>>,
    /// Schema v2: a new sealed `otpAuth` URI (see CredentialAdded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_otp_auth_sealed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AliasAdded {
    pub account_id: ObjectId,
    pub name: EmailLocalPart,
    pub domain_id: ObjectId,
    pub email_address: String,
    pub enabled: bool,
    pub description: Option<String>,
}

/// An alias moved to another address: subscribers routing mail must follow it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AliasRenamed {
    pub account_id: ObjectId,
    pub old_name: EmailLocalPart,
    pub old_domain_id: ObjectId,
    pub old_email_address: String,
    pub new_name: EmailLocalPart,
    pub new_domain_id: ObjectId,
    pub new_email_address: String,
}

/// An alias kept its address but was enabled, disabled or re-described.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AliasUpdated {
    pub account_id: ObjectId,
    pub email_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<Change<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Change<Option<String>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AliasRemoved {
    pub account_id: ObjectId,
    pub name: EmailLocalPart,
    pub domain_id: ObjectId,
    pub email_address: String,
}

/// The account joined and/or left groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupMembershipChanged {
    pub account_id: ObjectId,
    pub joined: Vec<ObjectId>,
    pub left: Vec<ObjectId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolesChanged {
    pub account_id: ObjectId,
    pub old: Roles,
    pub new: Roles,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermissionsChanged {
    pub account_id: ObjectId,
    pub old: Permissions,
    pub new: Permissions,
}

/// A quota limit was set (`new` present) or lifted (`new` null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaLimitSet {
    pub account_id: ObjectId,
    pub quota: QuotaKind,
    pub old: Option<u64>,
    pub new: Option<u64>,
}

/// Measured usage of a quota kind changed (reported by the mail store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaUsageChanged {
    pub account_id: ObjectId,
    pub quota: QuotaKind,
    pub old: u64,
    pub new: u64,
}

/// Reported usage of a quota kind went past the account's limit for it. Recorded
/// in the commit that crossed the limit (once per crossing, not per report), so a
/// subscriber can act on it; the usage itself is in the QuotaUsageChanged before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaExceeded {
    pub account_id: ObjectId,
    pub quota: QuotaKind,
    pub used: u64,
    pub limit: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DomainCreated {
    pub domain_id: ObjectId,
    pub name: DomainName,
    pub description: Option<String>,
    pub created_at: UtcDateTime,
    /// The tenant the domain belongs to (version 2; absent in version 1: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_tenant_id: Option<ExternalId>,
    /// Stalwart's other domain fields (version 3; absent before: the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Box<DomainSettings>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DomainUpdated {
    pub domain_id: ObjectId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Change<Option<String>>>,
    /// A move to another tenant (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_tenant_id: Option<Change<Option<ExternalId>>>,
    /// The domain's other fields changed (version 3), whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Box<Change<DomainSettings>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DomainDestroyed {
    pub domain_id: ObjectId,
    pub name: DomainName,
}

/// One record whose payload an erasure removed: what replay needs to rebuild
/// the change tracking it had (no personal data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErasedRecord {
    pub position: u64,
    /// `created`, `updated` or `destroyed`, as `/changes` reported it.
    pub change: String,
    pub commit_id: String,
}

/// The personal data of a destroyed account was erased: the payloads of every
/// record that touched it were removed. Headers and hashes stay, so the chain
/// still verifies; this event records that it happened (its header: by whom).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountErased {
    pub account_id: ObjectId,
    pub erased: Vec<ErasedRecord>,
    /// The id counter's high-water mark at erasure, so replay never reuses an id
    /// that only an erased record allocated.
    pub max_allocated_id: ObjectId,
}

/// Change tracking before position `before` was dropped by the retention policy:
/// `/changes` from an older state answers `cannotCalculateChanges`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangesTrimmed {
    pub before: u64,
}

/// A role (`x:Role`): permissions that `Custom` roles refer to, in
/// Stalwart's shape since schema version 2 (labelled by `description`;
/// `disabledPermissions`, `roleIds` it extends, `memberTenantId`). Version 1
/// roles had a unique `name` and no other fields: they read with the new
/// fields empty, and the name labels them while they have no description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleCreated {
    pub role_id: ObjectId,
    /// Version 1 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub description: Option<String>,
    /// The enabled permissions (`enabledPermissions` on the wire).
    pub permissions: Vec<Permission>,
    /// Version 2.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_permissions: Vec<Permission>,
    /// Version 2: the roles this role extends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_ids: Vec<ObjectId>,
    /// Version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_tenant_id: Option<ExternalId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleUpdated {
    pub role_id: ObjectId,
    /// Version 1 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Change<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Change<Option<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Change<Vec<Permission>>>,
    /// Version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_permissions: Option<Change<Vec<Permission>>>,
    /// Version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_ids: Option<Change<Vec<ObjectId>>>,
    /// Version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_tenant_id: Option<Change<Option<ExternalId>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleDestroyed {
    pub role_id: ObjectId,
    /// The role's label when it went (its name, or since version 2 of
    /// RoleCreated its description).
    pub name: String,
}

/// A tenant (`x:Tenant`) came into existence: accounts, domains and roles
/// name it by its id in `memberTenantId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantCreated {
    pub tenant_id: ObjectId,
    pub name: String,
    pub logo: Option<String>,
    pub roles: Roles,
    pub permissions: Permissions,
    pub quotas: TenantQuotas,
    pub created_at: UtcDateTime,
}

/// Fields of a tenant changed; only the changed ones are present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantUpdated {
    pub tenant_id: ObjectId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Change<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<Change<Option<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Change<Roles>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Change<Permissions>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<Change<TenantQuotas>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantDestroyed {
    pub tenant_id: ObjectId,
    pub name: String,
}

macro_rules! catalogue {
    ($($variant:ident),* $(,)?) => {
        /// One fact in the log. The variant name is the event type stored in the header.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $($variant($variant),)*
        }

        impl Event {
            /// The event type name as stored in the record header.
            pub fn type_name(&self) -> &'static str {
                match self { $(Event::$variant(_) => stringify!($variant),)* }
            }

            /// Every event type this build knows.
            pub const TYPE_NAMES: &'static [&'static str] = &[$(stringify!($variant)),*];

            /// The schema version this build writes for the event's type.
            pub fn schema_version(&self) -> u16 {
                crate::codec::schema_version(self.type_name())
            }

            pub(crate) fn payload_json(&self) -> Result<Vec<u8>, serde_json::Error> {
                match self { $(Event::$variant(p) => serde_json::to_vec(p),)* }
            }

            pub(crate) fn from_payload_json(type_name: &str, bytes: &[u8]) -> Option<Result<Event, serde_json::Error>> {
                match type_name {
                    $(stringify!($variant) => Some(serde_json::from_slice(bytes).map(Event::$variant)),)*
                    _ => None,
                }
            }
        }

        $(impl From<$variant> for Event {
            fn from(p: $variant) -> Event { Event::$variant(p) }
        })*
    };
}

catalogue! {
    AccountCreated,
    AccountUpdated,
    AccountRenamed,
    AccountDestroyed,
    CredentialAdded,
    CredentialRemoved,
    CredentialUpdated,
    AliasAdded,
    AliasRenamed,
    AliasUpdated,
    AliasRemoved,
    GroupMembershipChanged,
    RolesChanged,
    PermissionsChanged,
    QuotaLimitSet,
    QuotaUsageChanged,
    QuotaExceeded,
    DomainCreated,
    DomainUpdated,
    DomainDestroyed,
    RoleCreated,
    RoleUpdated,
    RoleDestroyed,
    TenantCreated,
    TenantUpdated,
    TenantDestroyed,
    AccountErased,
    ChangesTrimmed,
}

/// The JMAP object an event changes, for state strings and `/changes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectType {
    Account,
    Domain,
    Role,
    Tenant,
}

impl ObjectType {
    pub const ALL: [ObjectType; 4] = [ObjectType::Account, ObjectType::Domain, ObjectType::Role, ObjectType::Tenant];

    /// The JMAP object name (`x:Account`, …), as Stalwart's management API names it.
    pub const fn jmap_name(self) -> &'static str {
        match self {
            ObjectType::Account => "x:Account",
            ObjectType::Domain => "x:Domain",
            ObjectType::Role => "x:Role",
            ObjectType::Tenant => "x:Tenant",
        }
    }

    /// The byte that stands for the type in change-tracking keys and state keys.
    pub const fn tag(self) -> u8 {
        match self {
            ObjectType::Account => b'A',
            ObjectType::Domain => b'D',
            ObjectType::Role => b'R',
            ObjectType::Tenant => b'T',
        }
    }
}

impl Event {
    /// The object this event brings into existence, if it creates one.
    pub fn created_object(&self) -> Option<(ObjectType, ObjectId)> {
        match self {
            Event::AccountCreated(e) => Some((ObjectType::Account, e.account_id)),
            Event::DomainCreated(e) => Some((ObjectType::Domain, e.domain_id)),
            Event::RoleCreated(e) => Some((ObjectType::Role, e.role_id)),
            Event::TenantCreated(e) => Some((ObjectType::Tenant, e.tenant_id)),
            _ => None,
        }
    }

    /// The object this event changes: exactly one, except for maintenance events
    /// of the ledger itself (`None`).
    pub fn subject(&self) -> Option<(ObjectType, ObjectId)> {
        use Event::*;
        Some(match self {
            ChangesTrimmed(_) => return None,
            AccountCreated(e) => (ObjectType::Account, e.account_id),
            AccountUpdated(e) => (ObjectType::Account, e.account_id),
            AccountRenamed(e) => (ObjectType::Account, e.account_id),
            AccountDestroyed(e) => (ObjectType::Account, e.account_id),
            CredentialAdded(e) => (ObjectType::Account, e.account_id),
            CredentialRemoved(e) => (ObjectType::Account, e.account_id),
            CredentialUpdated(e) => (ObjectType::Account, e.account_id),
            AliasAdded(e) => (ObjectType::Account, e.account_id),
            AliasRenamed(e) => (ObjectType::Account, e.account_id),
            AliasUpdated(e) => (ObjectType::Account, e.account_id),
            AliasRemoved(e) => (ObjectType::Account, e.account_id),
            GroupMembershipChanged(e) => (ObjectType::Account, e.account_id),
            RolesChanged(e) => (ObjectType::Account, e.account_id),
            PermissionsChanged(e) => (ObjectType::Account, e.account_id),
            QuotaLimitSet(e) => (ObjectType::Account, e.account_id),
            QuotaUsageChanged(e) => (ObjectType::Account, e.account_id),
            QuotaExceeded(e) => (ObjectType::Account, e.account_id),
            DomainCreated(e) => (ObjectType::Domain, e.domain_id),
            DomainUpdated(e) => (ObjectType::Domain, e.domain_id),
            DomainDestroyed(e) => (ObjectType::Domain, e.domain_id),
            AccountErased(e) => (ObjectType::Account, e.account_id),
            RoleCreated(e) => (ObjectType::Role, e.role_id),
            RoleUpdated(e) => (ObjectType::Role, e.role_id),
            RoleDestroyed(e) => (ObjectType::Role, e.role_id),
            TenantCreated(e) => (ObjectType::Tenant, e.tenant_id),
            TenantUpdated(e) => (ObjectType::Tenant, e.tenant_id),
            TenantDestroyed(e) => (ObjectType::Tenant, e.tenant_id),
        })
    }
}
