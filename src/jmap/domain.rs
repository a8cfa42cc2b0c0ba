//! `x:Domain`: the mail domains accounts live in (`id`, `name`, `description`,
//! `createdAt`). Names are fixed once created.

use ledger_projections::DomainState;
use serde_json::{Map, Value, json};

use super::error::SetError;
use crate::command::{CreateDomain, UpdateDomain};

pub const PROPERTIES: &[&str] = &["id", "name", "description", "createdAt"];

pub fn render(d: &DomainState) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), json!(d.id.to_jmap()));
    out.insert("name".into(), json!(d.name.as_str()));
    out.insert("description".into(), json!(d.description));
    out.insert("createdAt".into(), json!(d.created_at.to_string()));
    out
}

fn invalid(property: &str, description: impl Into<String>) -> SetError {
    SetError::invalid_properties(vec![property.to_owned()], description)
}

fn description(value: Option<Value>) -> Result<Option<String>, SetError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid("description", "description must be a string or null")),
    }
}

pub fn parse_create(mut object: Map<String, Value>) -> Result<CreateDomain, SetError> {
    for server_set in ["id", "createdAt"] {
        if object.contains_key(server_set) {
            return Err(invalid(server_set, format!("{server_set} is set by the server")));
        }
    }
    let name = match object.remove("name") {
        Some(Value::String(s)) => s.parse().map_err(|e| invalid("name", format!("{e}")))?,
        _ => return Err(invalid("name", "name is required (a domain name)")),
    };
    let description = description(object.remove("description"))?;
    if let Some(unknown) = object.keys().next() {
        return Err(invalid(unknown, format!("{unknown} is not a Domain property")));
    }
    Ok(CreateDomain { name, description })
}

/// `patched` is the current object with the patch applied.
pub fn parse_update(current: &DomainState, mut patched: Map<String, Value>) -> Result<UpdateDomain, SetError> {
    let rendered = render(current);
    for fixed in ["id", "createdAt", "name"] {
        if patched.remove(fixed).as_ref() != rendered.get(fixed) {
            let why = if fixed == "name" { "a domain's name cannot change" } else { "set by the server" };
            return Err(invalid(fixed, format!("{fixed}: {why}")));
        }
    }
    let description = description(patched.remove("description"))?;
    if let Some(unknown) = patched.keys().next() {
        return Err(invalid(unknown, format!("{unknown} is not a Domain property")));
    }
    Ok(UpdateDomain { id: current.id, description: Some(description) })
}
