//! Helpers shared by the integration tests: a seeded command generator and
//! shorthand constructors.

use ledger::command::{AliasSpec, Command, CreateAccount, CreateDomain, DestroyAccount, UpdateAccount};
use ledger::{CommitOrigin, Ledger};
use ledger_events::model::{AccountKind, QuotaKind};
use ledger_events::values::ObjectId;
use ledger_events::{Actor, AuthMethod, Event};

pub(super) fn origin() -> CommitOrigin {
    CommitOrigin {
        actor: Actor { principal_id: "a".into(), name: "admin".into(), auth_method: AuthMethod::Fallback },
        request_id: "test".into(),
        call_id: "c1".into(),
    }
}

pub(super) fn create_domain(name: &str) -> Command {
    Command::CreateDomain(CreateDomain {
        name: name.parse().unwrap(),
        description: None,
        member_tenant_id: None,
        settings: Default::default(),
    })
}

pub(super) fn user(name: &str, domain: ObjectId) -> CreateAccount {
    CreateAccount::user(name.parse().unwrap(), domain)
}

pub(super) fn group(name: &str, domain: ObjectId) -> CreateAccount {
    CreateAccount::group(name.parse().unwrap(), domain)
}

/// The id of the object the first event created.
pub(super) fn created_id(events: &[Event]) -> ObjectId {
    match events.first() {
        Some(Event::AccountCreated(e)) => e.account_id,
        Some(Event::DomainCreated(e)) => e.domain_id,
        other => panic!("expected a creation, got {other:?}"),
    }
}

/// Runs one command in its own commit and returns its events.
pub(super) fn run(ledger: &Ledger, command: Command) -> Vec<Event> {
    ledger
        .commit_blocking(origin(), move |tx| tx.execute(&command))
        .expect("commit is durable")
        .value
        .expect("command accepted")
}

/// One step of a generated history; ids are picked among objects that exist
/// when it runs, so most steps are valid and some are rejected, as in real traffic.
#[derive(Debug, Clone)]
pub(super) enum Step {
    Domain(u8),
    User { name: u8, domain: u8, aliases: Vec<(u8, u8)>, groups: Vec<u8> },
    Group { name: u8, domain: u8 },
    Describe { target: u8, text: u8 },
    Rename { target: u8, name: u8, domain: u8 },
    Aliases { target: u8, aliases: Vec<(u8, u8)> },
    Quota { target: u8, limit: Option<u32> },
    Join { target: u8, groups: Vec<u8> },
    Destroy { target: u8 },
    DestroyDomain { domain: u8 },
}

fn pick(ids: &[ObjectId], n: u8) -> Option<ObjectId> {
    if ids.is_empty() { None } else { Some(ids[n as usize % ids.len()]) }
}

/// Turns a step into a command against the current state of `ledger`'s view.
pub(super) fn step_command(
    step: &Step,
    domains: &[ObjectId],
    accounts: &[ObjectId],
    groups: &[ObjectId],
) -> Option<Command> {
    let local = |n: u8| format!("u{}", n % 12);
    let aliases_of = |list: &[(u8, u8)]| -> Option<Vec<AliasSpec>> {
        list.iter()
            .map(|(n, d)| {
                Some(AliasSpec {
                    name: format!("a{}", n % 12).parse().unwrap(),
                    domain_id: pick(domains, *d)?,
                    enabled: n % 3 != 0,
                    description: None,
                })
            })
            .collect()
    };
    Some(match step {
        Step::Domain(n) => create_domain(&format!("d{}.example", n % 4)),
        Step::User { name, domain, aliases, groups: g } => {
            let mut u = user(&local(*name), pick(domains, *domain)?);
            u.aliases = aliases_of(aliases)?;
            u.member_group_ids = g.iter().filter_map(|n| pick(groups, *n)).collect();
            Command::CreateAccount(u)
        }
        Step::Group { name, domain } => {
            Command::CreateAccount(group(&format!("g{}", name % 4), pick(domains, *domain)?))
        }
        Step::Describe { target, text } => Command::UpdateAccount(UpdateAccount {
            id: pick(accounts, *target)?,
            description: Some((*text % 3 != 0).then(|| format!("note {text}"))),
            ..Default::default()
        }),
        Step::Rename { target, name, domain } => Command::UpdateAccount(UpdateAccount {
            id: pick(accounts, *target)?,
            name: Some(local(*name).parse().unwrap()),
            domain_id: pick(domains, *domain),
            ..Default::default()
        }),
        Step::Aliases { target, aliases } => Command::UpdateAccount(UpdateAccount {
            id: pick(accounts, *target)?,
            aliases: Some(aliases_of(aliases)?),
            ..Default::default()
        }),
        Step::Quota { target, limit } => Command::UpdateAccount(UpdateAccount {
            id: pick(accounts, *target)?,
            quotas: Some(limit.map(|l| (QuotaKind::MaxDiskQuota, l as u64)).into_iter().collect()),
            ..Default::default()
        }),
        Step::Join { target, groups: g } => Command::UpdateAccount(UpdateAccount {
            id: pick(accounts, *target)?,
            member_group_ids: Some(g.iter().filter_map(|n| pick(groups, *n)).collect()),
            ..Default::default()
        }),
        Step::Destroy { target } => Command::DestroyAccount(DestroyAccount { id: pick(accounts, *target)? }),
        Step::DestroyDomain { domain } => {
            Command::DestroyDomain(ledger::command::DestroyDomain { id: pick(domains, *domain)? })
        }
    })
}

/// Tracks which ids exist, from the events of accepted commands.
#[derive(Default, Debug)]
pub(super) struct Known {
    pub domains: Vec<ObjectId>,
    pub accounts: Vec<ObjectId>,
    pub groups: Vec<ObjectId>,
}

impl Known {
    pub(super) fn observe(&mut self, events: &[Event]) {
        for e in events {
            match e {
                Event::DomainCreated(d) => self.domains.push(d.domain_id),
                Event::DomainDestroyed(d) => self.domains.retain(|x| *x != d.domain_id),
                Event::AccountCreated(a) => {
                    self.accounts.push(a.account_id);
                    if a.kind == AccountKind::Group {
                        self.groups.push(a.account_id);
                    }
                }
                Event::AccountDestroyed(a) => {
                    self.accounts.retain(|x| *x != a.account_id);
                    self.groups.retain(|x| *x != a.account_id);
                }
                _ => {}
            }
        }
    }
}

/// A real server on 127.0.0.1, port 0, over a ledger in `dir`.
pub(super) struct TestServer {
    pub url: String,
    pub ledger: Ledger,
    pub app: ledger::http::AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    client: reqwest::Client,
}

pub(super) const USING: [&str; 2] = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"];
pub(super) const ADMIN_PASSWORD: &str = "test-admin-password";

/// A Basic `Authorization` header value.
pub(super) fn basic(user: &str, secret: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}")))
}

pub(super) fn admin_auth() -> String {
    basic("admin", ADMIN_PASSWORD)
}

impl TestServer {
    pub(super) async fn start(dir: &std::path::Path) -> TestServer {
        Self::start_with(dir, |_| {}).await
    }

    pub(super) async fn start_with(
        dir: &std::path::Path,
        configure: impl FnOnce(&mut ledger::jmap::ServicesConfig),
    ) -> TestServer {
        Self::launch(dir, configure, ledger::http::ConnectionLimits::default()).await
    }

    /// A server with these bounds on connections and streams.
    pub(super) async fn start_limited(dir: &std::path::Path, limits: ledger::http::ConnectionLimits) -> TestServer {
        Self::launch(dir, |_| {}, limits).await
    }

    async fn launch(
        dir: &std::path::Path,
        configure: impl FnOnce(&mut ledger::jmap::ServicesConfig),
        limits: ledger::http::ConnectionLimits,
    ) -> TestServer {
        let ledger = Ledger::open(dir, ledger::Durability::Fsync).unwrap();
        let config = ledger::auth::AuthConfig {
            admin_password: Some(ADMIN_PASSWORD.into()),
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            per_source: ledger::auth::limiter::Budget { max_failures: 5, window: std::time::Duration::from_secs(60) },
            per_account: ledger::auth::limiter::Budget {
                max_failures: 12,
                window: std::time::Duration::from_secs(900),
            },
            ..Default::default()
        };
        let mut services = ledger::jmap::ServicesConfig::default();
        configure(&mut services);
        let (mut app, generated) = ledger::http::AppState::open(ledger.clone(), dir, &config, services).unwrap();
        assert!(generated.is_none(), "the admin password was given");
        app.connections = limits;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = app.clone();
        let task = tokio::spawn(async move {
            ledger::http::serve(listener, served, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        TestServer { url, ledger, app, stop: Some(stop), task: Some(task), client: reqwest::Client::new() }
    }

    /// Stops serving and closes the ledger, as a restart would.
    pub(super) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        let ledger = self.ledger.clone();
        drop(self);
        tokio::task::spawn_blocking(move || ledger.shutdown()).await.unwrap();
    }

    pub(super) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Posts a raw body to /api as the administrator: (status, JSON body).
    pub(super) async fn post_raw(&self, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value) {
        self.post_as(Some(&admin_auth()), None, body).await
    }

    /// Posts with the given `Authorization` header and `X-Forwarded-For` address.
    pub(super) async fn post_as(
        &self,
        authorization: Option<&str>,
        client_ip: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        self.post_to("/api", authorization, client_ip, body).await
    }

    /// [`TestServer::post_as`] to another API path (`/jmap/`).
    pub(super) async fn post_to(
        &self,
        path: &str,
        authorization: Option<&str>,
        client_ip: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let mut request =
            self.client.post(format!("{}{path}", self.url)).header("content-type", "application/json").body(body);
        if let Some(a) = authorization {
            request = request.header("authorization", a);
        }
        if let Some(ip) = client_ip {
            request = request.header("x-forwarded-for", ip);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    /// Calls one method as someone else: (status, response name, arguments).
    pub(super) async fn call_as(
        &self,
        authorization: &str,
        method: &str,
        args: serde_json::Value,
    ) -> (u16, String, serde_json::Value) {
        let body = serde_json::json!({ "using": USING, "methodCalls": [[method, args, "c"]] }).to_string();
        let (status, body) = self.post_as(Some(authorization), None, body).await;
        let response = &body["methodResponses"][0];
        (status, response[0].as_str().unwrap_or_default().to_owned(), response[1].clone())
    }

    /// GET with the administrator's credentials.
    pub(super) async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.url)).header("authorization", admin_auth()).send().await.unwrap()
    }

    /// Sends method calls with both capabilities; returns the whole response.
    pub(super) async fn request(&self, calls: serde_json::Value) -> serde_json::Value {
        let (status, body) =
            self.post_raw(serde_json::json!({ "using": USING, "methodCalls": calls }).to_string()).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Sends one method call and returns its response arguments (or error).
    pub(super) async fn call(&self, method: &str, args: serde_json::Value) -> (String, serde_json::Value) {
        let body = self.request(serde_json::json!([[method, args, "c"]])).await;
        let response = &body["methodResponses"][0];
        (response[0].as_str().unwrap().to_owned(), response[1].clone())
    }

    /// Creates an `x:Tenant` and returns its id (what `memberTenantId` names).
    pub(super) async fn tenant(&self, name: &str) -> String {
        let (_, r) = self.call("x:Tenant/set", serde_json::json!({"create": {"t": {"name": name}}})).await;
        r["created"]["t"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
    }

    /// Creates a domain and returns its id.
    pub(super) async fn domain(&self, name: &str) -> String {
        let (_, r) = self.call("x:Domain/set", serde_json::json!({"create": {"d": {"name": name}}})).await;
        r["created"]["d"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
    }

    /// Creates a domain of tenant `tenant` and returns its id.
    pub(super) async fn domain_in(&self, name: &str, tenant: &str) -> String {
        let (_, r) = self
            .call("x:Domain/set", serde_json::json!({"create": {"d": {"name": name, "memberTenantId": tenant}}}))
            .await;
        r["created"]["d"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
    }

    /// Creates an account from a JMAP object and returns its id.
    pub(super) async fn account(&self, object: serde_json::Value) -> String {
        let (_, r) = self.call("x:Account/set", serde_json::json!({"create": {"a": object}})).await;
        r["created"]["a"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
    }
}

/// Replaces values that differ run to run (times, generated secrets) so that
/// snapshots show the shape.
pub(super) fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match k.as_str() {
                    "createdAt" if v.is_string() => *v = serde_json::json!("[time]"),
                    "secret" if v.is_string() => *v = serde_json::json!("[secret]"),
                    _ => redact(v),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

pub(super) fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}

/// Files under `dir` (recursively) whose bytes contain `needle`.
///
/// fjall compresses table blocks with LZ4, which writes a run of bytes as a
/// back-reference only when it occurred earlier in the same block. A needle
/// made of a random marker (`zq1234abcd`) therefore appears literally at its
/// first occurrence in every block that holds it, so this finds any block that
/// does; a needle built from common text (`filler12`) could be missed.
pub(super) fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() { walk(&path, out) } else { out.push(path) }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files
        .into_iter()
        .filter(|f| std::fs::read(f).unwrap_or_default().windows(needle.len()).any(|w| w == needle))
        .map(|f| f.display().to_string())
        .collect()
}
