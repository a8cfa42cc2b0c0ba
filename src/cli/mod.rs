//! The `ledger` command line: `serve` and the ledger tools, and the
//! stalwart-cli-compatible client commands that talk JMAP to a running server.

mod audit;
mod client;
mod database;
mod feed;
mod fields;
mod objects;
mod output;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::auth::AuthConfig;
use crate::auth::limiter::Budget;
use crate::http::{self, AppState};
use crate::store::{self, Durability, Ledger};

#[derive(Debug, Parser)]
#[command(name = "ledger", version, about = "account-ledger: event-sourced system of record for mail-server accounts")]
pub struct Cli {
    #[command(flatten)]
    pub connection: client::Connection,
    /// Print JSON (the default when standard output is not a terminal).
    #[arg(long, global = true)]
    pub json: bool,
    /// Print tables and key/value views even when standard output is not a terminal.
    #[arg(long, global = true, conflicts_with = "json")]
    pub table: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service.
    Serve(ServeArgs),
    /// Drop the projections of a stopped ledger and rebuild them from its log.
    Rebuild(DataDirArgs),
    /// Verify the whole hash chain of a stopped ledger.
    Verify(DataDirArgs),
    /// Show one object: `ledger get account alice@example.org`.
    Get {
        object: client::Kind,
        /// Id or name (an address for accounts, a domain name, a role name).
        id: String,
    },
    /// Create an object: `ledger create account/user --field name=alice --field domainId=example.org`.
    Create {
        /// account/user, account/group, domain or role.
        target: objects::Target,
        /// A property, `key=value`; values that look like JSON are parsed as JSON.
        #[arg(long = "field", short = 'f')]
        fields: Vec<String>,
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
    },
    /// Destroy objects: `ledger delete account --ids ID[,ID]`.
    Delete {
        object: client::Kind,
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<String>,
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
    /// Build a new store holding the log up to a position or time, and its projections.
    Restore(RestoreArgs),
    /// Print log records as NDJSON from a position; --follow to keep going.
    Feed(feed::FeedArgs),
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The store to read (not open in a running server; restore from a copy if it is).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The new store; it must be empty or not exist.
    #[arg(long)]
    pub to: PathBuf,
    /// Keep the log up to this RFC 3339 UTC time.
    #[arg(long, conflicts_with = "seq", required_unless_present = "seq")]
    pub at: Option<ledger_events::values::UtcDateTime>,
    /// Keep the log up to this position.
    #[arg(long)]
    pub seq: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct DataDirArgs {
    /// Data directory (fjall database).
    #[arg(long, env = "LEDGER_DATA_DIR", default_value = "ledger-data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// Address to listen on.
    #[arg(long, env = "LEDGER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// `fsync`: acknowledge after fsync. `buffered`: faster, may lose the last
    /// commits on power loss.
    #[arg(long, env = "LEDGER_DURABILITY", value_enum, default_value = "fsync")]
    pub durability: Durability,
    /// Name of the fallback administrator, who exists outside the log.
    #[arg(long, env = "LEDGER_ADMIN_USER", default_value = "admin")]
    pub admin_user: String,
    /// Its password. When unset, a generated one is printed on first start and only
    /// its hash is kept (DATA_DIR/admin.hash).
    #[arg(long, env = "LEDGER_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Proxies (CIDR) whose X-Forwarded-For header names the client; repeat or
    /// separate with commas.
    #[arg(long, env = "LEDGER_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxy: Vec<ipnet::IpNet>,
    /// Days of change tracking (`/changes`) to keep; 0 keeps it forever.
    #[arg(long, env = "LEDGER_CHANGES_RETENTION_DAYS", default_value_t = 90)]
    pub changes_retention_days: u64,
    /// Minutes between scheduled purges; 0 turns them off.
    #[arg(long, env = "LEDGER_PURGE_INTERVAL_MINUTES", default_value_t = 60)]
    pub purge_interval_minutes: u64,
    /// Usage commits start at most once per this many milliseconds; reports that
    /// arrive meanwhile become one QuotaUsageChanged per account and quota kind.
    /// Longer: fewer events, coarser usage history, slower answers under load
    /// (see docs/operations.md).
    #[arg(long, env = "LEDGER_USAGE_WINDOW_MS", default_value_t = 100)]
    pub usage_window_ms: u64,
    /// Failed logins one source (an IPv4 address, all of 127.0.0.0/8, an IPv6
    /// /64) may have per window before it is answered 429.
    #[arg(long, env = "LEDGER_LOGIN_SOURCE_FAILURES", default_value_t = 10)]
    pub login_source_failures: u32,
    /// That window, in seconds.
    #[arg(long, env = "LEDGER_LOGIN_SOURCE_WINDOW_SECS", default_value_t = 60)]
    pub login_source_window_secs: u64,
    /// Failed logins at one account, from all sources, per window before new
    /// logins to it are answered 429 (logins verified earlier go on).
    #[arg(long, env = "LEDGER_LOGIN_ACCOUNT_FAILURES", default_value_t = 100)]
    pub login_account_failures: u32,
    /// That window, in seconds.
    #[arg(long, env = "LEDGER_LOGIN_ACCOUNT_WINDOW_SECS", default_value_t = 900)]
    pub login_account_window_secs: u64,
    /// Open connections at most (held below half the open-file limit); at
    /// the cap new clients wait in the listen backlog.
    #[arg(long, env = "LEDGER_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Open connections from one address (IPv6: one /64) at most; trusted
    /// proxies are exempt.
    #[arg(long, env = "LEDGER_MAX_CONNECTIONS_PER_IP", default_value_t = 64)]
    pub max_connections_per_ip: usize,
    /// Seconds for a request's headers to arrive; also how long a kept-alive
    /// connection may idle.
    #[arg(long, env = "LEDGER_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds in which a client that an answer waits for must take 64 KiB of
    /// it, else its connection is closed.
    #[arg(long, env = "LEDGER_SEND_TIMEOUT_SECS", default_value_t = 30)]
    pub send_timeout_secs: u64,
    /// Event streams (feed, push) one principal may hold open at once.
    #[arg(long, env = "LEDGER_MAX_STREAMS_PER_PRINCIPAL", default_value_t = 16)]
    pub max_streams_per_principal: usize,
    /// JMAP `maxSizeRequest`: bytes of one request body at most.
    #[arg(long, env = "LEDGER_MAX_SIZE_REQUEST", default_value_t = 10_000_000)]
    pub max_size_request: usize,
    /// JMAP `maxConcurrentRequests`: requests one principal may have answered at
    /// once; more are refused with the `limit` error
    #[arg(long, env = "LEDGER_MAX_CONCURRENT_REQUESTS", default_value_t = 64)]
    pub max_concurrent_requests: usize,
    /// JMAP `maxCallsInRequest`: method calls in one request at most.
    #[arg(long, env = "LEDGER_MAX_CALLS_IN_REQUEST", default_value_t = 32)]
    pub max_calls_in_request: usize,
    /// JMAP `maxObjectsInGet`: ids one /get asks for at most.
    #[arg(long, env = "LEDGER_MAX_OBJECTS_IN_GET", default_value_t = 500)]
    pub max_objects_in_get: usize,
    /// JMAP `maxObjectsInSet`: creates, updates and destroys in one /set at most.
    #[arg(long, env = "LEDGER_MAX_OBJECTS_IN_SET", default_value_t = 500)]
    pub max_objects_in_set: usize,
    /// Ids one /query answers at most; clients page on.
    #[arg(long, env = "LEDGER_MAX_QUERY_LIMIT", default_value_t = 10_000)]
    pub max_query_limit: usize,
}

/// An error as the terminal shows it: the whole chain of causes on one line,
/// with what the server wrote (a description, a name) escaped like every
/// other output (see `output::printable`).
pub fn error_text(e: &anyhow::Error) -> String {
    output::printable(&format!("{e:#}"))
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let out = &output::Output::new(cli.json, cli.table);
    let connection = &cli.connection;
    let objects =
        |work: objects::Work| with_client(connection, |client| async move { objects::run(&client, out, work).await });
    match cli.command {
        Command::Get { object, id } => objects(objects::Work::Get { object, id }),
        Command::Create { target, fields } => objects(objects::Work::Create { target, fields }),
        Command::Query { object, filters, limit } => objects(objects::Work::Query { object, filters, limit }),
        Command::Update { object, id, fields } => objects(objects::Work::Update { object, id, fields }),
        Command::Delete { object, ids } => objects(objects::Work::Delete { object, ids }),
        Command::Database(c) => {
            with_client(connection, |client| async move { database::run(&client, out, c.into()).await })
        }
        Command::Account(c) => {
            with_client(connection, |client| async move { database::run(&client, out, c.into()).await })
        }
        Command::Audit(c) if audit::needs_server(&c) => {
            with_client(connection, |client| async move { audit::run_remote(&client, out, c).await })
        }
        Command::Audit(c) => audit::run_offline(c),
        Command::Feed(args) => with_client(connection, |client| async move { feed::run(&client, args).await }),
        Command::Restore(args) => {
            let to = match (args.seq, args.at) {
                (Some(seq), _) => crate::audit::export::Bound::Seq(seq),
                (None, Some(at)) => crate::audit::export::Bound::Time(at),
                (None, None) => anyhow::bail!("give --seq or --at"),
            };
            let restored = crate::audit::restore::restore(&args.data_dir, &args.to, to)
                .with_context(|| format!("restoring {} into {}", args.data_dir.display(), args.to.display()))?;
            println!(
                "restored positions 1..={} into {} (head hash {})",
                restored.last_seq,
                args.to.display(),
                restored.last_hash
            );
            Ok(())
        }
        Command::Serve(args) => serve(args),
        Command::Rebuild(args) => {
            let replayed = store::rebuild(&args.data_dir)
                .with_context(|| format!("rebuilding projections in {}", args.data_dir.display()))?;
            println!("rebuilt projections from {replayed} events in {}", args.data_dir.display());
            Ok(())
        }
        Command::Verify(args) => verify_store(&args.data_dir),
    }
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
    let ledger =
        Ledger::open(data_dir, Durability::Fsync).with_context(|| format!("opening {}", data_dir.display()))?;
    let (tail, checked) = ledger.verify().context("verifying the hash chain")?;
    println!("ok: {checked} records, last position {}, head hash {}", tail.next_seq - 1, tail.last_hash);
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(survive_file_size_limit());
    let data_dir = args.data.data_dir;
    let ledger = Ledger::open(&data_dir, args.durability)
        .with_context(|| format!("opening the ledger in {}", data_dir.display()))?;
    let config = AuthConfig {
        admin_user: args.admin_user.to_lowercase(),
        admin_password: args.admin_password.clone(),
        trusted_proxies: args.trusted_proxy.clone(),
        per_source: Budget {
            max_failures: args.login_source_failures,
            window: std::time::Duration::from_secs(args.login_source_window_secs),
        },
        per_account: Budget {
            max_failures: args.login_account_failures,
            window: std::time::Duration::from_secs(args.login_account_window_secs),
        },
    };
    let services = crate::jmap::ServicesConfig {
        purge_policy: crate::maintenance::PurgePolicy {
            changes_retention: (args.changes_retention_days > 0)
                .then(|| std::time::Duration::from_secs(args.changes_retention_days * 86_400)),
        },
        usage_window: std::time::Duration::from_millis(args.usage_window_ms),
        limits: crate::jmap::Limits {
            max_size_request: args.max_size_request.max(1),
            max_concurrent_requests: args.max_concurrent_requests.max(1),
            max_calls_in_request: args.max_calls_in_request.max(1),
            max_objects_in_get: args.max_objects_in_get.max(1),
            max_objects_in_set: args.max_objects_in_set.max(1),
            max_query_limit: args.max_query_limit.max(1),
        },
    };
    let (mut app, generated) = AppState::open(ledger.clone(), &data_dir, &config, services)
        .with_context(|| format!("setting up authentication in {}", data_dir.display()))?;
    http::raise_open_file_limit();
    app.connections = http::ConnectionLimits {
        max_connections: args.max_connections.max(1),
        max_connections_per_ip: args.max_connections_per_ip.max(1),
        header_read_timeout: std::time::Duration::from_secs(args.header_read_timeout_secs.max(1)),
        send_timeout: std::time::Duration::from_secs(args.send_timeout_secs.max(1)),
        max_streams_per_principal: args.max_streams_per_principal,
    };
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let local = listener.local_addr()?;
        if args.purge_interval_minutes > 0 {
            let every = std::time::Duration::from_secs(args.purge_interval_minutes * 60);
            crate::maintenance::schedule(ledger.clone(), app.services.purge_policy(), every);
        }
        let shown = std::fs::canonicalize(&data_dir).unwrap_or(data_dir.clone());
        println!("ledger listening on http://{local}");
        println!("data directory: {} (durability: {:?})", shown.display(), args.durability);
        if let Some(password) = &generated {
            // Shown once, on the terminal only; the data directory keeps its hash.
            println!(
                "generated the fallback administrator password for {:?}: {} (shown once; set LEDGER_ADMIN_PASSWORD to choose one)",
                config.admin_user,
                password.expose()
            );
        }
        tracing::info!(%local, data_dir = %shown.display(), "serving");
        http::serve(listener, app, shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    ledger.shutdown();
    Ok(())
}

/// A file-size limit (RLIMIT_FSIZE) reached by a write raises SIGXFSZ, which
/// kills the process by default. Handling it instead makes that write fail like a
/// full disk: the commit is answered with serverFail, reads go on.
async fn survive_file_size_limit() {
    #[cfg(target_os = "linux")]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ)) {
            Ok(mut signals) => {
                tokio::spawn(async move {
                    while signals.recv().await.is_some() {
                        tracing::error!("a write reached the file-size limit (SIGXFSZ); it fails like a full disk");
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot handle SIGXFSZ"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight commits");
}
