//! Random large and nested requests to every endpoint (issue 15): each answer
//! is bounded in size and in time, none is a server error, and the server
//! still serves and its chain verifies afterwards. Seeded, so a failure
//! reproduces: `LEDGER_FUZZ_SEED=N LEDGER_FUZZ_CASES=M cargo test --test
//! integration fuzz` (the seed of a failing case is in its message).

use std::time::Duration;

use ledger::seed::SeedRng;
use serde_json::{Map, Value, json};

use super::support::{TestServer, USING, admin_auth, basic};

/// The largest answer any endpoint may give here: the 20,000,000 bytes of
/// method responses plus the envelope.
const MAX_ANSWER: usize = 21_000_000;
/// Time one answer may take on a loaded 2-core machine (a bound, not a
/// performance figure: the slowest legitimate case hashes 64 passwords).
const MAX_TIME: Duration = Duration::from_secs(60);

const METHODS: &[&str] = &[
    "Core/echo",
    "x:Account/get",
    "x:Account/set",
    "x:Account/query",
    "x:Account/changes",
    "x:Account/queryChanges",
    "x:Account/reportUsage",
    "x:AccountHistory/get",
    "x:Domain/get",
    "x:Domain/set",
    "x:Domain/query",
    "x:Domain/changes",
    "x:Role/get",
    "x:Role/set",
    "x:Role/query",
    "x:Database/purge",
    "x:Nothing/get",
];

/// Argument names of the methods (not `accountId`, `filter`, `create`, `update`:
/// those are made apart).
const ARGUMENTS: &[&str] = &[
    "ids",
    "properties",
    "destroy",
    "sort",
    "position",
    "anchor",
    "anchorOffset",
    "limit",
    "calculateTotal",
    "sinceState",
    "maxChanges",
    "reports",
    "asOf",
    "ifInState",
    "#ids",
];

/// Words for keys and values besides [`ARGUMENTS`]: other argument and
/// property names, and text that has tripped parsers before.
const WORDS: &[&str] = &[
    "accountId",
    "create",
    "update",
    "filter",
    "name",
    "domainId",
    "@type",
    "User",
    "Group",
    "credentials",
    "aliases",
    "secret",
    "Password",
    "ApiKey",
    "AppPassword",
    "memberGroupIds",
    "roles",
    "roleIds",
    "permissions",
    "quotas",
    "description",
    "ledger",
    "#c0",
    "#a",
    "*",
    "",
    "/",
    "~1",
    "credentials/0",
    "aliases/0/name",
    "operator",
    "AND",
    "NOT",
    "conditions",
    "text",
    "property",
    "isAscending",
    "quota",
    "maxDiskQuota",
    "delta",
    "used",
    "x\u{1b}[2J",
    "\u{202e}",
    "\u{0}",
    "é",
    "memberTenantId",
    "t1",
    "enabled",
    "otpAuth",
    "expiresAt",
    "allowedIps",
];

/// The generator; `budget` is roughly how many more bytes the request being
/// made may hold (so a request stays near the 10 MB body limit).
struct Gen {
    rng: SeedRng,
    budget: usize,
}

impl Gen {
    fn below(&mut self, n: usize) -> usize {
        self.rng.below(n)
    }

    /// `n`, or less so that `n * each` bytes fit the budget; spends them.
    fn spend(&mut self, n: usize, each: usize) -> usize {
        let n = n.min(self.budget / each.max(1));
        self.budget -= n * each.max(1);
        n
    }

    fn word(&mut self) -> String {
        let i = self.below(ARGUMENTS.len() + WORDS.len());
        ARGUMENTS.get(i).unwrap_or_else(|| &WORDS[i - ARGUMENTS.len()]).to_string()
    }

    fn number(&mut self) -> Value {
        match self.below(6) {
            0 => json!(0),
            1 => json!(-1),
            2 => json!(9_007_199_254_740_993u64),
            3 => json!(1e308),
            4 => json!(self.below(1000)),
            _ => json!(-(self.below(1 << 40) as i64)),
        }
    }

    fn string(&mut self) -> Value {
        match self.below(8) {
            0 => {
                let n = self.below(300_000);
                json!("y".repeat(self.spend(n, 1)))
            }
            1 => json!(format!("#c{}", self.below(4))),
            _ => json!(self.word()),
        }
    }

    fn reference(&mut self) -> Value {
        let paths = ["/ids", "/list/*/id", "/*", "", "/list", "/created/*/id", "/x/*/*"];
        json!({"resultOf": format!("c{}", self.below(6)), "name": METHODS[self.below(METHODS.len())],
            "path": paths[self.below(paths.len())]})
    }

    /// A random value, nested at most `depth` more levels.
    fn value(&mut self, depth: usize) -> Value {
        match self.below(if depth == 0 { 5 } else { 9 }) {
            0 => Value::Null,
            1 => json!(self.below(2) == 0),
            2 => self.number(),
            3 | 4 => self.string(),
            5 => {
                // Either many flat items or a few nested ones.
                let n = if self.below(4) == 0 { self.below(20_000) } else { self.below(5) };
                let n = self.spend(n, 16);
                let flat = n > 5;
                Value::Array((0..n).map(|_| if flat { self.string() } else { self.value(depth - 1) }).collect())
            }
            6 | 7 => self.object(depth - 1),
            _ => self.reference(),
        }
    }

    fn object(&mut self, depth: usize) -> Value {
        let n = if self.below(8) == 0 { self.below(5000) } else { self.below(6) };
        let n = self.spend(n, 16);
        let mut map = Map::new();
        for i in 0..n {
            let key = if n > 6 { format!("{}{i}", self.word()) } else { self.word() };
            map.insert(key, self.value(depth));
        }
        Value::Object(map)
    }

    /// Arguments: the methods' own names with random values, and objects
    /// close enough to accounts that `/set` gets past its argument checks.
    fn arguments(&mut self) -> Value {
        let mut args = Map::new();
        if self.below(4) != 0 {
            args.insert("accountId".into(), json!("ledger"));
        }
        for _ in 0..self.below(4) {
            let name = ARGUMENTS[self.below(ARGUMENTS.len())];
            let value = if name == "#ids" { self.reference() } else { self.value(3) };
            args.insert(name.into(), value);
        }
        if self.below(3) == 0 {
            let most = if self.below(5) == 0 { 600 } else { 4 };
            let n = self.below(most);
            let n = self.spend(n, 64);
            let objects: Map<String, Value> = (0..n).map(|i| (format!("k{i}"), self.account_like())).collect();
            args.insert(if self.below(2) == 0 { "create" } else { "update" }.into(), Value::Object(objects));
        }
        if self.below(5) == 0 {
            let depth = self.below(40);
            args.insert("filter".into(), self.nested_filter(depth));
        }
        if self.below(10) == 0 {
            // Now and then, anything at all.
            if let Value::Object(extra) = self.object(3) {
                args.extend(extra);
            }
        }
        Value::Object(args)
    }

    /// An account, or a patch of one, with random parts.
    fn account_like(&mut self) -> Value {
        let mut object = Map::new();
        let kind = if self.below(2) == 0 { "User" } else { "Group" };
        object.insert("@type".into(), json!(kind));
        object.insert("name".into(), self.string());
        object.insert("domainId".into(), if self.below(2) == 0 { json!("#c0") } else { self.string() });
        for (property, each) in [("credentials", 0), ("aliases", 1), ("memberGroupIds", 2)] {
            if self.below(3) == 0 {
                let most = if self.below(6) == 0 { 700 } else { 3 };
                let n = self.below(most);
                let n = self.spend(n, 48);
                let items: Vec<Value> = (0..n)
                    .map(|i| match each {
                        0 => {
                            let kind = ["Password", "AppPassword", "ApiKey"][self.below(3)];
                            json!({"@type": kind, "secret": format!("s{}", self.below(1000)),
                                "permissions": {"@type": "Inherit"}})
                        }
                        1 => json!({"name": format!("a{i}"), "domainId": "#c0"}),
                        _ => self.string(),
                    })
                    .collect();
                object.insert(property.into(), Value::Array(items));
            }
        }
        if self.below(4) == 0 {
            let n = self.below(6000);
            let n = self.spend(n, 24);
            for i in 0..n {
                object.insert(format!("credentials/x{i}"), Value::Null);
            }
        }
        if self.below(6) == 0 {
            object.insert("description".into(), self.string());
        }
        Value::Object(object)
    }

    fn nested_filter(&mut self, depth: usize) -> Value {
        if depth == 0 {
            return json!({"text": self.word()});
        }
        json!({"operator": "AND", "conditions": [self.nested_filter(depth - 1)]})
    }

    /// One JMAP request body.
    fn jmap_body(&mut self) -> String {
        self.budget = if self.below(10) == 0 { 12_000_000 } else { 1_000_000 };
        match self.below(20) {
            // Deeply nested JSON: refused by the parser, never a stack overflow.
            0 => {
                let depth = 1 + self.below(100_000);
                format!(r#"{{"using": [], "methodCalls": {}{}}}"#, "[".repeat(depth), "]".repeat(depth))
            }
            1 => "y".repeat(self.below(1_000_000)),
            _ => {
                let most = if self.below(10) == 0 { 40 } else { 6 };
                let calls: Vec<Value> = (0..self.below(most))
                    .map(|i| json!([METHODS[self.below(METHODS.len())], self.arguments(), format!("c{i}")]))
                    .collect();
                let using = if self.below(10) == 0 { json!([self.word()]) } else { json!(USING) };
                let mut request = json!({"using": using, "methodCalls": calls});
                if self.below(6) == 0 {
                    request["createdIds"] = self.object(2);
                }
                request.to_string()
            }
        }
    }

    /// A GET path with random query arguments.
    fn get_path(&mut self) -> String {
        self.budget = 100_000;
        let after = self.number();
        let word = self.word();
        let long = "a".repeat(self.below(20_000));
        match self.below(9) {
            0 => "/.well-known/jmap".into(),
            1 => format!("/api/feed?follow=false&after={after}&types={word}&account={long}"),
            2 => format!("/api/audit/export?from={after}&to={word}&account={long}&since={word}"),
            3 => format!("/api/audit/checkpoint?size={after}"),
            4 => format!("/eventsource/?types={word}&closeafter=state&ping={after}"),
            5 => format!("/api/audit/proof/inclusion?position={after}&size={word}"),
            6 => format!("/api/audit/proof/consistency?from={word}&to={after}"),
            7 => format!("/api/audit/export?since={after}"),
            _ => format!("/api/feed?follow=false&types={long}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn random_large_and_nested_requests_get_bounded_answers() {
    let seed = std::env::var("LEDGER_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    let cases: usize = std::env::var("LEDGER_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(150);
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    server
        .account(json!({"@type": "User", "name": "pat", "domainId": d,
            "credentials": [{"@type": "Password", "secret": "pat-password"}]}))
        .await;
    let plain = basic("pat@example.org", "pat-password");
    let mut rnd = Gen { rng: SeedRng::new(seed), budget: 0 };
    for case in 0..cases {
        let who = if rnd.below(2) == 0 { admin_auth() } else { plain.clone() };
        let client = server.client();
        let (what, request) = if rnd.below(4) == 0 {
            let path = rnd.get_path();
            (format!("GET {}", &path[..path.len().min(120)]), client.get(format!("{}{path}", server.url)))
        } else {
            let body = rnd.jmap_body();
            let endpoint = if rnd.below(4) == 0 { "/jmap" } else { "/api" };
            let what = format!("POST {endpoint} ({} bytes)", body.len());
            (
                what,
                client.post(format!("{}{endpoint}", server.url)).header("content-type", "application/json").body(body),
            )
        };
        let request = request.header("authorization", &who).header("x-request-id", format!("fuzz-{case}"));
        let answer = tokio::time::timeout(MAX_TIME, async {
            let response = request.send().await.expect("an answer, not a dropped connection");
            let status = response.status().as_u16();
            let bytes = response.bytes().await.expect("a whole body");
            (status, bytes)
        })
        .await;
        let context = format!("seed {seed} case {case}: {what}");
        let (status, bytes) = answer.unwrap_or_else(|_| panic!("{context}: no answer within {MAX_TIME:?}"));
        assert!(
            status < 500,
            "{context}: status {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
        );
        assert!(bytes.len() <= MAX_ANSWER, "{context}: {} bytes", bytes.len());
        assert!(
            [200, 400, 403, 404, 408, 413, 415, 429].contains(&status),
            "{context}: status {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
        );
    }
    // Still serving, writes still land, the chain still verifies.
    let (_, r) = server.call("x:Domain/set", json!({"create": {"d": {"name": "after.example"}}})).await;
    assert!(r["created"]["d"]["id"].is_string(), "{r}");
    let ledger = server.ledger.clone();
    tokio::task::spawn_blocking(move || ledger.verify().expect("the chain verifies")).await.unwrap();
    server.stop().await;
}
