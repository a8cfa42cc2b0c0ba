//! Issue 16 (operator-grade), against the real `ledger` binary and a real
//! `ledger serve` on 127.0.0.1: names and ids never collide silently,
//! destructive commands confirm, offline tools never create or write what
//! they read, online backup and restore, the admin password of a failed
//! start, health and metrics, broken pipes, the feed's reconnection, logs,
//! the config file, TLS and systemd readiness.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use super::support::{ADMIN_PASSWORD, USING, admin_auth};

const BIN: &str = env!("CARGO_BIN_EXE_ledger");

/// A running `ledger serve`, its URL, and its standard output after the
/// first line (one line per message).
struct Served {
    child: Child,
    url: String,
    stdout: mpsc::Receiver<String>,
}

impl Served {
    fn start(dir: &Path, extra: &[&str]) -> Served {
        Self::start_with(dir, extra, &[("LEDGER_ADMIN_PASSWORD", ADMIN_PASSWORD)], Stdio::null())
    }

    fn start_with(dir: &Path, extra: &[&str], env: &[(&str, &str)], stderr: impl Into<Stdio>) -> Served {
        let mut command = Command::new(BIN);
        command.arg("serve");
        if !extra.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        command
            .args(["--purge-interval-minutes", "0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env_remove("LEDGER_ADMIN_PASSWORD")
            .env_remove("LEDGER_CONFIG")
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (lines, receiver) = mpsc::channel();
        // What comes before the address (a generated password) is kept too.
        let url = loop {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            match line.trim().strip_prefix("ledger listening on ") {
                Some(url) => break url.to_owned(),
                None if line.is_empty() => panic!("ledger serve exited before listening"),
                None => lines.send(line.trim().to_owned()).unwrap(),
            }
        };
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        Served { child, url, stdout: receiver }
    }

    fn pid(&self) -> rustix::process::Pid {
        rustix::process::Pid::from_raw(i32::try_from(self.child.id()).unwrap()).unwrap()
    }

    /// SIGTERM, then waits for a clean exit.
    fn stop(mut self) {
        rustix::process::kill_process(self.pid(), rustix::process::Signal::TERM).unwrap();
        assert!(self.child.wait().unwrap().success());
    }
}

/// Runs `ledger ARGS` as the administrator of `url`, standard input closed.
fn ledger(url: &str, args: &[&str]) -> Output {
    ledger_in(url, args, None)
}

fn ledger_in(url: &str, args: &[&str], cwd: Option<&Path>) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("LEDGER_URL", url)
        .env("LEDGER_CREDENTIALS", format!("admin:{ADMIN_PASSWORD}"))
        .env_remove("LEDGER_TOKEN")
        .env_remove("LEDGER_DATA_DIR")
        .stdin(Stdio::null());
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The command succeeded; its standard output.
fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{:?}\nstdout: {}\nstderr: {}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// The command failed with status 1; its standard error.
fn failed(output: Output) -> String {
    assert_eq!(output.status.code(), Some(1), "stdout: {}\nstderr: {}", text(&output.stdout), text(&output.stderr));
    text(&output.stderr)
}

async fn call(url: &str, method: &str, args: Value) -> Value {
    let body = json!({"using": USING, "methodCalls": [[method, args, "c"]]});
    let response: Value = reqwest::Client::new()
        .post(format!("{url}/api"))
        .header("authorization", admin_auth())
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["methodResponses"][0][1].clone()
}

/// The Session as `user` (the administrator's password) sees it.
async fn session_of(client: &reqwest::Client, url: &str, user: &str) -> Value {
    let response = client.get(format!("{url}/.well-known/jmap")).basic_auth(user, Some(ADMIN_PASSWORD)).send().await;
    response.unwrap().json().await.unwrap()
}

/// Every file under `dir` with its bytes, to show nothing changed.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

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

/// Online backup while writes go on: the copy verifies, restores, and holds
/// every write acknowledged before it began; a cut copy is refused and
/// leaves nothing behind.
#[tokio::test(flavor = "multi_thread")]
async fn an_online_backup_taken_under_writes_restores_to_a_verified_store() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&dir.path().join("data"), &[]);
    let url = served.url.clone();
    let domain = call(&url, "x:Domain/set", json!({"create": {"d": {"name": "example.org"}}})).await;
    let domain = domain["created"]["d"]["id"].as_str().unwrap().to_owned();
    for i in 0..20 {
        call(
            &url,
            "x:Account/set",
            json!({"create": {"a": {"@type": "User", "name": format!("before{i}"), "domainId": domain}}}),
        )
        .await;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (url, domain, stop) = (url.clone(), domain.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                call(
                    &url,
                    "x:Account/set",
                    json!({"create": {"a": {"@type": "User", "name": format!("during{i}"), "domainId": domain}}}),
                )
                .await;
                i += 1;
            }
        })
    };
    let file = dir.path().join("ledger.bak");
    let (u, f) = (url.clone(), file.clone());
    let note = tokio::task::spawn_blocking(move || ledger(&u, &["backup", f.to_str().unwrap()])).await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    let stderr = text(&note.stderr);
    ok(note);
    assert!(stderr.contains("verified") && stderr.contains("sealing.key"), "the backup says what it lacks: {stderr}");

    let restored = dir.path().join("restored");
    let said = ok(ledger(&url, &["restore", "--from", file.to_str().unwrap(), "--to", restored.to_str().unwrap()]));
    assert!(said.starts_with("restored positions 1..="), "{said}");
    ok(ledger(&url, &["verify", "--data-dir", restored.to_str().unwrap()]));
    // Without the sealing key the restored store does not start silently with a new one.
    let keyless = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", restored.to_str().unwrap()])
        .env("LEDGER_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    let refused = failed(keyless);
    assert!(refused.contains("sealing.key is missing") && refused.contains("--new-sealing-key"), "{refused}");
    std::fs::copy(dir.path().join("data/sealing.key"), restored.join("sealing.key")).unwrap();
    let copy = Served::start(&restored, &[]);
    let names = call(&copy.url, "x:Account/get", json!({"ids": null, "properties": ["name"]})).await;
    let names: Vec<&str> = names["list"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    for i in 0..20 {
        assert!(names.contains(&format!("before{i}").as_str()), "before{i} is in the restored store");
    }
    copy.stop();

    // A copy cut short is refused, and the restore leaves no store behind.
    let bytes = std::fs::read(&file).unwrap();
    let cut = dir.path().join("cut.bak");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let again = dir.path().join("again");
    let verified = ok(ledger(&url, &["audit", "verify", file.to_str().unwrap()]));
    assert!(verified.starts_with("ok: backup of positions 1..="), "{verified}");
    let refused = failed(ledger(&url, &["audit", "verify", cut.to_str().unwrap()]));
    assert!(refused.contains("truncated") || refused.contains("digest"), "{refused}");
    let into_dir = failed(ledger(&url, &["backup", dir.path().to_str().unwrap()]));
    assert!(into_dir.contains("is a directory"), "{into_dir}");
    let other = dir.path().join("notes.txt");
    std::fs::write(&other, "keep me").unwrap();
    let over = failed(ledger(&url, &["backup", other.to_str().unwrap()]));
    assert!(over.contains("not a ledger backup"), "{over}");
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "keep me");
    let stderr = failed(ledger(&url, &["restore", "--from", cut.to_str().unwrap(), "--to", again.to_str().unwrap()]));
    assert!(stderr.contains("cut.bak"), "{stderr}");
    assert!(!again.exists(), "a failed restore removes its target");
    let past = failed(ledger(
        &url,
        &["restore", "--from", file.to_str().unwrap(), "--to", again.to_str().unwrap(), "--seq", "999999"],
    ));
    assert!(past.contains("past it"), "{past}");
    let before = failed(ledger(
        &url,
        &["restore", "--from", file.to_str().unwrap(), "--to", again.to_str().unwrap(), "--at", "2000-01-01T00:00:00Z"],
    ));
    assert!(before.contains("no commit is at or before"), "{before}");
    assert!(!again.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".ledger"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary directories left: {leftovers:?}");
    served.stop();
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
        &["create", "role", "--field", "name=typo", "--field", r#"permissions=["sysAccountGte"]"#],
    ));
    assert!(refused.contains("sysAccountGte") && refused.contains("not a known permission"), "{refused}");
    ok(ledger(&url, &["create", "role", "--data", r#"{"name": "helpdesk", "permissions": ["sysAccountGet"]}"#]));
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
    assert_eq!(bob["roles"]["roleIds"].as_array().unwrap().len(), 1, "{bob}");
    assert_ne!(bob["roles"]["roleIds"][0], "helpdesk", "the role name became its id: {bob}");
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

/// Input 5 and the health endpoints: ready until the store refuses writes,
/// then 503 with the reason, while live stays 200; `/metrics` counts.
#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_the_store_and_metrics_count_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&dir.path().join("data"), &[]);
    let url = served.url.clone();
    let client = reqwest::Client::new();
    let status = |path: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let r = client.get(format!("{url}{path}")).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(status("/healthz/ready").await.0, 200);
    ok(ledger(&url, &["health"]));
    call(&url, "x:Domain/set", json!({"create": {"d": {"name": "example.org"}}})).await;
    call(&url, "x:Nothing/get", json!({})).await;
    let scrape = client.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
    let value = |name: &str| -> f64 {
        let line = scrape.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {scrape}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value("ledger_commits_total") >= 1.0, "{scrape}");
    assert!(value("ledger_events_total") >= 1.0, "{scrape}");
    assert!(value("ledger_store_size_bytes") > 0.0, "{scrape}");
    assert!(value("ledger_fsync_duration_seconds_count") >= 1.0, "{scrape}");
    assert!(scrape.contains(r#"ledger_method_duration_seconds_count{method="x:Domain/set"} 1"#), "{scrape}");
    assert!(scrape.contains(r#"method="unknown""#) && !scrape.contains("x:Nothing"), "{scrape}");

    // The store refuses writes: a file-size limit of 0 fails the next commit.
    use rustix::process::{Resource, Rlimit, prlimit};
    prlimit(Some(served.pid()), Resource::Fsize, Rlimit { current: Some(0), maximum: None }).unwrap();
    let failed_write = call(&url, "x:Domain/set", json!({"create": {"d": {"name": "full.example"}}})).await;
    assert_eq!(failed_write["type"], "serverFail", "{failed_write}");
    prlimit(Some(served.pid()), Resource::Fsize, Rlimit { current: None, maximum: None }).unwrap();
    let (code, body) = status("/healthz/ready").await;
    assert_eq!(code, 503, "{body}");
    assert!(body["reason"].as_str().unwrap().contains("refuses writes"), "{body}");
    assert_eq!(status("/healthz").await.0, 503);
    assert_eq!(status("/healthz/live").await.0, 200, "alive: reads go on");
    let stderr = failed(ledger(&url, &["health"]));
    assert!(stderr.contains("not ready"), "{stderr}");
    served.stop();
}

/// Logs: `--log-format json` writes one JSON object per line, with an access
/// line per request; an invalid `LEDGER_LOG` is an error.
#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_an_access_line_per_request_and_a_bad_filter_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start_with(
        &dir.path().join("data"),
        &["--log-format", "json"],
        &[("LEDGER_ADMIN_PASSWORD", ADMIN_PASSWORD), ("LEDGER_LOG", "info")],
        Stdio::piped(),
    );
    let stderr = served.child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut log).unwrap();
        log
    });
    call(&served.url, "x:Domain/get", json!({"ids": []})).await;
    served.stop();
    let log = reader.join().unwrap();
    let lines: Vec<Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    let start = lines.iter().find(|l| l["message"] == "serving").expect("a start-up line");
    assert!(start["revision"].is_string() && start["version"].is_string(), "{start}");
    let access = lines.iter().find(|l| l["target"] == "access" && l["path"] == "/api").expect("an access line");
    assert_eq!(access["status"], 200, "{access}");
    assert_eq!(access["principal"], "admin", "{access}");
    assert!(access["millis"].as_f64().is_some(), "{access}");

    for bad in ["info,[", "debg"] {
        let output =
            Command::new(BIN).args(["serve", "--listen", "127.0.0.1:0"]).env("LEDGER_LOG", bad).output().unwrap();
        let stderr = failed(output);
        assert!(stderr.contains("LEDGER_LOG"), "{bad}: {stderr}");
    }
    // A directory that holds other things and no store is not taken over.
    let junk = dir.path().join("junk");
    std::fs::create_dir(&junk).unwrap();
    std::fs::write(junk.join("notes.txt"), "x").unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", junk.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = failed(output);
    assert!(stderr.contains("not empty and holds no ledger store"), "{stderr}");
}

/// The config file: its settings apply, the environment and flags win over
/// it, and an unknown key is an error naming it.
#[tokio::test(flavor = "multi_thread")]
async fn the_config_file_sets_what_flags_and_environment_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ledger.toml");
    std::fs::write(&config, "admin-user = \"root\"\nmax-objects-in-get = 7\ntrusted-proxy = [\"10.0.0.0/8\"]\n")
        .unwrap();
    let config_text = config.to_str().unwrap();
    let served = Served::start(&dir.path().join("data"), &["--config", config_text, "--max-objects-in-get", "9"]);
    let session = session_of(&reqwest::Client::new(), &served.url, "root").await;
    assert_eq!(session["capabilities"]["urn:ietf:params:jmap:core"]["maxObjectsInGet"], 9, "the flag wins");
    served.stop();

    let served = Served::start_with(
        &dir.path().join("data"),
        &[],
        &[
            ("LEDGER_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("LEDGER_CONFIG", config_text),
            ("LEDGER_MAX_OBJECTS_IN_GET", "8"),
        ],
        Stdio::null(),
    );
    let session = session_of(&reqwest::Client::new(), &served.url, "root").await;
    assert_eq!(session["capabilities"]["urn:ietf:params:jmap:core"]["maxObjectsInGet"], 8, "the environment wins");
    served.stop();

    std::fs::write(&config, "max-conections = 5\n").unwrap();
    let output = Command::new(BIN).args(["serve", "--config", config_text]).output().unwrap();
    let stderr = failed(output);
    assert!(stderr.contains("\"max-conections\" is not a setting") && stderr.contains("max-connections"), "{stderr}");
}

/// TLS with a certificate and key; the Session's URLs are https, or the
/// configured public URL.
#[tokio::test(flavor = "multi_thread")]
async fn tls_serves_https_and_the_session_names_the_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let served = Served::start(
        &dir.path().join("data"),
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    assert!(served.url.starts_with("https://"), "{}", served.url);
    let port = served.url.rsplit(':').next().unwrap().to_owned();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", format!("127.0.0.1:{port}").parse().unwrap())
        .build()
        .unwrap();
    let session = session_of(&client, &format!("https://localhost:{port}"), "admin").await;
    assert_eq!(session["apiUrl"], format!("https://localhost:{port}/api"), "{session}");
    // Plain HTTP on the TLS port gets no answer.
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_err());
    served.stop();

    let served = Served::start(&dir.path().join("data"), &["--public-url", "https://ledger.example.org/"]);
    let session = session_of(&reqwest::Client::new(), &served.url, "admin").await;
    assert_eq!(session["apiUrl"], "https://ledger.example.org/api", "{session}");
    served.stop();
}

/// systemd `Type=notify`: READY=1 once serving, STOPPING=1 on SIGTERM.
#[cfg(target_os = "linux")]
#[test]
fn systemd_is_told_when_the_service_is_ready_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let served = Served::start_with(
        &dir.path().join("data"),
        &[],
        &[("LEDGER_ADMIN_PASSWORD", ADMIN_PASSWORD), ("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
        Stdio::null(),
    );
    let mut buffer = [0u8; 256];
    let n = socket.recv(&mut buffer).unwrap();
    assert_eq!(std::str::from_utf8(&buffer[..n]).unwrap().trim(), "READY=1");
    served.stop();
    let n = socket.recv(&mut buffer).unwrap();
    assert_eq!(std::str::from_utf8(&buffer[..n]).unwrap().trim(), "STOPPING=1");
}

/// `ledger version`, completions and the man page come from the binary.
#[test]
fn version_completions_and_man_page_are_generated() {
    let version = ok(ledger("http://127.0.0.1:9", &["version"]));
    assert!(version.starts_with(&format!("ledger {} (git ", env!("CARGO_PKG_VERSION"))), "{version}");
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(ledger("http://127.0.0.1:9", &["completions", shell]));
        assert!(script.contains("ledger") && script.contains("backup"), "{shell}: {script}");
    }
    let man = ok(ledger("http://127.0.0.1:9", &["man"]));
    assert!(man.contains(".TH ledger") && man.contains("backup"), "{man}");
}

/// The backup frames of `bytes` (`src/backup.rs`): the 17-byte head, then
/// each record frame's body, then the trailer without its digest.
fn frames(bytes: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>, Vec<u8>) {
    let head = bytes[..17].to_vec();
    let mut at = 17;
    let mut records = Vec::new();
    loop {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 4;
        if len == 0 {
            break;
        }
        records.push(bytes[at..at + len].to_vec());
        at += len;
    }
    (head, records, bytes[at..at + 48].to_vec())
}

/// Reassembles a backup with a fresh digest (which has no key: anyone can).
fn assemble(head: &[u8], records: &[Vec<u8>], trailer: &[u8]) -> Vec<u8> {
    let mut out = head.to_vec();
    for r in records {
        out.extend_from_slice(&(r.len() as u32).to_be_bytes());
        out.extend_from_slice(r);
    }
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(trailer);
    let digest = blake3::hash(&out);
    out.extend_from_slice(digest.as_bytes());
    out
}

/// Review finding: payloads stripped from a backup (a password change, a key's
/// removal) keep every hash, so the chain alone would accept the copy and
/// replay it to the older state; a payload-less record no AccountErased lists
/// is refused by `audit verify`, `restore` and `verify`.
#[tokio::test(flavor = "multi_thread")]
async fn a_backup_with_payloads_stripped_outside_an_erasure_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&dir.path().join("data"), &[]);
    let url = served.url.clone();
    ok(ledger(&url, &["create", "domain", "--field", "name=example.org"]));
    ok(ledger(&url, &["create", "account/user", "--field", "name=alice", "--field", "domainId=example.org"]));
    ok(ledger(&url, &["update", "account", "alice@example.org", "--field", "description=changed"]));
    let file = dir.path().join("good.bak");
    ok(ledger(&url, &["backup", file.to_str().unwrap()]));
    served.stop();

    let (head, mut records, trailer) = frames(&std::fs::read(&file).unwrap());
    let last = records.last_mut().unwrap();
    let header_len = u32::from_be_bytes(last[..4].try_into().unwrap()) as usize;
    last.truncate(4 + header_len);
    last.push(0); // "erased"
    let stripped = dir.path().join("stripped.bak");
    std::fs::write(&stripped, assemble(&head, &records, &trailer)).unwrap();

    let refused = failed(ledger(&url, &["audit", "verify", stripped.to_str().unwrap()]));
    assert!(refused.contains("no AccountErased record lists"), "{refused}");
    let target = dir.path().join("restored");
    let refused =
        failed(ledger(&url, &["restore", "--from", stripped.to_str().unwrap(), "--to", target.to_str().unwrap()]));
    assert!(refused.contains("no AccountErased record lists"), "{refused}");
    assert!(!target.exists());
    // The untouched copy, re-assembled the same way, still passes.
    let (head, records, trailer) = frames(&std::fs::read(&file).unwrap());
    let same = dir.path().join("same.bak");
    std::fs::write(&same, assemble(&head, &records, &trailer)).unwrap();
    ok(ledger(&url, &["audit", "verify", same.to_str().unwrap()]));
}

/// Review findings: a keyspace folder reached through a symbolic link is
/// read, not skipped (no "ok: 0 records"); a restore may not write inside its
/// source; the private copy is the owner's only.
#[tokio::test(flavor = "multi_thread")]
async fn offline_tools_follow_links_and_never_restore_into_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = Served::start(&data, &[]);
    ok(ledger(&served.url, &["create", "domain", "--field", "name=example.org"]));
    served.stop();
    let elsewhere = dir.path().join("other-disk");
    std::fs::rename(data.join("keyspaces"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, data.join("keyspaces")).unwrap();
    let verified = ok(ledger("http://127.0.0.1:9", &["verify", "--data-dir", data.to_str().unwrap()]));
    assert!(verified.starts_with("ok: 1 records"), "{verified}");

    let inside = data.join("keyspaces").join("inner");
    let refused = failed(ledger(
        "http://127.0.0.1:9",
        &["restore", "--data-dir", data.to_str().unwrap(), "--to", inside.to_str().unwrap()],
    ));
    assert!(refused.contains("inside the source"), "{refused}");
    assert!(!elsewhere.join("inner").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ledger"))
        .collect();
    assert!(leftovers.is_empty(), "private copies are removed: {leftovers:?}");
}

/// A restore point before an erasure is refused (the restored log would keep
/// payload-less records without the erasure that explains them); after it,
/// the restore verifies. An existing empty target (a mount point) keeps its
/// mode.
#[tokio::test(flavor = "multi_thread")]
async fn restores_keep_erasures_and_an_existing_targets_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = Served::start(&data, &[]);
    let url = served.url.clone();
    ok(ledger(&url, &["create", "domain", "--field", "name=example.org"]));
    ok(ledger(&url, &["create", "account/user", "--field", "name=erin", "--field", "domainId=example.org"]));
    ok(ledger(&url, &["database", "delete", "erin@example.org", "--yes"]));
    let file = dir.path().join("erased.bak");
    ok(ledger(&url, &["backup", file.to_str().unwrap()]));
    served.stop();

    let target = dir.path().join("mount");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o750)).unwrap();
    for source in [vec!["--from", file.to_str().unwrap()], vec!["--data-dir", data.to_str().unwrap()]] {
        let mut args = vec!["restore"];
        args.extend(&source);
        args.extend(["--to", target.to_str().unwrap(), "--seq", "2"]);
        let refused = failed(ledger("http://127.0.0.1:9", &args));
        assert!(refused.contains("erasure at position") && refused.contains("or later"), "{refused}");
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0, "nothing is left in the target");
    }
    ok(ledger("http://127.0.0.1:9", &["restore", "--from", file.to_str().unwrap(), "--to", target.to_str().unwrap()]));
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o750, "the existing target keeps its mode");
    let verified = ok(ledger("http://127.0.0.1:9", &["verify", "--data-dir", target.to_str().unwrap()]));
    assert!(verified.starts_with("ok: "), "{verified}");
}
