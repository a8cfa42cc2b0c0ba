//! Running the real `ledger` binary in tests: `ledger serve` as a child
//! process on 127.0.0.1 (its URL from its first line, the rest of its
//! standard output kept), the CLI as the administrator, and checks of what
//! they print.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

use serde_json::{Value, json};

use super::support::{ADMIN_PASSWORD, USING, admin_auth};

/// The binary under test.
pub(super) const BIN: &str = env!("CARGO_BIN_EXE_ledger");

/// A running `ledger serve`, its URL, and its standard output after the
/// first line (one line per message).
pub(super) struct Served {
    pub(super) child: Child,
    pub(super) url: String,
    pub(super) stdout: mpsc::Receiver<String>,
}

impl Served {
    pub(super) fn start(dir: &Path, extra: &[&str]) -> Served {
        Self::start_with(dir, extra, &[("LEDGER_ADMIN_PASSWORD", ADMIN_PASSWORD)], Stdio::null())
    }

    pub(super) fn start_with(dir: &Path, extra: &[&str], env: &[(&str, &str)], stderr: impl Into<Stdio>) -> Served {
        Self::start_command(Command::new(BIN), dir, extra, env, stderr)
    }

    /// Starts `ledger serve` through `command` (the binary itself, or a shell
    /// that sets a limit first and then runs it) on port 0 (unless `extra`
    /// gives `--listen`), with `extra` arguments and `env` set (no admin
    /// password or config file from the test's own environment).
    pub(super) fn start_command(
        mut command: Command,
        dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        stderr: impl Into<Stdio>,
    ) -> Served {
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
        // Keep reading, so the server's later lines never meet a closed pipe.
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                let _ = lines.send(line);
            }
        });
        Served { child, url, stdout: receiver }
    }

    pub(super) fn pid(&self) -> rustix::process::Pid {
        rustix::process::Pid::from_raw(i32::try_from(self.child.id()).unwrap()).unwrap()
    }

    /// SIGTERM, then waits for a clean exit.
    pub(super) fn stop(mut self) {
        rustix::process::kill_process(self.pid(), rustix::process::Signal::TERM).unwrap();
        assert!(self.child.wait().unwrap().success());
    }
}

/// Runs `ledger ARGS` as the administrator of `url`, standard input closed.
pub(super) fn ledger(url: &str, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("LEDGER_URL", url)
        .env("LEDGER_CREDENTIALS", format!("admin:{ADMIN_PASSWORD}"))
        .env_remove("LEDGER_TOKEN")
        .env_remove("LEDGER_DATA_DIR")
        .env("LEDGER_TRUST_DIR", trust_dir())
        .stdin(Stdio::null());
    command.output().unwrap()
}

/// Where the tests' CLI runs remember the logs they checked (never the
/// home directory of whoever runs the tests). Each test's server has its
/// own random origin, so tests sharing it do not meet.
pub(super) fn trust_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("trust")
}

pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The command succeeded; its standard output.
pub(super) fn ok(output: Output) -> String {
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
pub(super) fn failed(output: Output) -> String {
    assert_eq!(output.status.code(), Some(1), "stdout: {}\nstderr: {}", text(&output.stdout), text(&output.stderr));
    text(&output.stderr)
}

pub(super) async fn call(url: &str, method: &str, args: Value) -> Value {
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
pub(super) async fn session_of(client: &reqwest::Client, url: &str, user: &str) -> Value {
    let response = client.get(format!("{url}/.well-known/jmap")).basic_auth(user, Some(ADMIN_PASSWORD)).send().await;
    response.unwrap().json().await.unwrap()
}

/// Every file under `dir` with its bytes, to show nothing changed.
pub(super) fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
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
