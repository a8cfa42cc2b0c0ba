//! Speed at scale: a seeded directory of 100k accounts and a 1M-event log (the
//! generator in `ledger::seed`), then durable write throughput at 1/16/64
//! concurrent writers, in-process JMAP `/get` and `/query` latency, HTTP requests/s
//! with authentication, `asOf` reads, full replay (`ledger rebuild`), restore, and
//! peak RSS. Medians and p99 over seeded random ids.
//!
//! Beside them, in the same run, the raw baselines of the storage underneath:
//! appending records of the ledger's sizes to a bare fjall keyspace pair in the
//! ledger's group sizes (one fsync per group), and a bare range scan of the
//! log with decode and hash check. The `ratio …` lines divide the ledger's
//! figure by its baseline's (medians of 3).
//!
//! Run: `cargo bench --bench scale` (100k accounts, 1M events);
//! `LEDGER_BENCH_SCALE=small` (310 accounts), `10k` (10k accounts, 100k
//! events), `medium` (20k accounts, 200k events) or `large` (1M accounts,
//! 2M events);
//! `LEDGER_BENCH_ONLY=replay` skips to reopen, rebuild and restore;
//! `LEDGER_BENCH_ONLY=writes` measures only the 64-writer run and its baseline.
//! `cargo test` runs it without `--bench`: the small scale with short runs,
//! so that it cannot rot.

// A benchmark whose setup fails has nothing to measure: it stops there.
#![allow(clippy::unwrap_used)]

mod support;
use support::percentile;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ledger::audit::{asof, export::Bound, restore};
use ledger::command::{Command, UpdateAccount};
use ledger::seed::{SeedRng, SeedSpec, Seeded, seed};
use ledger::{CommitOrigin, Durability, Ledger};
use serde_json::{Value, json};

/// Makes a random `/query` filter.
type FilterMaker<'a> = Box<dyn FnMut(&mut SeedRng) -> Value + 'a>;

const PASSWORD: &str = "bench-password";

/// How long and how often to measure: a full run (`cargo bench`) or the
/// quick pass `cargo test` makes.
#[derive(Clone, Copy)]
struct Mode {
    run: Duration,
    rounds: usize,
    /// Scales the latency sample counts.
    samples: usize,
}

/// What the 64-writer run wrote, for the raw baseline to copy.
struct WriteShape {
    events_per_s: f64,
    /// Events per group (one fsync each).
    group: usize,
    header_bytes: usize,
    payload_bytes: usize,
}

/// Counts write runs, so no run repeats an earlier run's updates (a repeat is a no-op).
static WRITE_RUN: AtomicU64 = AtomicU64::new(0);

/// Peak resident set of this process so far, in MiB (Linux).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU seconds (user + system) the `ledger-writer` thread has used so far (Linux).
fn writer_cpu_seconds() -> f64 {
    let ticks = std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten().find_map(|task| {
        let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
        if comm.trim() != "ledger-writer" {
            return None;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
        // Fields after the parenthesised name: state is field 3; utime 14, stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some(fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?)
    });
    // Linux reports thread CPU time in clock ticks of 1/100 s.
    ticks.map_or(f64::NAN, |t| t / 100.0)
}

fn basic() -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}")))
}

/// Commits `commands` as the system, in one commit, and waits for it to be durable.
fn commit_all(ledger: &Ledger, commands: Vec<Command>) {
    ledger
        .commit_blocking(CommitOrigin::system(), move |tx| {
            for command in &commands {
                tx.execute(command).unwrap();
            }
        })
        .unwrap();
}

/// Commits updates of `per_commit` accounts (one event each) from `writers`
/// threads for [`RUN`]: (commits/s, events/s).
fn writers(
    ledger: &Ledger,
    users: &Arc<Vec<ledger_events::values::ObjectId>>,
    writers: usize,
    per_commit: usize,
    run_for: Duration,
) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let before = ledger.read().last_seq;
    let run = WRITE_RUN.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let (ledger, users, stop, commits) =
                (ledger.clone(), Arc::clone(users), Arc::clone(&stop), Arc::clone(&commits));
            std::thread::spawn(move || {
                let mut rng = SeedRng::new(run * 1000 + w as u64);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let updates: Vec<Command> = (0..per_commit)
                        .map(|i| {
                            let id = users[rng.below(users.len())];
                            let description = Some(Some(format!("run{run} w{w} n{n} i{i}")));
                            Command::UpdateAccount(UpdateAccount { id, description, ..Default::default() })
                        })
                        .collect();
                    commit_all(&ledger, updates);
                    commits.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(run_for);
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    let elapsed = started.elapsed().as_secs_f64();
    let events = (ledger.read().last_seq - before) as f64;
    (commits.load(Ordering::Relaxed) as f64 / elapsed, events / elapsed)
}

async fn jmap_call(app: &ledger::http::AppState, principal: &Arc<ledger::auth::Principal>, call: Value) -> Value {
    let body = json!({"using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"], "methodCalls": [call]});
    let value =
        ledger::jmap::api(&app.services, Arc::clone(principal), None, body.to_string().as_bytes()).await.unwrap();
    assert_ne!(value["methodResponses"][0][0], "error", "{value}");
    value
}

/// Latencies in ms of `samples` in-process calls made by `make`.
async fn latencies(
    app: &ledger::http::AppState,
    principal: &Arc<ledger::auth::Principal>,
    samples: usize,
    mut make: impl FnMut() -> Value,
) -> (f64, f64) {
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let call = make();
        let t = Instant::now();
        jmap_call(app, principal, call).await;
        out.push(t.elapsed().as_secs_f64() * 1e3);
    }
    (percentile(out.clone(), 0.5), percentile(out, 0.99))
}

async fn http_requests_per_s(
    app: ledger::http::AppState,
    users: Arc<Vec<String>>,
    clients: usize,
    run_for: Duration,
) -> f64 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ledger::http::serve(listener, app, async {
        let _ = stopped.await;
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (url, users, stop, done) = (url.clone(), Arc::clone(&users), Arc::clone(&stop), Arc::clone(&done));
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut rng = SeedRng::new(500 + c as u64);
                while !stop.load(Ordering::Relaxed) {
                    let id = &users[rng.below(users.len())];
                    let body = json!({"using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"],
                        "methodCalls": [["x:Account/get", {"ids": [id]}, "c"]]});
                    let response = client
                        .post(&url)
                        .header("authorization", basic())
                        .header("content-type", "application/json")
                        .body(body.to_string())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                    response.bytes().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(run_for).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let _ = stop_server.send(());
    server.await.unwrap().unwrap();
    rate
}

/// Writes, reads, HTTP and `asOf` against the seeded directory.
fn serving(
    ledger: &Ledger,
    source: &std::path::Path,
    users: Vec<ledger_events::values::ObjectId>,
    groups: &[ledger_events::values::ObjectId],
    domains: &[ledger_events::values::ObjectId],
    mode: Mode,
) -> WriteShape {
    let users = Arc::new(users);
    let mut shape = None;
    let writes_only = std::env::var("LEDGER_BENCH_ONLY").is_ok_and(|v| v == "writes");
    for per_commit in if writes_only { &[1][..] } else { &[1, 10][..] } {
        let per_commit = *per_commit;
        for n in if writes_only { &[64][..] } else { &[1, 16, 64][..] } {
            let n = *n;
            let (events_before, groups_before) =
                (ledger.metrics().events.load(Ordering::Relaxed), ledger.metrics().groups.load(Ordering::Relaxed));
            let cpu_before = writer_cpu_seconds();
            let runs: Vec<(f64, f64)> =
                (0..mode.rounds).map(|_| writers(ledger, &users, n, per_commit, mode.run)).collect();
            let commits = percentile(runs.iter().map(|r| r.0).collect(), 0.5);
            let events = percentile(runs.iter().map(|r| r.1).collect(), 0.5);
            println!(
                "  {n:>2} writers, {per_commit:>2} events per commit, fsync + group commit: {commits:>8.0} commits/s  {events:>8.0} events/s"
            );
            let written = ledger.metrics().events.load(Ordering::Relaxed) - events_before;
            println!(
                "      writer thread CPU: {:.1} µs per event",
                (writer_cpu_seconds() - cpu_before) * 1e6 / written.max(1) as f64
            );
            if (n, per_commit) == (64, 1) {
                let grouped = ledger.metrics().groups.load(Ordering::Relaxed) - groups_before;
                let (header_bytes, payload_bytes) = record_sizes(ledger, 1_000);
                shape = Some(WriteShape {
                    events_per_s: events,
                    group: (written / grouped.max(1)).max(1) as usize,
                    header_bytes,
                    payload_bytes,
                });
            }
        }
    }

    if writes_only {
        return shape.unwrap();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let config = ledger::auth::AuthConfig { admin_password: Some(PASSWORD.into()), ..Default::default() };
    let (app, _) = ledger::http::AppState::open(ledger.clone(), source, &config, Default::default()).unwrap();
    let now = ledger_events::values::UtcDateTime::from_millis(jiff::Timestamp::now().as_millisecond());
    let principal =
        Arc::new(app.auth.authenticate(ledger, Some(&basic()), IpAddr::V4(Ipv4Addr::LOCALHOST), now).unwrap());
    let jmap_ids: Arc<Vec<String>> = Arc::new(users.iter().map(|id| id.to_jmap()).collect());
    runtime.block_on(async {
        let mut rng = SeedRng::new(99);
        let (p50, p99) = latencies(
            &app,
            &principal,
            5_000 / mode.samples,
            || json!(["x:Account/get", {"ids": [jmap_ids[rng.below(jmap_ids.len())]]}, "c"]),
        )
        .await;
        println!("  x:Account/get one id (in-process JMAP)        p50 {p50:>7.3} ms  p99 {p99:>7.3} ms");
        let queries: [(&str, FilterMaker); 4] = [
            ("name prefix", Box::new(|r| json!({"name": format!("user{}", r.below(9_000))}))),
            ("domain", Box::new(|r| json!({"domainId": domains[r.below(domains.len())].to_jmap()}))),
            ("group member", Box::new(|r| json!({"memberGroupIds": groups[r.below(groups.len())].to_jmap()}))),
            ("text", Box::new(|_| json!({"text": "berlin sales"}))),
        ];
        for (name, mut filter) in queries {
            let (p50, p99) = latencies(
                &app,
                &principal,
                1_000 / mode.samples,
                || json!(["x:Account/query", {"filter": filter(&mut rng), "limit": 50}, "c"]),
            )
            .await;
            println!("  x:Account/query {name:<13} limit 50          p50 {p50:>7.3} ms  p99 {p99:>7.3} ms");
        }
        let (p50, p99) = latencies(
            &app,
            &principal,
            200 / mode.samples,
            || json!(["x:Account/query", {"filter": {"text": "berlin"}, "limit": 50, "calculateTotal": true}, "c"]),
        )
        .await;
        println!("  x:Account/query text + calculateTotal         p50 {p50:>7.3} ms  p99 {p99:>7.3} ms");
        let rate = http_requests_per_s(app.clone(), Arc::clone(&jmap_ids), 16, mode.run).await;
        println!("  HTTP x:Account/get with Basic auth, 16 clients: {rate:>8.0} requests/s");
    });

    let read = ledger.read();
    let last = read.last_seq;
    let mut rng = SeedRng::new(5);
    let mut asof_ms = Vec::new();
    for _ in 0..2_000 / mode.samples {
        let id = users[rng.below(users.len())];
        let position = 1 + rng.next_u64() % last;
        let t = Instant::now();
        asof::account_at(&read.view, ledger.log(), read.view.snapshot(), id, position).unwrap();
        asof_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "  asOf one account                               p50 {:>7.3} ms  p99 {:>7.3} ms",
        percentile(asof_ms.clone(), 0.5),
        percentile(asof_ms, 0.99)
    );
    drop(read);
    drop((app, principal, runtime));
    shape.expect("the 64-writer run ran")
}

/// Mean encoded header and payload sizes of the last `n` records.
fn record_sizes(ledger: &Ledger, n: u64) -> (usize, usize) {
    let read = ledger.read();
    let from = read.last_seq.saturating_sub(n) + 1;
    let (mut headers, mut payloads, mut count) = (0, 0, 0);
    for record in ledger.log().scan(read.view.snapshot(), from) {
        let record = record.unwrap();
        headers += ledger_events::codec::encode_header(&record.header).len();
        payloads += record.payload.as_ref().map_or(0, |p| ledger_events::codec::encode_payload(p).len());
        count += 1;
    }
    (headers / count.max(1), payloads / count.max(1))
}

/// Opens a bare fjall database with the ledger's settings.
fn bare_database(path: &std::path::Path) -> fjall::Database {
    fjall::Database::builder(path)
        .max_journaling_size(ledger::store::JOURNAL_LIMIT)
        .cache_size(ledger::store::CACHE_BYTES)
        .open()
        .unwrap()
}

/// The raw append baseline: groups of `shape.group` records of the ledger's
/// sizes into a bare keyspace pair, one batch and one fsync per group, for
/// `run_for`: records/s.
fn raw_append(db: &fjall::Database, shape: &WriteShape, next: &mut u64, run_for: Duration) -> f64 {
    let headers = db.keyspace("raw_headers", fjall::KeyspaceCreateOptions::default).unwrap();
    let payloads = db.keyspace("raw_payloads", fjall::KeyspaceCreateOptions::default).unwrap();
    let mut rng = SeedRng::new(*next);
    let filler = |rng: &mut SeedRng, len: usize| (0..len).map(|_| b'a' + rng.below(26) as u8).collect::<Vec<u8>>();
    let started = Instant::now();
    let mut written = 0u64;
    while started.elapsed() < run_for {
        let mut batch = db.batch();
        for _ in 0..shape.group {
            *next += 1;
            let key = ledger_events::codec::seq_key(*next);
            batch.insert(&headers, key, filler(&mut rng, shape.header_bytes));
            batch.insert(&payloads, key, filler(&mut rng, shape.payload_bytes));
        }
        batch.commit().unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
        written += shape.group as u64;
    }
    written as f64 / started.elapsed().as_secs_f64()
}

/// The raw scan baseline: the log's two keyspaces read as bare fjall ranges,
/// side by side, each record decoded (header, payload, event) and its hashes
/// and link checked: records/s.
fn raw_scan(path: &std::path::Path) -> (f64, u64) {
    use fjall::Readable;
    let db = bare_database(path);
    let headers = db.keyspace(ledger_events::HEADERS_KEYSPACE, fjall::KeyspaceCreateOptions::default).unwrap();
    let payloads = db.keyspace(ledger_events::PAYLOADS_KEYSPACE, fjall::KeyspaceCreateOptions::default).unwrap();
    let snapshot = db.snapshot();
    let started = Instant::now();
    let mut verifier = ledger_events::ChainVerifier::from_genesis();
    let mut bodies = snapshot.iter(&payloads).map(|g| g.into_inner().unwrap()).peekable();
    let mut count = 0u64;
    for guard in snapshot.iter(&headers) {
        let (key, raw) = guard.into_inner().unwrap();
        let header = ledger_events::codec::decode_header(&raw).unwrap();
        let body = match bodies.peek() {
            Some((k, _)) if *k == key => bodies.next().map(|(_, v)| v),
            _ => None,
        };
        let payload = body.map(|b| ledger_events::codec::decode_payload(header.format, b.as_ref()).unwrap());
        verifier.check(&header, payload.as_ref()).unwrap();
        let record = ledger_events::Record { header, payload };
        if let Some(event) = record.event() {
            std::hint::black_box(event.unwrap());
        }
        count += 1;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    drop(snapshot);
    (rate, count)
}

/// Bytes of every file under `path`.
fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// The crash child: opens the store, commits description updates, and
/// aborts without shutting down (so the journal holds unflushed writes).
fn crash_child(path: &std::path::Path) {
    let ledger = Ledger::open(path, Durability::Fsync).unwrap();
    let users: Vec<_> = ledger_projections::state::account_ids(&ledger.read().view, 20_000).unwrap();
    for round in 0..100u64 {
        let updates: Vec<Command> = users
            .iter()
            .take(1_000)
            .enumerate()
            .map(|(i, id)| {
                let description = Some(Some(format!("crash round {round} {i}")));
                Command::UpdateAccount(UpdateAccount { id: *id, description, ..Default::default() })
            })
            .collect();
        commit_all(&ledger, updates);
    }
    std::process::abort();
}

fn main() {
    if let Ok(path) = std::env::var("LEDGER_BENCH_CRASH_CHILD") {
        crash_child(std::path::Path::new(&path));
    }
    // `cargo bench` passes `--bench`; `cargo test` runs this without it.
    let full = std::env::args().any(|a| a == "--bench");
    let mode = if full {
        Mode { run: Duration::from_secs(3), rounds: 3, samples: 1 }
    } else {
        Mode { run: Duration::from_millis(150), rounds: 3, samples: 20 }
    };
    let scale = if full { std::env::var("LEDGER_BENCH_SCALE").unwrap_or_default() } else { "small".to_owned() };
    let spec = match scale.as_str() {
        "small" => SeedSpec::small(7),
        "10k" => SeedSpec { users: 9_800, groups: 200, min_events: 100_000, ..SeedSpec::large(7) },
        "medium" => SeedSpec { users: 19_000, groups: 200, min_events: 200_000, ..SeedSpec::large(7) },
        "large" => SeedSpec { users: 990_000, groups: 10_000, min_events: 2_000_000, ..SeedSpec::large(7) },
        _ => SeedSpec::large(7),
    };
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let ledger = Ledger::open(&source, Durability::Fsync).unwrap();
    let started = Instant::now();
    let Seeded { groups, users, domains, last_seq } = seed(&ledger, &spec).unwrap();
    let build = started.elapsed().as_secs_f64();
    let accounts = groups.len() + users.len();
    println!(
        "scale bench: {accounts} accounts in {} domains, {last_seq} events; built in {build:.1} s ({:.0} events/s in commits of {}), peak RSS {:.0} MiB",
        domains.len(),
        last_seq as f64 / build,
        spec.batch,
        peak_rss_mib()
    );

    let replay_only = std::env::var("LEDGER_BENCH_ONLY").is_ok_and(|v| v == "replay");
    let mut write_ratio = None;
    if !replay_only {
        let shape = serving(&ledger, &source, users, &groups, &domains, mode);
        let raw_db = bare_database(&dir.path().join("raw"));
        let mut next = 0;
        let raw: Vec<f64> = (0..mode.rounds).map(|_| raw_append(&raw_db, &shape, &mut next, mode.run)).collect();
        drop(raw_db);
        let raw = percentile(raw, 0.5);
        println!(
            "  raw append baseline: groups of {} records ({} B header + {} B payload), one fsync each: {raw:>8.0} records/s",
            shape.group, shape.header_bytes, shape.payload_bytes
        );
        write_ratio = Some(shape.events_per_s / raw);
        if std::env::var("LEDGER_BENCH_ONLY").is_ok_and(|v| v == "writes") {
            println!("ratio durable_writes_64/raw_append: {:.2}", shape.events_per_s / raw);
            return;
        }
    }
    let last = ledger.read().last_seq;
    let t = Instant::now();
    ledger.shutdown();
    drop(ledger);
    println!("  clean shutdown (flushes memtables): {:.2} s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let reopened = Ledger::open(&source, Durability::Fsync).unwrap();
    println!("  reopen after a clean shutdown: {:.2} s", t.elapsed().as_secs_f64());
    reopened.shutdown();
    drop(reopened);

    // A crash: a child process writes 100k events and aborts; then reopen.
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .env("LEDGER_BENCH_CRASH_CHILD", &source)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the crash child aborts");
    let t = Instant::now();
    let reopened = Ledger::open(&source, Durability::Fsync).unwrap();
    let crash_reopen = t.elapsed().as_secs_f64();
    let last = last.max(reopened.read().last_seq);
    println!("  reopen after a crash (child aborted after 100 commits of 1,000 events): {crash_reopen:.2} s");
    reopened.shutdown();
    drop(reopened);
    println!("  data directory: {:.0} MiB", dir_bytes(&source) as f64 / (1024.0 * 1024.0));

    let scans: Vec<f64> = (0..mode.rounds)
        .map(|_| {
            let (rate, count) = raw_scan(&source);
            assert_eq!(count, last, "the raw scan reads the whole log");
            rate
        })
        .collect();
    let raw_scan_rate = percentile(scans, 0.5);
    println!("  raw scan baseline (range scan, decode, hash check): {raw_scan_rate:>9.0} records/s");

    let rebuilds: Vec<f64> = (0..mode.rounds)
        .map(|_| {
            let t = Instant::now();
            let replayed = ledger::store::rebuild(&source).unwrap();
            assert_eq!(replayed, last);
            replayed as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    let rebuild = percentile(rebuilds, 0.5);
    println!("  rebuild (full replay): {last} events, {rebuild:.0} events/s");
    let restores: Vec<(f64, f64)> = (0..mode.rounds)
        .map(|round| {
            let target = dir.path().join(format!("restored-{round}"));
            let t = Instant::now();
            restore::restore(
                ledger::audit::restore::Source::Store(&source),
                &target,
                Some(Bound::Seq(last)),
                |_, _| {},
            )
            .unwrap();
            let seconds = t.elapsed().as_secs_f64();
            std::fs::remove_dir_all(&target).unwrap();
            (seconds, last as f64 / seconds)
        })
        .collect();
    let restore_seconds = percentile(restores.iter().map(|r| r.0).collect(), 0.5);
    let restore_rate = percentile(restores.iter().map(|r| r.1).collect(), 0.5);
    println!("  restore of the whole {last}-event log: {restore_seconds:.2} s = {restore_rate:.0} events/s");
    let t = Instant::now();
    restore::restore(
        ledger::audit::restore::Source::Store(&source),
        &dir.path().join("restored-half"),
        Some(Bound::Seq(last / 2)),
        |_, _| {},
    )
    .unwrap();
    println!("  restore to half the log: {:.2} s", t.elapsed().as_secs_f64());
    println!("  peak RSS: {:.0} MiB", peak_rss_mib());
    if let Some(ratio) = write_ratio {
        println!("ratio durable_writes_64/raw_append: {ratio:.2}");
    }
    println!("ratio rebuild/raw_scan: {:.2}", rebuild / raw_scan_rate);
    println!("ratio restore/raw_scan: {:.2}", restore_rate / raw_scan_rate);
}
