//! `/set` over HTTP: per-item SetErrors beside successes in one atomic commit,
//! patches, defaults and server-set fields, and secrets that never leak.

use serde_json::{Value, json};

use super::support::{TestServer, redact, snapshot_settings};

#[tokio::test(flavor = "multi_thread")]
async fn one_call_mixes_successes_and_every_set_error_in_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let taken = server.account(json!({"@type": "User", "name": "taken", "domainId": d})).await;
    let plain_user = server.account(json!({"@type": "User", "name": "plain", "domainId": d})).await;
    let (_, before) = server.call("x:Account/get", json!({"ids": []})).await;
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({
                "create": {
                    "ok1": {"@type": "User", "name": "alice", "domainId": d},
                    "ok2": {"@type": "Group", "name": "staff", "domainId": d, "aliases": [{"name": "team", "domainId": d}]},
                    "badLocale": {"@type": "User", "name": "b1", "domainId": d, "locale": "klingon"},
                    "badZone": {"@type": "User", "name": "b2", "domainId": d, "timeZone": "Mars/Base"},
                    "serverSet": {"@type": "User", "name": "b3", "domainId": d, "emailAddress": "b3@example.org"},
                    "unknownProp": {"@type": "User", "name": "b4", "domainId": d, "shoeSize": 42},
                    "noType": {"name": "b5", "domainId": d},
                    "badName": {"@type": "User", "name": "not valid", "domainId": d},
                    "taken": {"@type": "User", "name": "TAKEN", "domainId": d},
                    "noDomain": {"@type": "User", "name": "b6", "domainId": "zzz"},
                    "notAGroup": {"@type": "User", "name": "b7", "domainId": d, "memberGroupIds": [plain_user]},
                    "badIp": {"@type": "User", "name": "b8", "domainId": d, "credentials": [{"@type": "Password", "secret": "x", "allowedIps": ["300.1.1.1"]}]},
                    "overQuota": {"@type": "User", "name": "b9", "domainId": d, "quotas": {"maxApiKeys": 0},
                        "credentials": [{"@type": "ApiKey", "description": "ci", "permissions": {"@type": "Inherit"}}]},
                    "groupWithPassword": {"@type": "Group", "name": "b10", "domainId": d, "credentials": [{"@type": "Password", "secret": "x"}]}
                },
                "update": {
                    "zzzz": {"description": "nobody"},
                    (plain_user.clone()): {"quotas": {}, "quotas/maxEmails": 5},
                    (taken.clone()): {"emailAddress": "other@example.org"}
                },
                "destroy": ["nope", "zzzz"]
            }),
        )
        .await;
    let created = r["created"].as_object().unwrap();
    assert_eq!(created.keys().collect::<Vec<_>>(), ["ok1", "ok2"]);
    let not_created = &r["notCreated"];
    let expect = [
        ("badLocale", "invalidProperties", Some("locale")),
        ("badZone", "invalidProperties", Some("timeZone")),
        ("serverSet", "invalidProperties", Some("emailAddress")),
        ("unknownProp", "invalidProperties", Some("shoeSize")),
        ("noType", "invalidProperties", Some("@type")),
        ("badName", "validationFailed", Some("name")),
        ("taken", "primaryKeyViolation", Some("name")),
        ("noDomain", "invalidForeignKey", Some("domainId")),
        ("notAGroup", "invalidForeignKey", Some("memberGroupIds/0")),
        ("badIp", "invalidProperties", Some("credentials/0/allowedIps")),
        ("overQuota", "overQuota", None),
        ("groupWithPassword", "invalidProperties", Some("credentials")),
    ];
    for (id, kind, property) in expect {
        assert_eq!(not_created[id]["type"], kind, "{id}: {}", not_created[id]);
        if let Some(p) = property {
            assert_eq!(not_created[id]["properties"], json!([p]), "{id}");
        }
    }
    assert_eq!(not_created["taken"]["existingId"], taken);
    assert_eq!(not_created["taken"]["objectId"], json!({"object": "Account", "id": taken}));
    assert_eq!(not_created["badName"]["validationErrors"], json!([{"type": "Invalid", "property": "name"}]));
    assert_eq!(not_created["noDomain"]["objectId"]["object"], "Domain");
    assert_eq!(r["notUpdated"]["zzzz"]["type"], "notFound");
    assert_eq!(r["notUpdated"][&plain_user]["type"], "invalidPatch");
    assert_eq!(r["notUpdated"][&taken]["type"], "invalidProperties");
    assert_eq!(r["notDestroyed"]["nope"]["type"], "notFound");
    assert_eq!(r["oldState"], before["state"]);
    assert_ne!(r["newState"], r["oldState"]);

    // Both successes are one commit: every new record carries one commit id.
    let log = server.ledger.log();
    let snap = server.ledger.database().snapshot();
    let first: u64 = r["oldState"].as_str().unwrap().parse().unwrap();
    let last: u64 = r["newState"].as_str().unwrap().parse().unwrap();
    let commits: std::collections::BTreeSet<_> =
        (first + 1..=last).map(|s| log.read(&snap, s).unwrap().unwrap().header.commit.commit_id).collect();
    assert_eq!(commits.len(), 1, "positions {first}..={last}");

    // Destroying a domain that accounts still use is refused.
    let (_, r2) = server.call("x:Domain/set", json!({"destroy": [d]})).await;
    let linked = &r2["notDestroyed"][&d];
    assert_eq!(linked["type"], "objectIsLinked", "{linked}");
    assert_eq!(linked["objectId"], json!({"object": "Domain", "id": d}));
    assert!(
        linked["linkedObjects"].as_array().is_some_and(|l| !l.is_empty() && l.iter().all(|o| o["object"] == "Account")),
        "{linked}"
    );

    let mut shown = r.clone();
    redact(&mut shown);
    snapshot_settings().bind(|| insta::assert_json_snapshot!("jmap_set_errors", shown));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patches_change_exactly_what_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let id = server
        .account(
            json!({"@type": "User", "name": "frank", "domainId": d, "locale": "de_DE", "timeZone": "Europe/Berlin",
            "aliases": [{"name": "f", "domainId": d}], "quotas": {"maxEmails": 10}}),
        )
        .await;
    let (_, before) = server.call("x:Account/get", json!({"ids": [id]})).await;
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"update": {(id.clone()): {
                "aliases/0/name": "franky",
                "quotas/maxDiskQuota": 1000000,
                "locale": null,
                "description": "Updated",
                "id": id
            }}}),
        )
        .await;
    // `locale: null` reset it to its default: a value the client did not
    // name, so the server reports it (RFC 8620 §5.3).
    assert_eq!(r["updated"], json!({ (id.clone()): {"locale": "en_US"} }), "{r}");
    let (_, after) = server.call("x:Account/get", json!({"ids": [id]})).await;
    let (b, a) = (&before["list"][0], &after["list"][0]);
    assert_eq!(a["aliases"]["0"]["name"], "franky");
    assert_eq!(a["aliases"]["0"]["enabled"], true);
    assert_eq!(a["quotas"], json!({"maxEmails": 10, "maxDiskQuota": 1000000}));
    assert_eq!(a["locale"], "en_US", "null resets to the default");
    assert_eq!(a["timeZone"], b["timeZone"], "untouched fields stay");
    assert_eq!(a["createdAt"], b["createdAt"]);
    let types: Vec<String> = {
        let snap = server.ledger.database().snapshot();
        let last = server.ledger.read().last_seq;
        let first = last - 3;
        (first + 1..=last).map(|s| server.ledger.log().read(&snap, s).unwrap().unwrap().header.event_type).collect()
    };
    assert_eq!(types, ["AccountUpdated", "QuotaLimitSet", "AliasRenamed"]);

    // A rename by patch keeps the id and moves the address.
    let (_, r) = server.call("x:Account/set", json!({"update": {(id.clone()): {"name": "franklin"}}})).await;
    assert_eq!(r["updated"], json!({ (id.clone()): {"emailAddress": "franklin@example.org"} }), "the new address");
    let (_, q) = server.call("x:Account/query", json!({"filter": {"name": "frank"}})).await;
    assert_eq!(q["ids"], json!([id]));
    let (_, g) = server.call("x:Account/get", json!({"ids": [id], "properties": ["emailAddress"]})).await;
    assert_eq!(g["list"][0]["emailAddress"], "franklin@example.org");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_hashed_returned_once_and_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let password = "correct-horse-battery-staple";
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"u": {"@type": "User", "name": "grace", "domainId": d, "credentials": [
                {"@type": "Password", "secret": password},
                {"@type": "AppPassword", "description": "phone", "permissions": {"@type": "Inherit"}}
            ]}}}),
        )
        .await;
    let account = &r["created"]["u"];
    let id = account["id"].as_str().unwrap().to_owned();
    assert_eq!(account["credentials"]["0"]["secret"], "****", "a password is never echoed, only masked");
    let app_secret = account["credentials"]["1"]["secret"].as_str().expect("generated secret shown once").to_owned();
    assert!(app_secret.starts_with("lap_"));
    assert!(account["credentials"]["1"]["createdAt"].is_string());
    let (_, got) = server.call("x:Account/get", json!({"ids": [id]})).await;
    let masked: Vec<&Value> =
        got["list"][0]["credentials"].as_object().unwrap().values().map(|c| &c["secret"]).collect();
    assert_eq!(masked, [&json!("****"), &json!("****")], "{got}");
    assert!(!got.to_string().contains(password) && !got.to_string().contains(&app_secret), "{got}");

    // The stored password hash is argon2id and verifies.
    let stored = ledger_projections::state::account(
        &server.ledger.read().view,
        ledger_events::values::ObjectId::from_jmap(&id).unwrap(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        ledger::secrets::verify_password(password, &stored.credentials[0].secret_hash),
        ledger::secrets::Checked::Match
    );
    assert_eq!(stored.credentials[1].secret_hash, ledger::secrets::digest_generated(&app_secret));

    // Changing the password by patch, and adding an API key by patch.
    let new_password = "another-long-passphrase";
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"update": {(id.clone()): {
                "credentials/0/secret": new_password,
                "credentials/2": {"@type": "ApiKey", "description": "ci", "permissions": {"@type": "Inherit"}}
            }}}),
        )
        .await;
    let key = r["updated"][&id]["credentials"]["2"]["secret"].as_str().expect("new key shown once").to_owned();
    assert!(key.starts_with("lak_"));
    assert_eq!(r["updated"][&id]["credentials"]["1"]["secret"], "****", "old secrets are not shown again");
    server.stop().await;
    for secret in [password, new_password, &app_secret, &key] {
        let hits = super::support::files_containing(dir.path(), secret.as_bytes());
        assert!(hits.is_empty(), "{secret} found in {hits:?}");
    }
}

/// One resolver for `#creationId`s, wherever an id goes: keys, `domainId`,
/// `memberGroupIds`, alias domains, `roles.roleIds`, filters, and `/get` ids.
#[tokio::test(flavor = "multi_thread")]
async fn creation_ids_resolve_in_keys_and_in_every_id_value() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let body = server
        .request(json!([
            ["x:Domain/set", {"create": {"d1": {"name": "example.org"}}}, "c1"],
            ["x:Role/set", {"create": {"r1": {"description": "helpdesk", "enabledPermissions": ["sysAccountGet"]}}}, "c2"],
            ["x:Account/set", {"create": {
                "g1": {"@type": "Group", "name": "staff", "domainId": "#d1"},
                "u1": {"@type": "User", "name": "alice", "domainId": "#d1", "memberGroupIds": ["#g1"],
                       "aliases": [{"name": "info", "domainId": "#d1"}],
                       "roles": {"@type": "Custom", "roleIds": ["#r1"]}},
                "bad": {"@type": "User", "name": "bob", "domainId": "#d1", "roles": {"@type": "Custom", "roleIds": ["#nope"]}}
            }}, "c3"],
            ["x:Account/get", {"ids": ["#u1", "#nope"], "properties": ["roles", "memberGroupIds", "domainId"]}, "c4"],
            ["x:Account/query", {"filter": {"memberGroupIds": "#g1"}}, "c5"],
            ["x:Account/set", {"update": {"#u1": {"description": "via reference"}}, "destroy": ["#nope"]}, "c6"]
        ]))
        .await;
    let r = &body["methodResponses"];
    let domain = r[0][1]["created"]["d1"]["id"].as_str().unwrap();
    let role = r[1][1]["created"]["r1"]["id"].as_str().unwrap();
    let accounts = &r[2][1];
    let (group, user) =
        (accounts["created"]["g1"]["id"].as_str().unwrap(), accounts["created"]["u1"]["id"].as_str().unwrap());
    assert_eq!(accounts["created"]["u1"]["roles"], json!({"@type": "Custom", "roleIds": {role: true}}), "{accounts}");
    assert_eq!(accounts["created"]["u1"]["memberGroupIds"], json!({group: true}));
    assert_eq!(accounts["created"]["u1"]["aliases"]["0"]["domainId"], json!(domain));
    let bad = &accounts["notCreated"]["bad"];
    assert_eq!(
        (bad["type"].as_str(), &bad["properties"]),
        (Some("invalidProperties"), &json!(["roles/roleIds/0"])),
        "{bad}"
    );
    assert_eq!(bad["description"], "creation id #nope was not created in this request");
    let got = &r[3][1];
    assert_eq!(got["list"][0]["id"], json!(user), "{got}");
    assert_eq!(got["list"][0]["roles"]["roleIds"], json!({role: true}));
    assert_eq!(got["notFound"], json!(["#nope"]));
    assert_eq!(r[4][1]["ids"], json!([user]), "{}", r[4][1]);
    let updated = &r[5][1];
    assert!(updated["updated"].get(user).is_some(), "{updated}");
    assert_eq!(updated["notDestroyed"]["#nope"]["type"], "notFound");
    server.stop().await;
}

/// Fixed properties name themselves in the refusal, with the right article.
#[tokio::test(flavor = "multi_thread")]
async fn fixed_properties_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let id = server.account(json!({"@type": "User", "name": "alice", "domainId": d})).await;
    let (_, r) = server.call("x:Account/set", json!({"update": {(id.clone()): {"@type": "Group"}}})).await;
    let e = &r["notUpdated"][&id];
    assert_eq!((e["type"].as_str(), &e["properties"]), (Some("invalidProperties"), &json!(["@type"])), "{r}");
    assert_eq!(e["description"], "an account's @type cannot change", "{r}");
    let (_, r) = server.call("x:Domain/set", json!({"update": {(d.clone()): {"name": "other.example"}}})).await;
    let e = &r["notUpdated"][&d];
    assert_eq!((e["type"].as_str(), &e["properties"]), (Some("invalidProperties"), &json!(["name"])), "{r}");
    assert_eq!(e["description"], "a domain's name cannot change", "{r}");
    let (_, r) = server.call("x:Account/set", json!({"update": {(id.clone()): {"createdAt": null}}})).await;
    assert_eq!(r["notUpdated"][&id]["properties"], json!(["createdAt"]), "a server-set property cannot be reset: {r}");
    server.stop().await;
}
