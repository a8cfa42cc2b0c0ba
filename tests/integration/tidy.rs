//! Tidy checks of the tree itself (as rust-analyzer's tidy tests): every source
//! file says what it is for in a `//!` line; every keyspace the store writes
//! and every module of the code is named in docs/ARCHITECTURE.md; the JMAP
//! protocol layer never imports the HTTP layer.

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, recursively, except fixtures.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "fixtures" && n != "target") {
                out.extend(rust_files(&path));
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap()
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    let mut files = Vec::new();
    for dir in ["src", "events/src", "projections/src", "tests", "benches"] {
        files.extend(rust_files(&root().join(dir)));
    }
    assert!(files.len() > 100, "found {} files", files.len());
    let missing: Vec<String> =
        files.iter().filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!")).map(|f| relative(f)).collect();
    assert!(missing.is_empty(), "these files do not start with a //! line saying what they are for: {missing:?}");
}

#[test]
fn every_keyspace_is_in_the_architecture_doc() {
    let doc = architecture();
    let mut keyspaces =
        vec![ledger_events::HEADERS_KEYSPACE, ledger_events::PAYLOADS_KEYSPACE, ledger_events::TREE_KEYSPACE];
    keyspaces.extend(ledger_projections::KEYSPACES);
    keyspaces.push(ledger::store::SCRATCH_KEYSPACE);
    let missing: Vec<&str> = keyspaces.into_iter().filter(|k| !doc.contains(&format!("`{k}`"))).collect();
    assert!(missing.is_empty(), "docs/ARCHITECTURE.md does not describe the keyspaces {missing:?}");
}

#[test]
fn every_module_is_in_the_code_map() {
    let doc = architecture();
    let map = doc.split("## Code map").nth(1).expect("docs/ARCHITECTURE.md has a ## Code map section");
    let mut missing = Vec::new();
    for dir in ["src", "src/jmap", "src/jmap/method", "src/jmap/object", "events/src", "projections/src"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if matches!(name.as_str(), "mod.rs" | "lib.rs" | "main.rs" | "tests.rs") {
                continue;
            }
            let shown = if path.is_dir() { format!("`{dir}/{name}/`") } else { format!("`{dir}/{name}`") };
            if !map.contains(&shown) {
                missing.push(shown);
            }
        }
    }
    assert!(missing.is_empty(), "the code map in docs/ARCHITECTURE.md lacks {missing:?}");
}

#[test]
fn jmap_never_imports_http() {
    let offending: Vec<String> = rust_files(&root().join("src/jmap"))
        .into_iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .any(|l| l.trim_start().starts_with("use") && l.contains("http::"))
        })
        .map(|f| relative(&f))
        .collect();
    assert!(offending.is_empty(), "the JMAP protocol layer imports the HTTP layer in {offending:?}");
}
