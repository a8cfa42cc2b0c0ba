//! Bad input, fuzz-style: random JSON, wrong types, random method calls, huge
//! arrays, deep nesting, invalid UTF-8 and oversized bodies get only well-formed
//! JMAP errors (RFC 8620 names), and the server keeps answering.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use super::support::{TestServer, USING};

/// Method-level error types of RFC 8620 §3.6.2 and the methods' own sections.
const METHOD_ERRORS: &[&str] = &[
    "serverUnavailable",
    "serverFail",
    "serverPartialFail",
    "unknownMethod",
    "invalidArguments",
    "invalidResultReference",
    "forbidden",
    "accountNotFound",
    "accountNotSupportedByMethod",
    "accountReadOnly",
    "requestTooLarge",
    "stateMismatch",
    "cannotCalculateChanges",
    "anchorNotFound",
    "unsupportedFilter",
    "unsupportedSort",
    "tooManyChanges",
];

/// Request-level problem types of RFC 8620 §3.6.1.
const REQUEST_ERRORS: &[&str] = &[
    "urn:ietf:params:jmap:error:unknownCapability",
    "urn:ietf:params:jmap:error:notJSON",
    "urn:ietf:params:jmap:error:notRequest",
    "urn:ietf:params:jmap:error:limit",
];

const METHODS: &[&str] = &[
    "x:Account/get",
    "x:Account/set",
    "x:Account/query",
    "x:Account/changes",
    "x:Account/queryChanges",
    "x:Account/reportUsage",
    "x:Domain/get",
    "x:Domain/set",
    "x:Role/set",
    "x:AccountHistory/get",
    "x:Database/purge",
    "Core/echo",
    "Nope/get",
];

const KEYS: &[&str] = &[
    "ids",
    "create",
    "update",
    "destroy",
    "filter",
    "sort",
    "accountId",
    "properties",
    "sinceState",
    "maxChanges",
    "limit",
    "position",
    "anchor",
    "name",
    "@type",
    "domainId",
    "aliases",
    "credentials",
    "quotas",
    "reports",
    "#ids",
    "resultOf",
    "path",
    "asOf",
    "ifInState",
    "text",
    "secret",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        "[a-z@#/0-9]{0,12}".prop_map(Value::String),
        prop::sample::select(KEYS).prop_map(|k| json!(k)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

/// Requests from plausible to absurd.
fn request_body() -> impl Strategy<Value = Vec<u8>> {
    let args = prop_oneof![
        3 => prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..5)
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        1 => json_value(),
    ];
    let call =
        (prop::sample::select(METHODS), args, "[a-z0-9]{1,3}").prop_map(|(method, args, id)| json!([method, args, id]));
    let envelope = prop::collection::vec(call, 0..4).prop_map(|calls| json!({"using": USING, "methodCalls": calls}));
    let wrong_shape =
        (json_value(), json_value()).prop_map(|(using, calls)| json!({"using": using, "methodCalls": calls}));
    prop_oneof![
        4 => envelope.prop_map(|v| v.to_string().into_bytes()),
        2 => wrong_shape.prop_map(|v| v.to_string().into_bytes()),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// The response is a well-formed JMAP answer or JMAP error, nothing else.
fn assert_well_formed(status: u16, body: &Value, sent: &str) {
    match status {
        200 => {
            let responses = body["methodResponses"].as_array().unwrap_or_else(|| panic!("{sent}\n→ {body}"));
            for r in responses {
                let name = r[0].as_str().unwrap_or_else(|| panic!("{sent}\n→ {r}"));
                assert!(r[1].is_object() && r[2].is_string(), "{sent}\n→ {r}");
                if name == "error" {
                    let kind = r[1]["type"].as_str().unwrap_or_default();
                    assert!(METHOD_ERRORS.contains(&kind), "{sent}\n→ unknown error type {r}");
                }
            }
            assert!(body["sessionState"].is_string(), "{body}");
        }
        400 => {
            let kind = body["type"].as_str().unwrap_or_default();
            assert!(REQUEST_ERRORS.contains(&kind), "{sent}\n→ {status} {body}");
            assert_eq!(body["status"], 400, "{body}");
        }
        _ => panic!("{sent}\n→ unexpected status {status}: {body}"),
    }
}

#[test]
fn random_requests_get_only_well_formed_jmap_answers() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = runtime.block_on(TestServer::start(dir.path()));
    runtime.block_on(server.domain("example.org"));
    let mut runner = TestRunner::new(Config { cases: 300, failure_persistence: None, ..Config::default() });
    runner
        .run(&request_body(), |body| {
            let sent = String::from_utf8_lossy(&body).into_owned();
            let (status, answer) = runtime.block_on(server.post_raw(body));
            assert_well_formed(status, &answer, &sent);
            Ok(())
        })
        .unwrap();
    let (_, echo) = runtime.block_on(server.call("Core/echo", json!({"still": "up"})));
    assert_eq!(echo, json!({"still": "up"}));
    runtime.block_on(server.stop());
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_deep_huge_and_broken_bodies_are_refused_precisely() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let kind = |v: &Value| v["type"].as_str().unwrap_or_default().to_owned();

    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (status, body) = server.post_raw(deep).await;
    assert_eq!((status, kind(&body)), (400, "urn:ietf:params:jmap:error:notJSON".into()), "nesting is limited");
    let deep_args = format!(
        r#"{{"using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{}1{},"c"]]}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let (status, body) = server.post_raw(deep_args).await;
    assert_eq!((status, kind(&body)), (400, "urn:ietf:params:jmap:error:notJSON".into()));

    let (status, body) = server.post_raw(vec![b'{', 0xff, 0xfe, b'}']).await;
    assert_eq!((status, kind(&body)), (400, "urn:ietf:params:jmap:error:notJSON".into()), "invalid UTF-8");

    let oversized = format!(r#"{{"using":[],"methodCalls":[],"pad":"{}"}}"#, "x".repeat(11_000_000));
    let (status, body) = server.post_raw(oversized).await;
    assert_eq!((status, kind(&body)), (400, "urn:ietf:params:jmap:error:limit".into()));
    assert_eq!(body["limit"], "maxSizeRequest", "{body}");

    let ids: Vec<String> = (0..100_000).map(|i| format!("id{i}")).collect();
    let (_, r) = server.call("x:Account/get", json!({"ids": ids})).await;
    assert_eq!(kind(&r), "requestTooLarge", "{r}");
    let reports: Vec<Value> = (0..10_001).map(|_| json!({"id": "b", "quota": "maxEmails", "delta": 1})).collect();
    let (_, r) = server.call("x:Account/reportUsage", json!({"reports": reports})).await;
    assert_eq!(kind(&r), "requestTooLarge", "{r}");
    let calls: Vec<Value> = (0..1_000).map(|i| json!(["Core/echo", {}, i.to_string()])).collect();
    let (status, body) = server.post_raw(json!({"using": USING, "methodCalls": calls}).to_string()).await;
    assert_eq!((status, body["limit"].as_str()), (400, Some("maxCallsInRequest")), "{body}");

    let (_, echo) = server.call("Core/echo", json!({"still": "up"})).await;
    assert_eq!(echo, json!({"still": "up"}));
    server.stop().await;
}
