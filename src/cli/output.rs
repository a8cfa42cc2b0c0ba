//! How the CLI prints: a table or key/value view on a terminal, JSON otherwise.

use std::io::IsTerminal;

use serde_json::{Value, json};

use super::client::Kind;

pub(super) struct Output {
    pub(super) json: bool,
    /// `--json` was given (not only implied by a pipe).
    asked: bool,
    /// `--fields`: only these properties (and `id`) are printed.
    fields: Option<Vec<String>>,
}

/// Writes `text` and a newline to standard output. A reader that went away
/// (`ledger query account | head -1`) ends the command quietly with status 0,
/// as it does for `cat`; any other write error ends it with status 1.
pub(super) fn emit(text: impl std::fmt::Display) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
    exit_if_unwritable(written);
}

/// Ends the process when standard output cannot be written: quietly with 0
/// for a closed pipe, else with the error and 1.
pub(super) fn exit_if_unwritable(written: std::io::Result<()>) {
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            std::process::exit(1);
        }
    }
}

/// A value as a table or key/value cell, made safe for a terminal.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => printable(s),
        Value::Null => "-".to_owned(),
        other => printable(&other.to_string()),
    }
}

/// `text` with every character that could move the cursor, redraw the screen
/// or reorder what an operator reads replaced by its escape (`\n`, `\r`,
/// `\u{1b}`, `\u{202e}`): C0 and C1 controls and DEL, the Unicode line and
/// paragraph separators, and the invisible format and bidirectional marks.
/// Text the server stores is written by clients (a tenant admin's
/// description), so the CLI never prints it raw on a terminal.
pub(super) fn printable(text: &str) -> String {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{feff}')
            // Hangul fillers: blank, yet letters, so they pass for nothing.
            || matches!(c, '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}')
            // Tag characters: invisible, they can carry hidden text.
            || ('\u{e0000}'..='\u{e007f}').contains(&c)
            || ('\u{200b}'..='\u{200f}').contains(&c)
            || ('\u{2028}'..='\u{202e}').contains(&c)
            || ('\u{2060}'..='\u{206f}').contains(&c)
            || ('\u{fff9}'..='\u{fffb}').contains(&c)
    }
    if !text.chars().any(unsafe_char) {
        return text.to_owned();
    }
    let escaped = |c: char| match c.escape_debug().to_string() {
        // `escape_debug` leaves what Rust deems printable (a Hangul filler) as is.
        same if same.chars().eq([c]) => format!("\\u{{{:x}}}", u32::from(c)),
        other => other,
    };
    text.chars().map(|c| if unsafe_char(c) { escaped(c) } else { c.to_string() }).collect()
}

impl Output {
    pub(super) fn new(json: bool, table: bool, fields: Option<Vec<String>>) -> Self {
        Output { json: json || (!table && !std::io::stdout().is_terminal()), asked: json, fields }
    }

    /// `v` with only the `--fields` properties (and `id`), when given.
    fn selected(&self, v: &Value) -> Value {
        match (&self.fields, v) {
            (Some(fields), Value::Object(map)) => Value::Object(
                map.iter()
                    .filter(|(k, _)| *k == "id" || fields.iter().any(|f| f == *k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => v.clone(),
        }
    }

    pub(super) fn is_json(&self) -> bool {
        self.json
    }

    /// Whether `--json` was given: for output whose text form is itself a
    /// standard format (a signed note, a verifier key), kept on a pipe.
    pub(super) fn json_asked(&self) -> bool {
        self.asked
    }

    pub(super) fn print_json(&self, v: &Value) {
        emit(serde_json::to_string_pretty(v).unwrap_or_default());
    }

    /// One object as `key: value` lines.
    pub(super) fn object(&self, v: &Value) {
        let v = &self.selected(v);
        if self.json {
            return self.print_json(v);
        }
        emit(key_values(v));
    }

    pub(super) fn list(&self, kind: Kind, items: &[Value], total: Option<u64>) {
        let items: Vec<Value> = items.iter().map(|v| self.selected(v)).collect();
        if self.json {
            return self.print_json(&Value::Array(items));
        }
        let columns: Vec<&str> = match &self.fields {
            Some(fields) => std::iter::once("id").chain(fields.iter().map(String::as_str)).collect(),
            None => default_columns(kind).to_vec(),
        };
        emit(table(&columns, &items));
        if let Some(total) = total {
            emit(format_args!("({} of {total})", items.len()));
        }
    }

    /// A created object: its id and what the server added; generated
    /// secrets are called out, since they are shown once.
    pub(super) fn created(&self, what: &str, v: &Value) {
        let secrets: Vec<(String, String)> = revealed(&v["credentials"]).collect();
        if self.json {
            self.print_json(v);
        } else {
            emit(format_args!("created {what} {}", scalar(&v["id"])));
            for (kind, secret) in &secrets {
                emit(format_args!("{} secret: {}", printable(kind), printable(secret)));
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
        emit(format_args!("updated {what} {}", printable(id)));
        for (kind, secret) in revealed(&result["credentials"]) {
            emit(format_args!("{} secret: {}", printable(&kind), printable(&secret)));
            eprintln!("warning: the generated secret above is shown once and will not be shown again; store it now");
        }
    }

    pub(super) fn message(&self, text: &str, v: Value) {
        if self.json { self.print_json(&v) } else { emit(printable(text)) }
    }
}

/// One log event as a terminal line (`ledger feed`, `ledger audit history`):
/// position, time, event type, actor and auth method, then its fields as
/// compact JSON (`(erased)` when null); all of it escaped.
pub(super) fn event_line(position: &Value, at: &Value, event: &Value, actor: &Value, details: &Value) -> String {
    let text = |v: &Value| printable(v.as_str().unwrap_or_default());
    let details = if details.is_null() { "(erased)".to_owned() } else { printable(&details.to_string()) };
    format!(
        "{:>6}  {}  {:<24} {} ({})  {details}",
        position.to_string(),
        text(at),
        text(event),
        text(&actor["name"]),
        text(&actor["authMethod"])
    )
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

/// The columns that identify each kind of object.
fn default_columns(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Account => &["id", "@type", "emailAddress", "description"],
        Kind::Domain => &["id", "name", "description"],
        Kind::Role => &["id", "description", "enabledPermissions"],
        Kind::Tenant => &["id", "name", "createdAt"],
    }
}

/// A table of `columns`: left-aligned, two spaces between columns, no
/// borders, no trailing spaces.
pub(super) fn table(columns: &[&str], items: &[Value]) -> String {
    let mut table = plain_table();
    table.set_header(columns.iter().copied());
    table.add_rows(items.iter().map(|item| columns.iter().map(|c| scalar(&item[*c])).collect::<Vec<_>>()));
    render(table)
}

/// The `(@type, secret)` of each credential whose secret is shown (a
/// generated one, the one time it is): `credentials` as the map the server
/// answers with, or an array; masked secrets (`"****"`) are not shown.
fn revealed(credentials: &Value) -> impl Iterator<Item = (String, String)> + '_ {
    let entries: Box<dyn Iterator<Item = &Value>> = match credentials {
        Value::Object(map) => Box::new(map.values()),
        Value::Array(items) => Box::new(items.iter()),
        _ => Box::new(std::iter::empty()),
    };
    entries.filter_map(|c| {
        let secret = c["secret"].as_str().filter(|s| *s != "****")?;
        Some((c["@type"].as_str()?.to_owned(), secret.to_owned()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_output_escapes_what_it_did_not_write() {
        assert_eq!(printable("plain text, ümlauts ok"), "plain text, ümlauts ok");
        assert_eq!(printable("a\u{1b}[2Jb\r\nforged"), "a\\u{1b}[2Jb\\r\\nforged");
        for bad in
            ["\u{7f}", "\u{85}", "\u{9b}", "\u{2028}", "\u{2029}", "\u{202e}", "\u{200b}", "\u{2066}", "\u{feff}"]
        {
            let shown = printable(&format!("x{bad}y"));
            assert!(shown.starts_with("x\\u{") && shown.ends_with('y'), "{bad:?} -> {shown}");
        }
        let rows = table(
            default_columns(Kind::Account),
            &[json!({"id": "b", "@type": "User", "emailAddress": "a@b", "description": "d\r\nc  User  forged@x"})],
        );
        assert_eq!(rows.lines().count(), 2, "one header and one row: {rows}");
        assert!(!key_values(&json!({"id": "b", "description": "\u{1b}]0;title\u{7}"})).contains('\u{1b}'));
    }
}
