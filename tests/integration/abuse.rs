//! Abuse resistance (issue 15): each input an attacker would send gets a
//! bounded, correct answer, and other clients are served while it runs. The
//! login limiter's inputs are in `auth.rs`, the response bound in
//! `jmap_core.rs`, terminal escaping in `cli.rs`.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::support::{TestServer, USING, admin_auth, basic};

/// A plain user (no role) with a password; returns (id, its Basic header).
async fn plain_user(server: &TestServer) -> (String, String) {
    let d = server.domain("example.org").await;
    let id = server
        .account(json!({"@type": "User", "name": "pat", "domainId": d,
            "credentials": [{"@type": "Password", "secret": "pat-password"}]}))
        .await;
    (id, basic("pat@example.org", "pat-password"))
}

/// Sends `calls` as `authorization`; returns the method responses.
async fn send(server: &TestServer, authorization: &str, calls: Value) -> Vec<Value> {
    let body = json!({"using": USING, "methodCalls": calls}).to_string();
    let (status, body) = server.post_as(Some(authorization), None, body).await;
    assert_eq!(status, 200, "{body}");
    body["methodResponses"].as_array().unwrap().clone()
}

/// Input 3: 60,000 patch paths on one's own account are refused at once
/// (`requestTooLarge`, over the 4096 a patch may set) and 4096 disjoint ones
/// are checked linearly (`invalidPatch`), while another client's write goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_patch_with_too_many_paths_is_refused_and_others_write_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (id, pat) = plain_user(&server).await;
    let patch = |n: usize| -> Value {
        let map: serde_json::Map<String, Value> =
            (0..n).map(|i| (format!("credentials/x{i}/description"), json!(null))).collect();
        json!([["x:Account/set", {"update": {(id.clone()): map}}, "c"]])
    };
    let (huge, other) = tokio::join!(
        send(&server, &pat, patch(60_000)),
        server.call(
            "x:Domain/set",
            json!({
        "create": {"d": {"name": "meanwhile.example"}}})
        )
    );
    assert_eq!(huge[0][0], "error", "{}", huge[0]);
    assert_eq!(huge[0][1]["type"], "requestTooLarge", "{}", huge[0]);
    assert!(other.1["created"]["d"]["id"].is_string(), "{}", other.1);
    let most = send(&server, &pat, patch(4096)).await;
    assert_eq!(most[0][1]["notUpdated"][&id]["type"], "invalidPatch", "{}", most[0]);
    // Overlap found whatever the order of the paths.
    let overlapping = json!([["x:Account/set", {"update": {(id.clone()): {
        "description": "x", "aliases": [], "aliases!": 1, "aliases/0": {}}}}, "c"]]);
    let r = send(&server, &pat, overlapping).await;
    assert_eq!(r[0][1]["notUpdated"][&id]["type"], "invalidPatch", "{}", r[0]);
    server.stop().await;
}

/// Input 4: a refused create costs no argon2 work, however many passwords it
/// carries; a request hashes at most 64 passwords over all its calls.
#[tokio::test(flavor = "multi_thread")]
async fn refused_or_oversized_password_writes_hash_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (_, pat) = plain_user(&server).await;
    let d = server.domain("many.example").await;
    let hashed = || server.app.services.passwords_hashed();
    let before = hashed();
    let passwords: Vec<Value> =
        (0..80).map(|i| json!({"@type": "Password", "secret": format!("guessable-{i}")})).collect();
    let one = json!({"@type": "User", "name": "victim", "domainId": d, "credentials": passwords});
    let r = send(&server, &pat, json!([["x:Account/set", {"create": {"a": one.clone()}}, "c"]])).await;
    assert_eq!(r[0][1]["type"], "forbidden", "{}", r[0]);
    assert_eq!(hashed(), before, "a refused create hashes nothing");
    let r = send(&server, &admin_auth(), json!([["x:Account/set", {"create": {"a": one}}, "c"]])).await;
    assert_eq!(r[0][1]["type"], "invalidArguments", "80 Passwords on one account: {}", r[0]);
    assert_eq!(hashed(), before);
    let accounts = |from: usize, n: usize| -> Value {
        let map: serde_json::Map<String, Value> = (from..from + n)
            .map(|i| {
                (
                    format!("a{i}"),
                    json!({"@type": "User", "name": format!("u{i}"), "domainId": d,
                    "credentials": [{"@type": "Password", "secret": format!("secret-{i}")}]}),
                )
            })
            .collect();
        json!({"create": map})
    };
    let r = send(&server, &admin_auth(), json!([["x:Account/set", accounts(0, 65), "c"]])).await;
    assert_eq!(r[0][1]["type"], "requestTooLarge", "65 passwords in one call: {}", r[0]);
    assert_eq!(hashed(), before);
    let r = send(
        &server,
        &admin_auth(),
        json!([["x:Account/set", accounts(100, 40), "c1"], ["x:Account/set", accounts(200, 40), "c2"]]),
    )
    .await;
    assert_eq!(r[0][1]["created"].as_object().map(|m| m.len()), Some(40), "{}", r[0]);
    assert_eq!(r[1][1]["type"], "requestTooLarge", "the request's 64 are spent: {}", r[1]);
    assert_eq!(hashed(), before + 40);
    server.stop().await;
}

/// Items per account are bounded: `tooLarge` names the property.
#[tokio::test(flavor = "multi_thread")]
async fn an_account_lists_a_bounded_number_of_aliases_and_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let aliases: Vec<Value> = (0..501).map(|i| json!({"name": format!("a{i}"), "domainId": d})).collect();
    let keys: Vec<Value> = (0..101).map(|_| json!({"@type": "ApiKey", "permissions": {"@type": "Inherit"}})).collect();
    for (property, value) in [("aliases", json!(aliases)), ("credentials", json!(keys))] {
        let mut object = json!({"@type": "User", "name": "big", "domainId": d});
        object[property] = value;
        let (_, r) = server.call("x:Account/set", json!({"create": {"a": object}})).await;
        assert_eq!(r["notCreated"]["a"]["type"], "tooLarge", "{r}");
        assert_eq!(r["notCreated"]["a"]["properties"], json!([property]), "{r}");
    }
    server.stop().await;
}

/// Bounds for the connection tests: short timeouts, small caps.
fn tight() -> ledger::http::ConnectionLimits {
    ledger::http::ConnectionLimits {
        max_connections: 48,
        max_connections_per_ip: 16,
        header_read_timeout: Duration::from_secs(1),
        send_timeout: Duration::from_secs(1),
        max_streams_per_principal: 2,
    }
}

/// A connection from `local` (any 127.0.0.0/8 address) that sends half a
/// request header and stops.
async fn half_header(server: &TestServer, local: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let addr = server.url.strip_prefix("http://").unwrap().parse().unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    // The server may already have closed it (over the per-address cap).
    let _ = stream.write_all(b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Ty").await;
    stream
}

/// Waits (at most `bound`) until the server closes `stream`.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Input 5: 300 sockets that each send half a header from one address: at
/// most 16 are kept (the rest closed at once), those are closed when the
/// header timeout passes, and other clients are served all along.
#[tokio::test(flavor = "multi_thread")]
async fn half_sent_headers_hold_no_connection_for_long_nor_keep_others_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_limited(dir.path(), tight()).await;
    let mut held = Vec::new();
    for _ in 0..300 {
        held.push(half_header(&server, "127.0.0.2").await);
    }
    let (_, r) = server.call("Core/echo", json!({"served": true})).await;
    assert_eq!(r["served"], true, "another client is served while they hang");
    // The header timeout is 1 s; 15 s in all bounds a loaded machine.
    let all = async {
        for stream in &mut held {
            assert!(closed_within(stream, Duration::from_secs(15)).await);
        }
    };
    assert!(
        tokio::time::timeout(Duration::from_secs(15), all).await.is_ok(),
        "every slow connection is closed by the server"
    );
    server.stop().await;
}

/// At the connection cap the server stops accepting instead of failing:
/// a client waits in the backlog until a slow connection times out.
#[tokio::test(flavor = "multi_thread")]
async fn at_the_connection_cap_new_clients_wait_and_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_limited(dir.path(), tight()).await;
    let mut held = Vec::new();
    for i in 0..48 {
        held.push(half_header(&server, &format!("127.0.1.{}", i % 8 + 1)).await);
    }
    let served = tokio::time::timeout(Duration::from_secs(20), server.call("Core/echo", json!({"late": 1}))).await;
    assert_eq!(served.expect("served once slow connections time out").1["late"], 1);
    server.stop().await;
}

/// Sends a request whose answer is about 18 MB (from 3 MB of request: more
/// than the socket buffers of both ends hold) on a raw connection, whose
/// receive buffer is `receive_buffer` bytes when given.
async fn ask_for_a_large_answer(server: &TestServer, receive_buffer: Option<u32>) -> TcpStream {
    let reference = |call: &str, path: &str| json!({"resultOf": call, "name": "Core/echo", "path": path});
    let calls = json!([
        ["Core/echo", {"x": "y".repeat(3_000_000)}, "c1"],
        ["Core/echo", {"#a": reference("c1", "/x"), "#b": reference("c1", "/x")}, "c2"],
        ["Core/echo", {"#a": reference("c2", "/a"), "#b": reference("c2", "/b"), "#c": reference("c1", "/x")}, "c3"],
    ]);
    let body = json!({"using": USING, "methodCalls": calls}).to_string();
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(size) = receive_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let mut stream = socket.connect(server.url.strip_prefix("http://").unwrap().parse().unwrap()).await.unwrap();
    let head = format!(
        "POST /api HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        admin_auth(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    stream
}

/// Whether `received` is an HTTP 200 answer cut short of its Content-Length.
fn cut_short(received: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(&received[..received.len().min(4096)]).to_lowercase();
    let (head, _) = text.split_once("\r\n\r\n").ok_or("the answer did not begin")?;
    if !head.starts_with("http/1.1 200") {
        return Err(head.to_owned());
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("no content length")?;
    let body = received.len() - head.len() - 4;
    if body < length { Ok(()) } else { Err(format!("the whole answer arrived: {body} of {length} bytes")) }
}

/// A client that stops reading its answer loses its connection after the
/// send timeout instead of holding it (and the answer's memory) for ever.
/// (One that reads a trickle to look alive: `http::serve`'s unit test, where
/// the pipe between the two is exact.)
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_reads_no_answer_is_dropped_after_the_send_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_limited(dir.path(), tight()).await;
    let mut open = server.app.open_connections.subscribe();
    let idle = *open.borrow();
    let bound = Duration::from_secs(20);
    let mut stream = ask_for_a_large_answer(&server, None).await;
    // The client under test stalls: it reads nothing for three send timeouts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut received = Vec::new();
    let read = tokio::time::timeout(bound, stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the connection ends");
    cut_short(&received).unwrap();
    tokio::time::timeout(bound, open.wait_for(|n| *n <= idle)).await.unwrap().unwrap();

    let (_, r) = server.call("Core/echo", json!({"after": 1})).await;
    assert_eq!(r["after"], 1);
    server.stop().await;
}

/// Streams per principal are capped; closing one frees its place.
#[tokio::test(flavor = "multi_thread")]
async fn a_principal_holds_a_bounded_number_of_event_streams() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_limited(dir.path(), tight()).await;
    let open = || async { server.get("/api/feed?follow=true").await };
    let first = open().await;
    let second = open().await;
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let third = open().await;
    assert_eq!(third.status().as_u16(), 429, "{:?}", third.text().await);
    let push = server.get("/eventsource/?types=*&closeafter=no&ping=0").await;
    assert_eq!(push.status().as_u16(), 429, "push streams count too");
    drop(first);
    // The server notices the closed connection (at the latest when it next
    // writes to it) and frees the place: polled until then, within a bound.
    server.domain("wakes.example").await;
    let reopened = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let r = open().await;
            if r.status().as_u16() == 200 {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reopened.is_ok(), "a closed stream frees its place");
    server.stop().await;
}
