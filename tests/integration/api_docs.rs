//! Every curl example in docs/api.md runs, in order, against a fresh server and
//! answers without a method error.

use serde_json::Value;

use super::support::TestServer;

/// The JSON bodies of `-d '…'` in the page, in order.
fn examples(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find("-d '") {
        let after = &rest[start + 4..];
        let end = after.find("'\n").expect("an example body ends with a quote at the end of a line");
        out.push(after[..end].to_owned());
        rest = &after[end..];
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_api_doc_example_runs() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).unwrap();
    let bodies = examples(&page);
    assert!(bodies.len() >= 9, "found {} examples", bodies.len());
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let session = server.get("/.well-known/jmap").await;
    assert_eq!(session.status(), 200);
    let mut methods = std::collections::BTreeSet::new();
    for body in bodies {
        let (status, response) = server.post_raw(body.clone()).await;
        assert_eq!(status, 200, "{body}\n→ {response}");
        for r in response["methodResponses"].as_array().unwrap() {
            assert_ne!(r[0], "error", "{body}\n→ {r}");
            for key in ["notCreated", "notUpdated", "notDestroyed"] {
                assert!(r[1].get(key).is_none_or(Value::is_null), "{body}\n→ {r}");
            }
            methods.insert(r[0].as_str().unwrap().to_owned());
        }
    }
    for object in ["x:Account", "x:Domain"] {
        for method in ["get", "set", "query", "changes", "queryChanges"] {
            assert!(methods.contains(&format!("{object}/{method}")), "no example of {object}/{method}");
        }
    }
    server.stop().await;
}
