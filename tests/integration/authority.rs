//! Authorization against the real server: no write leaves a principal with a
//! right, an address range or a lifetime its writer lacks; the second factor
//! guards the Password; disabled permissions win over a member's `Replace`.
//! Each test is one of the failing inputs of the authorization review, with the
//! answer it must get.

use serde_json::{Value, json};

use super::support::{TestServer, basic};

/// Creates a role and returns its id.
async fn role(server: &TestServer, name: &str, permissions: &[&str]) -> String {
    let (_, r) = server
        .call("x:Role/set", json!({"create": {"r": {"description": name, "enabledPermissions": permissions}}}))
        .await;
    r["created"]["r"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
}

/// Creates a user with `extra` fields and one ApiKey narrowed by `key`;
/// returns (id, `Bearer` header of the key).
async fn user_with_key(server: &TestServer, name: &str, domain: &str, extra: Value, key: Value) -> (String, String) {
    let mut object = json!({"@type": "User", "name": name, "domainId": domain, "credentials": [
        {"@type": "ApiKey", "description": "key", "permissions": key}]});
    for (k, v) in extra.as_object().unwrap() {
        object[k] = v.clone();
    }
    let (_, r) = server.call("x:Account/set", json!({"create": {"a": object}})).await;
    let a = &r["created"]["a"];
    let secret = a["credentials"]["0"]["secret"].as_str().unwrap_or_else(|| panic!("{r}"));
    (a["id"].as_str().unwrap().to_owned(), format!("Bearer {secret}"))
}

fn inherit() -> Value {
    json!({"@type": "Inherit"})
}

/// The SetError of one item of a `/set` answer.
fn refusal<'a>(answer: &'a Value, kind: &str, key: &str) -> &'a Value {
    &answer[kind][key]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_writer_cannot_create_an_account_with_rights_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let r = role(&server, "helpdesk", &["sysAccountGet", "sysAccountCreate", "sysAccountQuery"]).await;
    let (_, bob) =
        user_with_key(&server, "bob", &d, json!({"roles": {"@type": "Custom", "roleIds": [r]}}), inherit()).await;
    let eve = |roles: Value| {
        json!({"create": {"e": {"@type": "User", "name": "eve", "domainId": d, "roles": roles,
            "credentials": [{"@type": "ApiKey", "description": "k", "permissions": {"@type": "Inherit"}}]}}})
    };
    let (_, _, answer) = server.call_as(&bob, "x:Account/set", eve(json!({"@type": "Admin"}))).await;
    let error = refusal(&answer, "notCreated", "e");
    assert_eq!(error["type"], "forbidden", "{answer}");
    assert!(error["description"].as_str().unwrap().contains("every permission"), "{error}");
    let (_, found) = server.call("x:Account/query", json!({"filter": {"name": "eve"}})).await;
    assert_eq!(found["ids"], json!([]), "nothing of the refused create is kept");
    // A User holds the User role's self-service rights, which bob lacks too.
    let (_, _, answer) = server.call_as(&bob, "x:Account/set", eve(json!({"@type": "User"}))).await;
    let error = refusal(&answer, "notCreated", "e");
    assert!(error["description"].as_str().unwrap().contains("sysApiKeyCreate"), "{answer}");
    // What bob holds he may give.
    let (_, _, answer) = server.call_as(&bob, "x:Account/set", eve(json!({"@type": "Custom", "roleIds": [r]}))).await;
    assert!(answer["created"]["e"]["id"].is_string(), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_cannot_raise_its_own_roles_or_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let r = role(&server, "editor", &["sysAccountGet", "sysAccountUpdate"]).await;
    let (carol_id, carol) =
        user_with_key(&server, "carol", &d, json!({"roles": {"@type": "Custom", "roleIds": [r]}}), inherit()).await;
    for patch in [
        json!({"roles": {"@type": "Admin"}}),
        json!({"permissions": {"@type": "Merge", "enabledPermissions": ["sysDomainCreate"]}}),
        json!({"permissions": {"@type": "Replace", "enabledPermissions": ["sysAccountGet", "sysAuditExport"]}}),
    ] {
        let (_, _, answer) =
            server.call_as(&carol, "x:Account/set", json!({"update": {&carol_id: patch.clone()}})).await;
        assert_eq!(refusal(&answer, "notUpdated", &carol_id)["type"], "forbidden", "{patch}: {answer}");
    }
    let (_, _, domains) = server.call_as(&carol, "x:Domain/set", json!({"create": {"x": {"name": "x.test"}}})).await;
    assert_eq!(domains["type"], "forbidden");
    // Within her rights she still updates herself.
    let (_, _, answer) =
        server.call_as(&carol, "x:Account/set", json!({"update": {&carol_id: {"description": "editor"}}})).await;
    assert!(answer["updated"].get(&carol_id).is_some(), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_editor_cannot_add_permissions_it_lacks_to_a_role_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let r = role(&server, "role-editor", &["sysRoleGet", "sysRoleUpdate"]).await;
    let (_, editor) =
        user_with_key(&server, "ed", &d, json!({"roles": {"@type": "Custom", "roleIds": [r]}}), inherit()).await;
    let widened = json!({"update": {&r: {"enabledPermissions": ["sysRoleGet", "sysRoleUpdate", "sysDomainCreate", "sysAuditExport"]}}});
    let (_, _, answer) = server.call_as(&editor, "x:Role/set", widened).await;
    let error = refusal(&answer, "notUpdated", &r);
    assert_eq!(error["type"], "forbidden", "{answer}");
    assert!(error["description"].as_str().unwrap().contains("sysAuditExport"), "{error}");
    let (_, _, domains) = server.call_as(&editor, "x:Domain/set", json!({"create": {"x": {"name": "x.test"}}})).await;
    assert_eq!(domains["type"], "forbidden");
    let export = server
        .client()
        .get(format!("{}/api/audit/export", server.url))
        .header("authorization", &editor)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status().as_u16(), 403);
    // The same holds through a group that has the role.
    let other = role(&server, "other", &["sysRoleGet", "sysRoleUpdate"]).await;
    let g = server
        .account(
            json!({"@type": "Group", "name": "g", "domainId": d, "roles": {"@type": "Custom", "roleIds": [other]}}),
        )
        .await;
    server.account(json!({"@type": "User", "name": "member", "domainId": d, "memberGroupIds": [g]})).await;
    let (_, _, answer) = server
        .call_as(&editor, "x:Role/set", json!({"update": {&other: {"enabledPermissions": ["sysDomainCreate"]}}}))
        .await;
    assert_eq!(refusal(&answer, "notUpdated", &other)["type"], "forbidden", "{answer}");
    // Narrowing a role is fine.
    let (_, _, answer) = server
        .call_as(&editor, "x:Role/set", json!({"update": {&other: {"enabledPermissions": ["sysRoleGet"]}}}))
        .await;
    assert!(answer["updated"].get(&other).is_some(), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_narrowed_key_cannot_mint_a_wider_one_or_set_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"u": {"@type": "User", "name": "dave", "domainId": d, "roles": {"@type": "Admin"}, "credentials": [
                {"@type": "Password", "secret": "dave-password"},
                {"@type": "ApiKey", "description": "read", "permissions": {"@type": "Replace", "permissions": ["sysAccountGet"]}},
                {"@type": "ApiKey", "description": "self-service", "permissions": {"@type": "Replace", "permissions":
                    ["sysAccountGet", "sysAccountUpdate", "sysApiKeyCreate", "sysAccountPasswordUpdate"]}}
            ]}}}),
        )
        .await;
    let dave = r["created"]["u"]["id"].as_str().unwrap().to_owned();
    let key =
        |i: usize| format!("Bearer {}", r["created"]["u"]["credentials"][&i.to_string()]["secret"].as_str().unwrap());
    for k in [key(1), key(2)] {
        let (_, _, answer) = server
            .call_as(
                &k,
                "x:Account/set",
                json!({"update": {&dave: {"credentials/3": {"@type": "ApiKey", "description": "x", "permissions": {"@type": "Inherit"}}}}}),
            )
            .await;
        assert_eq!(refusal(&answer, "notUpdated", &dave)["type"], "forbidden", "{answer}");
        let (_, _, answer) =
            server.call_as(&k, "x:Account/set", json!({"update": {&dave: {"credentials/0/secret": "new pass"}}})).await;
        assert_eq!(refusal(&answer, "notUpdated", &dave)["type"], "forbidden", "{answer}");
    }
    let (status, _) =
        server.post_as(Some(&basic("dave@example.org", "new pass")), None, r#"{"using":[],"methodCalls":[]}"#).await;
    assert_eq!(status, 401, "the password did not change");
    // A key as narrow as the minting one is fine.
    let (_, _, answer) = server
        .call_as(
            &key(2),
            "x:Account/set",
            json!({"update": {&dave: {"credentials/3": {"@type": "ApiKey", "description": "x", "permissions": {"@type": "Replace", "permissions": ["sysAccountGet"]}}}}}),
        )
        .await;
    assert!(answer["updated"][&dave]["credentials"].is_object(), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_password_cannot_mint_a_credential_beyond_its_addresses_or_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let expires = ledger_events::values::UtcDateTime::from_millis(now as i64 + 120_000).to_string();
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"u": {"@type": "User", "name": "uma", "domainId": d, "credentials": [
                {"@type": "AppPassword", "description": "laptop", "permissions": {"@type": "Inherit"},
                 "allowedIps": ["127.0.0.1/32"], "expiresAt": expires}]}}}),
        )
        .await;
    let uma = r["created"]["u"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let app = basic("uma@example.org", r["created"]["u"]["credentials"]["0"]["secret"].as_str().unwrap());
    let mint = |bounds: Value| {
        let mut key = json!({"@type": "ApiKey", "description": "minted", "permissions": {"@type": "Inherit"}});
        for (k, v) in bounds.as_object().unwrap() {
            key[k] = v.clone();
        }
        json!({"update": {&uma: {"credentials/1": key}}})
    };
    for (what, bounds) in [
        ("no limits", json!({})),
        ("no expiry", json!({"allowedIps": ["127.0.0.1/32"]})),
        ("no address limit", json!({"expiresAt": expires})),
        ("a wider range", json!({"allowedIps": ["127.0.0.0/8"], "expiresAt": expires})),
    ] {
        let (_, _, answer) = server.call_as(&app, "x:Account/set", mint(bounds)).await;
        assert_eq!(refusal(&answer, "notUpdated", &uma)["type"], "forbidden", "{what}: {answer}");
    }
    let (_, _, answer) = server
        .call_as(&app, "x:Account/set", mint(json!({"allowedIps": ["127.0.0.1/32"], "expiresAt": expires})))
        .await;
    assert!(answer["updated"][&uma]["credentials"].is_object(), "within its bounds: {answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_second_factor_guards_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let uri = "otpauth://totp/ledger:ursula?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ledger";
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"u": {"@type": "User", "name": "ursula", "domainId": d, "credentials": [
                {"@type": "Password", "secret": "ursula-password", "otpAuth": uri},
                {"@type": "AppPassword", "description": "phone", "permissions": {"@type": "Inherit"}}]}}}),
        )
        .await;
    let u = r["created"]["u"]["id"].as_str().unwrap().to_owned();
    let app = basic("ursula@example.org", r["created"]["u"]["credentials"]["1"]["secret"].as_str().unwrap());
    for patch in [
        json!({"credentials/0/otpAuth": "", "credentials/0/secret": "chosen by ursula herself"}),
        json!({"credentials/0/otpAuth": ""}),
        json!({"credentials/0/secret": "chosen by ursula herself"}),
        json!({"credentials/0/allowedIps": ["10.0.0.0/8"]}),
    ] {
        let (_, _, answer) = server.call_as(&app, "x:Account/set", json!({"update": {&u: patch.clone()}})).await;
        let error = refusal(&answer, "notUpdated", &u);
        assert_eq!(error["type"], "forbidden", "{patch}: {answer}");
        assert!(error["description"].as_str().unwrap().contains("second factor"), "{error}");
    }
    let (status, _) = server
        .post_as(
            Some(&basic("ursula@example.org", "chosen by ursula herself")),
            None,
            r#"{"using":[],"methodCalls":[]}"#,
        )
        .await;
    assert_eq!(status, 401);
    // With the Password and a current code the account may change it.
    let totp = totp_rs::TOTP::from_url_unchecked(uri).unwrap();
    let code = totp.generate_current().unwrap();
    let proved = basic("ursula@example.org", &format!("ursula-password${code}"));
    let (_, _, answer) =
        server.call_as(&proved, "x:Account/set", json!({"update": {&u: {"credentials/0/otpAuth": ""}}})).await;
    assert!(answer["updated"].get(&u).is_some(), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_groups_disabled_permission_wins_over_a_members_replace() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let g = server
        .account(json!({"@type": "Group", "name": "g", "domainId": d,
            "permissions": {"@type": "Merge", "disabledPermissions": ["sysAccountGet"]}}))
        .await;
    let (_, m) = user_with_key(
        &server,
        "m",
        &d,
        json!({"memberGroupIds": [g], "permissions": {"@type": "Replace", "enabledPermissions": ["sysAccountGet", "sysAccountQuery"]}}),
        inherit(),
    )
    .await;
    let (_, name, error) = server.call_as(&m, "x:Account/get", json!({"ids": null})).await;
    assert_eq!((name.as_str(), error["type"].as_str()), ("error", Some("forbidden")), "{error}");
    let (_, name, _) = server.call_as(&m, "x:Account/query", json!({})).await;
    assert_eq!(name, "x:Account/query", "what the group does not disable stays");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cross_site_post_does_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let create = |name: &str| {
        json!({"using": super::support::USING, "methodCalls": [["x:Domain/set", {"create": {"d": {"name": name}}}, "c"]]})
            .to_string()
    };
    let post = |content_type: Option<&'static str>, origin: Option<String>, body: String| {
        let mut request = server
            .client()
            .post(format!("{}/api", server.url))
            .header("authorization", super::support::admin_auth())
            .body(body);
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        request.send()
    };
    let host = server.url.trim_start_matches("http://").to_owned();
    for (what, content_type, origin, expected) in [
        ("a form post", Some("text/plain"), Some("https://evil.example".to_owned()), 403),
        ("text/plain from nowhere", Some("text/plain"), None, 415),
        ("a form encoding", Some("application/x-www-form-urlencoded"), None, 415),
        ("no content type", None, None, 415),
        ("JSON from a foreign origin", Some("application/json"), Some("https://evil.example".to_owned()), 403),
        ("an opaque origin", Some("application/json"), Some("null".to_owned()), 403),
    ] {
        let response = post(content_type, origin, create("evil.test")).await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "{what}");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["detail"].is_string(), "{what}: a problem body");
    }
    let (_, found) = server.call("x:Domain/query", json!({"filter": {"name": "evil"}})).await;
    assert_eq!(found["ids"], json!([]), "nothing ran");
    let same =
        post(Some("application/json; charset=utf-8"), Some(format!("http://{host}")), create("ok.test")).await.unwrap();
    assert_eq!(same.status().as_u16(), 200, "the server's own origin");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_limited_credential_cannot_grant_lasting_rights_to_an_unlimited_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let hour = ledger_events::values::UtcDateTime::from_millis(now as i64 + 3_600_000).to_string();
    let (root, _) =
        user_with_key(&server, "root", &d, json!({"roles": {"@type": "Admin"}}), json!({"@type": "Inherit"})).await;
    // Root's temporary key: its own address and an hour.
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"update": {&root: {"credentials/1": {"@type": "ApiKey", "description": "temporary",
                "permissions": {"@type": "Inherit"}, "allowedIps": ["127.0.0.1/32"], "expiresAt": hour}}}}),
        )
        .await;
    let temporary = format!("Bearer {}", r["updated"][&root]["credentials"]["1"]["secret"].as_str().unwrap());
    let (plain, _) = user_with_key(&server, "plain", &d, json!({}), inherit()).await;
    let (_, _, answer) =
        server.call_as(&temporary, "x:Account/set", json!({"update": {&plain: {"roles": {"@type": "Admin"}}}})).await;
    let error = refusal(&answer, "notUpdated", &plain);
    assert_eq!(error["type"], "forbidden", "{answer}");
    assert!(error["description"].as_str().unwrap().contains("longer"), "{error}");
    // Widening root's own unlimited key is the same.
    let (_, _, answer) = server
        .call_as(
            &temporary,
            "x:Account/set",
            json!({"update": {&root: {"credentials/0/permissions": {"@type": "Replace", "permissions": ["sysAccountGet"]}}}}),
        )
        .await;
    assert!(answer["updated"].get(&root).is_some(), "narrowing is fine: {answer}");
    let (_, _, answer) = server
        .call_as(
            &temporary,
            "x:Account/set",
            json!({"update": {&root: {"credentials/0/permissions": {"@type": "Inherit"}}}}),
        )
        .await;
    assert_eq!(refusal(&answer, "notUpdated", &root)["type"], "forbidden", "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn erasing_a_group_is_checked_like_destroying_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let g = server
        .account(json!({"@type": "Group", "name": "restricted", "domainId": d,
            "permissions": {"@type": "Merge", "disabledPermissions": ["sysAuditExport"]}}))
        .await;
    server
        .account(json!({"@type": "User", "name": "held-back", "domainId": d, "roles": {"@type": "Admin"}, "memberGroupIds": [g]}))
        .await;
    // Only erasure: an account that still exists is not its to destroy.
    let r = role(&server, "eraser", &["sysDatabaseErase"]).await;
    let (_, eraser) =
        user_with_key(&server, "eraser", &d, json!({"roles": {"@type": "Custom", "roleIds": [r]}}), inherit()).await;
    let (_, _, answer) = server.call_as(&eraser, "x:Database/erase", json!({"ids": [&g]})).await;
    assert!(answer["notErased"][&g]["description"].as_str().unwrap().contains("sysAccountDestroy"), "{answer}");
    // Erasure and destroy: the group's member would gain sysAuditExport.
    let r = role(&server, "destroyer", &["sysDatabaseErase", "sysAccountDestroy"]).await;
    let (_, destroyer) =
        user_with_key(&server, "destroyer", &d, json!({"roles": {"@type": "Custom", "roleIds": [r]}}), inherit()).await;
    let (_, _, answer) = server.call_as(&destroyer, "x:Database/erase", json!({"ids": [&g]})).await;
    assert!(answer["notErased"][&g]["description"].as_str().unwrap().contains("sysAuditExport"), "{answer}");
    let (_, found) = server.call("x:Account/get", json!({"ids": [&g]})).await;
    assert_eq!(found["list"].as_array().unwrap().len(), 1, "the group is still there");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_of_a_refused_or_malformed_call_are_not_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let (id, nothing) =
        user_with_key(&server, "idle", &d, json!({}), json!({"@type": "Replace", "permissions": []})).await;
    let many: Vec<Value> =
        (0..50).map(|i| json!({"@type": "Password", "secret": format!("secret number {i}")})).collect();
    let (_, name, error) =
        server.call_as(&nothing, "x:Account/set", json!({"update": {"zz": {"credentials": many.clone()}}})).await;
    assert_eq!((name.as_str(), error["type"].as_str()), ("error", Some("forbidden")), "{error}");
    let (name, error) = server.call("x:Account/set", json!({"update": {&id: {"credentials": many}}})).await;
    assert_eq!((name.as_str(), error["type"].as_str()), ("error", Some("invalidArguments")), "{error}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_credential_without_the_read_permission_reads_nothing_of_itself() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let (id, nothing) =
        user_with_key(&server, "quiet", &d, json!({}), json!({"@type": "Replace", "permissions": []})).await;
    for method in ["x:Account/get", "x:AccountHistory/get"] {
        let (_, name, error) = server.call_as(&nothing, method, json!({"ids": [&id]})).await;
        assert_eq!((name.as_str(), error["type"].as_str()), ("error", Some("forbidden")), "{method}: {error}");
    }
    let (_, full) = user_with_key(&server, "loud", &d, json!({}), inherit()).await;
    let (_, loud) = server.call("x:Account/query", json!({"filter": {"name": "loud"}})).await;
    let (_, name, _) = server.call_as(&full, "x:AccountHistory/get", json!({"ids": [loud["ids"][0]]})).await;
    assert_eq!(name, "x:AccountHistory/get", "the User role reads itself");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lesser_principal_cannot_touch_another_accounts_password_or_act_as_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let uri = "otpauth://totp/ledger:boss?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ledger";
    let boss = server
        .account(json!({"@type": "User", "name": "boss", "domainId": d, "roles": {"@type": "Admin"},
            "credentials": [{"@type": "Password", "secret": "boss-password", "otpAuth": uri}]}))
        .await;
    let mut helpdesk_rights = vec!["sysAccountGet", "sysAccountQuery", "sysAccountUpdate"];
    helpdesk_rights.extend(["sysAccountSettingsGet", "sysAccountPasswordUpdate", "sysApiKeyCreate"]);
    let r = role(&server, "helpdesk", &helpdesk_rights).await;
    let (_, hd) =
        user_with_key(&server, "hd", &d, json!({"roles": {"@type": "Custom", "roleIds": [r]}}), inherit()).await;
    let other_seed = "otpauth://totp/x:boss?secret=KRSXG5CTMVRXEZLUKN2XAZLSKRSXG5CT&issuer=x";
    for patch in [
        json!({"credentials/0/otpAuth": other_seed}),
        json!({"credentials/0/allowedIps": ["10.0.0.0/8"]}),
        json!({"credentials/0/expiresAt": "2030-01-01T00:00:00Z"}),
        json!({"credentials/1": {"@type": "ApiKey", "description": "as boss",
            "permissions": {"@type": "Replace", "permissions": ["sysAccountGet"]}}}),
    ] {
        let (_, _, answer) = server.call_as(&hd, "x:Account/set", json!({"update": {&boss: patch.clone()}})).await;
        assert_eq!(refusal(&answer, "notUpdated", &boss)["type"], "forbidden", "{patch}: {answer}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_sets_a_bounded_number_of_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let create: serde_json::Map<String, Value> = (0..65)
        .map(|i| {
            let user = json!({"@type": "User", "name": format!("u{i}"), "domainId": d,
                "credentials": [{"@type": "Password", "secret": format!("password {i}")}]});
            (format!("u{i}"), user)
        })
        .collect();
    let (name, error) = server.call("x:Account/set", json!({"create": create})).await;
    assert_eq!((name.as_str(), error["type"].as_str()), ("error", Some("requestTooLarge")), "{error}");
    let (_, found) = server.call("x:Account/query", json!({})).await;
    assert_eq!(found["ids"], json!([]), "nothing of it was made");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_let_in_before_its_key_was_removed_writes_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let (id, key) = user_with_key(&server, "late", &d, json!({"roles": {"@type": "Admin"}}), inherit()).await;
    let body = json!({"using": super::support::USING, "methodCalls": [["x:Account/set",
        {"update": {&id: {"description": "written after the key was removed"}}}, "c"]]})
    .to_string();
    let mut socket = tokio::net::TcpStream::connect(server.url.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST /api HTTP/1.1\r\nHost: {}\r\nAuthorization: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.url.trim_start_matches("http://"),
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&body.as_bytes()[..1]).await.unwrap();
    // The headers are in (and were let in); the key goes before the body ends.
    let (_, r) = server.call("x:Account/set", json!({"update": {&id: {"credentials": []}}})).await;
    assert!(r["updated"].get(&id).is_some(), "{r}");
    socket.write_all(&body.as_bytes()[1..]).await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    // Refused either at the door (401: the body came late, so the login was
    // checked again) or in the commit (the writer's credential is re-read there).
    let refused = answer.starts_with("HTTP/1.1 401") || answer.contains("credential is no longer valid");
    assert!(refused, "{answer}");
    let (_, now) = server.call("x:Account/get", json!({"ids": [&id], "properties": ["description"]})).await;
    assert_eq!(now["list"][0]["description"], Value::Null, "nothing was written");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn history_takes_a_bounded_number_of_ids_and_otp_uris_must_be_usable() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let ids: Vec<&str> = std::iter::repeat_n("b", 501).collect();
    let (name, error) = server.call("x:AccountHistory/get", json!({"ids": ids})).await;
    assert_eq!((name.as_str(), error["type"].as_str()), ("error", Some("requestTooLarge")), "{error}");
    let uri = "otpauth://totp/x:u?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&digits=100";
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"u": {"@type": "User", "name": "u", "domainId": d,
                "credentials": [{"@type": "Password", "secret": "pw", "otpAuth": uri}]}}}),
        )
        .await;
    assert_eq!(r["notCreated"]["u"]["type"], "invalidProperties", "{r}");
    server.stop().await;
}
