//! JMAP objects, one file each: the [`JmapObject`] trait says everything the
//! generic methods (`super::method`) need to know of a type — its name and
//! properties, the permission per verb, how to list, fetch and render it, how a
//! create or a patched object becomes a command, what destroys it, its filters
//! and sort keys. Adding a type is one file here plus its commands and events,
//! and one line in [`with_object!`].

pub(crate) mod account;
pub(crate) mod domain;
pub(crate) mod property;
pub(crate) mod role;
pub(crate) mod tenant;

use std::collections::HashMap;

use ledger_events::values::{ExternalId, ObjectId};
use ledger_events::{Event, EventLog, ObjectType};
use ledger_projections::query::{Filter, Sort, SortKey};
use ledger_projections::{SnapshotView, StateRead};
use serde_json::{Map, Value};

use super::context::{CreatedIds, UnresolvedId};
use super::error::{MethodError, SetError};
use crate::auth::Principal;
use crate::command::Command;
use crate::secrets::Plaintext;
use ledger_events::values::SecretHash;
use property::{Property, Update, Variant};

/// What a method does with objects, each with its own permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    /// `/get` and `/changes`.
    Get,
    /// `/query` and `/queryChanges`.
    Query,
    Create,
    Update,
    Destroy,
}

/// Runs `$body` with the type alias `$object` set to the [`JmapObject`] of
/// `$type` (an `ObjectType`): the one list of the object types JMAP serves.
macro_rules! with_object {
    ($type:expr, |$object:ident| $body:expr) => {
        match $type {
            ledger_events::ObjectType::Account => {
                type $object = $crate::jmap::object::account::Account;
                $body
            }
            ledger_events::ObjectType::Domain => {
                type $object = $crate::jmap::object::domain::Domain;
                $body
            }
            ledger_events::ObjectType::Role => {
                type $object = $crate::jmap::object::role::Role;
                $body
            }
            ledger_events::ObjectType::Tenant => {
                type $object = $crate::jmap::object::tenant::Tenant;
                $body
            }
        }
    };
}
pub(crate) use with_object;

/// Runs `$body` once for each object type JMAP serves, with `$object` the
/// [`JmapObject`]: the types of [`with_object!`] and the views onto accounts.
macro_rules! for_each_served {
    (|$object:ident| $body:expr) => {{
        for t in ledger_events::ObjectType::ALL {
            $crate::jmap::object::with_object!(t, |$object| $body);
        }
    }};
}
pub(crate) use for_each_served;

/// The permissions of a type, named as Stalwart names them: the schema's
/// `permissionPrefix` followed by the verb (`sysAccountGet`, …).
macro_rules! permissions {
    ($prefix:literal) => {
        fn permission(verb: $crate::jmap::object::Verb) -> &'static str {
            use $crate::jmap::object::Verb;
            match verb {
                Verb::Get => concat!($prefix, "Get"),
                Verb::Query => concat!($prefix, "Query"),
                Verb::Create => concat!($prefix, "Create"),
                Verb::Update => concat!($prefix, "Update"),
                Verb::Destroy => concat!($prefix, "Destroy"),
            }
        }
    };
}
pub(crate) use permissions;

/// Secrets of one `/set` call to make safe before the commit: passwords to hash
/// with argon2id (too slow for the writer thread), `otpAuth` URIs to seal.
#[derive(Default)]
pub(crate) struct SecretRequests {
    pub(crate) passwords: Vec<Plaintext>,
    pub(crate) otps: Vec<Plaintext>,
}

/// The secrets of a call, made safe: each plaintext's hash or sealed form.
#[derive(Default, Clone)]
pub(crate) struct PreparedSecrets {
    pub(crate) password_hashes: HashMap<Plaintext, SecretHash>,
    pub(crate) sealed_otp: HashMap<Plaintext, String>,
}

/// What parsing a create or a patched object needs besides the object.
pub(crate) struct ParseContext<'a> {
    pub(crate) ids: &'a CreatedIds,
    pub(crate) secrets: &'a PreparedSecrets,
    /// Secrets the server generated while parsing, keyed as the type's
    /// [`JmapObject::reveal`] expects; the client sees them once.
    pub(crate) generated: Vec<(usize, Plaintext)>,
}

/// A JMAP object type of the Stalwart management API, served by the generic
/// methods. Reads are over a projection state ([`StateRead`]); writes are
/// [`Command`]s the decide layer checks. Errors a client caused are
/// [`SetError`]s (per item) or [`MethodError`]s (per call).
pub(crate) trait JmapObject: 'static {
    /// The projected state of one object.
    type State: Send + 'static;

    /// The log's name for the type: change tracking and state strings are per type.
    const TYPE: ObjectType;
    /// The JMAP name, `x:Account`.
    const NAME: &'static str = Self::TYPE.jmap_name();
    /// The noun in messages and in the schema's `singularName`, `account`.
    const SINGULAR: &'static str;
    /// What the type is for (schema `objects.<name>.description`).
    const DESCRIPTION: &'static str;
    /// Every property, once per variant that types it differently.
    const PROPERTIES: &'static [Property];
    /// The `@type`s of a multi-variant object (`User` → `x:UserAccount`);
    /// empty when it has none.
    const VARIANTS: &'static [Variant] = &[];
    /// The plural noun (schema `lists.<name>.pluralName`).
    const PLURAL: &'static str;
    /// The property that labels an id of the type in a client's output
    /// (schema `lists.<name>.labelProperty`).
    const LABEL_PROPERTY: Option<&'static str> = None;
    /// `query`'s default columns in Stalwart's client (schema `lists.<name>.columns`).
    const COLUMNS: &'static [&'static str] = &[];
    /// A singleton (one per account, id `singleton`), as `x:AccountPassword`.
    const SINGLETON: bool = false;
    /// Whether objects belong to tenants: a tenant-scoped principal sees and
    /// changes only its tenant's (by `memberTenantId`). Other types are global:
    /// such a principal may not change them.
    const TENANT_SCOPED: bool = false;
    /// Whether a tenant principal may create, change and destroy its tenant's
    /// objects of the type (accounts), or only read them (domains, which a
    /// global administrator assigns to tenants).
    const TENANT_WRITABLE: bool = false;
    /// Whether `/get` and `/query` take `asOf` (time travel).
    const TIME_TRAVEL: bool = false;

    /// The permission a verb needs (see [`permissions!`]).
    fn permission(verb: Verb) -> &'static str;

    /// The object with `id`, `None` when there is none.
    fn fetch(view: &impl StateRead, id: ObjectId) -> Result<Option<Self::State>, MethodError>;
    /// Up to `limit` ids of every object, in the order `/get` without ids lists them.
    fn list(view: &impl StateRead, limit: usize) -> Result<Vec<ObjectId>, MethodError>;
    /// The wire form, every property.
    fn render(state: &Self::State) -> Map<String, Value>;
    /// The tenant an object belongs to.
    fn tenant(_state: &Self::State) -> Option<&ExternalId> {
        None
    }

    /// A create object into its command.
    fn parse_create(object: Map<String, Value>, ctx: &mut ParseContext<'_>) -> Result<Command, SetError>;
    /// The current object with a patch applied (RFC 8620 §5.3) into an update command.
    fn parse_update(
        current: &Self::State,
        patched: Map<String, Value>,
        ctx: &mut ParseContext<'_>,
    ) -> Result<Command, SetError>;
    fn destroy(id: ObjectId) -> Command;

    /// The filter a `FilterCondition` property stands for; `Ok(None)` when the
    /// type has no such filter (RFC 8620 §5.5).
    fn filter(key: &str, value: &Value, ids: &CreatedIds) -> Result<Option<Filter>, MethodError>;
    /// The sort key of a `Comparator` property, if the type sorts by it.
    fn sort_key(property: &str) -> Option<SortKey>;
    /// Every object matching `filter`, sorted; ties by creation (id) order.
    fn query(view: &impl StateRead, filter: &Filter, sort: &[Sort]) -> Result<Vec<ObjectId>, MethodError>;

    /// The object as it was at log position `position` (with [`Self::TIME_TRAVEL`]).
    fn fetch_at(
        _view: &SnapshotView,
        _log: &EventLog,
        _id: ObjectId,
        _position: u64,
    ) -> Result<Option<Self::State>, MethodError> {
        Err(as_of_unsupported())
    }
    /// [`Self::query`] over the objects as they were at `position`.
    fn query_at(
        _view: &SnapshotView,
        _log: &EventLog,
        _position: u64,
        _filter: &Filter,
        _sort: &[Sort],
    ) -> Result<Vec<ObjectId>, MethodError> {
        Err(as_of_unsupported())
    }

    /// The secrets in a create object or a patch, to make safe before the commit.
    fn collect_secrets(_object: &Value, _out: &mut SecretRequests) {}
    /// Puts the secrets generated while parsing into the rendered object, the
    /// one time the client sees them.
    fn reveal(_rendered: &mut Map<String, Value>, _events: &[Event], _generated: &[(usize, Plaintext)]) {}
    /// Whether `id` is the calling principal itself (self-service).
    fn is_self(_principal: &Principal, _id: ObjectId) -> bool {
        false
    }
    /// Whether a patch of one's own object needs no update permission.
    fn self_service(_patch: &Map<String, Value>) -> bool {
        false
    }
}

/// The object in its wire form: every property, sets and object lists as maps
/// (see [`crate::jmap::schema::wire`]).
pub(crate) fn wire_render<O: JmapObject>(state: &O::State) -> Map<String, Value> {
    let mut object = O::render(state);
    crate::jmap::schema::wire::to_wire(O::PROPERTIES, &mut object);
    object
}

fn as_of_unsupported() -> MethodError {
    MethodError::invalid("asOf is supported for x:Account")
}

/// The id a create's events gave the new object of type `O`.
pub(crate) fn created_id<O: JmapObject>(events: &[Event]) -> Option<ObjectId> {
    events.iter().find_map(|e| e.created_object().filter(|(t, _)| *t == O::TYPE).map(|(_, id)| id))
}

/// Whether the principal may see an object of `O` in this tenant.
pub(crate) fn in_scope<O: JmapObject>(principal: &Principal, state: &O::State) -> bool {
    !O::TENANT_SCOPED || principal.sees(O::tenant(state))
}

/// Whether `O` has a property of that name in any variant.
pub(crate) fn has_property<O: JmapObject>(name: &str) -> bool {
    O::PROPERTIES.iter().any(|p| p.name == name)
}

/// Refuses server-set properties in a create object (RFC 8620 §5.3:
/// `invalidProperties`).
pub(crate) fn refuse_server_set<O: JmapObject>(object: &Map<String, Value>) -> Result<(), SetError> {
    for p in O::PROPERTIES.iter().filter(|p| !p.client_set()) {
        if object.contains_key(p.name) {
            return Err(SetError::invalid(p.name, format!("{} is set by the server", p.name)));
        }
    }
    Ok(())
}

/// Takes the server-set and immutable properties of `variant` out of a patched
/// object, refusing any whose value is not the current one (`current` is the
/// rendered object before the patch).
pub(crate) fn take_fixed<O: JmapObject>(
    patched: &mut Map<String, Value>,
    current: &Map<String, Value>,
    variant: Option<&str>,
) -> Result<(), SetError> {
    for p in O::PROPERTIES.iter().filter(|p| p.update != Update::Mutable && p.of(variant)) {
        if patched.remove(p.name).as_ref() != current.get(p.name) {
            let why = match p.update {
                Update::ServerSet => format!("{} is set by the server", p.name),
                _ => format!("{}'s {} cannot change", with_article(O::SINGULAR), p.name),
            };
            return Err(SetError::invalid(p.name, why));
        }
    }
    Ok(())
}

/// "an account", "a domain".
fn with_article(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {noun}")
}

/// The id a filter value names (a `#creationId` too). An id this ledger never
/// issued matches nothing, like any unknown id.
pub(crate) fn filter_id(key: &str, value: &Value, ids: &CreatedIds) -> Result<ObjectId, MethodError> {
    let raw = value.as_str().ok_or_else(|| MethodError::invalid(format!("filter {key} must be an id")))?;
    Ok(ids.resolve(raw).unwrap_or(ObjectId(u64::MAX)))
}

/// A filter value that must be a string.
pub(crate) fn filter_text(key: &str, value: &Value) -> Result<String, MethodError> {
    value.as_str().map(str::to_owned).ok_or_else(|| MethodError::invalid(format!("filter {key} must be a string")))
}

/// An id property of a create or patched object, a `#creationId` too, as
/// `invalidProperties` naming `property` when it names nothing.
pub(crate) fn resolve_id(property: &str, value: &Value, ids: &CreatedIds) -> Result<ObjectId, SetError> {
    let raw = value.as_str().ok_or_else(|| SetError::invalid(property, format!("{property} must be an id string")))?;
    ids.resolve(raw).map_err(|e: UnresolvedId| SetError::invalid(property, e.to_string()))
}

/// A `memberTenantId` value: a tenant id, or the `#creationId` of a tenant
/// created earlier in the request (`invalidProperties` otherwise; whether the
/// tenant exists is the decide layer's `invalidForeignKey`).
pub(crate) fn resolve_tenant(value: &Value, ids: &CreatedIds) -> Result<ExternalId, SetError> {
    let bad = |why: String| SetError::invalid("memberTenantId", why);
    let raw = value.as_str().ok_or_else(|| bad("memberTenantId must be a tenant id or null".into()))?;
    let resolved = match raw.strip_prefix('#') {
        Some(_) => ids.resolve(raw).map_err(|e: UnresolvedId| bad(e.to_string()))?.to_jmap(),
        None => raw.to_owned(),
    };
    resolved.parse().map_err(|e| bad(format!("memberTenantId: {e}")))
}

/// The filters of named objects: `name` (prefix) and `text`.
pub(crate) fn filter_named(key: &str, value: &Value) -> Result<Option<Filter>, MethodError> {
    Ok(match key {
        "name" => Some(Filter::Name(filter_text(key, value)?)),
        "text" => Some(Filter::Text(filter_text(key, value)?)),
        _ => None,
    })
}

/// The sort keys of named objects: `name` and `createdAt` (creation order).
pub(crate) fn sort_named(property: &str) -> Option<SortKey> {
    match property {
        "name" => Some(SortKey::Name),
        "createdAt" => Some(SortKey::CreatedAt),
        _ => None,
    }
}

/// An object that is named and may be described, for the types small enough
/// to filter and sort in memory (domains, roles).
pub(crate) struct Named {
    pub(crate) id: ObjectId,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    /// Its tenant, for the `memberTenantId` filter.
    pub(crate) tenant: Option<ExternalId>,
}

/// `name` (prefix) and `text` (substring of name or description) filters and
/// `name` sorts over named objects, case-insensitively; ties by id.
pub(crate) fn query_named(objects: Vec<Named>, filter: &Filter, sort: &[Sort]) -> Vec<ObjectId> {
    fn matches(o: &Named, f: &Filter) -> bool {
        match f {
            Filter::All => true,
            Filter::Name(n) => o.name.to_lowercase().starts_with(&n.to_lowercase()),
            Filter::Text(t) => {
                let t = t.to_lowercase();
                o.name.to_lowercase().contains(&t)
                    || o.description.as_deref().is_some_and(|x| x.to_lowercase().contains(&t))
            }
            Filter::And(c) => c.iter().all(|f| matches(o, f)),
            Filter::Or(c) => c.iter().any(|f| matches(o, f)),
            Filter::Not(c) => !c.iter().any(|f| matches(o, f)),
            Filter::MemberTenantId(t) => o.tenant.as_ref().is_some_and(|x| x.as_str() == t),
            _ => false,
        }
    }
    let mut objects: Vec<Named> = objects.into_iter().filter(|o| matches(o, filter)).collect();
    objects.sort_by(|a, b| {
        for s in sort {
            let ord = match s.key {
                SortKey::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
                _ => a.id.cmp(&b.id),
            };
            let ord = if s.ascending { ord } else { ord.reverse() };
            if ord.is_ne() {
                return ord;
            }
        }
        a.id.cmp(&b.id)
    });
    objects.into_iter().map(|o| o.id).collect()
}
