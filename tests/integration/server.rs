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
