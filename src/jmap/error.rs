//! Every JMAP error the API can return, and the one place internal errors and
//! command rejections become them (RFC 8620 §3.6 request and method errors,
//! §5.3 SetError). Protocol only: the HTTP layer turns a [`RequestError`] into
//! a response with [`RequestError::to_problem`].

use serde_json::{Map, Value, json};

use crate::command::Rejection;
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

/// The SetError types the ledger returns (RFC 8620 §5.3; `overQuota` is
/// Stalwart's name for a refused usage report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetErrorType {
    Forbidden,
    NotFound,
    InvalidPatch,
    InvalidProperties,
    AlreadyExists,
    OverQuota,
    /// RFC 8620 §5.3: the object would exceed a server limit on the number or
    /// size of items in a property.
    TooLarge,
}

impl SetErrorType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SetErrorType::Forbidden => "forbidden",
            SetErrorType::NotFound => "notFound",
            SetErrorType::InvalidPatch => "invalidPatch",
            SetErrorType::InvalidProperties => "invalidProperties",
            SetErrorType::AlreadyExists => "alreadyExists",
            SetErrorType::OverQuota => "overQuota",
            SetErrorType::TooLarge => "tooLarge",
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
}

impl SetError {
    pub(crate) fn new(kind: SetErrorType, description: impl Into<String>) -> Self {
        SetError { kind, description: Some(description.into()), properties: None, existing_id: None }
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
        Value::Object(out)
    }
}

impl From<Rejection> for SetError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::NotFound { what, id } => SetError::not_found(format!("{what} {id} does not exist")),
            Rejection::AlreadyExists { existing_id, description } => SetError {
                existing_id: Some(existing_id.to_jmap()),
                ..SetError::new(SetErrorType::AlreadyExists, description)
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
