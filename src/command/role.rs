//! CreateRole, UpdateRole, DestroyRole: named permission lists for `Custom` roles.

use ledger_events::model::Change;
use ledger_events::values::{ObjectId, Permission};
use ledger_events::{Event, ObjectType, RoleCreated, RoleDestroyed, RoleUpdated};
use ledger_projections::{StateRead, state};

use super::{Decision, IdAllocator, LINKED_SHOWN, Rejection, check_description};

#[derive(Debug, Clone, PartialEq)]
pub struct CreateRole {
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRole {
    pub id: ObjectId,
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub permissions: Option<Vec<Permission>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DestroyRole {
    pub id: ObjectId,
}

fn check_name(view: &impl StateRead, name: &str, this: Option<ObjectId>) -> Result<(), Rejection> {
    if name.trim().is_empty() || name.chars().count() > 128 {
        return Err(Rejection::invalid("name", "a role name is 1 to 128 characters"));
    }
    match state::role_by_name(view, name)? {
        Some(existing) if Some(existing) != this => Err(Rejection::AlreadyExists {
            existing: ObjectType::Role,
            existing_id: existing,
            property: "name".into(),
            description: format!("role {name:?} already exists"),
        }),
        _ => Ok(()),
    }
}

fn normalized(permissions: &[Permission]) -> Vec<Permission> {
    let mut p = permissions.to_vec();
    p.sort();
    p.dedup();
    p
}

impl CreateRole {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        check_name(view, &self.name, None)?;
        check_description("description", &self.description)?;
        Ok(vec![Event::RoleCreated(RoleCreated {
            role_id: IdAllocator::new(view)?.allocate(),
            name: self.name.clone(),
            description: self.description.clone(),
            permissions: normalized(&self.permissions),
        })])
    }
}

impl UpdateRole {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        let role = state::role(view, self.id)?.ok_or(Rejection::NotFound { what: "role", id: self.id })?;
        if let Some(name) = &self.name {
            check_name(view, name, Some(self.id))?;
        }
        if let Some(d) = &self.description {
            check_description("description", d)?;
        }
        let update = RoleUpdated {
            role_id: self.id,
            name: Change::requested(&self.name, &role.name),
            description: Change::requested(&self.description, &role.description),
            permissions: Change::requested(&self.permissions.as_deref().map(normalized), &role.permissions),
        };
        if update.name.is_none() && update.description.is_none() && update.permissions.is_none() {
            return Ok(vec![]);
        }
        Ok(vec![Event::RoleUpdated(update)])
    }
}

impl DestroyRole {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        let role = state::role(view, self.id)?.ok_or(Rejection::NotFound { what: "role", id: self.id })?;
        let holders = state::role_holders(view, self.id)?;
        if !holders.is_empty() {
            return Err(Rejection::Linked {
                linked: holders.into_iter().take(LINKED_SHOWN).map(|id| (ObjectType::Account, id)).collect(),
                description: format!("role {:?} is still assigned", role.name),
            });
        }
        Ok(vec![Event::RoleDestroyed(RoleDestroyed { role_id: self.id, name: role.name })])
    }
}
