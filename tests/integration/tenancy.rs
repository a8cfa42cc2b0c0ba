//! A tenant is a boundary for everything: another tenant's domains, groups,
//! addresses and changes do not exist for it, by any channel — `/set` errors,
//! `/changes`, `/queryChanges`, push.

use serde_json::{Value, json};

use super::support::TestServer;

struct World {
    server: TestServer,
    /// The Bearer header of t1's administrator.
    t1: String,
    /// The ids of tenants t1 and t2.
    tn1: String,
    tn2: String,
    d1: String,
    d2: String,
    /// A group and a user of t2.
    g2: String,
    u2: String,
}

async fn world(dir: &std::path::Path) -> World {
    let server = TestServer::start(dir).await;
    let tn1 = server.tenant("t1").await;
    let tn2 = server.tenant("t2").await;
    let d1 = server.domain_in("one.example", &tn1).await;
    let d2 = server.domain_in("two.example", &tn2).await;
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"a": {"@type": "User", "name": "admin", "domainId": d1, "memberTenantId": tn1,
                "roles": {"@type": "Admin"},
                "credentials": [{"@type": "ApiKey", "description": "t1", "permissions": {"@type": "Inherit"}}]}}}),
        )
        .await;
    let t1 = format!("Bearer {}", r["created"]["a"]["credentials"]["0"]["secret"].as_str().unwrap());
    let g2 = server.account(json!({"@type": "Group", "name": "staff", "domainId": d2, "memberTenantId": tn2})).await;
    let u2 = server
        .account(json!({"@type": "User", "name": "postmaster", "domainId": d2, "memberTenantId": tn2,
            "aliases": [{"name": "billing", "domainId": d2}]}))
        .await;
    World { server, t1, tn1, tn2, d1, d2, g2, u2 }
}

/// The error of one `/set` item, with the id it names replaced, so the
/// answers for two different ids can be compared.
fn answer_for(answer: &Value, kind: &str, key: &str, id: &str) -> String {
    let error = &answer[kind][key];
    assert!(error.is_object(), "{answer}");
    // Whole words only: ids are short base32 strings.
    let text = error.to_string();
    let mut out = String::new();
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() {
            word.push(c);
            continue;
        }
        out.push_str(if word == id { "<id>" } else { &word });
        word.clear();
        out.push(c);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn another_tenants_domains_groups_and_addresses_look_like_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path()).await;
    let free = "zzzz";
    let create = |object: Value| json!({"create": {"x": object}});
    // A domain of t2, and an id nothing has: the same answer.
    let mut answers = Vec::new();
    for d in [&w.d2, free] {
        let (_, _, r) = w
            .server
            .call_as(&w.t1, "x:Account/set", create(json!({"@type": "User", "name": "postmaster", "domainId": d})))
            .await;
        answers.push(answer_for(&r, "notCreated", "x", d));
    }
    assert_eq!(answers[0], answers[1]);
    // An alias in t2's domain.
    let (_, _, me) = w.server.call_as(&w.t1, "x:Account/query", json!({"filter": {"name": "admin"}})).await;
    let me = me["ids"][0].as_str().unwrap().to_owned();
    let mut answers = Vec::new();
    for d in [&w.d2, free] {
        let (_, _, r) = w
            .server
            .call_as(
                &w.t1,
                "x:Account/set",
                json!({"update": {&me: {"aliases": [{"name": "billing", "domainId": d}]}}}),
            )
            .await;
        answers.push(answer_for(&r, "notUpdated", &me, d));
    }
    assert_eq!(answers[0], answers[1]);
    // A group of t2, a user of t2 and a free id as memberGroupIds.
    let mut answers = Vec::new();
    for g in [&w.g2, &w.u2, free] {
        let (_, _, r) = w
            .server
            .call_as(
                &w.t1,
                "x:Account/set",
                create(json!({"@type": "User", "name": "joiner", "domainId": w.d1, "memberGroupIds": [g]})),
            )
            .await;
        answers.push(answer_for(&r, "notCreated", "x", g));
    }
    assert!(answers.windows(2).all(|p| p[0] == p[1]), "{answers:?}");
    // Shared domains and groups are not the tenant's to use either: the same
    // answer as a missing id, whether the address there is taken or free.
    let shared = w.server.domain("shared.example").await;
    w.server.account(json!({"@type": "User", "name": "taken", "domainId": shared})).await;
    let shared_group = w.server.account(json!({"@type": "Group", "name": "everyone", "domainId": shared})).await;
    let mut answers = Vec::new();
    for (name, domain) in [("taken", &shared), ("free", &shared), ("free", &free.to_owned())] {
        let (_, _, r) = w
            .server
            .call_as(&w.t1, "x:Account/set", create(json!({"@type": "User", "name": name, "domainId": domain})))
            .await;
        answers.push(answer_for(&r, "notCreated", "x", domain));
    }
    assert!(answers.windows(2).all(|p| p[0] == p[1]), "{answers:?}");
    let mut answers = Vec::new();
    for g in [&shared_group, &free.to_owned()] {
        let (_, _, r) = w
            .server
            .call_as(
                &w.t1,
                "x:Account/set",
                create(json!({"@type": "User", "name": "j2", "domainId": w.d1, "memberGroupIds": [g]})),
            )
            .await;
        answers.push(answer_for(&r, "notCreated", "x", g));
    }
    assert_eq!(answers[0], answers[1]);
    // t2's domain is not there for t1 at all.
    let (_, _, r) = w.server.call_as(&w.t1, "x:Domain/get", json!({"ids": [w.d2]})).await;
    assert_eq!(r["notFound"], json!([w.d2]));
    let (_, _, r) = w.server.call_as(&w.t1, "x:Domain/query", json!({})).await;
    assert_eq!(r["ids"], json!([w.d1]));
    // A global administrator sees who holds a name.
    let (_, r) = w.server.call("x:Domain/set", json!({"create": {"x": {"name": "two.example"}}})).await;
    assert_eq!(r["notCreated"]["x"]["existingId"], json!(w.d2));
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_and_query_changes_show_a_tenant_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path()).await;
    let (_, start) = w.server.call("x:Account/get", json!({"ids": []})).await;
    let start = start["state"].as_str().unwrap().to_owned();
    let (_, _, q) = w.server.call_as(&w.t1, "x:Account/query", json!({})).await;
    let query_state = q["queryState"].as_str().unwrap().to_owned();
    let (_, _, dq) = w.server.call_as(&w.t1, "x:Domain/get", json!({"ids": []})).await;
    let domain_state = dq["state"].as_str().unwrap().to_owned();
    // t2 creates, updates and destroys; t1 creates one account.
    let new2 =
        w.server.account(json!({"@type": "User", "name": "new2", "domainId": w.d2, "memberTenantId": w.tn2})).await;
    w.server.call("x:Account/set", json!({"update": {&w.u2: {"description": "changed"}}})).await;
    w.server.call("x:Account/set", json!({"destroy": [&w.g2]})).await;
    w.server.call("x:Domain/set", json!({"update": {&w.d2: {"description": "t2's"}}})).await;
    let new1 =
        w.server.account(json!({"@type": "User", "name": "new1", "domainId": w.d1, "memberTenantId": w.tn1})).await;
    let (_, _, c) = w.server.call_as(&w.t1, "x:Account/changes", json!({"sinceState": start})).await;
    assert_eq!((&c["created"], &c["updated"], &c["destroyed"]), (&json!([new1]), &json!([]), &json!([])), "{c}");
    let (_, _, qc) = w.server.call_as(&w.t1, "x:Account/queryChanges", json!({"sinceQueryState": query_state})).await;
    assert_eq!(qc["removed"], json!([]), "{qc}");
    assert_eq!(qc["added"].as_array().unwrap().len(), 1, "{qc}");
    let (_, _, dc) = w.server.call_as(&w.t1, "x:Domain/changes", json!({"sinceState": domain_state})).await;
    assert_eq!(dc["updated"], json!([]), "{dc}");
    // The global administrator sees them all.
    let (_, c) = w.server.call("x:Account/changes", json!({"sinceState": start})).await;
    for id in [&new2, &w.u2, &w.g2, &new1] {
        assert!(c.to_string().contains(id.as_str()), "{id}: {c}");
    }
    w.server.stop().await;
}

/// Reads server-sent events until `done` says so; returns what was read.
async fn read_events(response: &mut reqwest::Response, done: impl Fn(&str) -> bool) -> String {
    let mut seen = String::new();
    while !done(&seen) {
        match response.chunk().await.unwrap() {
            Some(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            None => break,
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn push_tells_a_tenant_only_of_its_own_changes() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path()).await;
    let mut push = w
        .server
        .client()
        .get(format!("{}/eventsource/?types=x:Account", w.server.url))
        .header("authorization", &w.t1)
        .send()
        .await
        .unwrap();
    assert_eq!(push.status(), 200);
    // t2 changes first, then t1: the first StateChange t1 hears must be its
    // own, carrying the state after t1's change.
    w.server.call("x:Account/set", json!({"update": {&w.u2: {"description": "t2 only"}}})).await;
    w.server.account(json!({"@type": "User", "name": "mine", "domainId": w.d1, "memberTenantId": w.tn1})).await;
    let (_, now) = w.server.call("x:Account/get", json!({"ids": []})).await;
    let state = now["state"].as_str().unwrap().to_owned();
    let seen = read_events(&mut push, |s| s.contains("StateChange")).await;
    let events: Vec<&str> = seen.split("\n\n").filter(|e| e.contains("StateChange")).collect();
    assert_eq!(events.len(), 1, "{seen}");
    assert!(events[0].contains(&format!("\"x:Account\":\"{state}\"")), "told of its own change only: {seen}");
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn history_shows_a_tenant_only_its_own_time_and_actors() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path()).await;
    let mover = w
        .server
        .account(json!({"@type": "User", "name": "mover", "domainId": w.d2, "memberTenantId": w.tn2,
            "description": "t2 internal", "aliases": [{"name": "ceo-private", "domainId": w.d2}], "memberGroupIds": [w.g2]}))
        .await;
    let (_, r) = w
        .server
        .call(
            "x:Account/set",
            json!({"update": {&mover: {"memberTenantId": w.tn1, "domainId": w.d1, "aliases": [], "memberGroupIds": [],
                "description": null}}}),
        )
        .await;
    assert!(r["updated"].get(&mover).is_some(), "{r}");
    // In t1: the global administrator, then t1's own, change it.
    w.server.call("x:Account/set", json!({"update": {&mover: {"description": "by the operator"}}})).await;
    let (_, _, r) =
        w.server.call_as(&w.t1, "x:Account/set", json!({"update": {&mover: {"description": "by t1"}}})).await;
    assert!(r["updated"].get(&mover).is_some(), "{r}");
    let (_, _, h) = w.server.call_as(&w.t1, "x:AccountHistory/get", json!({"ids": [&mover]})).await;
    let events = h["list"][0]["events"].as_array().unwrap_or_else(|| panic!("{h}"));
    let text = h.to_string();
    assert_eq!(events.len(), 2, "only its time in t1: {h}");
    for secret in ["t2 internal", "ceo-private", "two.example", &format!("\"{}\"", w.g2)] {
        assert!(!text.contains(secret), "{secret} from t2's time: {h}");
    }
    assert!(events[0]["actor"]["id"].is_null() && events[0]["actor"]["name"].is_null(), "the operator: {h}");
    assert_eq!(events[1]["actor"]["name"], "admin@one.example", "t1's own actor: {h}");
    // The global administrator sees it all.
    let (_, h) = w.server.call("x:AccountHistory/get", json!({"ids": [&mover]})).await;
    assert!(h.to_string().contains("ceo-private"));
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn as_of_inside_a_commit_reads_the_state_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path()).await;
    let mover = w
        .server
        .account(json!({"@type": "User", "name": "mover", "domainId": w.d2, "memberTenantId": w.tn2,
            "aliases": [{"name": "secret-alias", "domainId": w.d2}], "memberGroupIds": [w.g2]}))
        .await;
    let before = w.server.ledger.read().last_seq;
    w.server
        .call(
            "x:Account/set",
            json!({"update": {&mover: {"memberTenantId": w.tn1, "domainId": w.d1, "aliases": [], "memberGroupIds": []}}}),
        )
        .await;
    let end = w.server.ledger.read().last_seq;
    assert!(end > before + 1, "the move is several events");
    for position in before + 1..=end {
        let (_, _, r) = w.server.call_as(&w.t1, "x:Account/get", json!({"ids": [&mover], "asOf": position})).await;
        assert_eq!(r["asOf"], json!(end), "position {position} is inside the commit: {r}");
        assert!(!r.to_string().contains("secret-alias"), "{r}");
    }
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn get_without_ids_and_push_reconnects_count_only_the_tenants_own() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| config.limits.max_objects_in_get = 3).await;
    let (tn1, tn2) = (server.tenant("t1").await, server.tenant("t2").await);
    let (_, r) = server
        .call(
            "x:Domain/set",
            json!({"create": {"a": {"name": "one.example", "memberTenantId": tn1},
        "b": {"name": "two.example", "memberTenantId": tn2}}}),
        )
        .await;
    let (d1, d2) =
        (r["created"]["a"]["id"].as_str().unwrap().to_owned(), r["created"]["b"]["id"].as_str().unwrap().to_owned());
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"a": {"@type": "User", "name": "admin", "domainId": d1, "memberTenantId": tn1,
                "roles": {"@type": "Admin"},
                "credentials": [{"@type": "ApiKey", "description": "t1", "permissions": {"@type": "Inherit"}}]}}}),
        )
        .await;
    let t1 = format!("Bearer {}", r["created"]["a"]["credentials"]["0"]["secret"].as_str().unwrap());
    for i in 0..5 {
        server
            .account(json!({"@type": "User", "name": format!("other{i}"), "domainId": d2, "memberTenantId": tn2}))
            .await;
    }
    let (_, _, all) = server.call_as(&t1, "x:Account/get", json!({"ids": null})).await;
    assert_eq!(all["list"].as_array().map(Vec::len), Some(1), "its one account, no hint of five others: {all}");
    // A reconnect after t2-only changes hears nothing at once (a ping comes first).
    let seen = server.ledger.read().last_seq - 3;
    let mut push = server
        .client()
        .get(format!("{}/eventsource/?types=x:Account&ping=1", server.url))
        .header("authorization", &t1)
        .header("last-event-id", seen.to_string())
        .send()
        .await
        .unwrap();
    let first = read_events(&mut push, |s| s.contains("\n\n")).await;
    assert!(first.contains("event: ping") && !first.contains("StateChange"), "{first}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_are_objects_that_member_tenant_ids_must_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (_, r) = server
        .call(
            "x:Tenant/set",
            json!({"create": {"t": {"name": "Acme", "quotas": {"maxAccounts": 1, "maxDomains": 1},
                "permissions": {"@type": "Merge", "disabledPermissions": {"sysDomainGet": true}}}}}),
        )
        .await;
    let acme = r["created"]["t"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    assert_eq!(r["created"]["t"]["usedDiskQuota"], 0, "server-set properties come back: {r}");
    let (_, r) = server.call("x:Tenant/set", json!({"create": {"t": {"name": "acme"}}})).await;
    assert_eq!(r["notCreated"]["t"]["type"], "primaryKeyViolation", "{r}");
    assert_eq!(r["notCreated"]["t"]["objectId"], json!({"object": "Tenant", "id": acme}));

    // memberTenantId must name a tenant.
    let (_, r) =
        server.call("x:Domain/set", json!({"create": {"d": {"name": "x.example", "memberTenantId": "zz"}}})).await;
    assert_eq!(r["notCreated"]["d"]["type"], "invalidForeignKey", "{r}");
    assert_eq!(r["notCreated"]["d"]["objectId"], json!({"object": "Tenant", "id": "zz"}));
    let (_, r) = server
        .call(
            "x:Domain/set",
            json!({"create": {"d": {"name": "acme.example", "memberTenantId": acme},
            "e": {"name": "more.example", "memberTenantId": acme}}}),
        )
        .await;
    let d = r["created"]["d"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    assert_eq!(r["notCreated"]["e"]["type"], "overQuota", "maxDomains 1: {r}");

    // An account of the tenant: its maxAccounts, and what the tenant disables.
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {
                "a": {"@type": "User", "name": "ops", "domainId": d, "memberTenantId": acme, "roles": {"@type": "Admin"},
                      "credentials": {"0": {"@type": "Password", "secret": "acme-ops-passphrase"}}},
                "b": {"@type": "User", "name": "two", "domainId": d, "memberTenantId": acme}}}),
        )
        .await;
    let ops = r["created"]["a"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    assert_eq!(r["notCreated"]["b"]["type"], "overQuota", "maxAccounts 1: {r}");
    let login = super::support::basic("ops@acme.example", "acme-ops-passphrase");
    let (_, name, answer) = server.call_as(&login, "x:Domain/get", json!({"ids": null})).await;
    assert_eq!((name.as_str(), &answer["type"]), ("error", &json!("forbidden")), "the tenant disables it: {answer}");
    let (_, name, _) = server.call_as(&login, "x:Account/get", json!({"ids": [ops]})).await;
    assert_eq!(name, "x:Account/get");
    // Its tenant, not another's.
    let other = server.tenant("Other").await;
    let (_, _, tenants) = server.call_as(&login, "x:Tenant/get", json!({"ids": null})).await;
    let ids: Vec<&str> = tenants["list"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [acme.as_str()], "{tenants}");
    let (_, _, tenants) = server.call_as(&login, "x:Tenant/get", json!({"ids": [other]})).await;
    assert_eq!(tenants["notFound"], json!([other]));
    let (_, _, r) = server.call_as(&login, "x:Tenant/set", json!({"update": {(acme.clone()): {"name": "Mine"}}})).await;
    assert_eq!(r["type"], "forbidden", "tenants are global objects: {r}");

    // A tenant with members cannot go; its disk usage is its accounts'.
    let (_, r) = server
        .call("x:Account/reportUsage", json!({"reports": [{"id": ops, "quota": "maxDiskQuota", "used": 4096}]}))
        .await;
    assert!(r.get("type").is_none(), "{r}");
    let (_, got) = server.call("x:Tenant/get", json!({"ids": [acme]})).await;
    assert_eq!(got["list"][0]["usedDiskQuota"], 4096, "{got}");
    assert_eq!(got["list"][0]["quotas"], json!({"maxAccounts": 1, "maxDomains": 1}));
    let (_, r) = server.call("x:Tenant/set", json!({"destroy": [acme]})).await;
    let linked = &r["notDestroyed"][&acme];
    assert_eq!(linked["type"], "objectIsLinked", "{r}");
    assert!(linked["linkedObjects"].as_array().unwrap().contains(&json!({"object": "Account", "id": ops})), "{r}");
    let (_, q) = server.call("x:Tenant/query", json!({"filter": {"name": "ac"}})).await;
    assert_eq!(q["ids"], json!([acme]));
    server.stop().await;
}
