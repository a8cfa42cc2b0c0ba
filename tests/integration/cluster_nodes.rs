//! Ledger nodes on a real JetStream cluster: `ledger serve --log nats://…`
//! processes writing through each other's races, agreeing on the chain,
//! catching up after a restart, failing writes clearly when their server is
//! paused, halting at a forged commit, and erasing on every node.
//!
//! Waits are bounded; a node is asked for a position with
//! `X-Ledger-Min-Position`, which the node itself waits for (no sleeps).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::nats::NatsCluster;
use super::process::Served;
use super::support::{USING, admin_auth};

/// Every step that waits on the cluster is bounded by this.
pub(super) const BOUND: Duration = Duration::from_secs(30);
/// A paused server must make its node's writes fail within this.
const FAIL_BOUND: Duration = Duration::from_secs(20);

fn start(dir: &Path, urls: &str) -> Served {
    Served::start_with(
        dir,
        &["--log", urls],
        // Warnings and errors reach the test's output (a failover's are the
        // story of a failure).
        &[("LEDGER_ADMIN_PASSWORD", super::support::ADMIN_PASSWORD), ("LEDGER_LOG", "warn")],
        std::process::Stdio::inherit(),
    )
}

/// One JMAP call as the administrator, waiting for `min_position` first;
/// the answer and the node's `X-Ledger-Position`.
pub(super) async fn call_at(url: &str, method: &str, args: Value, min_position: u64) -> (Value, u64) {
    let body = json!({"using": USING, "methodCalls": [[method, args, "c"]]});
    let response = tokio::time::timeout(
        BOUND,
        reqwest::Client::new()
            .post(format!("{url}/api"))
            .header("authorization", admin_auth())
            .header("content-type", "application/json")
            .header("x-ledger-min-position", min_position.to_string())
            .body(body.to_string())
            .send(),
    )
    .await
    .expect("an answer within the bound")
    .unwrap();
    assert_eq!(response.status(), 200, "{method} at {url}");
    let position = position_of(&response);
    let body: Value = response.json().await.unwrap();
    (body["methodResponses"][0][1].clone(), position)
}

fn position_of(response: &reqwest::Response) -> u64 {
    response.headers()["x-ledger-position"].to_str().unwrap().parse().unwrap()
}

/// `GET /api/log` once the node has applied `min_position` (asking again
/// while it answers 503, "not yet", within the bound: after a failover a
/// node may need longer than one request's wait to catch up).
async fn log_at(url: &str, min_position: u64) -> Value {
    let deadline = Instant::now() + BOUND;
    loop {
        let response = tokio::time::timeout(
            BOUND,
            reqwest::Client::new()
                .get(format!("{url}/api/log"))
                .header("authorization", admin_auth())
                .header("x-ledger-min-position", min_position.to_string())
                .send(),
        )
        .await
        .expect("an answer within the bound")
        .unwrap();
        if response.status() == 503 && Instant::now() < deadline {
            continue;
        }
        assert_eq!(response.status(), 200, "/api/log at {url}: {:?}", response.text().await);
        return response.json().await.unwrap();
    }
}

/// Every node's log, once each has applied `position`; asserts they agree.
pub(super) async fn agree(urls: &[&str], position: u64) -> Value {
    let mut logs = Vec::new();
    for url in urls {
        logs.push(log_at(url, position).await);
    }
    for (url, log) in urls.iter().zip(&logs) {
        assert_eq!(log["backEnd"], "nats", "{url}: {log}");
        assert!(log["halted"].is_null(), "{url}: {log}");
        assert_eq!((&log["position"], &log["headHash"]), (&logs[0]["position"], &logs[0]["headHash"]), "{logs:?}");
        assert_eq!(log["stream"]["applied"], logs[0]["stream"]["applied"], "{logs:?}");
    }
    logs.swap_remove(0)
}

pub(super) async fn create_domain(url: &str, name: &str) -> (String, u64) {
    let (r, position) = call_at(url, "x:Domain/set", json!({"create": {"d": {"name": name}}}), 0).await;
    (r["created"]["d"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned(), position)
}

pub(super) fn user(name: &str, domain: &str) -> Value {
    json!({"create": {"a": {"@type": "User", "name": name, "domainId": domain}}})
}

/// The names of every account a node holds, once it has applied `position`.
async fn names_at(url: &str, position: u64) -> Vec<String> {
    let (query, _) = call_at(url, "x:Account/query", json!({"limit": 10_000}), position).await;
    let ids = query["ids"].clone();
    let (got, _) = call_at(url, "x:Account/get", json!({"ids": ids, "properties": ["name"]}), position).await;
    got["list"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_owned()).collect()
}

/// Two nodes on `cluster`, each on its own empty directory (kept while the
/// test runs), and their URLs.
fn two_nodes(cluster: &NatsCluster) -> ([tempfile::TempDir; 2], Vec<Served>, Vec<String>) {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let nodes: Vec<Served> = dirs.iter().map(|d| start(d.path(), &cluster.urls())).collect();
    let urls = nodes.iter().map(|n| n.url.clone()).collect();
    (dirs, nodes, urls)
}

#[test]
fn two_nodes_writing_at_once_agree_and_keep_every_acknowledged_write() {
    let cluster = NatsCluster::start();
    let (_dirs, nodes, urls) = two_nodes(&cluster);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (domain, at) = create_domain(&urls[0], "example.org").await;
        // Read-your-writes across nodes: the other node answers only once it
        // has applied the position the first one named.
        let (got, _) = call_at(&urls[1], "x:Domain/get", json!({"ids": [domain]}), at).await;
        assert_eq!(got["list"][0]["name"], "example.org", "{got}");

        // Four writers, two through each node, racing for every position.
        let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (url, domain, acked) = (urls[w % 2].clone(), domain.clone(), Arc::clone(&acked));
                tokio::spawn(async move {
                    let mut last = 0;
                    for n in 0..15 {
                        let name = format!("w{w}n{n}");
                        let (r, position) = call_at(&url, "x:Account/set", user(&name, &domain), 0).await;
                        assert!(r["created"]["a"]["id"].is_string(), "a write was refused: {r}");
                        acked.lock().unwrap().push(name);
                        last = last.max(position);
                    }
                    last
                })
            })
            .collect();
        let mut last = 0;
        for writer in writers {
            last = last.max(writer.await.unwrap());
        }
        let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
        assert_eq!(acked.len(), 60);

        let log = agree(&[&urls[0], &urls[1]], last).await;
        for url in &urls {
            let names = names_at(url, last).await;
            let unique: HashSet<String> = names.iter().cloned().collect();
            assert_eq!(unique.len(), names.len(), "an account is there twice at {url}");
            assert_eq!(unique, acked, "{url} holds other accounts than were acknowledged");
        }
        // Each account is one record: the positions add up, nothing twice.
        assert_eq!(log["position"], json!(61), "{log}");
    });
    for node in nodes {
        node.stop();
    }
}

#[test]
fn a_node_restarted_or_new_copies_the_log_and_agrees() {
    let cluster = NatsCluster::start();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let first = start(dirs[0].path(), &cluster.urls());
    let mut second = start(dirs[1].path(), &cluster.urls());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (domain, _) = runtime.block_on(create_domain(&first.url, "example.org"));
    let before = runtime.block_on(async {
        let (_, position) = call_at(&first.url, "x:Account/set", user("before", &domain), 0).await;
        agree(&[&first.url, &second.url], position).await;
        position
    });
    // SIGKILL: nothing of the second node's shutdown runs.
    second.child.kill().unwrap();
    second.child.wait().unwrap();
    let after = runtime.block_on(async {
        let mut last = before;
        for n in 0..5 {
            let (r, position) = call_at(&first.url, "x:Account/set", user(&format!("after{n}"), &domain), 0).await;
            assert!(r["created"]["a"]["id"].is_string(), "{r}");
            last = position;
        }
        last
    });
    // The second node comes back on its directory; a third starts empty.
    let second = start(dirs[1].path(), &cluster.urls());
    let third = start(dirs[2].path(), &cluster.urls());
    runtime.block_on(async {
        let log = agree(&[&first.url, &second.url, &third.url], after).await;
        assert_eq!(log["position"], json!(after), "{log}");
        for url in [&second.url, &third.url] {
            let names: HashSet<String> = names_at(url, after).await.into_iter().collect();
            assert!(names.contains("before") && names.contains("after4"), "{url}: {names:?}");
        }
        // And it writes: its group lands after what it copied.
        let (r, position) = call_at(&third.url, "x:Account/set", user("from-third", &domain), 0).await;
        assert!(r["created"]["a"]["id"].is_string(), "{r}");
        assert_eq!(position, after + 1);
        agree(&[&first.url, &second.url, &third.url], position).await;
    });
    for node in [first, second, third] {
        node.stop();
    }
    // A data directory is the copy of one stream: another is refused.
    let refused = std::process::Command::new(super::process::BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dirs[2].path())
        .args(["--log", &cluster.urls(), "--log-stream", "OTHER"])
        .env("LEDGER_ADMIN_PASSWORD", super::support::ADMIN_PASSWORD)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("OTHER") && stderr.contains("another ledger"), "{stderr}");
}

#[test]
fn a_paused_server_fails_its_nodes_writes_in_time_and_reads_go_on() {
    let cluster = NatsCluster::start();
    let dir = tempfile::tempdir().unwrap();
    // This node knows one server only, the one that will be paused.
    let node = start(dir.path(), &cluster.url(2));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (domain, at) = create_domain(&node.url, "example.org").await;
        cluster.signal(2, rustix::process::Signal::STOP);
        let started = Instant::now();
        let (r, position) = call_at(&node.url, "x:Account/set", user("while-paused", &domain), 0).await;
        let took = started.elapsed();
        assert_eq!(r["type"], "serverUnavailable", "{r}");
        assert!(r["description"].as_str().unwrap_or("").contains("cluster log"), "{r}");
        assert!(took < FAIL_BOUND, "the write took {took:?} to fail");
        assert_eq!(position, at, "nothing was applied");
        // Reads answer, with the position they were read at.
        let (got, position) = call_at(&node.url, "x:Domain/get", json!({"ids": [domain]}), 0).await;
        assert_eq!(got["list"][0]["name"], "example.org", "{got}");
        assert_eq!(position, at);
        assert_eq!(log_at(&node.url, 0).await["position"], json!(at));
        eprintln!("a write with the node's server paused failed after {took:?}");
        cluster.signal(2, rustix::process::Signal::CONT);
    });
    node.stop();
}

#[test]
fn a_forged_commit_on_the_stream_halts_the_node_and_is_reported() {
    let cluster = NatsCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), &cluster.urls());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (domain, at) = create_domain(&node.url, "example.org").await;
        // Someone with write access to the servers appends a well-formed
        // commit that does not extend the chain (it starts over from genesis).
        let log = ledger::cluster::StreamLog::open(&cluster.urls(), "LEDGER", 3).await.unwrap();
        let meta = ledger_events::CommitMeta {
            commit_id: uuid::Uuid::now_v7(),
            committed_at: ledger_events::values::UtcDateTime::from_millis(1_790_000_000_000),
            actor: ledger_events::Actor::system(),
            request_id: String::new(),
            call_id: String::new(),
        };
        let event = ledger_events::Event::AccountUpdated(ledger_events::AccountUpdated {
            account_id: ledger_events::values::ObjectId(99),
            description: ledger_events::model::Change::between(None, Some("forged".to_owned())),
            ..Default::default()
        });
        let mut genesis = ledger_events::ChainTail::GENESIS;
        let mut record = genesis.seal(&meta, uuid::Uuid::now_v7(), &event, &[1; 32]);
        record.payload = None;
        let last = log.last_sequence().await.unwrap();
        let forged = ledger::cluster::Commit {
            id: meta.commit_id,
            records: vec![record],
            owners: vec![ledger::cluster::Owner::Ledger],
        };
        log.append(&forged, last).await.unwrap();

        // The node's next write cannot be decided on the latest state: the
        // stream moved, and what it moved to does not extend the chain.
        let (r, _) = call_at(&node.url, "x:Account/set", user("after", &domain), 0).await;
        assert_eq!(r["type"], "serverUnavailable", "{r}");
        // The node reports where and why it stopped.
        let state = log_at(&node.url, 0).await;
        let halted = state["halted"].as_str().unwrap_or_else(|| panic!("not reported as halted: {state}"));
        assert!(halted.contains(&format!("commit {}", last + 1)), "{halted}");
        assert_eq!(state["stream"]["applied"], json!(last), "{state}");
        // Its reads answer the state before the forgery.
        let (got, position) = call_at(&node.url, "x:Domain/get", json!({"ids": [domain]}), 0).await;
        assert_eq!(got["list"][0]["name"], "example.org", "{got}");
        assert_eq!(position, at);
    });
    node.stop();
}

#[test]
fn erasure_on_one_node_leaves_no_erased_value_on_any_node_or_in_the_streams() {
    const MARKER: &str = "erase-me-7f3a9c";
    let cluster = NatsCluster::start();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let nodes: Vec<Served> = dirs.iter().map(|d| start(d.path(), &cluster.urls())).collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (domain, _) = create_domain(&nodes[0].url, "example.org").await;
        let create =
            json!({"create": {"a": {"@type": "User", "name": "erin", "domainId": domain, "description": MARKER}}});
        let (r, _) = call_at(&nodes[0].url, "x:Account/set", create, 0).await;
        let id = r["created"]["a"]["id"].as_str().unwrap().to_owned();
        let update = json!({"update": {id.clone(): {"description": format!("{MARKER} again")}}});
        let (_, at) = call_at(&nodes[1].url, "x:Account/set", update, 0).await;
        agree(&[&nodes[0].url, &nodes[1].url], at).await;
        // Before the erasure both nodes hold the value (the scan below can fail).
        for dir in &dirs {
            let found = super::process::contents(dir.path())
                .iter()
                .any(|(_, bytes)| bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()));
            assert!(found, "{} does not hold the value before its erasure", dir.path().display());
        }

        let (erased, at) = call_at(&nodes[1].url, "x:Database/erase", json!({"ids": [id]}), at).await;
        assert_eq!(erased["erased"], json!([id]), "{erased}");
        agree(&[&nodes[0].url, &nodes[1].url], at).await;
        // The other node rewrites its files after applying the erasure, before
        // it applies anything later: once it has applied a later write, its
        // files are clean (they are scanned below).
        let (_, later) = call_at(&nodes[1].url, "x:Account/set", user("later", &domain), 0).await;
        agree(&[&nodes[0].url, &nodes[1].url], later).await;
        for node in &nodes {
            let (got, _) = call_at(&node.url, "x:Account/get", json!({"ids": [id]}), at).await;
            assert_eq!(got["notFound"], json!([id]), "{got}");
        }
        // The payload stream keeps nothing of erin's, the key stream only the marker.
        let client = async_nats::connect(cluster.url(0)).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let payloads = js.get_stream("LEDGER_PAYLOADS").await.unwrap();
        let left = payloads.info_with_subjects(format!("ledger.payload.{id}.*")).await.unwrap().count().await;
        assert_eq!(left, 0, "payload messages of the erased account remain");
    });
    let servers = [nodes[0].url.clone(), nodes[1].url.clone()];
    for node in nodes {
        node.stop();
    }
    // Stopped nodes: nothing of the erased values in any file, on either
    // node's disk or the servers'.
    for dir in dirs.iter().map(|d| d.path()).chain([cluster.dir()]) {
        for (path, bytes) in super::process::contents(dir) {
            assert!(
                !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
                "{} holds an erased value (nodes {servers:?})",
                path.display()
            );
        }
    }
}

/// Writers through both nodes until `stop`; each acknowledged name lands in
/// `acked` with the time it was acknowledged.
type Acked = Arc<std::sync::Mutex<Vec<(String, Instant)>>>;

fn spawn_writers(
    urls: &[String],
    domain: &str,
    acked: &Acked,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..4)
        .map(|w| {
            let (url, domain, acked, stop) = (urls[w % 2].clone(), domain.to_owned(), Arc::clone(acked), stop.clone());
            tokio::spawn(async move {
                let mut last = 0;
                for n in 0.. {
                    if *stop.borrow() {
                        break;
                    }
                    let name = format!("w{w}n{n}");
                    let (r, position) = call_at(&url, "x:Account/set", user(&name, &domain), 0).await;
                    if r["created"]["a"]["id"].is_string() {
                        acked.lock().unwrap().push((name, Instant::now()));
                        last = last.max(position);
                    } else {
                        // During a failover a write may fail; it must say why.
                        assert_eq!(r["type"], "serverUnavailable", "{r}");
                    }
                }
                last
            })
        })
        .collect()
}

/// Waits until `more` writes were acknowledged after this call.
async fn acknowledged(acked: &Acked, more: usize) {
    let target = acked.lock().unwrap().len() + more;
    let deadline = Instant::now() + BOUND;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while acked.lock().unwrap().len() < target {
        assert!(Instant::now() < deadline, "writes did not resume within {BOUND:?}");
        tick.tick().await;
    }
}

/// The longest time without an acknowledgement from `since` on.
fn longest_stall(acked: &Acked, since: Instant) -> Duration {
    let mut times: Vec<Instant> = acked.lock().unwrap().iter().map(|(_, t)| *t).filter(|t| *t >= since).collect();
    times.push(since);
    times.sort();
    times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
}

#[test]
fn killing_a_follower_server_then_the_stream_leader_under_load_loses_no_acknowledged_write() {
    let mut cluster = NatsCluster::start();
    let (_dirs, nodes, urls) = two_nodes(&cluster);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (domain, _) = create_domain(&urls[0], "example.org").await;
        let log = ledger::cluster::StreamLog::open(&cluster.urls(), "LEDGER", 3).await.unwrap();
        let leader = cluster.index_of(&log.leader().await.unwrap().expect("the stream has a leader"));
        let follower = (leader + 1) % 3;
        drop(log);

        let acked: Acked = Arc::default();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let writers = spawn_writers(&urls, &domain, &acked, &stopped);
        acknowledged(&acked, 20).await;

        // A follower server dies: the stream keeps its quorum.
        let killed = Instant::now();
        cluster.kill(follower);
        acknowledged(&acked, 20).await;
        let follower_stall = longest_stall(&acked, killed);
        cluster.restart(follower);

        // The stream leader dies: a new one is elected, writes resume.
        let killed = Instant::now();
        cluster.kill(leader);
        acknowledged(&acked, 20).await;
        let leader_stall = longest_stall(&acked, killed);
        stop.send_replace(true);
        let mut last = 0;
        for writer in writers {
            last = last.max(writer.await.unwrap());
        }
        eprintln!("longest stall: follower server killed {follower_stall:?}, stream leader killed {leader_stall:?}");

        // Both nodes agree, and hold every acknowledged write once.
        agree(&[&urls[0], &urls[1]], last).await;
        let acked: HashSet<String> = acked.lock().unwrap().iter().map(|(n, _)| n.clone()).collect();
        for url in &urls {
            let names = names_at(url, last).await;
            let unique: HashSet<String> = names.iter().cloned().collect();
            assert_eq!(unique.len(), names.len(), "an account is there twice at {url}");
            let lost: Vec<&String> = acked.difference(&unique).collect();
            assert!(lost.is_empty(), "{url} lost acknowledged writes: {lost:?}");
        }
    });
    for node in nodes {
        node.stop();
    }
}

#[test]
fn the_ledger_tools_work_against_a_cluster_node_as_against_a_single_one() {
    use super::process::{ledger, ok};
    let cluster = NatsCluster::start();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let nodes: Vec<Served> = dirs.iter().map(|d| start(d.path(), &cluster.urls())).collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (head, last) = runtime.block_on(async {
        let (domain, _) = create_domain(&nodes[0].url, "example.org").await;
        let mut last = 0;
        for (i, name) in ["ann", "bob", "cid"].iter().enumerate() {
            let (_, position) = call_at(&nodes[i % 2].url, "x:Account/set", user(name, &domain), 0).await;
            last = position;
        }
        let log = agree(&[&nodes[0].url, &nodes[1].url], last).await;
        (log["headHash"].as_str().unwrap().to_owned(), last)
    });
    let work = tempfile::tempdir().unwrap();
    // Online, through either node: export and verify it offline; a backup.
    let export = work.path().join("export.ndjson");
    let exported = ok(ledger(&nodes[1].url, &["audit", "export"]));
    std::fs::write(&export, &exported).unwrap();
    let verified = ok(ledger(&nodes[1].url, &["audit", "verify", export.to_str().unwrap()]));
    assert!(verified.contains(&head), "{verified}");
    let backup = work.path().join("ledger.backup");
    ok(ledger(&nodes[0].url, &["backup", backup.to_str().unwrap()]));
    // A restore from it is a single-node store with the same chain.
    let restored = work.path().join("restored");
    ok(ledger(&nodes[0].url, &["restore", "--from", backup.to_str().unwrap(), "--to", restored.to_str().unwrap()]));
    for node in nodes {
        node.stop();
    }
    // Offline, on a stopped node's copy: verify and rebuild, as on a single node.
    for dir in [dirs[0].path(), restored.as_path()] {
        let verified = ok(ledger("", &["verify", "--data-dir", dir.to_str().unwrap()]));
        assert!(verified.contains(&head) && verified.contains(&last.to_string()), "{verified}");
    }
    ok(ledger("", &["rebuild", "--data-dir", dirs[1].path().to_str().unwrap()]));
    let verified = ok(ledger("", &["verify", "--data-dir", dirs[1].path().to_str().unwrap()]));
    assert!(verified.contains(&head), "{verified}");
    // A node whose copy was rebuilt rejoins and agrees.
    let node = start(dirs[1].path(), &cluster.urls());
    runtime.block_on(async {
        let log = log_at(&node.url, last).await;
        assert_eq!(log["headHash"], json!(head), "{log}");
    });
    node.stop();

    // Point-in-time restore into a new stream: the same cut as into a
    // directory, and a node started on it with an empty directory serves it.
    let cut = (last - 1).to_string();
    let at_cut = work.path().join("at-cut");
    let backup = backup.to_str().unwrap();
    ok(ledger("", &["restore", "--from", backup, "--to", at_cut.to_str().unwrap(), "--seq", &cut]));
    let verified = ok(ledger("", &["verify", "--data-dir", at_cut.to_str().unwrap()]));
    let key = dirs[0].path().join("sealing.key");
    let restored = ok(ledger(
        "",
        &["restore", "--from", backup, "--seq", &cut, "--to-log", &cluster.urls(), "--log-stream", "RESTORED"]
            .into_iter()
            .chain(["--sealing-key", key.to_str().unwrap()])
            .collect::<Vec<_>>(),
    ));
    assert!(restored.contains("RESTORED"), "{restored}");
    let fresh = tempfile::tempdir().unwrap();
    let node = Served::start_with(
        fresh.path(),
        &["--log", &cluster.urls(), "--log-stream", "RESTORED"],
        &[("LEDGER_ADMIN_PASSWORD", super::support::ADMIN_PASSWORD), ("LEDGER_LOG", "warn")],
        std::process::Stdio::inherit(),
    );
    runtime.block_on(async {
        let log = log_at(&node.url, last - 1).await;
        assert_eq!(log["position"], json!(last - 1), "{log}");
        let hash = log["headHash"].as_str().unwrap();
        assert!(verified.contains(hash), "the stream's head {hash} is not the directory restore's: {verified}");
        let names: HashSet<String> = names_at(&node.url, last - 1).await.into_iter().collect();
        assert_eq!(names, HashSet::from(["ann".to_owned(), "bob".to_owned()]), "the cut is before cid");
    });
    // The cluster's sealing key is the one restored with.
    assert_eq!(std::fs::read(fresh.path().join("sealing.key")).unwrap(), std::fs::read(&key).unwrap());
    // A stream that holds commits already is refused.
    let again = ledger("", &["restore", "--from", backup, "--to-log", &cluster.urls(), "--log-stream", "RESTORED"]);
    assert!(!again.status.success());
    assert!(super::process::text(&again.stderr).contains("holds"), "{}", super::process::text(&again.stderr));
    node.stop();
}
