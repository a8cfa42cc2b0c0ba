//! What an open console costs the API: JMAP requests per second with the
//! console idle (nobody signed in) against the same with a signed-in live
//! overview open (its `/console/live` stream following the log and
//! rendering a row per event), on the real server over loopback, in one run.
//! Two workloads: reads (`x:Domain/get`) while a background writer commits,
//! and writes (`x:Account/set`, each one an event the live page is sent).
//! Rounds alternate idle and live; medians and the ratio live/idle print.
//!
//! Run: `cargo bench --bench console` (LEDGER_BENCH_REQUESTS, LEDGER_BENCH_ROUNDS
//! to tune). `cargo test` runs it without `--bench`, with short runs.

// A benchmark whose setup fails has nothing to measure: it stops there.
#![allow(clippy::unwrap_used)]

mod support;
use support::median;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use base64::Engine;
use ledger::auth::AuthConfig;
use ledger::http::AppState;
use ledger::{Durability, Ledger};
use serde_json::{Value, json};
use tokio_stream::StreamExt;

const CONCURRENCY: usize = 16;
const PASSWORD: &str = "bench-admin-password";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn authorization() -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}")))
}

async fn post(client: &reqwest::Client, url: &str, calls: Value) -> Value {
    let body = json!({"using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"], "methodCalls": calls});
    let r = client
        .post(format!("{url}/api"))
        .header("authorization", authorization())
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    r.json().await.unwrap()
}

/// Requests per second for `total` requests from `CONCURRENCY` clients;
/// `write` picks `x:Account/set` of one of `accounts`, else `x:Domain/get`.
async fn rate(client: &reqwest::Client, url: &str, accounts: &[String], write: bool, total: usize) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let (client, url, account) = (client.clone(), url.to_owned(), accounts[worker % accounts.len()].clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..total / CONCURRENCY {
                let calls = if write {
                    json!([["x:Account/set", {"update": {account.clone(): {"description": format!("round {i}")}}}, "c"]])
                } else {
                    json!([["x:Domain/get", {"ids": null}, "c"]])
                };
                post(&client, &url, calls).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (total / CONCURRENCY * CONCURRENCY) as f64 / started.elapsed().as_secs_f64()
}

/// A signed-in browser's live overview: the page, then its event stream,
/// read until dropped. Counts the bytes it was sent.
async fn open_live_page(
    url: &str,
    received: Arc<AtomicU64>,
    sent: Arc<tokio::sync::Notify>,
) -> tokio::task::JoinHandle<()> {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = client
        .post(format!("{url}/console/sign-in"))
        .form(&[("username", "admin"), ("secret", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = client.get(format!("{url}/console/")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let live = html.split("data-live=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let stream = client.get(format!("{url}{live}")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    tokio::spawn(async move {
        let mut body = stream.bytes_stream();
        while let Some(Ok(chunk)) = body.next().await {
            received.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            sent.notify_one();
        }
    })
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run(full));
}

async fn run(full: bool) {
    let total = env_or("LEDGER_BENCH_REQUESTS", if full { 4000 } else { 160 });
    let rounds = env_or("LEDGER_BENCH_ROUNDS", if full { 5 } else { 1 });
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), Durability::Fsync).unwrap();
    let config = AuthConfig { admin_password: Some(PASSWORD.into()), ..Default::default() };
    let (app, _) = AppState::open(ledger.clone(), dir.path(), &config, Default::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ledger::http::serve(listener, app, std::future::pending::<()>()));
    let client = reqwest::Client::new();
    let domain =
        post(&client, &url, json!([["x:Domain/set", {"create": {"d": {"name": "bench.example"}}}, "c"]])).await;
    let domain = domain["methodResponses"][0][1]["created"]["d"]["id"].as_str().unwrap().to_owned();
    let mut accounts = Vec::new();
    for i in 0..CONCURRENCY {
        let r = post(
            &client,
            &url,
            json!([["x:Account/set", {"create": {"a": {"@type": "User", "name": format!("user{i}"), "domainId": domain}}}, "c"]]),
        )
        .await;
        accounts.push(r["methodResponses"][0][1]["created"]["a"]["id"].as_str().unwrap().to_owned());
    }
    // Warm up connections, the login cache and the console's chart and chain.
    rate(&client, &url, &accounts, false, CONCURRENCY * 4).await;
    drop(open_live_page(&url, Arc::default(), Arc::default()).await);

    for (name, write) in [("api_reads", false), ("api_writes", true)] {
        let (mut idle, mut live) = (Vec::new(), Vec::new());
        let received = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(tokio::sync::Notify::new());
        for round in 0..rounds {
            // Reads run beside a writer, so that the live page has events to render.
            let writer = (!write).then(|| {
                let (client, url, account) = (client.clone(), url.clone(), accounts[0].clone());
                tokio::spawn(async move {
                    for n in 0u64.. {
                        let calls =
                            json!([["x:Account/set", {"update": {account.clone(): {"description": format!("w{n}")}}}, "w"]]);
                        post(&client, &url, calls).await;
                    }
                })
            });
            // Which goes first alternates, so that drift within a round cancels.
            if round % 2 == 0 {
                idle.push(rate(&client, &url, &accounts, write, total).await);
            }
            let before = received.load(Ordering::Relaxed);
            let page = open_live_page(&url, Arc::clone(&received), Arc::clone(&sent)).await;
            live.push(rate(&client, &url, &accounts, write, total).await);
            // Not timed: the page must have been sent rows (a short run may end first).
            let arrived = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                while received.load(Ordering::Relaxed) == before {
                    sent.notified().await;
                }
            });
            assert!(arrived.await.is_ok(), "the live page was sent no rows");
            page.abort();
            if round % 2 == 1 {
                idle.push(rate(&client, &url, &accounts, write, total).await);
            }
            if let Some(w) = writer {
                w.abort();
            }
        }
        let (i, l) = (median(idle), median(live));
        println!("{name}_console_idle: {i:.0} requests/s (median of {rounds}, {CONCURRENCY} clients)");
        println!(
            "{name}_console_live: {l:.0} requests/s (live page received {} bytes)",
            received.load(Ordering::Relaxed)
        );
        println!("ratio {name}_console_live/{name}_console_idle: {:.2}", l / i);
    }
}
