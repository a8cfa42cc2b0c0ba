//! RFC 8620 core over HTTP: the session, request-level errors, method-level
//! errors, result references and creation ids.

use serde_json::{Value, json};

use super::support::{TestServer, USING, admin_auth, basic, redact, snapshot_settings};

fn user(name: &str, domain: &str) -> Value {
    json!({"@type": "User", "name": name, "domainId": domain})
}

#[tokio::test(flavor = "multi_thread")]
async fn session_object_has_every_required_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let session: Value = server.get("/.well-known/jmap").await.json().await.unwrap();
    for field in [
        "capabilities",
        "accounts",
        "primaryAccounts",
        "username",
        "apiUrl",
        "downloadUrl",
        "uploadUrl",
        "eventSourceUrl",
        "state",
    ] {
        assert!(session.get(field).is_some(), "missing {field}");
    }
    let core = &session["capabilities"]["urn:ietf:params:jmap:core"];
    for limit in [
        "maxSizeUpload",
        "maxConcurrentUpload",
        "maxSizeRequest",
        "maxConcurrentRequests",
        "maxCallsInRequest",
        "maxObjectsInGet",
        "maxObjectsInSet",
        "collationAlgorithms",
    ] {
        assert!(core.get(limit).is_some(), "missing core limit {limit}");
    }
    assert_eq!(session["primaryAccounts"]["urn:stalwart:jmap"], "ledger");
    assert_eq!(session["apiUrl"], format!("{}/api", server.url));
    let mut shown = session.clone();
    let host = server.url.trim_start_matches("http://").to_owned();
    let text = shown.to_string().replace(&host, "HOST");
    shown = serde_json::from_str(&text).unwrap();
    snapshot_settings().bind(|| insta::assert_json_snapshot!("jmap_session", shown));
    // The session state is what responses carry.
    let body = server.request(json!([["Core/echo", {"hello": true}, "e"]])).await;
    assert_eq!(body["sessionState"], session["state"]);
    assert_eq!(body["methodResponses"][0], json!(["Core/echo", {"hello": true}, "e"]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn request_level_errors_are_problem_details() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut seen = serde_json::Map::new();
    let cases = [
        ("notJSON", b"{\"using\": [".to_vec()),
        ("notJSON-utf8", vec![b'"', 0xff, 0xfe, b'"']),
        ("notRequest", br#"{"using": "urn:ietf:params:jmap:core", "methodCalls": []}"#.to_vec()),
        ("notRequest-call", br#"{"using": [], "methodCalls": [["x:Account/get", [], "c1"]]}"#.to_vec()),
        ("unknownCapability", br#"{"using": ["urn:example:nope"], "methodCalls": []}"#.to_vec()),
    ];
    for (name, body) in cases {
        let (status, problem) = server.post_raw(body).await;
        assert_eq!(status, 400, "{name}");
        let expected = format!("urn:ietf:params:jmap:error:{}", name.split('-').next().unwrap());
        assert_eq!(problem["type"], expected, "{name}: {problem}");
        assert_eq!(problem["status"], 400);
        seen.insert(name.to_owned(), problem);
    }
    let calls: Vec<Value> = (0..33).map(|i| json!(["Core/echo", {}, format!("c{i}")])).collect();
    let (status, problem) = server.post_raw(json!({"using": USING, "methodCalls": calls}).to_string()).await;
    assert_eq!((status, problem["limit"].as_str()), (400, Some("maxCallsInRequest")));
    seen.insert("limit-calls".into(), problem);
    let huge = format!(r#"{{"using": [], "methodCalls": [], "pad": "{}"}}"#, "x".repeat(10_000_001));
    let (status, problem) = server.post_raw(huge).await;
    assert_eq!((status, problem["limit"].as_str()), (400, Some("maxSizeRequest")));
    seen.insert("limit-size".into(), problem);
    snapshot_settings().bind(|| insta::assert_json_snapshot!("jmap_request_errors", seen));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_request_limit_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| config.limits.max_concurrent_requests = 1).await;
    let d = server.domain("example.org").await;
    server
        .account(json!({"@type": "User", "name": "other", "domainId": d,
            "credentials": [{"@type": "Password", "secret": "other-password"}]}))
        .await;
    let ledger = server.ledger.clone();
    let (held, is_held) = tokio::sync::oneshot::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _paused = ledger.pause_writes();
        held.send(()).unwrap();
        released.recv().unwrap();
    });
    is_held.await.unwrap();
    // A write now waits for the paused writer while holding the only permit.
    let body =
        json!({"using": USING, "methodCalls": [["x:Domain/set", {"create": {"d": {"name": "a.example"}}}, "c"]]});
    let client = server.client().clone();
    let url = format!("{}/api", server.url);
    let first = tokio::spawn(async move {
        client
            .post(url)
            .header("authorization", admin_auth())
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .status()
    });
    while server.app.services.requests_in_flight() == 0 {
        assert!(!first.is_finished(), "the first request ended before taking the permit");
        tokio::task::yield_now().await;
    }
    let (status, problem) = server.post_raw(json!({"using": USING, "methodCalls": []}).to_string()).await;
    assert_eq!((status, problem["limit"].as_str()), (400, Some("maxConcurrentRequests")));
    // The limit is per principal: another one is served meanwhile.
    let echo = json!({"using": USING, "methodCalls": [["Core/echo", {"x": 1}, "c"]]}).to_string();
    let (status, body) = server.post_as(Some(&basic("other@example.org", "other-password")), None, echo).await;
    assert_eq!((status, &body["methodResponses"][0][1]["x"]), (200, &json!(1)), "{body}");
    release.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(first.await.unwrap(), 200, "the held request completes once writes resume");
    let (status, _) = server.post_raw(json!({"using": USING, "methodCalls": []}).to_string()).await;
    assert_eq!(status, 200, "the permit was returned");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn method_errors_are_reported_in_place_and_later_calls_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let many: Vec<String> = (0..501).map(|i| format!("x{i}")).collect();
    let body = server
        .request(json!([
            ["x:Account/frobnicate", {}, "unknownMethod"],
            ["x:Account/get", {"ids": [], "color": "blue"}, "unknownArgument"],
            ["x:Account/get", {"ids": "b"}, "wrongType"],
            ["x:Account/get", {"properties": ["shoeSize"]}, "unknownProperty"],
            ["x:Account/get", {"#ids": {"resultOf": "nope", "name": "x:Account/query", "path": "/ids"}}, "invalidResultReference"],
            ["x:Account/get", {"accountId": "someone-else", "ids": []}, "accountNotFound"],
            ["x:Account/get", {"ids": many}, "requestTooLarge"],
            ["x:Account/set", {"ifInState": "999", "create": {"a": user("alice", &d)}}, "stateMismatch"],
            ["x:Account/changes", {"sinceState": "bogus"}, "cannotCalculateChanges"],
            ["x:Account/changes", {"sinceState": "0", "maxChanges": 0}, "maxChangesZero"],
            ["x:Account/query", {"anchor": "zz"}, "anchorNotFound"],
            ["x:Account/query", {"filter": {"shoeSize": 42}}, "unsupportedFilter"],
            ["x:Account/query", {"sort": [{"property": "shoeSize"}]}, "unsupportedSort"],
            ["Core/echo", {"still": "running"}, "after"],
        ]))
        .await;
    let responses = body["methodResponses"].as_array().unwrap();
    let expect = [
        ("unknownMethod", "unknownMethod"),
        ("unknownArgument", "invalidArguments"),
        ("wrongType", "invalidArguments"),
        ("unknownProperty", "invalidArguments"),
        ("invalidResultReference", "invalidResultReference"),
        ("accountNotFound", "accountNotFound"),
        ("requestTooLarge", "requestTooLarge"),
        ("stateMismatch", "stateMismatch"),
        ("cannotCalculateChanges", "cannotCalculateChanges"),
        ("maxChangesZero", "invalidArguments"),
        ("anchorNotFound", "anchorNotFound"),
        ("unsupportedFilter", "unsupportedFilter"),
        ("unsupportedSort", "unsupportedSort"),
    ];
    for (i, (call_id, kind)) in expect.iter().enumerate() {
        assert_eq!(responses[i][0], "error", "{call_id}: {}", responses[i]);
        assert_eq!(responses[i][1]["type"], *kind, "{call_id}: {}", responses[i]);
        assert_eq!(responses[i][2], *call_id);
    }
    assert_eq!(responses[expect.len()], json!(["Core/echo", {"still": "running"}, "after"]));
    // stateMismatch applied nothing.
    let (_, query) = server.call("x:Account/query", json!({})).await;
    assert_eq!(query["ids"], json!([]));
    snapshot_settings().bind(|| insta::assert_json_snapshot!("jmap_method_errors", body));

    // A method of a capability missing from `using` is unknown.
    let (status, body) = server
        .post_raw(
            json!({"using": ["urn:ietf:params:jmap:core"], "methodCalls": [["x:Account/get", {}, "c"]]}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["methodResponses"][0][1]["type"], "unknownMethod");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn result_references_and_creation_ids_chain_calls() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (status, body) = server
        .post_raw(
            json!({
                "using": USING,
                "createdIds": {"earlier": "zz"},
                "methodCalls": [
                    ["x:Domain/set", {"create": {"dom": {"name": "example.org"}}}, "c0"],
                    ["x:Account/set", {"create": {
                        "team": {"@type": "Group", "name": "team", "domainId": "#dom"},
                        "bob": {"@type": "User", "name": "bob", "domainId": "#dom", "memberGroupIds": ["#team"]}
                    }}, "c1"],
                    ["x:Account/query", {"filter": {"memberGroupIds": "#team"}}, "c2"],
                    ["x:Account/get", {"#ids": {"resultOf": "c2", "name": "x:Account/query", "path": "/ids"}, "properties": ["name", "memberGroupIds", "domainId"]}, "c3"],
                    ["x:Domain/get", {"#ids": {"resultOf": "c3", "name": "x:Account/get", "path": "/list/*/domainId"}, "properties": ["name"]}, "c4"],
                    ["x:Account/set", {"update": {"#bob": {"description": "updated by creation id"}}, "destroy": ["#team"]}, "c5"]
                ]
            })
            .to_string(),
        )
        .await;
    assert_eq!(status, 200);
    let r = &body["methodResponses"];
    let team = r[1][1]["created"]["team"]["id"].as_str().unwrap().to_owned();
    let bob = r[1][1]["created"]["bob"]["id"].as_str().unwrap().to_owned();
    assert_eq!(r[2][1]["ids"], json!([bob]));
    assert_eq!(r[3][1]["list"][0]["memberGroupIds"], json!({(team.clone()): true}));
    let dom = r[0][1]["created"]["dom"]["id"].as_str().unwrap();
    assert_eq!(r[4][1]["list"], json!([{"id": dom, "name": "example.org"}]), "`*` flattens");
    assert_eq!(r[5][1]["updated"], json!({ bob.clone(): null }));
    assert_eq!(r[5][1]["destroyed"], json!([team]));
    assert_eq!(body["createdIds"]["bob"], bob);
    assert_eq!(body["createdIds"]["earlier"], "zz", "request createdIds are echoed");
    let (_, get) = server.call("x:Account/get", json!({"ids": [bob], "properties": ["memberGroupIds"]})).await;
    assert_eq!(get["list"][0]["memberGroupIds"], json!({}), "destroying the group removed the membership");
    let mut shown = body.clone();
    redact(&mut shown);
    snapshot_settings().bind(|| insta::assert_json_snapshot!("jmap_references", shown));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_failure_is_server_fail_without_internals() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    // The writer is gone: commits cannot become durable, reads still work.
    let ledger = server.ledger.clone();
    tokio::task::spawn_blocking(move || ledger.shutdown()).await.unwrap();
    let body = server
        .request(json!([
            ["x:Account/set", {"create": {"a": user("alice", &d)}}, "write"],
            ["x:Domain/get", {"ids": [d]}, "read"]
        ]))
        .await;
    assert_eq!(body["methodResponses"][0], json!(["error", {"type": "serverFail"}, "write"]));
    assert_eq!(body["methodResponses"][1][1]["list"][0]["name"], "example.org");
}

/// Issue 15, input 2: `Core/echo` calls that each reference the previous
/// result twice double the response at each call; the response stays within
/// its documented bound (20,000,000 bytes of method responses): the call that
/// would pass it is `requestTooLarge` (and the ones that reference it
/// `invalidResultReference`), while other clients are served.
#[tokio::test(flavor = "multi_thread")]
async fn doubling_result_references_stay_within_the_response_bound() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut calls = vec![serde_json::json!(["Core/echo", {"data": "x".repeat(2_000)}, "c0"])];
    for i in 1..32 {
        let reference = serde_json::json!({"resultOf": format!("c{}", i - 1), "name": "Core/echo", "path": ""});
        calls.push(serde_json::json!(["Core/echo", {"#a": reference, "#b": reference}, format!("c{i}")]));
    }
    let body = serde_json::json!({"using": super::support::USING, "methodCalls": calls}).to_string();
    let (big, other) = tokio::join!(server.post_raw(body), server.call("Core/echo", serde_json::json!({"ping": 1})));
    assert_eq!(other.1["ping"], 1, "another client is served meanwhile");
    let (status, answer) = big;
    assert_eq!(status, 200);
    let size = answer.to_string().len();
    assert!(size < 21_000_000, "the response is {size} bytes");
    let responses = answer["methodResponses"].as_array().unwrap();
    assert_eq!(responses.len(), 32);
    assert_eq!(responses[0][0], "Core/echo");
    let first_refused = responses
        .iter()
        .position(|r| r[0] == "error" && r[1]["type"] == "requestTooLarge")
        .expect("a call past the bound is refused");
    assert!((10..20).contains(&first_refused), "refused from call {first_refused}");
    // Later calls reference a refused one: invalidResultReference, no work.
    assert!(responses[first_refused..].iter().all(|r| r[0] == "error"), "{}", &answer.to_string()[..300]);
    server.stop().await;
}

/// A call refused because the response is full has spent the response: the
/// calls after it, however small, are refused too (else each of 32 calls
/// could build 20 MB again before its refusal).
#[tokio::test(flavor = "multi_thread")]
async fn once_the_response_is_full_later_calls_get_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let reference = serde_json::json!({"resultOf": "c1", "name": "Core/echo", "path": "/x"});
    let calls = serde_json::json!([
        ["Core/echo", {"x": "y".repeat(9_000_000)}, "c1"],
        ["Core/echo", {"#a": reference, "#b": reference}, "c2"],
        ["Core/echo", {"small": 1}, "c3"],
    ]);
    let body = serde_json::json!({"using": super::support::USING, "methodCalls": calls}).to_string();
    let (status, answer) = server.post_raw(body).await;
    assert_eq!(status, 200);
    let responses = answer["methodResponses"].as_array().unwrap();
    assert_eq!(responses[0][0], "Core/echo");
    for r in &responses[1..] {
        assert_eq!((&r[0], &r[1]["type"]), (&serde_json::json!("error"), &serde_json::json!("requestTooLarge")));
    }
    server.stop().await;
}

/// Issue 17 (first part): stalwart-cli asks the session at the fixed path
/// `/jmap/session` and posts to the path of `apiUrl`, which Stalwart spells
/// `/jmap/`; both answer here as `/.well-known/jmap` and `/api` do.
#[tokio::test(flavor = "multi_thread")]
async fn the_session_and_api_answer_at_stalwart_clis_paths() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let well_known: Value = server.get("/.well-known/jmap").await.json().await.unwrap();
    let fixed = server.get("/jmap/session").await;
    assert_eq!(fixed.status(), 200);
    let fixed: Value = fixed.json().await.unwrap();
    assert_eq!(fixed["apiUrl"], well_known["apiUrl"]);
    assert!(fixed["capabilities"]["urn:ietf:params:jmap:core"].is_object(), "{fixed}");
    let anonymous = reqwest::get(format!("{}/jmap/session", server.url)).await.unwrap();
    assert_eq!(anonymous.status(), 401, "authenticated like every API route");
    for path in ["/jmap", "/jmap/"] {
        let body = json!({"using": USING, "methodCalls": [["x:Domain/get", {"ids": []}, "c"]]});
        let (status, answer) = server.post_to(path, Some(&admin_auth()), None, body.to_string()).await;
        assert_eq!(status, 200, "{path}: {answer}");
        assert_eq!(answer["methodResponses"][0][0], "x:Domain/get", "{path}: {answer}");
    }
    server.stop().await;
}
