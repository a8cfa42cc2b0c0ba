//! The CLI's JMAP client: connection settings, credentials, method calls, the
//! kinds of object it manages, resolving names to ids, and reading `/set` results.

use std::io::IsTerminal;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use serde_json::{Value, json};

use ledger_events::ObjectType;

use crate::jmap::session::{CORE, STALWART};

/// The objects the CLI manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Account,
    Domain,
    Role,
    Tenant,
}

impl Kind {
    /// The name on the command line, `account`.
    pub(crate) fn cli_name(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::Domain => "domain",
            Kind::Role => "role",
            Kind::Tenant => "tenant",
        }
    }

    /// The JMAP object name, `x:Account`.
    pub(crate) fn jmap(self) -> &'static str {
        let object = match self {
            Kind::Account => ObjectType::Account,
            Kind::Domain => ObjectType::Domain,
            Kind::Role => ObjectType::Role,
            Kind::Tenant => ObjectType::Tenant,
        };
        object.jmap_name()
    }
}

/// Where the server is and who we are.
#[derive(Debug, clap::Args)]
pub struct Connection {
    /// Server URL.
    #[arg(short = 'u', long, env = "LEDGER_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub url: String,
    /// `user:secret` (or just `user`, to be asked for the password).
    #[arg(short = 'c', long, env = "LEDGER_CREDENTIALS", hide_env_values = true, global = true)]
    pub credentials: Option<String>,
    /// An API key, sent as a Bearer token (used instead of --credentials when both are set).
    #[arg(long, env = "LEDGER_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// A PEM certificate (a private CA's, a self-signed server's) to trust
    /// besides the system's roots.
    #[arg(long, env = "LEDGER_CA_CERT", global = true)]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Print each HTTP exchange (method, URL, status, bodies) on standard
    /// error; the Authorization header is never printed.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Take every object named on the command line as an id, never a name.
    #[arg(long = "id", global = true, conflicts_with = "by_name")]
    pub by_id: bool,
    /// Take every object named on the command line as a name (an address for
    /// accounts), never an id.
    #[arg(long = "name", global = true)]
    pub by_name: bool,
}

/// How a value given for an object is looked up (`--id`, `--name`, or both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookup {
    Either,
    Id,
    Name,
}

pub(super) struct Client {
    http: reqwest::Client,
    api: String,
    authorization: String,
    debug: bool,
    pub(super) lookup: Lookup,
}

const USING: [&str; 2] = [CORE, STALWART];

impl Client {
    pub(super) fn connect(connection: &Connection) -> anyhow::Result<Client> {
        let authorization = match (&connection.token, &connection.credentials) {
            (Some(token), _) => format!("Bearer {token}"),
            (None, Some(credentials)) => {
                let (user, secret) = match credentials.split_once(':') {
                    Some((user, secret)) => (user.to_owned(), secret.to_owned()),
                    None if std::io::stdin().is_terminal() => {
                        let secret = rpassword::prompt_password(format!("password for {credentials}: "))
                            .context("reading the password")?;
                        (credentials.clone(), secret)
                    }
                    None => bail!("no password for {credentials:?}: use --credentials user:secret or a terminal"),
                };
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}")))
            }
            (None, None) => {
                bail!("no credentials: use --credentials user[:secret], --token, LEDGER_CREDENTIALS or LEDGER_TOKEN")
            }
        };
        let url = connection.url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--url {url:?} is not an http:// or https:// URL (e.g. http://127.0.0.1:8080)");
        }
        if url.ends_with("/api") || url.ends_with("/jmap") {
            bail!("--url {url:?} names the API path; give the server's base URL (without /api)");
        }
        let lookup = match (connection.by_id, connection.by_name) {
            (true, _) => Lookup::Id,
            (_, true) => Lookup::Name,
            _ => Lookup::Either,
        };
        Ok(Client {
            http: http_client(connection, None)?,
            api: format!("{}/api", connection.url.trim_end_matches('/')),
            authorization,
            debug: connection.debug,
            lookup,
        })
    }

    /// The server's base URL (no trailing slash).
    pub(super) fn base(&self) -> &str {
        self.api.trim_end_matches("/api")
    }

    /// With `--debug`: one exchange on standard error, escaped like all output.
    fn trace(&self, what: std::fmt::Arguments<'_>) {
        if self.debug {
            for line in what.to_string().lines() {
                eprintln!("{}", super::output::printable(line));
            }
        }
    }

    /// GETs a path under the server, failing on any non-success status.
    pub(super) async fn get(&self, path_and_query: &str) -> anyhow::Result<reqwest::Response> {
        self.get_with_accept(path_and_query, "*/*").await
    }

    /// GETs a small answer (a key, a note, a proof): its body as text, at
    /// most `limit` bytes, all within 60 s, so that a server cannot make the
    /// client hold unbounded memory or wait forever.
    pub(super) async fn get_small(&self, path_and_query: &str, accept: &str, limit: usize) -> anyhow::Result<String> {
        let read = async {
            let mut response = self.get_with_accept(path_and_query, accept).await?;
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.context("reading the answer")? {
                if body.len() + chunk.len() > limit {
                    anyhow::bail!("the server's answer to {path_and_query} is larger than {limit} bytes");
                }
                body.extend_from_slice(&chunk);
            }
            String::from_utf8(body).map_err(|_| anyhow::anyhow!("the server's answer to {path_and_query} is not UTF-8"))
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), read)
            .await
            .map_err(|_| anyhow::anyhow!("the server did not answer {path_and_query} within 60 s"))?
    }

    pub(super) async fn get_with_accept(
        &self,
        path_and_query: &str,
        accept: &str,
    ) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}{path_and_query}", self.base());
        self.trace(format_args!("> GET {url}\n> accept: {accept}"));
        let response = self
            .http
            .get(&url)
            .header("authorization", &self.authorization)
            .header("accept", accept)
            .send()
            .await
            .map_err(|e| unreachable(&url, e))?;
        let status = response.status();
        self.trace(format_args!("< {status}"));
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let detail =
                serde_json::from_str::<Value>(&text).ok().and_then(|v| v["detail"].as_str().map(str::to_owned));
            return Err(ServerAnswered { url, status: status.as_u16(), detail: detail.unwrap_or(text) }.into());
        }
        Ok(response)
    }

    /// Calls one method; a method error becomes an error naming its JMAP type.
    pub(super) async fn call(&self, method: &str, arguments: Value) -> anyhow::Result<Value> {
        let body = json!({"using": USING, "methodCalls": [[method, arguments, "c"]]});
        self.trace(format_args!("> POST {}\n> {body}", self.api));
        let response = self
            .http
            .post(&self.api)
            .header("authorization", &self.authorization)
            .json(&body)
            .send()
            .await
            .map_err(|e| unreachable(&self.api, e))?;
        let status = response.status();
        let text = response.text().await.context("reading the server's answer")?;
        self.trace(format_args!("< {status}\n< {text}"));
        if status == 401 {
            bail!("authentication failed (401): check the credentials (--credentials user:secret, or --token)");
        }
        if status == 429 {
            bail!("too many failed logins from this address (429): wait a minute, then check the credentials");
        }
        let body: Value =
            serde_json::from_str(&text).with_context(|| format!("the server answered {status}: {text}"))?;
        if !status.is_success() {
            bail!("{}: {}", body["type"].as_str().unwrap_or("error"), body["detail"].as_str().unwrap_or(&text));
        }
        let answer = &body["methodResponses"][0];
        if answer[0] == "error" {
            let kind = answer[1]["type"].as_str().unwrap_or("serverFail");
            return Err(match answer[1]["description"].as_str() {
                Some(d) => anyhow!("{method} failed: {kind}: {d}"),
                None => anyhow!("{method} failed: {kind}"),
            });
        }
        Ok(answer[1].clone())
    }
}

/// The objects with these ids.
pub(super) async fn get(client: &Client, object: Kind, ids: &[String]) -> anyhow::Result<Vec<Value>> {
    let answer = client.call(&format!("{}/get", object.jmap()), json!({"ids": ids})).await?;
    Ok(answer["list"].as_array().cloned().unwrap_or_default())
}

/// A SetError as one line: type, properties, description.
pub(super) fn describe(error: &Value) -> String {
    let kind = error["type"].as_str().unwrap_or("error");
    let properties = error["properties"]
        .as_array()
        .map(|p| format!(" ({})", p.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")));
    let existing = error["existingId"].as_str().map(|id| format!(" [existing id {id}]"));
    let description = error["description"].as_str().map(|d| format!(": {d}"));
    format!(
        "{kind}{}{}{}",
        properties.unwrap_or_default(),
        description.unwrap_or_default(),
        existing.unwrap_or_default()
    )
}

/// The result of one `/set` item, or its SetError as an error.
pub(super) fn set_result(answer: &Value, ok: &str, failed: &str, key: &str, verb: &str) -> anyhow::Result<Value> {
    if let Some(error) = answer[failed].get(key) {
        bail!("could not {verb}: {}", describe(error));
    }
    answer[ok].get(key).cloned().ok_or_else(|| anyhow!("the server did not {verb} the object"))
}

/// The HTTP client: trusting `--ca-cert` too, with an overall `timeout` if given.
pub(super) fn http_client(
    connection: &Connection,
    timeout: Option<std::time::Duration>,
) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder();
    if let Some(path) = &connection.ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("reading the CA certificate {}", path.display()))?;
        use rustls_pki_types::pem::PemObject;
        let certificates = rustls_pki_types::CertificateDer::pem_slice_iter(&pem).filter(Result::is_ok).count();
        if certificates == 0 {
            bail!(
                "{} holds no PEM certificate (BEGIN CERTIFICATE); --ca-cert takes the server's certificate or its CA's",
                path.display()
            );
        }
        let certificate = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
        builder = builder.add_root_certificate(certificate);
    }
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    builder.build().context("setting up the HTTP client")
}

/// Why the server could not be reached, and what to check.
fn unreachable(url: &str, e: reqwest::Error) -> anyhow::Error {
    let causes = causes(&e);
    let hint = if causes.contains("certificate") {
        "the server's TLS certificate is not trusted: pass --ca-cert FILE with the certificate (or its CA)"
    } else {
        "is `ledger serve` running there? check --url or LEDGER_URL"
    };
    anyhow!("cannot reach the ledger at {url}: {causes} ({hint})")
}

/// A server's answer that is not a success, for callers that tell a
/// refusal (4xx: wrong credentials, a bad argument; retrying does not help)
/// from a failure that may pass.
#[derive(Debug)]
pub(super) struct ServerAnswered {
    pub(super) url: String,
    pub(super) status: u16,
    pub(super) detail: String,
}

impl std::fmt::Display for ServerAnswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hint = match self.status {
            401 => " (check the credentials: --credentials user:secret, or --token)",
            403 => " (the principal lacks the permission named)",
            _ => "",
        };
        write!(f, "{}: {}: {}{hint}", self.url, self.status, self.detail)
    }
}

impl std::error::Error for ServerAnswered {}

impl ServerAnswered {
    /// Whether asking again cannot help (a 4xx other than 408 and 429).
    pub(super) fn is_permanent(&self) -> bool {
        (400..500).contains(&self.status) && !matches!(self.status, 408 | 429)
    }
}

/// An HTTP client error and its causes, `a: b: c` (reqwest's own text says
/// only "client error (Connect)").
pub(super) fn causes(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The name of an object: an account's or domain's `name`, a role's
/// `description` (Stalwart's roles are labelled by it).
fn named(object: &Value) -> Option<&str> {
    object["name"].as_str().or_else(|| object["description"].as_str())
}

/// How an object is shown in a message: its address or name, and its id.
pub(super) fn label(object: &Value) -> String {
    let id = object["id"].as_str().unwrap_or_default();
    match object["emailAddress"].as_str().or_else(|| named(object)) {
        Some(name) => format!("{name} (id {id})"),
        None => format!("id {id}"),
    }
}

/// The id of the object `given` stands for: an id, or a name (an address or
/// a bare name for accounts, a domain name, a role name), looked up as
/// `--id`/`--name` say (both when neither is given). A value that is the id
/// of one object and the name of another, or the name of several, is refused
/// with every candidate shown. Errors: none found, several found, or the
/// server's error.
pub(super) async fn resolve(client: &Client, object: Kind, given: &str) -> anyhow::Result<String> {
    resolve_as(client, object, given, client.lookup).await
}

/// [`resolve`] where a bare value is a name unless `--id` says otherwise:
/// for the commands whose argument is a name (`database delete NAME`).
pub(super) async fn resolve_name(client: &Client, object: Kind, given: &str) -> anyhow::Result<String> {
    let lookup = if client.lookup == Lookup::Either { Lookup::Name } else { client.lookup };
    resolve_as(client, object, given, lookup).await
}

async fn resolve_as(client: &Client, object: Kind, given: &str, lookup: Lookup) -> anyhow::Result<String> {
    match find(client, object, given, lookup).await? {
        Some(id) => Ok(id),
        None => {
            let what = match lookup {
                Lookup::Id => "id",
                Lookup::Name => "name",
                Lookup::Either => "id or name",
            };
            let hint = if lookup == Lookup::Name && object == Kind::Account { "; give --id for an id" } else { "" };
            bail!("no {} with {what} {given:?} (`ledger query {}` lists them{hint})", object.jmap(), object.cli_name())
        }
    }
}

/// The id `given` stands for under `lookup`, `None` when nothing matches;
/// an error when several do.
pub(super) async fn find(client: &Client, object: Kind, given: &str, lookup: Lookup) -> anyhow::Result<Option<String>> {
    if given.trim().is_empty() {
        return Ok(None);
    }
    let by_id = match lookup {
        Lookup::Name => Vec::new(),
        _ => get(client, object, &[given.to_owned()]).await?,
    };
    let by_name = match lookup {
        Lookup::Id => Vec::new(),
        Lookup::Name => by_name(client, object, given).await?,
        // A principal that may read an object by id but not query names
        // (self-service): the id it found stands.
        Lookup::Either => match by_name(client, object, given).await {
            Ok(found) => found,
            Err(_) if !by_id.is_empty() => Vec::new(),
            Err(e) => return Err(e),
        },
    };
    let mut candidates: Vec<(&str, &Value)> = by_id.iter().map(|o| ("the id of", o)).collect();
    for o in &by_name {
        if !by_id.iter().any(|i| i["id"] == o["id"]) {
            candidates.push(("the name of", o));
        }
    }
    match candidates.as_slice() {
        [] => Ok(None),
        [(_, one)] => one["id"].as_str().map(|id| Some(id.to_owned())).context("an object without an id"),
        several => {
            let shown: Vec<String> = several.iter().take(10).map(|(how, o)| format!("{how} {}", label(o))).collect();
            let more = if several.len() > 10 { format!(" and {} more", several.len() - 10) } else { String::new() };
            bail!(
                "{given:?} is {}{more}; say which with --id or --name, or give the id or name@domain",
                shown.join(" and ")
            )
        }
    }
}

/// The objects whose name is exactly `given` (for accounts: `name@domain`, or
/// a bare name in any domain). The server's `name` filter also matches longer
/// names, so every page of its answer is read and the candidates fetched in
/// chunks, then compared.
async fn by_name(client: &Client, object: Kind, given: &str) -> anyhow::Result<Vec<Value>> {
    let lowered = given.to_lowercase();
    let (name, filter) = match object {
        Kind::Account => {
            let (name, domain) = match lowered.split_once('@') {
                Some((n, d)) => (n.to_owned(), Some(d.to_owned())),
                None => (lowered.clone(), None),
            };
            let mut filter = json!({"name": name});
            if let Some(domain) = &domain {
                let domains = Box::pin(by_name(client, Kind::Domain, domain)).await?;
                let Some(id) = domains.first().and_then(|d| d["id"].as_str()) else { return Ok(Vec::new()) };
                filter["domainId"] = json!(id);
            }
            (name, filter)
        }
        Kind::Domain | Kind::Role | Kind::Tenant => (lowered.clone(), json!({"name": given})),
    };
    if name.is_empty() {
        return Ok(Vec::new());
    }
    let method = format!("{}/query", object.jmap());
    let mut ids: Vec<String> = Vec::new();
    loop {
        let page = client.call(&method, json!({"filter": filter, "position": ids.len()})).await?;
        let found: Vec<String> = serde_json::from_value(page["ids"].clone()).unwrap_or_default();
        let done = found.is_empty() || page.get("limit").is_none();
        ids.extend(found);
        if done {
            break;
        }
    }
    let mut matches = Vec::new();
    for chunk in ids.chunks(GET_CHUNK) {
        matches.extend(
            get(client, object, chunk)
                .await?
                .into_iter()
                .filter(|o| named(o).is_some_and(|n| n.eq_ignore_ascii_case(&name))),
        );
    }
    Ok(matches)
}

/// Ids per `/get` the CLI sends (the default `maxObjectsInGet`).
pub(super) const GET_CHUNK: usize = 500;
