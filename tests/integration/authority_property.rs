//! The authorization property, over random directories and random writes:
//! after every write, no credential's effective rights grew past its writer's,
//! no credential's addresses or lifetime widened past its writer's, and no
//! answer to a tenant principal names another tenant's object.
//!
//! Each case builds a directory (tenants, shared and tenant domains, roles,
//! groups with modes, users with modes and narrowed API keys limited by address
//! and expiry), then runs random `/set` calls and reads, each as a random
//! credential. Rights are observed as a login sees them (the authenticator's
//! fold), addresses and lifetimes as `/get` shows them, independently of the
//! decide step under test. `cargo test` runs 200 cases; a longer run:
//! `LEDGER_AUTH_CASES=5000 cargo test --release --test integration authority_property`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use ledger::auth::Principal;
use ledger::auth::permissions::PermissionSet;
use ledger_events::values::UtcDateTime;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

/// The permissions the directories are made of, and one no list names (what
/// only `Admin` has).
const POOL: &[&str] = &[
    "sysAccountGet",
    "sysAccountQuery",
    "sysAccountCreate",
    "sysAccountUpdate",
    "sysAccountDestroy",
    "sysDomainGet",
    "sysDomainQuery",
    "sysDomainCreate",
    "sysRoleGet",
    "sysRoleUpdate",
    "sysApiKeyCreate",
    "sysApiKeyUpdate",
    "sysAccountSettingsGet",
    "sysAuditExport",
];
/// A permission no generated role, account or key holds.
const UNLISTED: &str = "sysQueuedMessageGet";
/// The tenants objects are placed in: none, and two `x:Tenant`s.
const TENANTS: [Option<&str>; 3] = [None, Some("t1"), Some("t2")];
const RANGES: &[&[&str]] = &[&[], &["127.0.0.1/32"], &["10.0.0.0/8"], &["10.1.0.0/16"]];
/// Far enough that nothing expires during a case.
const EXPIRIES: &[Option<&str>] = &[None, Some("2090-01-01T00:00:00Z"), Some("2080-01-01T00:00:00Z")];

/// A stream of choices taken from the generated numbers.
struct Choices {
    numbers: Vec<u32>,
    next: usize,
}

impl Choices {
    fn below(&mut self, n: usize) -> usize {
        let v = self.numbers[self.next % self.numbers.len()] as usize;
        self.next += 1;
        v.wrapping_add(self.next) % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self) -> bool {
        self.below(2) == 0
    }

    fn subset(&mut self, items: &[&str]) -> Vec<String> {
        items.iter().filter(|_| self.below(3) == 0).map(|s| (*s).to_owned()).collect()
    }
}

/// A credential whose secret the test knows.
#[derive(Clone, Debug)]
struct Key {
    secret: String,
}

/// One credential as observed: rights at login, bounds as `/get` shows them.
#[derive(Clone, Debug)]
struct Observed {
    rights: PermissionSet,
    allowed_ips: Vec<IpNet>,
    expires_at: Option<String>,
    tenant: Option<String>,
}

struct Harness {
    app: ledger::http::AppState,
    admin: Arc<Principal>,
    keys: Vec<Key>,
    /// Every id a tenant ever had an object under (objects may move).
    ever: BTreeMap<String, BTreeSet<Option<String>>>,
    log: Vec<String>,
    /// [`TENANTS`] by id: `None`, then the two tenants' ids.
    tenants: Vec<Option<String>>,
}

fn admin() -> Arc<Principal> {
    Arc::new(Principal::fallback("admin"))
}

fn now() -> UtcDateTime {
    UtcDateTime::from_millis(jiff::Timestamp::now().as_millisecond())
}

impl Harness {
    async fn call(&self, principal: &Arc<Principal>, method: &str, args: Value) -> Value {
        let body =
            json!({"using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"], "methodCalls": [[method, args, "c"]]});
        match ledger::jmap::api(&self.app.services, Arc::clone(principal), None, body.to_string().as_bytes()).await {
            Ok(response) => response["methodResponses"][0][1].clone(),
            Err(e) => panic!("request refused: {e:?}"),
        }
    }

    async fn admin_call(&self, method: &str, args: Value) -> Value {
        let admin = Arc::clone(&self.admin);
        self.call(&admin, method, args).await
    }

    /// Every account and domain as the administrator sees them.
    async fn everything(&self) -> (Vec<Value>, Vec<Value>) {
        let accounts = self.admin_call("x:Account/get", json!({"ids": null})).await;
        let domains = self.admin_call("x:Domain/get", json!({"ids": null})).await;
        (accounts["list"].as_array().unwrap().clone(), domains["list"].as_array().unwrap().clone())
    }

    /// Remembers the secrets a `/set` answer reveals.
    fn learn(&mut self, answer: &Value) {
        for group in ["created", "updated"] {
            if let Some(map) = answer[group].as_object() {
                for object in map.values() {
                    for c in object["credentials"].as_array().into_iter().flatten() {
                        if let Some(secret) = c["secret"].as_str() {
                            self.keys.push(Key { secret: secret.to_owned() });
                        }
                    }
                }
            }
        }
    }

    async fn track_tenants(&mut self) {
        let (accounts, domains) = self.everything().await;
        for o in accounts.iter().chain(&domains) {
            let tenant = o["memberTenantId"].as_str().map(str::to_owned);
            self.ever.entry(o["id"].as_str().unwrap().to_owned()).or_default().insert(tenant);
        }
    }

    /// Logs in with every known key; the usable ones, by credential id.
    async fn observe(&self) -> BTreeMap<String, (Observed, Arc<Principal>)> {
        let (accounts, _) = self.everything().await;
        let mut out = BTreeMap::new();
        for key in &self.keys {
            for ip in ["127.0.0.1", "10.1.2.3"] {
                let ip: IpAddr = ip.parse().unwrap();
                let header = format!("Bearer {}", key.secret);
                if let Ok(p) = self.app.auth.authenticate(&self.app.ledger, Some(&header), ip, now()) {
                    let credential = p.credential.as_ref().unwrap().id.to_jmap();
                    let holder = accounts
                        .iter()
                        .find(|a| {
                            a["credentials"].as_array().into_iter().flatten().any(|c| c["id"] == json!(credential))
                        })
                        .unwrap();
                    let c = holder["credentials"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|c| c["id"] == json!(credential))
                        .unwrap();
                    let observed = Observed {
                        rights: p.permissions.clone(),
                        allowed_ips: c["allowedIps"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|r| r.as_str().unwrap().parse().unwrap())
                            .collect(),
                        expires_at: c["expiresAt"].as_str().map(str::to_owned),
                        tenant: holder["memberTenantId"].as_str().map(str::to_owned),
                    };
                    out.insert(credential, (observed, Arc::new(p)));
                    break;
                }
            }
        }
        out
    }
}

/// Whether `inner` allows nothing `outer` does not (empty lists: anywhere;
/// no expiry: forever). Written here from the rule, not taken from the server.
fn within(inner: &Observed, outer: &Observed) -> bool {
    let addresses = outer.allowed_ips.is_empty()
        || (!inner.allowed_ips.is_empty()
            && inner.allowed_ips.iter().all(|i| outer.allowed_ips.iter().any(|o| o.contains(i))));
    let lifetime = match (&outer.expires_at, &inner.expires_at) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(o), Some(i)) => i <= o,
    };
    addresses && lifetime
}

fn universe() -> Vec<&'static str> {
    POOL.iter().copied().chain([UNLISTED, "sysAccountPasswordUpdate", "sysAppPasswordCreate"]).collect()
}

/// Every string in a JSON value, keys included.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                strings(v, out);
            }
        }
        _ => {}
    }
}

/// Fails if `answer`, given to a principal of `tenant`, names an object that
/// was never in that tenant nor shared (by id, address or domain name), unless
/// the request itself named it.
async fn assert_names_nothing_foreign(h: &Harness, tenant: &str, request: &Value, answer: &Value) {
    let (accounts, domains) = h.everything().await;
    let foreign = |id: &str| {
        h.ever.get(id).is_some_and(|tenants| tenants.iter().all(|t| t.as_deref().is_some_and(|t| t != tenant)))
    };
    let mut asked = Vec::new();
    strings(request, &mut asked);
    let mut said = Vec::new();
    strings(answer, &mut said);
    for o in accounts.iter().chain(&domains) {
        let id = o["id"].as_str().unwrap();
        if !foreign(id) {
            continue;
        }
        let name = o["emailAddress"].as_str().or(o["name"].as_str()).unwrap();
        let id_asked = asked.iter().any(|a| a == id);
        let name_asked = asked.iter().any(|a| a.contains(name));
        for s in &said {
            let leaked = (s == id && !id_asked) || (s.contains(name) && !name_asked);
            assert!(
                !leaked,
                "tenant {tenant} was told of {id} ({name}) in {s:?}\nrequest {request}\nanswer {answer}\nlog {:#?}",
                h.log
            );
        }
    }
}

/// Builds a random directory; returns the harness.
async fn directory(dir: &std::path::Path, c: &mut Choices) -> Harness {
    let ledger = ledger::Ledger::open(dir, ledger::Durability::Buffered).unwrap();
    let config = ledger::auth::AuthConfig {
        admin_password: Some("property-admin".into()),
        per_source: ledger::auth::limiter::Budget {
            max_failures: u32::MAX,
            window: std::time::Duration::from_secs(60),
        },
        per_account: ledger::auth::limiter::Budget {
            max_failures: u32::MAX,
            window: std::time::Duration::from_secs(60),
        },
        ..Default::default()
    };
    let (app, _) = ledger::http::AppState::open(ledger, dir, &config, ledger::jmap::ServicesConfig::default()).unwrap();
    let mut h =
        Harness { app, admin: admin(), keys: Vec::new(), ever: BTreeMap::new(), log: Vec::new(), tenants: Vec::new() };
    for name in TENANTS {
        let id = match name {
            Some(name) => {
                let r = h.admin_call("x:Tenant/set", json!({"create": {"t": {"name": name}}})).await;
                Some(r["created"]["t"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned())
            }
            None => None,
        };
        h.tenants.push(id);
    }
    let mut domains = Vec::new();
    for (i, tenant) in h.tenants.clone().iter().enumerate() {
        let r = h
            .admin_call(
                "x:Domain/set",
                json!({"create": {"d": {"name": format!("dom{i}.example"), "memberTenantId": tenant}}}),
            )
            .await;
        domains.push((r["created"]["d"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned(), tenant.clone()));
    }
    let mut roles = Vec::new();
    for i in 0..3 {
        let r = h
            .admin_call(
                "x:Role/set",
                json!({"create": {"r": {"description": format!("role{i}"), "enabledPermissions": c.subset(POOL)}}}),
            )
            .await;
        roles.push(r["created"]["r"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned());
    }
    let mut groups = Vec::new();
    for i in 0..2 {
        let (domain, tenant) = c.pick(&domains).clone();
        let r = h
            .admin_call(
                "x:Account/set",
                json!({"create": {"g": {"@type": "Group", "name": format!("group{i}"), "domainId": domain,
                    "memberTenantId": tenant, "roles": group_roles(c, &roles), "permissions": mode(c)}}}),
            )
            .await;
        groups.push((r["created"]["g"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned(), tenant));
    }
    for i in 0..5 {
        let (domain, tenant) = c.pick(&domains).clone();
        let member: Vec<&String> =
            groups.iter().filter(|(_, t)| t.is_none() || *t == tenant).filter(|_| c.chance()).map(|(g, _)| g).collect();
        let credentials: Vec<Value> = (0..1 + c.below(2)).map(|_| api_key(c)).collect();
        let r = h
            .admin_call(
                "x:Account/set",
                json!({"create": {"u": {"@type": "User", "name": format!("user{i}"), "domainId": domain,
                    "memberTenantId": tenant, "roles": user_roles(c, &roles), "permissions": mode(c),
                    "memberGroupIds": member, "credentials": credentials}}}),
            )
            .await;
        assert!(r["created"]["u"].is_object(), "{r}");
        h.learn(&r);
    }
    h.track_tenants().await;
    h
}

fn user_roles(c: &mut Choices, roles: &[String]) -> Value {
    match c.below(4) {
        0 => json!({"@type": "Admin"}),
        1 => json!({"@type": "User"}),
        _ => json!({"@type": "Custom", "roleIds": roles.iter().filter(|_| c.chance()).collect::<Vec<_>>()}),
    }
}

fn group_roles(c: &mut Choices, roles: &[String]) -> Value {
    match c.below(2) {
        0 => json!({"@type": "Default"}),
        _ => json!({"@type": "Custom", "roleIds": roles.iter().filter(|_| c.chance()).collect::<Vec<_>>()}),
    }
}

fn mode(c: &mut Choices) -> Value {
    match c.below(3) {
        0 => json!({"@type": "Inherit"}),
        1 => json!({"@type": "Merge", "enabledPermissions": c.subset(POOL), "disabledPermissions": c.subset(POOL)}),
        _ => json!({"@type": "Replace", "enabledPermissions": c.subset(POOL), "disabledPermissions": c.subset(POOL)}),
    }
}

fn narrowing(c: &mut Choices) -> Value {
    match c.below(3) {
        0 => json!({"@type": "Inherit"}),
        1 => json!({"@type": "Replace", "permissions": c.subset(&universe())}),
        _ => json!({"@type": "Disable", "permissions": c.subset(POOL)}),
    }
}

fn api_key(c: &mut Choices) -> Value {
    json!({"@type": "ApiKey", "description": "k", "permissions": narrowing(c),
        "allowedIps": c.pick(RANGES), "expiresAt": c.pick(EXPIRIES)})
}

/// One random call as `writer`: a `/set` (returns the request) or a read.
async fn random_call(h: &Harness, c: &mut Choices) -> (&'static str, Value) {
    let (accounts, domains) = h.everything().await;
    let ids: Vec<String> = accounts.iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect();
    let groups: Vec<String> =
        accounts.iter().filter(|a| a["@type"] == "Group").map(|a| a["id"].as_str().unwrap().to_owned()).collect();
    let users: Vec<&Value> = accounts.iter().filter(|a| a["@type"] == "User").collect();
    let domain_ids: Vec<String> = domains.iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect();
    let roles = h.admin_call("x:Role/get", json!({"ids": null})).await;
    let role_ids: Vec<String> =
        roles["list"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    match c.below(9) {
        0 => {
            let id = c.pick(&ids).clone();
            let patch = match c.below(5) {
                0 => json!({"roles": user_roles(c, &role_ids)}),
                1 => json!({"permissions": mode(c)}),
                2 => json!({"memberGroupIds": groups.iter().filter(|_| c.chance()).collect::<Vec<_>>()}),
                3 => json!({"memberTenantId": c.pick(&h.tenants)}),
                _ => json!({"description": "changed"}),
            };
            ("x:Account/set", json!({"update": {id: patch}}))
        }
        1 => {
            let n = c.below(1000);
            let member: Vec<&String> = groups.iter().filter(|_| c.chance()).collect();
            (
                "x:Account/set",
                json!({"create": {"n": {"@type": "User", "name": format!("new{n}"),
                "domainId": c.pick(&domain_ids), "memberTenantId": c.pick(&h.tenants), "roles": user_roles(c, &role_ids),
                "permissions": mode(c), "memberGroupIds": member, "credentials": [api_key(c)]}}}),
            )
        }
        2 if !users.is_empty() => {
            let user = *c.pick(&users);
            let n = user["credentials"].as_array().unwrap().len();
            (
                "x:Account/set",
                json!({"update": {user["id"].as_str().unwrap(): {format!("credentials/{n}"): api_key(c)}}}),
            )
        }
        3 if !users.is_empty() => {
            let user = *c.pick(&users);
            let n = user["credentials"].as_array().unwrap().len();
            if n == 0 {
                return ("x:Account/get", json!({"ids": null}));
            }
            let i = c.below(n);
            let patch = match c.below(3) {
                0 => json!({format!("credentials/{i}/permissions"): narrowing(c)}),
                1 => json!({format!("credentials/{i}/allowedIps"): c.pick(RANGES)}),
                _ => json!({format!("credentials/{i}/expiresAt"): c.pick(EXPIRIES)}),
            };
            ("x:Account/set", json!({"update": {user["id"].as_str().unwrap(): patch}}))
        }
        4 => ("x:Role/set", json!({"update": {c.pick(&role_ids): {"enabledPermissions": c.subset(&universe())}}})),
        5 => {
            let n = c.below(1000);
            (
                "x:Domain/set",
                json!({"create": {"d": {"name": format!("new{n}.example"), "memberTenantId": c.pick(&h.tenants)}}}),
            )
        }
        6 => ("x:Account/set", json!({"destroy": [c.pick(&ids)]})),
        7 => (
            *c.pick(&["x:Account/changes", "x:Domain/changes", "x:Account/queryChanges", "x:Domain/queryChanges"]),
            json!({"sinceState": "0", "sinceQueryState": "0"}),
        ),
        _ => (*c.pick(&["x:Account/query", "x:Domain/query", "x:Account/get", "x:Domain/get"]), json!({})),
    }
}

async fn run_case(numbers: Vec<u32>, steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Choices { numbers, next: 0 };
    let mut h = directory(dir.path(), &mut c).await;
    for step in 0..steps {
        let before = h.observe().await;
        let writers: Vec<&String> = before.keys().collect();
        if writers.is_empty() {
            return;
        }
        let writer_id = c.pick(&writers).to_string();
        let (writer_seen, writer) = before[&writer_id].clone();
        let (method, mut args) = random_call(&h, &mut c).await;
        // Reads take only the arguments their method knows.
        if method.ends_with("/changes") {
            args = json!({"sinceState": "0"});
        } else if method.ends_with("/queryChanges") {
            args = json!({"sinceQueryState": "0"});
        } else if method.ends_with("/get") {
            args = json!({"ids": null});
        }
        let answer = h.call(&writer, method, args.clone()).await;
        h.log.push(format!("step {step}: {writer_id} ({:?}) {method} {args} -> {answer}", writer.tenant));
        h.learn(&answer);
        h.track_tenants().await;
        if let Some(tenant) = writer.tenant.as_ref() {
            assert_names_nothing_foreign(&h, tenant.as_str(), &args, &answer).await;
        }
        let after = h.observe().await;
        for (id, (now, _)) in &after {
            let was = before.get(id).map(|(o, _)| o).filter(|was| was.tenant == now.tenant);
            for p in universe() {
                let grew = now.rights.may(p) && !was.is_some_and(|w| w.rights.may(p));
                assert!(
                    !grew || writer.permissions.may(p),
                    "credential {id} gained {p}, which its writer {writer_id} lacks\nlog {:#?}",
                    h.log
                );
            }
            let widened = was.is_none_or(|w| !within(now, w));
            assert!(
                !widened || within(now, &writer_seen),
                "credential {id} now reaches beyond its writer {writer_id}: {now:?} vs {writer_seen:?}\nlog {:#?}",
                h.log
            );
            if was.is_none() && before.contains_key(id) {
                assert!(writer.tenant.is_none(), "a tenant principal moved credential {id} to another tenant");
            }
        }
    }
}

#[test]
fn no_write_grows_rights_past_its_writer_or_shows_a_tenant_another() {
    let cases = std::env::var("LEDGER_AUTH_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut runner =
        TestRunner::new(Config { cases, failure_persistence: None, max_shrink_iters: 64, ..Config::default() });
    let plan = (proptest::collection::vec(any::<u32>(), 64..256), 3usize..8);
    runner
        .run(&plan, |(numbers, steps)| {
            runtime.block_on(run_case(numbers, steps));
            Ok(())
        })
        .unwrap();
}
