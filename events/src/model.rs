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

/// Stalwart's `x:Domain` settings beyond the directory's, carried whole by
/// DomainCreated and DomainUpdated since their schema version 3 (absent in
/// older payloads: [`DomainSettings::default`]). The ledger records them; it
/// manages no DNS, DKIM keys or certificates itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DomainSettings {
    /// Other domain names that are aliases of this one.
    pub aliases: Vec<crate::values::DomainName>,
    pub is_enabled: bool,
    pub catch_all_address: Option<String>,
    pub allow_relaying: bool,
    pub sub_addressing: SubAddressing,
    pub report_address_uri: Option<String>,
    pub logo: Option<String>,
    /// An external directory's id (the ledger holds no `x:Directory`).
    pub directory_id: Option<ExternalId>,
    pub certificate_management: CertificateManagement,
    pub dkim_management: DkimManagement,
    pub dns_management: DnsManagement,
}

impl Default for DomainSettings {
    /// Stalwart's defaults: enabled, `mailto:postmaster` reports, sub-addressing on, manual management.
    fn default() -> Self {
        DomainSettings {
            aliases: Vec::new(),
            is_enabled: true,
            catch_all_address: None,
            allow_relaying: false,
            sub_addressing: SubAddressing::Enabled,
            report_address_uri: Some("mailto:postmaster".to_owned()),
            logo: None,
            directory_id: None,
            certificate_management: CertificateManagement::Manual,
            dkim_management: DkimManagement::Manual,
            dns_management: DnsManagement::Manual,
        }
    }
}

/// `x:SubAddressing` (the ledger keeps `Enabled` and `Disabled`; Stalwart's
/// `Custom` rule expressions are not served).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum SubAddressing {
    Enabled,
    Disabled,
}

/// `x:CertificateManagement`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum CertificateManagement {
    Manual,
    Automatic(CertificateManagementProperties),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateManagementProperties {
    /// An ACME provider's id in the mail server (not an object of the ledger).
    pub acme_provider_id: ExternalId,
    #[serde(default)]
    pub subject_alternative_names: Vec<String>,
}

/// `x:DkimManagement`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum DkimManagement {
    Automatic(DkimManagementProperties),
    Manual,
}

/// Durations in milliseconds, as Stalwart's schema gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DkimManagementProperties {
    #[serde(default = "default_dkim_algorithms")]
    pub algorithms: Vec<DkimSignatureType>,
    #[serde(default = "default_delete_after")]
    pub delete_after: u64,
    #[serde(default = "default_retire_after")]
    pub retire_after: u64,
    #[serde(default = "default_rotate_after")]
    pub rotate_after: u64,
    #[serde(default = "default_selector_template")]
    pub selector_template: String,
}

fn default_dkim_algorithms() -> Vec<DkimSignatureType> {
    vec![DkimSignatureType::Dkim1Ed25519Sha256, DkimSignatureType::Dkim1RsaSha256]
}
fn default_delete_after() -> u64 {
    2_592_000_000
}
fn default_retire_after() -> u64 {
    604_800_000
}
fn default_rotate_after() -> u64 {
    7_776_000_000
}
fn default_selector_template() -> String {
    "v{version}-{algorithm}-{date-%Y%m%d}".to_owned()
}

/// Stalwart's `DkimSignatureType` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DkimSignatureType {
    Dkim1Ed25519Sha256,
    Dkim1RsaSha256,
    Dkim2Ed25519Sha256,
    Dkim2RsaSha256,
}

impl DkimSignatureType {
    pub const ALL: [&'static str; 4] = ["Dkim1Ed25519Sha256", "Dkim1RsaSha256", "Dkim2Ed25519Sha256", "Dkim2RsaSha256"];
}

/// `x:DnsManagement`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum DnsManagement {
    Manual,
    Automatic(DnsManagementProperties),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsManagementProperties {
    /// A DNS server's id in the mail server (not an object of the ledger).
    pub dns_server_id: ExternalId,
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default = "all_record_types")]
    pub publish_records: Vec<DnsRecordType>,
}

fn all_record_types() -> Vec<DnsRecordType> {
    use DnsRecordType::*;
    vec![Dkim, Spf, Mx, Dmarc, Srv, MtaSts, TlsRpt, Caa, AutoConfig, AutoConfigLegacy, AutoDiscover]
}

/// Stalwart's `DnsRecordType` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DnsRecordType {
    Dkim,
    Tlsa,
    Spf,
    Mx,
    Dmarc,
    Srv,
    MtaSts,
    TlsRpt,
    Caa,
    AutoConfig,
    AutoConfigLegacy,
    AutoDiscover,
}

impl DnsRecordType {
    pub const ALL: [&'static str; 12] = [
        "dkim",
        "tlsa",
        "spf",
        "mx",
        "dmarc",
        "srv",
        "mtaSts",
        "tlsRpt",
        "caa",
        "autoConfig",
        "autoConfigLegacy",
        "autoDiscover",
    ];
}
