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
}

impl Kind {
    /// The JMAP object name, `x:Account`.
    pub(crate) fn jmap(self) -> &'static str {
        let object = match self {
            Kind::Account => ObjectType::Account,
            Kind::Domain => ObjectType::Domain,
            Kind::Role => ObjectType::Role,
        };
        object.jmap_name()
    }
}

/// Where the server is and who we are.
#[derive(Debug, clap::Args)]
pub struct Connection {
    /// Server URL.
    #[arg(short = 'u', long, env = "LEDGER_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// `user:secret` (or just `user`, to be asked for the password).
    #[arg(short = 'c', long, env = "LEDGER_CREDENTIALS", hide_env_values = true)]
    pub credentials: Option<String>,
    /// An API key, sent as a Bearer token.
    #[arg(long, env = "LEDGER_TOKEN", hide_env_values = true, conflicts_with = "credentials")]
    pub token: Option<String>,
}

pub(super) struct Client {
    http: reqwest::Client,
    api: String,
    authorization: String,
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
        Ok(Client {
            http: reqwest::Client::new(),
            api: format!("{}/api", connection.url.trim_end_matches('/')),
            authorization,
        })
    }

    /// GETs a path under the server, failing on any non-success status.
    pub(super) async fn get(&self, path_and_query: &str) -> anyhow::Result<reqwest::Response> {
        self.get_with_accept(path_and_query, "*/*").await
    }

    pub(super) async fn get_with_accept(
        &self,
        path_and_query: &str,
        accept: &str,
    ) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}{path_and_query}", self.api.trim_end_matches("/api"));
        let response = self
            .http
            .get(&url)
            .header("authorization", &self.authorization)
            .header("accept", accept)
            .send()
            .await
            .with_context(|| format!("cannot reach the ledger at {url}"))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let detail =
                serde_json::from_str::<Value>(&text).ok().and_then(|v| v["detail"].as_str().map(str::to_owned));
            bail!("{url}: {status}: {}", detail.unwrap_or(text));
        }
        Ok(response)
    }

    /// Calls one method; a method error becomes an error naming its JMAP type.
    pub(super) async fn call(&self, method: &str, arguments: Value) -> anyhow::Result<Value> {
        let body = json!({"using": USING, "methodCalls": [[method, arguments, "c"]]});
        let response = self
            .http
            .post(&self.api)
            .header("authorization", &self.authorization)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("cannot reach the ledger at {}", self.api))?;
        let status = response.status();
        let text = response.text().await.context("reading the server's answer")?;
        if status == 401 {
            bail!("authentication failed (401): check the credentials");
        }
        if status == 429 {
            bail!("too many failed logins from this address (429): wait a minute");
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

/// An id, or the id of the object with that name (an address or a bare name for
/// accounts, a domain name, a role name).
pub(super) async fn resolve(client: &Client, object: Kind, given: &str) -> anyhow::Result<String> {
    let exists = !get(client, object, &[given.to_owned()]).await?.is_empty();
    if exists {
        return Ok(given.to_owned());
    }
    let lowered = given.to_lowercase();
    let matches: Vec<Value> = match object {
        Kind::Account => {
            let (name, domain) = match lowered.split_once('@') {
                Some((n, d)) => (n.to_owned(), Some(d.to_owned())),
                None => (lowered.clone(), None),
            };
            let mut filter = json!({"name": name});
            if let Some(domain) = &domain {
                filter["domainId"] = json!(Box::pin(resolve(client, Kind::Domain, domain)).await?);
            }
            let ids = client.call("x:Account/query", json!({"filter": filter})).await?;
            let ids: Vec<String> = serde_json::from_value(ids["ids"].clone()).unwrap_or_default();
            get(client, object, &ids).await?.into_iter().filter(|a| a["name"] == name).collect()
        }
        Kind::Domain | Kind::Role => {
            let ids = client.call(&format!("{}/query", object.jmap()), json!({"filter": {"name": given}})).await?;
            let ids: Vec<String> = serde_json::from_value(ids["ids"].clone()).unwrap_or_default();
            get(client, object, &ids)
                .await?
                .into_iter()
                .filter(|o| o["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(given)))
                .collect()
        }
    };
    match matches.as_slice() {
        [one] => one["id"].as_str().map(str::to_owned).context("an object without an id"),
        [] => bail!("no {} with id or name {given:?}", object.jmap()),
        _ => bail!("{given:?} names {} objects of {}; use an id or name@domain", matches.len(), object.jmap()),
    }
}
