//! Effective permissions: roles, group membership and permission modes folded into
//! one set, then narrowed by the credential used. Pure: the caller supplies the
//! accounts and roles involved.

use std::collections::BTreeSet;

use ipnet::IpNet;
use ledger_events::model::{CredentialPermissions, Permissions, Roles};
use ledger_events::values::{ObjectId, Permission, UtcDateTime};
use ledger_projections::{AccountState, CredentialState};

/// The ledger's own permissions beyond those of its JMAP objects (which are
/// the object's prefix and a verb, `sysAccountGet`; see `jmap::object`). Each
/// is for the whole ledger: a tenant-scoped principal never has it
/// ([`crate::auth::Principal::may_globally`]).
pub(crate) mod ledger_wide {
    /// `GET /api/feed`: the change feed.
    pub(crate) const FEED_READ: &str = "sysFeedRead";
    /// `GET /api/audit/export` and `/api/audit/checkpoint`.
    pub(crate) const AUDIT_EXPORT: &str = "sysAuditExport";
    /// `x:Account/reportUsage`: quota usage from mail stores.
    pub(crate) const ACCOUNT_REPORT_USAGE: &str = "sysAccountReportUsage";
    /// `x:Database/erase`: erasure of personal data.
    pub(crate) const DATABASE_ERASE: &str = "sysDatabaseErase";
    /// `x:Database/purge`: expired credentials and old change tracking.
    pub(crate) const DATABASE_PURGE: &str = "sysDatabasePurge";
    /// `GET /api/backup`: the whole log as stored, sealed secrets included.
    pub(crate) const DATABASE_BACKUP: &str = "sysDatabaseBackup";
}

/// What the `User` role grants: self-service, as Stalwart's User role holds it
/// (Stalwart `Permission` enum). An account without it — a `Custom` role that
/// leaves it out, or a credential narrowed to exclude it — cannot read or
/// change even itself.
pub(crate) mod self_service {
    /// `x:Account/get` of one's own account, by id.
    pub(crate) const ACCOUNT_READ: &str = "sysAccountSettingsGet";
    /// Set, change or remove one's own Password (secret, `otpAuth`, limits).
    pub(crate) const PASSWORD_UPDATE: &str = "sysAccountPasswordUpdate";
    pub(crate) const APP_PASSWORD_CREATE: &str = "sysAppPasswordCreate";
    pub(crate) const APP_PASSWORD_UPDATE: &str = "sysAppPasswordUpdate";
    pub(crate) const APP_PASSWORD_DESTROY: &str = "sysAppPasswordDestroy";
    pub(crate) const API_KEY_CREATE: &str = "sysApiKeyCreate";
    pub(crate) const API_KEY_UPDATE: &str = "sysApiKeyUpdate";
    pub(crate) const API_KEY_DESTROY: &str = "sysApiKeyDestroy";

    /// Every permission of the `User` role.
    pub(crate) const USER_ROLE: &[&str] = &[
        ACCOUNT_READ,
        "sysAccountPasswordGet",
        PASSWORD_UPDATE,
        "sysAppPasswordGet",
        APP_PASSWORD_CREATE,
        APP_PASSWORD_UPDATE,
        APP_PASSWORD_DESTROY,
        "sysApiKeyGet",
        API_KEY_CREATE,
        API_KEY_UPDATE,
        API_KEY_DESTROY,
    ];
}

/// What a principal may do. `denied` always wins over `all` and `granted`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet {
    pub all: bool,
    pub granted: BTreeSet<String>,
    pub denied: BTreeSet<String>,
}

impl PermissionSet {
    pub fn everything() -> Self {
        PermissionSet { all: true, ..Default::default() }
    }

    pub fn may(&self, permission: &str) -> bool {
        (self.all || self.granted.contains(permission)) && !self.denied.contains(permission)
    }

    /// The permissions `self` has that neither `before` nor `writer` has: what a
    /// write gave a principal beyond its writer. `"every permission"` stands for
    /// the names no list mentions (an `Admin` the writer is not). Empty when
    /// nothing grew past the writer.
    pub(crate) fn growth_beyond(&self, before: &PermissionSet, writer: &PermissionSet) -> Vec<String> {
        let named: BTreeSet<&String> =
            [self, before, writer].into_iter().flat_map(|s| s.granted.iter().chain(s.denied.iter())).collect();
        let mut grown: Vec<String> =
            named.into_iter().filter(|p| self.may(p) && !before.may(p) && !writer.may(p)).cloned().collect();
        if self.all && !before.all && !writer.all {
            grown.push("every permission".to_owned());
        }
        grown
    }

    fn union(mut self, other: PermissionSet) -> Self {
        self.all |= other.all;
        self.granted.extend(other.granted);
        self.denied.extend(other.denied);
        self
    }

    pub(crate) fn of(list: &[Permission]) -> BTreeSet<String> {
        list.iter().map(|p| p.as_str().to_owned()).collect()
    }

    /// Narrows by the permissions of an AppPassword or ApiKey: never wider than
    /// the account.
    pub fn narrowed(self, by: Option<&CredentialPermissions>) -> Self {
        match by {
            None | Some(CredentialPermissions::Inherit) => self,
            Some(CredentialPermissions::Disable(list)) => {
                let mut out = self;
                out.denied.extend(Self::of(&list.permissions));
                out
            }
            Some(CredentialPermissions::Replace(list)) => {
                let granted = Self::of(&list.permissions).into_iter().filter(|p| self.may(p)).collect();
                PermissionSet { all: false, granted, denied: self.denied }
            }
        }
    }
}

/// Where and until when a credential may be used: its `allowedIps` (empty:
/// anywhere) and `expiresAt` (`None`: never expires). Account page,
/// `SecondaryCredential` / `PasswordCredential`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bounds {
    pub allowed_ips: Vec<IpNet>,
    pub expires_at: Option<UtcDateTime>,
}

impl Bounds {
    /// The bounds of a stored credential.
    pub(crate) fn of(credential: &CredentialState) -> Self {
        Bounds {
            allowed_ips: credential.allowed_ips.iter().map(|m| m.net()).collect(),
            expires_at: credential.expires_at,
        }
    }

    /// Whether every address and instant these bounds allow, `outer` allows too.
    pub(crate) fn within(&self, outer: &Bounds) -> bool {
        let addresses = outer.allowed_ips.is_empty()
            || (!self.allowed_ips.is_empty()
                && self.allowed_ips.iter().all(|net| outer.allowed_ips.iter().any(|o| o.contains(net))));
        let lifetime = match (outer.expires_at, self.expires_at) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(limit), Some(at)) => at <= limit,
        };
        addresses && lifetime
    }

    /// Whether a credential with these bounds may be used from `ip` at `now`.
    pub(crate) fn allow(&self, ip: std::net::IpAddr, now: UtcDateTime) -> bool {
        let fresh = self.expires_at.is_none_or(|at| at > now);
        fresh && (self.allowed_ips.is_empty() || self.allowed_ips.iter().any(|net| net.contains(&ip)))
    }
}

/// What one `x:Role` grants, with the roles it extends folded in: every
/// enabled permission, and every disabled one (disabled always wins).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RoleGrant {
    pub(crate) enabled: Vec<Permission>,
    pub(crate) disabled: Vec<Permission>,
}

/// What roles grant: Admin everything, Custom the union of its roles (minus
/// what any of them disables), User self-service
/// ([`self_service::USER_ROLE`]), a group's Default nothing.
pub(crate) fn role_permissions(roles: &Roles, role_lookup: &dyn Fn(ObjectId) -> Option<RoleGrant>) -> PermissionSet {
    match roles {
        Roles::Admin => PermissionSet::everything(),
        Roles::User => PermissionSet {
            granted: self_service::USER_ROLE.iter().map(|p| (*p).to_owned()).collect(),
            ..Default::default()
        },
        Roles::Default => PermissionSet::default(),
        Roles::Custom { role_ids } => {
            let grants: Vec<RoleGrant> =
                role_ids.iter().filter_map(|id| ObjectId::from_jmap(id.as_str())).filter_map(role_lookup).collect();
            PermissionSet {
                granted: grants.iter().flat_map(|g| PermissionSet::of(&g.enabled)).collect(),
                denied: grants.iter().flat_map(|g| PermissionSet::of(&g.disabled)).collect(),
                ..Default::default()
            }
        }
    }
}

/// Applies an account's own permission mode to what it inherits. What the
/// inherited set disables stays disabled in every mode: disabled always wins,
/// a member's `Replace` included.
fn apply_mode(mode: &Permissions, inherited: PermissionSet) -> PermissionSet {
    match mode {
        Permissions::Inherit => inherited,
        Permissions::Merge(list) => {
            let mut out = inherited;
            out.granted.extend(PermissionSet::of(&list.enabled_permissions));
            out.denied.extend(PermissionSet::of(&list.disabled_permissions));
            out
        }
        Permissions::Replace(list) => {
            let mut denied = inherited.denied;
            denied.extend(PermissionSet::of(&list.disabled_permissions));
            PermissionSet { all: false, granted: PermissionSet::of(&list.enabled_permissions), denied }
        }
    }
}

/// The effective permissions of `account`, a member of `groups`.
pub(crate) fn effective(
    account: &AccountState,
    groups: &[AccountState],
    role_lookup: &dyn Fn(ObjectId) -> Option<RoleGrant>,
) -> PermissionSet {
    let mut inherited = role_permissions(&account.roles, role_lookup);
    for group in groups {
        let group_set = apply_mode(&group.permissions, role_permissions(&group.roles, role_lookup));
        inherited = inherited.union(group_set);
    }
    apply_mode(&account.permissions, inherited)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_events::model::{CredentialPermissionsList, PermissionsList};

    fn p(list: &[&str]) -> Vec<Permission> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn modes_and_precedence() {
        let inherited = PermissionSet { granted: ["a", "b"].map(String::from).into(), ..Default::default() };
        let merge =
            Permissions::Merge(PermissionsList { enabled_permissions: p(&["c"]), disabled_permissions: p(&["a"]) });
        let merged = apply_mode(&merge, inherited.clone());
        assert!(!merged.may("a") && merged.may("b") && merged.may("c"));
        let replace = Permissions::Replace(PermissionsList {
            enabled_permissions: p(&["c", "d"]),
            disabled_permissions: p(&["d"]),
        });
        let replaced = apply_mode(&replace, inherited.clone());
        assert!(!replaced.may("b") && replaced.may("c") && !replaced.may("d"), "disabled wins over enabled");
        let admin = PermissionSet { denied: ["x".to_owned()].into(), ..PermissionSet::everything() };
        assert!(admin.may("anything") && !admin.may("x"), "disabled wins over Admin");
    }

    #[test]
    fn credentials_only_narrow() {
        let account = PermissionSet { granted: ["a", "b"].map(String::from).into(), ..Default::default() };
        let replace = CredentialPermissions::Replace(CredentialPermissionsList { permissions: p(&["a", "z"]) });
        let key = account.clone().narrowed(Some(&replace));
        assert!(key.may("a") && !key.may("b") && !key.may("z"), "z is not the account's to give");
        let disable = CredentialPermissions::Disable(CredentialPermissionsList { permissions: p(&["a"]) });
        let key = account.clone().narrowed(Some(&disable));
        assert!(!key.may("a") && key.may("b"));
        assert_eq!(account.clone().narrowed(Some(&CredentialPermissions::Inherit)), account);
    }
}
