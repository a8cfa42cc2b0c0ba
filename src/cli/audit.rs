//! `ledger audit history|export|checkpoint|key|proof`: the audit commands
//! that ask a server. `verify` and `new-key` run offline (`audit_offline.rs`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Subcommand;
use serde_json::json;

use super::client::{Client, Kind, find};
use super::output::{Output, emit, event_line, printable};
use super::trust::{KeyChoice, TrustStore};
use crate::audit::export::Bound;
use crate::audit::note::{Checkpoint, VerifierKey};
use ledger_events::{Digest, merkle};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Every event that touched an account, oldest first (also after it was destroyed).
    History {
        /// Account id or address.
        account: String,
    },
    /// Write the log as NDJSON with hashes and a trailer, for offline verification.
    Export {
        /// First log position or RFC 3339 UTC time.
        #[arg(long)]
        from: Option<Bound>,
        /// Last log position or RFC 3339 UTC time.
        #[arg(long)]
        to: Option<Bound>,
        /// Only this account's records, each with its inclusion proof.
        #[arg(long)]
        account: Option<String>,
        /// A tree size you trust: the export carries the consistency proof from
        /// it (by default the checkpoint remembered for this log, if any).
        #[arg(long)]
        since: Option<u64>,
        /// The trust directory (see `ledger audit verify`).
        #[arg(long, env = "LEDGER_TRUST_DIR")]
        trust_dir: Option<PathBuf>,
    },
    /// Verify an export or backup file offline, or a whole stopped store with --data-dir.
    Verify {
        /// The export to check.
        file: Option<PathBuf>,
        /// Check a store instead of a file.
        #[arg(long, conflicts_with = "file")]
        data_dir: Option<PathBuf>,
        /// A signed checkpoint you kept (a file), or `POSITION:HASH` of the
        /// chain: prove the log only grew since. By default the checkpoint
        /// remembered for this log.
        #[arg(long)]
        checkpoint: Option<String>,
        /// The log's verifier key (`ledger audit key`); by default the one
        /// remembered, or, the first time, the export's (trust on first use).
        #[arg(long)]
        key: Option<String>,
        /// Where the keys and checkpoints of the logs you checked are remembered.
        #[arg(long, env = "LEDGER_TRUST_DIR")]
        trust_dir: Option<PathBuf>,
        /// Accept an export without a signed checkpoint (made before signed
        /// checkpoints): only its own chain is checked, which anyone can forge.
        #[arg(long, conflicts_with_all = ["key"])]
        unsigned: bool,
    },
    /// Fetch the log's signed checkpoint, check its signature and that the log
    /// only grew since the checkpoint remembered, then remember it and print it.
    Checkpoint {
        /// The log's verifier key; by default the one remembered, or the
        /// server's on first use.
        #[arg(long)]
        key: Option<String>,
        /// Where the keys and checkpoints of the logs you checked are remembered.
        #[arg(long, env = "LEDGER_TRUST_DIR")]
        trust_dir: Option<PathBuf>,
    },
    /// Print the log's verifier key (origin, key id, Ed25519 key) for auditors to keep.
    Key,
    /// Make a log key file (mode 0600) for `ledger serve --log-key` (the
    /// same key on every node of a cluster), and print its verifier key.
    NewKey {
        /// The log's origin, a schema-less URL such as `ledger.example.org/accounts`.
        #[arg(long)]
        origin: String,
        /// The file to write; it must not exist.
        file: PathBuf,
    },
    /// Fetch and check an inclusion or consistency proof against signed checkpoints.
    #[command(subcommand)]
    Proof(ProofCommand),
}

#[derive(Debug, Subcommand)]
pub enum ProofCommand {
    /// Prove that the record at a log position is in the signed tree.
    Inclusion {
        /// The log position (from 1).
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        position: u64,
        /// The tree size (by default the whole log).
        #[arg(long)]
        size: Option<u64>,
        /// The log's verifier key (`ledger audit key`); by default the one remembered.
        #[arg(long)]
        key: Option<String>,
        /// Where the keys and checkpoints of the logs you checked are remembered.
        #[arg(long, env = "LEDGER_TRUST_DIR")]
        trust_dir: Option<PathBuf>,
    },
    /// Prove that the tree of size FROM is a prefix of the tree of size TO.
    Consistency {
        /// The smaller tree size (a checkpoint you kept: its second line).
        #[arg(long)]
        from: u64,
        /// By default the whole log.
        #[arg(long)]
        to: Option<u64>,
        /// The log's verifier key (`ledger audit key`); by default the one remembered.
        #[arg(long)]
        key: Option<String>,
        /// Where the keys and checkpoints of the logs you checked are remembered.
        #[arg(long, env = "LEDGER_TRUST_DIR")]
        trust_dir: Option<PathBuf>,
    },
}

/// Whether the command needs a server.
pub(super) fn needs_server(c: &AuditCommand) -> bool {
    !matches!(c, AuditCommand::Verify { .. } | AuditCommand::NewKey { .. })
}

pub(super) async fn run_remote(client: &Client, out: &Output, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::History { account } => {
            let id = match find(client, Kind::Account, &account, client.lookup).await? {
                Some(id) => id,
                // Destroyed (or renamed) since: the log still knows the address.
                None if account.contains('@') => match ever_addressed(client, &account).await? {
                    Some(id) => id,
                    None => bail!("no account has or had the address {account:?}"),
                },
                // An id no live account has: a destroyed account's.
                None => account.clone(),
            };
            let answer = client.call("x:AccountHistory/get", json!({"ids": [id]})).await?;
            let Some(entry) = answer["list"].get(0) else { bail!("no history for {account:?}") };
            if out.is_json() {
                out.object(&entry["events"]);
            } else {
                for e in entry["events"].as_array().into_iter().flatten() {
                    emit(event_line(&e["position"], &e["at"], &e["event"], &e["actor"], &e["details"]));
                }
            }
        }
        AuditCommand::Export { from, to, account, since, trust_dir } => {
            let mut query = Vec::new();
            let bound = |b: Bound| match b {
                Bound::Seq(n) => n.to_string(),
                Bound::Time(t) => t.to_string(),
            };
            if let Some(f) = from {
                query.push(format!("from={}", bound(f)));
            }
            if let Some(t) = to {
                query.push(format!("to={}", bound(t)));
            }
            if let Some(a) = account {
                // Ambiguity is an error; a value nothing live matches is
                // passed on (a destroyed account's id or address).
                let id = find(client, Kind::Account, &a, client.lookup).await?.unwrap_or(a);
                query.push(format!("account={id}"));
            }
            let since = match since {
                Some(since) => Some(since),
                None => {
                    let key = log_key(client).await?;
                    let remembered = TrustStore::at(trust_dir)?.load(&key.origin)?;
                    if let Some(r) = &remembered
                        && r.key.encode() != key.verifier_key
                    {
                        eprintln!(
                            "warning: the server presents another key than the one remembered for {}: `ledger audit \
                             verify` will refuse this export",
                            printable(&key.origin)
                        );
                    }
                    remembered.and_then(|r| r.checkpoint).map(|(c, _)| c.size)
                }
            };
            if let Some(since) = since {
                query.push(format!("since={since}"));
            }
            let mut response = client.get(&format!("/api/audit/export?{}", query.join("&"))).await?;
            // `x-ledger-positions: FROM-TO`: one line per position, then the trailer.
            let lines = response
                .headers()
                .get("x-ledger-positions")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once('-'))
                .and_then(|(a, b)| {
                    Some(b.parse::<u64>().ok()?.saturating_sub(a.parse::<u64>().ok()?).saturating_add(1))
                })
                .unwrap_or(0);
            let started = std::time::Instant::now();
            let bar = super::progress::positions(lines, "exporting");
            let mut written = 0u64;
            let mut stdout = std::io::stdout().lock();
            while let Some(chunk) = response.chunk().await.context("reading the export")? {
                stdout.write_all(&chunk)?;
                written += chunk.iter().filter(|b| **b == b'\n').count() as u64;
                bar.set_position(written);
            }
            stdout.flush()?;
            bar.finish_and_clear();
            eprintln!(
                "exported {}",
                super::progress::rate(written.saturating_sub(1), started).replace(" event", " record")
            );
        }
        AuditCommand::Checkpoint { key, trust_dir } => {
            let store = TrustStore::at(trust_dir)?;
            let offered = log_key(client).await?;
            let choice = store.key_for(&offered.origin, key.as_deref(), Some(&offered.verifier_key))?;
            let key = &choice.key;
            let (checkpoint, note) = signed_checkpoint(client, key, None).await?;
            let since = choice.remembered.as_ref().and_then(|r| r.checkpoint.as_ref());
            let grew = match since {
                None => "the first checkpoint remembered for this log".to_owned(),
                Some((old, _)) if old.size > checkpoint.size => bail!(
                    "this server's log (tree size {}) is behind the checkpoint remembered (tree size {}): ask another node, or later",
                    checkpoint.size,
                    old.size
                ),
                Some((old, _)) => {
                    // On failure both signed notes are the evidence: say where they are.
                    against_remembered(client, &choice, &checkpoint).await.with_context(|| {
                        format!(
                            "keep both signed checkpoints as evidence: the server's is below, the remembered one is \
                             the \"checkpoint\" of {}\n{note}",
                            store.path_of(key.name()).display()
                        )
                    })?;
                    format!("consistent with the checkpoint of tree size {} remembered", old.size)
                }
            };
            store.remember(&choice, &note)?;
            if out.json_asked() {
                // The chain's head at that size, proven in the signed tree: a
                // `POSITION:HASH` for `verify --checkpoint` across a new key.
                let head = match checkpoint.size {
                    0 => None,
                    size => Some(proven_record(client, size, &checkpoint).await?),
                };
                out.object(&json!({
                    "origin": checkpoint.origin,
                    "treeSize": checkpoint.size,
                    "rootHash": hex::encode(checkpoint.root),
                    "checkpoint": note,
                    "consistentWith": since.map(|(c, _)| c.size),
                    "position": head.as_ref().map(|_| checkpoint.size),
                    "hash": head.map(|(_, record, _)| record.to_hex()),
                }));
            } else {
                print!("{note}");
                eprintln!("ok: signed by {} ({}); {grew}", key.name(), key.id_hex());
            }
        }
        AuditCommand::Key => {
            let offered = log_key(client).await?;
            // Printed only once parsed: a server's text never reaches the terminal raw.
            let key = VerifierKey::parse(&offered.verifier_key)
                .ok()
                .filter(|k| k.name() == offered.origin)
                .context("the server's verifier key is malformed, or not named after its origin")?;
            if out.json_asked() {
                out.object(&json!({
                    "origin": key.name(),
                    "keyId": key.id_hex(),
                    "publicKey": key.public_base64(),
                    "verifierKey": key.encode(),
                }));
            } else {
                emit(key.encode());
            }
        }
        AuditCommand::Proof(ProofCommand::Inclusion { position, size, key, trust_dir }) => {
            let store = TrustStore::at(trust_dir)?;
            let choice = proof_key(client, &store, key.as_deref()).await?;
            let (checkpoint, _) = signed_checkpoint(client, &choice.key, size).await?;
            against_remembered(client, &choice, &checkpoint).await?;
            let (proof, record, hashes) = proven_record(client, position, &checkpoint).await?;
            if out.is_json() {
                out.object(&proof);
            } else {
                emit(format_args!(
                    "ok: position {position} (record hash {record}) is in the tree of size {} (root {}) signed by {} ({})",
                    checkpoint.size,
                    BASE64.encode(checkpoint.root),
                    choice.key.name(),
                    choice.key.id_hex()
                ));
                emit_hashes(&hashes);
            }
        }
        AuditCommand::Proof(ProofCommand::Consistency { from, to, key, trust_dir }) => {
            let store = TrustStore::at(trust_dir)?;
            let choice = proof_key(client, &store, key.as_deref()).await?;
            let (newer, _) = signed_checkpoint(client, &choice.key, to).await?;
            let (older, _) = signed_checkpoint(client, &choice.key, Some(from)).await?;
            // Both signed trees must agree with the one remembered: a node
            // signing another history under the same key is caught here.
            against_remembered(client, &choice, &newer).await?;
            against_remembered(client, &choice, &older).await?;
            let hashes = check_consistency(client, &older, &newer).await?;
            if out.is_json() {
                out.object(&json!({
                    "from": older.size, "to": newer.size,
                    "fromRootHash": hex::encode(older.root), "toRootHash": hex::encode(newer.root),
                    "hashes": hashes.iter().map(hex::encode).collect::<Vec<_>>(),
                }));
            } else {
                emit(format_args!(
                    "ok: the signed tree of size {} (root {}) is a prefix of the signed tree of size {} (root {}), \
                     signed by {} ({})",
                    older.size,
                    BASE64.encode(older.root),
                    newer.size,
                    BASE64.encode(newer.root),
                    choice.key.name(),
                    choice.key.id_hex()
                ));
                emit_hashes(&hashes);
            }
        }
        AuditCommand::Verify { .. } | AuditCommand::NewKey { .. } => unreachable!("runs offline"),
    }
    Ok(())
}

/// The log's key as its server presents it.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct LogKey {
    origin: String,
    key_id: String,
    public_key: String,
    verifier_key: String,
}

async fn log_key(client: &Client) -> anyhow::Result<LogKey> {
    let text = client.get_small("/api/audit/key", "application/json", 64 * 1024).await?;
    serde_json::from_str(&text).context("reading the log's key")
}

/// A small JSON answer (a proof: at most 64 hashes).
async fn small_json(client: &Client, path: &str) -> anyhow::Result<serde_json::Value> {
    let text = client.get_small(path, "application/json", 64 * 1024).await?;
    serde_json::from_str(&text).with_context(|| format!("reading the answer to {path}"))
}

/// The server's inclusion proof of `position` in the signed tree of
/// `checkpoint`, checked: the answer, its record hash and its hashes.
async fn proven_record(
    client: &Client,
    position: u64,
    checkpoint: &Checkpoint,
) -> anyhow::Result<(serde_json::Value, Digest, Vec<merkle::Hash>)> {
    let proof =
        small_json(client, &format!("/api/audit/proof/inclusion?position={position}&size={}", checkpoint.size)).await?;
    let record = proof["recordHash"].as_str().and_then(Digest::from_hex).context("the proof has no record hash")?;
    let hashes = hashes(&proof["hashes"])?;
    merkle::verify_inclusion(position - 1, checkpoint.size, &merkle::leaf_hash(&record.0), &hashes, &checkpoint.root)
        .with_context(|| format!("the server's proof that position {position} is in the signed tree does not verify"))?;
    Ok((proof, record, hashes))
}

/// A proof's hashes, one per line in hex (the text form of the proof commands).
fn emit_hashes(hashes: &[merkle::Hash]) {
    for h in hashes {
        emit(hex::encode(h));
    }
}

/// Checks `checkpoint` against the one remembered for its log (if any):
/// the same root at the same size, else a consistency proof between them
/// that verifies with both signed roots.
async fn against_remembered(client: &Client, choice: &KeyChoice, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    let Some((remembered, _)) = choice.remembered.as_ref().and_then(|r| r.checkpoint.as_ref()) else { return Ok(()) };
    if remembered.size == checkpoint.size {
        if remembered.root != checkpoint.root {
            bail!(
                "the log is NOT the one remembered: its signed tree of size {} has another root: it was rewritten \
                 or forked (keep both checkpoints: they are evidence)",
                checkpoint.size
            );
        }
        return Ok(());
    }
    let (older, newer) =
        if remembered.size < checkpoint.size { (remembered, checkpoint) } else { (checkpoint, remembered) };
    check_consistency(client, older, newer).await.map(|_| ())
}

/// The key to check a proof's checkpoints with; on first use the server's
/// own, which is said (proofs remember nothing; `ledger audit checkpoint` does).
async fn proof_key(client: &Client, store: &TrustStore, given: Option<&str>) -> anyhow::Result<KeyChoice> {
    let offered = log_key(client).await?;
    let choice = store.key_for(&offered.origin, given, Some(&offered.verifier_key))?;
    if choice.first_use && given.is_none() {
        eprintln!(
            "checked with the server's own key {} (not trusted yet: `ledger audit checkpoint` remembers it)",
            choice.key.encode()
        );
    }
    Ok(choice)
}

/// The server's checkpoint of tree size `size` (the whole log when `None`), opened with `key`.
async fn signed_checkpoint(
    client: &Client,
    key: &VerifierKey,
    size: Option<u64>,
) -> anyhow::Result<(Checkpoint, String)> {
    let path = match size {
        Some(size) => format!("/api/audit/checkpoint?size={size}"),
        None => "/api/audit/checkpoint".to_owned(),
    };
    let note = client.get_small(&path, "text/plain", 1024 * 1024).await?;
    // Only the log key's signature lines are kept (and shown, and remembered).
    let note = key
        .own_note(&note)
        .with_context(|| format!("the server's checkpoint is not signed by the log key {}", key.encode()))?;
    let checkpoint = Checkpoint::open(&note, key)
        .with_context(|| format!("the server's checkpoint is not signed by the log key {}", key.encode()))?;
    if size.is_some_and(|s| s != checkpoint.size) {
        bail!(
            "asked for the checkpoint of tree size {}, the server signed tree size {}",
            size.unwrap_or(0),
            checkpoint.size
        );
    }
    Ok((checkpoint, note))
}

/// Fetches and checks the consistency proof from `older` to `newer`; its hashes.
async fn check_consistency(
    client: &Client,
    older: &Checkpoint,
    newer: &Checkpoint,
) -> anyhow::Result<Vec<merkle::Hash>> {
    let proof =
        small_json(client, &format!("/api/audit/proof/consistency?from={}&to={}", older.size, newer.size)).await?;
    let hashes = hashes(&proof["hashes"])?;
    merkle::verify_consistency(older.size, newer.size, &older.root, &newer.root, &hashes).with_context(|| {
        format!(
            "the log is NOT consistent with the checkpoint of tree size {}: it was rewritten or forked since",
            older.size
        )
    })?;
    Ok(hashes)
}

fn hashes(list: &serde_json::Value) -> anyhow::Result<Vec<merkle::Hash>> {
    let parse = |v: &serde_json::Value| {
        let mut out = [0u8; 32];
        hex::decode_to_slice(v.as_str()?, &mut out).ok()?;
        Some(out)
    };
    list.as_array()
        .context("the proof has no hashes")?
        .iter()
        .map(|v| parse(v).context("a proof hash is not 64 hex digits"))
        .collect()
}

/// The id of the account that was ever created or renamed with the address
/// `given`, from the log (the change feed's AccountCreated and AccountRenamed
/// records): for one destroyed since. Several such accounts are refused with
/// their ids.
async fn ever_addressed(client: &Client, given: &str) -> anyhow::Result<Option<String>> {
    if !given.contains('@') {
        return Ok(None);
    }
    let wanted = given.to_lowercase();
    let response = client
        .get_with_accept("/api/feed?after=0&follow=false&types=AccountCreated,AccountRenamed", "application/x-ndjson")
        .await?;
    let text = response.text().await.context("reading the feed")?;
    let mut ids: Vec<String> = Vec::new();
    for line in text.lines() {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let payload = &record["payload"];
        let had = ["emailAddress", "oldEmailAddress", "newEmailAddress"]
            .iter()
            .any(|k| payload[*k].as_str().is_some_and(|a| a.eq_ignore_ascii_case(&wanted)));
        if let Some(id) = payload["accountId"].as_str().filter(|_| had)
            && !ids.iter().any(|i| i == id)
        {
            ids.push(id.to_owned());
        }
    }
    match ids.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        several => {
            bail!("{given:?} was the address of {} accounts (ids {}); give the id", several.len(), several.join(", "))
        }
    }
}
