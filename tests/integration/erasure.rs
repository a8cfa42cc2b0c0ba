//! Erasure: `ledger database delete` removes an account's personal data from the
//! store (payloads of its past events, projections, and the bytes on disk), while
//! the chain still verifies and replay still equals live.

use std::process::Command;

use ledger::audit::verify::verify_export;
use serde_json::json;

use super::support::{ADMIN_PASSWORD, TestServer, basic, files_containing};

#[tokio::test(flavor = "multi_thread")]
async fn erasure_leaves_no_personal_bytes_and_the_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let team = server.account(json!({"@type": "Group", "name": "team", "domainId": d})).await;
    let erin = server
        .account(json!({"@type": "User", "name": "erin7731", "domainId": d, "description": "Diary-entry-4417",
            "aliases": [{"name": "alias5521", "domainId": d}], "memberGroupIds": [team],
            "credentials": [{"@type": "Password", "secret": "erin-password-1"}]}))
        .await;
    let frank =
        server.account(json!({"@type": "User", "name": "frank", "domainId": d, "memberGroupIds": [team]})).await;
    let me = basic("erin7731@example.org", "erin-password-1");
    let (status, _, _) = server
        .call_as(&me, "x:Account/set", json!({"update": {(erin.clone()): {"credentials/0/secret": "erin-password-2"}}}))
        .await;
    assert_eq!(status, 200);
    server.call("x:Account/set", json!({"update": {(erin.clone()): {"aliases/0/name": "alias6632"}}})).await;

    let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args([
            "-u",
            &server.url,
            "-c",
            &format!("admin:{ADMIN_PASSWORD}"),
            "database",
            "delete",
            "erin7731@example.org",
            "--yes",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let (_, got) = server.call("x:Account/get", json!({"ids": [erin, frank]})).await;
    assert_eq!(got["notFound"], json!([erin]));
    assert_eq!(got["list"][0]["memberGroupIds"], json!({(team.clone()): true}), "other accounts are untouched");

    // History keeps the facts, not the data.
    let (_, h) = server.call("x:AccountHistory/get", json!({"ids": [erin]})).await;
    let events = h["list"][0]["events"].as_array().unwrap();
    let last = events.last().unwrap();
    assert_eq!(last["event"], "AccountErased");
    assert_eq!(last["actor"]["name"], "admin", "who erased is kept");
    assert!(events[..events.len() - 1].iter().all(|e| e["details"].is_null()), "{h}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "CredentialUpdated" && e["actor"]["id"] == erin && e["actor"]["name"].is_null())
    );

    // The export still verifies, and holds nothing of erin.
    let export = server.get("/api/audit/export").await.text().await.unwrap();
    verify_export(&export, None).expect("the chain verifies after erasure");
    for marker in ["erin7731", "Diary-entry-4417", "alias5521", "alias6632"] {
        assert!(!export.contains(marker), "{marker} in the export");
    }
    // Gone from every file (tables, journals, everything) once acknowledged,
    // while the server still runs, and after it stopped.
    let gone = || {
        for marker in ["erin7731", "Diary-entry-4417", "alias5521", "alias6632"] {
            let hits = files_containing(dir.path(), marker.as_bytes());
            assert!(hits.is_empty(), "{marker} still on disk in {hits:?}");
        }
    };
    gone();
    let live = server.ledger.projections().dump(&server.ledger.database().snapshot()).unwrap();
    let last_seq = server.ledger.read().last_seq;
    server.stop().await;
    gone();

    // Replay over erased payloads gives the live projections, byte for byte.
    // In chunks of 3 records, so that the erasure and the records it erased
    // fall into different chunks (the default folds it all in one).
    let replayed = ledger::store::rebuild_in_chunks(dir.path(), 3, &mut |_, _| {}).unwrap();
    assert_eq!(replayed, last_seq);
    let ledger = ledger::Ledger::open(dir.path(), ledger::Durability::Fsync).unwrap();
    let rebuilt = ledger.projections().dump(&ledger.database().snapshot()).unwrap();
    let only_live: Vec<_> = live.iter().filter(|e| !rebuilt.contains(e)).collect();
    let only_rebuilt: Vec<_> = rebuilt.iter().filter(|e| !live.contains(e)).collect();
    assert!(
        only_live.is_empty() && only_rebuilt.is_empty(),
        "projections after replaying an erased log differ from live: only live {only_live:?}, only rebuilt {only_rebuilt:?}"
    );
    ledger.verify().unwrap();
    ledger.shutdown();
    drop(ledger);

    // A restore of the erased log works too, and never reuses erin's id.
    let restored_dir = tempfile::tempdir().unwrap();
    let target = restored_dir.path().join("r");
    ledger::audit::restore::restore(
        ledger::audit::restore::Source::Store(dir.path()),
        &target,
        Some(ledger::audit::export::Bound::Seq(last_seq)),
        |_, _| {},
    )
    .unwrap();
    let restored = TestServer::start(&target).await;
    let again = restored.account(json!({"@type": "User", "name": "gina", "domainId": d})).await;
    assert!(ledger_events::values::ObjectId::from_jmap(&again) > ledger_events::values::ObjectId::from_jmap(&erin));
    restored.stop().await;
}

/// `x:Database/erase` takes ids as every method does: a `#creationId` of the
/// request too; an id that names nothing is `notFound`, and nothing is written.
#[tokio::test(flavor = "multi_thread")]
async fn erase_resolves_creation_ids_like_every_method() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let body = server
        .request(json!([
            ["x:Account/set", {"create": {"e": {"@type": "User", "name": "eve", "domainId": d}}}, "a"],
            ["x:Database/erase", {"ids": ["#e", "#nope"]}, "b"]
        ]))
        .await;
    let created = body["methodResponses"][0][1]["created"]["e"]["id"].as_str().unwrap().to_owned();
    let erased = &body["methodResponses"][1][1];
    assert_eq!(erased["erased"], json!([created]), "{erased}");
    assert_eq!(erased["notErased"]["#nope"]["type"], "notFound", "{erased}");
    let (_, got) = server.call("x:Account/get", json!({"ids": [created]})).await;
    assert_eq!(got["notFound"], json!([created]));
    server.stop().await;
}
