//! How the CLI prints: a table or key/value view on a terminal, JSON otherwise.

use std::io::IsTerminal;

use serde_json::{Value, json};

use super::client::Kind;

pub(super) struct Output {
    json: bool,
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

impl Output {
    pub(super) fn new(json: bool, table: bool) -> Self {
        Output { json: json || (!table && !std::io::stdout().is_terminal()) }
    }

    pub(super) fn is_json(&self) -> bool {
        self.json
    }

    fn print_json(&self, v: &Value) {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }

    /// One object as `key: value` lines.
    pub(super) fn object(&self, v: &Value) {
        if self.json {
            return self.print_json(v);
        }
        println!("{}", key_values(v));
    }

    pub(super) fn list(&self, kind: Kind, items: &[Value], total: Option<u64>) {
        if self.json {
            return self.print_json(&Value::Array(items.to_vec()));
        }
        println!("{}", table(kind, items));
        if let Some(total) = total {
            println!("({} of {total})", items.len());
        }
    }

    /// A created object; generated secrets are called out, since they are shown once.
    pub(super) fn created(&self, what: &str, v: &Value) {
        let secrets: Vec<(String, String)> = v["credentials"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| Some((c["@type"].as_str()?.to_owned(), c["secret"].as_str()?.to_owned())))
            .collect();
        if self.json {
            self.print_json(v);
        } else {
            println!("created {what} {}", scalar(&v["id"]));
            for (kind, secret) in &secrets {
                println!("{kind} secret: {secret}");
            }
        }
        if !secrets.is_empty() {
            eprintln!("warning: the generated secret above is shown once and will not be shown again; store it now");
        }
    }

    pub(super) fn updated(&self, what: &str, id: &str, result: &Value) {
        if self.json {
            return self.print_json(&json!({"updated": id, "result": result}));
        }
        println!("updated {what} {id}");
        for c in result["credentials"].as_array().into_iter().flatten() {
            if let Some(secret) = c["secret"].as_str() {
                println!("{} secret: {secret}", scalar(&c["@type"]));
                eprintln!(
                    "warning: the generated secret above is shown once and will not be shown again; store it now"
                );
            }
        }
    }

    pub(super) fn message(&self, text: &str, v: Value) {
        if self.json { self.print_json(&v) } else { println!("{text}") }
    }
}

/// `key  value` lines (`id` first, then the keys in order), nested values as
/// compact JSON.
pub(super) fn key_values(v: &Value) -> String {
    let Some(map) = v.as_object() else { return scalar(v) };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by_key(|k| (k.as_str() != "id", *k));
    let mut table = plain_table();
    table.add_rows(keys.iter().map(|k| [k.to_string(), scalar(&map[k.as_str()])]));
    render(table)
}

/// A table without borders, columns left-aligned two spaces apart.
fn plain_table() -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING);
    table
}

fn render(mut table: comfy_table::Table) -> String {
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table.lines().map(|line| line.trim_end().to_owned()).collect::<Vec<_>>().join("\n")
}

/// A table with the columns that identify each kind of object: left-aligned,
/// two spaces between columns, no borders, no trailing spaces.
pub(super) fn table(kind: Kind, items: &[Value]) -> String {
    let columns: &[&str] = match kind {
        Kind::Account => &["id", "@type", "emailAddress", "description"],
        Kind::Domain => &["id", "name", "description"],
        Kind::Role => &["id", "name", "permissions"],
    };
    let mut table = plain_table();
    table.set_header(columns.iter().copied());
    table.add_rows(items.iter().map(|item| columns.iter().map(|c| scalar(&item[*c])).collect::<Vec<_>>()));
    render(table)
}
