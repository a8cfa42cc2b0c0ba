//! The account page's before → after per field: the account's own events
//! (its history index) folded one by one with the same fold as time travel
//! (`fold_account`), each state rendered as `x:Account/get` renders it
//! (secrets masked), and consecutive states compared field by field. A
//! changed secret, which renders the same masked, is shown from the event's
//! redacted details as "changed". Once a payload is erased the states after it
//! are unknowable, and no diff is shown for them.

use std::collections::{BTreeSet, HashMap, HashSet};

use ledger_events::values::ObjectId;
use ledger_events::{EventLog, ObjectType, codec::SECRET_FIELDS};
use ledger_projections::{AccountState, SnapshotView, fold_account, state};
use serde_json::{Map, Value};

use super::layout;
use crate::StoreError;
use crate::auth::Principal;

/// One field that an event changed, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) field: String,
    pub(crate) before: String,
    pub(crate) after: String,
}

/// Names for ids in rendered values: domains, and accounts (groups). An
/// object is named only if the viewer's own `/get` would return it (its read
/// permission, within its tenant, or itself); else its id is shown.
struct Names<'a> {
    view: &'a SnapshotView,
    viewer: &'a Principal,
    cache: HashMap<String, Option<String>>,
}

impl Names<'_> {
    fn domain(&mut self, id: &str) -> String {
        let (view, viewer) = (self.view, self.viewer);
        let found = self.cache.entry(format!("d:{id}")).or_insert_with(|| {
            let oid = ObjectId::from_jmap(id)?;
            let d = state::domain(view, oid).ok().flatten()?;
            let readable = viewer.may(crate::jmap::read_permission(ObjectType::Domain))
                && viewer.sees(d.member_tenant_id.as_ref());
            readable.then(|| d.name.as_str().to_owned())
        });
        found.clone().unwrap_or_else(|| format!("domain {id}"))
    }

    fn account(&mut self, id: &str) -> String {
        let (view, viewer) = (self.view, self.viewer);
        let found = self.cache.entry(format!("a:{id}")).or_insert_with(|| {
            let oid = ObjectId::from_jmap(id)?;
            let a = state::account(view, oid).ok().flatten()?;
            let readable = viewer.is(oid)
                || (viewer.may(crate::jmap::read_permission(ObjectType::Account))
                    && viewer.sees(a.member_tenant_id.as_ref()));
            readable.then(|| a.name.as_str().to_owned())
        });
        found.clone().unwrap_or_else(|| format!("account {id}"))
    }

    /// A rendered property's value as text, ids named.
    fn text(&mut self, field: &str, value: &Value) -> String {
        let items = value.as_array();
        match (field, items) {
            ("domainId", _) => self.domain(value.as_str().unwrap_or_default()),
            ("memberGroupIds", Some(items)) => {
                let names: Vec<String> = items.iter().map(|g| self.account(g.as_str().unwrap_or_default())).collect();
                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
            }
            ("aliases", Some(items)) => {
                let shown: Vec<String> = items
                    .iter()
                    .map(|a| {
                        let name = a.get("name").and_then(Value::as_str).unwrap_or_default();
                        let domain = self.domain(a.get("domainId").and_then(Value::as_str).unwrap_or_default());
                        let off = if a.get("enabled") == Some(&Value::Bool(false)) { " (disabled)" } else { "" };
                        format!("{name}@{domain}{off}")
                    })
                    .collect();
                if shown.is_empty() { "none".to_owned() } else { shown.join(", ") }
            }
            ("credentials", Some(items)) => {
                let shown: Vec<String> = items.iter().map(credential).collect();
                if shown.is_empty() { "none".to_owned() } else { shown.join("; ") }
            }
            _ => layout::text(value),
        }
    }
}

/// A rendered credential as text, without its (masked) secret.
fn credential(c: &Value) -> String {
    let mut c = c.clone();
    if let Some(map) = c.as_object_mut() {
        map.remove("secret");
        map.remove("otpAuth");
        let kind = map.remove("@type").map(|t| layout::text(&t)).unwrap_or_default();
        let id = map.remove("credentialId").map(|t| layout::text(&t)).unwrap_or_default();
        map.retain(|_, v| {
            !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()) && v.as_object().is_none_or(|o| !o.is_empty())
        });
        let rest =
            if map.is_empty() { String::new() } else { format!(" {}", layout::text(&Value::Object(map.clone()))) };
        return format!("{kind} {id}{rest}");
    }
    layout::text(&c)
}

/// Every rendered property of `s` as text, ids named; and each group's name
/// under `group:ID`. Blocking (store reads).
pub(crate) fn describe(view: &SnapshotView, viewer: &Principal, s: &Map<String, Value>) -> Vec<(String, String)> {
    let mut names = Names { view, viewer, cache: HashMap::new() };
    let mut out: Vec<(String, String)> = s.iter().map(|(k, v)| (k.clone(), names.text(k, v))).collect();
    for g in s.get("memberGroupIds").and_then(Value::as_array).into_iter().flatten() {
        let id = g.as_str().unwrap_or_default();
        out.push((format!("group:{id}"), names.account(id)));
    }
    out
}

/// The fields that differ between two renderings, in property order.
fn diff(names: &mut Names<'_>, before: Option<&Map<String, Value>>, after: Option<&Map<String, Value>>) -> Vec<Change> {
    let empty = Map::new();
    let (b, a) = (before.unwrap_or(&empty), after.unwrap_or(&empty));
    let mut keys: Vec<&String> = a.keys().collect();
    keys.extend(b.keys().filter(|k| !a.contains_key(*k)));
    let mut out = Vec::new();
    for k in keys {
        let (x, y) = (b.get(k), a.get(k));
        if x == y || k == "usedDiskQuota" || k == "id" {
            continue;
        }
        let shown = |names: &mut Names<'_>, v: Option<&Value>| match v {
            Some(v) => names.text(k, v),
            None => "—".to_owned(),
        };
        let (before_text, after_text) = (shown(names, x), shown(names, y));
        // A new account: its empty fields say nothing.
        if x.is_none() && (after_text == "none" || after_text == "—") {
            continue;
        }
        out.push(Change { field: k.clone(), before: before_text, after: after_text });
    }
    out
}

/// Secrets an event's redacted details say changed, as changes.
fn secret_changes(details: &Value, out: &mut Vec<Change>) {
    let Some(map) = details.as_object() else { return };
    let credential = map.get("credentialId").and_then(Value::as_str).map(|c| format!("credential {c} · "));
    for (k, v) in map {
        if SECRET_FIELDS.iter().any(|(secret, _)| secret == k) && v == "changed" {
            let what = if k.to_ascii_lowercase().contains("otp") { "one-time code secret" } else { "secret" };
            // `secretHash` comes with a new credential, `newSecretHash` replaces one.
            let (before, after) =
                if k.starts_with("new") { ("(hidden)", "changed (hidden)") } else { ("—", "set (hidden)") };
            out.push(Change {
                field: format!("{}{what}", credential.clone().unwrap_or_default()),
                before: before.to_owned(),
                after: after.to_owned(),
            });
        } else if v.is_object() || v.is_array() {
            for inner in v.as_array().map(|a| a.iter().collect()).unwrap_or_else(|| vec![v]) {
                secret_changes(inner, out);
            }
        }
    }
}

/// For each wanted position of the account's history: the fields its event
/// changed, ids named as `viewer` may see them (`None` when an erased payload at or before it makes the states
/// unknowable). `details` are the history entries' redacted details by
/// position. Blocking (store reads).
pub(crate) fn changes(
    view: &SnapshotView,
    viewer: &Principal,
    log: &EventLog,
    id: ObjectId,
    wanted: &BTreeSet<u64>,
    details: &HashMap<u64, Value>,
) -> Result<HashMap<u64, Option<Vec<Change>>>, StoreError> {
    let Some(&last) = wanted.iter().next_back() else { return Ok(HashMap::new()) };
    let positions = state::history_in(view, id, 0..=last)?;
    let mut names = Names { view, viewer, cache: HashMap::new() };
    let mut current: Option<AccountState> = None;
    let mut rendered: Option<Map<String, Value>> = None;
    let mut known = true;
    let mut out = HashMap::new();
    let seen: HashSet<u64> = positions.iter().copied().collect();
    for seq in positions {
        let event = match log.read(view.snapshot(), seq)?.and_then(|r| r.event()) {
            Some(Ok(event)) if known => event,
            _ => {
                known = false;
                if wanted.contains(&seq) {
                    out.insert(seq, None);
                }
                continue;
            }
        };
        current = match fold_account(current, &event) {
            Ok(next) => next,
            Err(why) => {
                tracing::warn!(position = seq, why, "console: the account's events do not fold");
                known = false;
                None
            }
        };
        let next = current.as_ref().map(crate::jmap::render_account);
        if wanted.contains(&seq) {
            let mut list = if known { diff(&mut names, rendered.as_ref(), next.as_ref()) } else { Vec::new() };
            if let Some(d) = details.get(&seq) {
                secret_changes(d, &mut list);
            }
            out.insert(seq, known.then_some(list));
        }
        rendered = next;
    }
    for p in wanted.iter().filter(|p| !seen.contains(p)) {
        out.insert(*p, None);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_changed_password_shows_as_changed_without_its_value() {
        let mut out = Vec::new();
        secret_changes(&json!({"accountId": "a", "credentialId": "c", "newSecretHash": "changed"}), &mut out);
        assert_eq!(
            out,
            vec![Change {
                field: "credential c · secret".into(),
                before: "(hidden)".into(),
                after: "changed (hidden)".into()
            }]
        );
        let mut none = Vec::new();
        secret_changes(&json!({"credentialId": "c", "description": "changed"}), &mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn credentials_read_without_their_masked_secret() {
        let c = json!({"@type": "AppPassword", "credentialId": "b", "secret": "****", "description": "phone", "allowedIps": [], "expiresAt": null});
        assert_eq!(credential(&c), "AppPassword b {description: phone}");
    }
}
