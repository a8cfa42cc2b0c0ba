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
//! The ledger's own writes through a cluster (`ledger serve --log`) are not
//! built yet; when they are, their line joins these.
//!
//! Run: `cargo bench --bench cluster` (3 s per run, medians of 3). `cargo
//! test` runs it without `--bench`, with short runs, so that it cannot rot.
//! It needs `nats-server` (`bash .ci/tools`).

// A benchmark whose setup fails has nothing to measure: it stops there.
#![allow(clippy::unwrap_used)]

#[path = "../tests/integration/nats.rs"]
mod nats;
mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ledger::cluster::{Commit, StreamLog};
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
        .collect();
    Commit { id, records }
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
async fn raw_publishes(js: &async_nats::jetstream::Context, next: &mut u64, bytes: usize, run: Duration) -> f64 {
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
            .header("Ledger-Head-Hash", hash.as_str());
        js.send_publish("raw.commit", message).await.unwrap().await.unwrap();
        *next += 1;
        sent += 1;
    }
    sent as f64 / started.elapsed().as_secs_f64()
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
            let size = ledger_events::codec::encode_commit(&commit(&mut tail.clone(), k).records).len();
            let raw: Vec<f64> = {
                let mut out = Vec::new();
                for _ in 0..rounds {
                    out.push(raw_publishes(&js, &mut raw_next, size, run).await);
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
