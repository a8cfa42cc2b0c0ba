//! Authentication and authorisation over HTTP: every credential type, expiry,
//! allowed IPs, TOTP, narrowed keys, roles and modes, tenants, self-service,
//! the brute-force limiter, and the actor recorded in the log.

use serde_json::{Value, json};

use super::support::{TestServer, USING, basic};

async fn status(server: &TestServer, authorization: Option<&str>, ip: Option<&str>) -> (u16, Value) {
    let body = json!({"using": USING, "methodCalls": [["Core/echo", {}, "c"]]}).to_string();
    server.post_as(authorization, ip, body).await
}

/// A domain and a user with a password, an app password and an API key.
/// Returns (account id, app password, api key).
async fn user_with_credentials(server: &TestServer, extra: Value) -> (String, String, String) {
    let d = server.domain("example.org").await;
    let mut object = json!({"@type": "User", "name": "alice", "domainId": d, "credentials": [
        {"@type": "Password", "secret": "alice-password"},
        {"@type": "AppPassword", "description": "mail app", "permissions": {"@type": "Inherit"}},
        {"@type": "ApiKey", "description": "script", "permissions": {"@type": "Inherit"}}
    ]});
    for (k, v) in extra.as_object().unwrap() {
        object[k] = v.clone();
    }
    let (_, r) = server.call("x:Account/set", json!({"create": {"a": object}})).await;
    let a = &r["created"]["a"];
    let secret =
        |i: usize| a["credentials"][&i.to_string()]["secret"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    (a["id"].as_str().unwrap().to_owned(), secret(1), secret(2))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_credential_type_succeeds_and_wrong_ones_fail_alike() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (_, app_password, api_key) = user_with_credentials(&server, json!({})).await;
    for (what, auth) in [
        ("password, full address", basic("alice@example.org", "alice-password")),
        ("password, bare name", basic("alice", "alice-password")),
        ("password, any case", basic("ALICE@Example.org", "alice-password")),
        ("app password", basic("alice@example.org", &app_password)),
        ("api key", format!("Bearer {api_key}")),
    ] {
        assert_eq!(status(&server, Some(&auth), None).await.0, 200, "{what}");
    }
    let mut answers = Vec::new();
    for (i, auth) in [
        Some(basic("alice@example.org", "wrong")),
        Some(basic("nobody@example.org", "alice-password")),
        Some(basic("alice@example.org", &api_key)),
        Some(format!("Bearer {app_password}")),
        Some("Bearer lak_0000".to_owned()),
        Some("Digest whatever".to_owned()),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        // Each from its own address, so the limiter stays out of it.
        let ip = format!("203.0.113.{}", i + 1);
        let body = json!({"using": USING, "methodCalls": []}).to_string();
        let response = server
            .client()
            .post(format!("{}/api", server.url))
            .header("x-forwarded-for", &ip)
            .headers(auth.iter().map(|a| (reqwest::header::AUTHORIZATION, a.parse().unwrap())).collect())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        let challenges: Vec<_> =
            response.headers().get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        assert!(
            challenges.iter().any(|c| c.starts_with("Basic ")) && challenges.iter().any(|c| c.starts_with("Bearer "))
        );
        answers.push(response.text().await.unwrap());
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "unknown user and wrong secret answer alike: {answers:?}");
    let unauthenticated = server.client().get(format!("{}/.well-known/jmap", server.url)).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let health = server.client().get(format!("{}/healthz", server.url)).send().await.unwrap();
    assert_eq!(health.status(), 200, "healthz needs no credentials");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_credentials_and_disallowed_addresses_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"u": {"@type": "User", "name": "bob", "domainId": d, "credentials": [
                {"@type": "Password", "secret": "bob-password", "allowedIps": ["10.0.0.0/8", "2001:db8::/32"]},
                {"@type": "AppPassword", "description": "old", "permissions": {"@type": "Inherit"}, "expiresAt": "2020-01-01T00:00:00Z"},
                {"@type": "AppPassword", "description": "new", "permissions": {"@type": "Inherit"}, "expiresAt": "2999-01-01T00:00:00Z"}
            ]}}}),
        )
        .await;
    let expired = r["created"]["u"]["credentials"]["1"]["secret"].as_str().unwrap().to_owned();
    let current = r["created"]["u"]["credentials"]["2"]["secret"].as_str().unwrap().to_owned();
    let password = basic("bob@example.org", "bob-password");
    assert_eq!(status(&server, Some(&password), Some("10.1.2.3")).await.0, 200);
    assert_eq!(status(&server, Some(&password), Some("2001:db8::7")).await.0, 200);
    assert_eq!(status(&server, Some(&password), Some("192.0.2.1")).await.0, 401, "outside allowedIps");
    assert_eq!(status(&server, Some(&basic("bob@example.org", &expired)), Some("192.0.2.2")).await.0, 401, "expired");
    assert_eq!(status(&server, Some(&basic("bob@example.org", &current)), Some("192.0.2.3")).await.0, 200);
    server.stop().await;
}

/// carol@example.org with the password `carol-password` and a TOTP second
/// factor; returns its generator.
async fn carol_with_totp(server: &TestServer) -> totp_rs::TOTP {
    let d = server.domain("example.org").await;
    let uri = "otpauth://totp/ledger:carol?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ledger";
    server
        .account(json!({"@type": "User", "name": "carol", "domainId": d, "credentials": [
            {"@type": "Password", "secret": "carol-password", "otpAuth": uri}]}))
        .await;
    totp_rs::TOTP::from_url_unchecked(uri).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn totp_codes_are_required_checked_and_allowed_small_skew() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let totp = carol_with_totp(&server).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let with = |code: &str| basic("carol@example.org", &format!("carol-password${code}"));
    assert_eq!(
        status(&server, Some(&with(&totp.generate(now - 30))), Some("198.51.100.1")).await.0,
        200,
        "one step of skew"
    );
    let current = with(&totp.generate(now));
    assert_eq!(status(&server, Some(&current), Some("198.51.100.1")).await.0, 200);
    for attempt in 0..2 {
        assert_eq!(
            status(&server, Some(&current), Some("198.51.100.1")).await.0,
            401,
            "a code is good once (RFC 6238 §5.2), attempt {attempt}"
        );
    }
    assert_eq!(
        status(&server, Some(&with(&totp.generate(now - 30))), Some("198.51.100.5")).await.0,
        401,
        "nor an earlier step after a later one"
    );
    let stale = totp.generate(now - 300);
    if stale != totp.generate(now) && stale != totp.generate(now - 30) && stale != totp.generate(now + 30) {
        assert_eq!(status(&server, Some(&with(&stale)), Some("198.51.100.2")).await.0, 401, "ten steps old");
    }
    let wrong = if totp.generate(now) == "000000" { "111111" } else { "000000" };
    assert_eq!(status(&server, Some(&with(wrong)), Some("198.51.100.3")).await.0, 401);
    assert_eq!(
        status(&server, Some(&basic("carol@example.org", "carol-password")), Some("198.51.100.4")).await.0,
        401,
        "no code"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_only_narrow_what_the_account_may_do() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"u": {"@type": "User", "name": "ops", "domainId": d, "roles": {"@type": "Admin"}, "credentials": [
                {"@type": "ApiKey", "description": "read only", "permissions": {"@type": "Replace", "permissions": ["sysAccountGet"]}},
                {"@type": "ApiKey", "description": "no destroy", "permissions": {"@type": "Disable", "permissions": ["sysAccountDestroy"]}}
            ]}}}),
        )
        .await;
    let id = r["created"]["u"]["id"].as_str().unwrap().to_owned();
    let reader = format!("Bearer {}", r["created"]["u"]["credentials"]["0"]["secret"].as_str().unwrap());
    let no_destroy = format!("Bearer {}", r["created"]["u"]["credentials"]["1"]["secret"].as_str().unwrap());
    let (_, name, _) = server.call_as(&reader, "x:Account/get", json!({"ids": [id]})).await;
    assert_eq!(name, "x:Account/get");
    let (_, name, err) = server.call_as(&reader, "x:Account/query", json!({})).await;
    assert_eq!((name.as_str(), err["type"].as_str()), ("error", Some("forbidden")));
    let (_, _, err) = server.call_as(&reader, "x:Domain/get", json!({"ids": null})).await;
    assert_eq!(err["type"], "forbidden");
    let (_, _, r) = server
        .call_as(
            &no_destroy,
            "x:Account/set",
            json!({"create": {"x": {"@type": "User", "name": "temp", "domainId": d}}}),
        )
        .await;
    let temp = r["created"]["x"]["id"].as_str().expect("Admin role creates").to_owned();
    let (_, name, err) = server.call_as(&no_destroy, "x:Account/set", json!({"destroy": [temp]})).await;
    assert_eq!((name.as_str(), err["type"].as_str()), ("error", Some("forbidden")), "{err}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_modes_groups_and_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let (_, r) = server
        .call(
            "x:Role/set",
            json!({"create": {"r": {"description": "reader", "enabledPermissions": ["sysAccountGet", "sysAccountQuery"]}}}),
        )
        .await;
    let reader = r["created"]["r"]["id"].as_str().unwrap().to_owned();
    let (_, roles) = server.call("x:Role/query", json!({"filter": {"name": "read"}})).await;
    assert_eq!(roles["ids"], json!([reader]));
    let login = |name: &str| basic(&format!("{name}@example.org"), "pw-for-everyone");
    let password = json!([{"@type": "Password", "secret": "pw-for-everyone"}]);
    let group = server
        .account(json!({"@type": "Group", "name": "readers", "domainId": d, "roles": {"@type": "Custom", "roleIds": [reader]}}))
        .await;
    let mk = |name: &str, extra: Value| {
        let mut o = json!({"@type": "User", "name": name, "domainId": d, "credentials": password});
        for (k, v) in extra.as_object().unwrap() {
            o[k] = v.clone();
        }
        o
    };
    server.account(mk("custom", json!({"roles": {"@type": "Custom", "roleIds": [reader]}}))).await;
    server.account(mk("member", json!({"memberGroupIds": [group]}))).await;
    server
        .account(mk("merged", json!({"roles": {"@type": "Custom", "roleIds": [reader]},
            "permissions": {"@type": "Merge", "enabledPermissions": ["sysAccountCreate"], "disabledPermissions": ["sysAccountGet"]}})))
        .await;
    server
        .account(mk(
            "replaced",
            json!({"roles": {"@type": "Admin"},
            "permissions": {"@type": "Replace", "enabledPermissions": ["sysDomainGet"]}}),
        ))
        .await;
    server
        .account(mk(
            "admin2",
            json!({"roles": {"@type": "Admin"},
            "permissions": {"@type": "Merge", "disabledPermissions": ["sysAccountDestroy"]}}),
        ))
        .await;
    server.account(mk("plain", json!({}))).await;

    let allowed = |r: &(u16, String, Value)| r.1 != "error";
    let query = json!({});
    let create = |n: &str| json!({"create": {"x": {"@type": "User", "name": n, "domainId": d}}});
    // Custom role.
    assert!(allowed(&server.call_as(&login("custom"), "x:Account/query", query.clone()).await));
    assert!(!allowed(&server.call_as(&login("custom"), "x:Account/set", create("c1")).await));
    // Inherited from the group's role.
    assert!(allowed(&server.call_as(&login("member"), "x:Account/query", query.clone()).await));
    // Merge: gains create, loses get (disabled wins over the role). It creates a
    // Group (no rights); a User would hold the User role's rights, which it lacks.
    let (_, _, made) = server
        .call_as(
            &login("merged"),
            "x:Account/set",
            json!({"create": {"x": {"@type": "Group", "name": "m1", "domainId": d}}}),
        )
        .await;
    assert!(made["created"]["x"]["id"].is_string(), "{made}");
    let (_, _, made) = server.call_as(&login("merged"), "x:Account/set", create("m2")).await;
    assert_eq!(made["notCreated"]["x"]["type"], "forbidden", "{made}");
    assert!(allowed(&server.call_as(&login("merged"), "x:Account/query", query.clone()).await));
    assert!(!allowed(&server.call_as(&login("merged"), "x:Account/get", json!({"ids": null})).await));
    // Replace: only what it lists, even for an Admin.
    assert!(!allowed(&server.call_as(&login("replaced"), "x:Account/query", query.clone()).await));
    assert!(allowed(&server.call_as(&login("replaced"), "x:Domain/get", json!({"ids": null})).await));
    // Admin with a disabled permission.
    let (_, _, made) = server.call_as(&login("admin2"), "x:Account/set", create("a1")).await;
    let a1 = made["created"]["x"]["id"].as_str().unwrap().to_owned();
    assert!(!allowed(&server.call_as(&login("admin2"), "x:Account/set", json!({"destroy": [a1]})).await));
    // A plain User has no sys permissions.
    assert!(!allowed(&server.call_as(&login("plain"), "x:Account/query", query.clone()).await));
    // A role in use cannot be destroyed; unknown role ids are refused.
    let (_, r) = server.call("x:Role/set", json!({"destroy": [reader]})).await;
    assert_eq!(r["notDestroyed"][&reader]["type"], "objectIsLinked");
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"x": mk("ghost", json!({"roles": {"@type": "Custom", "roleIds": ["zz"]}}))}}),
        )
        .await;
    assert_eq!(r["notCreated"]["x"]["properties"], json!(["roles/roleIds/0"]));
    assert_eq!(r["notCreated"]["x"]["type"], "invalidForeignKey");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_admins_see_and_change_only_their_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (t1, t2) = (server.tenant("t1").await, server.tenant("t2").await);
    let d = server.domain("example.org").await;
    let tenant_domain = |name: &str, tenant: &str| json!({"create": {"d": {"name": name, "memberTenantId": tenant}}});
    let (_, r) = server.call("x:Domain/set", tenant_domain("one.example", &t1)).await;
    let d1 = r["created"]["d"]["id"].as_str().unwrap().to_owned();
    let (_, r) = server.call("x:Domain/set", tenant_domain("two.example", &t2)).await;
    let d2 = r["created"]["d"]["id"].as_str().unwrap().to_owned();
    server
        .account(json!({"@type": "User", "name": "t1admin", "domainId": d1, "memberTenantId": t1, "roles": {"@type": "Admin"},
            "credentials": [{"@type": "Password", "secret": "tenant-pw"}]}))
        .await;
    let mine = server.account(json!({"@type": "User", "name": "mine", "domainId": d1, "memberTenantId": t1})).await;
    let theirs = server.account(json!({"@type": "User", "name": "theirs", "domainId": d2, "memberTenantId": t2})).await;
    let global = server.account(json!({"@type": "User", "name": "global", "domainId": d})).await;
    let t = basic("t1admin@one.example", "tenant-pw");
    let (_, _, q) = server.call_as(&t, "x:Account/query", json!({})).await;
    let ids: Vec<&str> = q["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(ids.contains(&mine.as_str()) && !ids.contains(&theirs.as_str()) && !ids.contains(&global.as_str()), "{q}");
    let (_, _, g) = server.call_as(&t, "x:Account/get", json!({"ids": [mine, theirs]})).await;
    assert_eq!(g["notFound"], json!([theirs]));
    let (_, _, domains) = server.call_as(&t, "x:Domain/get", json!({"ids": null})).await;
    assert_eq!(domains["list"].as_array().unwrap().len(), 1, "only its own domain: {domains}");
    assert_eq!(domains["list"][0]["id"], d1);
    let (_, _, s) = server
        .call_as(
            &t,
            "x:Account/set",
            json!({
                "update": {(theirs.clone()): {"description": "x"}, (mine.clone()): {"description": "ok"}},
                "destroy": [global],
                "create": {"n": {"@type": "User", "name": "newbie", "domainId": d1},
                           "bad": {"@type": "User", "name": "sneaky", "domainId": d1, "memberTenantId": t2}}
            }),
        )
        .await;
    assert_eq!(s["notUpdated"][&theirs]["type"], "notFound");
    assert_eq!(s["updated"], json!({ (mine.clone()): null }));
    assert_eq!(s["notDestroyed"][&global]["type"], "notFound");
    assert_eq!(s["created"]["n"]["memberTenantId"], json!(t1), "new accounts land in the tenant");
    assert_eq!(s["notCreated"]["bad"]["type"], "forbidden");
    let (_, _, s) =
        server.call_as(&t, "x:Account/set", json!({"update": {(mine.clone()): {"memberTenantId": t2}}})).await;
    assert_eq!(s["notUpdated"][&mine]["type"], "forbidden");
    // Domains are assigned to tenants by a global administrator: a tenant reads
    // its own, and creates or changes none.
    for args in [
        json!({"create": {"x": {"name": "tenant.example"}}}),
        tenant_domain("other.example", "t2"),
        json!({"update": {&d1: {"description": "mine"}}}),
        json!({"destroy": [&d1]}),
    ] {
        let (_, name, e) = server.call_as(&t, "x:Domain/set", args.clone()).await;
        assert_eq!((name.as_str(), e["type"].as_str()), ("error", Some("forbidden")), "{args}: {e}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_changes_its_own_password_but_not_its_quota() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (id, _, _) = user_with_credentials(&server, json!({})).await;
    let other = server.account(json!({"@type": "User", "name": "other", "domainId": "b"})).await;
    let me = basic("alice@example.org", "alice-password");
    let (_, name, _) = server.call_as(&me, "x:Account/get", json!({"ids": [id]})).await;
    assert_eq!(name, "x:Account/get", "a user reads itself");
    let (_, _, e) = server.call_as(&me, "x:Account/get", json!({"ids": [other]})).await;
    assert_eq!(e["type"], "forbidden");
    let (_, _, s) =
        server.call_as(&me, "x:Account/set", json!({"update": {(id.clone()): {"quotas/maxDiskQuota": 1}}})).await;
    assert_eq!(s["notUpdated"][&id]["type"], "forbidden", "{s}");
    let (_, _, s) =
        server.call_as(&me, "x:Account/set", json!({"update": {(other.clone()): {"credentials": []}}})).await;
    assert_eq!(s["type"], "forbidden", "nothing in this call is the user's to change: {s}");
    let (_, _, s) = server
        .call_as(
            &me,
            "x:Account/set",
            json!({"update": {(id.clone()): {
            "credentials/0/secret": "alice-new-password",
            "credentials/3": {"@type": "AppPassword", "description": "tablet", "permissions": {"@type": "Inherit"}}}}}),
        )
        .await;
    assert!(s["updated"][&id]["credentials"]["3"]["secret"].as_str().is_some_and(|x| x.starts_with("lap_")), "{s}");
    assert_eq!(
        status(&server, Some(&basic("alice@example.org", "alice-new-password")), Some("192.0.2.10")).await.0,
        200
    );
    assert_eq!(status(&server, Some(&me), Some("192.0.2.11")).await.0, 401, "the cached old password is dropped");

    // The log names the actor and how it authenticated.
    let snap = server.ledger.database().snapshot();
    let last = server.ledger.read().last_seq;
    let record = server.ledger.log().read(&snap, last).unwrap().unwrap();
    assert_eq!(record.header.commit.actor.name, "", "accounts are recorded by id, never by address");
    assert_eq!(record.header.commit.actor.principal_id, id);
    assert_eq!(record.header.commit.actor.auth_method, ledger_events::AuthMethod::Password);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failures_from_one_address_are_rate_limited_alone() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    user_with_credentials(&server, json!({})).await;
    let wrong = basic("alice@example.org", "guess");
    let right = basic("alice@example.org", "alice-password");
    for _ in 0..5 {
        assert_eq!(status(&server, Some(&wrong), Some("198.51.100.66")).await.0, 401);
    }
    let response = server
        .client()
        .post(format!("{}/api", server.url))
        .header("authorization", &right)
        .header("x-forwarded-for", "198.51.100.66")
        .header("content-type", "application/json")
        .body(json!({"using": USING, "methodCalls": []}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429, "even the right password waits");
    assert!(response.headers().get("retry-after").is_some());
    assert_eq!(status(&server, Some(&right), Some("198.51.100.67")).await.0, 200, "other clients are not blocked");
    // A success in between does not forgive the failures before it.
    for round in 0..3 {
        for _ in 0..2 {
            status(&server, Some(&wrong), Some("198.51.100.68")).await;
        }
        let (code, _) = status(&server, Some(&right), Some("198.51.100.68")).await;
        if round < 2 {
            assert_eq!(code, 200, "round {round}");
        } else {
            assert_eq!(code, 429, "six failures in the window, successes between them");
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bare_name_logs_in_the_one_account_without_a_tenant_that_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let t1 = server.tenant("t1").await;
    let (_, app_password, _) = user_with_credentials(&server, json!({})).await;
    let (_, r) =
        server.call("x:Domain/set", json!({"create": {"d": {"name": "t1.example", "memberTenantId": t1}}})).await;
    let d1 = r["created"]["d"]["id"].as_str().unwrap().to_owned();
    let bare = basic("alice", &app_password);
    assert_eq!(status(&server, Some(&bare), Some("192.0.2.30")).await.0, 200);
    server.account(json!({"@type": "User", "name": "alice", "domainId": d1, "memberTenantId": t1})).await;
    assert_eq!(status(&server, Some(&bare), Some("192.0.2.30")).await.0, 200, "a tenant's alice changes nothing");
    server.stop().await;
}

/// A second user, mallory, whose own password the attacker knows.
async fn mallory(server: &TestServer) -> String {
    let d = server.domain("attacker.example").await;
    server
        .account(json!({"@type": "User", "name": "mallory", "domainId": d, "credentials": [
            {"@type": "Password", "secret": "mallory-password"}]}))
        .await;
    basic("mallory@attacker.example", "mallory-password")
}

/// Issue 15, input 1: a success of the attacker's own account between rounds
/// of guesses at another does not reset the count (the test server allows 5
/// failures per source and window).
#[tokio::test(flavor = "multi_thread")]
async fn logging_in_as_oneself_between_guesses_does_not_reset_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    user_with_credentials(&server, json!({})).await;
    let own = mallory(&server).await;
    let wrong = basic("alice@example.org", "guess");
    let mut answers = Vec::new();
    for guess in 1..=27 {
        answers.push(status(&server, Some(&wrong), Some("203.0.113.50")).await.0);
        if guess % 9 == 0 {
            status(&server, Some(&own), Some("203.0.113.50")).await;
        }
    }
    assert_eq!(answers.iter().filter(|&&s| s == 401).count(), 5, "{answers:?}");
    assert!(answers[5..].iter().all(|&s| s == 429), "{answers:?}");
    server.stop().await;
}

/// 30 guesses sent at once from a new address: no more than the limit are
/// checked; the rest are 429 before any argon2 work.
#[tokio::test(flavor = "multi_thread")]
async fn guesses_sent_at_once_are_checked_no_more_than_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    user_with_credentials(&server, json!({})).await;
    let wrong = basic("alice@example.org", "guess");
    let mut guesses = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let request = server
            .client()
            .post(format!("{}/api", server.url))
            .header("authorization", &wrong)
            .header("x-forwarded-for", "203.0.113.60")
            .header("content-type", "application/json")
            .body(json!({"using": USING, "methodCalls": []}).to_string());
        guesses.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let answers = guesses.join_all().await;
    assert_eq!(answers.iter().filter(|&&s| s == 401).count(), 5, "{answers:?}");
    assert_eq!(answers.iter().filter(|&&s| s == 429).count(), 25, "{answers:?}");
    server.stop().await;
}

/// All of 127.0.0.0/8 is one source, and an IPv6 client is counted by its /64.
#[tokio::test(flavor = "multi_thread")]
async fn loopback_addresses_are_one_source_and_ipv6_counts_by_64() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    user_with_credentials(&server, json!({})).await;
    let wrong = basic("alice@example.org", "guess");
    let right = basic("alice@example.org", "alice-password");
    for i in 2..7 {
        assert_eq!(status(&server, Some(&wrong), Some(&format!("127.0.0.{i}"))).await.0, 401);
    }
    assert_eq!(status(&server, Some(&right), Some("127.9.9.9")).await.0, 429, "another loopback address");
    for i in 1..6 {
        assert_eq!(status(&server, Some(&wrong), Some(&format!("2001:db8:0:7::{i:x}"))).await.0, 401);
    }
    assert_eq!(status(&server, Some(&right), Some("2001:db8:0:7:ffff::1")).await.0, 429, "the same /64");
    assert_eq!(status(&server, Some(&right), Some("2001:db8:0:8::1")).await.0, 200, "the next /64");
    server.stop().await;
}

/// Guesses at one account spread over many sources meet the account's limit
/// (12 in the test server); logins verified before, generated secrets, and
/// other accounts go on.
#[tokio::test(flavor = "multi_thread")]
async fn guesses_at_one_account_from_many_sources_meet_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (_, app_password, api_key) = user_with_credentials(&server, json!({})).await;
    let own = mallory(&server).await;
    let right = basic("alice@example.org", "alice-password");
    assert_eq!(status(&server, Some(&right), Some("192.0.2.200")).await.0, 200, "alice logs in before");
    let wrong = basic("alice@example.org", "guess");
    for i in 0..12 {
        assert_eq!(status(&server, Some(&wrong), Some(&format!("198.18.0.{i}"))).await.0, 401, "guess {i}");
    }
    let (code, _) = status(&server, Some(&wrong), Some("198.18.1.1")).await;
    assert_eq!(code, 429, "a thirteenth source");
    let bare = basic("alice", "alice-password-guess");
    assert_eq!(status(&server, Some(&bare), Some("198.18.1.2")).await.0, 429, "the bare name is the same account");
    assert_eq!(status(&server, Some(&right), Some("192.0.2.200")).await.0, 200, "a login verified before");
    let app = basic("alice@example.org", &app_password);
    assert_eq!(status(&server, Some(&app), Some("192.0.2.201")).await.0, 200, "an app password");
    assert_eq!(status(&server, Some(&format!("Bearer {api_key}")), Some("192.0.2.202")).await.0, 200);
    assert_eq!(status(&server, Some(&own), Some("192.0.2.203")).await.0, 200, "another account");
    // Unknown names are targets too.
    let nobody = basic("nobody@example.org", "guess");
    for i in 0..12 {
        status(&server, Some(&nobody), Some(&format!("198.19.0.{i}"))).await;
    }
    assert_eq!(status(&server, Some(&nobody), Some("198.19.1.1")).await.0, 429, "an unknown name");
    server.stop().await;
}

/// Wrong TOTP codes with the right password are failures like any other.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_totp_codes_count_as_failures() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let totp = carol_with_totp(&server).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let valid: Vec<String> = [now - 30, now, now + 30].iter().map(|t| totp.generate(*t)).collect();
    let wrong: Vec<String> = (0..1000u32).map(|n| format!("{n:06}")).filter(|c| !valid.contains(c)).take(5).collect();
    for code in &wrong {
        let guess = basic("carol@example.org", &format!("carol-password${code}"));
        assert_eq!(status(&server, Some(&guess), Some("203.0.113.70")).await.0, 401);
    }
    let right = basic("carol@example.org", &format!("carol-password${}", totp.generate(now)));
    assert_eq!(status(&server, Some(&right), Some("203.0.113.70")).await.0, 429, "five wrong codes");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_extend_roles_their_disabled_permissions_win_and_cycles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let (_, r) = server
        .call(
            "x:Role/set",
            json!({"create": {
                "base": {"description": "base", "enabledPermissions": {"sysAccountGet": true, "sysAccountQuery": true}},
                "wide": {"description": "wide", "roleIds": {"#base": true},
                         "enabledPermissions": {"sysDomainGet": true}, "disabledPermissions": {"sysAccountQuery": true}}
            }}),
        )
        .await;
    let base = r["created"]["base"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let wide = r["created"]["wide"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    server
        .account(json!({"@type": "User", "name": "nest", "domainId": d,
            "credentials": [{"@type": "Password", "secret": "pw-for-nested-roles"}],
            "roles": {"@type": "Custom", "roleIds": {(wide.clone()): true}}}))
        .await;
    let nest = basic("nest@example.org", "pw-for-nested-roles");
    let (_, name, _) = server.call_as(&nest, "x:Account/get", json!({"ids": []})).await;
    assert_eq!(name, "x:Account/get", "sysAccountGet comes from the role it extends");
    let (_, name, _) = server.call_as(&nest, "x:Domain/get", json!({"ids": []})).await;
    assert_eq!(name, "x:Domain/get");
    let (_, name, _) = server.call_as(&nest, "x:Account/query", json!({})).await;
    assert_eq!(name, "error", "the extending role disables what the base grants");

    // base extending wide would be a cycle; destroying base, which wide extends, is linked.
    let (_, r) =
        server.call("x:Role/set", json!({"update": {(base.clone()): {"roleIds": {(wide.clone()): true}}}})).await;
    assert_eq!(r["notUpdated"][&base]["type"], "validationFailed", "{r}");
    let (_, r) = server.call("x:Role/set", json!({"destroy": [base]})).await;
    assert_eq!(r["notDestroyed"][&base]["type"], "objectIsLinked", "{r}");
    assert_eq!(r["notDestroyed"][&base]["linkedObjects"], json!([{"object": "Role", "id": wide}]));
    let (_, r) = server.call("x:Role/set", json!({"create": {"x": {"roleIds": {"zz": true}}}})).await;
    assert_eq!(r["notCreated"]["x"]["type"], "validationFailed", "a role needs its description: {r}");
    let (_, r) =
        server.call("x:Role/set", json!({"create": {"x": {"description": "x", "roleIds": {"zz": true}}}})).await;
    assert_eq!(r["notCreated"]["x"]["type"], "invalidForeignKey", "{r}");
    server.stop().await;
}
