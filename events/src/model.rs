//! Shared shapes carried inside events: roles, permissions, quotas, credentials, aliases.
//!
//! Field names are the JMAP wire names of the Account reference page, so an auditor
//! reading an exported event sees the vocabulary of the API.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::values::{ExternalId, InvalidValue, IpMask, Permission};

/// The `@type` of an Account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AccountKind {
    User,
    Group,
}

/// Roles of an account: `UserRoles` for users (User, Admin, Custom) and `Roles`
/// for groups (Default, Custom). Which variants fit which kind is checked by the
/// decide layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum Roles {
    User,
    Admin,
    Default,
    Custom {
        #[serde(rename = "roleIds")]
        role_ids: Vec<ExternalId>,
    },
}

impl Roles {
    pub fn fits(&self, kind: AccountKind) -> bool {
        matches!(
            (self, kind),
            (Roles::User | Roles::Admin | Roles::Custom { .. }, AccountKind::User)
                | (Roles::Default | Roles::Custom { .. }, AccountKind::Group)
        )
    }
}

/// Permission assignment mode of an account, group or tenant. Disabled always wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum Permissions {
    Inherit,
    Merge(PermissionsList),
    Replace(PermissionsList),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermissionsList {
    #[serde(default)]
    pub enabled_permissions: Vec<Permission>,
    #[serde(default)]
    pub disabled_permissions: Vec<Permission>,
}

/// What an AppPassword or ApiKey may do, always within what its account may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum CredentialPermissions {
    /// Everything the account may do.
    Inherit,
    /// The account's permissions minus these.
    Disable(CredentialPermissionsList),
    /// Only these, intersected with the account's.
    Replace(CredentialPermissionsList),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialPermissionsList {
    #[serde(default)]
    pub permissions: Vec<Permission>,
}

/// Encryption-at-rest selection; the algorithms carry `EncryptionSettings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum EncryptionAtRest {
    Disabled,
    Aes128(EncryptionSettings),
    Aes256(EncryptionSettings),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptionSettings {
    pub public_key: ExternalId,
    #[serde(default)]
    pub encrypt_on_append: bool,
    #[serde(default)]
    pub allow_spam_training: bool,
}

macro_rules! quota_kinds {
    ($($variant:ident => $wire:literal),* $(,)?) => {
        /// The `StorageQuota` enum of the reference page.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum QuotaKind {
            $(#[serde(rename = $wire)] $variant,)*
        }

        impl QuotaKind {
            pub const ALL: &'static [QuotaKind] = &[$(QuotaKind::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(QuotaKind::$variant => $wire,)* }
            }
        }

        impl FromStr for QuotaKind {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, InvalidValue> {
                match s {
                    $($wire => Ok(QuotaKind::$variant),)*
                    _ => Err(InvalidValue(format!("{s:?} is not a StorageQuota"))),
                }
            }
        }
    };
}

quota_kinds! {
    MaxEmails => "maxEmails",
    MaxMailboxes => "maxMailboxes",
    MaxEmailSubmissions => "maxEmailSubmissions",
    MaxEmailIdentities => "maxEmailIdentities",
    MaxParticipantIdentities => "maxParticipantIdentities",
    MaxSieveScripts => "maxSieveScripts",
    MaxPushSubscriptions => "maxPushSubscriptions",
    MaxCalendars => "maxCalendars",
    MaxCalendarEvents => "maxCalendarEvents",
    MaxCalendarEventNotifications => "maxCalendarEventNotifications",
    MaxAddressBooks => "maxAddressBooks",
    MaxContactCards => "maxContactCards",
    MaxFiles => "maxFiles",
    MaxFolders => "maxFolders",
    MaxMaskedAddresses => "maxMaskedAddresses",
    MaxAppPasswords => "maxAppPasswords",
    MaxApiKeys => "maxApiKeys",
    MaxPublicKeys => "maxPublicKeys",
    MaxDiskQuota => "maxDiskQuota",
}

impl fmt::Display for QuotaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Limits per quota kind; an absent key means no limit.
pub type Quotas = BTreeMap<QuotaKind, u64>;

macro_rules! tenant_quota_kinds {
    ($($variant:ident => $wire:literal),* $(,)?) => {
        /// Stalwart's `TenantStorageQuota` enum: what a tenant may hold.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum TenantQuotaKind {
            $(#[serde(rename = $wire)] $variant,)*
        }

        impl TenantQuotaKind {
            pub const ALL: &'static [TenantQuotaKind] = &[$(TenantQuotaKind::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(TenantQuotaKind::$variant => $wire,)* }
            }
        }

        impl FromStr for TenantQuotaKind {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, InvalidValue> {
                match s {
                    $($wire => Ok(TenantQuotaKind::$variant),)*
                    _ => Err(InvalidValue(format!("{s:?} is not a TenantStorageQuota"))),
                }
            }
        }
    };
}

tenant_quota_kinds! {
    MaxAccounts => "maxAccounts",
    MaxGroups => "maxGroups",
    MaxDomains => "maxDomains",
    MaxMailingLists => "maxMailingLists",
    MaxRoles => "maxRoles",
    MaxOauthClients => "maxOauthClients",
    MaxDkimKeys => "maxDkimKeys",
    MaxDnsServers => "maxDnsServers",
    MaxDirectories => "maxDirectories",
    MaxAcmeProviders => "maxAcmeProviders",
    MaxDiskQuota => "maxDiskQuota",
}

/// A tenant's limits per kind; an absent key means no limit.
pub type TenantQuotas = BTreeMap<TenantQuotaKind, u64>;

/// The `@type` of a Credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CredentialKind {
    Password,
    AppPassword,
    ApiKey,
}

/// A change of one field: what it was, what it became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change<T> {
    pub old: T,
    pub new: T,
}

impl<T: PartialEq> Change<T> {
    /// `Some` only when the value really changes, so events never record no-ops.
    pub fn between(old: T, new: T) -> Option<Self> {
        (old != new).then_some(Change { old, new })
    }
}

impl<T: PartialEq + Clone> Change<T> {
    /// The change a requested value (`None`: leave as is) makes to `current`.
    pub fn requested(requested: &Option<T>, current: &T) -> Option<Self> {
        requested.as_ref().and_then(|new| Change::between(current.clone(), new.clone()))
    }
}

/// The `allowedIps` list of a credential.
pub type AllowedIps = Vec<IpMask>;
