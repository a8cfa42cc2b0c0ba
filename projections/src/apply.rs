//! The fold: one event and the state before it give the key writes after it.
//!
//! `apply` is pure over a [`StateRead`]: no clock, no randomness, no I/O of its own.
//! The live writer and `rebuild` both call it, so replay gives the same bytes as live.

use std::collections::{BTreeMap, BTreeSet};

use ledger_events::codec::{seq_key, to_json};
use ledger_events::values::{ExternalId, ObjectId};
use ledger_events::{Event, ObjectType, RecordHeader};

use crate::changes::{ChangeEntry, ChangeKind};
use crate::error::{Error, Result};
use crate::index;
use crate::keys;
use crate::state::{self, AccountState, AliasState, CredentialState, DomainState, RoleState, TenantState};
use crate::view::{Mutation, Space, StateRead};

/// The writes that fold `event` (recorded under `header`) into the state `view` shows.
pub fn apply(view: &impl StateRead, header: &RecordHeader, event: &Event) -> Result<Vec<Mutation>> {
    let Some((object_type, id)) = event.subject() else { return apply_maintenance(view, header, event) };
    let fail = |why: &str| Error::Inconsistent(format!("position {}: {} {}: {why}", header.seq, event.type_name(), id));
    let mut out = Vec::new();
    let mut tenants = Vec::new();
    let mut belongs = |t: Option<&ExternalId>| {
        if let Some(t) = t.filter(|t| !tenants.contains(*t)) {
            tenants.push(t.clone());
        }
    };
    match object_type {
        ObjectType::Account => {
            let old = state::account(view, id)?;
            let new = fold_account(old.clone(), event).map_err(fail)?;
            belongs(old.as_ref().and_then(|a| a.member_tenant_id.as_ref()));
            belongs(new.as_ref().and_then(|a| a.member_tenant_id.as_ref()));
            put_object(&mut out, Space::Accounts, id, new.as_ref().map(to_json));
            index::diff_account_index(&mut out, old.as_ref(), new.as_ref());
            out.push(Mutation { space: Space::Index, key: keys::history(id, header.seq), value: Some(Vec::new()) });
            if let Event::AccountErased(e) = event {
                erased_bookkeeping(view, e, &mut out)?;
            }
        }
        ObjectType::Role => {
            let old = state::role(view, id)?;
            let new = fold_role(old.clone(), event).map_err(fail)?;
            put_object(&mut out, Space::Roles, id, new.as_ref().map(to_json));
        }
        ObjectType::Tenant => {
            let old = state::tenant(view, id)?;
            let new = fold_tenant(old, event).map_err(fail)?;
            // A tenant's principals see changes to their own tenant.
            if let Ok(own) = id.to_jmap().parse::<ExternalId>() {
                belongs(Some(&own));
            }
            put_object(&mut out, Space::Tenants, id, new.as_ref().map(to_json));
        }
        ObjectType::Domain => {
            let old = state::domain(view, id)?;
            let new = fold_domain(old.clone(), event).map_err(fail)?;
            belongs(old.as_ref().and_then(|d| d.member_tenant_id.as_ref()));
            belongs(new.as_ref().and_then(|d| d.member_tenant_id.as_ref()));
            put_object(&mut out, Space::Domains, id, new.as_ref().map(to_json));
            index::diff_index(&mut out, index::domain_index(old.as_ref()), index::domain_index(new.as_ref()));
        }
    }

    let change = ChangeEntry { id, kind: ChangeKind::of(event), commit: header.commit.commit_id, tenants };
    out.push(Mutation {
        space: Space::Changes,
        key: keys::change(object_type, header.seq),
        value: Some(change.encode()),
    });

    let seq = seq_key(header.seq).to_vec();
    out.push(Mutation { space: Space::Meta, key: keys::META_APPLIED_SEQ.to_vec(), value: Some(seq.clone()) });
    out.push(Mutation { space: Space::Meta, key: keys::meta_type_state(object_type), value: Some(seq) });
    if let Some(allocated) = allocated_id(event) {
        let next = state::next_object_id(view)?.max(allocated.0 + 1);
        out.push(Mutation {
            space: Space::Meta,
            key: keys::META_NEXT_ID.to_vec(),
            value: Some(seq_key(next).to_vec()),
        });
    }
    Ok(out)
}

/// Folds an event of the ledger itself (no object).
fn apply_maintenance(view: &impl StateRead, header: &RecordHeader, event: &Event) -> Result<Vec<Mutation>> {
    let mut out = Vec::new();
    if let Event::ChangesTrimmed(e) = event {
        for key in trimmed_changes(view, e.before)? {
            out.push(Mutation { space: Space::Changes, key, value: None });
        }
        out.push(Mutation {
            space: Space::Meta,
            key: keys::META_CHANGES_FROM.to_vec(),
            value: Some(seq_key(e.before).to_vec()),
        });
    }
    out.push(Mutation {
        space: Space::Meta,
        key: keys::META_APPLIED_SEQ.to_vec(),
        value: Some(seq_key(header.seq).to_vec()),
    });
    Ok(out)
}

/// What a record whose payload was erased still contributes on replay: its
/// position. Its history and change entries come back with the AccountErased
/// event that lists it.
pub fn apply_erased(header: &RecordHeader) -> Vec<Mutation> {
    let seq = seq_key(header.seq).to_vec();
    vec![
        Mutation { space: Space::Meta, key: keys::META_APPLIED_SEQ.to_vec(), value: Some(seq.clone()) },
        Mutation { space: Space::Meta, key: keys::meta_type_state(ObjectType::Account), value: Some(seq) },
    ]
}

/// The change-tracking keys `view` holds below position `before`, in key
/// order: what a `ChangesTrimmed` removes.
pub(crate) fn trimmed_changes(view: &impl StateRead, before: u64) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for t in ObjectType::ALL {
        let start = keys::change(t, 0);
        for (key, _) in view.scan(Space::Changes, &[t.tag()], Some(&start), usize::MAX)? {
            if keys::change_position(&key).unwrap_or(u64::MAX) >= before {
                break;
            }
            out.push(key);
        }
    }
    Ok(out)
}

/// The change entries of the records an `AccountErased` lists, by position,
/// identical to the ones they wrote when they happened (except the tenants:
/// which tenant an erased account was in is not kept, so tenant principals
/// are not told of its changes).
pub(crate) fn erased_changes(e: &ledger_events::AccountErased) -> Result<Vec<(u64, ChangeEntry)>> {
    e.erased
        .iter()
        .map(|r| {
            let commit = uuid::Uuid::parse_str(&r.commit_id)
                .map_err(|_| Error::Inconsistent(format!("AccountErased lists a bad commit id {:?}", r.commit_id)))?;
            let kind = ChangeKind::from_name(&r.change);
            Ok((r.position, ChangeEntry { id: e.account_id, kind, commit, tenants: Vec::new() }))
        })
        .collect()
}

/// Re-creates the history and change entries of erased records, and keeps
/// the id counter past them.
fn erased_bookkeeping(view: &impl StateRead, e: &ledger_events::AccountErased, out: &mut Vec<Mutation>) -> Result<()> {
    for (position, change) in erased_changes(e)? {
        out.push(Mutation { space: Space::Index, key: keys::history(e.account_id, position), value: Some(Vec::new()) });
        out.push(Mutation {
            space: Space::Changes,
            key: keys::change(ObjectType::Account, position),
            value: Some(change.encode()),
        });
    }
    let next = state::next_object_id(view)?.max(e.max_allocated_id.0 + 1);
    out.push(Mutation { space: Space::Meta, key: keys::META_NEXT_ID.to_vec(), value: Some(seq_key(next).to_vec()) });
    Ok(())
}

/// The id an event brings into use, which the id counter must move past.
pub(crate) fn allocated_id(event: &Event) -> Option<ObjectId> {
    match event {
        Event::AccountCreated(e) => Some(e.account_id),
        Event::DomainCreated(e) => Some(e.domain_id),
        Event::CredentialAdded(e) => Some(e.credential_id),
        Event::RoleCreated(e) => Some(e.role_id),
        Event::TenantCreated(e) => Some(e.tenant_id),
        _ => None,
    }
}

fn put_object(out: &mut Vec<Mutation>, space: Space, id: ObjectId, value: Option<Vec<u8>>) {
    out.push(Mutation { space, key: id.to_be_bytes().to_vec(), value });
}

pub(crate) fn fold_role(old: Option<RoleState>, event: &Event) -> Result<Option<RoleState>, &'static str> {
    match (old, event) {
        (None, Event::RoleCreated(e)) => Ok(Some(RoleState {
            id: e.role_id,
            name: e.name.clone(),
            description: e.description.clone(),
            permissions: e.permissions.clone(),
            disabled_permissions: e.disabled_permissions.clone(),
            role_ids: e.role_ids.clone(),
            member_tenant_id: e.member_tenant_id.clone(),
        })),
        (Some(_), Event::RoleCreated(_)) => Err("role already exists"),
        (Some(mut r), Event::RoleUpdated(e)) => {
            if let Some(c) = &e.name {
                r.name = Some(c.new.clone());
            }
            if let Some(c) = &e.description {
                r.description = c.new.clone();
            }
            if let Some(c) = &e.permissions {
                r.permissions = c.new.clone();
            }
            if let Some(c) = &e.disabled_permissions {
                r.disabled_permissions = c.new.clone();
            }
            if let Some(c) = &e.role_ids {
                r.role_ids = c.new.clone();
            }
            if let Some(c) = &e.member_tenant_id {
                r.member_tenant_id = c.new.clone();
            }
            Ok(Some(r))
        }
        (Some(_), Event::RoleDestroyed(_)) => Ok(None),
        (None, _) => Err("role does not exist"),
        (Some(_), _) => Err("not a role event"),
    }
}

pub(crate) fn fold_tenant(old: Option<TenantState>, event: &Event) -> Result<Option<TenantState>, &'static str> {
    match (old, event) {
        (None, Event::TenantCreated(e)) => Ok(Some(TenantState {
            id: e.tenant_id,
            name: e.name.clone(),
            logo: e.logo.clone(),
            roles: e.roles.clone(),
            permissions: e.permissions.clone(),
            quotas: e.quotas.clone(),
            created_at: e.created_at,
        })),
        (Some(_), Event::TenantCreated(_)) => Err("tenant already exists"),
        (Some(mut t), Event::TenantUpdated(e)) => {
            if let Some(c) = &e.name {
                t.name = c.new.clone();
            }
            if let Some(c) = &e.logo {
                t.logo = c.new.clone();
            }
            if let Some(c) = &e.roles {
                t.roles = c.new.clone();
            }
            if let Some(c) = &e.permissions {
                t.permissions = c.new.clone();
            }
            if let Some(c) = &e.quotas {
                t.quotas = c.new.clone();
            }
            Ok(Some(t))
        }
        (Some(_), Event::TenantDestroyed(_)) => Ok(None),
        (None, _) => Err("tenant does not exist"),
        (Some(_), _) => Err("not a tenant event"),
    }
}

pub(crate) fn fold_domain(old: Option<DomainState>, event: &Event) -> Result<Option<DomainState>, &'static str> {
    match (old, event) {
        (None, Event::DomainCreated(e)) => Ok(Some(DomainState {
            id: e.domain_id,
            name: e.name.clone(),
            description: e.description.clone(),
            created_at: e.created_at,
            member_tenant_id: e.member_tenant_id.clone(),
            settings: e.settings.as_deref().cloned().unwrap_or_default(),
        })),
        (Some(_), Event::DomainCreated(_)) => Err("domain already exists"),
        (Some(mut d), Event::DomainUpdated(e)) => {
            if let Some(c) = &e.settings {
                d.settings = c.new.clone();
            }
            if let Some(c) = &e.description {
                d.description = c.new.clone();
            }
            if let Some(c) = &e.member_tenant_id {
                d.member_tenant_id = c.new.clone();
            }
            Ok(Some(d))
        }
        (Some(_), Event::DomainDestroyed(_)) => Ok(None),
        (None, _) => Err("domain does not exist"),
        (Some(_), _) => Err("not a domain event"),
    }
}

/// One account event folded into the account before it (`None`: it did not
/// exist); `None` after it means destroyed or erased. Used by `apply` and by
/// time travel, which folds an account's own events. The error says why the
/// event does not fit the state (a damaged or misordered log).
pub fn fold_account(old: Option<AccountState>, event: &Event) -> Result<Option<AccountState>, &'static str> {
    let mut a = match (old, event) {
        (None, Event::AccountCreated(e)) => {
            return Ok(Some(AccountState {
                id: e.account_id,
                kind: e.kind,
                name: e.name.clone(),
                domain_id: e.domain_id,
                email_address: e.email_address.clone(),
                description: e.description.clone(),
                locale: e.locale.clone(),
                time_zone: e.time_zone.clone(),
                member_tenant_id: e.member_tenant_id.clone(),
                roles: e.roles.clone(),
                permissions: e.permissions.clone(),
                quotas: e.quotas.clone(),
                usage: BTreeMap::new(),
                aliases: Vec::new(),
                credentials: Vec::new(),
                member_group_ids: Vec::new(),
                encryption_at_rest: e.encryption_at_rest.clone(),
                created_at: e.created_at,
            }));
        }
        (Some(_), Event::AccountCreated(_)) => return Err("account already exists"),
        (None, Event::AccountErased(_)) => return Ok(None),
        // The erasure's own AccountDestroyed is among the records it erases:
        // a node that folds that commit from its records (a cluster node
        // catching up, a replay over an account that existed before) meets
        // the destroy without its payload, so the erasure ends the account.
        (Some(_), Event::AccountErased(_)) => return Ok(None),
        (None, _) => return Err("account does not exist"),
        (Some(_), Event::AccountDestroyed(_)) => return Ok(None),
        (Some(a), _) => a,
    };
    match event {
        Event::AccountUpdated(e) => {
            if let Some(c) = &e.description {
                a.description = c.new.clone();
            }
            if let Some(c) = &e.locale {
                a.locale = c.new.clone();
            }
            if let Some(c) = &e.time_zone {
                a.time_zone = c.new.clone();
            }
            if let Some(c) = &e.member_tenant_id {
                a.member_tenant_id = c.new.clone();
            }
            if let Some(c) = &e.encryption_at_rest {
                a.encryption_at_rest = c.new.clone();
            }
        }
        Event::AccountRenamed(e) => {
            a.name = e.new_name.clone();
            a.domain_id = e.new_domain_id;
            a.email_address = e.new_email_address.clone();
        }
        Event::CredentialAdded(e) => {
            if a.credentials.iter().any(|c| c.id == e.credential_id) {
                return Err("credential already exists");
            }
            a.credentials.push(CredentialState {
                id: e.credential_id,
                kind: e.kind,
                description: e.description.clone(),
                secret_hash: e.secret_hash.clone(),
                expires_at: e.expires_at,
                allowed_ips: e.allowed_ips.clone(),
                permissions: e.permissions.clone(),
                otp_enabled: e.otp_enabled,
                created_at: e.created_at,
                otp_auth_sealed: e.otp_auth_sealed.clone(),
            });
        }
        Event::CredentialRemoved(e) => {
            let before = a.credentials.len();
            a.credentials.retain(|c| c.id != e.credential_id);
            if a.credentials.len() == before {
                return Err("credential does not exist");
            }
        }
        Event::CredentialUpdated(e) => {
            let c = a.credentials.iter_mut().find(|c| c.id == e.credential_id).ok_or("credential does not exist")?;
            if let Some(h) = &e.new_secret_hash {
                c.secret_hash = h.clone();
            }
            if let Some(ch) = &e.description {
                c.description = ch.new.clone();
            }
            if let Some(ch) = &e.expires_at {
                c.expires_at = ch.new;
            }
            if let Some(ch) = &e.allowed_ips {
                c.allowed_ips = ch.new.clone();
            }
            if let Some(ch) = &e.permissions {
                c.permissions = ch.new.clone();
            }
            if let Some(ch) = &e.otp_enabled {
                c.otp_enabled = ch.new;
                if !ch.new {
                    c.otp_auth_sealed = None;
                }
            }
            if let Some(sealed) = &e.new_otp_auth_sealed {
                c.otp_auth_sealed = Some(sealed.clone());
            }
        }
        Event::AliasAdded(e) => {
            if a.aliases.iter().any(|al| al.email_address == e.email_address) {
                return Err("alias already exists");
            }
            a.aliases.push(AliasState {
                name: e.name.clone(),
                domain_id: e.domain_id,
                email_address: e.email_address.clone(),
                enabled: e.enabled,
                description: e.description.clone(),
            });
        }
        Event::AliasRenamed(e) => {
            let al = a
                .aliases
                .iter_mut()
                .find(|al| al.email_address == e.old_email_address)
                .ok_or("alias does not exist")?;
            al.name = e.new_name.clone();
            al.domain_id = e.new_domain_id;
            al.email_address = e.new_email_address.clone();
        }
        Event::AliasUpdated(e) => {
            let al =
                a.aliases.iter_mut().find(|al| al.email_address == e.email_address).ok_or("alias does not exist")?;
            if let Some(c) = &e.enabled {
                al.enabled = c.new;
            }
            if let Some(c) = &e.description {
                al.description = c.new.clone();
            }
        }
        Event::AliasRemoved(e) => {
            let before = a.aliases.len();
            a.aliases.retain(|al| al.email_address != e.email_address);
            if a.aliases.len() == before {
                return Err("alias does not exist");
            }
        }
        Event::GroupMembershipChanged(e) => {
            let mut groups: BTreeSet<ObjectId> = a.member_group_ids.iter().copied().collect();
            for g in &e.left {
                groups.remove(g);
            }
            groups.extend(e.joined.iter().copied());
            a.member_group_ids = groups.into_iter().collect();
        }
        Event::RolesChanged(e) => a.roles = e.new.clone(),
        Event::PermissionsChanged(e) => a.permissions = e.new.clone(),
        Event::QuotaLimitSet(e) => match e.new {
            Some(limit) => {
                a.quotas.insert(e.quota, limit);
            }
            None => {
                a.quotas.remove(&e.quota);
            }
        },
        Event::QuotaUsageChanged(e) => {
            a.usage.insert(e.quota, e.new);
        }
        // A notice for subscribers and auditors; the state is already in `usage`.
        Event::QuotaExceeded(_) => {}
        _ => return Err("not an account event"),
    }
    Ok(Some(a))
}

#[cfg(test)]
pub(crate) mod tests {
    //! An overlay's decoded accounts against writes, removals and rollbacks.

    use ledger_events::AccountCreated;
    use ledger_events::model::{AccountKind, Permissions, Roles};
    use ledger_events::values::UtcDateTime;

    use super::*;

    /// An account folded from its creation.
    pub(crate) fn account() -> AccountState {
        let created = Event::AccountCreated(AccountCreated {
            account_id: ObjectId(7),
            kind: AccountKind::User,
            name: "alice".parse().unwrap(),
            domain_id: ObjectId(2),
            email_address: "alice@example.org".into(),
            description: Some("Head of <b>sales</b>".into()),
            locale: Default::default(),
            time_zone: None,
            member_tenant_id: None,
            roles: Roles::User,
            permissions: Permissions::Inherit,
            quotas: Default::default(),
            encryption_at_rest: None,
            created_at: UtcDateTime::from_millis(1_790_000_000_000),
        });
        fold_account(None, &created).unwrap().unwrap()
    }

    #[test]
    fn an_overlays_decoded_accounts_follow_its_writes_and_rollbacks() {
        use crate::view::{Empty, Overlay};
        let put = |a: &AccountState| {
            let mut out = Vec::new();
            put_object(&mut out, Space::Accounts, a.id, Some(to_json(a)));
            out
        };
        let first = account();
        let mut second = first.clone();
        second.description = Some("second".into());
        let mut overlay = Overlay::new(Empty);
        assert_eq!(state::account(&overlay, first.id).unwrap(), None);
        overlay.apply(put(&first));
        assert_eq!(state::account(&overlay, first.id).unwrap().as_ref(), Some(&first));
        let savepoint = overlay.savepoint();
        overlay.apply(put(&second));
        assert_eq!(state::account(&overlay, first.id).unwrap().as_ref(), Some(&second));
        overlay.rollback(savepoint);
        assert_eq!(state::account(&overlay, first.id).unwrap().as_ref(), Some(&first));
        let mut removal = Vec::new();
        put_object(&mut removal, Space::Accounts, first.id, None);
        overlay.apply(removal);
        assert_eq!(state::account(&overlay, first.id).unwrap(), None);
    }
}
