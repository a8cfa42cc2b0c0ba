//! `x:Tenant` (Stalwart 0.16): `name`, `logo`, `roles`, `permissions`,
//! `quotas` (per `TenantStorageQuota`), and server-set `createdAt` and
//! `usedDiskQuota` (the disk usage its accounts report, summed when read).
//! Accounts, domains and roles name a tenant by its id in `memberTenantId`.

use ledger_events::ObjectType;
use ledger_events::model::{Permissions, Roles, TenantQuotaKind, TenantQuotas};
use ledger_events::values::{ExternalId, ObjectId};
use ledger_projections::query::{Filter, Sort, SortKey};
use ledger_projections::{StateRead, TenantState, state};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::account::{known_permissions, parse_roles};
use super::property::{NumberFormat, Property, StringFormat, WireType};
use super::{
    JmapObject, Named, ParseContext, filter_named, permissions, query_named, refuse_server_set, sort_named, take_fixed,
};
use crate::command::{Command, CreateTenant, DestroyTenant, TenantFields, UpdateTenant};
use crate::jmap::context::CreatedIds;
use crate::jmap::error::{MethodError, SetError};

pub(crate) struct Tenant;

/// A tenant with what its accounts use, as `/get` shows it.
pub(crate) struct TenantView {
    tenant: TenantState,
    used_disk_quota: u64,
    /// Its own id as a `memberTenantId`: a tenant principal sees only its own tenant.
    own: ExternalId,
}

fn typed<T: DeserializeOwned>(property: &str, value: Value) -> Result<T, SetError> {
    serde_json::from_value(value).map_err(|e| SetError::invalid(property, format!("{property}: {e}")))
}

fn parse(mut object: Map<String, Value>, ctx: &ParseContext<'_>) -> Result<TenantFields, SetError> {
    let name = match object.remove("name") {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => return Err(SetError::required("name")),
        Some(_) => return Err(SetError::invalid("name", "name must be a string")),
    };
    let logo = match object.remove("logo") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(SetError::invalid("logo", "logo must be a string or null")),
    };
    let roles: Roles = match object.remove("roles") {
        None | Some(Value::Null) => Roles::Default,
        Some(v) => parse_roles(v, ctx)?,
    };
    let permissions: Permissions = match object.remove("permissions") {
        None | Some(Value::Null) => Permissions::Inherit,
        Some(v) => typed("permissions", v)?,
    };
    if let Permissions::Merge(list) | Permissions::Replace(list) = &permissions {
        known_permissions("permissions/enabledPermissions", &list.enabled_permissions)?;
        known_permissions("permissions/disabledPermissions", &list.disabled_permissions)?;
    }
    let quotas = match object.remove("quotas") {
        None | Some(Value::Null) => TenantQuotas::new(),
        Some(Value::Object(map)) => {
            let mut quotas = TenantQuotas::new();
            for (key, value) in map {
                let property = format!("quotas/{key}");
                let kind: TenantQuotaKind = key.parse().map_err(|e| SetError::invalid(&property, format!("{e}")))?;
                if !value.is_null() {
                    quotas.insert(kind, typed(&property, value)?);
                }
            }
            quotas
        }
        Some(_) => return Err(SetError::invalid("quotas", "quotas must be an object")),
    };
    if let Some(unknown) = object.keys().next() {
        return Err(SetError::invalid(unknown, format!("{unknown} is not a Tenant property")));
    }
    Ok(TenantFields { name, logo, roles, permissions, quotas })
}

impl JmapObject for Tenant {
    type State = TenantView;
    const TYPE: ObjectType = ObjectType::Tenant;
    const SINGULAR: &'static str = "tenant";
    const PLURAL: &'static str = "tenants";
    const LABEL_PROPERTY: Option<&'static str> = Some("name");
    const COLUMNS: &'static [&'static str] = &["name", "createdAt", "usedDiskQuota"];
    const DESCRIPTION: &'static str =
        "Defines a tenant for multi-tenant environments with isolated resources and quotas.";
    const PROPERTIES: &'static [Property] = &[
        Property::id(),
        Property::new("name", WireType::String(StringFormat::String), "Name of the tenant").required(),
        Property::new(
            "logo",
            WireType::String(StringFormat::String),
            "URL or base64-encoded image representing the tenant",
        )
        .nullable(),
        Property::new("roles", WireType::Object("x:Roles"), "Roles assigned to this tenant")
            .default(r#"{"@type":"Default"}"#),
        Property::new(
            "permissions",
            WireType::Object("x:Permissions"),
            "Permissions assigned to this tenant; what it disables is disabled for every account of the tenant",
        )
        .default(r#"{"@type":"Inherit"}"#),
        Property::new(
            "quotas",
            WireType::Map(&WireType::Enum("TenantStorageQuota"), &WireType::Number(NumberFormat::UnsignedInteger)),
            "Quotas for different object types within this tenant",
        )
        .default("{}"),
        Property::new(
            "usedDiskQuota",
            WireType::Number(NumberFormat::Size),
            "Amount of disk space currently used by this tenant (bytes)",
        )
        .server_set(),
        Property::new("createdAt", WireType::UtcDateTime, "Creation date of the tenant").server_set(),
    ];

    /// Tenant principals see their own tenant only (and change none:
    /// tenants are global objects).
    const TENANT_SCOPED: bool = true;

    permissions!("sysTenant");

    fn tenant(v: &TenantView) -> Option<&ExternalId> {
        Some(&v.own)
    }

    fn fetch(view: &impl StateRead, id: ObjectId) -> Result<Option<TenantView>, MethodError> {
        let Some(tenant) = state::tenant(view, id)? else { return Ok(None) };
        let mut used_disk_quota = 0u64;
        for account in state::tenant_accounts(view, &id.to_jmap(), usize::MAX)? {
            if let Some(a) = state::account(view, account)? {
                used_disk_quota = used_disk_quota.saturating_add(a.used_disk_quota());
            }
        }
        let own = id.to_jmap().parse().map_err(|_| MethodError::ServerFail)?;
        Ok(Some(TenantView { tenant, used_disk_quota, own }))
    }

    fn list(view: &impl StateRead, limit: usize) -> Result<Vec<ObjectId>, MethodError> {
        Ok(state::tenant_ids(view, limit)?)
    }

    fn render(v: &TenantView) -> Map<String, Value> {
        let t = &v.tenant;
        let mut out = Map::new();
        out.insert("id".into(), json!(t.id.to_jmap()));
        out.insert("name".into(), json!(t.name));
        out.insert("logo".into(), json!(t.logo));
        out.insert("roles".into(), serde_json::to_value(&t.roles).unwrap_or(Value::Null));
        out.insert("permissions".into(), serde_json::to_value(&t.permissions).unwrap_or(Value::Null));
        let quotas: Map<String, Value> = t.quotas.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect();
        out.insert("quotas".into(), Value::Object(quotas));
        out.insert("usedDiskQuota".into(), json!(v.used_disk_quota));
        out.insert("createdAt".into(), json!(t.created_at.to_string()));
        out
    }

    fn parse_create(object: Map<String, Value>, ctx: &mut ParseContext<'_>) -> Result<Command, SetError> {
        refuse_server_set::<Self>(&object)?;
        Ok(Command::CreateTenant(CreateTenant { fields: parse(object, ctx)? }))
    }

    fn parse_update(
        current: &TenantView,
        mut patched: Map<String, Value>,
        ctx: &mut ParseContext<'_>,
    ) -> Result<Command, SetError> {
        take_fixed::<Self>(&mut patched, &Self::render(current), None)?;
        Ok(Command::UpdateTenant(UpdateTenant { id: current.tenant.id, fields: parse(patched, ctx)? }))
    }

    fn destroy(id: ObjectId) -> Command {
        Command::DestroyTenant(DestroyTenant { id })
    }

    fn filter(key: &str, value: &Value, _: &CreatedIds) -> Result<Option<Filter>, MethodError> {
        filter_named(key, value)
    }

    fn sort_key(property: &str) -> Option<SortKey> {
        sort_named(property)
    }

    /// Tenants are few: filtered and sorted in memory.
    fn query(view: &impl StateRead, filter: &Filter, sort: &[Sort]) -> Result<Vec<ObjectId>, MethodError> {
        let named = state::tenants(view)?.into_iter().map(|t| Named {
            id: t.id,
            tenant: t.id.to_jmap().parse().ok(),
            name: t.name,
            description: None,
        });
        Ok(query_named(named.collect(), filter, sort))
    }
}
