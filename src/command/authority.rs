//! The authority check of the decide step: whether the principal writing a
//! command may make the change its events describe. Three rules, each decided
//! here and nowhere else (docs/auth.md):
//!
//! 1. **No growth past the writer.** After the command, no principal it
//!    touches — an account, each of its credentials, the members of a group it
//!    changes, every holder of a role it changes — holds a permission it did not
//!    hold before unless the writer holds it too. A credential whose secret or
//!    second-factor seed is new, whose second factor is turned off, or (a
//!    Password) that changes at all is a new holder: all its rights count as
//!    new, and on another's account all that account's rights do. A credential whose `allowedIps` or `expiresAt` widen, or
//!    that gains any right, must stay within the writer's own credential's
//!    addresses and lifetime.
//! 2. **Self-service is by permission.** An account changing its own
//!    credentials without `sysAccountUpdate` needs the permission of each change
//!    (`sysAccountPasswordUpdate`, `sysApiKeyCreate`, …), as Stalwart's User
//!    role grants them; nothing else of itself.
//! 3. **A tenant stays in its tenant.** A principal of a tenant puts its
//!    accounts, their addresses and their group memberships only in its own
//!    tenant's domains and groups (shared ones included are not its to use);
//!    anything else is answered as if it did not exist.
//! 4. **The second factor guards the Password.** An account with `otpAuth` set
//!    changes or removes its Password (secret, second factor, limits) only when
//!    it logged in with that Password and a current code.
//!
//! Pure: the caller hands in the state before and after (as [`Held`] maps) and
//! the events; time and identity arrive with the [`Writer`].

use std::collections::{BTreeMap, BTreeSet};

use ledger_events::model::{AccountKind, CredentialKind};
use ledger_events::values::{ExternalId, ObjectId, SecretHash, UtcDateTime};
use ledger_events::{Event, ObjectType};
use ledger_projections::{StateRead, state};

use super::account_spec::{no_such_domain, no_such_group};
use super::{Command, Rejection};
use crate::auth::permissions::{Bounds, PermissionSet, self_service};
use crate::auth::{effective_permissions, login_still_there};

/// The principal a command is written by, as the authority check sees it.
#[derive(Debug, Clone)]
pub struct Writer {
    /// `None` for the fallback administrator.
    pub account_id: Option<ObjectId>,
    /// The credential the writer logged in with (`None`: the fallback administrator).
    pub credential_id: Option<ObjectId>,
    /// Its effective permissions, after its credential's narrowing.
    pub permissions: PermissionSet,
    /// Where and until when its credential may be used.
    pub bounds: Bounds,
    pub tenant: Option<ExternalId>,
    /// The credential's secret hash at login: a changed secret ends its rights.
    pub secret: Option<SecretHash>,
}

impl Writer {
    /// The writer as it stands in `view` at `now`: its credential must still
    /// be there with the same secret, unexpired, in the same tenant; its
    /// permissions are recomputed (roles, groups and modes may have changed
    /// since it logged in). A removed or expired credential writes nothing, even
    /// in a request that was let in before.
    pub(crate) fn as_of(&self, view: &impl StateRead, now: UtcDateTime) -> Result<Writer, Rejection> {
        let Some(account_id) = self.account_id else { return Ok(self.clone()) };
        let gone = || Rejection::Forbidden { description: "this principal's credential is no longer valid".to_owned() };
        let (Some(credential_id), Some(secret)) = (self.credential_id, self.secret.as_ref()) else {
            return Err(gone());
        };
        let (account, credential) =
            login_still_there(view, account_id, credential_id, secret, self.tenant.as_ref())?.ok_or_else(gone)?;
        if credential.expires_at.is_some_and(|at| at <= now) {
            return Err(gone());
        }
        Ok(Writer {
            permissions: effective_permissions(view, &account)?.narrowed(credential.permissions.as_ref()),
            bounds: Bounds::of(&credential),
            ..self.clone()
        })
    }
}

/// A principal that may act: an account itself (`credential: None`) or one
/// of its credentials.
pub(crate) type PrincipalKey = (ObjectId, Option<ObjectId>);

/// What one principal holds at one moment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Held {
    permissions: PermissionSet,
    bounds: Bounds,
    /// Who can present it: the credential's stored secret hash.
    secret: Option<SecretHash>,
    otp: bool,
    /// The sealed second-factor seed: a new seed is a new holder.
    otp_seal: Option<String>,
    /// A Password: any change to it (limits included) is a new holder.
    password: bool,
    tenant: Option<ExternalId>,
}

impl Held {
    /// Whether `self` (after a write) is held by someone else than `was`: a
    /// new secret or second-factor seed, a second factor turned off, another
    /// tenant, or any change to a Password's own fields.
    fn new_holder_since(&self, was: &Held) -> bool {
        was.secret != self.secret
            || was.otp_seal != self.otp_seal
            || (was.otp && !self.otp)
            || was.tenant != self.tenant
            || (self.password && (was.bounds != self.bounds || was.otp != self.otp))
    }
}

/// The accounts whose rights `events` may change: each account an event is
/// about, the members of each group among them, every holder (directly or
/// through a group) of a role an event changes or of a role extending it, and
/// every account of a tenant an event changes.
pub(crate) fn touched(view: &impl StateRead, events: &[Event]) -> Result<BTreeSet<ObjectId>, Rejection> {
    let mut subjects = BTreeSet::new();
    let mut roles = BTreeSet::new();
    for event in events {
        match event.subject() {
            Some((ObjectType::Account, id)) if changes_rights(event) => {
                subjects.insert(id);
            }
            Some((ObjectType::Role, id)) if !matches!(event, Event::RoleCreated(_)) => {
                roles.insert(id);
            }
            // A tenant's disabled permissions bind its accounts: lifting one
            // gives them back a right.
            Some((ObjectType::Tenant, id)) if matches!(event, Event::TenantUpdated(_)) => {
                subjects.extend(state::tenant_accounts(view, &id.to_jmap(), usize::MAX)?);
            }
            _ => {}
        }
    }
    let mut accounts = subjects.clone();
    for id in subjects {
        if state::account(view, id)?.is_some_and(|a| a.kind == AccountKind::Group) {
            accounts.extend(state::group_members(view, id)?);
        }
    }
    // A change to a role reaches the holders of every role that extends it.
    let all_roles = state::roles(view)?;
    let mut reached = roles.clone();
    let mut stack: Vec<ObjectId> = roles.into_iter().collect();
    while let Some(changed) = stack.pop() {
        for r in all_roles.iter().filter(|r| r.role_ids.contains(&changed)) {
            if reached.insert(r.id) {
                stack.push(r.id);
            }
        }
    }
    for role in reached {
        for holder in state::role_holders(view, role)? {
            accounts.insert(holder);
            if state::account(view, holder)?.is_some_and(|a| a.kind == AccountKind::Group) {
                accounts.extend(state::group_members(view, holder)?);
            }
        }
    }
    Ok(accounts)
}

/// Whether an account event can change what the account, its credentials or
/// (for a group) its members may do: descriptions, names, aliases and quotas
/// cannot, so they touch no principal.
fn changes_rights(event: &Event) -> bool {
    match event {
        Event::AccountCreated(_)
        | Event::AccountDestroyed(_)
        | Event::RolesChanged(_)
        | Event::PermissionsChanged(_)
        | Event::GroupMembershipChanged(_)
        | Event::CredentialAdded(_)
        | Event::CredentialUpdated(_)
        | Event::CredentialRemoved(_) => true,
        Event::AccountUpdated(e) => e.member_tenant_id.is_some(),
        _ => false,
    }
}

impl Writer {
    /// Whether nothing can exceed this writer: every permission, none
    /// disabled, no address or lifetime bounds, no tenant (the fallback
    /// administrator, an unrestricted Admin). Rule 1 then holds by itself.
    pub(crate) fn unlimited(&self) -> bool {
        self.permissions.all
            && self.permissions.denied.is_empty()
            && self.bounds == Bounds::default()
            && self.tenant.is_none()
    }
}

/// What each principal of `accounts` holds in `view`.
pub(crate) fn held(
    view: &impl StateRead,
    accounts: &BTreeSet<ObjectId>,
) -> Result<BTreeMap<PrincipalKey, Held>, Rejection> {
    let mut out = BTreeMap::new();
    for id in accounts {
        let Some(account) = state::account(view, *id)? else { continue };
        let set = effective_permissions(view, &account)?;
        let tenant = account.member_tenant_id.clone();
        for c in &account.credentials {
            out.insert(
                (account.id, Some(c.id)),
                Held {
                    permissions: set.clone().narrowed(c.permissions.as_ref()),
                    bounds: Bounds::of(c),
                    secret: Some(c.secret_hash.clone()),
                    otp: c.otp_enabled,
                    otp_seal: c.otp_auth_sealed.clone(),
                    password: c.kind == CredentialKind::Password,
                    tenant: tenant.clone(),
                },
            );
        }
        out.insert(
            (account.id, None),
            Held {
                permissions: set,
                bounds: Bounds::default(),
                secret: None,
                otp: false,
                otp_seal: None,
                password: false,
                tenant,
            },
        );
    }
    Ok(out)
}

/// Rule 1: compares what every touched principal held before and after.
pub(crate) fn check_growth(
    writer: &Writer,
    before: &BTreeMap<PrincipalKey, Held>,
    after: &BTreeMap<PrincipalKey, Held>,
) -> Result<(), Rejection> {
    let empty = PermissionSet::default();
    for (key, now) in after {
        let was = before.get(key).filter(|was| !now.new_holder_since(was));
        // A new holder on another account acts as that account (the log names
        // it): the writer must hold all the account's rights, not only the
        // credential's.
        let rights = match (was, after.get(&(key.0, None))) {
            (None, Some(account)) if key.1.is_some() && writer.account_id != Some(key.0) => &account.permissions,
            _ => &now.permissions,
        };
        let grown = rights.growth_beyond(was.map_or(&empty, |w| &w.permissions), &writer.permissions);
        if !grown.is_empty() {
            return Err(Rejection::Forbidden {
                description: format!(
                    "{} would hold {}, which this principal does not hold",
                    who(key),
                    grown.join(", ")
                ),
            });
        }
        // What the write gives a credential — wider bounds, or any right it did
        // not hold — must not reach past the writer's own addresses and lifetime:
        // a temporary key cannot make a permanent one (or a permanent holder).
        // (Unchanged bounds are compared for equality first: linear, where
        // `within` compares every network with every other.)
        let widened = was.is_none_or(|was| now.bounds != was.bounds && !now.bounds.within(&was.bounds));
        let gained = !now.permissions.growth_beyond(was.map_or(&empty, |w| &w.permissions), &empty).is_empty();
        if key.1.is_some() && (widened || gained) && !now.bounds.within(&writer.bounds) {
            return Err(Rejection::Forbidden {
                description: format!(
                    "{} would be usable from addresses or for longer than this principal's own credential",
                    who(key)
                ),
            });
        }
        if was.is_none() && writer.tenant.is_some() && now.tenant != writer.tenant {
            return Err(Rejection::Forbidden { description: format!("{} would be outside your tenant", who(key)) });
        }
    }
    Ok(())
}

fn who((account, credential): &PrincipalKey) -> String {
    match credential {
        Some(c) => format!("credential {c} of account {account}"),
        None => format!("account {account}"),
    }
}

/// Rule 3: where a tenant principal may put accounts, addresses and
/// memberships: only its own tenant's domains and groups, for every address or
/// membership the command sets anew. Checked on the command, before decide, so
/// nothing decide would say about an address elsewhere (taken or free) reaches
/// it; the answer is the one a missing domain or group gets. `view` is the
/// state before the command.
pub(crate) fn check_tenant_bounds(writer: &Writer, view: &impl StateRead, command: &Command) -> Result<(), Rejection> {
    let Some(tenant) = &writer.tenant else { return Ok(()) };
    let own_domain = |property: &str, id: ObjectId| -> Result<(), Rejection> {
        match state::domain(view, id)? {
            Some(d) if d.member_tenant_id.as_ref() == Some(tenant) => Ok(()),
            _ => Err(no_such_domain(property, id)),
        }
    };
    let own_group = |property: &str, id: ObjectId| -> Result<(), Rejection> {
        match state::account(view, id)? {
            Some(g) if g.kind == AccountKind::Group && g.member_tenant_id.as_ref() == Some(tenant) => Ok(()),
            _ => Err(no_such_group(property, id)),
        }
    };
    match command {
        Command::CreateAccount(c) => {
            own_domain("domainId", c.domain_id)?;
            for (i, alias) in c.aliases.iter().enumerate() {
                own_domain(&format!("aliases/{i}/domainId"), alias.domain_id)?;
            }
            for (i, group) in c.member_group_ids.iter().enumerate() {
                own_group(&format!("memberGroupIds/{i}"), *group)?;
            }
        }
        Command::UpdateAccount(u) => {
            let Some(old) = state::account(view, u.id)? else { return Ok(()) };
            let name = u.name.as_ref().unwrap_or(&old.name);
            let domain = u.domain_id.unwrap_or(old.domain_id);
            if (name, domain) != (&old.name, old.domain_id) {
                own_domain("domainId", domain)?;
            }
            for (i, alias) in u.aliases.iter().flatten().enumerate() {
                let same = old.aliases.get(i).is_some_and(|o| o.name == alias.name && o.domain_id == alias.domain_id);
                if !same {
                    own_domain(&format!("aliases/{i}/domainId"), alias.domain_id)?;
                }
            }
            for (i, group) in u.member_group_ids.iter().flatten().enumerate() {
                if !old.member_group_ids.contains(group) {
                    own_group(&format!("memberGroupIds/{i}"), *group)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Rules 2 and 4: what the writer's own account may change of itself. `view`
/// is the state before the events.
pub(crate) fn check_self_service(writer: &Writer, view: &impl StateRead, events: &[Event]) -> Result<(), Rejection> {
    let Some(me) = writer.account_id else { return Ok(()) };
    let mine: Vec<&Event> =
        events.iter().filter(|e| matches!(e.subject(), Some((ObjectType::Account, id)) if id == me)).collect();
    if mine.is_empty() {
        return Ok(());
    }
    let Some(account) = state::account(view, me)? else { return Ok(()) };
    let password = account.credentials.iter().find(|c| c.kind == CredentialKind::Password);
    let kind_of = |id: ObjectId| account.credentials.iter().find(|c| c.id == id).map(|c| c.kind);
    let general = writer.permissions.may("sysAccountUpdate");
    for event in mine {
        let (kind, needed) = match event {
            Event::CredentialAdded(c) => (Some(c.kind), create_permission(c.kind)),
            Event::CredentialUpdated(c) => {
                let kind = kind_of(c.credential_id);
                (kind, kind.map_or("sysAccountUpdate", update_permission))
            }
            Event::CredentialRemoved(c) => (Some(c.kind), destroy_permission(c.kind)),
            _ => (None, "sysAccountUpdate"),
        };
        if !general && !writer.permissions.may(needed) {
            return Err(Rejection::Forbidden { description: format!("{needed} is required") });
        }
        let second_factor = password.is_some_and(|p| p.otp_enabled);
        let proved = password.is_some_and(|p| writer.credential_id == Some(p.id));
        if kind == Some(CredentialKind::Password) && second_factor && !proved {
            return Err(Rejection::Forbidden {
                description: "the Password of an account with a second factor changes only after a login with \
                              that Password and a current code"
                    .to_owned(),
            });
        }
    }
    Ok(())
}

fn create_permission(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::Password => self_service::PASSWORD_UPDATE,
        CredentialKind::AppPassword => self_service::APP_PASSWORD_CREATE,
        CredentialKind::ApiKey => self_service::API_KEY_CREATE,
    }
}

fn update_permission(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::Password => self_service::PASSWORD_UPDATE,
        CredentialKind::AppPassword => self_service::APP_PASSWORD_UPDATE,
        CredentialKind::ApiKey => self_service::API_KEY_UPDATE,
    }
}

fn destroy_permission(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::Password => self_service::PASSWORD_UPDATE,
        CredentialKind::AppPassword => self_service::APP_PASSWORD_DESTROY,
        CredentialKind::ApiKey => self_service::API_KEY_DESTROY,
    }
}
