//! The console's reads through the JMAP API: one request of method calls made
//! as the signed-in principal ([`crate::jmap::api`]), so every page is bound
//! by the same permissions, tenant scope and limits as a JMAP client.

use std::sync::Arc;

use serde_json::{Value, json};

use super::PageError;
use crate::auth::Principal;
use crate::http::AppState;
use crate::jmap::RequestError;

/// One method call's answer: its arguments, or the JMAP error it gave.
pub(crate) type Answer = Result<Value, MethodFailure>;

/// A method-level error (RFC 8620 §3.6.2): its `type` and `description`.
#[derive(Debug, Clone)]
pub(crate) struct MethodFailure {
    pub(crate) kind: String,
    pub(crate) description: String,
}

impl MethodFailure {
    /// A call the response has no answer for.
    fn missing() -> Self {
        MethodFailure { kind: "serverFail".to_owned(), description: "no answer".to_owned() }
    }

    /// The error as a page error: `forbidden` as 403, unknown ids as 404,
    /// argument errors as 400 (the console built them from the page's query).
    pub(crate) fn page(self) -> PageError {
        let text = if self.description.is_empty() { self.kind.clone() } else { self.description.clone() };
        match self.kind.as_str() {
            "forbidden" => PageError::Forbidden(format!("Your rights do not allow this: {text}")),
            "notFound" => PageError::NotFound(text),
            "invalidArguments" | "unsupportedFilter" | "unsupportedSort" | "anchorNotFound" | "requestTooLarge" => {
                PageError::BadRequest(text)
            }
            "serverUnavailable" | "tooManyRequests" => PageError::Unavailable(text),
            _ => PageError::Internal(format!("{}: {text}", self.kind)),
        }
    }
}

/// The answers of one request's calls, taken in the order the calls were made.
pub(crate) struct Answers(std::vec::IntoIter<Answer>);

impl Answers {
    /// The next call's answer (`serverFail` past the last call).
    pub(crate) fn next(&mut self) -> Answer {
        self.0.next().unwrap_or_else(|| Err(MethodFailure::missing()))
    }
}

/// Runs `calls` (`[[name, arguments], …]`; call ids are their indexes) as
/// `principal`; returns each call's answer in order.
pub(crate) async fn jmap(
    app: &AppState,
    principal: &Arc<Principal>,
    calls: Vec<(&str, Value)>,
) -> Result<Answers, PageError> {
    let method_calls: Vec<Value> =
        calls.iter().enumerate().map(|(i, (name, args))| json!([name, args, i.to_string()])).collect();
    let body = json!({
        "using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"],
        "methodCalls": method_calls,
    });
    let bytes = serde_json::to_vec(&body).map_err(|e| PageError::Internal(e.to_string()))?;
    let response = crate::jmap::api(&app.services, Arc::clone(principal), None, &bytes).await.map_err(|e| match e {
        RequestError::Limit { detail, .. } => PageError::Unavailable(detail),
        other => PageError::Internal(format!("{other:?}")),
    })?;
    let responses = response.get("methodResponses").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out: Vec<Answer> = Vec::with_capacity(calls.len());
    for i in 0..calls.len() {
        let id = i.to_string();
        let found = responses.iter().find(|r| r.get(2).and_then(Value::as_str) == Some(id.as_str()));
        let answer = match found {
            Some(r) if r.get(0).and_then(Value::as_str) == Some("error") => {
                let args = r.get(1).cloned().unwrap_or(Value::Null);
                Err(MethodFailure {
                    kind: args.get("type").and_then(Value::as_str).unwrap_or("serverFail").to_owned(),
                    description: args.get("description").and_then(Value::as_str).unwrap_or_default().to_owned(),
                })
            }
            Some(r) => Ok(r.get(1).cloned().unwrap_or(Value::Null)),
            None => Err(MethodFailure::missing()),
        };
        out.push(answer);
    }
    Ok(Answers(out.into_iter()))
}

/// The `list` of a `/get` answer.
pub(crate) fn list(answer: &Value) -> &[Value] {
    answer.get("list").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}
