//! The `ledger` command line: `serve` and the ledger tools, and the
//! stalwart-cli-compatible client commands that talk JMAP to a running server.

mod audit;
mod audit_offline;
mod backup;
mod client;
pub mod config;
mod confirm;
mod database;
mod describe;
mod feed;
mod fields;
mod objects;
mod output;
mod progress;
mod serve;
pub use serve::{LogFormat, ServeArgs};
mod trust;
pub mod version;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::store;

#[derive(Debug, Parser)]
#[command(name = "ledger", version = version::LONG, about = "account-ledger: event-sourced system of record for mail-server accounts")]
pub struct Cli {
    #[command(flatten)]
    pub connection: client::Connection,
    /// Print JSON (the default when standard output is not a terminal).
    #[arg(long, global = true)]
    pub json: bool,
    /// Print tables and key/value views even when standard output is not a terminal.
    #[arg(long, global = true, conflicts_with = "json")]
    pub table: bool,
    /// Only these properties (and `id`), comma-separated: `--fields name,description`.
    #[arg(long = "fields", id = "only_fields", value_name = "FIELDS", global = true, value_delimiter = ',')]
    pub fields: Option<Vec<String>>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service.
    Serve(Box<serve::ServeArgs>),
    /// Drop the projections of a stopped ledger and rebuild them from its log.
    Rebuild(DataDirArgs),
    /// Verify the whole hash chain of a stopped ledger (read only).
    Verify(DataDirArgs),
    /// Show one object: `ledger get account alice@example.org [--as-of TIME|POSITION]`.
    Get {
        object: client::Kind,
        /// Id or name (an address for accounts, a domain name, a role name).
        id: String,
        /// As it was at this log position or RFC 3339 UTC time (accounts).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Create an object: `ledger create account/user --field name=alice --field domainId=example.org`.
    Create {
        /// account/user, account/group, domain or role.
        target: objects::Target,
        /// A property, `key=value`; values that look like JSON are parsed as JSON.
        #[arg(long = "field", short = 'f')]
        fields: Vec<String>,
        #[command(flatten)]
        json: objects::JsonInput,
    },
    /// List objects: `ledger query account --filter domainId=example.org --limit 20`.
    Query {
        object: client::Kind,
        /// A filter condition, `key=value` (text, name, domainId, memberTenantId, memberGroupIds, @type).
        #[arg(long = "filter")]
        filters: Vec<String>,
        /// At most this many results.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Change an object: `ledger update account ID --field description=Updated`.
    Update {
        object: client::Kind,
        id: String,
        /// A patch, `path=value` (`quotas/maxDiskQuota=1000`, `aliases/0/name=info`); `null` resets.
        #[arg(long = "field", short = 'f')]
        fields: Vec<String>,
        #[command(flatten)]
        json: objects::JsonInput,
    },
    /// Destroy objects: `ledger delete account --ids ID[,ID]` (several ask first).
    Delete {
        object: client::Kind,
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<String>,
        #[command(flatten)]
        confirm: confirm::Confirm,
    },
    /// Account maintenance: delete, rename, purge.
    #[command(subcommand)]
    Database(database::DatabaseCommand),
    /// Older spellings: `account delete NAME`, `account update OLD NEW`.
    #[command(subcommand)]
    Account(database::AccountCommand),
    /// Audit: account history, verifiable export, offline verify, checkpoints.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Write a verified, restorable copy of the log: from the server at --url
    /// while it runs, or from a stopped store with --data-dir.
    Backup(backup::BackupArgs),
    /// Build a new store from a backup file or a stopped store, up to a
    /// position or time.
    Restore(backup::RestoreArgs),
    /// Print log records from a position (NDJSON, or one line per event on a
    /// terminal); --follow to keep going.
    Feed(feed::FeedArgs),
    /// Whether the server at --url is ready (`/healthz/ready`); --wait to wait for it.
    Health {
        /// Wait up to this many seconds for it to become ready.
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// What the server's schema says: every object, or one object's fields
    /// and variants, or an enum's values: `ledger describe account`.
    Describe {
        /// An object (`account`, `x:Domain`), a field set (`x:UserAccount`) or an enum (`Permission`).
        what: Option<String>,
    },
    /// Print the version and the git revision it was built from.
    Version,
    /// Print a shell completion script: `ledger completions bash > /etc/bash_completion.d/ledger`.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff): `ledger man > ledger.1`.
    Man,
}

#[derive(Debug, clap::Args)]
pub struct DataDirArgs {
    /// Data directory (fjall database).
    #[arg(long, env = "LEDGER_DATA_DIR", default_value = "ledger-data")]
    pub data_dir: PathBuf,
}

/// An error as the terminal shows it: the whole chain of causes on one line,
/// with what the server wrote (a description, a name) escaped like every
/// other output (see `output::printable`).
pub fn error_text(e: &anyhow::Error) -> String {
    output::printable(&format!("{e:#}"))
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let out = &output::Output::new(cli.json, cli.table, cli.fields.clone());
    let connection = &cli.connection;
    let objects =
        |work: objects::Work| with_client(connection, |client| async move { objects::run(&client, out, work).await });
    match cli.command {
        Command::Get { object, id, as_of } => objects(objects::Work::Get { object, id, as_of }),
        Command::Create { target, fields, json } => objects(objects::Work::Create { target, fields, json }),
        Command::Query { object, filters, limit } => objects(objects::Work::Query { object, filters, limit }),
        Command::Update { object, id, fields, json } => objects(objects::Work::Update { object, id, fields, json }),
        Command::Delete { object, ids, confirm } => objects(objects::Work::Delete { object, ids, confirm }),
        Command::Database(c) => {
            with_client(connection, |client| async move { database::run(&client, out, c.into()).await })
        }
        Command::Account(c) => {
            with_client(connection, |client| async move { database::run(&client, out, c.into()).await })
        }
        Command::Audit(c) if audit::needs_server(&c) => {
            with_client(connection, |client| async move { audit::run_remote(&client, out, c).await })
        }
        Command::Audit(c) => audit_offline::run_offline(c),
        Command::Feed(args) => with_client(connection, |client| async move { feed::run(&client, out, args).await }),
        Command::Backup(args) => match &args.data_dir {
            Some(dir) => backup::offline(dir, &args.file),
            None => with_client(connection, |client| async move { backup::online(&client, &args.file).await }),
        },
        Command::Restore(args) => backup::run_restore(args),
        Command::Health { wait } => health(connection, wait),
        Command::Describe { what } => {
            with_client(connection, |client| async move { describe::run(&client, out, what).await })
        }
        Command::Version => {
            output::emit(format_args!("ledger {}", version::LONG));
            Ok(())
        }
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "ledger", &mut out);
            output::emit(String::from_utf8_lossy(&out).trim_end());
            Ok(())
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut out)?;
            output::emit(String::from_utf8_lossy(&out).trim_end());
            Ok(())
        }
        Command::Serve(args) => serve::serve(*args),
        Command::Rebuild(args) => {
            let started = std::time::Instant::now();
            let bar = progress::positions(0, "rebuilding");
            let replayed = store::rebuild_with(&args.data_dir, &mut progress::follow(&bar))
                .with_context(|| format!("rebuilding projections in {}", args.data_dir.display()))?;
            bar.finish_and_clear();
            output::emit(format_args!(
                "rebuilt projections from {} in {}",
                progress::rate(replayed, started),
                args.data_dir.display()
            ));
            Ok(())
        }
        Command::Verify(args) => verify_store(&args.data_dir),
    }
}

/// `ledger health [--wait SECS]`: asks `/healthz/ready` (no credentials),
/// again every 200 ms until ready or the wait is over.
fn health(connection: &client::Connection, wait: u64) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let url = format!("{}/healthz/ready", connection.url.trim_end_matches('/'));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait);
    let http = client::http_client(connection, Some(std::time::Duration::from_secs(5)))?;
    runtime.block_on(async {
        loop {
            let answer = match http.get(&url).send().await {
                Ok(response) => {
                    let ready = response.status().is_success();
                    let body = response.text().await.unwrap_or_default();
                    Ok((ready, body))
                }
                Err(e) => Err(e),
            };
            match answer {
                Ok((true, body)) => {
                    output::emit(output::printable(body.trim()));
                    return Ok(());
                }
                _ if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Ok((false, body)) => anyhow::bail!("not ready: {}", body.trim()),
                Err(e) => {
                    anyhow::bail!("cannot reach {url}: {} (is `ledger serve` running? check --url)", client::causes(&e))
                }
            }
        }
    })
}

/// Runs `work` with a client of the server, on a runtime of its own.
fn with_client<F, Fut>(connection: &client::Connection, work: F) -> anyhow::Result<()>
where
    F: FnOnce(client::Client) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = client::Client::connect(connection)?;
    runtime.block_on(work(client))
}

/// Verifies the whole hash chain of the stopped store in `data_dir` and prints
/// where it ends (`ledger verify`, `ledger audit verify --data-dir`).
fn verify_store(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let bar = progress::positions(0, "verifying");
    let (tail, checked) = store::verify_offline_with(data_dir, &mut progress::follow(&bar))?;
    bar.finish_and_clear();
    output::emit(format_args!(
        "ok: {checked} records, last position {}, head hash {} (checked {})",
        tail.next_seq - 1,
        tail.last_hash,
        progress::rate(checked, started).replace(" event", " record")
    ));
    Ok(())
}
