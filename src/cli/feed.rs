//! `ledger feed`: prints log records as NDJSON from a position, optionally
//! following the log, and remembers where it stopped in a cursor file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio_stream::StreamExt;
use tokio_util::codec::{FramedRead, LinesCodec};
use tokio_util::io::StreamReader;

use super::client::Client;
use super::output::{Output, emit, event_line, printable};

#[derive(Debug, clap::Args)]
pub struct FeedArgs {
    /// Start after this log position (default: the cursor file's, else the start).
    #[arg(long)]
    pub after: Option<u64>,
    /// Keep running and print new records as they are committed.
    #[arg(long)]
    pub follow: bool,
    /// Only these event types (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    /// Only this account's records (id or address).
    #[arg(long)]
    pub account: Option<String>,
    /// A file holding the last position printed; read to resume, updated after each record.
    #[arg(long)]
    pub cursor: Option<PathBuf>,
}

/// Longest feed line accepted (a record with a large payload is well below it).
const MAX_LINE: usize = 64 * 1024 * 1024;

fn save_cursor(path: &Path, seq: u64) -> anyhow::Result<()> {
    // A temporary file beside it, then renamed over it: a crash never leaves a
    // half-written cursor.
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut file =
        tempfile::NamedTempFile::new_in(dir).with_context(|| format!("writing beside {}", path.display()))?;
    writeln!(file, "{seq}").with_context(|| format!("writing beside {}", path.display()))?;
    file.persist(path).with_context(|| format!("updating {}", path.display()))?;
    Ok(())
}

/// A feed line as one readable line for a terminal (see `output::event_line`).
fn readable(line: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { return printable(line) };
    event_line(&v["seq"], &v["committedAt"], &v["type"], &v["actor"], &v["payload"])
}

/// Longest wait between reconnections of `--follow`.
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(30);

pub(super) async fn run(client: &Client, out: &Output, args: FeedArgs) -> anyhow::Result<()> {
    let from_cursor = match &args.cursor {
        Some(path) if path.exists() => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the cursor file {}", path.display()))?
                .trim()
                .parse::<u64>()
                .with_context(|| format!("{} is not a position (a cursor file holds one number)", path.display()))?,
        ),
        _ => None,
    };
    let mut after = args.after.or(from_cursor).unwrap_or(0);
    if let Some(dir) = args.cursor.as_deref().and_then(Path::parent).filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        anyhow::bail!("the cursor's directory {} does not exist: create it first", dir.display());
    }
    // Names stand for accounts here too (a destroyed account by its id).
    let account = match &args.account {
        Some(a) => Some(
            super::client::find(client, super::client::Kind::Account, a, client.lookup).await?.unwrap_or(a.clone()),
        ),
        None => None,
    };
    let mut backoff = std::time::Duration::from_millis(500);
    let mut lost = false;
    loop {
        let mut progressed = false;
        match stream(client, out, &args, account.as_deref(), &mut after, &mut progressed, &mut lost).await {
            Ok(()) if !args.follow => return Ok(()),
            // A following stream ends when the server shuts down.
            Ok(()) => eprintln!("the feed ended (server stopping?); reconnecting after position {after}"),
            Err(e) if !args.follow => return Err(e),
            // A refusal (credentials, permission, a bad filter) does not pass by itself.
            Err(e) if e.downcast_ref::<super::client::ServerAnswered>().is_some_and(|a| a.is_permanent()) => {
                return Err(e);
            }
            Err(e) => eprintln!("feed: {}; reconnecting after position {after} in {backoff:?}", super::error_text(&e)),
        }
        lost = true;
        if progressed {
            backoff = std::time::Duration::from_millis(500);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection of the feed from `after`, which follows what was printed.
async fn stream(
    client: &Client,
    out: &Output,
    args: &FeedArgs,
    account: Option<&str>,
    after: &mut u64,
    progressed: &mut bool,
    lost: &mut bool,
) -> anyhow::Result<()> {
    let mut query = vec![format!("after={after}"), format!("follow={}", args.follow)];
    if !args.types.is_empty() {
        query.push(format!("types={}", args.types.join(",")));
    }
    if let Some(a) = account {
        query.push(format!("account={a}"));
    }
    let response = client.get_with_accept(&format!("/api/feed?{}", query.join("&")), "application/x-ndjson").await?;
    if std::mem::take(lost) {
        eprintln!("feed: connected again; resuming after position {after}");
    }
    let body = StreamReader::new(response.bytes_stream().map(|chunk| chunk.map_err(std::io::Error::other)));
    let mut lines = FramedRead::new(body, LinesCodec::new_with_max_length(MAX_LINE));
    while let Some(line) = lines.next().await {
        let line = line.context("reading the feed")?;
        let seq = serde_json::from_str::<serde_json::Value>(&line).context("a feed line that is not JSON")?["seq"]
            .as_u64()
            .context("a feed line without a position")?;
        if out.is_json() {
            emit(&line)
        } else {
            emit(readable(&line))
        }
        *after = seq;
        *progressed = true;
        if let Some(path) = &args.cursor {
            save_cursor(path, seq)?;
        }
    }
    Ok(())
}
