//! Every JMAP error the API can return, and the one place internal errors and
//! command rejections become them (RFC 8620 §3.6 request and method errors,
//! §5.3 SetError). Protocol only: the HTTP layer turns a [`RequestError`] into
//! a response with [`RequestError::to_problem`].

use serde_json::{Map, Value, json};

use crate::command::{Rejection, Validation};
use crate::store::StoreError;

/// A request-level error: the whole request is refused with problem details
/// (RFC 7807; RFC 8620 §3.6.1), HTTP status 400.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestError {
    UnknownCapability(String),
    NotJson(String),
    NotRequest(String),
    /// `limit` names the limit, e.g. `maxSizeRequest`.
    Limit {
        limit: &'static str,
        detail: String,
    },
}

impl RequestError {
    /// The HTTP status every request-level error has.
    pub(crate) const STATUS: u16 = 400;

    /// The problem details body: `type` (`urn:ietf:params:jmap:error:<name>`),
    /// `status`, `detail`, and `limit` for a limit.
    pub fn to_problem(&self) -> Value {
        let (kind, detail, limit) = match self {
            RequestError::UnknownCapability(d) => ("unknownCapability", d, None),
            RequestError::NotJson(d) => ("notJSON", d, None),
            RequestError::NotRequest(d) => ("notRequest", d, None),
            RequestError::Limit { limit, detail } => ("limit", detail, Some(*limit)),
        };
        let mut body = json!({
            "type": format!("urn:ietf:params:jmap:error:{kind}"),
            "status": Self::STATUS,
            "detail": detail,
        });
        if let Some(limit) = limit {
            body["limit"] = json!(limit);
        }
        body
    }
}

/// A method-level error, returned as `["error", {...}, callId]` (RFC 8620 §3.6.2).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MethodError {
    UnknownMethod(String),
    InvalidArguments(String),
    InvalidResultReference(String),
    Forbidden(String),
    AccountNotFound,
    RequestTooLarge(String),
    /// `requestTooLarge` because the response's bound is reached: the rest of
    /// the request has nothing left (its calls' work was spent).
    ResponseFull(String),
    StateMismatch,
    CannotCalculateChanges(String),
    AnchorNotFound,
    UnsupportedFilter(String),
    UnsupportedSort(String),
    TooManyChanges,
    /// Details are logged, never sent.
    ServerFail,
    /// A resource was busy; the same call later may succeed (RFC 8620 §3.6.2).
    ServerUnavailable(String),
}

impl MethodError {
    pub(crate) fn invalid(description: impl Into<String>) -> Self {
        MethodError::InvalidArguments(description.into())
    }

    /// `forbidden`, naming the permission that was missing.
    pub(crate) fn needs(permission: &str) -> Self {
        MethodError::Forbidden(format!("{permission} is required"))
    }

    pub(crate) fn to_json(&self) -> Value {
        let (kind, description) = match self {
            MethodError::UnknownMethod(d) => ("unknownMethod", Some(d.clone())),
            MethodError::InvalidArguments(d) => ("invalidArguments", Some(d.clone())),
            MethodError::InvalidResultReference(d) => ("invalidResultReference", Some(d.clone())),
            MethodError::Forbidden(d) => ("forbidden", Some(d.clone())),
            MethodError::AccountNotFound => ("accountNotFound", None),
            MethodError::RequestTooLarge(d) | MethodError::ResponseFull(d) => ("requestTooLarge", Some(d.clone())),
            MethodError::StateMismatch => ("stateMismatch", None),
            MethodError::CannotCalculateChanges(d) => ("cannotCalculateChanges", Some(d.clone())),
            MethodError::AnchorNotFound => ("anchorNotFound", None),
            MethodError::UnsupportedFilter(d) => ("unsupportedFilter", Some(d.clone())),
            MethodError::UnsupportedSort(d) => ("unsupportedSort", Some(d.clone())),
            MethodError::TooManyChanges => ("tooManyChanges", None),
            MethodError::ServerFail => ("serverFail", None),
            MethodError::ServerUnavailable(d) => ("serverUnavailable", Some(d.clone())),
        };
        let mut out = Map::new();
        out.insert("type".into(), json!(kind));
        if let Some(d) = description {
            out.insert("description".into(), json!(d));
        }
        Value::Object(out)
    }
}

impl From<StoreError> for MethodError {
    fn from(e: StoreError) -> Self {
        if let StoreError::ErasurePending { .. } = e {
            tracing::warn!(error = %e, "erasure not yet complete on disk");
            return MethodError::ServerUnavailable(e.to_string());
        }
        if let StoreError::Cluster(_) = e {
            // The cluster's log did not take the write (servers unreachable,
            // too many racing writers, or this node stopped following).
            tracing::warn!(error = %e, "write refused by the cluster log");
            return MethodError::ServerUnavailable(e.to_string());
        }
        tracing::error!(error = %e, "storage failure answered with serverFail");
        MethodError::ServerFail
    }
}

impl From<ledger_projections::Error> for MethodError {
    fn from(e: ledger_projections::Error) -> Self {
        tracing::error!(error = %e, "projection read failure answered with serverFail");
        MethodError::ServerFail
    }
}

/// The SetError types the ledger returns: RFC 8620 §5.3's and Stalwart's
/// registry types (stalwart-cli-wire.md §2.4; `stalwart-cli` parses only its
/// closed list, so no other type is ever sent). The mapping from refusals is
/// in docs/api.md, "Errors".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetErrorType {
    Forbidden,
    NotFound,
    InvalidPatch,
    InvalidProperties,
    OverQuota,
    /// RFC 8620 §5.3: the object would exceed a server limit on the number or
    /// size of items in a property.
    TooLarge,
    /// RFC 8620: a create or destroy of a singleton.
    Singleton,
    /// Stalwart: a name or address another object holds (`properties`, `objectId`).
    PrimaryKeyViolation,
    /// Stalwart: a reference to an object that does not exist (`objectId`).
    InvalidForeignKey,
    /// Stalwart: a destroy of an object others refer to (`linkedObjects`).
    ObjectIsLinked,
    /// Stalwart: a field's value failed validation (`validationErrors`).
    ValidationFailed,
}

impl SetErrorType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SetErrorType::Forbidden => "forbidden",
            SetErrorType::NotFound => "notFound",
            SetErrorType::InvalidPatch => "invalidPatch",
            SetErrorType::InvalidProperties => "invalidProperties",
            SetErrorType::OverQuota => "overQuota",
            SetErrorType::TooLarge => "tooLarge",
            SetErrorType::Singleton => "singleton",
            SetErrorType::PrimaryKeyViolation => "primaryKeyViolation",
            SetErrorType::InvalidForeignKey => "invalidForeignKey",
            SetErrorType::ObjectIsLinked => "objectIsLinked",
            SetErrorType::ValidationFailed => "validationFailed",
        }
    }
}

/// A per-item error of `/set` (RFC 8620 §5.3 SetError).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SetError {
    pub(crate) kind: SetErrorType,
    pub(crate) description: Option<String>,
    pub(crate) properties: Option<Vec<String>>,
    pub(crate) existing_id: Option<String>,
    /// Stalwart's fields, boxed: most errors have none.
    pub(crate) detail: Option<Box<Detail>>,
}

/// The fields of Stalwart's SetErrors beyond RFC 8620's.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Detail {
    /// `objectId`: `{"object": "Account", "id": "b"}`.
    pub(crate) object_id: Option<Value>,
    /// `linkedObjects`, in the `objectId` shape.
    pub(crate) linked_objects: Option<Vec<Value>>,
    /// `validationErrors`: `{"type": "Invalid|Required|MaxLength", "property", …}`.
    pub(crate) validation_errors: Option<Vec<Value>>,
}

/// An object reference as Stalwart's SetErrors write it: the type without `x:`.
pub(crate) fn object_ref(object: ledger_events::ObjectType, id: &str) -> Value {
    json!({"object": object.jmap_name().trim_start_matches("x:"), "id": id})
}

impl SetError {
    pub(crate) fn new(kind: SetErrorType, description: impl Into<String>) -> Self {
        SetError { kind, description: Some(description.into()), properties: None, existing_id: None, detail: None }
    }

    pub(crate) fn forbidden(description: impl Into<String>) -> Self {
        SetError::new(SetErrorType::Forbidden, description)
    }

    pub(crate) fn not_found(description: impl Into<String>) -> Self {
        SetError::new(SetErrorType::NotFound, description)
    }

    pub(crate) fn invalid_properties(properties: Vec<String>, description: impl Into<String>) -> Self {
        SetError { properties: Some(properties), ..SetError::new(SetErrorType::InvalidProperties, description) }
    }

    /// `invalidProperties` naming one property.
    pub(crate) fn invalid(property: &str, description: impl Into<String>) -> Self {
        SetError::invalid_properties(vec![property.to_owned()], description)
    }

    /// `tooLarge` (RFC 8620 §5.3) for `property`, which holds more than `max` items.
    pub(crate) fn too_large(property: &str, max: usize) -> Self {
        let mut e = SetError::new(SetErrorType::TooLarge, format!("{property} holds at most {max} items"));
        e.properties = Some(vec![property.to_owned()]);
        e
    }

    /// `validationFailed` (Stalwart): a create lacks a required property.
    pub(crate) fn required(property: &str) -> Self {
        SetError::from(Rejection::validation(property, Validation::Required, format!("{property} is required")))
    }

    /// `validationFailed` (Stalwart): the value is not one the property takes.
    pub(crate) fn invalid_value(property: &str, description: impl Into<String>) -> Self {
        SetError::from(Rejection::validation(property, Validation::Invalid, description))
    }

    pub(crate) fn invalid_patch(description: impl Into<String>) -> Self {
        SetError::new(SetErrorType::InvalidPatch, description)
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("type".into(), json!(self.kind.as_str()));
        if let Some(d) = &self.description {
            out.insert("description".into(), json!(d));
        }
        if let Some(p) = &self.properties {
            out.insert("properties".into(), json!(p));
        }
        if let Some(id) = &self.existing_id {
            out.insert("existingId".into(), json!(id));
        }
        let detail = self.detail.as_deref().cloned().unwrap_or_default();
        if let Some(id) = detail.object_id {
            out.insert("objectId".into(), id);
        }
        if let Some(linked) = detail.linked_objects {
            out.insert("linkedObjects".into(), json!(linked));
        }
        if let Some(errors) = detail.validation_errors {
            out.insert("validationErrors".into(), json!(errors));
        }
        Value::Object(out)
    }
}

impl From<Rejection> for SetError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::NotFound { what, id } => SetError::not_found(format!("{what} {id} does not exist")),
            Rejection::AlreadyExists { existing, existing_id, property, description } => SetError {
                properties: Some(vec![property]),
                existing_id: Some(existing_id.to_jmap()),
                detail: Some(Box::new(Detail {
                    object_id: Some(object_ref(existing, &existing_id.to_jmap())),
                    ..Detail::default()
                })),
                ..SetError::new(SetErrorType::PrimaryKeyViolation, description)
            },
            Rejection::InvalidForeignKey { property, object, id, description } => SetError {
                properties: Some(vec![property]),
                detail: Some(Box::new(Detail { object_id: Some(object_ref(object, &id)), ..Detail::default() })),
                ..SetError::new(SetErrorType::InvalidForeignKey, description)
            },
            Rejection::ValidationFailed { property, failure, description } => {
                let entry = match failure {
                    Validation::Invalid => json!({"type": "Invalid", "property": property}),
                    Validation::Required => json!({"type": "Required", "property": property}),
                    Validation::MaxLength(n) => json!({"type": "MaxLength", "property": property, "required": n}),
                };
                SetError {
                    properties: Some(vec![property]),
                    detail: Some(Box::new(Detail { validation_errors: Some(vec![entry]), ..Detail::default() })),
                    ..SetError::new(SetErrorType::ValidationFailed, description)
                }
            }
            Rejection::Linked { linked, description } => SetError {
                detail: Some(Box::new(Detail {
                    linked_objects: Some(linked.into_iter().map(|(t, id)| object_ref(t, &id.to_jmap())).collect()),
                    ..Detail::default()
                })),
                ..SetError::new(SetErrorType::ObjectIsLinked, description)
            },
            Rejection::InvalidProperties { properties, description } => {
                SetError::invalid_properties(properties, description)
            }
            Rejection::StillReferenced { description } | Rejection::Forbidden { description } => {
                SetError::forbidden(description)
            }
            Rejection::OverQuota { description } => SetError::new(SetErrorType::OverQuota, description),
            Rejection::Internal(description) => {
                tracing::error!(?description, "internal rejection");
                SetError::forbidden("the ledger could not apply this change")
            }
        }
    }
}
