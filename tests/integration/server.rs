//! The real `ledger serve` binary: starts on port 0, says where, answers /healthz,
//! and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread")]
async fn serve_starts_reports_and_answers_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("LEDGER_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines.next().unwrap().unwrap();
    let url = listening.strip_prefix("ledger listening on ").expect(&listening).to_owned();
    let data_line = lines.next().unwrap().unwrap();
    assert!(data_line.starts_with("data directory: "), "{data_line}");
    assert!(data_line.contains(&std::fs::canonicalize(&data).unwrap().display().to_string()), "{data_line}");

    let response = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "status": "ok", "lastSeq": 0 }));
    let missing = reqwest::get(format!("{url}/nope")).await.unwrap();
    assert_eq!(missing.status(), 404);

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
}

#[test]
fn serve_refuses_a_data_directory_it_cannot_create() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(blocker.join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot use data directory"), "{stderr}");
}

/// The real binary, debug logging on: no secret reaches its output, its data
/// directory, or any response after the one that created it.
#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_logs_store_or_later_responses() {
    use super::support::basic;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let admin_password = "admin-secret-for-leak-test";
    let mut child = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("LEDGER_LOG", "debug")
        .env("LEDGER_ADMIN_PASSWORD", admin_password)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first.trim().strip_prefix("ledger listening on ").expect(&first).to_owned();
    let stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    let stdout_reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());

    let client = reqwest::Client::new();
    let admin = basic("admin", admin_password);
    let post = |auth: String, body: serde_json::Value| {
        let client = client.clone();
        let url = format!("{url}/api");
        async move {
            let r = client
                .post(url)
                .header("authorization", auth)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            r.text().await.unwrap()
        }
    };
    let using = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"];
    let password = "leak-test-password-1234";
    let seed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ";
    let uri = format!("otpauth://totp/ledger:dora?secret={seed}&issuer=ledger");
    let created = post(
        admin.clone(),
        serde_json::json!({"using": using, "methodCalls": [
            ["x:Domain/set", {"create": {"d": {"name": "example.org"}}}, "c0"],
            ["x:Account/set", {"create": {"u": {"@type": "User", "name": "dora", "domainId": "#d", "credentials": [
                {"@type": "Password", "secret": password},
                {"@type": "AppPassword", "description": "app", "permissions": {"@type": "Inherit"}},
                {"@type": "ApiKey", "description": "key", "permissions": {"@type": "Inherit"}}]}}}, "c1"],
            ["x:Account/set", {"create": {"t": {"@type": "User", "name": "tess", "domainId": "#d", "credentials": [
                {"@type": "Password", "secret": password, "otpAuth": uri}]}}}, "c2"]]}),
    )
    .await;
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    let creds = &created["methodResponses"][1][1]["created"]["u"]["credentials"];
    let app = creds["1"]["secret"].as_str().unwrap().to_owned();
    let key = creds["2"]["secret"].as_str().unwrap().to_owned();
    assert!(!created.to_string().contains(password) && !created.to_string().contains(seed));

    let mut later = Vec::new();
    let everything = serde_json::json!({"using": using, "methodCalls": [
        ["x:Account/get", {"ids": null}, "g"], ["x:Account/changes", {"sinceState": "0"}, "ch"]]});
    for auth in [
        admin.clone(),
        basic("dora@example.org", password),
        basic("dora@example.org", &app),
        format!("Bearer {key}"),
        basic("dora@example.org", &format!("{password}-wrong")),
        basic("tess@example.org", &format!("{password}$123456")),
    ] {
        later.push(post(auth, everything.clone()).await);
    }
    let session = client.get(format!("{url}/.well-known/jmap")).header("authorization", &admin).send().await.unwrap();
    later.push(session.text().await.unwrap());

    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());
    let logs = format!("{}{}", stderr_reader.join().unwrap(), stdout_reader.join().unwrap());
    assert!(logs.contains("authentication failed"), "debug logging was on and saw the failure");
    for secret in [password, admin_password, &app, &key, seed, &uri] {
        assert!(!logs.contains(secret), "{secret} in the logs");
        for (i, response) in later.iter().enumerate() {
            assert!(!response.contains(secret), "{secret} in later response {i}");
        }
        let hits = super::support::files_containing(&data, secret.as_bytes());
        assert!(hits.is_empty(), "{secret} in {hits:?}");
    }
}

/// Without LEDGER_ADMIN_PASSWORD the first start prints a generated password once
/// and keeps only its hash; later starts print nothing and accept it.
#[tokio::test(flavor = "multi_thread")]
async fn first_start_generates_the_admin_password_once() {
    use super::support::basic;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let start = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ledger"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env_remove("LEDGER_ADMIN_PASSWORD")
            .env("LEDGER_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = lines.next().unwrap().unwrap().strip_prefix("ledger listening on ").unwrap().to_owned();
        lines.next().unwrap().unwrap();
        (child, url, lines)
    };
    let (mut child, url, mut lines) = start();
    let announced = lines.next().unwrap().unwrap();
    let password = announced.split(": ").nth(1).unwrap().split(' ').next().unwrap().to_owned();
    assert!(announced.contains("\"admin\"") && password.len() >= 24, "{announced}");
    let session = |url: String, auth: String| async move {
        reqwest::Client::new()
            .get(format!("{url}/.well-known/jmap"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(session(url.clone(), basic("admin", &password)).await, 200);
    assert_eq!(session(url.clone(), basic("admin", "not-it")).await, 401);
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());
    let stored = std::fs::read_to_string(data.join("admin.hash")).unwrap();
    assert!(stored.starts_with("$argon2id$") && !stored.contains(&password));

    let (mut child, url, lines) = start();
    assert_eq!(session(url, basic("admin", &password)).await, 200);
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(rest.iter().all(|l| !l.contains("generated")), "printed only on first start: {rest:?}");
}
