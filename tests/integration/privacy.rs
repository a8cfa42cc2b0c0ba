//! Privacy of the log (issue 14): no erased value stays on disk or can be
//! guessed, no secret leaves to a reader who could not `/get` it, no client
//! text reaches a record header unbounded.

use serde_json::{Value, json};

use super::support::{TestServer, files_containing};

/// Creates a user with an alias and a description, all carrying `marker`.
async fn marked_account(server: &TestServer, domain: &str, marker: &str) -> String {
    server
        .account(json!({"@type": "User", "name": marker, "domainId": domain,
            "description": format!("notes-{marker}"),
            "aliases": [{"name": format!("{marker}-alias"), "domainId": domain}]}))
        .await
}

/// A fresh server with one domain and one account marked with `marker`.
async fn server_with_marked_account(marker: &str) -> (tempfile::TempDir, TestServer, String) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let id = marked_account(&server, &d, marker).await;
    (dir, server, id)
}

fn assert_gone(dir: &std::path::Path, marker: &str) {
    let hits = files_containing(dir, marker.as_bytes());
    assert!(hits.is_empty(), "{marker} is still on disk after the erasure was acknowledged: {hits:?}");
}

/// Erases `ids` (which name `id`), expects exactly `id` erased, and no file
/// under `dir` to hold `marker` once that is acknowledged.
async fn erase_leaving_no_byte(server: &TestServer, dir: &std::path::Path, ids: Value, id: &str, marker: &str) {
    let (_, r) = server.call("x:Database/erase", json!({ "ids": ids })).await;
    assert_eq!(r["erased"], json!([id]), "{r}");
    assert!(r["notErased"].is_null(), "{r}");
    assert_gone(dir, marker);
}

#[tokio::test(flavor = "multi_thread")]
async fn erase_of_a_live_account_leaves_no_byte_while_serving() {
    let (dir, server, id) = server_with_marked_account("zq1234abcd").await;
    erase_leaving_no_byte(&server, dir.path(), json!([id]), &id, "zq1234abcd").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_then_erase_leaves_no_byte_while_serving() {
    let (dir, server, id) = server_with_marked_account("zq5678efgh").await;
    let (_, r) = server.call("x:Account/set", json!({"destroy": [id]})).await;
    assert_eq!(r["destroyed"], json!([id]), "{r}");
    erase_leaving_no_byte(&server, dir.path(), json!([id]), &id, "zq5678efgh").await;
    server.stop().await;
}

/// A reader that began before an erasure (an export streaming from a snapshot
/// that holds the erased data) would make the compaction keep that data; the
/// erasure waits for it to end, and is acknowledged only once no file holds
/// the data.
#[tokio::test(flavor = "multi_thread")]
async fn erasure_waits_for_a_reader_that_began_before_it() {
    let (dir, server, id) = server_with_marked_account("zq9999wxyz").await;
    let held = server.ledger.read();
    let mut positions = server.ledger.subscribe();
    let acknowledged = std::cell::Cell::new(false);
    let erase = async {
        let answer = server.call("x:Database/erase", json!({"ids": [id]})).await;
        acknowledged.set(true);
        answer
    };
    let reader = async {
        // The erasure is committed...
        positions.wait_for(|p| *p > held.last_seq).await.unwrap();
        // ...but not acknowledged while the older reader holds its snapshot.
        assert!(!acknowledged.get(), "erasure acknowledged while a reader still held the erased data");
        drop(held);
    };
    let ((_, answer), ()) = tokio::join!(erase, reader);
    assert_eq!(answer["erased"], json!([id]), "{answer}");
    assert_gone(dir.path(), "zq9999wxyz");
    server.stop().await;
}

/// Input 2: an auditor (or anyone holding an export) tries to confirm which
/// name an erased account had, by rebuilding its AccountCreated payload from a
/// same-shaped neighbour and the public facts, and checking the guesses
/// against what survived erasure. The rebuilt payload is exact, yet nothing
/// left confirms it.
#[tokio::test(flavor = "multi_thread")]
async fn an_erased_name_cannot_be_confirmed_from_an_export() {
    use ledger_events::codec::{decode_header, payload_hash_v1, payload_hash_v2};

    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let anna = server.account(json!({"@type": "User", "name": "anna.schmidt", "domainId": d})).await;
    let karl = server.account(json!({"@type": "User", "name": "karl.meier", "domainId": d})).await;
    let lines = |text: &str| text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).collect::<Vec<_>>();
    let created = |lines: &[Value], id: &str| {
        lines.iter().find(|l| l["type"] == "AccountCreated" && l["payload"]["accountId"] == id).cloned()
    };
    // Kept only to show the rebuilt payload is byte-exact: the attacker lacks it.
    let before = server.get("/api/audit/export").await.text().await.unwrap();
    let truth = created(&lines(&before), &karl).unwrap();
    let true_payload = before
        .lines()
        .find(|l| l.contains(&format!("\"seq\":{},", truth["seq"])))
        .and_then(|l| l.split_once(",\"payload\":"))
        .map(|(_, p)| p.strip_suffix('}').unwrap().to_owned())
        .unwrap();

    let (_, r) = server.call("x:Database/erase", json!({"ids": [karl]})).await;
    assert_eq!(r["erased"], json!([karl]), "{r}");
    let after = server.get("/api/audit/export").await.text().await.unwrap();
    assert!(!after.contains("karl"), "the export names the erased account");
    let all = lines(&after);
    let erased = all.iter().find(|l| l["type"] == "AccountErased").unwrap();
    let erased_id = erased["payload"]["accountId"].as_str().unwrap();
    let target_seq = erased["payload"]["erased"][0]["position"].clone();
    let target = all.iter().find(|l| l["seq"] == target_seq).unwrap();
    assert_eq!(target["type"], "AccountCreated");
    assert!(target["payload"].is_null() && target.get("payloadSalt").is_none(), "{target}");
    let header = decode_header(&hex::decode(target["header"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(header.payload_len, None, "no length survives to narrow the guess");

    // The neighbour's payload text, with everything the public facts give.
    let neighbour = after
        .lines()
        .find(|l| l.contains("\"type\":\"AccountCreated\"") && l.contains(&format!("\"accountId\":\"{anna}\"")))
        .and_then(|l| l.split_once(",\"payload\":"))
        .map(|(_, p)| p.strip_suffix('}').unwrap().to_owned())
        .unwrap();
    let anna_line = created(&all, &anna).unwrap();
    let anna_created_at = anna_line["payload"]["createdAt"].as_str().unwrap().to_owned();
    let rebuild = |name: &str| {
        neighbour
            .replace(&format!("\"accountId\":\"{anna}\""), &format!("\"accountId\":\"{erased_id}\""))
            .replace("anna.schmidt", name)
            .replace(&anna_created_at, target["committedAt"].as_str().unwrap())
    };
    assert_eq!(rebuild("karl.meier"), true_payload, "the rebuilt payload is exact");

    let salts: Vec<[u8; 32]> = all
        .iter()
        .filter_map(|l| l["payloadSalt"].as_str())
        .map(|s| hex::decode(s).unwrap().try_into().unwrap())
        .collect();
    assert!(!salts.is_empty());
    let guesses = ["anna.schmidt", "karl.meier", "karl", "k.meier", "meier", "kmeier", "karl.mayer", "carl.meier"];
    for guess in guesses {
        let candidate = rebuild(guess);
        assert_ne!(payload_hash_v1(candidate.as_bytes()), header.payload_hash, "{guess} confirmed (unsalted)");
        for salt in &salts {
            assert_ne!(payload_hash_v2(salt, candidate.as_bytes()), header.payload_hash, "{guess} confirmed");
        }
    }
    server.stop().await;
}

/// Input 3: whoever follows the feed, takes an export or reads history gets no
/// secret material (password hashes, key digests, sealed TOTP seeds), and the
/// export still verifies in full.
#[tokio::test(flavor = "multi_thread")]
async fn no_secret_material_leaves_through_feed_export_or_history() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let uri = "otpauth://totp/ledger:sec?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ledger";
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"a": {"@type": "User", "name": "sec", "domainId": d, "roles": {"@type": "Admin"},
                "credentials": [
                    {"@type": "Password", "secret": "a long password", "otpAuth": uri},
                    {"@type": "AppPassword", "description": "phone", "permissions": {"@type": "Inherit"}},
                    {"@type": "ApiKey", "description": "feed", "permissions": {"@type": "Replace", "permissions": ["sysFeedRead"]}}
                ]}}}),
        )
        .await;
    let account = &r["created"]["a"];
    let id = account["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let key = format!("Bearer {}", account["credentials"]["2"]["secret"].as_str().unwrap());
    server.call("x:Account/set", json!({"update": {&id: {"credentials/0/secret": "another long password"}}})).await;

    let leaks =
        |text: &str| ["$argon2", "blake3:", "xc1:", "JBSWY3DP"].into_iter().filter(|m| text.contains(m)).count();
    let feed = server
        .client()
        .get(format!("{}/api/feed?after=0&follow=false", server.url))
        .header("authorization", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let feed = feed.text().await.unwrap();
    assert!(feed.contains("CredentialAdded") && feed.contains("CredentialUpdated"), "{feed}");
    assert_eq!(leaks(&feed), 0, "{feed}");
    let export = server.get("/api/audit/export").await.text().await.unwrap();
    assert_eq!(leaks(&export), 0, "{export}");
    let verified = ledger::audit::verify::verify_export(&export, None).unwrap();
    assert_eq!((verified.redacted, verified.erased), (0, 0), "every payload is checked against its hash");
    let (_, history) = server.call("x:AccountHistory/get", json!({"ids": [id]})).await;
    assert_eq!(leaks(&history.to_string()), 0, "{history}");
    assert!(history.to_string().contains("\"secretHash\":\"changed\""), "{history}");
    // Logins still work: the secrets kept beside the payloads are folded in.
    let (status, _, _) = server.call_as(&key, "Core/echo", json!({})).await;
    assert_eq!(status, 200);
    server.stop().await;
}

/// Input 4: client-chosen text bound for a record header is bounded: a call
/// id or `X-Request-Id` over 64 bytes (or with anything but printable ASCII) is
/// `invalidArguments`, and nothing is written.
#[tokio::test(flavor = "multi_thread")]
async fn long_call_and_request_ids_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let id = server
        .account(json!({"@type": "User", "name": "u", "domainId": d,
            "credentials": [{"@type": "Password", "secret": "u password 1"}]}))
        .await;
    let me = super::support::basic("u@example.org", "u password 1");
    let before = server.ledger.read().last_seq;
    let create = json!({"update": {&id: {"credentials/1": {"@type": "AppPassword", "description": "app", "permissions": {"@type": "Inherit"}}}}});
    let long = "x".repeat(1_000_000);
    for call_id in [long.as_str(), "a\u{1b}[2Jforged", &"y".repeat(65), "a\u{2028}b", "\u{202e}gnp.exe"] {
        let body = json!({"using": super::support::USING, "methodCalls": [["x:Account/set", create, call_id]]});
        let (status, answer) = server.post_as(Some(&me), None, body.to_string()).await;
        assert_eq!(status, 200);
        let response = &answer["methodResponses"][0];
        assert_eq!(response[0], "error", "{}", &answer.to_string()[..200]);
        assert_eq!(response[1]["type"], "invalidArguments");
        assert_eq!(response[2], call_id, "the call id is still echoed");
    }
    let body = json!({"using": super::support::USING, "methodCalls": [["x:Account/set", create, "c1"]]});
    let response = server
        .client()
        .post(format!("{}/api", server.url))
        .header("authorization", &me)
        .header("content-type", "application/json")
        .header("x-request-id", "r".repeat(65))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["methodResponses"][0][1]["type"], "invalidArguments", "{answer}");
    assert_eq!(server.ledger.read().last_seq, before, "nothing was written");

    // At the bound, both are kept as given.
    let call_id = "c".repeat(64);
    let body = json!({"using": super::support::USING, "methodCalls": [["x:Account/set", create, call_id]]});
    let response = server
        .client()
        .post(format!("{}/api", server.url))
        .header("authorization", &me)
        .header("content-type", "application/json")
        .header("x-request-id", "r".repeat(64))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert!(answer["methodResponses"][0][1]["updated"].get(&id).is_some(), "{answer}");
    let (_, history) = server.call("x:AccountHistory/get", json!({"ids": [id]})).await;
    let last = history["list"][0]["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["callId"].as_str(), last["requestId"].as_str()), (Some(&*call_id), Some(&*"r".repeat(64))));
    server.stop().await;
}

/// After a restart (fjall starts with no garbage-collection watermark), an
/// erasure still completes and leaves no byte.
#[tokio::test(flavor = "multi_thread")]
async fn erasure_after_a_restart_leaves_no_byte() {
    let (dir, server, id) = server_with_marked_account("zq4321dcba").await;
    server.stop().await;
    let server = TestServer::start(dir.path()).await;
    erase_leaving_no_byte(&server, dir.path(), json!([id]), &id, "zq4321dcba").await;
    server.stop().await;
}

/// An account whose change tracking purge has trimmed (the default keeps 90
/// days) is still erased in full, and replay still equals live.
#[tokio::test(flavor = "multi_thread")]
async fn erasure_after_change_tracking_was_trimmed() {
    let (dir, server, id) = server_with_marked_account("zq8765trim").await;
    let (_, r) = server.call("x:Database/purge", json!({"trimChangesBefore": 100})).await;
    assert!(r["changesFrom"].is_string() || r["changesFrom"].is_number(), "{r}");
    // The same id twice is erased once.
    erase_leaving_no_byte(&server, dir.path(), json!([id, id]), &id, "zq8765trim").await;
    let live = server.ledger.projections().dump(&server.ledger.database().snapshot()).unwrap();
    server.stop().await;
    for chunk in [u64::MAX, 2] {
        ledger::store::rebuild_in_chunks(dir.path(), chunk, &mut |_, _| {}).unwrap();
        let ledger = ledger::Ledger::open(dir.path(), ledger::Durability::Fsync).unwrap();
        let replayed = ledger.projections().dump(&ledger.database().snapshot()).unwrap();
        assert!(live == replayed, "replay in chunks of {chunk} differs from live after erasing a trimmed history");
        ledger.shutdown();
    }
    let ledger = ledger::Ledger::open(dir.path(), ledger::Durability::Fsync).unwrap();
    ledger.shutdown();
}

/// A crash during an erasure can leave its scratch keyspace behind with
/// filler nobody flushes, which would keep fjall's journal (and the erased
/// data in it) for ever: the next open drops it, and erasing again works.
#[tokio::test(flavor = "multi_thread")]
async fn erasure_after_a_crash_left_its_scratch_keyspace() {
    let (dir, server, id) = server_with_marked_account("zq2468scratch").await;
    // What a crash between the filler and its flush leaves: a scratch keyspace
    // with an unflushed memtable (a clean stop flushes only the ledger's own).
    let db = server.ledger.database();
    let scratch = db.keyspace(ledger::store::SCRATCH_KEYSPACE, fjall::KeyspaceCreateOptions::default).unwrap();
    scratch.insert([1u8], [2u8; 64]).unwrap();
    drop(scratch);
    server.stop().await;
    let server = TestServer::start(dir.path()).await;
    assert!(!server.ledger.database().keyspace_exists(ledger::store::SCRATCH_KEYSPACE));
    erase_leaving_no_byte(&server, dir.path(), json!([id]), &id, "zq2468scratch").await;
    server.stop().await;
}

/// An `X-Request-Id` that is not ASCII is refused like a long one, not
/// silently replaced.
#[tokio::test(flavor = "multi_thread")]
async fn a_non_ascii_request_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let body = json!({"using": super::support::USING,
        "methodCalls": [["x:Domain/set", {"create": {"d": {"name": "example.org"}}}, "c1"]]});
    let response = server
        .client()
        .post(format!("{}/api", server.url))
        .header("authorization", super::support::admin_auth())
        .header("content-type", "application/json")
        .header("x-request-id", reqwest::header::HeaderValue::from_bytes("ré".as_bytes()).unwrap())
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["methodResponses"][0][1]["type"], "invalidArguments", "{answer}");
    assert_eq!(server.ledger.read().last_seq, 0, "nothing was written");
    server.stop().await;
}
