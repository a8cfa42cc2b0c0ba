//! Issue 16 (operator-grade), the command line against the real `ledger`
//! binary and a real `ledger serve` on 127.0.0.1: names and ids never collide
//! silently, destructive commands confirm, offline tools never create or
//! write what they read, the admin password of a failed start, broken
//! pipes, the feed's reconnection, history after an account is gone.
//! Backup and restore are in `backup_restore.rs`; health, metrics, logs,
//! config, TLS and systemd in `service.rs`.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::process::{BIN, Served, call, contents, failed, ledger, ok, text};
use super::support::ADMIN_PASSWORD;

/// Input 1: a value that is the id of one account and the name of another
/// is refused with both shown; `--name`/`--id` say which; the erasure asks
/// for `--yes` off a terminal and `--dry-run` changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_name_that_is_also_an_id_is_refused_until_the_operator_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&dir.path().join("data"), &[]);
    let url = served.url.clone();
    ok(ledger(&url, &["create", "domain", "--field", "name=example.org"]));
    let bystander: Value = serde_json::from_str(&ok(ledger(
        &url,
        &["create", "account/user", "--field", "name=bystander", "--field", "domainId=example.org"],
    )))
    .unwrap();
    let id = bystander["id"].as_str().unwrap().to_owned();
    // A user whose name is the bystander's id.
    ok(ledger(&url, &["create", "account/user", "--field", &format!("name={id}"), "--field", "domainId=example.org"]));

    // Where a value may be an id or a name, both candidates are shown and nothing is done.
    for args in
        [vec!["get", "account", &id], vec!["delete", "account", "--ids", &id, "--yes"], vec!["audit", "history", &id]]
    {
        let refused = failed(ledger(&url, &args));
        assert!(
            refused.contains("bystander@example.org") && refused.contains(&format!("{id}@example.org")),
            "{args:?}: {refused}"
        );
        assert!(refused.contains("--id or --name"), "{refused}");
    }
    // `database delete` takes a name (as stalwart-cli's does); an id only with --id.
    let asked = failed(ledger(&url, &["database", "delete", &id]));
    assert!(asked.contains("--yes"), "off a terminal the erasure needs --yes: {asked}");
    let plan = ok(ledger(&url, &["database", "delete", &id, "--dry-run"]));
    assert!(plan.contains(&format!("would delete account {id}@example.org")), "{plan}");
    let by_id = ok(ledger(&url, &["--id", "database", "delete", &id, "--dry-run"]));
    assert!(by_id.contains("bystander@example.org"), "{by_id}");
    let listed = call(&url, "x:Account/query", json!({})).await;
    assert_eq!(listed["ids"].as_array().unwrap().len(), 2, "neither refusals nor dry runs deleted: {listed}");

    ok(ledger(&url, &["database", "delete", &id, "--yes"]));
    let left = call(&url, "x:Account/get", json!({"ids": null, "properties": ["name"]})).await;
    assert_eq!(left["list"], json!([{"id": id, "name": "bystander"}]), "the named one went, the bystander stayed");
    // Now the value names nothing: it is not taken as the bystander's id.
    let not_a_name = failed(ledger(&url, &["database", "delete", &id, "--dry-run"]));
    assert!(not_a_name.contains("no x:Account with name") && not_a_name.contains("--id"), "{not_a_name}");
    served.stop();
}

/// A delete of several ids reports each, keeps the successes, and fails
/// (status 1) naming what was not deleted.
#[tokio::test(flavor = "multi_thread")]
async fn a_delete_of_several_ids_reports_each_and_keeps_the_successes() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&dir.path().join("data"), &[]);
    let url = served.url.clone();
    ok(ledger(&url, &["create", "domain", "--field", "name=example.org"]));
    for name in ["ann", "ben"] {
        ok(ledger(
            &url,
            &["create", "account/user", "--field", &format!("name={name}"), "--field", "domainId=example.org"],
        ));
    }
    let asked = failed(ledger(&url, &["delete", "account", "--ids", "ann@example.org,ben@example.org"]));
    assert!(asked.contains("--yes"), "{asked}");
    let plan = ok(ledger(&url, &["delete", "account", "--ids", "ann@example.org, nobody@example.org", "--dry-run"]));
    assert!(
        plan.contains("would delete x:Account ann@example.org") && plan.contains("would skip nobody@example.org"),
        "{plan}"
    );
    let output =
        ledger(&url, &["delete", "account", "--ids", "ann@example.org,nobody@example.org,ben@example.org", "--yes"]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["destroyed"].as_array().unwrap().len(), 2, "{report}");
    assert!(report["notDestroyed"]["nobody@example.org"].is_string(), "{report}");
    let stderr = failed(output);
    assert!(stderr.contains("1 of 3 not deleted") && stderr.contains("nobody@example.org"), "{stderr}");
    assert_eq!(call(&url, "x:Account/query", json!({})).await["ids"], json!([]));
    served.stop();
}

/// Input 2: offline tools pointed at a mistyped path fail, naming it, and
/// create nothing; a restore reads its source without changing a byte.
#[test]
fn offline_tools_refuse_a_path_without_a_store_and_never_write_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("ledger-dta");
    let shown = missing.display().to_string();
    let target = dir.path().join("restored");
    let backup_file = dir.path().join("b.bak");
    let runs: [Vec<&str>; 6] = [
        vec!["verify", "--data-dir", &shown],
        vec!["audit", "verify", "--data-dir", &shown],
        vec!["rebuild", "--data-dir", &shown],
        vec!["restore", "--data-dir", &shown, "--to", target.to_str().unwrap()],
        vec!["backup", "--data-dir", &shown, backup_file.to_str().unwrap()],
        vec!["restore", "--from", &shown, "--to", target.to_str().unwrap()],
    ];
    for args in &runs {
        let stderr = failed(ledger("http://127.0.0.1:9", args));
        assert!(stderr.contains(&shown), "{args:?}: {stderr}");
        assert!(!missing.exists(), "{args:?} created {shown}");
        assert!(!target.exists(), "{args:?} left a restore target behind");
    }

    // A real (stopped) store: verify, backup and restore leave it byte for byte.
    let data = dir.path().join("data");
    let served = Served::start(&data, &[]);
    ok(ledger(&served.url, &["create", "domain", "--field", "name=example.org"]));
    served.stop();
    let before = contents(&data);
    ok(ledger("http://127.0.0.1:9", &["verify", "--data-dir", data.to_str().unwrap()]));
    ok(ledger(
        "http://127.0.0.1:9",
        &["restore", "--data-dir", data.to_str().unwrap(), "--to", target.to_str().unwrap()],
    ));
    ok(ledger(
        "http://127.0.0.1:9",
        &["backup", "--data-dir", data.to_str().unwrap(), dir.path().join("b.bak").to_str().unwrap()],
    ));
    assert!(before == contents(&data), "the source changed");
    let verified = ok(ledger("http://127.0.0.1:9", &["verify", "--data-dir", target.to_str().unwrap()]));
    assert!(verified.starts_with("ok: 1 records"), "{verified}");
}

/// Input 3: offline tools on a served store name the server and the online
/// alternative.
#[tokio::test(flavor = "multi_thread")]
async fn offline_tools_on_a_served_store_name_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = Served::start(&data, &[]);
    let pid = served.child.id().to_string();
    let shown = data.display().to_string();
    for args in [vec!["verify", "--data-dir", &shown], vec!["rebuild", "--data-dir", &shown]] {
        let stderr = failed(ledger("http://127.0.0.1:9", &args));
        assert!(stderr.contains(&format!("held by a running `ledger serve` (pid {pid})")), "{args:?}: {stderr}");
        assert!(stderr.contains("ledger backup --url"), "{stderr}");
        assert!(!stderr.contains("Locked"), "no raw library error: {stderr}");
    }
    served.stop();
    assert!(!data.join("serve.pid").exists(), "a clean stop removes the pid file");
}

/// Input 4: a first start that fails (the port is taken) keeps no password
/// it never showed; the next start generates one, shows it, and it works.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_first_start_keeps_no_password_it_never_showed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let output = Command::new(BIN)
        .args(["serve", "--listen", &port, "--data-dir", data.to_str().unwrap()])
        .env_remove("LEDGER_ADMIN_PASSWORD")
        .output()
        .unwrap();
    let stderr = failed(output);
    assert!(stderr.contains(&port), "{stderr}");
    assert!(!data.join("admin.hash").exists(), "no hash of an unshown password");
    drop(taken);

    let served = Served::start_with(&data, &[], &[], Stdio::null());
    served.stdout.recv_timeout(Duration::from_secs(30)).unwrap();
    let line = served.stdout.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(line.starts_with("generated"), "{line}");
    let password = line.split(": ").nth(1).unwrap().split(' ').next().unwrap().to_owned();
    let response = reqwest::Client::new()
        .get(format!("{}/.well-known/jmap", served.url))
        .basic_auth("admin", Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the password shown is the one kept");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the data directory is the owner's only");
    }
    served.stop();
}

/// Input 6: a closed pipe ends the command quietly with status 0.
#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_goes_away_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&dir.path().join("data"), &[]);
    let url = served.url.clone();
    ok(ledger(&url, &["create", "domain", "--field", "name=example.org"]));
    for args in [
        vec!["query", "domain"],
        vec!["--table", "query", "domain"],
        vec!["feed"],
        vec!["audit", "export"],
        vec!["completions", "bash"],
    ] {
        let mut child = Command::new(BIN)
            .args(&args)
            .env("LEDGER_URL", &url)
            .env("LEDGER_CREDENTIALS", format!("admin:{ADMIN_PASSWORD}"))
            .env("LEDGER_TRUST_DIR", super::process::trust_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the first byte is written.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", text(&output.stderr));
        assert_eq!(text(&output.stderr), "", "{args:?} ends quietly");
    }
    served.stop();
}

/// `feed --follow` outlives a server restart: it reconnects and resumes
/// after the last position it printed.
#[tokio::test(flavor = "multi_thread")]
async fn a_following_feed_reconnects_after_a_restart_and_resumes_from_its_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let served = Served::start(&data, &["--listen", &listen]);
    let url = served.url.clone();
    call(&url, "x:Domain/set", json!({"create": {"d": {"name": "one.example"}}})).await;
    let mut feed = Command::new(BIN)
        .args(["--json", "feed", "--follow", "--cursor"])
        .arg(dir.path().join("cursor"))
        .env("LEDGER_URL", &url)
        .env("LEDGER_CREDENTIALS", format!("admin:{ADMIN_PASSWORD}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(feed.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["seq"], 1);
    served.stop();
    assert!(feed.try_wait().unwrap().is_none(), "the feed keeps running while the server is away");
    let served = Served::start(&data, &["--listen", &listen]);
    call(&served.url, "x:Domain/set", json!({"create": {"d": {"name": "two.example"}}})).await;
    let next: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(next["seq"], 2, "resumed after position 1, nothing repeated: {next}");
    feed.kill().unwrap();
    feed.wait().unwrap();
    // A refusal is not retried: wrong credentials end a following feed.
    let refused = Command::new(BIN)
        .args(["feed", "--follow"])
        .env("LEDGER_URL", &served.url)
        .env("LEDGER_CREDENTIALS", "admin:wrong")
        .output()
        .unwrap();
    let stderr = failed(refused);
    assert!(stderr.contains("401"), "{stderr}");
    served.stop();
}

/// Input 7: history after the account was destroyed, misspelt permissions,
/// role names in `roleIds`, and the other CLI comforts.
#[tokio::test(flavor = "multi_thread")]
async fn history_outlives_the_account_and_names_resolve_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&dir.path().join("data"), &[]);
    let url = served.url.clone();
    ok(ledger(&url, &["create", "domain", "--field", "name=example.org"]));
    let refused = failed(ledger(
        &url,
        &["create", "role", "--field", "description=typo", "--field", r#"enabledPermissions=["sysAccountGte"]"#],
    ));
    assert!(refused.contains("sysAccountGte") && refused.contains("not a known permission"), "{refused}");
    ok(ledger(
        &url,
        &["create", "role", "--data", r#"{"description": "helpdesk", "enabledPermissions": ["sysAccountGet"]}"#],
    ));
    let bob: Value = serde_json::from_str(&ok(ledger(
        &url,
        &[
            "create",
            "account/user",
            "--field",
            "name=bob",
            "--field",
            "domainId=example.org",
            "--field",
            r#"roles={"@type":"Custom","roleIds":["helpdesk"]}"#,
        ],
    )))
    .unwrap();
    let bob: Value = serde_json::from_str(&ok(ledger(&url, &["get", "account", bob["id"].as_str().unwrap()]))).unwrap();
    let role_ids = bob["roles"]["roleIds"].as_object().unwrap();
    assert_eq!(role_ids.len(), 1, "{bob}");
    assert!(!role_ids.contains_key("helpdesk"), "the role name became its id: {bob}");
    let patch = dir.path().join("patch.json");
    std::fs::write(&patch, r#"{"description": "from a file"}"#).unwrap();
    ok(ledger(&url, &["update", "account", "bob@example.org", "--file", patch.to_str().unwrap()]));
    let position = call(&url, "x:Account/get", json!({"ids": []})).await["state"].as_str().unwrap().to_owned();
    ok(ledger(&url, &["update", "account", "bob@example.org", "--field", "description=later"]));
    let then: Value =
        serde_json::from_str(&ok(ledger(&url, &["get", "account", "bob@example.org", "--as-of", &position]))).unwrap();
    assert_eq!(then["description"], "from a file", "{then}");
    let fields: Value =
        serde_json::from_str(&ok(ledger(&url, &["--fields", "name", "get", "account", "bob@example.org"]))).unwrap();
    assert_eq!(fields, json!({"id": bob["id"], "name": "bob"}));

    ok(ledger(&url, &["delete", "account", "--ids", "bob@example.org"]));
    let history: Value = serde_json::from_str(&ok(ledger(&url, &["audit", "history", "bob@example.org"]))).unwrap();
    let events: Vec<&str> = history.as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events.first(), Some(&"AccountCreated"), "{events:?}");
    assert_eq!(events.last(), Some(&"AccountDestroyed"), "{events:?}");
    served.stop();
}
