//! The request envelope (RFC 8620 §3.3), argument parsing and result references (§3.7).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{MethodError, RequestError};

/// One method call of a request.
pub(super) struct Invocation {
    pub name: String,
    pub arguments: Value,
    pub call_id: String,
}

/// A parsed request envelope.
pub(super) struct Request {
    pub using: Vec<String>,
    pub calls: Vec<Invocation>,
    pub created_ids: Option<Map<String, Value>>,
}

impl Request {
    pub(super) fn parse(value: Value) -> Result<Request, RequestError> {
        let not_request = |why: &str| RequestError::NotRequest(why.to_owned());
        let Value::Object(mut map) = value else { return Err(not_request("the request is not a JSON object")) };
        let using = match map.remove("using") {
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(not_request("`using` must be an array of strings")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(not_request("`using` must be an array of strings")),
        };
        let Some(Value::Array(raw_calls)) = map.remove("methodCalls") else {
            return Err(not_request("`methodCalls` must be an array"));
        };
        let mut calls = Vec::with_capacity(raw_calls.len());
        for call in raw_calls {
            let Value::Array(mut parts) = call else { return Err(not_request("each method call must be an array")) };
            if parts.len() != 3 {
                return Err(not_request("each method call must be [name, arguments, callId]"));
            }
            let call_id = parts.pop();
            let arguments = parts.pop();
            let name = parts.pop();
            match (name, arguments, call_id) {
                (Some(Value::String(name)), Some(arguments @ Value::Object(_)), Some(Value::String(call_id))) => {
                    calls.push(Invocation { name, arguments, call_id })
                }
                _ => return Err(not_request("a method call must be [string, object, string]")),
            }
        }
        let created_ids = match map.remove("createdIds") {
            None | Some(Value::Null) => None,
            Some(Value::Object(ids)) if ids.values().all(Value::is_string) => Some(ids),
            Some(_) => return Err(not_request("`createdIds` must map creation ids to ids")),
        };
        if let Some(extra) = map.keys().next() {
            return Err(not_request(&format!("unknown request property {extra:?}")));
        }
        Ok(Request { using, calls, created_ids })
    }
}

/// Method arguments, taken one by one; leftovers are unknown arguments.
pub(super) struct Args {
    map: Map<String, Value>,
}

impl Args {
    pub(super) fn new(value: Value) -> Result<Self, MethodError> {
        match value {
            Value::Object(map) => Ok(Args { map }),
            _ => Err(MethodError::invalid("arguments must be an object")),
        }
    }

    /// Takes an optional argument; `null` counts as absent.
    pub(super) fn take<T: DeserializeOwned>(&mut self, name: &str) -> Result<Option<T>, MethodError> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v).map(Some).map_err(|e| MethodError::invalid(format!("`{name}`: {e}"))),
        }
    }

    pub(super) fn take_raw(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    /// Checks `accountId`: absent means the primary account (as the reference
    /// examples send it); anything else must be the ledger's account.
    pub(super) fn account_id(&mut self) -> Result<(), MethodError> {
        match self.take::<String>("accountId")? {
            None => Ok(()),
            Some(id) if id == super::session::ACCOUNT_ID => Ok(()),
            Some(_) => Err(MethodError::AccountNotFound),
        }
    }

    /// Refuses arguments nobody took.
    pub(super) fn finish(self) -> Result<(), MethodError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(name) => Err(MethodError::invalid(format!("unknown argument {name:?}"))),
        }
    }
}

/// Replaces `#name` arguments by the values they reference in earlier responses.
/// Resolves the result references of `arguments` (RFC 8620 §3.7). `budget` is
/// how many bytes of JSON the resolved values may add up to (what is left of
/// the response's [`MAX_SIZE_RESPONSE`]): a reference chain that doubles its
/// input at each call would otherwise grow without bound. Over it:
/// `requestTooLarge`.
pub(super) fn resolve_references(
    arguments: Value,
    responses: &[(String, Value, String)],
    mut budget: usize,
) -> Result<Value, MethodError> {
    let Value::Object(map) = arguments else { return Ok(arguments) };
    let mut out = Map::with_capacity(map.len());
    let plain: Vec<String> = map.keys().filter(|k| !k.starts_with('#')).cloned().collect();
    for (key, value) in map {
        let Some(target) = key.strip_prefix('#') else {
            out.insert(key, value);
            continue;
        };
        if plain.iter().any(|k| k == target) {
            return Err(MethodError::invalid(format!("both {target:?} and {key:?} given")));
        }
        let bad = |why: String| MethodError::InvalidResultReference(why);
        let Value::Object(reference) = value else { return Err(bad(format!("{key} is not a ResultReference"))) };
        let field = |name: &str| reference.get(name).and_then(Value::as_str).map(str::to_owned);
        let (Some(result_of), Some(name), Some(path)) = (field("resultOf"), field("name"), field("path")) else {
            return Err(bad(format!("{key} needs string resultOf, name and path")));
        };
        let Some((_, result, _)) = responses.iter().find(|(n, _, id)| *id == result_of && *n == name) else {
            return Err(bad(format!("no {name} response with call id {result_of:?}")));
        };
        let resolved = evaluate_pointer(result, &path).map_err(|why| bad(format!("{key}: {why}")))?;
        let Some(size) = json_size_within(&resolved, budget) else {
            return Err(MethodError::ResponseFull(format!(
                "the result references resolve to more than the {budget} bytes left of the response's \
                 {MAX_SIZE_RESPONSE}"
            )));
        };
        budget -= size;
        out.insert(target.to_owned(), resolved);
    }
    Ok(Value::Object(out))
}

/// The most bytes of JSON one response (all its method responses) may hold.
/// RFC 8620 has no session field for it; docs/api.md states it.
pub(crate) const MAX_SIZE_RESPONSE: usize = 20_000_000;

/// The size of `value` as compact JSON, if it is at most `max` bytes. Stops
/// counting at `max`, so the cost is bounded by `max`, not by `value`.
pub(crate) fn json_size_within(value: &Value, max: usize) -> Option<usize> {
    struct Counter {
        written: usize,
        max: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.written += bytes.len();
            if self.written > self.max { Err(std::io::Error::other("over the limit")) } else { Ok(bytes.len()) }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { written: 0, max };
    serde_json::to_writer(&mut counter, value).ok().map(|()| counter.written)
}

/// JSON Pointer (RFC 6901) with the JMAP `*` extension: `*` applies the rest of the
/// path to every array item and flattens arrays that result.
pub(super) fn evaluate_pointer(value: &Value, path: &str) -> Result<Value, String> {
    if path.is_empty() {
        return Ok(value.clone());
    }
    let Some(rest) = path.strip_prefix('/') else { return Err(format!("path {path:?} must start with /")) };
    let (token, remainder) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let token = token.replace("~1", "/").replace("~0", "~");
    match value {
        Value::Array(items) if token == "*" => {
            let mut out = Vec::new();
            for item in items {
                match evaluate_pointer(item, remainder)? {
                    Value::Array(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            Ok(Value::Array(out))
        }
        Value::Array(items) => {
            let index: usize = token.parse().map_err(|_| format!("{token:?} is not an array index"))?;
            let item = items.get(index).ok_or_else(|| format!("index {index} is out of range"))?;
            evaluate_pointer(item, remainder)
        }
        Value::Object(map) => {
            let item = map.get(&token).ok_or_else(|| format!("no property {token:?}"))?;
            evaluate_pointer(item, remainder)
        }
        _ => Err(format!("cannot descend into a scalar at {token:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointer_with_star_flattens() {
        let v = json!({"list": [{"ids": ["a", "b"]}, {"ids": ["c"]}], "x": {"a/b": 1, "m~n": 2}});
        assert_eq!(evaluate_pointer(&v, "/list/*/ids").unwrap(), json!(["a", "b", "c"]));
        assert_eq!(evaluate_pointer(&v, "/list/1/ids/0").unwrap(), json!("c"));
        assert_eq!(evaluate_pointer(&v, "/x/a~1b").unwrap(), json!(1));
        assert_eq!(evaluate_pointer(&v, "/x/m~0n").unwrap(), json!(2));
        assert!(evaluate_pointer(&v, "/list/7").is_err());
        assert!(evaluate_pointer(&v, "list").is_err());
    }
}
