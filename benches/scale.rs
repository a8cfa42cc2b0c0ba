//! Speed at scale: a seeded directory of 100k accounts and a 1M-event log (the
//! generator in `ledger::seed`), then durable write throughput at 1/16/64
//! concurrent writers, in-process JMAP `/get` and `/query` latency, HTTP requests/s
//! with authentication, `asOf` reads, full replay (`ledger rebuild`), restore, and
//! peak RSS. Medians and p99 over seeded random ids.
//!
//! Run: `cargo bench --bench scale` (about three minutes);
//! `LEDGER_BENCH_SCALE=small` (310 accounts) or `medium` (20k accounts, 200k
//! events) for a quicker look;
//! `LEDGER_BENCH_ONLY=replay` skips to reopen, rebuild and restore.

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
const RUN: Duration = Duration::from_secs(3);

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

fn basic() -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}")))
}

/// Commits updates of `per_commit` accounts (one event each) from `writers`
/// threads for [`RUN`]: (commits/s, events/s).
fn writers(
    ledger: &Ledger,
    users: &Arc<Vec<ledger_events::values::ObjectId>>,
    writers: usize,
    per_commit: usize,
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
                    ledger
                        .commit_blocking(CommitOrigin::system(), move |tx| {
                            for update in &updates {
                                tx.execute(update).unwrap();
                            }
                        })
                        .unwrap();
                    commits.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(RUN);
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

async fn http_requests_per_s(app: ledger::http::AppState, users: Arc<Vec<String>>, clients: usize) -> f64 {
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
    tokio::time::sleep(RUN).await;
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
) {
    let users = Arc::new(users);
    for per_commit in [1, 10] {
        for n in [1, 16, 64] {
            let runs: Vec<(f64, f64)> = (0..3).map(|_| writers(ledger, &users, n, per_commit)).collect();
            let commits = percentile(runs.iter().map(|r| r.0).collect(), 0.5);
            let events = percentile(runs.iter().map(|r| r.1).collect(), 0.5);
            println!(
                "  {n:>2} writers, {per_commit:>2} events per commit, fsync + group commit: {commits:>8.0} commits/s  {events:>8.0} events/s"
            );
        }
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
            5_000,
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
                1_000,
                || json!(["x:Account/query", {"filter": filter(&mut rng), "limit": 50}, "c"]),
            )
            .await;
            println!("  x:Account/query {name:<13} limit 50          p50 {p50:>7.3} ms  p99 {p99:>7.3} ms");
        }
        let (p50, p99) = latencies(
            &app,
            &principal,
            200,
            || json!(["x:Account/query", {"filter": {"text": "berlin"}, "limit": 50, "calculateTotal": true}, "c"]),
        )
        .await;
        println!("  x:Account/query text + calculateTotal         p50 {p50:>7.3} ms  p99 {p99:>7.3} ms");
        let rate = http_requests_per_s(app.clone(), Arc::clone(&jmap_ids), 16).await;
        println!("  HTTP x:Account/get with Basic auth, 16 clients: {rate:>8.0} requests/s");
    });

    let read = ledger.read();
    let last = read.last_seq;
    let mut rng = SeedRng::new(5);
    let mut asof_ms = Vec::new();
    for _ in 0..2_000 {
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
}

fn main() {
    let spec = match std::env::var("LEDGER_BENCH_SCALE").as_deref() {
        Ok("small") => SeedSpec::small(7),
        Ok("medium") => SeedSpec { users: 19_000, groups: 200, min_events: 200_000, ..SeedSpec::large(7) },
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
    if !replay_only {
        serving(&ledger, &source, users, &groups, &domains);
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
    let t = Instant::now();
    let replayed = ledger::store::rebuild(&source).unwrap();
    let rebuild = t.elapsed().as_secs_f64();
    println!(
        "  rebuild (full replay): {replayed} events in {rebuild:.2} s = {:.0} events/s",
        replayed as f64 / rebuild
    );
    let t = Instant::now();
    restore::restore(
        ledger::audit::restore::Source::Store(&source),
        &dir.path().join("restored"),
        Some(Bound::Seq(last)),
        |_, _| {},
    )
    .unwrap();
    println!("  restore of the whole {last}-event log: {:.2} s", t.elapsed().as_secs_f64());
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
}
