//! Long-lived streams (the change feed, JMAP push) recheck their login before
//! every delivery and end when it no longer holds: the key removed, expired,
//! its account destroyed. Push needs a read permission of each type.

use std::time::Duration;

use serde_json::{Value, json};

use super::support::{TestServer, basic};

/// Creates an Admin user with one API key (`key` adds fields to it); returns
/// (account id, `Bearer` header).
async fn keyed_admin(server: &TestServer, name: &str, domain: &str, key: Value) -> (String, String) {
    let mut credential = json!({"@type": "ApiKey", "description": "stream", "permissions": {"@type": "Inherit"}});
    for (k, v) in key.as_object().unwrap() {
        credential[k] = v.clone();
    }
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"a": {"@type": "User", "name": name, "domainId": domain, "roles": {"@type": "Admin"},
                "credentials": [credential]}}}),
        )
        .await;
    let a = &r["created"]["a"];
    let secret = a["credentials"]["0"]["secret"].as_str().unwrap_or_else(|| panic!("{r}"));
    (a["id"].as_str().unwrap().to_owned(), format!("Bearer {secret}"))
}

async fn open(server: &TestServer, path: &str, authorization: &str) -> reqwest::Response {
    server
        .client()
        .get(format!("{}{path}", server.url))
        .header("authorization", authorization)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap()
}

/// Reads NDJSON lines until the stream has delivered `position` or ended.
async fn read_through(response: &mut reqwest::Response, position: u64) -> Vec<u64> {
    let (mut seen, mut pending) = (Vec::new(), Vec::new());
    while seen.last().is_none_or(|&last| last < position) {
        let Some(chunk) = response.chunk().await.unwrap() else { break };
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line: Value = serde_json::from_slice(&line).unwrap();
            seen.push(line["seq"].as_u64().unwrap());
        }
    }
    seen
}

/// Everything the stream still sends before it ends; panics if it does not
/// end within a bound (a stream that never ends is the fault under test).
async fn rest_until_end(response: &mut reqwest::Response) -> Vec<u8> {
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = response.chunk().await.unwrap_or(None) {
            rest.extend_from_slice(&chunk);
        }
    })
    .await;
    assert!(end.is_ok(), "the stream did not end; it sent {}", String::from_utf8_lossy(&rest));
    rest
}

#[tokio::test(flavor = "multi_thread")]
async fn the_feed_ends_when_its_key_is_removed_or_its_account_destroyed() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    for destroy in [false, true] {
        let name = if destroy { "gone" } else { "keyless" };
        let (id, key) = keyed_admin(&server, name, &d, json!({})).await;
        let mut feed = open(&server, "/api/feed?after=0", &key).await;
        assert_eq!(feed.status(), 200);
        let caught_up = server.ledger.read().last_seq;
        read_through(&mut feed, caught_up).await;
        let (_, r) = if destroy {
            server.call("x:Account/set", json!({"destroy": [id]})).await
        } else {
            server.call("x:Account/set", json!({"update": {&id: {"credentials": []}}})).await
        };
        assert!(r["notUpdated"].is_null() && r["notDestroyed"].is_null(), "{r}");
        server.account(json!({"@type": "User", "name": format!("after-{name}"), "domainId": d})).await;
        let rest = rest_until_end(&mut feed).await;
        assert!(rest.is_empty(), "nothing after the revocation: {}", String::from_utf8_lossy(&rest));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_feed_ends_when_its_key_expires() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let expires = ledger_events::values::UtcDateTime::from_millis(now + 1500).to_string();
    let (_, key) = keyed_admin(&server, "brief", &d, json!({"expiresAt": expires})).await;
    let mut feed = open(&server, "/api/feed?after=0", &key).await;
    assert_eq!(feed.status(), 200);
    read_through(&mut feed, server.ledger.read().last_seq).await;
    // Nothing is written: the stream ends at the expiry all the same.
    rest_until_end(&mut feed).await;
    assert_eq!(open(&server, "/api/feed?after=0", &key).await.status(), 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn push_needs_a_read_permission_and_ends_when_its_key_goes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let t1 = server.tenant("t1").await;
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"u": {"@type": "User", "name": "plain", "domainId": d, "memberTenantId": t1,
                "credentials": [{"@type": "AppPassword", "description": "p", "permissions": {"@type": "Inherit"}}]}}}),
        )
        .await;
    let plain = basic("plain@example.org", r["created"]["u"]["credentials"]["0"]["secret"].as_str().unwrap());
    for query in ["?types=x:Domain,x:Role", "?types=x:Domain", ""] {
        let response = open(&server, &format!("/eventsource/{query}"), &plain).await;
        assert_eq!(response.status(), 403, "a plain user may read no type: {query}");
    }
    let (id, key) = keyed_admin(&server, "watcher", &d, json!({})).await;
    let mut push = open(&server, "/eventsource/?types=x:Domain", &key).await;
    assert_eq!(push.status(), 200);
    let (_, r) = server.call("x:Account/set", json!({"update": {&id: {"credentials": []}}})).await;
    assert!(r["updated"].get(&id).is_some(), "{r}");
    server.domain("after.example").await;
    let rest = rest_until_end(&mut push).await;
    assert!(!String::from_utf8_lossy(&rest).contains("StateChange"), "no change after the key went");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expiry_set_after_the_stream_opened_ends_it_too() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let (id, key) = keyed_admin(&server, "later", &d, json!({})).await;
    let mut feed = open(&server, "/api/feed?after=0", &key).await;
    let mut push = open(&server, "/eventsource/?types=x:Domain", &key).await;
    assert_eq!((feed.status().as_u16(), push.status().as_u16()), (200, 200));
    read_through(&mut feed, server.ledger.read().last_seq).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let soon = ledger_events::values::UtcDateTime::from_millis(now + 1500).to_string();
    let (_, r) = server.call("x:Account/set", json!({"update": {&id: {"credentials/0/expiresAt": soon}}})).await;
    assert!(r["updated"].get(&id).is_some(), "{r}");
    // Nothing else is written: both end at the new expiry.
    rest_until_end(&mut feed).await;
    rest_until_end(&mut push).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_feed_carries_no_password_hash_and_ignores_an_impossible_position() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    server
        .account(json!({"@type": "User", "name": "pw", "domainId": d,
            "credentials": [{"@type": "Password", "secret": "a password of some length"}]}))
        .await;
    let (_, key) = keyed_admin(&server, "svc", &d, json!({})).await;
    let mut feed = open(&server, "/api/feed?after=0&follow=false&types=CredentialAdded", &key).await;
    let text = String::from_utf8(rest_until_end(&mut feed).await).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    for line in &lines {
        // Record format 2 keeps the secret beside the payload: the line shows
        // a salted commitment to it, and its payload still verifies.
        assert!(line["payload"].get("secretHash").is_none(), "{line}");
        assert_eq!(line["payload"]["secretCommitment"].as_str().map(str::len), Some(64), "{line}");
        assert!(line.get("redacted").is_none(), "{line}");
    }
    assert!(!text.contains("argon2") && !text.contains("blake3:"), "{text}");
    let mut feed = open(&server, &format!("/api/feed?after={}&follow=false", u64::MAX), &key).await;
    assert!(rest_until_end(&mut feed).await.is_empty(), "nothing after the last possible position");
    server.stop().await;
}
