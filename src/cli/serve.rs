//! `ledger serve`: opens the store (answering health probes meanwhile),
//! sets up authentication, TLS and the limits, notifies systemd, serves until
//! SIGTERM or Ctrl-C, then finishes in-flight commits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::DataDirArgs;
use super::version;
use crate::auth::AuthConfig;
use crate::auth::limiter::Budget;
use crate::http::{self, AppState};
use crate::store::{self, Durability, Ledger};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// A TOML file of settings, keyed by these flags' long names
    /// (`max-connections = 2048`); flags and environment variables win over it.
    #[arg(long, env = "LEDGER_CONFIG")]
    pub config: Option<PathBuf>,
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
    /// Start a store whose log has records but whose sealing.key is missing
    /// (restored from a backup without its key) with a new key: TOTP seeds
    /// and other secrets sealed before become unusable.
    #[arg(long, env = "LEDGER_NEW_SEALING_KEY")]
    pub new_sealing_key: bool,
    /// `text` (colour only on a terminal) or `json` (one object per line).
    #[arg(long, env = "LEDGER_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// PEM certificate chain; with --tls-key, every connection is TLS.
    #[arg(long, env = "LEDGER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "LEDGER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Keep the log on a NATS JetStream cluster instead of in the data
    /// directory: its servers, `nats://host:port`, comma-separated. The data
    /// directory then holds this node's copy of the log and its projections
    /// (see docs/operations.md, "Running a cluster").
    #[arg(long, env = "LEDGER_LOG_URL", value_name = "nats://HOST:PORT[,…]")]
    pub log: Option<String>,
    /// The log stream's name (its payload and key streams add `_PAYLOADS`
    /// and `_KEYS`); created on first start.
    #[arg(long, env = "LEDGER_LOG_STREAM", default_value = "LEDGER", requires = "log")]
    pub log_stream: String,
    /// Copies the servers keep of each stream, when the ledger creates them
    /// (3 or 5; an existing log stream must have at least this many).
    #[arg(long, env = "LEDGER_LOG_REPLICAS", default_value_t = 3, requires = "log")]
    pub log_replicas: usize,
    /// The URL clients reach the service at, when a proxy stands in front
    /// (`https://ledger.example.org`): the Session's apiUrl and other URLs use it.
    #[arg(long, env = "LEDGER_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The log key (Ed25519, `PRIVATE+KEY+NAME+ID+KEY`, mode 0600) that signs
    /// checkpoints; by default `log.key` in the data directory, made on first
    /// start. The ledger keeps the last checkpoint it signed beside it
    /// (`FILE.checkpoint`), so its directory must be writable.
    #[arg(long, env = "LEDGER_LOG_KEY")]
    pub log_key: Option<PathBuf>,
    /// The origin (the key's name) of a log key made on first start, a
    /// schema-less URL such as `ledger.example.org/accounts`; by default the
    /// --public-url without its scheme, else a random one.
    #[arg(long, env = "LEDGER_LOG_ORIGIN")]
    pub log_origin: Option<String>,
    /// Seconds between signed checkpoints while the log grows; 0 signs only on demand.
    #[arg(long, env = "LEDGER_CHECKPOINT_INTERVAL_SECS", default_value_t = 60)]
    pub checkpoint_interval_secs: u64,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub(super) fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(survive_file_size_limit());
    let data_dir = args.data.data_dir.clone();
    tracing::info!(version = version::VERSION, revision = version::REVISION, "ledger starting");
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    http::raise_open_file_limit();
    // The port first: a start that cannot listen fails before it creates or
    // changes anything (a generated password is never kept unshown).
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(args.listen))
        .with_context(|| format!("listening on {} (another server there? an address of this machine?)", args.listen))?;
    if let Some(reason) = not_for_a_store(&data_dir) {
        anyhow::bail!("{} cannot hold the store: {reason}", data_dir.display());
    }
    let local = listener.local_addr()?;
    // SIGTERM and Ctrl-C are handled from here on: one that comes while the
    // store opens ends the start cleanly once it is open.
    let (stopped, stop) = tokio::sync::watch::channel(false);
    {
        let _entered = runtime.enter();
        let signalled = shutdown_signal();
        runtime.spawn(async move {
            signalled.await;
            stopped.send_replace(true);
            // A second signal while commits finish (or the store still
            // opens) ends the process at once; nothing unacknowledged is lost.
            shutdown_signal().await;
            std::process::exit(130);
        });
    }
    // While the store opens (replaying the log can take a while), health
    // probes are answered: live, not ready.
    store::location::sweep_private_copies(&data_dir);
    let cluster = match &args.log {
        None => None,
        Some(urls) => Some(runtime.block_on(connect_cluster(urls, &args, &data_dir))?),
    };
    let link = cluster.as_ref().map(|(log, payloads)| {
        store::cluster::ClusterLink::new(log.clone(), payloads.clone(), runtime.handle().clone())
    });
    let node = link.as_ref().map_or(0, |l| l.node());
    let (listener, ledger) = runtime.block_on(open_while_answering(listener, &data_dir, args.durability, link))?;
    if let Some((log, payloads)) = cluster {
        runtime.spawn(crate::cluster::follow(ledger.clone(), log, payloads, node));
    }
    let pid_file = data_dir.join(store::location::PID_FILE);
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing {}", pid_file.display()))?;
    let served = serve_opened(&runtime, &args, listener, local, ledger.clone(), tls, stop);
    ledger.shutdown();
    let _ = std::fs::remove_file(&pid_file);
    served
}

fn serve_opened(
    runtime: &tokio::runtime::Runtime,
    args: &ServeArgs,
    listener: tokio::net::TcpListener,
    local: SocketAddr,
    ledger: Ledger,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let data_dir = &args.data.data_dir;
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
    let key = data_dir.join(crate::secrets::SEALING_KEY_FILE);
    if ledger.read().last_seq > 0 && !key.exists() && !args.new_sealing_key {
        anyhow::bail!(
            "{} is missing, but the log has records whose secrets (TOTP seeds) were sealed with it: copy the \
             store's sealing.key there (a restore from a backup does not hold it), or start with \
             --new-sealing-key to accept that those secrets are lost",
            key.display()
        );
    }
    let fallback_origin = args.public_url.as_deref().and_then(|url| {
        let bare = url.split_once("://").map_or(url, |(_, rest)| rest).trim_end_matches('/');
        crate::audit::note::valid_name(bare).then(|| bare.to_owned())
    });
    let notary = crate::audit::notary::NotaryConfig {
        key_file: args.log_key.clone(),
        origin: args.log_origin.clone(),
        fallback_origin,
    };
    let (mut app, generated) = AppState::open_with(ledger.clone(), data_dir, &config, services, &notary)
        .with_context(|| format!("setting up authentication and the log key in {}", data_dir.display()))?;
    app.checkpoint_interval = std::time::Duration::from_secs(args.checkpoint_interval_secs);
    // Where the service is, once everything that writes to the data
    // directory has (the keys), then the generated password.
    let scheme = if tls.is_some() { "https" } else { "http" };
    let shown = std::fs::canonicalize(data_dir).unwrap_or(data_dir.clone());
    // Standard output may be gone (`ledger serve | true`): these lines are
    // then dropped; the generated password's line is not (below).
    let durability = format!("{:?}", args.durability).to_lowercase();
    let _ = say(format_args!("ledger listening on {scheme}://{local}"));
    let _ =
        say(format_args!("data directory: {} (durability: {durability}); version {}", shown.display(), version::LONG));
    if let Some(password) = &generated {
        // Shown once, on the terminal only, before anything else can fail;
        // the data directory keeps its hash, but only once it was shown.
        let shown = say(format_args!(
            "generated the fallback administrator password for {:?}: {} (shown once; set LEDGER_ADMIN_PASSWORD to choose one)",
            config.admin_user,
            password.expose()
        ));
        if let Err(e) = shown {
            let _ = std::fs::remove_file(data_dir.join(crate::auth::admin::ADMIN_HASH_FILE));
            anyhow::bail!(
                "the generated administrator password could not be shown ({e}), so it was not kept: start with a \
                 standard output, or set LEDGER_ADMIN_PASSWORD"
            );
        }
    }
    app.connections = http::ConnectionLimits {
        max_connections: args.max_connections.max(1),
        max_connections_per_ip: args.max_connections_per_ip.max(1),
        header_read_timeout: std::time::Duration::from_secs(args.header_read_timeout_secs.max(1)),
        send_timeout: std::time::Duration::from_secs(args.send_timeout_secs.max(1)),
        max_streams_per_principal: args.max_streams_per_principal,
    };
    app.tls = tls;
    app.public_url = args.public_url.clone();
    runtime.block_on(async {
        if args.purge_interval_minutes > 0 {
            let every = std::time::Duration::from_secs(args.purge_interval_minutes * 60);
            crate::maintenance::schedule(ledger.clone(), app.services.purge_policy(), every);
        }
        let shown = std::fs::canonicalize(data_dir).unwrap_or(data_dir.clone());
        tracing::info!(
            %local,
            data_dir = %shown.display(),
            version = version::VERSION,
            revision = version::REVISION,
            "serving"
        );
        let mut stop = stop;
        if *stop.borrow() {
            // Stopped while the store was opening: nothing was served.
            return anyhow::Ok(());
        }
        // systemd (Type=notify): ready now. Without NOTIFY_SOCKET this does nothing.
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        let stopping = async move {
            let _ = stop.wait_for(|s| *s).await;
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        };
        http::serve(listener, app, stopping).await?;
        anyhow::Ok(())
    })
}

/// Opens the store on a blocking thread while a stand-in server on a clone
/// of `listener` answers health probes (live, not ready); then stops it and
/// hands the listener back.
async fn open_while_answering(
    listener: tokio::net::TcpListener,
    data_dir: &std::path::Path,
    durability: Durability,
    link: Option<store::cluster::ClusterLink>,
) -> anyhow::Result<(tokio::net::TcpListener, Ledger)> {
    let std_listener = listener.into_std()?;
    let stand_in = tokio::net::TcpListener::from_std(std_listener.try_clone()?)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let answering = tokio::spawn(async move {
        let app = http::health::opening_router();
        axum::serve(stand_in, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    let dir = data_dir.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || match link {
        None => Ledger::open(&dir, durability),
        Some(link) => Ledger::open_cluster(&dir, durability, link),
    })
    .await;
    // Its connections are dropped, not waited for: a client that holds one
    // open (half a request) cannot keep the service from starting.
    drop(stop);
    answering.abort();
    let _ = answering.await;
    let ledger = opened
        .context("opening the ledger")?
        .with_context(|| format!("opening the ledger in {}", data_dir.display()))?;
    Ok((tokio::net::TcpListener::from_std(std_listener)?, ledger))
}

/// Connects to the cluster's servers, opens (or creates) the log stream and
/// its payload store, and makes `sealing.key` in `data_dir` the cluster's
/// (every node must seal and unseal secrets with the same key).
async fn connect_cluster(
    urls: &str,
    args: &ServeArgs,
    data_dir: &std::path::Path,
) -> anyhow::Result<(crate::cluster::StreamLog, crate::cluster::PayloadStore)> {
    let limit = std::time::Duration::from_secs(30);
    let connecting = async {
        let log = crate::cluster::StreamLog::open(urls, &args.log_stream, args.log_replicas).await?;
        let payloads = log.payload_store(args.log_replicas).await?;
        let key = payloads.sealing_key().await?;
        Ok::<_, crate::cluster::ClusterError>((log, payloads, key))
    };
    let (log, payloads, key) = tokio::time::timeout(limit, connecting)
        .await
        .map_err(|_| anyhow::anyhow!("the NATS servers at {urls} did not answer within {limit:?}"))?
        .with_context(|| format!("opening the log stream {} at {urls}", args.log_stream))?;
    let path = data_dir.join(crate::secrets::SEALING_KEY_FILE);
    match std::fs::read(&path) {
        Ok(local) if local == key => {}
        Ok(_) => anyhow::bail!(
            "{} is not the sealing key of the log stream {}: this data directory belongs to another ledger; give \
             the node an empty directory",
            path.display(),
            args.log_stream
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            store::location::create_private_dir(data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            crate::secrets::write_private(&path, &key).with_context(|| format!("writing {}", path.display()))?;
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    Ok((log, payloads))
}

/// Writes a line to standard output, reporting failure (a closed pipe).
fn say(line: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush())
}

/// Why `dir` cannot hold a store, if it cannot: it is a file, or a directory
/// that has other things in it and no store (a mistyped path).
fn not_for_a_store(dir: &std::path::Path) -> Option<String> {
    let meta = std::fs::metadata(dir).ok()?;
    if !meta.is_dir() {
        return Some("it is a file".to_owned());
    }
    let is_store = store::location::holds_store(dir);
    let empty = std::fs::read_dir(dir).ok()?.next().is_none();
    (!is_store && !empty).then(|| "it is not empty and holds no ledger store; give a new or empty directory".to_owned())
}

/// The TLS acceptor for a PEM certificate chain and key.
fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let cert_bytes = std::fs::read(cert).with_context(|| format!("reading the TLS certificate {}", cert.display()))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("{} is not a PEM certificate chain", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{} holds no certificate (expected PEM `BEGIN CERTIFICATE`)", cert.display());
    }
    let key_bytes = std::fs::read(key).with_context(|| format!("reading the TLS key {}", key.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes)
        .map_err(|_| anyhow::anyhow!("{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| anyhow::anyhow!("the TLS key does not match the certificate, or is not supported ({e})"))?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
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

/// Resolves at SIGTERM or SIGINT (Ctrl-C). The handlers are installed when
/// this is called (inside the runtime), not when first polled, so a signal
/// that comes right after systemd hears READY=1 is not the default (fatal) one.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let mut handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let (term, int) = (handlers.0.take(), handlers.1.take());
            tokio::select! {
                _ = wait(term) => {},
                _ = wait(int) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down: finishing in-flight commits");
    }
}
