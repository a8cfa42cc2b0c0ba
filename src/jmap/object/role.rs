//! `x:Role` in Stalwart 0.16's shape: `description` (its label),
//! `enabledPermissions`, `disabledPermissions`, `roleIds` (the roles it
//! extends) and `memberTenantId`. Accounts with `{"@type": "Custom",
//! "roleIds": {...}}` roles receive what it grants. This file is the whole of
//! the type's JMAP side: its commands (`CreateRole`, `UpdateRole`,
//! `DestroyRole`) and events (`RoleCreated`, …) are all else a type needs.

use ledger_events::ObjectType;
use ledger_events::values::{ExternalId, ObjectId, Permission};
use ledger_projections::query::{Filter, Sort, SortKey};
use ledger_projections::{RoleState, StateRead, state};
use serde_json::{Map, Value, json};

use super::property::{Property, StringFormat, WireType};
use super::{
    JmapObject, Named, ParseContext, filter_named, permissions, query_named, refuse_server_set, resolve_id, sort_named,
    take_fixed,
};
use crate::command::{Command, CreateRole, DestroyRole, RoleFields, UpdateRole};
use crate::jmap::context::CreatedIds;
use crate::jmap::error::{MethodError, SetError};
use crate::jmap::object::account::MAX_PERMISSIONS;

pub(crate) struct Role;

/// Roles one role may extend.
const MAX_ROLE_IDS: usize = 100;

fn permission_list(property: &str, value: Option<Value>) -> Result<Vec<Permission>, SetError> {
    match value {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) if items.len() > MAX_PERMISSIONS => {
            Err(SetError::too_large(property, MAX_PERMISSIONS))
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().filter(|s| crate::auth::catalogue::is_known(s)).and_then(|s| s.parse().ok()).ok_or_else(
                    || SetError::invalid(&format!("{property}/{i}"), format!("{v} is not a known permission")),
                )
            })
            .collect(),
        Some(_) => Err(SetError::invalid(property, format!("{property} must be a set of permissions"))),
    }
}

fn parse(mut object: Map<String, Value>, ids: &CreatedIds) -> Result<RoleFields, SetError> {
    let description = match object.remove("description") {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => return Err(SetError::required("description")),
        Some(_) => return Err(SetError::invalid("description", "description must be a string")),
    };
    let enabled_permissions = permission_list("enabledPermissions", object.remove("enabledPermissions"))?;
    let disabled_permissions = permission_list("disabledPermissions", object.remove("disabledPermissions"))?;
    let role_ids = match object.remove("roleIds") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) if items.len() > MAX_ROLE_IDS => {
            return Err(SetError::too_large("roleIds", MAX_ROLE_IDS));
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| resolve_id(&format!("roleIds/{i}"), v, ids))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(SetError::invalid("roleIds", "roleIds must be a set of role ids")),
    };
    let member_tenant_id = match object.remove("memberTenantId") {
        None | Some(Value::Null) => None,
        Some(v) => Some(super::resolve_tenant(&v, ids)?),
    };
    if let Some(unknown) = object.keys().next() {
        return Err(SetError::invalid(unknown, format!("{unknown} is not a Role property")));
    }
    Ok(RoleFields { description, enabled_permissions, disabled_permissions, role_ids, member_tenant_id })
}

fn names(list: &[Permission]) -> Vec<&str> {
    list.iter().map(Permission::as_str).collect()
}

impl JmapObject for Role {
    type State = RoleState;
    const TYPE: ObjectType = ObjectType::Role;
    const SINGULAR: &'static str = "role";
    const PLURAL: &'static str = "roles";
    const LABEL_PROPERTY: Option<&'static str> = Some("description");
    const COLUMNS: &'static [&'static str] = &["description"];
    const DESCRIPTION: &'static str =
        "Defines a named set of permissions that can be assigned to accounts, groups, or tenants.";
    const PROPERTIES: &'static [Property] = &[
        Property::id(),
        Property::new("description", WireType::String(StringFormat::String), "Description of the role").required(),
        Property::new(
            "enabledPermissions",
            WireType::Set(&WireType::Enum("Permission")),
            "List of permissions that are explicitly enabled.",
        )
        .default("[]"),
        Property::new(
            "disabledPermissions",
            WireType::Set(&WireType::Enum("Permission")),
            "List of permissions that are explicitly disabled, even if they would be granted otherwise.",
        )
        .default("[]"),
        Property::new("roleIds", WireType::Set(&WireType::ObjectId("x:Role")), "List of roles this role extends")
            .default("[]"),
        Property::new(
            "memberTenantId",
            WireType::ObjectId("x:Tenant"),
            "Identifier for the tenant this role belongs to",
        )
        .nullable(),
    ];

    permissions!("sysRole");

    fn fetch(view: &impl StateRead, id: ObjectId) -> Result<Option<RoleState>, MethodError> {
        Ok(state::role(view, id)?)
    }

    fn list(view: &impl StateRead, limit: usize) -> Result<Vec<ObjectId>, MethodError> {
        Ok(state::role_ids(view, limit)?)
    }

    fn render(r: &RoleState) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("id".into(), json!(r.id.to_jmap()));
        out.insert("description".into(), json!(r.label()));
        out.insert("enabledPermissions".into(), json!(names(&r.permissions)));
        out.insert("disabledPermissions".into(), json!(names(&r.disabled_permissions)));
        out.insert("roleIds".into(), json!(r.role_ids.iter().map(|id| id.to_jmap()).collect::<Vec<_>>()));
        out.insert("memberTenantId".into(), json!(r.member_tenant_id.as_ref().map(ExternalId::as_str)));
        out
    }

    fn tenant(r: &RoleState) -> Option<&ExternalId> {
        r.member_tenant_id.as_ref()
    }

    fn parse_create(object: Map<String, Value>, ctx: &mut ParseContext<'_>) -> Result<Command, SetError> {
        refuse_server_set::<Self>(&object)?;
        Ok(Command::CreateRole(CreateRole { fields: parse(object, ctx.ids)? }))
    }

    fn parse_update(
        current: &RoleState,
        mut patched: Map<String, Value>,
        ctx: &mut ParseContext<'_>,
    ) -> Result<Command, SetError> {
        take_fixed::<Self>(&mut patched, &Self::render(current), None)?;
        Ok(Command::UpdateRole(UpdateRole { id: current.id, fields: parse(patched, ctx.ids)? }))
    }

    fn destroy(id: ObjectId) -> Command {
        Command::DestroyRole(DestroyRole { id })
    }

    fn filter(key: &str, value: &Value, _: &CreatedIds) -> Result<Option<Filter>, MethodError> {
        if key == "description" {
            return filter_named("text", value);
        }
        if key == "memberTenantId" {
            return Ok(Some(Filter::MemberTenantId(super::filter_text(key, value)?)));
        }
        filter_named(key, value)
    }

    fn sort_key(property: &str) -> Option<SortKey> {
        if property == "description" {
            return Some(SortKey::Name);
        }
        sort_named(property)
    }

    /// Roles are few: filtered and sorted in memory (by their label).
    fn query(view: &impl StateRead, filter: &Filter, sort: &[Sort]) -> Result<Vec<ObjectId>, MethodError> {
        let named = state::roles(view)?
            .into_iter()
            .map(|r| Named { id: r.id, name: r.label(), description: None, tenant: r.member_tenant_id.clone() })
            .collect();
        Ok(query_named(named, filter, sort))
    }
}
