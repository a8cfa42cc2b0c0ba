//! The JMAP API (RFC 8620) of the Stalwart management objects. Protocol only:
//! it knows the request envelope, methods and objects, and reaches the store
//! through [`Services`]; HTTP framing belongs to the http module.
//!
//! - [`api`]: one request: envelope, limits, result references, method calls.
//! - `method/`: the closed set of methods (`Method`), generic over objects
//!   (`get`, `set`, `query`, `changes`, `query_changes`) plus the extensions.
//! - `object/`: one file per object type behind the `JmapObject` trait.
//! - `context`, `request`, `error`, `patch`, `session`, `state`: the parts they share.

mod api;
mod context;
mod error;
mod method;
mod object;
mod patch;
mod request;
pub(crate) mod schema;
pub mod session;
mod state;

pub use api::api;
pub use context::{Services, ServicesConfig};
pub use error::RequestError;
pub(crate) use schema::document::document as schema_document;
pub use session::Limits;
pub use state::state_string;

/// The permission `/get` of an object type needs (`sysAccountGet`, …); JMAP
/// push of the type's states needs the same (RFC 8620 §7: a client is told
/// only of what it may read).
pub(crate) fn read_permission(t: ledger_events::ObjectType) -> &'static str {
    use object::JmapObject;
    object::with_object!(t, |O| O::permission(object::Verb::Get))
}

/// Whether objects of a type belong to tenants (`memberTenantId`): a tenant
/// principal is told only of its own tenant's.
pub(crate) fn tenant_scoped(t: ledger_events::ObjectType) -> bool {
    use object::JmapObject;
    object::with_object!(t, |O| O::TENANT_SCOPED)
}

/// An account as `x:Account/get` renders it (secrets masked), for readers
/// that fold accounts themselves (the console's timeline).
pub(crate) fn render_account(a: &ledger_projections::AccountState) -> serde_json::Map<String, serde_json::Value> {
    use object::JmapObject;
    object::account::Account::render(a)
}
