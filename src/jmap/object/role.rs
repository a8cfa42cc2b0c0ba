//! `x:Role`: a named permission list (`id`, `name`, `description`,
//! `permissions`) that accounts with `{"@type": "Custom", "roleIds": [...]}`
//! roles receive. This file is the whole of the type's JMAP side: its commands
//! (`CreateRole`, `UpdateRole`, `DestroyRole`) and events (`RoleCreated`, …)
//! are all else a new type needs.

use ledger_events::ObjectType;
use ledger_events::values::{ObjectId, Permission};
use ledger_projections::query::{Filter, Sort, SortKey};
use ledger_projections::{RoleState, StateRead, state};
use serde_json::{Map, Value, json};

use super::property::{Property, StringFormat, WireType};
use super::{
    JmapObject, Named, ParseContext, filter_named, permissions, query_named, refuse_server_set, sort_named, take_fixed,
};
use crate::command::{Command, CreateRole, DestroyRole, UpdateRole};
use crate::jmap::context::CreatedIds;
use crate::jmap::error::{MethodError, SetError};
use crate::jmap::object::account::MAX_PERMISSIONS;

pub(crate) struct Role;

struct Fields {
    name: String,
    description: Option<String>,
    permissions: Vec<Permission>,
}

fn parse(mut object: Map<String, Value>) -> Result<Fields, SetError> {
    let name = match object.remove("name") {
        Some(Value::String(s)) => s,
        _ => return Err(SetError::invalid("name", "name is required (a string)")),
    };
    let description = match object.remove("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(SetError::invalid("description", "description must be a string or null")),
    };
    let permissions = match object.remove("permissions") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) if items.len() > MAX_PERMISSIONS => {
            return Err(SetError::too_large("permissions", MAX_PERMISSIONS));
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().filter(|s| crate::auth::catalogue::is_known(s)).and_then(|s| s.parse().ok()).ok_or_else(
                    || SetError::invalid(&format!("permissions/{i}"), format!("{v} is not a known permission")),
                )
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(SetError::invalid("permissions", "permissions must be an array")),
    };
    if let Some(unknown) = object.keys().next() {
        return Err(SetError::invalid(unknown, format!("{unknown} is not a Role property")));
    }
    Ok(Fields { name, description, permissions })
}

impl JmapObject for Role {
    type State = RoleState;
    const TYPE: ObjectType = ObjectType::Role;
    const SINGULAR: &'static str = "role";
    const PLURAL: &'static str = "roles";
    const LABEL_PROPERTY: Option<&'static str> = Some("description");
    const COLUMNS: &'static [&'static str] = &["description"];
    const DESCRIPTION: &'static str = "Defines a named set of permissions that can be assigned to accounts.";
    const PROPERTIES: &'static [Property] = &[
        Property::id(),
        Property::new("name", WireType::String(StringFormat::String), "Name of the role, unique").required(),
        Property::new("description", WireType::String(StringFormat::String), "Description of the role").nullable(),
        Property::new(
            "permissions",
            WireType::Set(&WireType::Enum("Permission")),
            "Permissions that accounts with this role receive",
        )
        .default("[]"),
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
        out.insert("name".into(), json!(r.name));
        out.insert("description".into(), json!(r.description));
        out.insert("permissions".into(), json!(r.permissions.iter().map(Permission::as_str).collect::<Vec<_>>()));
        out
    }

    fn parse_create(object: Map<String, Value>, _: &mut ParseContext<'_>) -> Result<Command, SetError> {
        refuse_server_set::<Self>(&object)?;
        let f = parse(object)?;
        Ok(Command::CreateRole(CreateRole { name: f.name, description: f.description, permissions: f.permissions }))
    }

    fn parse_update(
        current: &RoleState,
        mut patched: Map<String, Value>,
        _: &mut ParseContext<'_>,
    ) -> Result<Command, SetError> {
        take_fixed::<Self>(&mut patched, &Self::render(current), None)?;
        let f = parse(patched)?;
        Ok(Command::UpdateRole(UpdateRole {
            id: current.id,
            name: Some(f.name),
            description: Some(f.description),
            permissions: Some(f.permissions),
        }))
    }

    fn destroy(id: ObjectId) -> Command {
        Command::DestroyRole(DestroyRole { id })
    }

    fn filter(key: &str, value: &Value, _: &CreatedIds) -> Result<Option<Filter>, MethodError> {
        filter_named(key, value)
    }

    fn sort_key(property: &str) -> Option<SortKey> {
        sort_named(property)
    }

    /// Roles are few: filtered and sorted in memory.
    fn query(view: &impl StateRead, filter: &Filter, sort: &[Sort]) -> Result<Vec<ObjectId>, MethodError> {
        let named = state::roles(view)?
            .into_iter()
            .map(|r| Named { id: r.id, name: r.name, description: r.description, tenant: None })
            .collect();
        Ok(query_named(named, filter, sort))
    }
}
