//! On-disk format compatibility. Each `tests/fixtures/store-vN` is a data
//! directory written by the build that introduced record format N (fjall 3):
//! `store-v1` (format 1, the event schema versions of 2026-11-30 before the
//! privacy change) and `store-v2` (format 2: salted payload hashes, secrets
//! beside the payload, CredentialAdded/Updated v3). Every later build must open
//! each, verify its chain, replay it to the very projections it holds, and show
//! the same directory through JMAP. A format change that breaks this needs an
//! upcaster, not a new fixture.
//!
//! The fixtures were made by `write_format_fixture` below, through the JMAP API:
//! `LEDGER_FIXTURE_OUT=$PWD/tests/fixtures/store-vN cargo test --test integration
//! write_format_fixture -- --ignored`, then the journal's preallocated zero tail
//! cut off. A fixture is never regenerated to make a test pass; a new record
//! format adds a new one.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::support::{TestServer, basic, snapshot_settings};

fn fixture() -> PathBuf {
    fixture_of(1)
}

fn fixture_of(format: u8) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/store-v{format}"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Builds the fixture's history: every event type of format 1, several actors
/// and authentication methods, an erased account, trimmed change tracking.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "writes the committed fixture; run by hand, see the module docs"]
async fn write_format_fixture() {
    let out = PathBuf::from(std::env::var("LEDGER_FIXTURE_OUT").expect("set LEDGER_FIXTURE_OUT"));
    assert!(!out.exists(), "{} exists; the fixture is written once", out.display());
    let server = TestServer::start(&out).await;
    let ok = |r: &Value, key: &str| assert!(r[key].is_object(), "{r}");

    // Domains: created, described, one destroyed.
    let org = server.domain("example.org").await;
    let net = server.domain("example.net").await;
    let gone = server.domain("gone.example").await;
    let (_, r) = server
        .call("x:Domain/set", json!({"update": {(org.clone()): {"description": "Main"}}, "destroy": [gone]}))
        .await;
    ok(&r, "updated");

    // Roles: created, renamed, one destroyed.
    let (_, r) = server
        .call(
            "x:Role/set",
            json!({"create": {
                "helpdesk": {"description": "helpdesk",
                             "enabledPermissions": ["sysAccountGet", "sysAccountQuery", "sysAccountUpdate"]},
                "temp": {"description": "temp", "enabledPermissions": []}}}),
        )
        .await;
    let helpdesk = r["created"]["helpdesk"]["id"].as_str().unwrap().to_owned();
    let temp = r["created"]["temp"]["id"].as_str().unwrap().to_owned();
    let (_, r) = server
        .call("x:Role/set", json!({"update": {(helpdesk.clone()): {"description": "help-desk"}}, "destroy": [temp]}))
        .await;
    ok(&r, "updated");

    // A group, and users with every kind of credential.
    let staff =
        server.account(json!({"@type": "Group", "name": "staff", "domainId": org, "description": "Everyone"})).await;
    let uri = "otpauth://totp/ledger:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ledger";
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"alice": {
                "@type": "User", "name": "alice", "domainId": org, "description": "Sales lead",
                "locale": "de_DE", "timeZone": "Europe/Berlin", "memberTenantId": "t1",
                "roles": {"@type": "Custom", "roleIds": [helpdesk]},
                "permissions": {"@type": "Merge", "enabledPermissions": ["sysDomainGet"], "disabledPermissions": []},
                "quotas": {"maxDiskQuota": 1000000, "maxEmails": 5000},
                "memberGroupIds": [staff],
                "aliases": [{"name": "info", "domainId": org}, {"name": "sales", "domainId": net, "enabled": false}],
                "credentials": [
                    {"@type": "Password", "secret": "alice-password", "otpAuth": uri},
                    {"@type": "AppPassword", "description": "phone", "permissions": {"@type": "Inherit"}},
                    {"@type": "ApiKey", "description": "reports", "allowedIps": ["10.0.0.0/8"],
                     "permissions": {"@type": "Replace", "permissions": ["sysAccountGet"]}}]}}}),
        )
        .await;
    let alice = r["created"]["alice"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let bob = server
        .account(json!({"@type": "User", "name": "bob", "domainId": org,
            "aliases": [{"name": "robert", "domainId": org}],
            "credentials": [{"@type": "Password", "secret": "bob-password"},
                            {"@type": "AppPassword", "description": "old", "permissions": {"@type": "Inherit"}}]}))
        .await;
    let carol = server
        .account(json!({"@type": "User", "name": "carol", "domainId": net, "description": "zq1234abcd",
            "aliases": [{"name": "c", "domainId": net}],
            "credentials": [{"@type": "Password", "secret": "carol-password"}]}))
        .await;

    // Bob's life: renamed, aliases renamed, disabled and removed, a credential
    // changed and one removed, groups, roles, permissions and quotas changed.
    let (_, r) = server.call("x:Account/get", json!({"ids": [bob.clone()]})).await;
    let credentials = r["list"][0]["credentials"].clone();
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"update": {(bob.clone()): {
                "name": "robert.b", "domainId": net,
                "aliases": [{"name": "rob", "domainId": org, "description": "short"}],
                "credentials": [
                    {"@type": "Password", "id": credentials[0]["id"], "secret": "bob-new-password",
                     "expiresAt": "2999-01-01T00:00:00Z", "allowedIps": ["192.0.2.0/24"]}],
                "memberGroupIds": [staff],
                "roles": {"@type": "Admin"},
                "permissions": {"@type": "Replace", "enabledPermissions": ["sysAccountGet"], "disabledPermissions": []},
                "quotas": {"maxDiskQuota": 2000}}}}),
        )
        .await;
    ok(&r, "updated");
    let (_, r) = server.call("x:Account/set", json!({"update": {(bob.clone()): {"aliases/0/enabled": false}}})).await;
    ok(&r, "updated");

    // Alice changes her own app password, signed in with her password and TOTP
    // code: an account actor, recorded by id.
    let totp = totp_rs::TOTP::from_url_unchecked(uri).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let alice_auth = basic("alice@example.org", &format!("alice-password${}", totp.generate(now)));
    let (status, _, r) = server
        .call_as(
            &alice_auth,
            "x:Account/set",
            json!({"update": {(alice.clone()): {"credentials/1/description": "tablet"}}}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    ok(&r, "updated");

    // Usage: reported, then past the limit (QuotaExceeded).
    let (_, r) = server
        .call(
            "x:Account/reportUsage",
            json!({"reports": [{"id": bob, "quota": "maxDiskQuota", "delta": 1500},
                               {"id": alice, "quota": "maxEmails", "used": 12}]}),
        )
        .await;
    assert!(r["accepted"].is_object(), "{r}");
    let (_, r) = server
        .call("x:Account/reportUsage", json!({"reports": [{"id": bob, "quota": "maxDiskQuota", "delta": 800}]}))
        .await;
    assert_eq!(r["accepted"]["0"]["exceeded"], json!(true), "{r}");

    // Carol is destroyed and erased.
    let (_, r) = server.call("x:Database/erase", json!({"ids": [carol]})).await;
    assert_eq!(r["erased"], json!([carol]), "{r}");

    // Change tracking before bob's creation is trimmed.
    let (_, r) = server.call("x:Database/purge", json!({"trimChangesBefore": 3})).await;
    assert_eq!(r["changesFrom"], json!(3), "{r}");
    server.stop().await;
}

/// What the directory looks like through JMAP, for the snapshot.
async fn directory(server: &TestServer) -> Value {
    let (_, accounts) = server.call("x:Account/get", json!({})).await;
    let (_, domains) = server.call("x:Domain/get", json!({})).await;
    let (_, roles) = server.call("x:Role/get", json!({})).await;
    // Every id the fixture handed out: accounts (the erased one too) have a history.
    let ids: Vec<String> = (1..24u64).map(|n| ledger_events::values::ObjectId(n).to_jmap()).collect();
    let (_, history) = server.call("x:AccountHistory/get", json!({"ids": ids})).await;
    let (_, changes) = server.call("x:Account/changes", json!({"sinceState": "2"})).await;
    let (_, query) = server
        .call(
            "x:Account/query",
            json!({"filter": {"text": "robert"}, "sort": [{"property": "name"}], "calculateTotal": true}),
        )
        .await;
    let mut history = history;
    for entry in history["list"].as_array_mut().unwrap() {
        for event in entry["events"].as_array_mut().unwrap() {
            // Request ids of the generator's run are uuids; the rest is fixed by the fixture.
            event["requestId"] = json!("[request]");
        }
    }
    json!({
        "accounts": accounts["list"], "accountState": accounts["state"],
        "domains": domains["list"], "roles": roles["list"],
        "history": history["list"], "historyNotFound": history["notFound"],
        "changes": changes, "query": query,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_format_1_store_opens_verifies_and_replays_to_the_same_state() {
    opens_verifies_and_replays(1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_format_2_store_opens_verifies_and_replays_to_the_same_state() {
    opens_verifies_and_replays(2).await;
}

async fn opens_verifies_and_replays(format: u8) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture_of(format), dir.path());

    // Open as it was written: the chain verifies end to end (projections of
    // an older layout are rebuilt from the log on open).
    let (stored, last_seq) = {
        let ledger = ledger::Ledger::open(dir.path(), ledger::Durability::Fsync).unwrap();
        let (tail, checked) = ledger.verify().unwrap();
        assert_eq!(checked, tail.next_seq - 1);
        let stored = ledger.projections().dump(&ledger.database().snapshot()).unwrap();
        let last = ledger.read().last_seq;
        ledger.shutdown();
        (stored, last)
    };
    assert!(last_seq > 40, "the fixture holds its whole history ({last_seq} records)");

    // Replay from the log alone gives the projections the old build wrote.
    assert_eq!(ledger::store::rebuild(dir.path()).unwrap(), last_seq);
    let ledger = ledger::Ledger::open(dir.path(), ledger::Durability::Fsync).unwrap();
    let replayed = ledger.projections().dump(&ledger.database().snapshot()).unwrap();
    assert_eq!(stored.len(), replayed.len());
    assert!(stored == replayed, "replaying the format-{format} log gives other projections than it was written with");
    ledger.shutdown();
    drop(ledger);

    // And JMAP shows the same directory as on the day it was written.
    let server = TestServer::start(dir.path()).await;
    let seen = directory(&server).await;
    snapshot_settings().bind(|| insta::assert_json_snapshot!(format!("format_{format}_directory"), seen));
    server.stop().await;
}

/// Records of format 2 follow the format-1 records in one chain: the old
/// secrets still sign users in, an export verifies across the boundary and
/// carries no secret of either format (the old records' secret fields are
/// redacted and say so), and erasing an account of the old format leaves no
/// byte of it.
#[tokio::test(flavor = "multi_thread")]
async fn format_2_records_follow_format_1_records() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), dir.path());
    let server = TestServer::start(dir.path()).await;
    let first_new = server.ledger.read().last_seq + 1;
    let d = server.domain("example.com").await;
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"n": {"@type": "User", "name": "newcomer", "domainId": d,
                "credentials": [{"@type": "Password", "secret": "newcomer-password"}]}}}),
        )
        .await;
    assert!(r["created"]["n"]["id"].is_string(), "{r}");

    // Secrets of both formats sign in (alice's TOTP seed is sealed in format 1).
    let uri = "otpauth://totp/ledger:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ledger";
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let code = totp_rs::TOTP::from_url_unchecked(uri).unwrap().generate(now);
    for auth in [
        basic("alice@example.org", &format!("alice-password${code}")),
        basic("newcomer@example.com", "newcomer-password"),
    ] {
        let (status, _, _) = server.call_as(&auth, "Core/echo", json!({})).await;
        assert_eq!(status, 200);
    }

    let export = server.get("/api/audit/export").await.text().await.unwrap();
    for secret in ["$argon2", "blake3:", "xc1:"] {
        assert!(!export.contains(secret), "{secret} in the export");
    }
    let verified = ledger::audit::verify::verify_export(&export, None).unwrap();
    assert!(verified.redacted > 0, "the old credential records are redacted");
    let formats: Vec<(u64, String)> = export
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|l| Some((l["seq"].as_u64()?, l["header"].as_str()?[..2].to_owned())))
        .collect();
    assert!(formats.iter().all(|(seq, f)| f == if *seq < first_new { "01" } else { "02" }), "{formats:?}");

    // Erasing an account whose records are all of format 1.
    let (_, found) = server.call("x:Account/query", json!({"filter": {"name": "alice"}})).await;
    let alice = found["ids"][0].as_str().unwrap_or_else(|| panic!("{found}")).to_owned();
    let (_, r) = server.call("x:Database/erase", json!({"ids": [alice]})).await;
    assert_eq!(r["erased"], json!([alice]), "{r}");
    for marker in ["Sales lead", "alice"] {
        let hits = super::support::files_containing(dir.path(), marker.as_bytes());
        assert!(hits.is_empty(), "{marker} still on disk: {hits:?}");
    }
    server.stop().await;
}
