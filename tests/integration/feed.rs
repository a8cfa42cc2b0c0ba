//! The durable event feed: resume after a disconnect without losing a record,
//! subscribers at different speeds, SSE ids, filters, the CLI with a cursor.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::{Value, json};

use super::support::{ADMIN_PASSWORD, TestServer, admin_auth, basic};

async fn open(server: &TestServer, query: &str, accept: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = server
        .client()
        .get(format!("{}/api/feed{query}", server.url))
        .header("authorization", admin_auth())
        .header("accept", accept);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// Reads NDJSON lines until `count` lines or the end of the stream.
async fn read_lines(response: &mut reqwest::Response, count: usize) -> Vec<Value> {
    let (mut out, mut pending) = (Vec::new(), Vec::new());
    while out.len() < count {
        let Some(chunk) = response.chunk().await.unwrap() else { break };
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            out.push(serde_json::from_slice(&line).unwrap());
        }
    }
    out
}

async fn write_accounts(server: &TestServer, domain: &str, names: &[&str]) {
    for name in names {
        server.account(json!({"@type": "User", "name": name, "domainId": domain})).await;
    }
}

fn seqs(lines: &[Value]) -> Vec<u64> {
    lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscriber_resumes_after_a_disconnect_and_misses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    write_accounts(&server, &d, &["a1", "a2", "a3"]).await;
    let mut live = open(&server, "?after=0", "application/x-ndjson", None).await;
    let first = read_lines(&mut live, 2).await;
    drop(live); // disconnected mid-stream
    write_accounts(&server, &d, &["b1", "b2"]).await;
    let last_seen = *seqs(&first).last().unwrap();
    let mut resumed = open(&server, &format!("?after={last_seen}&follow=false"), "application/x-ndjson", None).await;
    let rest = read_lines(&mut resumed, usize::MAX).await;
    let all: Vec<u64> = seqs(&first).into_iter().chain(seqs(&rest)).collect();
    let unique: BTreeSet<u64> = all.iter().copied().collect();
    let last = server.ledger.read().last_seq;
    assert_eq!(unique, (1..=last).collect::<BTreeSet<_>>(), "every record, once after de-duplication");
    assert_eq!(all.len(), unique.len());
    // Each line is an audit-export line: it carries its hashes.
    assert!(rest.iter().all(|l| l["hash"].is_string() && l["header"].is_string()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fast_and_slow_subscribers_both_get_everything() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let mut fast = open(&server, "?after=0", "application/x-ndjson", None).await;
    let writer = {
        let (url, d) = (server.url.clone(), d.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..20 {
                let body = json!({"using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"],
                    "methodCalls": [["x:Account/set", {"create": {"a": {"@type": "User", "name": format!("u{i}"), "domainId": d}}}, "c"]]});
                client
                    .post(format!("{url}/api"))
                    .header("authorization", admin_auth())
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
            }
        })
    };
    // The fast one reads while the writes happen: 1 domain + 20 accounts.
    let got_fast = read_lines(&mut fast, 21).await;
    writer.await.unwrap();
    // The slow one starts only now, from the beginning.
    let mut slow = open(&server, "?after=0&follow=false", "application/x-ndjson", None).await;
    let got_slow = read_lines(&mut slow, usize::MAX).await;
    assert_eq!(seqs(&got_fast), (1..=21).collect::<Vec<_>>());
    assert_eq!(seqs(&got_slow), (1..=21).collect::<Vec<_>>());
    // Stopping the server ends a following stream, so shutdown completes.
    server.stop().await;
    assert!(fast.chunk().await.map_or(true, |c| c.is_none()), "the stream ended at shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_ids_resume_with_last_event_id_and_filters_apply() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let a = server.account(json!({"@type": "User", "name": "a", "domainId": d})).await;
    server.account(json!({"@type": "User", "name": "b", "domainId": d})).await;
    server.call("x:Account/set", json!({"update": {(a.clone()): {"description": "x"}}})).await;
    let response = open(&server, "?follow=false", "text/event-stream", Some("2")).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    let ids: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("id: ")).collect();
    assert_eq!(ids, ["3", "4"], "resumes after Last-Event-ID 2: {text}");
    assert!(text.contains("event: record\ndata: {"));
    let mut typed = open(&server, "?follow=false&types=AccountUpdated", "application/x-ndjson", None).await;
    let lines = read_lines(&mut typed, usize::MAX).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["type"], "AccountUpdated");
    let mut mine = open(&server, &format!("?follow=false&account={a}"), "application/x-ndjson", None).await;
    assert_eq!(seqs(&read_lines(&mut mine, usize::MAX).await), [2, 4]);
    let bad = server
        .client()
        .get(format!("{}/api/feed?types=Nope", server.url))
        .header("authorization", admin_auth())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    server
        .account(json!({"@type": "User", "name": "u", "domainId": d, "credentials": [{"@type": "Password", "secret": "user-pw"}]}))
        .await;
    let denied = server
        .client()
        .get(format!("{}/api/feed", server.url))
        .header("authorization", basic("u@example.org", "user-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403, "the feed needs sysFeedRead");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_feed_resumes_from_its_cursor_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    write_accounts(&server, &d, &["a", "b"]).await;
    let cursor = dir.path().join("feed.cursor");
    let feed = || {
        let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
            .args(["-u", &server.url, "-c", &format!("admin:{ADMIN_PASSWORD}"), "feed", "--cursor"])
            .arg(&cursor)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(feed(), [1, 2, 3]);
    assert_eq!(std::fs::read_to_string(&cursor).unwrap().trim(), "3");
    assert_eq!(feed(), Vec::<u64>::new(), "nothing new");
    write_accounts(&server, &d, &["c"]).await;
    assert_eq!(feed(), [4], "only what came after the cursor");
    server.stop().await;
}

/// A stored value with CR, LF, ESC and SSE field syntax cannot forge an
/// event: every line of the SSE feed is one of the frames the server wrote
/// (`id:`, `event:`, `data:` with one JSON record), and the value reads back
/// intact from the record.
#[tokio::test(flavor = "multi_thread")]
async fn stored_line_breaks_cannot_forge_sse_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let forged = "x\r\n\r\nevent: forged\ndata: {\"seq\":1}\r\rid: 999\n\u{1b}[2J\u{2028}\u{85}";
    server.account(json!({"@type": "User", "name": "mallory", "domainId": d, "description": forged})).await;
    let body = open(&server, "?follow=false", "text/event-stream", None).await.text().await.unwrap();
    let (mut records, mut intact) = (0, false);
    for line in body.split(['\n', '\r']).filter(|l| !l.is_empty()) {
        match line.split_once(':') {
            Some(("id", seq)) => assert!(seq.trim().parse::<u64>().is_ok(), "{line:?}"),
            Some(("event", kind)) => assert_eq!(kind.trim(), "record", "{line:?}"),
            Some(("data", data)) => {
                let record: Value = serde_json::from_str(data.trim()).unwrap_or_else(|e| panic!("{e}: {line:?}"));
                records += 1;
                intact |= record.to_string().contains(&serde_json::to_string(forged).unwrap());
            }
            _ => panic!("a line the server did not frame: {line:?}"),
        }
    }
    assert_eq!(records, 2, "the domain and the account: {body}");
    assert!(intact, "the value reads back intact from its record: {body}");
    server.stop().await;
}
