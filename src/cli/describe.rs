//! `ledger describe [OBJECT|ENUM]`: what the server's schema document
//! (`GET /api/schema`, the one Stalwart's client reads) says of its objects,
//! as `stalwart-cli describe` prints it: without an argument every object;
//! with one an object's fields (name, type, how it changes, what it is), its
//! variants, or an enum's values.

use std::io::Read;

use anyhow::{Context, bail};
use serde_json::Value;

use super::client::Client;
use super::output::{Output, emit, printable, table};

/// Fetches the schema (through its redirect) and decodes its gzip body.
async fn schema(client: &Client) -> anyhow::Result<Value> {
    let response = client.get("/api/schema").await?;
    let gzip = response.headers().get("content-encoding").is_some_and(|v| v == "gzip");
    let body = response.bytes().await.context("reading the schema")?;
    let mut json = Vec::new();
    if gzip || body.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut json).context("decoding the gzip schema")?;
    } else {
        json = body.to_vec();
    }
    serde_json::from_slice(&json).context("the schema is not JSON")
}

/// `x:Account`, `account` and `Account` all name `x:Account`.
fn object_name(schema: &Value, given: &str) -> Option<String> {
    let bare = given.trim_start_matches("x:").to_lowercase();
    schema["objects"].as_object()?.keys().find(|k| k.trim_start_matches("x:").to_lowercase() == bare).cloned()
}

/// A field type as one word: `string`, `set<objectId x:Role>`, `enum Locale?`.
fn type_text(t: &Value) -> String {
    let kind = t["type"].as_str().unwrap_or("?");
    let inner = match kind {
        "set" => format!("set<{}>", type_text(&t["class"])),
        "map" => format!("map<{}, {}>", type_text(&t["keyClass"]), type_text(&t["valueClass"])),
        "enum" => format!("enum {}", t["enumName"].as_str().unwrap_or("?")),
        "objectId" | "object" | "objectList" => format!("{kind} {}", t["objectName"].as_str().unwrap_or("?")),
        "string" | "number" => match t["format"].as_str() {
            Some(f) if f != "string" => format!("{kind} ({f})"),
            _ => kind.to_owned(),
        },
        _ => kind.to_owned(),
    };
    if t["nullable"] == true { format!("{inner}?") } else { inner }
}

fn fields_table(fields: &Value) -> String {
    let rows: Vec<Value> = fields["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, p)| {
            serde_json::json!({"field": name, "type": type_text(&p["type"]), "update": p["update"],
                "description": p["description"]})
        })
        .collect();
    table(&["field", "type", "update", "description"], &rows)
}

pub(super) async fn run(client: &Client, out: &Output, what: Option<String>) -> anyhow::Result<()> {
    let schema = schema(client).await?;
    let Some(what) = what else {
        if out.json {
            out.print_json(&schema["objects"]);
            return Ok(());
        }
        let rows: Vec<Value> = schema["objects"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, o)| o["type"] != "view")
            .map(|(name, o)| serde_json::json!({"object": name, "type": o["type"], "description": o["description"]}))
            .collect();
        emit(table(&["object", "type", "description"], &rows));
        return Ok(());
    };
    if let Some(name) = object_name(&schema, &what) {
        let shape = &schema["schemas"][&name];
        if out.json {
            out.print_json(&serde_json::json!({"object": schema["objects"][&name], "schema": shape,
                "fields": schema["fields"][&name]}));
            return Ok(());
        }
        emit(format_args!("{name}: {}", printable(schema["objects"][&name]["description"].as_str().unwrap_or(""))));
        // One table per field set; JSON (`--json`, or output to a pipe) gives the raw schema entries.
        match shape["type"].as_str() {
            Some("multiple") => {
                for v in shape["variants"].as_array().into_iter().flatten() {
                    let variant = v["name"].as_str().unwrap_or("?");
                    emit(format_args!("\n{name}/{variant} ({})", printable(v["label"].as_str().unwrap_or(""))));
                    if let Some(s) = v["schemaName"].as_str() {
                        emit(fields_table(&schema["fields"][s]));
                    }
                }
            }
            _ => emit(fields_table(&schema["fields"][&name])),
        }
        return Ok(());
    }
    if let Some(values) = schema["enums"].get(&what).and_then(Value::as_array) {
        if out.json {
            out.print_json(&Value::Array(values.clone()));
        } else {
            emit(table(&["name", "label"], values));
        }
        return Ok(());
    }
    if let Some(fields) = schema["fields"].get(&what) {
        emit(fields_table(fields));
        return Ok(());
    }
    bail!("{what:?} is no object, type or enum of this server's schema (`ledger describe` lists the objects)")
}
