//! CreateRole, UpdateRole, DestroyRole: `x:Role`, permission sets that
//! `Custom` roles refer to, in Stalwart 0.16's shape: labelled by
//! `description`, enabled and disabled permissions, roles it extends
//! (`roleIds`, no cycles) and a tenant.

use std::collections::{BTreeMap, BTreeSet};

use ledger_events::model::Change;
use ledger_events::values::{ExternalId, ObjectId, Permission};
use ledger_events::{Event, ObjectType, RoleCreated, RoleDestroyed, RoleUpdated};
use ledger_projections::{RoleState, StateRead, state};

use super::{Decision, IdAllocator, LINKED_SHOWN, Rejection, Validation, check_description, check_tenant};

/// The fields of a role, as a create gives them or an update leaves them.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleFields {
    pub description: String,
    pub enabled_permissions: Vec<Permission>,
    pub disabled_permissions: Vec<Permission>,
    pub role_ids: Vec<ObjectId>,
    pub member_tenant_id: Option<ExternalId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateRole {
    pub fields: RoleFields,
}

/// The whole role after a patch.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRole {
    pub id: ObjectId,
    pub fields: RoleFields,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DestroyRole {
    pub id: ObjectId,
}

fn normalized<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut p = items.to_vec();
    p.sort();
    p.dedup();
    p
}

/// Checks the fields of role `this` (`None`: a new one): a label, roles it
/// extends that exist, no cycle through them, an existing tenant.
fn check(view: &impl StateRead, f: &RoleFields, this: Option<ObjectId>) -> Result<(), Rejection> {
    if f.description.trim().is_empty() {
        return Err(Rejection::validation("description", Validation::Required, "a role needs a description"));
    }
    check_description("description", &Some(f.description.clone()))?;
    check_tenant(view, "memberTenantId", f.member_tenant_id.as_ref())?;
    let roles: BTreeMap<ObjectId, RoleState> = state::roles(view)?.into_iter().map(|r| (r.id, r)).collect();
    for (i, id) in f.role_ids.iter().enumerate() {
        if !roles.contains_key(id) {
            return Err(Rejection::foreign_key(
                &format!("roleIds/{i}"),
                ObjectType::Role,
                id.to_jmap(),
                format!("role {id} does not exist"),
            ));
        }
    }
    // A cycle exists if `this` is reachable from the roles it would extend.
    if let Some(this) = this {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<ObjectId> = f.role_ids.clone();
        while let Some(id) = stack.pop() {
            if id == this {
                return Err(Rejection::validation("roleIds", Validation::Invalid, "a role cannot extend itself"));
            }
            if seen.insert(id)
                && let Some(r) = roles.get(&id)
            {
                stack.extend(r.role_ids.iter().copied());
            }
        }
    }
    Ok(())
}

impl CreateRole {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        let f = &self.fields;
        check(view, f, None)?;
        Ok(vec![Event::RoleCreated(RoleCreated {
            role_id: IdAllocator::new(view)?.allocate(),
            name: None,
            description: Some(f.description.clone()),
            permissions: normalized(&f.enabled_permissions),
            disabled_permissions: normalized(&f.disabled_permissions),
            role_ids: normalized(&f.role_ids),
            member_tenant_id: f.member_tenant_id.clone(),
        })])
    }
}

impl UpdateRole {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        let role = state::role(view, self.id)?.ok_or(Rejection::NotFound { what: "role", id: self.id })?;
        let f = &self.fields;
        check(view, f, Some(self.id))?;
        let update = RoleUpdated {
            role_id: self.id,
            name: None,
            description: Change::requested(&Some(Some(f.description.clone())), &role.description),
            permissions: Change::requested(&Some(normalized(&f.enabled_permissions)), &role.permissions),
            disabled_permissions: Change::requested(
                &Some(normalized(&f.disabled_permissions)),
                &role.disabled_permissions,
            ),
            role_ids: Change::requested(&Some(normalized(&f.role_ids)), &role.role_ids),
            member_tenant_id: Change::requested(&Some(f.member_tenant_id.clone()), &role.member_tenant_id),
        };
        let unchanged = update.description.is_none()
            && update.permissions.is_none()
            && update.disabled_permissions.is_none()
            && update.role_ids.is_none()
            && update.member_tenant_id.is_none();
        if unchanged {
            return Ok(vec![]);
        }
        Ok(vec![Event::RoleUpdated(update)])
    }
}

impl DestroyRole {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        let role = state::role(view, self.id)?.ok_or(Rejection::NotFound { what: "role", id: self.id })?;
        let mut linked: Vec<(ObjectType, ObjectId)> =
            state::role_holders(view, self.id)?.into_iter().map(|id| (ObjectType::Account, id)).collect();
        linked.extend(
            state::roles(view)?.into_iter().filter(|r| r.role_ids.contains(&self.id)).map(|r| (ObjectType::Role, r.id)),
        );
        if !linked.is_empty() {
            linked.truncate(LINKED_SHOWN);
            return Err(Rejection::Linked {
                linked,
                description: format!("role {:?} is still assigned or extended", role.label()),
            });
        }
        Ok(vec![Event::RoleDestroyed(RoleDestroyed { role_id: self.id, name: role.label() })])
    }
}
