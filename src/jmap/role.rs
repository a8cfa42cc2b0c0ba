//! `x:Role`: a named permission list (`id`, `name`, `description`, `permissions`)
//! that accounts with `{"@type": "Custom", "roleIds": [...]}` roles receive.

use ledger_events::values::Permission;
use ledger_projections::RoleState;
use serde_json::{Map, Value, json};

use super::error::SetError;
use crate::command::{CreateRole, UpdateRole};

pub const PROPERTIES: &[&str] = &["id", "name", "description", "permissions"];

pub fn render(r: &RoleState) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), json!(r.id.to_jmap()));
    out.insert("name".into(), json!(r.name));
    out.insert("description".into(), json!(r.description));
    out.insert("permissions".into(), json!(r.permissions.iter().map(Permission::as_str).collect::<Vec<_>>()));
    out
}

fn invalid(property: &str, description: impl Into<String>) -> SetError {
    SetError::invalid_properties(vec![property.to_owned()], description)
}

struct Fields {
    name: String,
    description: Option<String>,
    permissions: Vec<Permission>,
}

fn parse(mut object: Map<String, Value>) -> Result<Fields, SetError> {
    let name = match object.remove("name") {
        Some(Value::String(s)) => s,
        _ => return Err(invalid("name", "name is required (a string)")),
    };
    let description = match object.remove("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(invalid("description", "description must be a string or null")),
    };
    let permissions = match object.remove("permissions") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| invalid(&format!("permissions/{i}"), format!("{v} is not a permission name")))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid("permissions", "permissions must be an array")),
    };
    if let Some(unknown) = object.keys().next() {
        return Err(invalid(unknown, format!("{unknown} is not a Role property")));
    }
    Ok(Fields { name, description, permissions })
}

pub fn parse_create(object: Map<String, Value>) -> Result<CreateRole, SetError> {
    if object.contains_key("id") {
        return Err(invalid("id", "id is set by the server"));
    }
    let f = parse(object)?;
    Ok(CreateRole { name: f.name, description: f.description, permissions: f.permissions })
}

pub fn parse_update(current: &RoleState, mut patched: Map<String, Value>) -> Result<UpdateRole, SetError> {
    if patched.remove("id") != Some(json!(current.id.to_jmap())) {
        return Err(invalid("id", "id is set by the server"));
    }
    let f = parse(patched)?;
    Ok(UpdateRole {
        id: current.id,
        name: Some(f.name),
        description: Some(f.description),
        permissions: Some(f.permissions),
    })
}
