//! PatchObject (RFC 8620 §5.3): JSON Pointer paths (implicit leading `/`) set on a
//! copy of the current object; `null` resets a property to its default.

use serde_json::{Map, Value};

use super::error::SetError;

/// Unescapes one JSON Pointer reference token (RFC 6901 §4).
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// An array index as RFC 6901 §4 writes it: digits, no leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) {
        return None;
    }
    token.parse().ok()
}

/// Paths one PatchObject may set. More is `requestTooLarge` for the whole
/// call (docs/operations.md, "Limits").
pub(crate) const MAX_PATCH_PATHS: usize = 4096;

/// Checks the paths of a patch without the object: none empty, none inside
/// another (RFC 8620 §5.3: "no patch path is a prefix of another"), else
/// `invalidPatch`. O(n log n) in the paths: they are sorted by their
/// reference tokens, so a path that contains others is directly followed by
/// one of them.
pub(crate) fn check_paths(patch: &Map<String, Value>) -> Result<(), SetError> {
    let mut paths: Vec<&String> = patch.keys().collect();
    if paths.iter().any(|p| p.is_empty()) {
        return Err(SetError::invalid_patch("an empty path"));
    }
    paths.sort_unstable_by(|a, b| a.split('/').cmp(b.split('/')));
    for pair in paths.windows(2) {
        let (short, long) = (pair[0], pair[1]);
        if long.starts_with(short.as_str()) && long.as_bytes().get(short.len()) == Some(&b'/') {
            return Err(SetError::invalid_patch(format!("{short:?} and {long:?} overlap")));
        }
    }
    Ok(())
}

/// Applies `patch` to `object`: linear in the patch, for paths that passed
/// [`check_paths`]. A path that goes through something missing is
/// `invalidPatch`.
pub(crate) fn apply_patch(object: &mut Value, patch: Map<String, Value>) -> Result<(), SetError> {
    for (path, value) in patch {
        // A PatchObject path is a JSON Pointer without its leading `/`.
        let (parent, last) = match path.rsplit_once('/') {
            Some((parent, last)) => (format!("/{parent}"), unescape(last)),
            None => (String::new(), unescape(&path)),
        };
        let target = object
            .pointer_mut(&parent)
            .ok_or_else(|| SetError::invalid_patch(format!("{path:?}: {parent:?} does not exist")))?;
        match target {
            Value::Object(map) => {
                if value.is_null() {
                    map.remove(&last);
                } else {
                    map.insert(last, value);
                }
            }
            Value::Array(items) => {
                let index = array_index(&last)
                    .ok_or_else(|| SetError::invalid_patch(format!("{path:?}: {last:?} is not an index")))?;
                if value.is_null() {
                    if index >= items.len() {
                        return Err(SetError::invalid_patch(format!("{path:?}: index {index} does not exist")));
                    }
                    items.remove(index);
                } else if index < items.len() {
                    items[index] = value;
                } else if index == items.len() {
                    items.push(value);
                } else {
                    return Err(SetError::invalid_patch(format!("{path:?}: index {index} is past the end")));
                }
            }
            _ => return Err(SetError::invalid_patch(format!("{path:?} goes through a value that is not an object"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(object: Value, patch: Value) -> Result<Value, SetError> {
        let mut object = object;
        let Value::Object(patch) = patch else { unreachable!() };
        check_paths(&patch)?;
        apply_patch(&mut object, patch).map(|_| object)
    }

    #[test]
    fn sets_nested_values_and_resets_with_null() {
        let object = json!({"quotas": {"maxEmails": 5}, "aliases": [{"name": "a"}], "locale": "de"});
        let out = patched(object, json!({"quotas/maxDiskQuota": 10, "aliases/0/name": "b", "locale": null})).unwrap();
        assert_eq!(out, json!({"quotas": {"maxEmails": 5, "maxDiskQuota": 10}, "aliases": [{"name": "b"}]}));
    }

    #[test]
    fn overlapping_or_dangling_paths_are_invalid_patches() {
        let object = json!({"quotas": {}, "aliases": []});
        for patch in [
            json!({"quotas": {}, "quotas/maxEmails": 1}),
            json!({"missing/x": 1}),
            json!({"aliases/3": {"name": "x"}}),
            json!({"aliases/x": 1}),
            json!({"aliases/00": {"name": "x"}}),
            json!({"": 1}),
            // `!` sorts before `/` byte-wise: the check must still see the overlap.
            json!({"quotas": {}, "quotas!x": 1, "quotas/maxEmails": 1}),
            json!({"aliases/0": {}, "aliases/0!": 1, "aliases/0/name": "x"}),
        ] {
            let err = patched(object.clone(), patch.clone()).unwrap_err();
            assert_eq!(err.kind, crate::jmap::error::SetErrorType::InvalidPatch, "{patch}");
        }
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    #[test]
    fn many_disjoint_paths_and_siblings_do_not_overlap() {
        let patch: Map<String, Value> =
            (0..MAX_PATCH_PATHS).map(|i| (format!("credentials/x{i}"), Value::Null)).collect();
        check_paths(&patch).unwrap();
        let siblings: Map<String, Value> =
            ["a/b", "a/bc", "a/b!", "ab/c"].iter().map(|p| (p.to_string(), Value::Null)).collect();
        check_paths(&siblings).unwrap();
    }
}
