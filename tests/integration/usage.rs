//! `x:Account/reportUsage`: concurrent reports sum exactly and are coalesced,
//! over-quota usage is refused when enforced and flagged when reported after the
//! fact, and bad reports are refused one by one.

use serde_json::{Value, json};

use super::support::{TestServer, basic, redact, snapshot_settings};

const STORE_PASSWORD: &str = "mail-store-password";

/// A domain, a role allowed to report usage, and a service account holding it.
async fn setup(server: &TestServer) -> (String, String, String) {
    let d = server.domain("example.org").await;
    let (_, r) = server
        .call(
            "x:Role/set",
            json!({"create": {"r": {"description": "mailstore", "enabledPermissions": ["sysAccountReportUsage"]}}}),
        )
        .await;
    let role = r["created"]["r"]["id"].as_str().unwrap().to_owned();
    let store = server
        .account(json!({"@type": "User", "name": "store", "domainId": d,
            "credentials": [{"@type": "Password", "secret": STORE_PASSWORD}],
            "roles": {"@type": "Custom", "roleIds": [role]}}))
        .await;
    (d, store, basic("store@example.org", STORE_PASSWORD))
}

async fn report(server: &TestServer, auth: &str, reports: Value) -> Value {
    let (status, name, args) = server.call_as(auth, "x:Account/reportUsage", json!({"reports": reports})).await;
    assert_eq!((status, name.as_str()), (200, "x:Account/reportUsage"), "{args}");
    args
}

async fn feed_types(server: &TestServer, types: &str) -> Vec<Value> {
    let text = server
        .client()
        .get(format!("{}/api/feed?follow=false&types={types}", server.url))
        .header("authorization", super::support::admin_auth())
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_usage_reports_sum_exactly_and_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (d, _, store) = setup(&server).await;
    let a = server.account(json!({"@type": "User", "name": "ann", "domainId": d})).await;
    let b = server.account(json!({"@type": "User", "name": "bob", "domainId": d})).await;
    const TASKS: u64 = 8;
    const REQUESTS: u64 = 20;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (url, store, a, b) = (server.url.clone(), store.clone(), a.clone(), b.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut grew = 0u64;
            for r in 0..REQUESTS {
                let up = 1000 + t * 37 + r * 11;
                let down = 100 + r;
                let body = json!({"using": super::support::USING, "methodCalls": [["x:Account/reportUsage", {"reports": [
                    {"id": a, "quota": "maxDiskQuota", "delta": up},
                    {"id": b, "quota": "maxEmails", "delta": 1},
                    {"id": a, "quota": "maxDiskQuota", "delta": -(down as i64)},
                ]}, "c"]]});
                let response: Value = client
                    .post(format!("{url}/api"))
                    .header("authorization", &store)
                    .header("content-type", "application/json").body(body.to_string())
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let args = &response["methodResponses"][0][1];
                assert!(args["notAccepted"].is_null(), "{args}");
                grew += up - down;
            }
            grew
        }));
    }
    let mut expected_disk = 0;
    for task in tasks {
        expected_disk += task.await.unwrap();
    }
    let (_, got) = server.call("x:Account/get", json!({"ids": [a, b], "properties": ["usedDiskQuota"]})).await;
    assert_eq!(got["list"][0]["usedDiskQuota"], json!(expected_disk));

    let changes = feed_types(&server, "QuotaUsageChanged").await;
    let emails: u64 = changes
        .iter()
        .filter(|c| c["payload"]["quota"] == "maxEmails")
        .map(|c| c["payload"]["new"].as_u64().unwrap() - c["payload"]["old"].as_u64().unwrap())
        .sum();
    assert_eq!(emails, TASKS * REQUESTS, "the log's deltas add up to every report");
    // One event per account and kind per commit: uncoalesced, every request would
    // record two. Concurrent requests within one window share a commit.
    let requests = (TASKS * REQUESTS) as usize;
    assert!(changes.len() < 2 * requests, "{} events for {requests} requests", changes.len());
    server.ledger.verify().unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn over_quota_is_refused_when_enforced_and_flagged_after_the_fact() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (d, store_id, store) = setup(&server).await;
    let c = server
        .account(
            json!({"@type": "User", "name": "cat", "domainId": d, "quotas": {"maxDiskQuota": 1000, "maxEmails": 2}}),
        )
        .await;
    let first = report(
        &server,
        &store,
        json!([
            {"id": c, "quota": "maxDiskQuota", "used": 900},
            {"id": c, "quota": "maxDiskQuota", "delta": 200, "enforce": true},
            {"id": c, "quota": "maxEmails", "delta": 3},
            {"id": c, "quota": "maxDiskQuota", "delta": 50, "enforce": true},
            {"id": c, "quota": "maxBananas", "delta": 1},
            {"id": c, "quota": "maxEmails", "delta": 1, "used": 4},
            {"id": "zzzz", "quota": "maxEmails", "delta": 1},
            {"id": c, "quota": "maxEmails", "delta": "one"},
            {"id": c, "quota": "maxEmails", "delta": 1, "colour": "red"},
            "not an object",
        ]),
    )
    .await;
    assert_eq!(first["accepted"]["1"], Value::Null);
    assert_eq!(first["notAccepted"]["1"]["type"], "overQuota");
    assert_eq!(first["accepted"]["2"], json!({"used": 3, "limit": 2, "exceeded": true}));
    assert_eq!(first["accepted"]["3"], json!({"used": 950, "limit": 1000, "exceeded": false}));
    let mut shown = first.clone();
    redact(&mut shown);
    snapshot_settings().bind(|| insta::assert_json_snapshot!("usage_report_response", shown));

    let (_, got) = server.call("x:Account/get", json!({"ids": [c], "properties": ["usedDiskQuota"]})).await;
    assert_eq!(got["list"][0]["usedDiskQuota"], 950);
    let exceeded = feed_types(&server, "QuotaExceeded").await;
    assert_eq!(exceeded.len(), 1, "{exceeded:?}");
    assert_eq!(exceeded[0]["payload"], json!({"accountId": c, "quota": "maxEmails", "used": 3, "limit": 2}));
    assert_eq!(exceeded[0]["actor"]["id"], json!(store_id), "the record names who reported: {}", exceeded[0]);

    // Still over: usage is recorded, no second QuotaExceeded.
    let again = report(&server, &store, json!([{"id": c, "quota": "maxEmails", "delta": 1}])).await;
    assert_eq!(again["accepted"]["0"]["used"], 4);
    assert_eq!(feed_types(&server, "QuotaExceeded").await.len(), 1);

    // Reporting usage needs its own permission.
    let (_, name, denied) =
        server.call_as(&basic("nobody@example.org", "x"), "x:Account/reportUsage", json!({"reports": []})).await;
    assert_ne!(name, "x:Account/reportUsage", "{denied}");
    server
        .account(json!({"@type": "User", "name": "user", "domainId": d,
            "credentials": [{"@type": "Password", "secret": "user-password"}]}))
        .await;
    let (_, name, denied) = server
        .call_as(&basic("user@example.org", "user-password"), "x:Account/reportUsage", json!({"reports": []}))
        .await;
    assert_eq!((name.as_str(), &denied["type"]), ("error", &json!("forbidden")), "{denied}");
    server.stop().await;
}
