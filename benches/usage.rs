//! Usage ingestion and change-feed latency, with fsync on.
//!
//! 1. Usage: 64 or 1,024 concurrent reporters send batches of 10 reports for random
//!    accounts (all 1,000, or a hot set of 100) through the coalescing ingest (the path behind
//!    `x:Account/reportUsage`) for a few seconds; reports/s acknowledged durable,
//!    events/s recorded, and how many reports each event stands for. Medians of 3
//!    runs per commit window. Checks the projected totals equal the reports' sum.
//! 2. Feed: one writer commits one account update at a time while a subscriber
//!    follows `GET /api/feed` over HTTP; latency from submit and from the durable
//!    acknowledgement to the record's arrival, median and p99.
//!
//! Run: `cargo bench --bench usage`.

// A benchmark whose setup fails has nothing to measure: it stops there.
#![allow(clippy::unwrap_used)]

mod support;
use support::percentile;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ledger::command::{Command, UpdateAccount, UsageChange, UsageReport};
use ledger::seed::{SeedRng, SeedSpec, seed};
use ledger::usage::UsageIngest;
use ledger::{CommitOrigin, Durability, Ledger};
use ledger_events::model::QuotaKind;
use ledger_events::values::ObjectId;

const ACCOUNTS: usize = 1_000;
const REPORTS_PER_REQUEST: usize = 10;
const RUN: Duration = Duration::from_secs(3);
const FEED_COMMITS: usize = 2_000;

fn build(ledger: &Ledger) -> Vec<ObjectId> {
    let spec = SeedSpec { seed: 3, domains: 1, groups: 0, users: ACCOUNTS, min_events: 0, batch: ACCOUNTS };
    seed(ledger, &spec).unwrap().users
}

struct IngestRun {
    reports_per_s: f64,
    events_per_s: f64,
    reports_per_event: f64,
    request_p50_ms: f64,
}

/// `hot`: how many of the accounts the reports go to (mail concentrates on few).
async fn ingest_run(
    ledger: &Ledger,
    ids: &Arc<Vec<ObjectId>>,
    (hot, window, reporters): (usize, Duration, usize),
    seed: u64,
) -> IngestRun {
    let ingest = UsageIngest::new(ledger.clone(), window);
    let before_seq = ledger.read().last_seq;
    let before_total = total_usage(ledger, ids);
    let stop = Arc::new(AtomicBool::new(false));
    let reported = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for r in 0..reporters {
        let (ingest, ids, stop, reported) = (ingest.clone(), Arc::clone(ids), Arc::clone(&stop), Arc::clone(&reported));
        tasks.push(tokio::spawn(async move {
            let mut rng = SeedRng::new(seed * 10_000 + r as u64);
            let (mut sum, mut latencies) = (0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let reports: Vec<UsageReport> = (0..REPORTS_PER_REQUEST)
                    .map(|_| {
                        let delta = 1 + rng.next_u64() % 10_000;
                        sum += delta;
                        UsageReport {
                            account_id: ids[rng.below(hot)],
                            quota: QuotaKind::MaxDiskQuota,
                            change: UsageChange::Delta(delta as i64),
                            enforce: false,
                        }
                    })
                    .collect();
                let t = Instant::now();
                let done = ingest.report(CommitOrigin::system(), reports).await.unwrap();
                latencies.push(t.elapsed().as_secs_f64() * 1e3);
                assert!(done.outcomes.iter().all(Result::is_ok));
                reported.fetch_add(REPORTS_PER_REQUEST as u64, Ordering::Relaxed);
            }
            (sum, latencies)
        }));
    }
    tokio::time::sleep(RUN).await;
    stop.store(true, Ordering::Relaxed);
    let (mut sum, mut latencies) = (0, Vec::new());
    for task in tasks {
        let (s, l) = task.await.unwrap();
        sum += s;
        latencies.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(total_usage(ledger, ids) - before_total, sum, "every acknowledged delta is in the projection");
    let events = (ledger.read().last_seq - before_seq) as f64;
    let reports = reported.load(Ordering::Relaxed) as f64;
    IngestRun {
        reports_per_s: reports / elapsed,
        events_per_s: events / elapsed,
        reports_per_event: reports / events,
        request_p50_ms: percentile(latencies, 0.5),
    }
}

fn total_usage(ledger: &Ledger, ids: &[ObjectId]) -> u64 {
    let read = ledger.read();
    ids.iter().map(|id| ledger_projections::state::account(&read.view, *id).unwrap().unwrap().used_disk_quota()).sum()
}

async fn feed_latency(ledger: &Ledger, dir: &std::path::Path, ids: &[ObjectId]) -> (Vec<f64>, Vec<f64>) {
    let config = ledger::auth::AuthConfig { admin_password: Some("bench-password".into()), ..Default::default() };
    let (app, _) = ledger::http::AppState::open(ledger.clone(), dir, &config, Default::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ledger::http::serve(listener, app, async {
        let _ = stopped.await;
    }));
    let after = ledger.read().last_seq;
    let mut response = reqwest::Client::new()
        .get(format!("{url}/api/feed?after={after}"))
        .basic_auth("admin", Some("bench-password"))
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let subscriber = tokio::spawn(async move {
        let (mut arrived, mut pending) = (HashMap::new(), Vec::new());
        while arrived.len() < FEED_COMMITS {
            let Some(chunk) = response.chunk().await.unwrap() else { break };
            let now = Instant::now();
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let record: serde_json::Value = serde_json::from_slice(&line).unwrap();
                arrived.insert(record["seq"].as_u64().unwrap(), now);
            }
        }
        arrived
    });
    let mut sent = Vec::with_capacity(FEED_COMMITS);
    for i in 0..FEED_COMMITS {
        let id = ids[i % ids.len()];
        let update = UpdateAccount { id, description: Some(Some(format!("feed {i}"))), ..Default::default() };
        let submitted = Instant::now();
        let done = ledger
            .commit(CommitOrigin::system(), move |tx| tx.execute(&Command::UpdateAccount(update.clone())).unwrap())
            .await
            .unwrap();
        sent.push((done.info.last_seq, submitted, Instant::now()));
    }
    let arrived = subscriber.await.unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let signed_ms = |from: Instant, to: Instant| match to.checked_duration_since(from) {
        Some(d) => d.as_secs_f64() * 1e3,
        None => -(from.duration_since(to).as_secs_f64() * 1e3),
    };
    let from_submit = sent.iter().map(|(seq, s, _)| signed_ms(*s, arrived[seq])).collect();
    let from_ack = sent.iter().map(|(seq, _, a)| signed_ms(*a, arrived[seq])).collect();
    (from_submit, from_ack)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), Durability::Fsync).unwrap();
    let ids = Arc::new(build(&ledger));
    println!("usage bench: {ACCOUNTS} accounts, {REPORTS_PER_REQUEST} reports/request, fsync on");
    runtime.block_on(async {
        // A reporter waits for its acknowledgement, so a long window needs many of them.
        for (hot, window_ms, reporters) in [(ACCOUNTS, 0u64, 64), (100, 0, 64), (ACCOUNTS, 100, 1024), (100, 100, 1024)] {
            let mut runs = Vec::new();
            for seed in 1..=3 {
                let config = (hot, Duration::from_millis(window_ms), reporters);
                runs.push(ingest_run(&ledger, &ids, config, seed).await);
            }
            let median = |f: fn(&IngestRun) -> f64| percentile(runs.iter().map(f).collect(), 0.5);
            println!(
                "  {hot:>4} accounts, window {window_ms:>3} ms, {reporters:>4} reporters: {:>7.0} reports/s durable  {:>7.0} events/s  {:>6.1} reports/event  request p50 {:>6.1} ms",
                median(|r| r.reports_per_s),
                median(|r| r.events_per_s),
                median(|r| r.reports_per_event),
                median(|r| r.request_p50_ms),
            );
        }
        let (from_submit, from_ack) = feed_latency(&ledger, dir.path(), &ids).await;
        println!("feed bench: {FEED_COMMITS} sequential commits, one NDJSON subscriber over HTTP");
        println!(
            "  submit -> subscriber  median {:>6.2} ms  p99 {:>6.2} ms",
            percentile(from_submit.clone(), 0.5),
            percentile(from_submit, 0.99)
        );
        println!(
            "  durable ack -> subscriber  median {:>6.2} ms  p99 {:>6.2} ms",
            percentile(from_ack.clone(), 0.5),
            percentile(from_ack, 0.99)
        );
    });
    ledger.shutdown();
}
