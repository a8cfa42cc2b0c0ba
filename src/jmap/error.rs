//! Every JMAP error the API can return, and the one place internal errors and
//! command rejections become them (RFC 8620 §3.6, §5.3).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::command::Rejection;
use crate::error::StoreError;

/// A request-level error: the whole request is refused with problem details (RFC 7807).
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

impl IntoResponse for RequestError {
    fn into_response(self) -> Response {
        let (kind, detail, limit) = match self {
            RequestError::UnknownCapability(d) => ("unknownCapability", d, None),
            RequestError::NotJson(d) => ("notJSON", d, None),
            RequestError::NotRequest(d) => ("notRequest", d, None),
            RequestError::Limit { limit, detail } => ("limit", detail, Some(limit)),
        };
        let mut body = json!({
            "type": format!("urn:ietf:params:jmap:error:{kind}"),
            "status": 400,
            "detail": detail,
        });
        if let Some(limit) = limit {
            body["limit"] = json!(limit);
        }
        let mut response = (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/problem+json"));
        response
    }
}

/// A method-level error, returned as `["error", {...}, callId]`.
#[derive(Debug, Clone, PartialEq)]
pub enum MethodError {
    UnknownMethod(String),
    InvalidArguments(String),
    InvalidResultReference(String),
    Forbidden(String),
    AccountNotFound,
    RequestTooLarge(String),
    StateMismatch,
    CannotCalculateChanges(String),
    AnchorNotFound,
    UnsupportedFilter(String),
    UnsupportedSort(String),
    TooManyChanges,
    /// Details are logged, never sent.
    ServerFail,
}

impl MethodError {
    pub fn invalid(description: impl Into<String>) -> Self {
        MethodError::InvalidArguments(description.into())
    }

    pub fn to_json(&self) -> Value {
        let (kind, description) = match self {
            MethodError::UnknownMethod(d) => ("unknownMethod", Some(d.clone())),
            MethodError::InvalidArguments(d) => ("invalidArguments", Some(d.clone())),
            MethodError::InvalidResultReference(d) => ("invalidResultReference", Some(d.clone())),
            MethodError::Forbidden(d) => ("forbidden", Some(d.clone())),
            MethodError::AccountNotFound => ("accountNotFound", None),
            MethodError::RequestTooLarge(d) => ("requestTooLarge", Some(d.clone())),
            MethodError::StateMismatch => ("stateMismatch", None),
            MethodError::CannotCalculateChanges(d) => ("cannotCalculateChanges", Some(d.clone())),
            MethodError::AnchorNotFound => ("anchorNotFound", None),
            MethodError::UnsupportedFilter(d) => ("unsupportedFilter", Some(d.clone())),
            MethodError::UnsupportedSort(d) => ("unsupportedSort", Some(d.clone())),
            MethodError::TooManyChanges => ("tooManyChanges", None),
            MethodError::ServerFail => ("serverFail", None),
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

/// A per-item error of `/set` (RFC 8620 §5.3 SetError).
#[derive(Debug, Clone, PartialEq)]
pub struct SetError {
    pub kind: &'static str,
    pub description: Option<String>,
    pub properties: Option<Vec<String>>,
    pub existing_id: Option<String>,
}

impl SetError {
    pub fn new(kind: &'static str, description: impl Into<String>) -> Self {
        SetError { kind, description: Some(description.into()), properties: None, existing_id: None }
    }

    pub fn not_found(description: impl Into<String>) -> Self {
        SetError::new("notFound", description)
    }

    pub fn invalid_properties(properties: Vec<String>, description: impl Into<String>) -> Self {
        SetError { properties: Some(properties), ..SetError::new("invalidProperties", description) }
    }

    pub fn invalid_patch(description: impl Into<String>) -> Self {
        SetError::new("invalidPatch", description)
    }

    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("type".into(), json!(self.kind));
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
            Rejection::AlreadyExists { existing_id, description } => {
                SetError { existing_id: Some(existing_id.to_jmap()), ..SetError::new("alreadyExists", description) }
            }
            Rejection::InvalidProperties { properties, description } => {
                SetError::invalid_properties(properties, description)
            }
            Rejection::StillReferenced { description } => SetError::new("forbidden", description),
            Rejection::OverQuota { description } => SetError::new("overQuota", description),
            Rejection::Internal(description) => {
                tracing::error!(%description, "internal rejection");
                SetError::new("forbidden", "the ledger could not apply this change")
            }
        }
    }
}
