//! One JMAP request (RFC 8620 §3.3): the envelope is parsed and checked against
//! the limits, each method call runs in order with its result references
//! resolved (§3.7), and the responses are collected with the `createdIds` and
//! the session state.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use ledger_events::{MAX_CALL_ID_LEN, MAX_REQUEST_ID_LEN};

use super::context::{CallContext, CreatedIds, MAX_PASSWORDS_IN_REQUEST, Services};
use super::error::{MethodError, RequestError};
use super::method::call;
use super::request::{Invocation, MAX_SIZE_RESPONSE, Request, json_size_within, resolve_references};
use super::session::{self, CORE, STALWART};
use crate::auth::Principal;
use crate::store::CommitOrigin;

/// Answers one request of `principal`. `body` is the request's JSON (its size
/// already checked against `maxSizeRequest`); `request_id` is the client's
/// `X-Request-Id`, if any (else a uuid v7 is made). Returns the response
/// object, or a request-level error (RFC 8620 §3.6.1).
///
/// The request id and each call id are recorded in the header of every event
/// a call commits, which is never erased: a call whose call id, or whose
/// request's `X-Request-Id`, is out of [`header_text_fault`]'s bounds is
/// answered `invalidArguments` and not run.
pub async fn api(
    services: &Services,
    principal: Arc<Principal>,
    request_id: Option<&str>,
    body: &[u8],
) -> Result<Value, RequestError> {
    let limits = services.limits;
    // RFC 8620 §2: per client, as the Session object tells each principal.
    let Some(_permit) = services.concurrency.take(principal.key(), limits.max_concurrent_requests) else {
        return Err(RequestError::Limit {
            limit: "maxConcurrentRequests",
            detail: format!("at most {} requests at once per principal", limits.max_concurrent_requests),
        });
    };
    let value: Value =
        serde_json::from_slice(body).map_err(|e| RequestError::NotJson(format!("the body is not JSON: {e}")))?;
    let request = Request::parse(value)?;
    if let Some(unknown) = request.using.iter().find(|c| *c != CORE && *c != STALWART) {
        return Err(RequestError::UnknownCapability(format!("{unknown} is not supported")));
    }
    if request.calls.len() > limits.max_calls_in_request {
        return Err(RequestError::Limit {
            limit: "maxCallsInRequest",
            detail: format!("at most {} method calls per request", limits.max_calls_in_request),
        });
    }
    let request_id_fault = request_id.and_then(|id| header_text_fault("X-Request-Id", id, MAX_REQUEST_ID_LEN));
    let request_id = match request_id {
        Some(id) if request_id_fault.is_none() => id.to_owned(),
        _ => uuid::Uuid::now_v7().to_string(),
    };
    let echo_created_ids = request.created_ids.is_some();
    let mut created_ids = CreatedIds::new(
        request
            .created_ids
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
            .collect(),
    );
    let mut responses: Vec<(String, Value, String)> = Vec::with_capacity(request.calls.len());
    // What is left of MAX_SIZE_RESPONSE for the method responses still to come.
    let mut budget = MAX_SIZE_RESPONSE;
    let mut passwords_left = MAX_PASSWORDS_IN_REQUEST;
    for Invocation { name, arguments, call_id } in request.calls {
        let origin =
            CommitOrigin { actor: principal.actor(), request_id: request_id.clone(), call_id: call_id.clone() };
        let fault = request_id_fault.clone().or_else(|| header_text_fault("the call id", &call_id, MAX_CALL_ID_LEN));
        let result = match resolve_references(arguments, &responses, budget) {
            _ if fault.is_some() => Err(MethodError::InvalidArguments(fault.unwrap_or_default())),
            Ok(arguments) => {
                let mut ctx = CallContext {
                    services,
                    principal: &principal,
                    created_ids: &mut created_ids,
                    origin,
                    passwords_left: &mut passwords_left,
                    response_left: budget,
                };
                let started = std::time::Instant::now();
                let result = call(&mut ctx, &request.using, &name, arguments).await;
                let method = if matches!(result, Err(MethodError::UnknownMethod(_))) {
                    "unknown".to_owned()
                } else {
                    name.clone()
                };
                services
                    .method_seconds
                    .get_or_create(&crate::jmap::context::MethodLabel { method })
                    .observe(started.elapsed().as_secs_f64());
                result
            }
            Err(e) => Err(e),
        };
        let result = result.and_then(|value| match json_size_within(&value, budget) {
            Some(size) => {
                budget -= size;
                Ok(value)
            }
            None => Err(MethodError::ResponseFull(format!(
                "the response to this call is larger than the {budget} bytes left of the response's \
                 {MAX_SIZE_RESPONSE}"
            ))),
        });
        // A call that filled the response spent its work: later calls get
        // nothing more to build with (else each of 32 calls could build
        // 20 MB again before being refused).
        if matches!(result, Err(MethodError::ResponseFull(_))) {
            budget = 0;
        }
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
        body.insert("createdIds".into(), json!(created_ids.to_map()));
    }
    body.insert("sessionState".into(), json!(session::session_state(&limits, &principal.name)));
    Ok(Value::Object(body))
}

/// Why client text cannot go into a record header, if it cannot: longer than
/// `max` bytes, or holding anything but printable ASCII (U+0020 to U+007E), so
/// that no control, format or bidirectional character (which could break an
/// NDJSON line or redraw an operator's terminal) reaches a header. RFC 8620
/// bounds neither; this service does, because headers outlive erasure.
fn header_text_fault(what: &str, text: &str, max: usize) -> Option<String> {
    if text.len() > max {
        return Some(format!("{what} is {} bytes long; at most {max} are accepted", text.len()));
    }
    if !text.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Some(format!("{what} may hold only printable ASCII characters"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_is_bounded_and_printable() {
        assert_eq!(header_text_fault("the call id", "c1", 64), None);
        assert_eq!(header_text_fault("the call id", &"~ ".repeat(32), 64), None);
        assert!(header_text_fault("the call id", &"x".repeat(65), 64).unwrap().contains("65 bytes"));
        for bad in ["a\u{1b}[2J", "a\u{85}", "a\u{2028}b", "\u{202e}gnp.exe", "x\u{200b}y", "\u{feff}", "é"] {
            assert!(header_text_fault("the call id", bad, 64).unwrap().contains("printable ASCII"), "{bad:?}");
        }
    }
}
