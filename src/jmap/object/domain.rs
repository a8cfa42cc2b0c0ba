//! `x:Domain`: the mail domains accounts live in (`id`, `name`, `description`,
//! `createdAt`, `memberTenantId`). A domain of a tenant is that tenant's: only
//! its accounts use it, and other tenants do not see it. Names are fixed once created. Source: Stalwart's `x:Domain`
//! (the ledger keeps the directory part of it).

use ledger_events::ObjectType;
use ledger_events::model::DomainSettings;
use ledger_events::values::{ExternalId, ObjectId};
use ledger_projections::query::{Filter, Sort, SortKey};
use ledger_projections::{DomainState, StateRead, state};
use serde_json::{Map, Value, json};

use super::property::{Property, StringFormat, WireType};
use super::{
    JmapObject, Named, ParseContext, filter_named, filter_text, permissions, query_named, refuse_server_set,
    sort_named, take_fixed,
};
use crate::command::{Command, CreateDomain, DestroyDomain, UpdateDomain};
use crate::jmap::context::CreatedIds;
use crate::jmap::error::{MethodError, SetError};

pub(crate) struct Domain;

fn description(value: Option<Value>) -> Result<Option<String>, SetError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(SetError::invalid("description", "description must be a string or null")),
    }
}

fn tenant(value: Option<Value>, ids: &CreatedIds) -> Result<Option<ExternalId>, SetError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => super::resolve_tenant(&v, ids).map(Some),
    }
}

/// The fields of [`DomainSettings`], as Stalwart names them.
const SETTINGS: [&str; 11] = [
    "aliases",
    "isEnabled",
    "catchAllAddress",
    "allowRelaying",
    "subAddressing",
    "reportAddressUri",
    "logo",
    "directoryId",
    "certificateManagement",
    "dkimManagement",
    "dnsManagement",
];

/// Takes the settings fields out of `object` (absent ones keep `base`'s
/// values, `null` resets a non-nullable one to its default); a value of the
/// wrong shape is `invalidProperties` naming its field.
fn settings(object: &mut Map<String, Value>, base: &DomainSettings) -> Result<DomainSettings, SetError> {
    let Value::Object(mut merged) = serde_json::to_value(base).unwrap_or_default() else { unreachable!() };
    let Value::Object(defaults) = serde_json::to_value(DomainSettings::default()).unwrap_or_default() else {
        unreachable!()
    };
    let nullable = ["catchAllAddress", "reportAddressUri", "logo", "directoryId"];
    for field in SETTINGS {
        let Some(value) = object.remove(field) else { continue };
        let value = if value.is_null() && !nullable.contains(&field) { defaults[field].clone() } else { value };
        let mut one = merged.clone();
        one.insert(field.to_owned(), value.clone());
        if let Err(e) = serde_json::from_value::<DomainSettings>(Value::Object(one)) {
            return Err(SetError::invalid(field, format!("{field}: {e}")));
        }
        merged.insert(field.to_owned(), value);
    }
    serde_json::from_value(Value::Object(merged)).map_err(|e| SetError::invalid("aliases", format!("{e}")))
}

fn no_others(object: &Map<String, Value>) -> Result<(), SetError> {
    match object.keys().next() {
        Some(unknown) => Err(SetError::invalid(unknown, format!("{unknown} is not a Domain property"))),
        None => Ok(()),
    }
}

impl JmapObject for Domain {
    type State = DomainState;
    const TYPE: ObjectType = ObjectType::Domain;
    const SINGULAR: &'static str = "domain";
    const PLURAL: &'static str = "domains";
    const LABEL_PROPERTY: Option<&'static str> = Some("name");
    const COLUMNS: &'static [&'static str] = &["name", "isEnabled", "certificateManagement", "dnsManagement"];
    const DESCRIPTION: &'static str = "Defines an email domain that accounts and aliases belong to.";
    const PROPERTIES: &'static [Property] = &[
        Property::id(),
        Property::new("name", WireType::String(StringFormat::DomainName), "Domain name").required().immutable(),
        Property::new("description", WireType::String(StringFormat::String), "Description of the domain").nullable(),
        Property::new("createdAt", WireType::UtcDateTime, "Creation date of the domain").server_set(),
        Property::new(
            "memberTenantId",
            WireType::ObjectId("x:Tenant"),
            "Identifier for the tenant this domain belongs to",
        )
        .nullable(),
        Property::new(
            "aliases",
            WireType::Set(&WireType::String(StringFormat::String)),
            "List of additional domain names that are aliases of this domain",
        )
        .default("[]"),
        Property::new("isEnabled", WireType::Boolean, "Whether this domain is enabled").default("true"),
        Property::new(
            "catchAllAddress",
            WireType::String(StringFormat::EmailAddress),
            "Catch-all email address that receives messages addressed to unknown local parts",
        )
        .nullable(),
        Property::new("allowRelaying", WireType::Boolean, "Whether to allow relaying for non-local recipients")
            .default("false"),
        Property::new(
            "subAddressing",
            WireType::Object("x:SubAddressing"),
            "Whether sub-addressing (plus addressing) is enabled for the domain",
        )
        .default(r#"{"@type":"Enabled"}"#),
        Property::new(
            "reportAddressUri",
            WireType::String(StringFormat::String),
            "Email address to receive DMARC, TLS-RPT and CAA reports for this domain",
        )
        .nullable()
        .default(r#""mailto:postmaster""#),
        Property::new("logo", WireType::String(StringFormat::String), "URL or base64-encoded image representing the domain")
            .nullable(),
        Property::new(
            "directoryId",
            WireType::ObjectId("x:Directory"),
            "Identifier for the directory where accounts for this domain are stored",
        )
        .nullable(),
        Property::new(
            "certificateManagement",
            WireType::Object("x:CertificateManagement"),
            "Whether TLS certificates for this domain are managed manually or automatically (recorded; the ledger manages none)",
        )
        .default(r#"{"@type":"Manual"}"#),
        Property::new(
            "dkimManagement",
            WireType::Object("x:DkimManagement"),
            "Whether DKIM keys for this domain are managed manually or automatically (recorded; the ledger manages none)",
        )
        .default(r#"{"@type":"Manual"}"#),
        Property::new(
            "dnsManagement",
            WireType::Object("x:DnsManagement"),
            "Whether DNS records for this domain are managed manually or automatically (recorded; the ledger manages none)",
        )
        .default(r#"{"@type":"Manual"}"#),
        Property::new(
            "dnsZoneFile",
            WireType::String(StringFormat::Text),
            "Current DNS zone data for the domain (the ledger publishes no records: its origin only)",
        )
        .server_set(),
    ];
    const TENANT_SCOPED: bool = true;

    permissions!("sysDomain");

    fn fetch(view: &impl StateRead, id: ObjectId) -> Result<Option<DomainState>, MethodError> {
        Ok(state::domain(view, id)?)
    }

    fn list(view: &impl StateRead, limit: usize) -> Result<Vec<ObjectId>, MethodError> {
        Ok(state::domain_ids(view, limit)?)
    }

    fn render(d: &DomainState) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("id".into(), json!(d.id.to_jmap()));
        out.insert("name".into(), json!(d.name.as_str()));
        out.insert("description".into(), json!(d.description));
        out.insert("createdAt".into(), json!(d.created_at.to_string()));
        out.insert("memberTenantId".into(), json!(d.member_tenant_id.as_ref().map(ExternalId::as_str)));
        if let Ok(Value::Object(settings)) = serde_json::to_value(&d.settings) {
            out.extend(settings);
        }
        out.insert(
            "dnsZoneFile".into(),
            json!(format!("$ORIGIN {}.\n; account-ledger keeps the directory; it publishes no DNS records\n", d.name)),
        );
        out
    }

    fn tenant(d: &DomainState) -> Option<&ExternalId> {
        d.member_tenant_id.as_ref()
    }

    fn parse_create(mut object: Map<String, Value>, ctx: &mut ParseContext<'_>) -> Result<Command, SetError> {
        refuse_server_set::<Self>(&object)?;
        let name = match object.remove("name") {
            Some(Value::String(s)) => s.parse().map_err(|e| SetError::invalid_value("name", format!("{e}")))?,
            None | Some(Value::Null) => return Err(SetError::required("name")),
            _ => return Err(SetError::invalid("name", "name must be a domain name (a string)")),
        };
        let description = description(object.remove("description"))?;
        let member_tenant_id = tenant(object.remove("memberTenantId"), ctx.ids)?;
        let settings = settings(&mut object, &DomainSettings::default())?;
        no_others(&object)?;
        Ok(Command::CreateDomain(CreateDomain { name, description, member_tenant_id, settings }))
    }

    fn parse_update(
        current: &DomainState,
        mut patched: Map<String, Value>,
        ctx: &mut ParseContext<'_>,
    ) -> Result<Command, SetError> {
        take_fixed::<Self>(&mut patched, &Self::render(current), None)?;
        let description = description(patched.remove("description"))?;
        let member_tenant_id = tenant(patched.remove("memberTenantId"), ctx.ids)?;
        let settings = settings(&mut patched, &current.settings)?;
        no_others(&patched)?;
        Ok(Command::UpdateDomain(UpdateDomain {
            id: current.id,
            description: Some(description),
            member_tenant_id: Some(member_tenant_id),
            settings: Some(settings),
        }))
    }

    fn destroy(id: ObjectId) -> Command {
        Command::DestroyDomain(DestroyDomain { id })
    }

    fn filter(key: &str, value: &Value, _: &CreatedIds) -> Result<Option<Filter>, MethodError> {
        match key {
            "memberTenantId" => Ok(Some(Filter::MemberTenantId(filter_text(key, value)?))),
            _ => filter_named(key, value),
        }
    }

    fn sort_key(property: &str) -> Option<SortKey> {
        sort_named(property)
    }

    /// Domains are few: filtered and sorted in memory.
    fn query(view: &impl StateRead, filter: &Filter, sort: &[Sort]) -> Result<Vec<ObjectId>, MethodError> {
        let named = state::domains(view)?
            .into_iter()
            .map(|d| Named {
                id: d.id,
                name: d.name.as_str().to_owned(),
                description: d.description,
                tenant: d.member_tenant_id,
            })
            .collect();
        Ok(query_named(named, filter, sort))
    }
}
