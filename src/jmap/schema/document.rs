//! The schema document of `GET /api/schema` in the contract of Stalwart's
//! client (`stalwart-cli` 1.x, `src/schema/types.rs`; stalwart-cli-wire.md
//! §2.2): eight top-level keys, `objects`, `schemas`, `fields`, `forms`,
//! `lists`, `enums`, `dashboards` and `layouts`. It is generated from the
//! objects' property descriptions and [`super::NESTED`], so it lists exactly
//! what the ledger accepts and returns, under Stalwart's names and types.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::NESTED;
use crate::jmap::object::property::{Property, StringFormat, Update, Variant, WireType};
use crate::jmap::object::{JmapObject, Verb, for_each_served};

/// What the document needs of one served object type.
struct Served {
    name: &'static str,
    description: &'static str,
    singleton: bool,
    permission_prefix: String,
    variants: &'static [Variant],
    properties: &'static [Property],
    singular: &'static str,
    plural: &'static str,
    label_property: Option<&'static str>,
    columns: &'static [&'static str],
}

fn served<O: JmapObject>() -> Served {
    let get = O::permission(Verb::Get);
    Served {
        name: O::NAME,
        description: O::DESCRIPTION,
        singleton: O::SINGLETON,
        permission_prefix: get.strip_suffix("Get").unwrap_or(get).to_owned(),
        variants: O::VARIANTS,
        properties: O::PROPERTIES,
        singular: O::SINGULAR,
        plural: O::PLURAL,
        label_property: O::LABEL_PROPERTY,
        columns: O::COLUMNS,
    }
}

/// The fields of `x:ApiKey` and `x:AppPassword` (the caller's own
/// credentials, `crate::jmap::method::credential`).
const SECONDARY: &[Property] = &[
    Property::new("description", WireType::String(StringFormat::String), "Description of the credential"),
    Property::new("expiresAt", WireType::UtcDateTime, "Expiration date of the credential").nullable(),
    Property::new(
        "allowedIps",
        WireType::Set(&WireType::String(StringFormat::IpNetwork)),
        "List of allowed IP addresses or CIDR ranges for this credential",
    )
    .default("{}"),
    Property::new(
        "permissions",
        WireType::Object("x:CredentialPermissions"),
        "List of permissions assigned to this credential",
    )
    .default(r#"{"@type":"Inherit"}"#),
    Property::new("createdAt", WireType::UtcDateTime, "Creation date of the credential").server_set(),
    Property::new("secret", WireType::String(StringFormat::Secret), "Secret value of the credential, shown once")
        .server_set(),
];

/// The fields of the `x:AccountPassword` singleton.
const PASSWORD: &[Property] = &[
    Property::new("secret", WireType::String(StringFormat::Secret), "Secret value of the account").nullable(),
    Property::new(
        "currentSecret",
        WireType::String(StringFormat::Secret),
        "The current secret value of the account, used for password verification",
    )
    .nullable(),
];

/// The credential objects, described by hand (they are not log object types).
fn credential_objects() -> [Served; 3] {
    let secondary = |name, description, prefix: &str, singular, plural| Served {
        name,
        description,
        singleton: false,
        permission_prefix: prefix.to_owned(),
        variants: &[],
        properties: SECONDARY,
        singular,
        plural,
        label_property: Some("description"),
        columns: &["description", "expiresAt"],
    };
    [
        secondary("x:ApiKey", "API key credential for programmatic access.", "sysApiKey", "API key", "API keys"),
        secondary(
            "x:AppPassword",
            "App password credential for programmatic access.",
            "sysAppPassword",
            "App password",
            "App passwords",
        ),
        Served {
            name: "x:AccountPassword",
            description: "Password-based authentication credential.",
            singleton: true,
            permission_prefix: "sysAccountPassword".to_owned(),
            variants: &[],
            properties: PASSWORD,
            singular: "password",
            plural: "passwords",
            label_property: None,
            columns: &[],
        },
    ]
}

/// The whole document, as JSON.
pub(crate) fn document() -> Value {
    let mut served_types = Vec::new();
    for_each_served!(|O| served_types.push(served::<O>()));
    served_types.extend(credential_objects());
    let mut objects = Map::new();
    let mut schemas = Map::new();
    let mut fields = Map::new();
    let mut forms = Map::new();
    let mut lists = Map::new();
    let mut enums = BTreeSet::new();
    for s in &served_types {
        let mut entry = json!({
            "type": if s.singleton { "singleton" } else { "object" },
            "description": s.description,
            "permissionPrefix": s.permission_prefix,
        });
        if s.singleton {
            entry["type"] = json!("singleton");
        }
        objects.insert(s.name.into(), entry);
        describe_type(s.name, s.variants, s.properties, &mut schemas, &mut fields, &mut forms, &mut enums);
        if !s.singleton {
            lists.insert(s.name.into(), list(s));
        }
        for v in s.variants {
            // Views such as `x:Account/User` (stalwart-cli lists them, never names them in commands).
            let view = format!("{}/{}", s.name, v.name);
            objects.insert(view.clone(), json!({"type": "view", "objectName": s.name}));
            let mut view_list = list(s);
            view_list["title"] = json!(v.label);
            lists.insert(view, view_list);
        }
    }
    for n in NESTED.iter().chain(super::DOMAIN_NESTED) {
        describe_type(n.name, n.variants, n.properties, &mut schemas, &mut fields, &mut forms, &mut enums);
    }
    let enums: Map<String, Value> =
        enums.into_iter().filter_map(|name| Some((name.to_owned(), enum_values(name)?))).collect();
    json!({
        "objects": objects,
        "schemas": schemas,
        "fields": fields,
        "forms": forms,
        "lists": lists,
        "enums": enums,
        "dashboards": [],
        "layouts": [],
    })
}

/// `schemas`, `fields` and `forms` of one type (object or nested).
fn describe_type(
    name: &'static str,
    variants: &'static [Variant],
    properties: &'static [Property],
    schemas: &mut Map<String, Value>,
    fields: &mut Map<String, Value>,
    forms: &mut Map<String, Value>,
    enums: &mut BTreeSet<&'static str>,
) {
    if variants.is_empty() {
        schemas.insert(name.into(), json!({"type": "single", "schemaName": name}));
        add_fields(name, properties, None, fields, forms, enums);
        return;
    }
    let listed: Vec<Value> = variants
        .iter()
        .map(|v| {
            let mut entry = json!({"name": v.name, "label": v.label});
            if let Some(schema) = v.schema {
                entry["schemaName"] = json!(schema);
            }
            entry
        })
        .collect();
    schemas.insert(name.into(), json!({"type": "multiple", "variants": listed}));
    forms.insert(name.into(), json!({"sections": [{"fields": [{"name": "@type", "label": "Type"}]}]}));
    for v in variants {
        if let Some(schema) = v.schema
            && !fields.contains_key(schema)
        {
            schemas.insert(schema.into(), json!({"type": "single", "schemaName": schema}));
            add_fields(schema, properties, Some(v.name), fields, forms, enums);
        }
    }
}

/// `fields.<schema>` (and its form) from the properties objects of `variant` have.
fn add_fields(
    schema: &'static str,
    properties: &'static [Property],
    variant: Option<&str>,
    fields: &mut Map<String, Value>,
    forms: &mut Map<String, Value>,
    enums: &mut BTreeSet<&'static str>,
) {
    let mut described = Map::new();
    let mut defaults = Map::new();
    let mut form_fields = Vec::new();
    let of_variant = properties.iter().filter(|p| match variant {
        Some(v) => p.of(Some(v)),
        None => true,
    });
    for p in of_variant.filter(|p| p.name != "id" && p.name != "@type") {
        let update = match p.update {
            Update::Mutable => "mutable",
            Update::Immutable => "immutable",
            Update::ServerSet => "serverSet",
        };
        described.insert(
            p.name.into(),
            json!({"description": p.description, "type": wire_type(&p.ty, p.nullable, enums), "update": update}),
        );
        if let Some(default) = p.default.and_then(|d| serde_json::from_str::<Value>(d).ok()) {
            let mut wired = Map::from_iter([(p.name.to_owned(), default)]);
            super::wire::to_wire(std::slice::from_ref(p), &mut wired);
            defaults.extend(wired);
        }
        form_fields.push(json!({"name": p.name, "label": label(p.name)}));
    }
    let mut entry = json!({"properties": described});
    if !defaults.is_empty() {
        entry["defaults"] = Value::Object(defaults);
    }
    fields.insert(schema.into(), entry);
    forms.insert(schema.into(), json!({"sections": [{"fields": form_fields}]}));
}

/// A field `type` (tag `type`), with `nullable` where `null` is a value.
fn wire_type(ty: &WireType, nullable: bool, enums: &mut BTreeSet<&'static str>) -> Value {
    let mut out = match ty {
        WireType::Id => json!({"type": "string", "format": "string"}),
        WireType::String(f) => json!({"type": "string", "format": f.wire_name()}),
        WireType::Number(f) => json!({"type": "number", "format": f.wire_name()}),
        WireType::Boolean => json!({"type": "boolean"}),
        WireType::UtcDateTime => json!({"type": "utcDateTime"}),
        WireType::Enum(name) => {
            enums.insert(name);
            json!({"type": "enum", "enumName": name})
        }
        WireType::ObjectId(name) => json!({"type": "objectId", "objectName": name}),
        WireType::Object(name) => json!({"type": "object", "objectName": name}),
        WireType::ObjectList(name) => json!({"type": "objectList", "objectName": name}),
        WireType::Set(class) => json!({"type": "set", "class": wire_type(class, false, enums)}),
        WireType::Map(key, value) => {
            json!({"type": "map", "keyClass": wire_type(key, false, enums), "valueClass": wire_type(value, false, enums)})
        }
    };
    if nullable {
        out["nullable"] = json!(true);
    }
    out
}

/// `lists.<object>`: `query`'s default columns and the label of ids.
fn list(s: &Served) -> Value {
    let columns: Vec<Value> = s.columns.iter().map(|c| json!({"name": c, "label": label(c)})).collect();
    let mut out = json!({
        "title": capitalised(s.plural),
        "subtitle": s.description,
        "singularName": s.singular,
        "pluralName": s.plural,
        "columns": columns,
    });
    if let Some(p) = s.label_property {
        out["labelProperty"] = json!(p);
    }
    out
}

/// The values of an enum the ledger knows, `[{"name", "label"}]`.
fn enum_values(name: &str) -> Option<Value> {
    let names: Vec<String> = match name {
        "Permission" => crate::auth::catalogue::names().map(str::to_owned).collect(),
        "StorageQuota" => ledger_events::model::QuotaKind::ALL.iter().map(|q| q.as_str().to_owned()).collect(),
        "TimeZone" => jiff::tz::db().available().map(|n| n.to_string()).collect(),
        "Locale" => include_str!("locales.txt").lines().filter(|l| !l.is_empty()).map(str::to_owned).collect(),
        "DkimSignatureType" => ledger_events::model::DkimSignatureType::ALL.map(str::to_owned).to_vec(),
        "DnsRecordType" => ledger_events::model::DnsRecordType::ALL.map(str::to_owned).to_vec(),
        "TenantStorageQuota" => {
            ledger_events::model::TenantQuotaKind::ALL.iter().map(|q| q.as_str().to_owned()).collect()
        }
        _ => return None,
    };
    Some(Value::Array(names.into_iter().map(|n| json!({"label": n, "name": n})).collect()))
}

/// `memberGroupIds` → `Member group ids`.
fn label(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.trim_start_matches('@').chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else if i == 0 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_words() {
        assert_eq!(label("memberGroupIds"), "Member group ids");
        assert_eq!(label("@type"), "Type");
        assert_eq!(capitalised("domains"), "Domains");
    }
}
