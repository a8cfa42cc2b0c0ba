//! The wire forms of Stalwart's collection types (stalwart-cli-wire.md, "Wire
//! shapes of sets and lists"): a `set` is `{"member": true, …}` and an
//! `objectList` is `{"0": {…}, "1": {…}}`. Objects are kept and parsed with
//! arrays inside the ledger; [`to_wire`] turns a rendered object into the
//! wire form every `/get` answers with, and [`from_wire`] turns a create or a
//! patched object back, accepting arrays too (the reference page's curl
//! examples send them). Patches address set members and list entries by
//! these keys (`memberGroupIds/<id>: true|null`, `aliases/1/name`).

use serde_json::{Map, Value};

use super::nested;
use crate::jmap::error::SetError;
use crate::jmap::object::property::{Property, WireType};

/// The properties of `props` that objects of `variant` have.
fn fields<'a>(props: &'a [Property], object: &Map<String, Value>) -> impl Iterator<Item = &'a Property> {
    let variant = object.get("@type").and_then(Value::as_str).map(str::to_owned);
    props.iter().filter(move |p| p.of(variant.as_deref()))
}

/// Rewrites the sets and object lists of `object` (with `props`, the fields of
/// its type) into their map forms, nested objects too.
pub(crate) fn to_wire(props: &[Property], object: &mut Map<String, Value>) {
    let wanted: Vec<&Property> = fields(props, object).collect();
    for p in wanted {
        if let Some(value) = object.get_mut(p.name) {
            value_to_wire(&p.ty, value);
        }
    }
}

fn value_to_wire(ty: &WireType, value: &mut Value) {
    match (ty, value) {
        (WireType::Set(_), value @ Value::Array(_)) => {
            let Value::Array(items) = std::mem::take(value) else { return };
            *value = Value::Object(items.into_iter().map(|item| (member_key(item), Value::Bool(true))).collect());
        }
        (WireType::ObjectList(name), value @ Value::Array(_)) => {
            let Value::Array(items) = std::mem::take(value) else { return };
            let entries = items.into_iter().enumerate().map(|(i, mut item)| {
                nested_to_wire(name, &mut item);
                (i.to_string(), item)
            });
            *value = Value::Object(entries.collect());
        }
        (WireType::Object(name), item) => nested_to_wire(name, item),
        _ => {}
    }
}

fn nested_to_wire(name: &str, item: &mut Value) {
    if let (Some(n), Value::Object(map)) = (nested(name), item) {
        to_wire(n.properties, map);
    }
}

fn member_key(item: Value) -> String {
    match item {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Rewrites the map forms of sets and object lists in a create or patched
/// object back into arrays (arrays are taken as they are). A set member whose
/// value is `false` or `null` is not a member; any other value, or an object
/// list key that is not a position, is `invalidProperties` naming the path.
pub(crate) fn from_wire(props: &[Property], object: &mut Map<String, Value>, at: &str) -> Result<(), SetError> {
    let wanted: Vec<&Property> = fields(props, object).collect();
    for p in wanted {
        if let Some(value) = object.get_mut(p.name) {
            value_from_wire(&p.ty, value, &format!("{at}{}", p.name))?;
        }
    }
    Ok(())
}

fn value_from_wire(ty: &WireType, value: &mut Value, path: &str) -> Result<(), SetError> {
    match (ty, value) {
        (WireType::Set(_), value @ Value::Object(_)) => {
            let Value::Object(members) = std::mem::take(value) else { return Ok(()) };
            let mut out = Vec::with_capacity(members.len());
            for (member, flag) in members {
                match flag {
                    Value::Bool(true) => out.push(Value::String(member)),
                    Value::Bool(false) | Value::Null => {}
                    _ => {
                        return Err(SetError::invalid(
                            &format!("{path}/{member}"),
                            "a set member's value must be true (or false or null to leave it out)",
                        ));
                    }
                }
            }
            *value = Value::Array(out);
        }
        (WireType::ObjectList(name), value @ Value::Object(_)) => {
            let Value::Object(entries) = std::mem::take(value) else { return Ok(()) };
            let mut keyed = Vec::with_capacity(entries.len());
            for (key, item) in entries {
                let position: u64 = key.parse().ok().filter(|_| !key.starts_with('+')).ok_or_else(|| {
                    SetError::invalid(&format!("{path}/{key}"), format!("{key:?} is not a list position (0, 1, …)"))
                })?;
                keyed.push((position, key, item));
            }
            keyed.sort_by_key(|(position, _, _)| *position);
            let mut out = Vec::with_capacity(keyed.len());
            for (_, key, mut item) in keyed {
                nested_from_wire(name, &mut item, &format!("{path}/{key}/"))?;
                out.push(item);
            }
            *value = Value::Array(out);
        }
        (WireType::ObjectList(name), Value::Array(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                nested_from_wire(name, item, &format!("{path}/{i}/"))?;
            }
        }
        (WireType::Object(name), item) => nested_from_wire(name, item, &format!("{path}/"))?,
        _ => {}
    }
    Ok(())
}

fn nested_from_wire(name: &str, item: &mut Value, at: &str) -> Result<(), SetError> {
    match (nested(name), item) {
        (Some(n), Value::Object(map)) => from_wire(n.properties, map, at),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jmap::object::JmapObject;
    use crate::jmap::object::account::Account;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        let Value::Object(m) = v else { unreachable!() };
        m
    }

    #[test]
    fn sets_and_lists_go_to_maps_and_back_nested_too() {
        let array_form = json!({
            "@type": "User",
            "memberGroupIds": ["b", "a"],
            "aliases": [{"name": "x", "domainId": "a"}],
            "credentials": [{"@type": "ApiKey", "allowedIps": ["10.0.0.0/8"],
                "permissions": {"@type": "Replace", "permissions": ["sysAccountGet"]}}],
            "roles": {"@type": "Custom", "roleIds": ["r"]},
            "permissions": {"@type": "Merge", "enabledPermissions": ["impersonate"], "disabledPermissions": []},
            "quotas": {"maxEmails": 5},
        });
        let mut wire = object(array_form.clone());
        to_wire(Account::PROPERTIES, &mut wire);
        assert_eq!(
            Value::Object(wire.clone()),
            json!({
                "@type": "User",
                "memberGroupIds": {"a": true, "b": true},
                "aliases": {"0": {"name": "x", "domainId": "a"}},
                "credentials": {"0": {"@type": "ApiKey", "allowedIps": {"10.0.0.0/8": true},
                    "permissions": {"@type": "Replace", "permissions": {"sysAccountGet": true}}}},
                "roles": {"@type": "Custom", "roleIds": {"r": true}},
                "permissions": {"@type": "Merge", "enabledPermissions": {"impersonate": true}, "disabledPermissions": {}},
                "quotas": {"maxEmails": 5},
            })
        );
        from_wire(Account::PROPERTIES, &mut wire, "").unwrap();
        let mut expected = array_form;
        expected["memberGroupIds"] = json!(["a", "b"]);
        assert_eq!(Value::Object(wire), expected);
    }

    #[test]
    fn lists_keep_position_order_and_members_set_false_are_left_out() {
        let mut wire = object(json!({
            "@type": "User",
            "aliases": {"10": {"name": "c"}, "2": {"name": "b"}, "0": {"name": "a"}},
            "memberGroupIds": {"x": true, "y": false, "z": null},
        }));
        from_wire(Account::PROPERTIES, &mut wire, "").unwrap();
        assert_eq!(wire["aliases"], json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
        assert_eq!(wire["memberGroupIds"], json!(["x"]));
    }

    #[test]
    fn bad_keys_and_member_values_name_their_path() {
        for (bad, path) in [
            (json!({"@type": "User", "aliases": {"first": {}}}), "aliases/first"),
            (json!({"@type": "User", "aliases": {"+1": {}}}), "aliases/+1"),
            (json!({"@type": "User", "memberGroupIds": {"g": "yes"}}), "memberGroupIds/g"),
            (json!({"@type": "User", "roles": {"@type": "Custom", "roleIds": {"r": 1}}}), "roles/roleIds/r"),
        ] {
            let err = from_wire(Account::PROPERTIES, &mut object(bad), "").unwrap_err();
            assert_eq!(err.properties, Some(vec![path.to_owned()]));
        }
    }
}
