//! JMAP push over EventSource: state events with ids, closeafter, pings, and
//! Last-Event-ID catch-up.

use serde_json::{Value, json};

use super::support::{TestServer, admin_auth};

async fn connect(server: &TestServer, query: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request =
        server.client().get(format!("{}/eventsource/{query}", server.url)).header("authorization", admin_auth());
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    response
}

/// Reads the next complete event (up to a blank line).
async fn next_event(response: &mut reqwest::Response, buffer: &mut String) -> Option<String> {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let event = buffer[..end].to_owned();
            buffer.drain(..end + 2);
            return Some(event);
        }
        let chunk = response.chunk().await.unwrap()?;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

fn data(event: &str) -> Value {
    serde_json::from_str(event.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn state_changes_are_pushed_and_closeafter_ends_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let mut stream = connect(&server, "?types=x:Account&closeafter=state&ping=0", None).await;
    let id = server.account(json!({"@type": "User", "name": "a", "domainId": d})).await;
    let mut buffer = String::new();
    let event = next_event(&mut stream, &mut buffer).await.expect("a state event");
    assert!(event.contains("event: state"), "{event}");
    let (_, got) = server.call("x:Account/get", json!({"ids": [id], "properties": ["name"]})).await;
    let change = data(&event);
    assert_eq!(change["@type"], "StateChange");
    assert_eq!(change["changed"]["ledger"]["x:Account"], got["state"]);
    assert!(change["changed"]["ledger"].get("x:Domain").is_none(), "only the types asked for");
    let position = event.lines().find_map(|l| l.strip_prefix("id: ")).unwrap().to_owned();
    assert_eq!(position, server.ledger.read().last_seq.to_string());
    assert!(next_event(&mut stream, &mut buffer).await.is_none(), "closeafter=state ends the response");

    // Reconnecting with an older Last-Event-ID reports the missed change at once.
    let mut again = connect(&server, "?types=*&closeafter=state&ping=0", Some("1")).await;
    let mut buffer = String::new();
    let caught_up = data(&next_event(&mut again, &mut buffer).await.unwrap());
    assert_eq!(caught_up["changed"]["ledger"]["x:Account"], got["state"]);
    assert!(caught_up["changed"]["ledger"].get("x:Domain").is_some());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pings_carry_their_interval_and_bad_arguments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut stream = connect(&server, "?types=*&closeafter=no&ping=1", None).await;
    let mut buffer = String::new();
    let ping = next_event(&mut stream, &mut buffer).await.unwrap();
    assert!(ping.starts_with("event: ping"), "{ping}");
    assert_eq!(data(&ping), json!({"interval": 1}));
    drop(stream);
    for query in ["?types=x:Nope", "?closeafter=sometimes"] {
        let r = server
            .client()
            .get(format!("{}/eventsource/{query}", server.url))
            .header("authorization", admin_auth())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{query}");
    }
    server.stop().await;
}
