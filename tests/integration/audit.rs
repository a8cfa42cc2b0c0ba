//! Audit history, export with offline verification (and every kind of
//! tampering), checkpoints, and point-in-time restore.

use std::process::Command;

use ledger::audit::verify::verify_export;
use serde_json::{Value, json};

use super::support::{ADMIN_PASSWORD, TestServer, admin_auth, basic};

async fn export(server: &TestServer, query: &str) -> String {
    let response = server.get(&format!("/api/audit/export{query}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    response.text().await.unwrap()
}

/// A small history: domain, account with alias and password, updates, rename,
/// alias rename, password change by the user itself.
async fn history_fixture(server: &TestServer) -> String {
    let d = server.domain("example.org").await;
    let id = server
        .account(json!({"@type": "User", "name": "alice", "domainId": d,
            "aliases": [{"name": "info", "domainId": d}], "credentials": [{"@type": "Password", "secret": "first-password"}]}))
        .await;
    server.call("x:Account/set", json!({"update": {(id.clone()): {"description": "Sales"}}})).await;
    server.call("x:Account/set", json!({"update": {(id.clone()): {"name": "alice.smith"}}})).await;
    server.call("x:Account/set", json!({"update": {(id.clone()): {"aliases/0/name": "hello"}}})).await;
    let me = basic("alice.smith@example.org", "first-password");
    let (status, _, r) = server
        .call_as(&me, "x:Account/set", json!({"update": {(id.clone()): {"credentials/0/secret": "second-password"}}}))
        .await;
    assert_eq!(status, 200, "{r}");
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn history_lists_what_changed_who_and_how() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let id = history_fixture(&server).await;
    let (_, r) = server.call("x:AccountHistory/get", json!({"ids": [id, "zzz"]})).await;
    let events = r["list"][0]["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "AccountCreated",
            "AliasAdded",
            "CredentialAdded",
            "AccountUpdated",
            "AccountRenamed",
            "AliasRenamed",
            "CredentialUpdated"
        ]
    );
    assert!(events.windows(2).all(|w| w[0]["position"].as_u64() < w[1]["position"].as_u64()), "oldest first");
    assert_eq!(events[0]["actor"], json!({"id": "", "name": "admin", "authMethod": "fallback"}));
    assert_eq!(events[6]["actor"]["name"], "alice.smith@example.org");
    assert_eq!(events[6]["actor"]["authMethod"], "password");
    assert_eq!(events[3]["details"]["description"], json!({"old": null, "new": "Sales"}));
    assert_eq!(events[4]["details"]["oldEmailAddress"], "alice@example.org");
    assert_eq!(events[5]["details"]["newEmailAddress"], "hello@example.org");
    assert_eq!(events[2]["details"]["secretHash"], "changed", "secrets show only as changed");
    assert_eq!(events[6]["details"]["newSecretHash"], "changed");
    assert!(!r.to_string().contains("argon2"), "{r}");
    assert_eq!(r["notFound"], json!(["zzz"]));

    // History outlives the account.
    server.call("x:Account/set", json!({"destroy": [id]})).await;
    let (_, r) = server.call("x:AccountHistory/get", json!({"ids": [id]})).await;
    assert_eq!(r["list"][0]["events"].as_array().unwrap().last().unwrap()["event"], "AccountDestroyed");

    // The CLI shows the same.
    let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["-u", &server.url, "-c", &format!("admin:{ADMIN_PASSWORD}"), "audit", "history", &id, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli.as_array().unwrap().len(), 8);
    server.stop().await;
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

fn join(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn export_verifies_offline_and_every_tampering_is_caught_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    history_fixture(&server).await;
    let text = export(&server, "").await;
    let verified = verify_export(&text, None).expect("an untouched export verifies");
    assert_eq!((verified.from, verified.records, verified.skipped), (1, 8, 0));
    let original = lines(&text);
    assert!(original.last().unwrap().starts_with("{\"trailer\""));

    let tamper = |f: &dyn Fn(&mut Vec<String>)| {
        let mut l = original.clone();
        f(&mut l);
        verify_export(&join(&l), None).expect_err("tampering must be caught")
    };
    // Edited payload (position 3 is AliasAdded).
    assert!(original[2].contains("\"name\":\"info\""));
    let e = tamper(&|l| l[2] = l[2].replace("\"name\":\"info\"", "\"name\":\"evil\""));
    assert_eq!(e.position, 3, "{e}");
    // Edited readable field beside an intact header.
    let e = tamper(&|l| l[3] = l[3].replace("\"name\":\"admin\"", "\"name\":\"mallory\""));
    assert_eq!(e.position, 4, "{e}");
    // Edited header bytes.
    let e = tamper(&|l| {
        let mut v: Value = serde_json::from_str(&l[4]).unwrap();
        let mut header = v["header"].as_str().unwrap().to_owned();
        let flipped = if &header[40..41] == "0" { "1" } else { "0" };
        header.replace_range(40..41, flipped);
        v["header"] = json!(header);
        l[4] = v.to_string();
    });
    assert_eq!(e.position, 5, "{e}");
    // Removed record.
    let e = tamper(&|l| {
        l.remove(4);
    });
    assert_eq!(e.position, 5, "{e}");
    // Reordered records.
    let e = tamper(&|l| l.swap(5, 6));
    assert_eq!(e.position, 6, "{e}");
    // Inserted record (a copy).
    let e = tamper(&|l| {
        let copy = l[2].clone();
        l.insert(3, copy);
    });
    assert_eq!(e.position, 4, "{e}");
    // Cut short: the trailer is gone.
    let e = tamper(&|l| {
        l.pop();
    });
    assert_eq!(e.position, 9, "{e}");
    // The last record removed together with a forged trailer count still fails on the digest.
    let e = tamper(&|l| {
        l.remove(7);
        let n = l.len() - 1;
        l[n] = l[n].replace("\"lastSeq\":8", "\"lastSeq\":7");
    });
    assert!(e.position >= 7, "{e}");

    // The CLI verifies a file and exits non-zero naming the position.
    let good = dir.path().join("good.ndjson");
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&good, &text).unwrap();
    let mut edited = original.clone();
    edited[2] = edited[2].replace("\"name\":\"info\"", "\"name\":\"evil\"");
    std::fs::write(&bad, join(&edited)).unwrap();
    let run = |file: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .args(["audit", "verify"])
            .arg(file)
            .env("LEDGER_TRUST_DIR", dir.path().join("trust"))
            .output()
            .unwrap()
    };
    let ok = run(&good);
    assert!(ok.status.success() && String::from_utf8_lossy(&ok.stdout).starts_with("ok: positions 1..=8"));
    let fail = run(&bad);
    assert_eq!(fail.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&fail.stderr).contains("position 3"), "{}", String::from_utf8_lossy(&fail.stderr));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn filtered_exports_and_checkpoints_still_prove_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let id = history_fixture(&server).await;
    server.account(json!({"@type": "User", "name": "bob", "domainId": "b"})).await;
    let filtered = export(&server, &format!("?account={id}")).await;
    let v = verify_export(&filtered, None).expect("a one-account export verifies");
    assert_eq!((v.records, v.skipped), (7, 0), "the domain and bob are left out");
    assert!(!filtered.contains("bob@example.org"), "other accounts' records are not in it");
    let ranged = export(&server, "?from=3&to=5").await;
    let v = verify_export(&ranged, None).unwrap();
    assert_eq!((v.from, v.last_seq), (3, 5));

    // The chain's end as `POSITION:HASH` (the JSON checkpoint's position and
    // hash) still proves, from a later export, that the log only grew.
    let (seq, hash) = server_head(&server).await;
    server.account(json!({"@type": "User", "name": "carol", "domainId": "b"})).await;
    let later = export(&server, "").await;
    let cp = |h: &str| Some((seq, ledger_events::Digest::from_hex(h).unwrap()));
    verify_export(&later, cp(&hash)).expect("the log only grew since the checkpoint");
    let forged = format!("{}{}", &hash[..63], if hash.ends_with('0') { "1" } else { "0" });
    let e = verify_export(&later, cp(&forged)).unwrap_err();
    assert_eq!(e.position, seq);
    let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["audit", "verify", "--checkpoint", &format!("{seq}:{forged}")])
        .arg({
            let f = dir.path().join("later.ndjson");
            std::fs::write(&f, &later).unwrap();
            f
        })
        .env("LEDGER_TRUST_DIR", dir.path().join("trust"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("position {seq}:")));
    // Export needs sysAuditExport.
    let user = basic("alice.smith@example.org", "second-password");
    let denied = server
        .client()
        .get(format!("{}/api/audit/export", server.url))
        .header("authorization", user)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    server.stop().await;
}

/// The JSON checkpoint's chain end: (position, record hash).
async fn server_head(server: &TestServer) -> (u64, String) {
    let v: Value = server
        .client()
        .get(format!("{}/api/audit/checkpoint", server.url))
        .header("authorization", admin_auth())
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["position"], v["treeSize"], "{v}");
    (v["position"].as_u64().unwrap(), v["hash"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_at_a_position_or_time_equals_what_get_returned_then() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let server = TestServer::start(&source).await;
    let d = server.domain("example.org").await;
    let id = server.account(json!({"@type": "User", "name": "dana", "domainId": d, "description": "v1"})).await;
    // (position, commit time, what /get answered right after that commit)
    let mut moments: Vec<(u64, String, Value)> = Vec::new();
    for v in ["v2", "v3", "v4"] {
        server.call("x:Account/set", json!({"update": {(id.clone()): {"description": v}}})).await;
        let (_, got) = server.call("x:Account/get", json!({"ids": [id]})).await;
        let seq = server.ledger.read().last_seq;
        let record = server.ledger.log().read(&server.ledger.database().snapshot(), seq).unwrap().unwrap();
        moments.push((seq, record.header.commit.committed_at.to_string(), got["list"][0].clone()));
    }
    server.stop().await;

    // By position, through the CLI.
    let (seq, _, expected) = &moments[1];
    let by_seq = dir.path().join("by-seq");
    let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["restore", "--data-dir"])
        .arg(&source)
        .arg("--to")
        .arg(&by_seq)
        .args(["--seq", &seq.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let restored = TestServer::start(&by_seq).await;
    let (_, got) = restored.call("x:Account/get", json!({"ids": [id]})).await;
    assert_eq!(&got["list"][0], expected);
    assert_eq!(restored.ledger.read().last_seq, *seq);
    restored.ledger.verify().unwrap();
    restored.stop().await;

    // By time: the state of the last commit at or before that instant.
    let (_, at, _) = &moments[0];
    let by_time = dir.path().join("by-time");
    ledger::audit::restore::restore(
        ledger::audit::restore::Source::Store(&source),
        &by_time,
        Some(at.parse().unwrap()),
        |_, _| {},
    )
    .unwrap();
    let restored = TestServer::start(&by_time).await;
    let (_, got) = restored.call("x:Account/get", json!({"ids": [id]})).await;
    let expected = moments.iter().rfind(|(_, t, _)| t <= at).unwrap();
    assert_eq!(got["list"][0], expected.2);
    restored.stop().await;

    // A target that is not empty is refused; the source is untouched.
    let again = ledger::audit::restore::restore(
        ledger::audit::restore::Source::Store(&source),
        &by_seq,
        Some(ledger::audit::export::Bound::Seq(1)),
        |_, _| {},
    );
    assert!(again.unwrap_err().to_string().contains("must be empty"));
    let server = TestServer::start(&source).await;
    assert_eq!(server.ledger.read().last_seq, moments[2].0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn as_of_reads_agree_with_what_get_said_then_and_with_restore() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let server = TestServer::start(&source).await;
    let d = server.domain("example.org").await;
    let id = server.account(json!({"@type": "User", "name": "hana", "domainId": d, "description": "v1"})).await;
    let doomed = server.account(json!({"@type": "User", "name": "ivan", "domainId": d})).await;
    let mut moments: Vec<(u64, String, Value)> = Vec::new();
    for v in ["v2", "v3"] {
        server.call("x:Account/set", json!({"update": {(id.clone()): {"description": v, "aliases/0": {"name": format!("a{v}"), "domainId": d}}}})).await;
        let (_, got) = server.call("x:Account/get", json!({"ids": [id]})).await;
        let seq = server.ledger.read().last_seq;
        let record = server.ledger.log().read(&server.ledger.database().snapshot(), seq).unwrap().unwrap();
        moments.push((seq, record.header.commit.committed_at.to_string(), got["list"][0].clone()));
    }
    server.call("x:Account/set", json!({"destroy": [doomed]})).await;
    let late = server.account(json!({"@type": "User", "name": "jane", "domainId": d})).await;

    for (seq, at, expected) in &moments {
        let (_, by_seq) = server.call("x:Account/get", json!({"ids": [id], "asOf": seq})).await;
        assert_eq!(&by_seq["list"][0], expected, "asOf {seq}");
        assert_eq!(by_seq["asOf"], *seq, "the resolved position is echoed");
        let (_, by_time) = server.call("x:Account/get", json!({"ids": [id], "asOf": at})).await;
        let expected_then = &moments.iter().rfind(|(_, t, _)| t <= at).unwrap().2;
        assert_eq!(&by_time["list"][0], expected_then, "asOf {at}");
    }
    let first = moments[0].0;
    let (_, q) = server
        .call("x:Account/query", json!({"asOf": first, "sort": [{"property": "name"}], "calculateTotal": true}))
        .await;
    assert_eq!(q["ids"], json!([id, doomed]), "ivan still existed, jane did not yet: {q}");
    let (_, q) = server.call("x:Account/query", json!({"asOf": first, "filter": {"text": "av2"}})).await;
    assert_eq!(q["ids"], json!([id]));
    let (_, now) = server.call("x:Account/query", json!({})).await;
    assert_eq!(now["ids"], json!([id, late]));
    let (_, gone) = server.call("x:Account/get", json!({"ids": [late], "asOf": first})).await;
    assert_eq!(gone["notFound"], json!([late]));
    let (name, e) = server.call("x:Account/get", json!({"ids": [id], "asOf": 999_999})).await;
    assert_eq!((name.as_str(), e["type"].as_str()), ("error", Some("invalidArguments")));
    server.stop().await;

    // A restore to the same position answers the same /get.
    let target = dir.path().join("restored");
    ledger::audit::restore::restore(
        ledger::audit::restore::Source::Store(&source),
        &target,
        Some(ledger::audit::export::Bound::Seq(first)),
        |_, _| {},
    )
    .unwrap();
    let restored = TestServer::start(&target).await;
    let (_, got) = restored.call("x:Account/get", json!({"ids": [id]})).await;
    assert_eq!(got["list"][0], moments[0].2);
    restored.stop().await;
}
