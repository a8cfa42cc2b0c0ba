//! `x:Account`: users and groups, the Account object of Stalwart 0.16 (a
//! multi-variant object: `@type` `User` or `Group`, each with its fields).
//! Accounts belong to tenants, may change their own credentials, keep their
//! history for time travel, and carry secrets that are hashed or sealed before
//! the commit and generated ones shown once.

mod parse;

pub(crate) use parse::{MAX_PERMISSIONS, known_permissions, parse_roles};
pub(crate) mod render;

use ledger_events::values::{ExternalId, ObjectId};
use ledger_events::{Event, EventLog, ObjectType};
use ledger_projections::query::{Filter, Sort, SortKey, account_matches, query_accounts, sort_states};
use ledger_projections::{AccountState, SnapshotView, StateRead, state};
use serde_json::{Map, Value};

use super::property::{NumberFormat, Property, StringFormat, Variant, WireType};
use super::{JmapObject, ParseContext, SecretRequests, filter_id, filter_text, permissions};
use crate::auth::Principal;
use crate::command::{Command, DestroyAccount};
use crate::jmap::context::CreatedIds;
use crate::jmap::error::{MethodError, SetError};
use crate::secrets::Plaintext;
use ledger_events::model::AccountKind;

pub(crate) struct Account;

const USER: &[&str] = &["User"];
const GROUP: &[&str] = &["Group"];

impl JmapObject for Account {
    type State = AccountState;
    const TYPE: ObjectType = ObjectType::Account;
    const SINGULAR: &'static str = "account";
    const DESCRIPTION: &'static str = "Defines a user or group account for authentication and email access.";
    const PLURAL: &'static str = "accounts";
    const VARIANTS: &'static [Variant] = &[
        Variant::new("User", "User account", Some("x:UserAccount")),
        Variant::new("Group", "Group account", Some("x:GroupAccount")),
    ];
    const LABEL_PROPERTY: Option<&'static str> = Some("emailAddress");
    const COLUMNS: &'static [&'static str] = &["emailAddress", "description", "createdAt"];
    const TENANT_SCOPED: bool = true;
    const TENANT_WRITABLE: bool = true;
    const TIME_TRAVEL: bool = true;
    const PROPERTIES: &'static [Property] = &[
        Property::id(),
        Property::new("@type", WireType::Enum("AccountType"), "User or Group").required().immutable(),
        Property::new(
            "name",
            WireType::String(StringFormat::EmailLocalPart),
            "Name of the account, typically an email address local part.",
        )
        .required(),
        Property::new(
            "domainId",
            WireType::ObjectId("x:Domain"),
            "Identifier for the domain this account belongs to. The email address is name@domain.",
        )
        .required(),
        Property::new(
            "emailAddress",
            WireType::String(StringFormat::EmailAddress),
            "Email address, formed as name@domain.",
        )
        .server_set(),
        Property::new(
            "credentials",
            WireType::ObjectList("x:Credential"),
            "List of credential objects representing authentication methods for the account",
        )
        .default("[]")
        .only(USER),
        Property::new("createdAt", WireType::UtcDateTime, "Creation date of the account").server_set(),
        Property::new(
            "memberGroupIds",
            WireType::Set(&WireType::ObjectId("x:Account/Group")),
            "List of groups that this account is a member of",
        )
        .default("[]")
        .only(USER),
        Property::new(
            "memberTenantId",
            WireType::ObjectId("x:Tenant"),
            "Identifier for the tenant this account belongs to",
        )
        .nullable(),
        Property::new("roles", WireType::Object("x:UserRoles"), "Roles assigned to this user account")
            .default(r#"{"@type":"User"}"#)
            .only(USER),
        Property::new("roles", WireType::Object("x:Roles"), "Roles assigned to this group")
            .default(r#"{"@type":"Default"}"#)
            .only(GROUP),
        Property::new("permissions", WireType::Object("x:Permissions"), "Permissions assigned to this account")
            .default(r#"{"@type":"Inherit"}"#),
        Property::new(
            "quotas",
            WireType::Map(&WireType::Enum("StorageQuota"), &WireType::Number(NumberFormat::UnsignedInteger)),
            "Quotas for different object types within this account",
        )
        .default("{}"),
        Property::new(
            "usedDiskQuota",
            WireType::Number(NumberFormat::Size),
            "Amount of disk space currently used by this account (bytes)",
        )
        .server_set(),
        Property::new("aliases", WireType::ObjectList("x:EmailAlias"), "List of email aliases for the account")
            .default("[]"),
        Property::new("description", WireType::String(StringFormat::String), "Description of the account").nullable(),
        Property::new("locale", WireType::Enum("Locale"), "Preferred locale for the account").default(r#""en_US""#),
        Property::new("timeZone", WireType::Enum("TimeZone"), "Preferred time zone for the account").nullable(),
        Property::new(
            "encryptionAtRest",
            WireType::Object("x:EncryptionAtRest"),
            "Encryption-at-rest settings for the account",
        )
        .default(r#"{"@type":"Disabled"}"#)
        .only(USER),
    ];

    permissions!("sysAccount");

    fn fetch(view: &impl StateRead, id: ObjectId) -> Result<Option<AccountState>, MethodError> {
        Ok(state::account(view, id)?)
    }

    fn list(view: &impl StateRead, limit: usize) -> Result<Vec<ObjectId>, MethodError> {
        Ok(state::account_ids(view, limit)?)
    }

    fn render(a: &AccountState) -> Map<String, Value> {
        render::render(a)
    }

    fn tenant(a: &AccountState) -> Option<&ExternalId> {
        a.member_tenant_id.as_ref()
    }

    fn parse_create(object: Map<String, Value>, ctx: &mut ParseContext<'_>) -> Result<Command, SetError> {
        Ok(Command::CreateAccount(parse::parse_create(object, ctx)?))
    }

    fn parse_update(
        current: &AccountState,
        patched: Map<String, Value>,
        ctx: &mut ParseContext<'_>,
    ) -> Result<Command, SetError> {
        Ok(Command::UpdateAccount(parse::parse_update(current, patched, ctx)?))
    }

    fn destroy(id: ObjectId) -> Command {
        Command::DestroyAccount(DestroyAccount { id })
    }

    fn filter(key: &str, value: &Value, ids: &CreatedIds) -> Result<Option<Filter>, MethodError> {
        Ok(Some(match key {
            "text" => Filter::Text(filter_text(key, value)?),
            "name" => Filter::Name(filter_text(key, value)?),
            "domainId" => Filter::DomainId(filter_id(key, value, ids)?),
            "memberTenantId" => Filter::MemberTenantId(filter_text(key, value)?),
            "memberGroupIds" => Filter::MemberGroupId(filter_id(key, value, ids)?),
            "@type" => match value.as_str() {
                Some("User") => Filter::Kind(AccountKind::User),
                Some("Group") => Filter::Kind(AccountKind::Group),
                _ => return Err(MethodError::invalid("filter @type must be User or Group")),
            },
            _ => return Ok(None),
        }))
    }

    fn sort_key(property: &str) -> Option<SortKey> {
        match property {
            "name" => Some(SortKey::Name),
            "createdAt" => Some(SortKey::CreatedAt),
            "emailAddress" => Some(SortKey::EmailAddress),
            _ => None,
        }
    }

    fn query(view: &impl StateRead, filter: &Filter, sort: &[Sort]) -> Result<Vec<ObjectId>, MethodError> {
        Ok(query_accounts(view, filter, sort)?)
    }

    fn fetch_at(
        view: &SnapshotView,
        log: &EventLog,
        id: ObjectId,
        position: u64,
    ) -> Result<Option<AccountState>, MethodError> {
        Ok(crate::audit::asof::account_at(view, log, view.snapshot(), id, position)?)
    }

    fn query_at(
        view: &SnapshotView,
        log: &EventLog,
        position: u64,
        filter: &Filter,
        sort: &[Sort],
    ) -> Result<Vec<ObjectId>, MethodError> {
        let mut states = crate::audit::asof::accounts_at(view, log, view.snapshot(), position)?;
        states.retain(|a| account_matches(a, filter));
        sort_states(&mut states, sort);
        Ok(states.into_iter().map(|a| a.id).collect())
    }

    fn collect_secrets(object: &Value, out: &mut SecretRequests) {
        parse::collect_secrets(object, true, out);
    }

    /// Puts each generated secret into the rendered credential it belongs to:
    /// the n-th generated secret of a call is the n-th credential it added.
    fn reveal(rendered: &mut Map<String, Value>, events: &[Event], generated: &[(usize, Plaintext)]) {
        let added: Vec<String> = events
            .iter()
            .filter_map(|e| if let Event::CredentialAdded(c) = e { Some(c.credential_id.to_jmap()) } else { None })
            .collect();
        let Some(Value::Array(credentials)) = rendered.get_mut("credentials") else { return };
        for (ordinal, secret) in generated {
            let Some(id) = added.get(*ordinal) else { continue };
            for c in credentials.iter_mut().filter(|c| c.get("credentialId").and_then(Value::as_str) == Some(id)) {
                c["secret"] = Value::String(secret.expose().to_owned());
            }
        }
    }

    fn is_self(principal: &Principal, id: ObjectId) -> bool {
        principal.is(id)
    }

    /// An account may change its own credentials, nothing else.
    fn self_service(patch: &Map<String, Value>) -> bool {
        patch.keys().all(|k| k == "credentials" || k.starts_with("credentials/"))
    }
}
