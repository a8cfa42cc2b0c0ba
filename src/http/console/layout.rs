//! The page shell every console page shares (header, navigation, sign-out,
//! main landmark) and small pieces of markup: times, links to accounts and
//! events, event type names, JSON values as text. Everything interpolated is
//! escaped by maud; nothing here emits `PreEscaped` of data.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use crate::auth::Principal;

/// Which navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    None,
    Overview,
    Accounts,
    Domains,
    Roles,
    Tenants,
}

const NAV: [(Section, &str, &str); 5] = [
    (Section::Overview, "/console/", "Overview"),
    (Section::Accounts, "/console/accounts", "Accounts"),
    (Section::Domains, "/console/domains", "Domains"),
    (Section::Roles, "/console/roles", "Roles"),
    (Section::Tenants, "/console/tenants", "Tenants"),
];

/// A whole page: `title`, the navigation when someone is signed in, `body`.
pub(crate) fn page(title: &str, viewer: Option<&Principal>, section: Section, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · account-ledger" }
                link rel="stylesheet" href="/console/static/console.css";
                script src="/console/static/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console/" { "account-ledger" }
                    @if let Some(p) = viewer {
                        nav aria-label="Main" {
                            ul {
                                @for (s, href, label) in NAV {
                                    li {
                                        @if s == section {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form.sign-out method="post" action="/console/sign-out" {
                            span.who { "Signed in as " strong { (p.name) } }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" { (body) }
                footer { "account-ledger audit console · read-only" }
            }
        }
    }
}

/// A time as the log records it (RFC 3339, UTC), shown without the `T` and
/// milliseconds, in a `<time>` element carrying the exact value.
pub(crate) fn time(rfc3339: &str) -> Markup {
    let shown = rfc3339.get(..19).map(|s| s.replace('T', " ") + " UTC").unwrap_or_else(|| rfc3339.to_owned());
    html! { time datetime=(rfc3339) { (shown) } }
}

/// `AliasRenamed` → `Alias renamed`.
pub(crate) fn event_name(event_type: &str) -> String {
    let mut out = String::with_capacity(event_type.len() + 4);
    for (i, c) in event_type.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A link to an account's page, labelled `label`.
pub(crate) fn account_link(id: &str, label: &str) -> Markup {
    html! { a href={ "/console/accounts/" (super::session::urlencode(id)) } { (label) } }
}

/// A link to a record's page; `account` is the account page it was reached
/// from (a reader without the ledger-wide feed right sees records through it).
pub(crate) fn event_link(position: u64, account: Option<&str>) -> Markup {
    match account {
        Some(a) => {
            html! { a href={ "/console/events/" (position) "?account=" (super::session::urlencode(a)) } { "#" (position) } }
        }
        None => html! { a href={ "/console/events/" (position) } { "#" (position) } },
    }
}

/// The actor of a history entry (`{"id", "name", "authMethod"}`): linked to
/// its account when it is one, else its name, else "hidden" (another tenant's).
pub(crate) fn actor(actor: &Value) -> Markup {
    let id = actor.get("id").and_then(Value::as_str).unwrap_or_default();
    let name = actor.get("name").and_then(Value::as_str);
    let is_account = ledger_events::values::ObjectId::from_jmap(id).is_some();
    html! {
        @match (is_account, name) {
            (true, Some(n)) => (account_link(id, n)),
            (true, None) => (account_link(id, &format!("account {id}"))),
            (false, Some(n)) => span.actor { (n) },
            (false, None) => span.muted { "not shown" },
        }
    }
}

/// A `/get` value in the plain shape the console reads: Stalwart's wire form
/// writes a list as an object keyed `"0"`, `"1"`, … and a set as an object of
/// `true`s (the schema document's `x:` types); those become arrays, at any depth.
pub(crate) fn plain(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let indexed = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            let set = !map.is_empty() && map.values().all(|v| *v == Value::Bool(true));
            if indexed {
                let mut items: Vec<(usize, Value)> =
                    map.into_iter().map(|(k, v)| (k.parse().unwrap_or(usize::MAX), plain(v))).collect();
                items.sort_by_key(|(i, _)| *i);
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else if set {
                Value::Array(map.into_iter().map(|(k, _)| Value::String(k)).collect())
            } else {
                Value::Object(map.into_iter().map(|(k, v)| (k, plain(v))).collect())
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(plain).collect()),
        other => other,
    }
}

/// A JSON value as short readable text: strings bare, lists comma-separated,
/// objects as `key: value` pairs, an object that is only `{"@type": T}` as `T`.
pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.is_empty() => "none".to_owned(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        Value::Object(map) if map.is_empty() => "none".to_owned(),
        Value::Object(map) => {
            if let (1, Some(Value::String(t))) = (map.len(), map.get("@type")) {
                return t.clone();
            }
            let pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}: {}", text(v))).collect();
            format!("{{{}}}", pairs.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_read_as_text() {
        assert_eq!(text(&json!(null)), "—");
        assert_eq!(text(&json!(["a", "b"])), "a, b");
        assert_eq!(text(&json!({"@type": "Disabled"})), "Disabled");
        assert_eq!(text(&json!({"a": 1, "b": [true]})), "{a: 1; b: yes}");
        assert_eq!(event_name("AliasRenamed"), "Alias renamed");
        assert_eq!(
            plain(json!({"aliases": {"1": {"name": "b"}, "0": {"name": "a"}}, "g": {"x": true}, "e": {}})),
            json!({"aliases": [{"name": "a"}, {"name": "b"}], "g": ["x"], "e": {}})
        );
    }

    #[test]
    fn markup_in_data_is_escaped() {
        let shown = page("<x>", None, Section::None, html! { (text(&json!("<script>alert(1)</script>"))) });
        let s = shown.into_string();
        assert!(!s.contains("<script>alert"), "{s}");
        assert!(s.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(s.contains("<title>&lt;x&gt; · account-ledger</title>"));
    }
}
