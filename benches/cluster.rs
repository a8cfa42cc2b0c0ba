//! The cluster's log on three real `nats-server` processes (R=3, file
//! storage, `sync_interval: always`), beside raw JetStream publishes of the
//! same sizes with the same headers, measured in the same run:
//!
//! - **raw JetStream**: one message at a time, each with
//!   `Nats-Expected-Last-Sequence`, `Nats-Msg-Id` and the four `Ledger-*`
//!   headers, of the size of a commit message of `k` records;
//! - **log append**: `StreamLog::append` of commits of `k` records (headers
//!   only: payloads go to the payload store), one at a time, the appends
//!   alone timed (its checks and encoding included, the sealing of the
//!   records not);
//! - the stall of appends when the stream leader is killed, and how long a
//!   follower takes to read the whole log back with the chain checked.
//!
//! - **ledger writes**: two ledger nodes on the cluster (the store as
//!   `ledger serve --log` opens it, without HTTP), 1, 16 and 64 writer
//!   threads spread over both, each commit one account update; beside the
//!   same writers on one single-node store (fjall, fsync), and raw JetStream
//!   publishes from as many concurrent publishers, each message the size of
//!   a one-record commit with the same headers (no expected sequence: raw
//!   publishes need no order). Ratio: ledger commits/s with 64 writers over
//!   raw messages/s with 64 publishers;
//! - follower lag: from a commit's answer on one node until the other node
//!   has applied it (median of 50, one at a time).
//!
//! Run: `cargo bench --bench cluster` (3 s per run, medians of 3). `cargo
//! test` runs it without `--bench`, with short runs, so that it cannot rot.
//! It needs `nats-server` (`bash .ci/tools`).

// A benchmark whose setup fails has nothing to measure: it stops there.
#![allow(clippy::unwrap_used)]

#[path = "../tests/integration/nats.rs"]
mod nats;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ledger::cluster::{Commit, Owner, StreamLog};
use ledger_events::model::Change;
use ledger_events::values::{ObjectId, UtcDateTime};
use ledger_events::{AccountUpdated, Actor, AuthMethod, ChainTail, ChainVerifier, CommitMeta, Event};
use support::median;
use uuid::Uuid;

/// A commit of `k` description updates on `tail`, headers only.
fn commit(tail: &mut ChainTail, k: usize) -> Commit {
    let id = Uuid::now_v7();
    let meta = CommitMeta {
        commit_id: id,
        committed_at: UtcDateTime::from_millis(1_790_000_000_000),
        actor: Actor { principal_id: "b".into(), name: "admin".into(), auth_method: AuthMethod::Password },
        request_id: "bench".into(),
        call_id: "c".into(),
    };
    let records = (0..k)
        .map(|i| {
            let event = Event::AccountUpdated(AccountUpdated {
                account_id: ObjectId(1 + i as u64),
                description: Change::between(None, Some(format!("run {id} item {i}"))),
                ..Default::default()
            });
            let mut record = tail.seal(&meta, Uuid::now_v7(), &event, &[7; 32]);
            record.payload = None;
            record
        })
        .collect::<Vec<_>>();
    let owners = (0..k).map(|i| Owner::Account(ObjectId(1 + i as u64))).collect();
    Commit { id, records, owners }
}

/// Appends commits of `k` records one at a time for `run`: events/s. Only
/// the appends are timed (sealing the records is the writer's work, before
/// any log).
async fn log_appends(log: &StreamLog, tail: &mut ChainTail, next: &mut u64, k: usize, run: Duration) -> f64 {
    let mut appending = Duration::ZERO;
    let mut events = 0;
    while appending < run {
        let c = commit(tail, k);
        let started = Instant::now();
        log.append(&c, *next).await.unwrap();
        appending += started.elapsed();
        *next += 1;
        events += k;
    }
    events as f64 / appending.as_secs_f64()
}

/// Publishes raw messages of `bytes` bytes with the log's headers, one at a
/// time, for `run`: messages/s.
async fn raw_publishes(
    js: &async_nats::jetstream::Context,
    next: &mut u64,
    bytes: usize,
    owners: &str,
    run: Duration,
) -> f64 {
    let started = Instant::now();
    let mut sent = 0u64;
    let body = bytes::Bytes::from(vec![0x5a; bytes]);
    let hash = "0".repeat(64);
    while started.elapsed() < run {
        let message = async_nats::jetstream::message::PublishMessage::build()
            .payload(body.clone())
            .message_id(Uuid::now_v7().to_string())
            .expected_last_sequence(*next)
            .header("Ledger-First-Position", "1")
            .header("Ledger-Count", "1")
            .header("Ledger-Previous-Hash", hash.as_str())
            .header("Ledger-Head-Hash", hash.as_str())
            .header("Ledger-Owners", owners);
        js.send_publish("raw.commit", message).await.unwrap().await.unwrap();
        *next += 1;
        sent += 1;
    }
    sent as f64 / started.elapsed().as_secs_f64()
}

/// Commits one account update each from `writers` threads, spread over
/// `nodes`, for `run`: commits/s (= events/s).
fn ledger_writes(nodes: &[ledger::Ledger], users: &Arc<Vec<ObjectId>>, writers: usize, run: Duration) -> f64 {
    use ledger::command::{Command, UpdateAccount};
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let (ledger, users, stop, commits) =
                (nodes[w % nodes.len()].clone(), Arc::clone(users), Arc::clone(&stop), Arc::clone(&commits));
            std::thread::spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let id = users[(w * 7919 + n) % users.len()];
                    let update = Command::UpdateAccount(UpdateAccount {
                        id,
                        description: Some(Some(format!("w{w} n{n}"))),
                        ..Default::default()
                    });
                    let committed = ledger
                        .commit_blocking(ledger::CommitOrigin::system(), move |tx| tx.execute(&update).is_ok())
                        .unwrap();
                    assert!(committed.value, "an update was refused");
                    commits.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    commits.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Creates a domain and `n` users on `ledger`; their ids.
fn users(ledger: &ledger::Ledger, n: usize) -> Arc<Vec<ObjectId>> {
    use ledger::command::{Command, CreateAccount};
    let domain = support::create_domain(ledger);
    let created = ledger
        .commit_blocking(ledger::CommitOrigin::system(), move |tx| {
            (0..n)
                .map(|i| {
                    let create = CreateAccount::user(format!("user{i}").parse().unwrap(), domain);
                    let events = tx.execute(&Command::CreateAccount(create)).unwrap();
                    events[0].subject().unwrap().1
                })
                .collect::<Vec<_>>()
        })
        .unwrap();
    Arc::new(created.value)
}

/// Raw JetStream publishes from `publishers` concurrent tasks, each message
/// `bytes` long with the log's headers, for `run`: messages/s.
async fn raw_concurrent(js: &async_nats::jetstream::Context, publishers: usize, bytes: usize, run: Duration) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = (0..publishers)
        .map(|_| {
            let js = js.clone();
            tokio::spawn(async move {
                let body = bytes::Bytes::from(vec![0x5a; bytes]);
                let hash = "0".repeat(64);
                let mut sent = 0u64;
                while started.elapsed() < run {
                    let message = async_nats::jetstream::message::PublishMessage::build()
                        .payload(body.clone())
                        .message_id(Uuid::now_v7().to_string())
                        .header("Ledger-First-Position", "1")
                        .header("Ledger-Count", "1")
                        .header("Ledger-Previous-Hash", hash.as_str())
                        .header("Ledger-Head-Hash", hash.as_str())
                        .header("Ledger-Owners", "Bn");
                    js.send_publish("rawc.commit", message).await.unwrap().await.unwrap();
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    let mut sent = 0;
    for task in tasks {
        sent += task.await.unwrap();
    }
    sent as f64 / started.elapsed().as_secs_f64()
}

/// Ledger writes through two cluster nodes, beside one single node and raw
/// concurrent JetStream publishes; then the follower lag.
fn ledger_section(cluster: &nats::NatsCluster, runtime: &tokio::runtime::Runtime, run: Duration, rounds: usize) {
    use ledger::store::cluster::ClusterLink;
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<ledger::Ledger> = (0..2)
        .map(|i| {
            let (log, payloads) = runtime.block_on(async {
                let log = StreamLog::open(&cluster.urls(), "NODES", 3).await.unwrap();
                let payloads = log.payload_store(3).await.unwrap();
                (log, payloads)
            });
            let link = ClusterLink::new(log.clone(), payloads.clone(), runtime.handle().clone());
            let node_id = link.node();
            let node =
                ledger::Ledger::open_cluster(&dir.path().join(format!("node{i}")), ledger::Durability::Fsync, link)
                    .unwrap();
            runtime.spawn(ledger::cluster::follow(node.clone(), log, payloads, node_id));
            node
        })
        .collect();
    let single = ledger::Ledger::open(&dir.path().join("single"), ledger::Durability::Fsync).unwrap();
    let users_cluster = users(&nodes[0], 200);
    let at = nodes[0].read().last_seq;
    runtime.block_on(async {
        let mut applied = nodes[1].subscribe();
        tokio::time::timeout(Duration::from_secs(30), applied.wait_for(|p| *p >= at)).await.unwrap().unwrap();
    });
    let users_single = users(&single, 200);
    // The size of a one-record commit message as the nodes append it.
    let size = {
        let snap = nodes[0].database().snapshot();
        let mut record = nodes[0].log().read(&snap, at).unwrap().unwrap();
        record.payload = None;
        ledger_events::codec::encode_commit(&[record]).len()
    };
    let js = runtime.block_on(async {
        let client = async_nats::connect(cluster.url(0)).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut config = ledger::cluster::stream_config("RAWC", 3);
        config.deny_delete = true;
        js.create_stream(config).await.unwrap();
        js
    });
    let mut ratio = 0.0;
    for writers in [1usize, 16, 64] {
        let mut cluster_runs = Vec::new();
        let mut single_runs = Vec::new();
        let mut raw_runs = Vec::new();
        for _ in 0..rounds {
            cluster_runs.push(ledger_writes(&nodes, &users_cluster, writers, run));
            single_runs.push(ledger_writes(std::slice::from_ref(&single), &users_single, writers, run));
            raw_runs.push(runtime.block_on(raw_concurrent(&js, writers, size, run)));
        }
        let (ours, one, raw) = (median(cluster_runs), median(single_runs), median(raw_runs));
        println!(
            "  {writers:>2} writers, one update per commit: cluster (2 nodes) {ours:>6.0} commits/s = events/s; \
             single node {one:>6.0}; raw JetStream ({writers} publishers, {size} B) {raw:>6.0} messages/s"
        );
        ratio = ours / raw;
    }
    println!("ratio cluster_writes_64/raw_jetstream: {ratio:.2}");

    // Follower lag: a commit answered on node 0 until node 1 has applied it.
    let mut lags = Vec::new();
    for n in 0..50 {
        use ledger::command::{Command, UpdateAccount};
        let update = Command::UpdateAccount(UpdateAccount {
            id: users_cluster[n],
            description: Some(Some(format!("lag {n}"))),
            ..Default::default()
        });
        let committed =
            nodes[0].commit_blocking(ledger::CommitOrigin::system(), move |tx| tx.execute(&update).is_ok()).unwrap();
        let answered = Instant::now();
        let position = committed.info.last_seq;
        runtime.block_on(async {
            let mut applied = nodes[1].subscribe();
            tokio::time::timeout(Duration::from_secs(30), applied.wait_for(|p| *p >= position)).await.unwrap().unwrap();
        });
        lags.push(answered.elapsed().as_secs_f64() * 1000.0);
    }
    println!("  follower lag (commit answered on one node until applied on the other): median {:.2} ms", median(lags));
    for node in nodes {
        node.shutdown();
    }
    single.shutdown();
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (run, rounds) = if full { (Duration::from_secs(3), 3) } else { (Duration::from_millis(200), 1) };
    let mut cluster = nats::NatsCluster::start();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!("cluster bench: 3 nats-server processes on 127.0.0.1, R=3, file storage, sync_interval: always");
    let ratio = runtime.block_on(async {
        let log = StreamLog::open(&cluster.url(0), "LEDGER", 3).await.unwrap();
        let raw_config = ledger::cluster::stream_config("RAW", 3);
        let client = async_nats::connect(cluster.url(0)).await.unwrap();
        let js = async_nats::jetstream::new(client);
        js.create_stream(raw_config).await.unwrap();
        let (mut tail, mut next, mut raw_next) = (ChainTail::GENESIS, 0u64, 0u64);
        let mut ratio = 0.0;
        for k in [1usize, 50] {
            let sample = commit(&mut tail.clone(), k);
            let size = ledger_events::codec::encode_commit(&sample.records).len();
            let owners = sample.owners.iter().map(|o| format!("{o:?}")).collect::<Vec<_>>().join(" ");
            let raw: Vec<f64> = {
                let mut out = Vec::new();
                for _ in 0..rounds {
                    out.push(raw_publishes(&js, &mut raw_next, size, &owners, run).await);
                }
                out
            };
            let ours: Vec<f64> = {
                let mut out = Vec::new();
                for _ in 0..rounds {
                    out.push(log_appends(&log, &mut tail, &mut next, k, run).await);
                }
                out
            };
            let (raw, ours) = (median(raw), median(ours));
            let commits = ours / k as f64;
            println!(
                "  commits of {k:>2} records ({size} B), one in flight: log append {commits:>7.0} commits/s {ours:>8.0} events/s; raw JetStream {raw:>7.0} messages/s"
            );
            ratio = commits / raw;
        }
        ratio
    });
    println!("ratio log_append_50/raw_jetstream: {ratio:.2}");
    ledger_section(&cluster, &runtime, run, rounds);

    // A follower reads the whole log back, checking the chain.
    let (events, seconds) = runtime.block_on(async {
        let log = StreamLog::open(&cluster.url(1), "LEDGER", 3).await.unwrap();
        let last = log.last_sequence().await.unwrap();
        let started = Instant::now();
        let mut follow = log.follow(1, ChainVerifier::from_genesis()).await.unwrap();
        let mut events = 0;
        for _ in 0..last {
            events += follow.next().await.unwrap().unwrap().commit.records.len();
        }
        (events, started.elapsed().as_secs_f64())
    });
    println!(
        "  follower read-back with chain check: {events} events in {seconds:.2} s = {:.0} events/s",
        events as f64 / seconds
    );

    // The stall of appends when the stream leader is killed.
    let stall = runtime.block_on(async {
        let log = StreamLog::open(&cluster.urls(), "LEDGER", 3).await.unwrap();
        let leader = log.leader().await.unwrap().unwrap();
        let next = log.last_sequence().await.unwrap();
        let mut verifier = ChainVerifier::from_genesis();
        let mut follow = log.follow(1, ChainVerifier::from_genesis()).await.unwrap();
        for _ in 0..next {
            let got = follow.next().await.unwrap().unwrap();
            for r in &got.commit.records {
                verifier.check(&r.header, None).unwrap();
            }
        }
        let mut tail = verifier.tail();
        let c = commit(&mut tail, 1);
        cluster.kill(cluster.index_of(&leader));
        let killed = Instant::now();
        loop {
            match tokio::time::timeout(Duration::from_secs(5), log.append(&c, next)).await {
                Ok(Ok(_)) => break,
                _ => assert!(killed.elapsed() < Duration::from_secs(60), "appends did not resume"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        killed.elapsed().as_secs_f64()
    });
    println!("  appends stalled {stall:.2} s after the stream leader was killed (SIGKILL)");
}
