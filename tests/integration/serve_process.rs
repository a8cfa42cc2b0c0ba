//! The real `ledger serve` process: killed with SIGKILL at random points under
//! concurrent HTTP writes it loses no acknowledged write, its chain verifies and
//! its projections equal a rebuild; stopped with SIGTERM it finishes the writes in
//! flight and exits cleanly. `LEDGER_CRASH_ROUNDS` runs more kill rounds.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger::{Durability, Ledger};
use ledger_projections::state;
use serde_json::{Value, json};

use super::process::Served;
use super::support::{ADMIN_PASSWORD, USING, admin_auth};
use ledger::seed::SeedRng;

const DOMAIN: &str = "crash.example";
const WRITERS: usize = 4;

/// The administrator's password, as every server here is started with.
const ADMIN: &[(&str, &str)] = &[("LEDGER_ADMIN_PASSWORD", ADMIN_PASSWORD)];

/// `ledger serve` on port 0 with its log going to `log`.
fn logging(dir: &Path, log: impl Into<Stdio>) -> Served {
    Served::start_with(dir, &[], ADMIN, log)
}

async fn call(client: &reqwest::Client, url: &str, method: &str, args: Value) -> Result<Value, reqwest::Error> {
    let body = json!({"using": USING, "methodCalls": [[method, args, "c"]]});
    let response: Value = client
        .post(format!("{url}/api"))
        .header("authorization", admin_auth())
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?
        .json()
        .await?;
    Ok(response["methodResponses"][0][1].clone())
}

/// The crash domain's id, creating it on first use.
async fn domain(client: &reqwest::Client, url: &str) -> String {
    let r = call(client, url, "x:Domain/set", json!({"create": {"d": {"name": DOMAIN}}})).await.unwrap();
    r["created"]["d"]["id"].as_str().or(r["notCreated"]["d"]["existingId"].as_str()).unwrap().to_owned()
}

/// Names whose create was answered, and their count to wait on.
#[derive(Default)]
struct Acked {
    names: Mutex<Vec<String>>,
    count: tokio::sync::watch::Sender<usize>,
}

impl Acked {
    fn push(&self, name: String) {
        let mut names = self.names.lock().unwrap();
        names.push(name);
        self.count.send_replace(names.len());
    }

    fn len(&self) -> usize {
        self.names.lock().unwrap().len()
    }

    fn all(&self) -> Vec<String> {
        self.names.lock().unwrap().clone()
    }

    async fn wait_for(&self, count: usize) {
        let _ = self.count.subscribe().wait_for(|n| *n >= count).await;
    }
}

/// Writers creating accounts until the server goes away; every name whose create
/// was answered lands in `acked`.
fn spawn_writers(url: &str, domain: &str, round: usize, acked: &Arc<Acked>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..WRITERS)
        .map(|w| {
            let (url, domain, acked) = (url.to_owned(), domain.to_owned(), Arc::clone(acked));
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for n in 0.. {
                    let name = format!("r{round}w{w}n{n}");
                    let create = json!({"create": {"a": {"@type": "User", "name": name, "domainId": domain}}});
                    match call(&client, &url, "x:Account/set", create).await {
                        Ok(r) if r["created"]["a"]["id"].is_string() => acked.push(name),
                        Ok(r) => panic!("a write was refused: {r}"),
                        Err(_) => return, // the server is gone
                    }
                }
            })
        })
        .collect()
}

/// Opens the stopped store: every acknowledged name is there, the chain verifies,
/// and the projections equal a rebuild.
fn check_store(dir: &Path, acked: &[String], context: &str) {
    let ledger = Ledger::open(dir, Durability::Fsync).expect("the store opens after the server stopped");
    let read = ledger.read();
    for name in acked {
        assert!(
            state::address_owner(&read.view, &format!("{name}@{DOMAIN}")).unwrap().is_some(),
            "{context}: acknowledged {name} was lost"
        );
    }
    ledger.verify().expect("the chain verifies");
    let live = ledger.projections().dump(&ledger.database().snapshot()).unwrap();
    ledger.shutdown();
    drop((ledger, read));
    ledger::store::rebuild(dir).unwrap();
    let ledger = Ledger::open(dir, Durability::Fsync).unwrap();
    let rebuilt = ledger.projections().dump(&ledger.database().snapshot()).unwrap();
    assert!(live == rebuilt, "{context}: projections differ from a rebuild");
    ledger.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_served_ledger_killed_with_sigkill_loses_no_acknowledged_write() {
    let rounds: usize = std::env::var("LEDGER_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let budget =
        Duration::from_secs(std::env::var("LEDGER_CRASH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60));
    let dir = tempfile::tempdir().unwrap();
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut rng = SeedRng::new(seed);
    let acked = Arc::new(Acked::default());
    let started = Instant::now();
    let mut round = 0;
    while round < rounds && started.elapsed() < budget {
        let mut served = Served::start(dir.path(), &[]);
        let client = reqwest::Client::new();
        let d = domain(&client, &served.url).await;
        let before = acked.len();
        let writers = spawn_writers(&served.url, &d, round, &acked);
        acked.wait_for(before + 5 + rng.below(60)).await;
        served.child.kill().unwrap(); // SIGKILL, mid-stream
        served.child.wait().unwrap();
        for w in writers {
            w.await.unwrap();
        }
        let acked_now = acked.all();
        let dir = dir.path().to_owned();
        let context = format!("seed {seed} round {round}");
        tokio::task::spawn_blocking(move || check_store(&dir, &acked_now, &context)).await.unwrap();
        round += 1;
    }
    assert!(round >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_writes_in_flight_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let d = domain(&client, &served.url).await;
    let acked = Arc::new(Acked::default());
    let writers = spawn_writers(&served.url, &d, 0, &acked);
    acked.wait_for(20).await;
    terminate(&served);
    for w in writers {
        w.await.unwrap();
    }
    let status = tokio::task::spawn_blocking(move || served.child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "ledger serve exits 0 on SIGTERM: {status:?}");
    let acked = acked.all();
    let dir = dir.path().to_owned();
    tokio::task::spawn_blocking(move || check_store(&dir, &acked, "after SIGTERM")).await.unwrap();
}

/// Sets the server's file-size limit (RLIMIT_FSIZE), so that its writes fail as
/// on a full disk: `0` stops every file from growing.
fn limit_file_size(served: &Served, bytes: Option<u64>) {
    use rustix::process::{Resource, Rlimit, prlimit};
    // Only the soft limit: lowering the hard one could not be undone.
    prlimit(Some(served.pid()), Resource::Fsize, Rlimit { current: bytes, maximum: None }).expect("prlimit");
}

/// Reads the server's log (its stderr) to the end, on a thread.
fn read_all(mut stderr: std::process::ChildStderr) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut log = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
        log
    })
}

fn terminate(served: &Served) {
    rustix::process::kill_process(served.pid(), rustix::process::Signal::TERM).expect("kill");
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_on_a_full_disk_fail_with_server_fail_while_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The log goes through a pipe: the file-size limit also stops a log file growing.
    let mut served = logging(&data, Stdio::piped());
    let log_reader = read_all(served.child.stderr.take().unwrap());
    let client = reqwest::Client::new();
    let url = served.url.clone();
    let d = domain(&client, &url).await;
    let create = |name: &str| json!({"create": {"a": {"@type": "User", "name": name, "domainId": d}}});
    let r = call(&client, &url, "x:Account/set", create("before")).await.unwrap();
    let before = r["created"]["a"]["id"].as_str().unwrap().to_owned();

    limit_file_size(&served, Some(0));
    let body = json!({"using": USING, "methodCalls": [["x:Account/set", create("during"), "c"]]});
    let response = client
        .post(format!("{url}/api"))
        .header("authorization", admin_auth())
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    let answer: Value = response.expect("the server survives a failed write").json().await.unwrap();
    assert_eq!(answer["methodResponses"][0][0], "error", "{answer}");
    assert_eq!(answer["methodResponses"][0][1]["type"], "serverFail", "{answer}");
    let got = call(&client, &url, "x:Account/get", json!({"ids": [before], "properties": ["name"]})).await.unwrap();
    assert_eq!(got["list"][0]["name"], "before", "reads keep working: {got}");

    limit_file_size(&served, None);
    // fjall refuses writes after a failed one until a restart; the log says so.
    let again = call(&client, &url, "x:Account/set", create("after")).await.unwrap();
    assert_eq!(again["type"], "serverFail", "{again}");
    terminate(&served);
    let status = tokio::task::spawn_blocking(move || served.child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "{status:?}");
    let log = log_reader.join().unwrap();
    assert!(log.contains("group commit failed"), "the failure is logged: {log}");
    assert!(log.contains("File too large"), "the log names the cause: {log}");
    assert!(log.contains("until the service restarts"), "{log}");
    tokio::task::spawn_blocking(move || check_store(&data, &["before".to_owned()], "after a full disk")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_file_on_the_full_disk_does_not_break_answers() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let mut served = logging(&dir.path().join("data"), log);
    let client = reqwest::Client::new();
    limit_file_size(&served, Some(0));
    let r = call(&client, &served.url, "x:Domain/set", json!({"create": {"d": {"name": DOMAIN}}})).await;
    let r = r.expect("an answer even though the log cannot be written");
    assert_eq!(r["type"], "serverFail", "{r}");
    served.child.kill().unwrap();
    served.child.wait().unwrap();
}

/// Issue 15, input 5, on the real process with 256 file descriptors: 300
/// sockets that each send half a header (from five addresses, under the
/// per-address cap) leave the server accepting: the connection cap keeps it
/// below its descriptor limit, the header timeout frees the slow ones, and
/// another client is served.
#[tokio::test(flavor = "multi_thread")]
async fn half_sent_headers_under_a_256_descriptor_limit_keep_nobody_out() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut shell = Command::new("sh");
    shell.args(["-c", "ulimit -n 256 && exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_ledger")]);
    let mut served = Served::start_command(shell, &data, &["--header-read-timeout-secs", "1"], ADMIN, Stdio::piped());
    let log_reader = read_all(served.child.stderr.take().unwrap());
    let addr: std::net::SocketAddr = served.url.strip_prefix("http://").unwrap().parse().unwrap();
    let mut held = Vec::new();
    for i in 0..300 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("127.0.2.{}:0", i % 5 + 1).parse().unwrap()).unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nAcc").await;
        held.push(stream);
    }
    let client = reqwest::Client::new();
    let served_meanwhile =
        tokio::time::timeout(Duration::from_secs(30), call(&client, &served.url, "Core/echo", json!({"ok": 1}))).await;
    let answer = served_meanwhile.expect("answered within the bound").expect("answered");
    assert_eq!(answer["ok"], 1, "{answer}");
    drop(held);
    terminate(&served);
    let status = tokio::task::spawn_blocking(move || served.child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "{status:?}");
    let log = log_reader.join().unwrap();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(log.contains("max_connections=128"), "half of 256 descriptors: {log}");
}

/// Client text with CR, LF and terminal escapes (in credentials, names,
/// query strings, request lines) never reaches the log raw: every line of
/// the server's log is one the server wrote, starting with its timestamp.
#[tokio::test(flavor = "multi_thread")]
async fn client_text_cannot_forge_or_colour_log_lines() {
    use base64::Engine;
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut command = Command::new(env!("CARGO_BIN_EXE_ledger"));
    command.env("LEDGER_LOG", "debug,fjall=warn,lsm_tree=warn");
    let mut served = Served::start_command(command, &data, &[], ADMIN, Stdio::piped());
    let log_reader = read_all(served.child.stderr.take().unwrap());
    let client = reqwest::Client::new();
    let url = served.url.clone();
    let evil = "x\u{1b}]0;owned\u{7}\r\n2026-01-01T00:00:00Z ERROR forged\n\u{1b}[2J";
    let user = base64::engine::general_purpose::STANDARD.encode(format!("{evil}:{evil}"));
    let _ = client
        .post(format!("{url}/api"))
        .header("authorization", format!("Basic {user}"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await;
    let d = domain(&client, &url).await;
    let _ = call(&client, &url, "x:Domain/set", json!({"create": {"d": {"name": evil}}})).await;
    let _ = call(
        &client,
        &url,
        "x:Account/set",
        json!({"create": {"a": {"@type": "User", "name": evil, "domainId": d, "description": evil}}}),
    )
    .await;
    let _ = client
        .get(format!("{url}/api/feed?follow=false&types=%1b%0d%0aforged"))
        .header("authorization", admin_auth())
        .send()
        .await;
    let mut raw = tokio::net::TcpStream::connect(url.strip_prefix("http://").unwrap()).await.unwrap();
    let _ = raw.write_all(format!("G\u{1b}T /{evil} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await;
    drop(raw);
    terminate(&served);
    let status = tokio::task::spawn_blocking(move || served.child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "{status:?}");
    let log = log_reader.join().unwrap();
    assert!(log.contains("authentication failed"), "the failed login is logged: {log}");
    for line in log.lines() {
        assert!(!line.contains(['\u{1b}', '\u{7}', '\r']), "a raw control character: {line:?}");
        assert!(line.starts_with("20") && !line.contains("forged"), "a line the server did not write: {line:?}");
    }
}

/// A flood of wrong logins from many sources (through a trusted proxy) holds
/// argon2's memory to the gate's pool and parks no thread per attempt: the
/// answers are 401, 429 or 503 with `Retry-After` (busy, no failure), the
/// process stays small, and the administrator logs in after it.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_wrong_logins_is_turned_away_in_bounded_memory() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let command = Command::new(env!("CARGO_BIN_EXE_ledger"));
    let mut served = Served::start_command(command, &data, &["--trusted-proxy", "127.0.0.1/32"], ADMIN, Stdio::null());
    let client = reqwest::Client::new();
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..300u32 {
        let wrong = base64::engine::general_purpose::STANDARD.encode(format!("nobody{i}@example.org:guess"));
        let request = client
            .post(format!("{}/api", served.url))
            .header("authorization", format!("Basic {wrong}"))
            .header("x-forwarded-for", format!("10.{}.{}.1", i / 250, i % 250))
            .header("content-type", "application/json")
            .body("{}");
        flood.spawn(async move {
            let response = request.send().await.expect("an answer");
            (response.status().as_u16(), response.headers().contains_key("retry-after"))
        });
    }
    let answers = flood.join_all().await;
    assert!(answers.iter().all(|(s, _)| [401, 429, 503].contains(s)), "{answers:?}");
    assert!(answers.iter().filter(|(s, _)| *s == 503).all(|(_, retry)| *retry), "503 says when to retry");
    let status = std::fs::read_to_string(format!("/proc/{}/status", served.child.id())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(peak_kib < 1024 * 1024, "peak resident memory {peak_kib} KiB");
    let ok = call(&client, &served.url, "Core/echo", json!({"after": 1})).await.unwrap();
    assert_eq!(ok["after"], 1);
    terminate(&served);
    let exit = tokio::task::spawn_blocking(move || served.child.wait().unwrap()).await.unwrap();
    assert!(exit.success(), "{exit:?}");
}
