//! `--field key=value` and `--filter key=value` as the reference examples use them.

use anyhow::bail;
use serde_json::{Map, Value};

/// Parses `key=value`. A value that looks like JSON (an object, an array, a
/// quoted string, a number, true, false, null) is JSON; anything else is a string.
pub(super) fn parse(raw: &str) -> anyhow::Result<(String, Value)> {
    let Some((key, value)) = raw.split_once('=') else { bail!("{raw:?} is not key=value") };
    if key.is_empty() {
        bail!("{raw:?} has an empty key");
    }
    let looks_like_json = value.starts_with(['{', '[', '"'])
        || matches!(value, "true" | "false" | "null")
        || (value.parse::<f64>().is_ok() && value.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '-'));
    let parsed = if looks_like_json {
        serde_json::from_str(value)
            .map_err(|e| anyhow::anyhow!("the value of {key} looks like JSON but is not: {e}"))?
    } else {
        Value::String(value.to_owned())
    };
    Ok((key.to_owned(), parsed))
}

/// Builds an object from fields; `a/b=v` sets nested keys.
pub(super) fn object(fields: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for raw in fields {
        let (key, value) = parse(raw)?;
        let mut target = &mut out;
        let mut parts: Vec<&str> = key.split('/').collect();
        let last = parts.pop().unwrap_or_default();
        for part in parts {
            let entry = target.entry(part.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else { bail!("{key}: {part} is not an object") };
            target = next;
        }
        target.insert(last.to_owned(), value);
    }
    Ok(out)
}

/// Builds a PatchObject: keys stay paths.
pub(super) fn patch(fields: &[String]) -> anyhow::Result<Map<String, Value>> {
    fields.iter().map(|raw| parse(raw)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_json_when_they_look_like_it() {
        assert_eq!(parse("name=alice").unwrap(), ("name".into(), json!("alice")));
        assert_eq!(parse("roles={\"@type\":\"User\"}").unwrap().1, json!({"@type": "User"}));
        assert_eq!(parse("credentials=[]").unwrap().1, json!([]));
        assert_eq!(parse("quotas/maxDiskQuota=1000").unwrap(), ("quotas/maxDiskQuota".into(), json!(1000)));
        assert_eq!(parse("timeZone=Africa/Abidjan").unwrap().1, json!("Africa/Abidjan"));
        assert_eq!(parse("description=").unwrap().1, json!(""));
        assert_eq!(parse("name=\"123\"").unwrap().1, json!("123"));
        assert_eq!(parse("x=a=b").unwrap().1, json!("a=b"));
        assert!(parse("noequals").is_err());
        assert!(parse("roles={broken").is_err());
    }

    #[test]
    fn nested_fields_build_objects() {
        let o = object(&["name=a".into(), "quotas/maxEmails=5".into(), "quotas/maxDiskQuota=9".into()]).unwrap();
        assert_eq!(Value::Object(o), json!({"name": "a", "quotas": {"maxEmails": 5, "maxDiskQuota": 9}}));
    }
}
