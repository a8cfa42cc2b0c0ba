//! `/query`, `/changes` and `/queryChanges` over HTTP, including across a restart.

use serde_json::{Value, json};

use super::support::{TestServer, redact, snapshot_settings};

struct Directory {
    /// The tenant alice is in.
    t1: String,
    d1: String,
    d2: String,
    group: String,
    alice: String,
    bob: String,
    carol: String,
    dave: String,
}

async fn directory(server: &TestServer) -> Directory {
    let t1 = server.tenant("t1").await;
    let d1 = server.domain("example.org").await;
    let d2 = server.domain("example.net").await;
    let group = server.account(json!({"@type": "Group", "name": "sales-team", "domainId": d1})).await;
    let alice = server
        .account(json!({"@type": "User", "name": "alice", "domainId": d1, "memberTenantId": t1,
            "memberGroupIds": [group], "description": "Sales lead"}))
        .await;
    let bob = server.account(json!({"@type": "User", "name": "bob", "domainId": d2})).await;
    let carol = server
        .account(
            json!({"@type": "User", "name": "carol", "domainId": d1, "aliases": [{"name": "orders", "domainId": d2}]}),
        )
        .await;
    let dave =
        server.account(json!({"@type": "User", "name": "dave", "domainId": d2, "memberGroupIds": [group]})).await;
    Directory { t1, d1, d2, group, alice, bob, carol, dave }
}

async fn ids(server: &TestServer, args: Value) -> Vec<String> {
    let (name, r) = server.call("x:Account/query", args.clone()).await;
    assert_eq!(name, "x:Account/query", "{args}: {r}");
    r["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn query_filters_sorts_and_windows() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let Directory { t1, d1, d2, group, alice, bob, carol, dave } = directory(&server).await;
    let all = vec![group.clone(), alice.clone(), bob.clone(), carol.clone(), dave.clone()];
    assert_eq!(ids(&server, json!({})).await, all, "default order is creation order");
    assert_eq!(ids(&server, json!({"filter": {"text": "sales"}})).await, [group.clone(), alice.clone()]);
    assert_eq!(ids(&server, json!({"filter": {"text": "orders example"}})).await, vec![carol.clone()]);
    assert_eq!(ids(&server, json!({"filter": {"name": "CA"}})).await, vec![carol.clone()]);
    assert_eq!(ids(&server, json!({"filter": {"domainId": d1}})).await, [group.clone(), alice.clone(), carol.clone()]);
    assert_eq!(ids(&server, json!({"filter": {"domainId": d2}})).await, [bob.clone(), dave.clone()]);
    assert_eq!(ids(&server, json!({"filter": {"memberTenantId": t1}})).await, vec![alice.clone()]);
    assert_eq!(ids(&server, json!({"filter": {"memberGroupIds": group}})).await, [alice.clone(), dave.clone()]);
    assert_eq!(ids(&server, json!({"filter": {"@type": "Group"}})).await, vec![group.clone()]);
    assert_eq!(
        ids(&server, json!({"filter": {"operator": "OR", "conditions": [{"name": "bob"}, {"name": "dave"}]}})).await,
        [bob.clone(), dave.clone()]
    );
    assert_eq!(
        ids(
            &server,
            json!({"filter": {"operator": "AND", "conditions": [{"domainId": d2}, {"memberGroupIds": group}]}})
        )
        .await,
        vec![dave.clone()]
    );
    assert_eq!(
        ids(&server, json!({"filter": {"operator": "NOT", "conditions": [{"domainId": d1}, {"name": "bob"}]}})).await,
        vec![dave.clone()]
    );
    assert_eq!(
        ids(&server, json!({"sort": [{"property": "name", "isAscending": false}]})).await,
        [group.clone(), dave.clone(), carol.clone(), bob.clone(), alice.clone()]
    );
    assert_eq!(
        ids(&server, json!({"sort": [{"property": "emailAddress"}]})).await,
        [alice.clone(), bob.clone(), carol.clone(), dave.clone(), group.clone()]
    );
    let sorted = json!([{"property": "name"}]);
    assert_eq!(ids(&server, json!({"sort": sorted, "position": -2})).await, [dave.clone(), group.clone()]);
    assert_eq!(ids(&server, json!({"sort": sorted, "position": 1, "limit": 2})).await, [bob.clone(), carol.clone()]);
    assert_eq!(
        ids(&server, json!({"sort": sorted, "anchor": bob, "anchorOffset": 1, "limit": 1})).await,
        vec![carol.clone()]
    );
    assert_eq!(ids(&server, json!({"sort": sorted, "anchor": bob, "anchorOffset": -5})).await.len(), 5);
    let (_, r) = server
        .call(
            "x:Account/query",
            json!({"filter": {"domainId": d1}, "sort": sorted, "limit": 2, "calculateTotal": true}),
        )
        .await;
    assert_eq!(r["total"], 3);
    assert_eq!(r["position"], 0);
    let mut shown = r.clone();
    redact(&mut shown);
    snapshot_settings().bind(|| insta::assert_json_snapshot!("jmap_query", shown));
    let (name, r) = server.call("x:Account/query", json!({"limit": -1})).await;
    assert_eq!((name.as_str(), r["type"].as_str()), ("error", Some("invalidArguments")));
    let (_, domains) = server.call("x:Domain/query", json!({"sort": [{"property": "name"}]})).await;
    assert_eq!(domains["ids"], json!([d2, d1]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_page_by_whole_commits_and_coalesce() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let (_, start) = server.call("x:Account/get", json!({"ids": []})).await;
    let since = start["state"].as_str().unwrap().to_owned();
    let a = server.account(json!({"@type": "User", "name": "a", "domainId": d})).await;
    let (_, two) = server
        .call(
            "x:Account/set",
            json!({"create": {
            "b": {"@type": "User", "name": "b", "domainId": d},
            "c": {"@type": "User", "name": "c", "domainId": d}}}),
        )
        .await;
    let b = two["created"]["b"]["id"].as_str().unwrap().to_owned();
    let c = two["created"]["c"]["id"].as_str().unwrap().to_owned();
    let ghost = server.account(json!({"@type": "User", "name": "ghost", "domainId": d})).await;
    server.call("x:Account/set", json!({"destroy": [ghost]})).await;
    server.call("x:Account/set", json!({"update": {(a.clone()): {"description": "x"}}})).await;

    let (_, page1) = server.call("x:Account/changes", json!({"sinceState": since, "maxChanges": 2})).await;
    assert_eq!(page1["created"], json!([a]), "the two-account commit does not fit beside a: {page1}");
    assert_eq!(page1["hasMoreChanges"], true);
    let (_, page2) = server.call("x:Account/changes", json!({"sinceState": page1["newState"], "maxChanges": 2})).await;
    assert_eq!(page2["created"], json!([b, c]), "one commit, never split: {page2}");
    assert_eq!(page2["hasMoreChanges"], true);
    let (_, page3) = server.call("x:Account/changes", json!({"sinceState": page2["newState"], "maxChanges": 2})).await;
    assert_eq!(page3["hasMoreChanges"], false, "{page3}");
    assert_eq!(page3["created"], json!([]), "created then destroyed inside the window is not reported");
    assert_eq!(page3["updated"], json!([a]));
    let (_, current) = server.call("x:Account/get", json!({"ids": []})).await;
    assert_eq!(page3["newState"], current["state"]);

    let (_, whole) = server.call("x:Account/changes", json!({"sinceState": since})).await;
    assert_eq!(whole["created"], json!([a, b, c]), "an update after a create is still a create");
    assert_eq!(whole["destroyed"], json!([]));
    let mut shown = whole.clone();
    redact(&mut shown);
    snapshot_settings().bind(|| insta::assert_json_snapshot!("jmap_changes", shown));

    let (name, r) = server.call("x:Account/changes", json!({"sinceState": since, "maxChanges": 1})).await;
    assert_eq!(name, "x:Account/changes", "{r}");
    let (name, r) = server.call("x:Account/changes", json!({"sinceState": page1["newState"], "maxChanges": 1})).await;
    assert_eq!((name.as_str(), r["type"].as_str()), ("error", Some("cannotCalculateChanges")), "{r}");
    let (name, r) = server.call("x:Account/changes", json!({"sinceState": "999999"})).await;
    assert_eq!((name.as_str(), r["type"].as_str()), ("error", Some("cannotCalculateChanges")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn states_and_changes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let a = server.account(json!({"@type": "User", "name": "a", "domainId": d})).await;
    let (_, accounts) = server.call("x:Account/get", json!({"ids": []})).await;
    let (_, domains) = server.call("x:Domain/get", json!({"ids": []})).await;
    server.stop().await;

    let server = TestServer::start(dir.path()).await;
    let (_, accounts_again) = server.call("x:Account/get", json!({"ids": []})).await;
    assert_eq!(accounts_again["state"], accounts["state"], "a restart does not change state strings");
    let b = server.account(json!({"@type": "User", "name": "b", "domainId": d})).await;
    server.call("x:Account/set", json!({"update": {(a.clone()): {"locale": "fr_FR"}}})).await;
    let (_, changes) = server.call("x:Account/changes", json!({"sinceState": accounts["state"]})).await;
    assert_eq!(changes["created"], json!([b]));
    assert_eq!(changes["updated"], json!([a]));
    let (_, domains_again) = server.call("x:Domain/get", json!({"ids": []})).await;
    assert_eq!(domains_again["state"], domains["state"], "account changes do not move the domain state");
    let (_, none) = server.call("x:Domain/changes", json!({"sinceState": domains["state"]})).await;
    assert_eq!((none["created"].clone(), none["hasMoreChanges"].clone()), (json!([]), json!(false)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn query_changes_report_removed_and_added() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let Directory { d1, alice, bob, carol, dave, .. } = directory(&server).await;
    let filter = json!({"domainId": d1});
    let (_, q) = server.call("x:Account/query", json!({"filter": filter})).await;
    let since = q["queryState"].clone();
    // bob moves into d1, carol is destroyed, erin is created in d1, dave changes outside.
    server.call("x:Account/set", json!({"update": {(bob.clone()): {"domainId": d1}}})).await;
    server.call("x:Account/set", json!({"destroy": [carol]})).await;
    let erin = server.account(json!({"@type": "User", "name": "erin", "domainId": d1})).await;
    server.call("x:Account/set", json!({"update": {(dave.clone()): {"description": "x"}}})).await;

    let (_, qc) = server
        .call("x:Account/queryChanges", json!({"filter": filter, "sinceQueryState": since, "calculateTotal": true}))
        .await;
    let (_, now) = server.call("x:Account/query", json!({"filter": filter})).await;
    assert_eq!(qc["newQueryState"], now["queryState"]);
    assert_eq!(qc["total"], 4);
    let removed: Vec<&str> = qc["removed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(removed.contains(&carol.as_str()) && removed.contains(&bob.as_str()), "{qc}");
    let added = qc["added"].as_array().unwrap();
    let index_of = |id: &str| now["ids"].as_array().unwrap().iter().position(|v| v == id).unwrap();
    assert!(added.contains(&json!({"id": bob, "index": index_of(&bob)})), "{qc}");
    assert!(added.contains(&json!({"id": erin, "index": index_of(&erin)})), "{qc}");
    assert!(!added.iter().any(|a| a["id"] == alice), "alice did not change");
    let mut shown = qc.clone();
    redact(&mut shown);
    snapshot_settings().bind(|| insta::assert_json_snapshot!("jmap_query_changes", shown));

    let (name, r) = server
        .call("x:Account/queryChanges", json!({"filter": filter, "sinceQueryState": since, "maxChanges": 1}))
        .await;
    assert_eq!((name.as_str(), r["type"].as_str()), ("error", Some("tooManyChanges")));

    // upToId: with an immutable sort and filter, additions past it are omitted.
    let (_, all) = server.call("x:Account/query", json!({})).await;
    let state = all["queryState"].clone();
    let first = all["ids"][0].clone();
    let frank = server.account(json!({"@type": "User", "name": "frank", "domainId": d1})).await;
    let (_, cut) = server.call("x:Account/queryChanges", json!({"sinceQueryState": state, "upToId": first})).await;
    assert_eq!(cut["added"], json!([]), "{cut}");
    let (_, full) = server.call("x:Account/queryChanges", json!({"sinceQueryState": state})).await;
    assert_eq!(full["added"][0]["id"], frank);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn extreme_window_arguments_are_answered_not_crashed_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let a = server.account(json!({"@type": "User", "name": "a", "domainId": d})).await;
    for args in [
        json!({"anchor": a, "anchorOffset": i64::MAX}),
        json!({"anchor": a, "anchorOffset": i64::MIN}),
        json!({"position": i64::MIN}),
        json!({"position": i64::MAX, "limit": 9_007_199_254_740_991_u64}),
    ] {
        let (name, r) = server.call("x:Account/query", args.clone()).await;
        assert_eq!(name, "x:Account/query", "{args}: {r}");
    }
    let (name, r) = server.call("x:Account/query", json!({"limit": 1.5})).await;
    assert_eq!((name.as_str(), r["type"].as_str()), ("error", Some("invalidArguments")));
    server.stop().await;
}
