//! Purge: expired credentials go (recorded with reason `expired`), and change
//! tracking older than the retention window goes, so `/changes` from before it
//! answers `cannotCalculateChanges`. Replay still equals live.

use serde_json::json;

use super::support::TestServer;

async fn account_state(server: &TestServer) -> String {
    let (_, r) = server.call("x:Account/get", json!({"ids": []})).await;
    r["state"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn trimmed_change_tracking_answers_cannot_calculate_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    server.account(json!({"@type": "User", "name": "a", "domainId": d})).await;
    let s1 = account_state(&server).await;
    let b = server.account(json!({"@type": "User", "name": "b", "domainId": d})).await;
    let s2 = account_state(&server).await;
    let c = server.account(json!({"@type": "User", "name": "c", "domainId": d})).await;

    let cut: u64 = s2.parse::<u64>().unwrap() + 1;
    let (name, r) = server.call("x:Database/purge", json!({"trimChangesBefore": cut})).await;
    assert_eq!(name, "x:Database/purge", "{r}");
    assert_eq!(r["changesFrom"], cut);
    let (name, e) = server.call("x:Account/changes", json!({"sinceState": s1})).await;
    assert_eq!((name.as_str(), e["type"].as_str()), ("error", Some("cannotCalculateChanges")), "{e}");
    let (_, ok) = server.call("x:Account/changes", json!({"sinceState": s2})).await;
    assert_eq!(ok["created"], json!([c]), "{ok}");
    let (name, _) = server.call("x:Account/queryChanges", json!({"sinceQueryState": s1})).await;
    assert_eq!(name, "error");
    let _ = b;

    // The trim is an event; replay reproduces the trimmed projections exactly.
    let snap = server.ledger.database().snapshot();
    let last = server.ledger.read().last_seq;
    assert_eq!(server.ledger.log().read(&snap, last).unwrap().unwrap().header.event_type, "ChangesTrimmed");
    drop(snap);
    let live = server.ledger.projections().dump(&server.ledger.database().snapshot()).unwrap();
    server.stop().await;
    // In chunks of 2 records too: the trim and the entries it removes fall into different chunks.
    ledger::store::rebuild_in_chunks(dir.path(), 2, &mut |_, _| {}).unwrap();
    let ledger = ledger::Ledger::open(dir.path(), ledger::Durability::Fsync).unwrap();
    assert!(live == ledger.projections().dump(&ledger.database().snapshot()).unwrap());
    ledger.shutdown();
    drop(ledger);
    ledger::store::rebuild(dir.path()).unwrap();
    let ledger = ledger::Ledger::open(dir.path(), ledger::Durability::Fsync).unwrap();
    assert!(live == ledger.projections().dump(&ledger.database().snapshot()).unwrap());
    ledger.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_retention_policy_and_expired_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| {
        config.purge_policy = ledger::maintenance::PurgePolicy { changes_retention: Some(std::time::Duration::ZERO) };
    })
    .await;
    let d = server.domain("example.org").await;
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"u": {"@type": "User", "name": "old", "domainId": d, "credentials": [
                {"@type": "AppPassword", "description": "gone", "permissions": {"@type": "Inherit"}, "expiresAt": "2020-01-01T00:00:00Z"},
                {"@type": "AppPassword", "description": "kept", "permissions": {"@type": "Inherit"}}]}}}),
        )
        .await;
    let id = r["created"]["u"]["id"].as_str().unwrap().to_owned();
    let before = account_state(&server).await;
    let (_, r) = server.call("x:Database/purge", json!({})).await;
    assert_eq!(r["expiredCredentialsRemoved"], 1, "{r}");
    let (_, got) = server.call("x:Account/get", json!({"ids": [id], "properties": ["credentials"]})).await;
    assert_eq!(got["list"][0]["credentials"].as_object().unwrap().len(), 1);
    assert_eq!(got["list"][0]["credentials"]["0"]["description"], "kept");
    let (_, h) = server.call("x:AccountHistory/get", json!({"ids": [id]})).await;
    let removed =
        h["list"][0]["events"].as_array().unwrap().iter().find(|e| e["event"] == "CredentialRemoved").cloned().unwrap();
    assert_eq!(removed["details"]["reason"], "expired");
    assert_eq!(removed["actor"]["name"], "admin");
    // A zero-day retention trims everything committed before the purge: a client
    // at any older state must resynchronise; one at the last state before the
    // purge still gets the purge's own change.
    let (name, e) = server.call("x:Account/changes", json!({"sinceState": "0"})).await;
    assert_eq!((name.as_str(), e["type"].as_str()), ("error", Some("cannotCalculateChanges")), "{e}");
    let (_, recent) = server.call("x:Account/changes", json!({"sinceState": before})).await;
    assert_eq!(recent["updated"], json!([id]), "{recent}");
    server.stop().await;
}
