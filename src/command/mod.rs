//! Commands and the pure decide step: a command plus current state gives events or a
//! rejection. No clock, randomness or I/O: time arrives in [`DecideContext`], ids come
//! from the state's id counter, secrets arrive already hashed.
//!
//! One file per command, as in mini-redis.

mod account_spec;
pub(crate) mod authority;
mod create_account;
mod create_domain;
mod destroy_account;
mod destroy_domain;
mod erase_account;
mod purge;
mod report_usage;
mod role;
mod tenant;
mod trim_changes;
mod update_account;
mod update_domain;

use ledger_events::values::{ObjectId, UtcDateTime};
use ledger_events::{Event, ObjectType};
use ledger_projections::{StateRead, state};

pub use account_spec::{AliasSpec, CredentialChange, CredentialSpec, NewCredential};
pub use authority::Writer;
pub use create_account::CreateAccount;
pub use create_domain::CreateDomain;
pub use destroy_account::DestroyAccount;
pub use destroy_domain::DestroyDomain;
pub use erase_account::EraseAccount;
pub use purge::PurgeExpiredCredentials;
pub use report_usage::{ReportUsage, UsageAccepted, UsageChange, UsagePlan, UsageReport};
pub use role::{CreateRole, DestroyRole, RoleFields, UpdateRole};
pub use tenant::{CreateTenant, DestroyTenant, TenantFields, UpdateTenant};
pub use trim_changes::TrimChanges;
pub use update_account::UpdateAccount;
pub use update_domain::UpdateDomain;

/// A request to change the ledger, already parsed into validated types.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    CreateDomain(CreateDomain),
    UpdateDomain(UpdateDomain),
    DestroyDomain(DestroyDomain),
    CreateAccount(CreateAccount),
    UpdateAccount(UpdateAccount),
    DestroyAccount(DestroyAccount),
    CreateRole(CreateRole),
    UpdateRole(UpdateRole),
    DestroyRole(DestroyRole),
    CreateTenant(CreateTenant),
    UpdateTenant(UpdateTenant),
    DestroyTenant(DestroyTenant),
    PurgeExpiredCredentials(PurgeExpiredCredentials),
    EraseAccount(EraseAccount),
    TrimChanges(TrimChanges),
}

/// What the I/O edge hands to decide.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecideContext {
    pub now: UtcDateTime,
}

/// Why a command was refused. The JMAP layer maps each to a SetError type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: ObjectId },
    /// A name or address another object holds (Stalwart's `primaryKeyViolation`).
    #[error("{description}")]
    AlreadyExists { existing: ObjectType, existing_id: ObjectId, property: String, description: String },
    /// A reference to an object that does not exist (or that the writer's
    /// tenant may not use): Stalwart's `invalidForeignKey`.
    #[error("{description}")]
    InvalidForeignKey { property: String, object: ObjectType, id: String, description: String },
    /// A value of a field is not valid for it (Stalwart's `validationFailed`).
    #[error("{description}")]
    ValidationFailed { property: String, failure: Validation, description: String },
    #[error("{description}")]
    InvalidProperties { properties: Vec<String>, description: String },
    /// The object is still referenced and cannot change so (a domain with
    /// accounts moving tenant).
    #[error("{description}")]
    StillReferenced { description: String },
    /// A destroy of an object others still refer to (Stalwart's
    /// `objectIsLinked`): `linked` names some of them.
    #[error("{description}")]
    Linked { linked: Vec<(ObjectType, ObjectId)>, description: String },
    #[error("{description}")]
    OverQuota { description: String },
    /// The writer may not make this change ([`authority`]).
    #[error("{description}")]
    Forbidden { description: String },
    /// The state could not be read; nothing was decided.
    #[error("internal error: {0}")]
    Internal(String),
}

/// How a field failed validation (the `type` of Stalwart's `validationErrors` entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// The value is not one the field takes.
    Invalid,
    /// A create lacks the field.
    Required,
    /// Longer than `required` characters.
    MaxLength(usize),
}

impl Rejection {
    pub(crate) fn invalid(property: &str, description: impl Into<String>) -> Self {
        Rejection::InvalidProperties { properties: vec![property.to_owned()], description: description.into() }
    }

    pub(crate) fn validation(property: &str, failure: Validation, description: impl Into<String>) -> Self {
        Rejection::ValidationFailed { property: property.to_owned(), failure, description: description.into() }
    }

    pub(crate) fn foreign_key(
        property: &str,
        object: ObjectType,
        id: impl ToString,
        description: impl Into<String>,
    ) -> Self {
        Rejection::InvalidForeignKey {
            property: property.to_owned(),
            object,
            id: id.to_string(),
            description: description.into(),
        }
    }
}

impl From<ledger_projections::Error> for Rejection {
    fn from(e: ledger_projections::Error) -> Self {
        Rejection::Internal(e.to_string())
    }
}

pub(crate) type Decision = Result<Vec<Event>, Rejection>;

/// Decides which events `command` produces against `view`.
pub(crate) fn decide(command: &Command, view: &impl StateRead, ctx: &DecideContext) -> Decision {
    match command {
        Command::CreateDomain(c) => c.decide(view, ctx),
        Command::UpdateDomain(c) => c.decide(view),
        Command::DestroyDomain(c) => c.decide(view),
        Command::CreateAccount(c) => c.decide(view, ctx),
        Command::UpdateAccount(c) => c.decide(view, ctx),
        Command::DestroyAccount(c) => c.decide(view),
        Command::CreateRole(c) => c.decide(view),
        Command::UpdateRole(c) => c.decide(view),
        Command::DestroyRole(c) => c.decide(view),
        Command::CreateTenant(c) => c.decide(view, ctx),
        Command::UpdateTenant(c) => c.decide(view),
        Command::DestroyTenant(c) => c.decide(view),
        Command::PurgeExpiredCredentials(c) => c.decide(view, ctx),
        Command::EraseAccount(c) => c.decide(view),
        Command::TrimChanges(c) => c.decide(view),
    }
}

/// Hands out ids from the state's counter, in order, within one decision.
pub(crate) struct IdAllocator {
    next: u64,
}

impl IdAllocator {
    pub(crate) fn new(view: &impl StateRead) -> Result<Self, Rejection> {
        Ok(IdAllocator { next: state::next_object_id(view)? })
    }

    pub(crate) fn allocate(&mut self) -> ObjectId {
        let id = ObjectId(self.next);
        self.next += 1;
        id
    }
}

/// Checks that a `memberTenantId` names an `x:Tenant` that exists
/// (`invalidForeignKey` otherwise).
pub(crate) fn check_tenant(
    view: &impl StateRead,
    property: &str,
    tenant: Option<&ledger_events::values::ExternalId>,
) -> Result<(), Rejection> {
    let Some(tenant) = tenant else { return Ok(()) };
    let exists = match ObjectId::from_jmap(tenant.as_str()) {
        Some(id) => state::tenant(view, id)?.is_some(),
        None => false,
    };
    if exists {
        Ok(())
    } else {
        Err(Rejection::foreign_key(property, ObjectType::Tenant, tenant, format!("tenant {tenant} does not exist")))
    }
}

/// Objects an `objectIsLinked` refusal names at most.
pub(crate) const LINKED_SHOWN: usize = 10;

/// Longest description the ledger stores.
pub(crate) const MAX_DESCRIPTION: usize = 1024;

pub(crate) fn check_description(property: &str, d: &Option<String>) -> Result<(), Rejection> {
    match d {
        Some(text) if text.chars().count() > MAX_DESCRIPTION => Err(Rejection::validation(
            property,
            Validation::MaxLength(MAX_DESCRIPTION),
            format!("{property} is longer than {MAX_DESCRIPTION} characters"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
