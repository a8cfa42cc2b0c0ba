//! What a forged export or a lying server cannot make the auditor's `ledger`
//! accept or remember: a key for another log's origin, an export stripped of
//! its signature, a checkpoint that moves the remembered one back or past a
//! check it did not pass, terminal escapes, positions that overflow, withheld
//! records; and the audit routes' answers to malformed parameters.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::process::{Served, failed, ok};
use super::support::admin_auth;
use super::transparency::{add_domain, add_users, cli, export_to, text};

/// Every file of the trust directory and its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// An export's lines as written (re-serializing would reorder payload keys).
fn lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file).unwrap().lines().map(str::to_owned).collect()
}

/// Edits line `i` as JSON.
fn edit(lines: &mut [String], i: usize, change: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(&lines[i]).unwrap();
    change(&mut v);
    lines[i] = serde_json::to_string(&v).unwrap();
}

/// Writes `lines` as an export, recomputing the trailer's digest and counts
/// as a forger would.
fn forge(file: &Path, mut lines: Vec<String>) {
    let mut trailer: Value = serde_json::from_str(&lines.pop().unwrap()).unwrap();
    let mut digest = blake3::Hasher::new();
    let mut out = String::new();
    for raw in &lines {
        digest.update(raw.as_bytes());
        digest.update(b"\n");
        out.push_str(raw);
        out.push('\n');
    }
    let skipped = lines.iter().filter(|l| l.contains("\"skipped\":true")).count();
    trailer["trailer"]["digest"] = digest.finalize().to_hex().as_str().into();
    trailer["trailer"]["records"] = (lines.len() - skipped).into();
    trailer["trailer"]["skipped"] = skipped.into();
    out.push_str(&serde_json::to_string(&trailer).unwrap());
    out.push('\n');
    std::fs::write(file, out).unwrap();
}

fn verify(trust: &Path, file: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["audit", "verify", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    cli("", trust, &args)
}

/// A verify that fails as a refusal (exit 1, no panic), its standard error.
fn refused(trust: &Path, file: &Path, extra: &[&str]) -> String {
    let said = failed(verify(trust, file, extra));
    assert!(!said.contains("panicked"), "{said}");
    said
}

#[test]
fn a_forged_export_cannot_poison_bypass_or_roll_back_what_the_auditor_trusts() {
    let (a, files) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (trust_dir, fresh_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (trust, fresh) = (trust_dir.path(), fresh_dir.path());
    let served = Served::start(a.path(), &["--log-origin", "ledger.test/victim", "--checkpoint-interval-secs", "0"]);
    let url = served.url.clone();
    add_domain(&url);
    add_users(&url, "u", 4);
    let f = |name: &str| files.path().join(name);
    export_to(&url, trust, &[], &f("whole"));
    assert!(ok(verify(trust, &f("whole"), &[])).contains("the first checkpoint remembered"));
    let trusted = snapshot(trust);
    assert_eq!(trusted.len(), 1);

    // A trailer naming another origin but carrying a key named after the
    // victim's: refused, and nothing in the trust directory changes.
    let evil = f("evil.key");
    let evil_key = ok(cli("", trust, &["audit", "new-key", "--origin", "ledger.test/victim", evil.to_str().unwrap()]));
    let mut poison = lines(&f("whole"));
    let last = poison.len() - 1;
    edit(&mut poison, last, |v| v["trailer"]["checkpoint"] = "other.example\n2\nAAAA\n\n".into());
    edit(&mut poison, last, |v| v["trailer"]["verifierKey"] = evil_key.trim().into());
    forge(&f("poison"), poison);
    let said = refused(trust, &f("poison"), &[]);
    assert!(said.contains("is not the key of the log"), "{said}");
    assert_eq!(snapshot(trust), trusted, "the trust directory is untouched");
    // On first use too: a key is remembered only once a checkpoint verified.
    let mut bad_root = lines(&f("whole"));
    let trailer: Value = serde_json::from_str(&bad_root[last]).unwrap();
    let note = trailer["trailer"]["checkpoint"].as_str().unwrap().to_owned();
    let mut parts: Vec<&str> = note.split('\n').collect();
    parts[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    edit(&mut bad_root, last, |v| v["trailer"]["checkpoint"] = parts.join("\n").into());
    forge(&f("bad-root"), bad_root);
    refused(fresh, &f("bad-root"), &[]);
    assert!(snapshot(fresh).is_empty(), "nothing is remembered from a failed verify");

    // Stripped of its signature, an export is refused unless --unsigned says
    // the auditor knows it proves only its own chain.
    let mut unsigned = lines(&f("whole"));
    for field in ["checkpoint", "verifierKey", "compactRange", "consistency"] {
        edit(&mut unsigned, last, |v| {
            v["trailer"].as_object_mut().unwrap().remove(field);
        });
    }
    forge(&f("unsigned"), unsigned);
    assert!(refused(trust, &f("unsigned"), &[]).contains("carries no signed checkpoint"));
    assert!(ok(verify(trust, &f("unsigned"), &["--unsigned"])).contains("UNSIGNED"));
    assert_eq!(snapshot(trust), trusted);

    // A skipped line in a signed export hides a record: refused.
    let mut hidden = lines(&f("whole"));
    edit(&mut hidden, 2, |r| {
        *r = serde_json::json!({"seq": r["seq"], "hash": r["hash"], "prevHash": r["prevHash"], "skipped": true});
    });
    forge(&f("hidden"), hidden);
    assert!(refused(trust, &f("hidden"), &[]).contains("skipped in a signed export"));

    // A one-account slice's trailer must name its last record's hash.
    export_to(&url, trust, &["--account", "u1@example.org"], &f("slice"));
    let mut slice = lines(&f("slice"));
    let slice_last = slice.len() - 1;
    edit(&mut slice, slice_last, |v| v["trailer"]["lastHash"] = "00".repeat(32).into());
    forge(&f("slice-edited"), slice);
    assert!(refused(trust, &f("slice-edited"), &[]).contains("last hash"));

    // Terminal escapes in a forged origin never reach the terminal.
    let mut escape = lines(&f("whole"));
    edit(&mut escape, last, |v| v["trailer"]["checkpoint"] = "\u{1b}[2J\u{1b}]0;pwned\u{7}evil\n2\nAAAA\n\n".into());
    forge(&f("escape"), escape);
    let out = verify(fresh, &f("escape"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stdout.contains(&0x1b) && !out.stderr.contains(&0x1b), "{}", text(&out.stderr));

    // Positions that would overflow are refused, not a crash.
    let mut from_zero = lines(&f("whole"));
    edit(&mut from_zero, last, |v| v["trailer"]["from"] = 0.into());
    forge(&f("from-zero"), vec![from_zero[last].clone()]);
    refused(fresh, &f("from-zero"), &[]);
    let mut seq_max = lines(&f("whole"));
    edit(&mut seq_max, 1, |v| v["seq"] = u64::MAX.into());
    forge(&f("seq-max"), seq_max);
    refused(fresh, &f("seq-max"), &[]);
    let mut seq_zero = lines(&f("slice"));
    edit(&mut seq_zero, 0, |v| v["seq"] = 0.into());
    forge(&f("seq-zero"), seq_zero);
    refused(fresh, &f("seq-zero"), &[]);
    let mut huge_range = lines(&f("whole"));
    edit(&mut huge_range, last, |v| v["trailer"]["from"] = u64::MAX.into());
    edit(&mut huge_range, last, |v| v["trailer"]["compactRange"] = vec!["00".repeat(32); 63].into());
    forge(&f("huge-range"), huge_range);
    refused(fresh, &f("huge-range"), &[]);

    // The remembered checkpoint never moves back, nor past a check it did not pass.
    let cp1 = f("cp1.txt");
    std::fs::write(&cp1, ok(cli(&url, trust, &["audit", "checkpoint"]))).unwrap();
    let size1: u64 = std::fs::read_to_string(&cp1).unwrap().lines().nth(1).unwrap().parse().unwrap();
    add_users(&url, "v", 3);
    let cp2 = ok(cli(&url, trust, &["audit", "checkpoint"]));
    let size2: u64 = cp2.lines().nth(1).unwrap().parse().unwrap();
    let remembered = snapshot(trust);
    let (s1, s2) = (size1.to_string(), size2.to_string());
    export_to(&url, trust, &["--to", &s1, "--since", &s2], &f("older"));
    let said = ok(verify(trust, &f("older"), &[]));
    assert!(said.contains(&format!("older than the checkpoint of tree size {size2} remembered")), "{said}");
    assert_eq!(snapshot(trust), remembered);
    // Without the proof, an older file is not accused of anything.
    export_to(&url, trust, &["--to", &s1, "--since", &s1], &f("older-alone"));
    let said = refused(trust, &f("older-alone"), &[]);
    assert!(
        said.contains(&format!("cannot be linked to the one of tree size {size2}")) && !said.contains("forked"),
        "{said}"
    );
    // Cut short: said so, without asking for --unsigned.
    let mut cut = lines(&f("whole"));
    cut.pop();
    std::fs::write(f("cut"), cut.join("\n") + "\n").unwrap();
    assert!(refused(trust, &f("cut"), &[]).contains("cut short"));
    add_users(&url, "w", 2);
    export_to(&url, trust, &["--account", "v0@example.org", "--since", &s1], &f("since-cp1"));
    // A file named adds a check: the remembered checkpoint is checked too,
    // and an export that cannot show it is refused.
    let said = refused(trust, &f("since-cp1"), &["--checkpoint", cp1.to_str().unwrap()]);
    assert!(said.contains(&format!("cannot be linked to the one of tree size {size2} you trust")), "{said}");
    assert_eq!(snapshot(trust), remembered, "the remembered checkpoint stays where it was checked");
    // The same with a whole export, which shows the root at the remembered size: it moves on.
    export_to(&url, trust, &["--since", &s1], &f("whole-since-cp1"));
    ok(verify(trust, &f("whole-since-cp1"), &["--checkpoint", cp1.to_str().unwrap()]));
    assert_ne!(snapshot(trust), remembered);
    served.stop();
}

#[test]
fn the_audit_routes_answer_malformed_parameters_with_problems() {
    let a = tempfile::tempdir().unwrap();
    let served = Served::start(a.path(), &[]);
    let url = served.url.clone();
    add_domain(&url);
    add_users(&url, "u", 1);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let request = client.get(format!("{url}{path}")).header("authorization", admin_auth()).send();
        runtime.block_on(async {
            let r = request.await.unwrap();
            let status = r.status().as_u16();
            let kind = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
            (status, kind, r.text().await.unwrap())
        })
    };
    for (path, status, says) in [
        ("/api/audit/export?account=b", 404, "no account"), // b is the domain
        ("/api/audit/export?account=zzzz", 404, "no account"),
        ("/api/audit/export?since=999999", 400, "since (999999) is beyond the log"),
        ("/api/audit/export?since=x", 400, "since must be"),
        ("/api/audit/proof/inclusion?position=1&position=2", 400, "duplicate"),
        ("/api/audit/checkpoint?size=1&size=1", 400, "duplicate"),
        ("/api/audit/proof/consistency?from=1&to=x", 400, "to must be a number"),
    ] {
        let (got, kind, text) = get(path);
        assert_eq!(got, status, "{path}: {text}");
        assert!(kind.contains("json") && text.contains(says), "{path}: {kind} {text}");
    }
    // The CLI refuses position 0 itself.
    let out = cli(&url, a.path(), &["audit", "proof", "inclusion", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    served.stop();
}

#[test]
fn a_node_signing_another_history_under_the_same_key_is_caught_by_every_audit_command() {
    let (genuine, copy, files) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let trust_dir = tempfile::tempdir().unwrap();
    let trust = trust_dir.path();
    let args = ["--log-origin", "ledger.test/forked", "--checkpoint-interval-secs", "0"];
    let a = Served::start(genuine.path(), &args);
    add_domain(&a.url);
    add_users(&a.url, "u", 2);
    a.stop();
    // The same data directory and key twice, the guard left behind: the one
    // way the key signs two histories (docs/operations.md, "The log key").
    let copied = Command::new("cp")
        .args(["-a", &format!("{}/.", genuine.path().display()), copy.path().to_str().unwrap()])
        .status()
        .unwrap();
    assert!(copied.success());
    for file in ["log.key.checkpoint", "serve.pid"] {
        let _ = std::fs::remove_file(copy.path().join(file));
    }
    let (a, b) = (Served::start(genuine.path(), &args), Served::start(copy.path(), &args));
    add_users(&a.url, "a", 2);
    add_users(&b.url, "b", 5);
    let first = cli(&a.url, trust, &["audit", "checkpoint"]);
    assert!(
        first.status.success() && text(&first.stderr).contains("the first checkpoint remembered"),
        "{}",
        text(&first.stderr)
    );
    let size_a: u64 = ok(first).lines().nth(1).unwrap().parse().unwrap();
    let remembered = snapshot(trust);

    for args in [
        vec!["audit", "checkpoint"],
        vec!["audit", "proof", "inclusion", "1", "--table"],
        vec!["audit", "proof", "consistency", "--from", "2", "--table"],
    ] {
        let said = failed(cli(&b.url, trust, &args));
        assert!(said.contains("NOT consistent") || said.contains("NOT the one remembered"), "{args:?}: {said}");
    }
    export_to(&b.url, trust, &[], &files.path().join("forked"));
    let said = refused(trust, &files.path().join("forked"), &[]);
    assert!(said.contains(&format!("not consistent with the checkpoint of tree size {size_a}")), "{said}");
    assert_eq!(snapshot(trust), remembered, "nothing of the fork is remembered");
    a.stop();
    b.stop();
}
