//! Stalwart's own client, `stalwart-cli` 1.x, against the ledger: its whole
//! HTTP conversation replayed as `../shared/reference/stalwart-cli-wire.md`
//! describes it (redirects not followed, no transparent gzip, `Authorization`
//! on every request, no `accountId`, the apiUrl's path only), asserting each
//! answer as the client reads it.

use std::io::Read;

use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

use super::support::{TestServer, admin_auth};

/// The client as `stalwart-cli` builds it: no redirects, no gzip decoding.
struct Client {
    http: reqwest::Client,
    url: String,
    authorization: String,
    api_path: String,
    schema: Value,
    max_get: usize,
}

impl Client {
    /// Start-up (wire page §2.1): the schema through its redirect, then the session.
    async fn start(url: &str, authorization: &str) -> Client {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let get = |path: String| http.get(format!("{url}{path}")).header("authorization", authorization).send();
        let first = get("/api/schema".into()).await.unwrap();
        assert!(first.status().is_redirection(), "{}", first.status());
        let location = first.headers()["location"].to_str().unwrap().to_owned();
        let hash = location.rsplit('/').next().unwrap().to_owned();
        assert_eq!(location, format!("/api/schema/{hash}"));
        let second = get(location).await.unwrap();
        assert_eq!(second.status(), 200);
        assert_eq!(second.headers()["content-encoding"], "gzip");
        assert!(second.headers()["cache-control"].to_str().unwrap().contains("immutable"));
        let body = second.bytes().await.unwrap();
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut json).unwrap();
        let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&json));
        assert_eq!(digest, hash, "the redirect names the document's SHA-256, the client's cache key");
        let schema: Value = serde_json::from_slice(&json).unwrap();
        for key in ["objects", "schemas", "fields", "forms", "lists", "enums", "dashboards", "layouts"] {
            assert!(schema.get(key).is_some(), "the schema lacks {key}");
        }
        let session: Value = get("/jmap/session".into()).await.unwrap().json().await.unwrap();
        let core = &session["capabilities"]["urn:ietf:params:jmap:core"];
        assert!(core.is_object(), "{session}");
        let max_get = core["maxObjectsInGet"].as_u64().unwrap_or(500) as usize;
        let api_url = session["apiUrl"].as_str().unwrap();
        let path = api_url.split_once("://").map_or(api_url, |(_, rest)| &rest[rest.find('/').unwrap_or(rest.len())..]);
        let api_path = path.trim_end_matches('/').to_owned();
        Client { http, url: url.to_owned(), authorization: authorization.to_owned(), api_path, schema, max_get }
    }

    /// One POST of method calls, as the client sends them; the responses.
    async fn post(&self, calls: Value) -> Vec<Value> {
        let body = json!({"using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"], "methodCalls": calls});
        let response = self
            .http
            .post(format!("{}{}", self.url, self.api_path))
            .header("authorization", &self.authorization)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        let body: Value = response.json().await.unwrap();
        body["methodResponses"].as_array().unwrap().clone()
    }

    /// One call; its response arguments, with the name checked.
    async fn call(&self, name: &str, args: Value) -> Value {
        let responses = self.post(json!([[name, args, "c0"]])).await;
        assert_eq!(responses[0][0], name, "{}", responses[0]);
        responses[0][1].clone()
    }

    /// `query OBJECT [--fields …]`: query and get in one request, paging by
    /// anchor while a page is full (a server ignoring the anchor would loop
    /// forever: the test bounds the pages).
    async fn query(&self, object: &str, filter: Value, fields: Option<&[&str]>, limit: usize) -> Vec<Value> {
        let columns: Vec<String> = match fields {
            Some(f) => f.iter().map(|s| s.to_string()).collect(),
            None => self.schema["lists"][object]["columns"]
                .as_array()
                .expect("default columns")
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned())
                .collect(),
        };
        let mut properties = vec!["id".to_owned()];
        properties.extend(columns);
        let mut rows = Vec::new();
        let mut anchor: Option<String> = None;
        for _page in 0..100 {
            let mut query = json!({"filter": filter, "limit": limit});
            match &anchor {
                Some(a) => {
                    query["anchor"] = json!(a);
                    query["anchorOffset"] = json!(1);
                }
                None => query["calculateTotal"] = json!(true),
            }
            let r = self
                .post(json!([
                    [format!("{object}/query"), query, "q"],
                    [format!("{object}/get"), {"#ids": {"resultOf": "q", "name": format!("{object}/query"), "path": "/ids"}, "properties": properties}, "g"]
                ]))
                .await;
            assert_eq!(r[0][0], format!("{object}/query"), "{}", r[0]);
            assert_eq!(r[1][0], format!("{object}/get"), "{}", r[1]);
            let page = r[1][1]["list"].as_array().unwrap().clone();
            let full = page.len() == limit;
            anchor = page.last().map(|o| o["id"].as_str().unwrap().to_owned());
            rows.extend(page);
            if !full {
                return rows;
            }
        }
        panic!("query {object} did not end: the anchor was ignored");
    }
}

#[tokio::test]
async fn the_clients_conversation_works_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let cli = Client::start(&server.url, &admin_auth()).await;
    assert!(["/api", "/jmap"].contains(&cli.api_path.as_str()), "{}", cli.api_path);
    assert!(cli.max_get >= 2);

    // create tenant --field name=Acme (the reference page's account names one)
    let r = cli.call("x:Tenant/set", json!({"create": {"n0": {"name": "Acme"}}})).await;
    let tenant = r["created"]["n0"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();

    // create domain --field name=example.org
    let r = cli.call("x:Domain/set", json!({"create": {"n0": {"name": "example.org"}}})).await;
    let domain = r["created"]["n0"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();

    // create account/group, then the reference page's create account/user.
    let r = cli
        .call("x:Account/set", json!({"create": {"n0": {"name": "staff", "domainId": domain, "@type": "Group"}}}))
        .await;
    let group = r["created"]["n0"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let r = cli
        .call(
            "x:Account/set",
            json!({"create": {"n0": {
                "name": "alice", "domainId": domain, "credentials": [], "memberGroupIds": [], "memberTenantId": tenant,
                "roles": {"@type": "User"}, "permissions": {"@type": "Inherit"}, "quotas": {}, "aliases": [],
                "description": "Example", "locale": "en_US", "timeZone": "Africa/Abidjan",
                "encryptionAtRest": {"@type": "Disabled"}, "@type": "User"}}}),
        )
        .await;
    let created = &r["created"]["n0"];
    let alice = created["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    assert_eq!(created["emailAddress"], "alice@example.org", "server-set properties come back: {created}");

    // get account <id>: sets and object lists as maps, the domain's label by a second get.
    let got = cli.call("x:Account/get", json!({"ids": [alice], "properties": null})).await;
    let a = &got["list"][0];
    assert_eq!(a["memberGroupIds"], json!({}));
    assert_eq!(a["aliases"], json!({}));
    assert_eq!(a["credentials"], json!({}));
    assert_eq!(a["timeZone"], "Africa/Abidjan");
    let label = cli.call("x:Domain/get", json!({"ids": [domain], "properties": ["name"]})).await;
    assert_eq!(label["list"], json!([{"id": domain, "name": "example.org"}]));

    // get account <id> --fields name,credentials
    let got = cli.call("x:Account/get", json!({"ids": [alice], "properties": ["name", "credentials"]})).await;
    assert_eq!(got["list"], json!([{"id": alice, "name": "alice", "credentials": {}}]));

    // update account <id> --field description=Alice --field memberGroupIds/<group>=true
    let r = cli
        .call(
            "x:Account/set",
            json!({"update": {(alice.clone()): {"description": "Alice", (format!("memberGroupIds/{group}")): true}}}),
        )
        .await;
    assert!(r["updated"].as_object().is_some_and(|u| u.contains_key(&alice)), "{r}");
    let got = cli.call("x:Account/get", json!({"ids": [alice], "properties": ["memberGroupIds", "description"]})).await;
    assert_eq!(got["list"][0]["memberGroupIds"], json!({(group.clone()): true}));
    assert_eq!(got["list"][0]["description"], "Alice");

    // A rename's new address is in `updated` (the client prints it).
    let r = cli.call("x:Account/set", json!({"update": {(alice.clone()): {"name": "alicia"}}})).await;
    assert_eq!(r["updated"][&alice], json!({"emailAddress": "alicia@example.org"}), "{r}");

    // query account with the default columns, paged by anchor.
    for i in 0..5 {
        let r = cli
            .call(
                "x:Account/set",
                json!({"create": {"n0": {"name": format!("user{i}"), "domainId": domain, "@type": "User"}}}),
            )
            .await;
        assert!(r["created"]["n0"]["id"].is_string(), "{r}");
    }
    let rows = cli.query("x:Account", json!({}), None, 2).await;
    assert_eq!(rows.len(), 7, "every account once: {rows:?}");
    let mut ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 7);
    assert!(rows.iter().all(|r| r.get("emailAddress").is_some() && r.get("createdAt").is_some()), "{rows:?}");
    let rows = cli.query("x:Account", json!({"name": "user"}), Some(&["name"]), 2).await;
    assert_eq!(rows.len(), 5);
    let rows = cli.query("x:Domain", json!({}), None, cli.max_get).await;
    assert_eq!(rows[0]["name"], "example.org");
    let rows = cli.query("x:Tenant", json!({}), None, cli.max_get).await;
    assert_eq!((rows[0]["name"].as_str(), rows[0]["usedDiskQuota"].as_u64()), (Some("Acme"), Some(0)));

    // create role --field description=Helpdesk --field 'enabledPermissions={...}'
    let r = cli
        .call(
            "x:Role/set",
            json!({"create": {"n0": {"description": "Helpdesk",
            "enabledPermissions": {"sysAccountGet": true, "sysAccountQuery": true, "sysApiKeyGet": true,
                "sysApiKeyCreate": true, "sysApiKeyUpdate": true, "sysApiKeyDestroy": true, "sysApiKeyQuery": true, "sysAppPasswordGet": true,
                "sysAccountPasswordGet": true, "sysAccountPasswordUpdate": true}}}}),
        )
        .await;
    let role = r["created"]["n0"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let rows = cli.query("x:Role", json!({}), None, cli.max_get).await;
    assert_eq!(rows, vec![json!({"id": role, "description": "Helpdesk"})], "the role's label column");

    // A user with a password creates an API key for itself and uses it as Bearer.
    let weak = cli
        .call(
            "x:Account/set",
            json!({"create": {"n0": {"@type": "User", "name": "bob", "domainId": domain,
            "credentials": {"0": {"@type": "Password", "secret": "password1"}}}}}),
        )
        .await;
    assert_eq!(weak["notCreated"]["n0"]["type"], "invalidProperties", "weak password: {weak}");
    assert_eq!(weak["notCreated"]["n0"]["properties"], json!(["credentials/0/secret"]));
    let r = cli
        .call(
            "x:Account/set",
            json!({"create": {"n0": {"@type": "User", "name": "bob", "domainId": domain,
            "roles": {"@type": "Custom", "roleIds": {(role.clone()): true}},
            "credentials": {"0": {"@type": "Password", "secret": "correct horse battery staple"}}}}}),
        )
        .await;
    assert!(r["created"]["n0"]["id"].is_string(), "{r}");
    let bob =
        Client::start(&server.url, &super::support::basic("bob@example.org", "correct horse battery staple")).await;
    let before = bob.call("x:ApiKey/get", json!({"ids": []})).await["state"].clone();
    let r = bob
        .call("x:ApiKey/set", json!({"create": {"n0": {"description": "ci", "permissions": {"@type": "Inherit"}}}}))
        .await;
    let created = &r["created"]["n0"];
    let secret = created["secret"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let key_id = created["id"].as_str().unwrap().to_owned();
    let keys = bob.call("x:ApiKey/get", json!({"ids": null, "properties": null})).await;
    assert_eq!(keys["list"][0]["id"], key_id);
    assert_eq!(keys["list"][0]["secret"], "****", "shown once, masked after");
    let changed = bob.call("x:ApiKey/changes", json!({"sinceState": before})).await;
    assert_eq!((&changed["created"], &changed["destroyed"]), (&json!([key_id]), &json!([])), "{changed}");
    let query_changed = bob.call("x:ApiKey/queryChanges", json!({"sinceQueryState": before})).await;
    assert_eq!(query_changed["added"], json!([{"id": key_id, "index": 0}]), "{query_changed}");
    let app = bob.call("x:AppPassword/changes", json!({"sinceState": before})).await;
    assert_eq!(app["created"], json!([]), "an API key is no app password: {app}");
    let with_key = Client::start(&server.url, &format!("Bearer {secret}")).await;
    let got = with_key.call("x:Account/get", json!({"ids": [alice], "properties": ["name"]})).await;
    assert_eq!(got["list"][0]["name"], "alicia", "the key carries bob's role: {got}");
    // A key holder cannot change (or guess) the password.
    let answer = with_key
        .post(json!([["x:AccountPassword/set", {"update": {"singleton": {"secret": "a new passphrase here",
            "currentSecret": "a guess"}}}, "c0"]]))
        .await;
    assert_eq!(
        (answer[0][0].as_str(), answer[0][1]["type"].as_str()),
        (Some("error"), Some("forbidden")),
        "{answer:?}"
    );
    let r = bob.call("x:ApiKey/set", json!({"update": {(key_id.clone()): {"secret": "mine"}}})).await;
    assert_eq!(r["notUpdated"][&key_id]["type"], "forbidden", "a key's secret cannot change: {r}");

    // x:AccountPassword: a change needs the current password.
    let r = bob
        .call("x:AccountPassword/set", json!({"update": {"singleton": {"secret": "another long passphrase", "currentSecret": "wrong guess here"}}}))
        .await;
    assert_eq!(r["notUpdated"]["singleton"]["type"], "forbidden", "{r}");
    let r = bob
        .call(
            "x:AccountPassword/set",
            json!({"update": {"singleton": {"secret": "another long passphrase",
            "currentSecret": "correct horse battery staple"}}}),
        )
        .await;
    assert_eq!(r["updated"], json!({"singleton": null}), "{r}");
    let again = Client::start(&server.url, &super::support::basic("bob@example.org", "another long passphrase")).await;
    let me = again.call("x:AccountPassword/get", json!({})).await;
    assert_eq!(me["list"], json!([{"id": "singleton", "secret": "****", "currentSecret": null}]));
    let r = again.call("x:ApiKey/set", json!({"destroy": [key_id]})).await;
    assert_eq!(r["destroyed"], json!([key_id]), "{r}");
    let changed = again.call("x:ApiKey/changes", json!({"sinceState": keys["state"]})).await;
    assert_eq!(changed["destroyed"], json!([key_id]), "{changed}");

    // delete domain --ids <domain>,zz: the domain is in use, zz names nothing.
    let r = cli.call("x:Domain/set", json!({"destroy": [domain, "zz"]})).await;
    assert_eq!(r["destroyed"], Value::Null, "{r}");
    assert_eq!(r["notDestroyed"]["zz"]["type"], "notFound", "{r}");
    // delete account --ids <user0>,zz: one deleted, one failed.
    let user0 = &cli.query("x:Account", json!({"name": "user0"}), Some(&["name"]), 10).await[0]["id"];
    let r = cli.call("x:Account/set", json!({"destroy": [user0, "zz"]})).await;
    assert_eq!(r["destroyed"], json!([user0]), "{r}");
    assert_eq!(r["notDestroyed"]["zz"]["type"], "notFound", "{r}");
    server.stop().await;
}

#[tokio::test]
async fn the_schema_needs_credentials_and_names_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let anonymous = http.get(format!("{}/api/schema", server.url)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let cli = Client::start(&server.url, &admin_auth()).await;
    // An old hash is sent to the current document.
    let stale =
        http.get(format!("{}/api/schema/0000", server.url)).header("authorization", admin_auth()).send().await.unwrap();
    assert_eq!(stale.status(), 307);
    assert!(stale.headers()["location"].to_str().unwrap().starts_with("/api/schema/"));
    // Every property `/get` returns is in the schema, and the other way round.
    let objects = cli.schema["objects"].as_object().unwrap();
    assert_eq!(objects["x:Account"]["permissionPrefix"], "sysAccount");
    assert_eq!(cli.schema["schemas"]["x:Account"]["variants"][0]["schemaName"], "x:UserAccount");
    server.stop().await;
}

/// Stalwart fields the ledger does not serve (yet), and where its field
/// differs on purpose: each with the reason. Everything else must match.
const NOT_SERVED: &[(&str, &str, &str)] =
    &[("x:AccountPassword", "otpAuth", "the second factor is set on the Password credential (credentials/N/otpAuth)")];
const DIFFERENT: &[(&str, &str, &str)] =
    &[("x:Domain", "name", "immutable: every address under a domain is derived from its name")];

#[tokio::test]
async fn the_schema_matches_stalwarts_for_the_directory_objects() {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stalwart-directory-schema.json"))
            .unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let ours = Client::start(&server.url, &admin_auth()).await.schema;
    server.stop().await;
    let mut problems = Vec::new();
    for (schema, fields) in fixture["fields"].as_object().unwrap() {
        let served = &ours["fields"][schema]["properties"];
        if !served.is_object() {
            problems.push(format!("{schema} is not in the served schema"));
            continue;
        }
        for (name, theirs) in fields.as_object().unwrap() {
            let listed = |list: &[(&str, &str, &str)]| list.iter().any(|(s, n, _)| s == schema && n == name);
            match served.get(name) {
                None if listed(NOT_SERVED) => {}
                None => problems.push(format!("{schema}.{name} is not served")),
                Some(_) if listed(NOT_SERVED) => {
                    problems.push(format!("{schema}.{name} is served: take it off NOT_SERVED"))
                }
                Some(mine) => {
                    if mine["type"] != theirs["type"] {
                        problems
                            .push(format!("{schema}.{name}: type {} is Stalwart's {}", mine["type"], theirs["type"]));
                    }
                    if mine["update"] != theirs["update"] && !listed(DIFFERENT) {
                        problems.push(format!(
                            "{schema}.{name}: update {} is Stalwart's {}",
                            mine["update"], theirs["update"]
                        ));
                    }
                }
            }
        }
        for name in served.as_object().unwrap().keys() {
            if fields.get(name).is_none() && !(schema.contains("Credential") && name == "credentialId") {
                problems.push(format!("{schema}.{name} is served but is not Stalwart's"));
            }
        }
    }
    for (object, variants) in fixture["variants"].as_object().unwrap() {
        let served: Vec<Value> = ours["schemas"][object]["variants"]
            .as_array()
            .map(|v| v.iter().map(|v| json!([v["name"], v.get("schemaName")])).collect())
            .unwrap_or_default();
        for variant in variants.as_array().unwrap() {
            if !served.contains(variant) {
                problems.push(format!("{object}: variant {variant} is not served as Stalwart's"));
            }
        }
    }
    for (object, expected) in fixture["permissionPrefix"].as_object().unwrap() {
        let entry = &ours["objects"][object];
        if json!([entry["type"], entry["permissionPrefix"]]) != *expected {
            problems.push(format!("{object}: {entry} is not Stalwart's {expected}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn domains_carry_stalwarts_fields() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let cli = Client::start(&server.url, &admin_auth()).await;
    let r = cli
        .call(
            "x:Domain/set",
            json!({"create": {"n0": {"name": "example.org", "aliases": {"example.net": true},
            "catchAllAddress": "postmaster@example.org", "dkimManagement": {"@type": "Automatic"}}}}),
        )
        .await;
    let created = &r["created"]["n0"];
    let id = created["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    assert_eq!(created["isEnabled"], true, "defaults come back: {created}");
    assert_eq!(created["reportAddressUri"], "mailto:postmaster");
    assert_eq!(created["dkimManagement"]["algorithms"], json!({"Dkim1Ed25519Sha256": true, "Dkim1RsaSha256": true}));
    assert!(created["dnsZoneFile"].as_str().unwrap().starts_with("$ORIGIN example.org."), "{created}");
    // query domain without --fields asks for Stalwart's default columns.
    let rows = cli.query("x:Domain", json!({}), None, cli.max_get).await;
    assert_eq!(rows[0]["certificateManagement"], json!({"@type": "Manual"}), "{rows:?}");
    // An alias another domain has, a bad catch-all, an unknown field, a server-set one.
    let r = cli
        .call(
            "x:Domain/set",
            json!({"create": {
            "a": {"name": "other.org", "aliases": {"example.net": true}},
            "b": {"name": "third.org", "catchAllAddress": "not an address"},
            "c": {"name": "fourth.org", "subAddressing": {"@type": "Sometimes"}},
            "d": {"name": "fifth.org", "dnsZoneFile": "x"}}}),
        )
        .await;
    assert_eq!(r["notCreated"]["a"]["type"], "primaryKeyViolation", "{r}");
    assert_eq!(r["notCreated"]["a"]["objectId"], json!({"object": "Domain", "id": id}));
    assert_eq!(r["notCreated"]["b"]["type"], "validationFailed", "{r}");
    assert_eq!(r["notCreated"]["c"]["properties"], json!(["subAddressing"]), "{r}");
    assert_eq!(r["notCreated"]["d"]["properties"], json!(["dnsZoneFile"]), "{r}");
    // Patches into the set and the object; the server's changes come back.
    let r = cli
        .call(
            "x:Domain/set",
            json!({"update": {(id.clone()): {"aliases/example.com": true, "aliases/example.net": null,
            "isEnabled": false}}}),
        )
        .await;
    assert!(r["updated"].as_object().is_some_and(|u| u.contains_key(&id)), "{r}");
    let got = cli.call("x:Domain/get", json!({"ids": [id], "properties": ["aliases", "isEnabled"]})).await;
    assert_eq!(got["list"][0], json!({"id": id, "aliases": {"example.com": true}, "isEnabled": false}));
    server.stop().await;
}
