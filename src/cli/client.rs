//! The CLI's JMAP client: connection settings, credentials, method calls, and
//! resolving names to ids.

use std::io::IsTerminal;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use serde_json::{Value, json};

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

const USING: [&str; 2] = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"];

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
