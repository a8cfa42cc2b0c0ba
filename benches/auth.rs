//! Authenticated JMAP requests per second: Basic (password, cached after the
//! first argon2 check) and Bearer (API key) against an unauthenticated baseline
//! serving the same method, all in one run. Then the authority check on writes:
//! `x:Account/set` of a user's and of a 1,000-member group's permissions, by a
//! narrowed key (the check runs) against the fallback administrator (nothing
//! can exceed it, so it is skipped), in-process. Prints medians and ratios.
//!
//! Run: `cargo bench --bench auth` (LEDGER_BENCH_REQUESTS, LEDGER_BENCH_ROUNDS to tune).

// A benchmark whose setup fails has nothing to measure: it stops there.
#![allow(clippy::unwrap_used)]

mod support;
use support::median;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine;
use ledger::auth::{AuthConfig, Principal};
use ledger::http::AppState;
use ledger::{Durability, Ledger};
use serde_json::json;

const CONCURRENCY: usize = 16;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    url
}

/// Requests per second for `total` requests from `CONCURRENCY` clients.
async fn rate(client: &reqwest::Client, url: &str, authorization: Option<&str>, total: usize) -> f64 {
    let body = json!({"using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"],
        "methodCalls": [["x:Domain/get", {"ids": null}, "c"]]})
    .to_string();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, body) = (client.clone(), format!("{url}/api"), body.clone());
        let authorization = authorization.map(str::to_owned);
        tasks.push(tokio::spawn(async move {
            for _ in 0..total / CONCURRENCY {
                let mut request = client.post(&url).header("content-type", "application/json").body(body.clone());
                if let Some(a) = &authorization {
                    request = request.header("authorization", a);
                }
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (total / CONCURRENCY * CONCURRENCY) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let requests = env_or("LEDGER_BENCH_REQUESTS", 4000);
    let rounds = env_or("LEDGER_BENCH_ROUNDS", 5);
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), Durability::Fsync).unwrap();
    let config = AuthConfig { admin_password: Some("bench-admin".into()), ..Default::default() };
    let (app, _) = AppState::open(ledger.clone(), dir.path(), &config, Default::default()).unwrap();
    let authenticated = serve(ledger::http::router(app.clone())).await;
    let admin = Arc::new(Principal::fallback("admin"));
    // The same JMAP handler with no authentication in front of it.
    let baseline = serve(
        axum::Router::new()
            .route(
                "/api",
                post(|State(app): State<AppState>, body: axum::body::Bytes| async move {
                    match ledger::jmap::api(&app.services, admin, None, &body).await {
                        Ok(response) => axum::Json(response).into_response(),
                        Err(e) => (StatusCode::BAD_REQUEST, axum::Json(e.to_problem())).into_response(),
                    }
                }),
            )
            .with_state(app.clone()),
    )
    .await;

    let client = reqwest::Client::new();
    let basic =
        |u: &str, p: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
    let admin_auth = basic("admin", "bench-admin");
    let setup = json!({"using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"], "methodCalls": [
        ["x:Domain/set", {"create": {"d": {"name": "bench.example"}}}, "c0"],
        ["x:Account/set", {"create": {"u": {"@type": "User", "name": "bench", "domainId": "#d", "roles": {"@type": "Admin"},
            "credentials": [{"@type": "Password", "secret": "bench-password"},
                            {"@type": "ApiKey", "description": "bench", "permissions": {"@type": "Inherit"}}]}}}, "c1"]]});
    let created: serde_json::Value = client
        .post(format!("{authenticated}/api"))
        .header("authorization", &admin_auth)
        .header("content-type", "application/json")
        .body(setup.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["methodResponses"][1][1]["created"]["u"]["credentials"][1]["secret"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {key}");
    let user_basic = basic("bench@bench.example", "bench-password");

    // Warm up: the first Basic request pays argon2 once; later ones hit the cache.
    rate(&client, &authenticated, Some(&user_basic), CONCURRENCY).await;
    rate(&client, &authenticated, Some(&bearer), CONCURRENCY).await;
    rate(&client, &baseline, None, CONCURRENCY).await;

    let (mut none, mut basic_rates, mut bearer_rates) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        none.push(rate(&client, &baseline, None, requests).await);
        basic_rates.push(rate(&client, &authenticated, Some(&user_basic), requests).await);
        bearer_rates.push(rate(&client, &authenticated, Some(&bearer), requests).await);
    }
    let (n, b, k) = (median(none), median(basic_rates), median(bearer_rates));
    println!("auth bench: {requests} requests x {rounds} rounds, {CONCURRENCY} concurrent clients, x:Domain/get");
    println!("  unauthenticated baseline  median {n:>9.0} req/s");
    println!("  Basic (cached password)   median {b:>9.0} req/s  ({:.2}x baseline)", b / n);
    println!("  Bearer (API key)          median {k:>9.0} req/s  ({:.2}x baseline)", k / n);
    println!("  Basic / Bearer            {:.2} (must be >= 0.50)", b / k);
    authority(&app, rounds).await;
    ledger.shutdown();
    if b / k < 0.5 {
        eprintln!("cached Basic is more than 2x slower than Bearer");
        std::process::exit(1);
    }
}

/// Milliseconds per `/set` of `target`'s permissions by `writer`, `calls` in a row.
async fn set_rate(app: &AppState, writer: &Arc<Principal>, target: &str, calls: usize) -> f64 {
    let started = Instant::now();
    for i in 0..calls {
        let mode = json!({"@type": "Merge", "disabledPermissions": [format!("sysBench{}", i % 2)]});
        let body = json!({"using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"],
            "methodCalls": [["x:Account/set", {"update": {target: {"permissions": mode}}}, "c"]]});
        let answer =
            ledger::jmap::api(&app.services, Arc::clone(writer), None, body.to_string().as_bytes()).await.unwrap();
        assert!(answer["methodResponses"][0][1]["updated"].get(target).is_some(), "{answer}");
    }
    started.elapsed().as_secs_f64() * 1000.0 / calls as f64
}

async fn authority(app: &AppState, rounds: usize) {
    let admin = Arc::new(Principal::fallback("admin"));
    let call = |method: &str, args: serde_json::Value| {
        let body =
            json!({"using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"], "methodCalls": [[method, args, "c"]]});
        let (services, admin) = (app.services.clone(), Arc::clone(&admin));
        async move { ledger::jmap::api(&services, admin, None, body.to_string().as_bytes()).await.unwrap() }
    };
    let r = call("x:Domain/set", json!({"create": {"d": {"name": "authority.example"}}})).await;
    let d = r["methodResponses"][0][1]["created"]["d"]["id"].as_str().unwrap().to_owned();
    let r = call(
        "x:Account/set",
        json!({"create": {
        "g": {"@type": "Group", "name": "big", "domainId": d},
        "w": {"@type": "User", "name": "writer", "domainId": d, "roles": {"@type": "Admin"},
              "credentials": [{"@type": "ApiKey", "description": "narrowed",
                               "permissions": {"@type": "Disable", "permissions": ["sysDatabaseErase"]}}]},
        "x": {"@type": "User", "name": "target", "domainId": d}}}),
    )
    .await;
    let created = &r["methodResponses"][0][1]["created"];
    let (group, user) =
        (created["g"]["id"].as_str().unwrap().to_owned(), created["x"]["id"].as_str().unwrap().to_owned());
    let key = created["w"]["credentials"][0]["secret"].as_str().unwrap().to_owned();
    for batch in 0..10 {
        let members: serde_json::Map<String, serde_json::Value> = (0..100)
            .map(|i| (format!("m{i}"), json!({"@type": "User", "name": format!("member{batch}x{i}"), "domainId": d, "memberGroupIds": [group]})))
            .collect();
        call("x:Account/set", json!({"create": members})).await;
    }
    let header = format!("Bearer {key}");
    let now = ledger_events::values::UtcDateTime::from_millis(jiff::Timestamp::now().as_millisecond());
    let narrowed =
        Arc::new(app.auth.authenticate(&app.ledger, Some(&header), "127.0.0.1".parse().unwrap(), now).unwrap());
    let (mut base_user, mut checked_user, mut base_group, mut checked_group) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        base_user.push(set_rate(app, &admin, &user, 200).await);
        checked_user.push(set_rate(app, &narrowed, &user, 200).await);
        base_group.push(set_rate(app, &admin, &group, 20).await);
        checked_group.push(set_rate(app, &narrowed, &group, 20).await);
    }
    let (bu, cu, bg, cg) = (median(base_user), median(checked_user), median(base_group), median(checked_group));
    println!("authority check on writes, in-process x:Account/set of permissions, medians of {rounds} rounds:");
    println!("  a user, unchecked (fallback admin)     {bu:>8.3} ms/call");
    println!("  a user, checked (narrowed key)         {cu:>8.3} ms/call  ({:.2}x)", cu / bu);
    println!("  1,000-member group, unchecked          {bg:>8.3} ms/call");
    println!("  1,000-member group, checked            {cg:>8.3} ms/call  ({:.2}x)", cg / bg);
}
