//! The JMAP API (RFC 8620): the request envelope, method dispatch, and the
//! `x:Account` / `x:Domain` methods of the Stalwart management API.

pub mod account;
pub mod changes;
pub mod domain;
pub mod error;
pub mod get;
pub mod history;
pub mod maintenance;
pub mod patch;
pub mod permissions;
pub mod query;
pub mod request;
pub mod role;
pub mod session;
pub mod set;
pub mod usage;

use std::collections::HashMap;

use axum::body::Bytes;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use ledger_events::ObjectType;
use serde_json::{Map, Value, json};

use crate::auth::Principal;
use crate::http::AppState;
use crate::store::CommitOrigin;
use error::{MethodError, RequestError};
use request::{Invocation, Request, resolve_references};
use session::{CORE, STALWART};

/// What a method call needs beyond its arguments.
pub struct CallContext<'a> {
    pub app: &'a AppState,
    pub principal: &'a Arc<Principal>,
    /// Creation id → id, for every object created earlier in this request.
    pub created_ids: &'a mut HashMap<String, String>,
    pub origin: CommitOrigin,
}

/// `POST /api` and `POST /jmap`, for an authenticated principal.
pub async fn api(app: AppState, principal: Arc<Principal>, headers: HeaderMap, body: Bytes) -> Response {
    let limits = app.limits;
    let Ok(_permit) = app.concurrency.clone().try_acquire_owned() else {
        return RequestError::Limit {
            limit: "maxConcurrentRequests",
            detail: format!("at most {} requests at once", limits.max_concurrent_requests),
        }
        .into_response();
    };
    if body.len() > limits.max_size_request {
        return RequestError::Limit {
            limit: "maxSizeRequest",
            detail: format!("the request is larger than {} bytes", limits.max_size_request),
        }
        .into_response();
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return RequestError::NotJson(format!("the body is not JSON: {e}")).into_response(),
    };
    let request = match Request::parse(value) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if let Some(unknown) = request.using.iter().find(|c| *c != CORE && *c != STALWART) {
        return RequestError::UnknownCapability(format!("{unknown} is not supported")).into_response();
    }
    if request.calls.len() > limits.max_calls_in_request {
        return RequestError::Limit {
            limit: "maxCallsInRequest",
            detail: format!("at most {} method calls per request", limits.max_calls_in_request),
        }
        .into_response();
    }
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(128).collect())
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let echo_created_ids = request.created_ids.is_some();
    let mut created_ids: HashMap<String, String> = request
        .created_ids
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
        .collect();
    let mut responses: Vec<(String, Value, String)> = Vec::with_capacity(request.calls.len());
    for Invocation { name, arguments, call_id } in request.calls {
        let origin =
            CommitOrigin { actor: principal.actor(), request_id: request_id.clone(), call_id: call_id.clone() };
        let result = match resolve_references(arguments, &responses) {
            Ok(arguments) => {
                let mut ctx = CallContext { app: &app, principal: &principal, created_ids: &mut created_ids, origin };
                dispatch(&mut ctx, &request.using, &name, arguments).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(value) => responses.push((name, value, call_id)),
            Err(e) => responses.push(("error".to_owned(), e.to_json(), call_id)),
        }
    }
    let mut body = Map::new();
    body.insert(
        "methodResponses".into(),
        Value::Array(responses.into_iter().map(|(n, v, id)| json!([n, v, id])).collect()),
    );
    if echo_created_ids {
        body.insert("createdIds".into(), json!(created_ids));
    }
    body.insert("sessionState".into(), json!(session::session_state(&limits, &principal.name)));
    axum::Json(Value::Object(body)).into_response()
}

async fn dispatch(
    ctx: &mut CallContext<'_>,
    using: &[String],
    name: &str,
    arguments: Value,
) -> Result<Value, MethodError> {
    let uses = |capability: &str| using.iter().any(|c| c == capability);
    let unknown = || MethodError::UnknownMethod(format!("{name} is not a method of the capabilities in `using`"));
    if name == "Core/echo" {
        return if uses(CORE) { Ok(arguments) } else { Err(unknown()) };
    }
    if name == "x:AccountHistory/get" && uses(STALWART) {
        return history::get(ctx, arguments).await;
    }
    if name == "x:Database/erase" && uses(STALWART) {
        return maintenance::erase(ctx, arguments).await;
    }
    if name == "x:Account/reportUsage" && uses(STALWART) {
        return usage::report_usage(ctx, arguments).await;
    }
    if name == "x:Database/purge" && uses(STALWART) {
        return maintenance::purge(ctx, arguments).await;
    }
    let Some((object, method)) = name.split_once('/') else { return Err(unknown()) };
    let object_type = match object {
        "x:Account" => ObjectType::Account,
        "x:Domain" => ObjectType::Domain,
        "x:Role" => ObjectType::Role,
        _ => return Err(unknown()),
    };
    if !uses(STALWART) {
        return Err(unknown());
    }
    match method {
        "get" => get::get(ctx, object_type, arguments).await,
        "set" => set::set(ctx, object_type, arguments).await,
        "query" => query::query(ctx, object_type, arguments).await,
        "changes" => changes::changes(ctx, object_type, arguments).await,
        "queryChanges" => changes::query_changes(ctx, object_type, arguments).await,
        _ => Err(unknown()),
    }
}

/// State strings are log positions: the last position that changed the type.
pub fn state_string(seq: u64) -> String {
    seq.to_string()
}

/// Parses a state string this server issued.
pub fn parse_state(s: &str) -> Option<u64> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Runs blocking reads (fjall) off the async executor.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, MethodError> + Send + 'static,
) -> Result<T, MethodError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "read task failed");
        MethodError::ServerFail
    })?
}
