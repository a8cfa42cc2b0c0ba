//! `ledger feed`: prints log records as NDJSON from a position, optionally
//! following the log, and remembers where it stopped in a cursor file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::client::Client;

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
    /// Only this account's records (id).
    #[arg(long)]
    pub account: Option<String>,
    /// A file holding the last position printed; read to resume, updated after each record.
    #[arg(long)]
    pub cursor: Option<PathBuf>,
}

fn save_cursor(path: &PathBuf, seq: u64) -> anyhow::Result<()> {
    // Write then rename, so a crash never leaves a half-written cursor.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{seq}\n")).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("updating {}", path.display()))?;
    Ok(())
}

pub async fn run(client: &Client, args: FeedArgs) -> anyhow::Result<()> {
    let from_cursor = match &args.cursor {
        Some(path) if path.exists() => Some(
            std::fs::read_to_string(path)?
                .trim()
                .parse::<u64>()
                .with_context(|| format!("{} is not a position", path.display()))?,
        ),
        _ => None,
    };
    let after = args.after.or(from_cursor).unwrap_or(0);
    let mut query = vec![format!("after={after}"), format!("follow={}", args.follow)];
    if !args.types.is_empty() {
        query.push(format!("types={}", args.types.join(",")));
    }
    if let Some(a) = &args.account {
        query.push(format!("account={a}"));
    }
    let mut response =
        client.get_with_accept(&format!("/api/feed?{}", query.join("&")), "application/x-ndjson").await?;
    let mut pending = Vec::new();
    let mut stdout = std::io::stdout().lock();
    while let Some(chunk) = response.chunk().await.context("reading the feed")? {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            stdout.write_all(&line)?;
            stdout.flush()?;
            if let Some(path) = &args.cursor {
                let seq = serde_json::from_slice::<serde_json::Value>(&line)?["seq"]
                    .as_u64()
                    .context("a feed line without a position")?;
                save_cursor(path, seq)?;
            }
        }
    }
    Ok(())
}
