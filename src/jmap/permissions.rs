//! The permission each method needs (enforced by the auth layer).

use ledger_events::ObjectType;

/// What a `/set` item does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOperation {
    Create,
    Update,
    Destroy,
}

/// The permission for reading objects of a type (`/get`, `/changes`).
pub fn get_permission(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Account => "sysAccountGet",
        ObjectType::Domain => "sysDomainGet",
        ObjectType::Role => "sysRoleGet",
    }
}

/// The permission for `/query` and `/queryChanges`.
pub fn query_permission(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Account => "sysAccountQuery",
        ObjectType::Domain => "sysDomainQuery",
        ObjectType::Role => "sysRoleQuery",
    }
}

/// The permission for one kind of `/set` item.
pub fn set_permission(t: ObjectType, op: SetOperation) -> &'static str {
    match (t, op) {
        (ObjectType::Account, SetOperation::Create) => "sysAccountCreate",
        (ObjectType::Account, SetOperation::Update) => "sysAccountUpdate",
        (ObjectType::Account, SetOperation::Destroy) => "sysAccountDestroy",
        (ObjectType::Domain, SetOperation::Create) => "sysDomainCreate",
        (ObjectType::Domain, SetOperation::Update) => "sysDomainUpdate",
        (ObjectType::Domain, SetOperation::Destroy) => "sysDomainDestroy",
        (ObjectType::Role, SetOperation::Create) => "sysRoleCreate",
        (ObjectType::Role, SetOperation::Update) => "sysRoleUpdate",
        (ObjectType::Role, SetOperation::Destroy) => "sysRoleDestroy",
    }
}
