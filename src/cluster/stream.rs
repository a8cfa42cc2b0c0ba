//! One JetStream stream as the ledger's log: creating it with settings that
//! keep it gapless and durable, appending a commit with compare-and-append,
//! and following it with the chain checked.
//!
//! Facts relied on (verified by `tests/integration/cluster.rs` against the
//! server version `.ci/tools` installs): `Nats-Expected-Last-Sequence` is
//! exclusive on a replicated stream; a rejected append does not use up a
//! sequence; a publish whose `Nats-Msg-Id` was stored within the duplicate
//! window answers with the stored sequence and `duplicate: true`, before the
//! expected-sequence check; a stream with `deny_delete`/`deny_purge` refuses
//! both.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, message::PublishMessage, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use ledger_events::codec::{decode_commit, encode_commit};
use ledger_events::{ChainError, ChainVerifier, Record};

use super::Owner;
use uuid::Uuid;

/// The subject every commit is published on.
const SUBJECT_SUFFIX: &str = "commit";
/// How long the servers remember a commit id, so a retried append is stored once.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(300);
/// The largest commit message (the servers' default payload limit).
pub(crate) const MAX_COMMIT_BYTES: i32 = 1024 * 1024;

const FIRST_POSITION: &str = "Ledger-First-Position";
const COUNT: &str = "Ledger-Count";
const PREVIOUS_HASH: &str = "Ledger-Previous-Hash";
const HEAD_HASH: &str = "Ledger-Head-Hash";
/// Whose key seals each record's payload, one [`Owner`] token per record, in
/// order (routing for the payload store; a wrong one only fails the fetch).
const OWNERS: &str = "Ledger-Owners";

/// What can go wrong with the cluster's log.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot reach the NATS servers at {urls}: {reason}")]
    Connect { urls: String, reason: String },
    #[error("the log stream {stream}: {reason}")]
    Stream { stream: String, reason: String },
    /// The stream exists with a setting that would let it lose or reorder
    /// commits; the ledger never changes an existing stream.
    #[error("the log stream {stream} has {setting} = {found}, the ledger needs {wanted}")]
    Settings { stream: String, setting: &'static str, found: String, wanted: String },
    /// Another node appended first. `last` is the stream's last sequence as
    /// the refusing server saw it, which may lag a concurrent winner: catch
    /// up by reading the stream, not by trusting it.
    #[error("another append took the position (the stream ended at commit {last} when checked)")]
    Conflict { last: u64 },
    /// No answer came, or the connection broke: the commit may or may not
    /// be stored. Retry the same commit (its id makes it land once).
    #[error("appending to the log stream failed: {0}")]
    Append(String),
    /// The servers refused the commit for good (too large, not permitted,
    /// a commit id stored before with other records): retrying cannot help.
    #[error("the log stream refused the commit: {0}")]
    Refused(String),
    #[error("reading commit {sequence} of the log stream failed: {reason}")]
    Read { sequence: u64, reason: String },
    /// A commit does not extend the chain the follower holds: tampering, or
    /// replicas that diverged. Following stops here.
    #[error("commit {sequence} of the log stream does not extend the chain: {error}")]
    Chain { sequence: u64, error: ChainError },
    /// The payload or key streams ([`super::PayloadStore`]).
    #[error("the payload store: {0}")]
    Payloads(String),
    /// A payload is gone that no erasure took (or does not open): someone
    /// removed or replaced it. A node that meets this stops following.
    #[error("the payload at {subject} is missing: {reason}")]
    Missing { subject: String, reason: String },
    /// A commit's headers disagree with its records.
    #[error("commit {sequence} of the log stream: {reason}")]
    Malformed { sequence: u64, reason: String },
}

/// One stream message: a node's group of commits. Its id (`Nats-Msg-Id`,
/// new for each group a node decides), its records in position order (of
/// one or more commits), and the owner of each record's payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub id: Uuid,
    pub records: Vec<Record>,
    /// One per record: whose key seals its payload in the [`super::PayloadStore`].
    pub owners: Vec<Owner>,
}

/// Where an append landed. `duplicate`: this commit id was already stored
/// there (a retry of an append whose answer was lost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub sequence: u64,
    pub duplicate: bool,
}

/// A commit read back from the stream, checked against the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowedCommit {
    /// The stream sequence: the commit's number, from 1, without gaps.
    pub sequence: u64,
    pub commit: Commit,
}

/// The stream settings the ledger needs (file storage, `replicas` copies,
/// no deletes, purges, rollups or limits, so stream sequences stay gapless;
/// a duplicate window for retried appends; one commit at most 1 MiB).
/// `sync_interval: always` is a server setting, not a stream's: see
/// docs/operations.md.
pub fn stream_config(name: &str, replicas: usize) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        subjects: vec![subject(name)],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        max_messages: -1,
        max_bytes: -1,
        max_age: Duration::ZERO,
        max_messages_per_subject: -1,
        max_message_size: MAX_COMMIT_BYTES,
        discard: stream::DiscardPolicy::New,
        duplicate_window: DUPLICATE_WINDOW,
        deny_delete: true,
        deny_purge: true,
        allow_rollup: false,
        allow_direct: true,
        ..Default::default()
    }
}

fn subject(stream: &str) -> String {
    format!("{}.{SUBJECT_SUFFIX}", stream.to_lowercase())
}

/// The cluster's log: one JetStream stream.
#[derive(Clone)]
pub struct StreamLog {
    jetstream: jetstream::Context,
    name: String,
    subject: String,
}

impl StreamLog {
    /// Connects to `urls` (comma-separated `nats://host:port`), and creates
    /// the stream `name` with [`stream_config`] if it does not exist, or
    /// checks the existing one's settings ([`ClusterError::Settings`]).
    pub async fn open(urls: &str, name: &str, replicas: usize) -> Result<Self, ClusterError> {
        let servers: Vec<&str> = urls.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
        let connect = |reason: String| ClusterError::Connect { urls: urls.to_owned(), reason };
        let client = async_nats::ConnectOptions::new()
            .name("account-ledger")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(servers.as_slice())
            .await
            .map_err(|e| connect(e.to_string()))?;
        let mut context = jetstream::new(client);
        context.set_timeout(Duration::from_secs(10));
        let log = StreamLog { jetstream: context, name: name.to_owned(), subject: subject(name) };
        let wanted = stream_config(name, replicas);
        let stream = retrying(|| async {
            match log.jetstream.get_stream(name).await {
                Ok(stream) => Ok(stream),
                Err(e) if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(_)) => {
                    log.jetstream.create_stream(wanted.clone()).await.map_err(|e| log.stream_error(e))
                }
                Err(e) => Err(log.stream_error(e)),
            }
        })
        .await?;
        // Getting or creating the stream answered with its settings.
        check_settings(name, &stream.cached_info().config, &wanted)?;
        Ok(log)
    }

    fn stream_error(&self, e: impl std::fmt::Display) -> ClusterError {
        ClusterError::Stream { stream: self.name.clone(), reason: e.to_string() }
    }

    /// Tells the other nodes that this node keeps losing the race for the
    /// next commit (a core NATS message on `<name>.contended`, not stored):
    /// a node that keeps winning then gives turns away
    /// (`store::writer`). `node` tells a node its own message apart.
    pub async fn announce_contention(&self, node: u64) {
        let subject = format!("{}.contended", self.name.to_lowercase());
        // Best effort: a lost message only delays fairness.
        let _ = self.jetstream.client().publish(subject, Bytes::copy_from_slice(&node.to_be_bytes())).await;
    }

    /// The nodes (by the `node` they announce with) that keep losing races,
    /// as they announce it.
    pub async fn contention(&self) -> Result<BoxStream<'static, u64>, ClusterError> {
        let subject = format!("{}.contended", self.name.to_lowercase());
        let subscriber = self.jetstream.client().subscribe(subject).await.map_err(|e| self.stream_error(e))?;
        Ok(subscriber
            .filter_map(|m| async move { Some(u64::from_be_bytes(m.payload.as_ref().try_into().ok()?)) })
            .boxed())
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The payload and key streams beside this log ([`super::PayloadStore`]),
    /// created with `replicas` copies if missing.
    pub async fn payload_store(&self, replicas: usize) -> Result<super::PayloadStore, ClusterError> {
        super::PayloadStore::open(&self.jetstream, &self.name, replicas).await
    }

    /// The sequence of the last commit the stream holds (0 when empty), as
    /// its leader says.
    pub async fn last_sequence(&self) -> Result<u64, ClusterError> {
        Ok(self.info().await?.state.last_sequence)
    }

    /// The server name of the stream's current leader, if it has one.
    pub async fn leader(&self) -> Result<Option<String>, ClusterError> {
        Ok(self.info().await?.cluster.and_then(|c| c.leader))
    }

    /// The stream's settings and state, as its leader answers now (one request).
    async fn info(&self) -> Result<stream::Info, ClusterError> {
        let stream = self.jetstream.get_stream(&self.name).await.map_err(|e| self.stream_error(e))?;
        Ok(stream.cached_info().clone())
    }

    /// Appends `commit` as commit number `expected_last + 1`. Errors:
    /// [`ClusterError::Conflict`] when the stream has moved past
    /// `expected_last` (catch up, decide again, retry);
    /// [`ClusterError::Append`] when no answer came (retry the same commit:
    /// its id makes the retry land once).
    pub async fn append(&self, commit: &Commit, expected_last: u64) -> Result<Appended, ClusterError> {
        let (first, last) = check_commit(commit)?;
        let message = PublishMessage::build()
            .payload(Bytes::from(encode_commit(&commit.records)))
            .message_id(commit.id.to_string())
            .expected_last_sequence(expected_last)
            .header(FIRST_POSITION, first.seq().to_string().as_str())
            .header(COUNT, commit.records.len().to_string().as_str())
            .header(PREVIOUS_HASH, first.header.prev_hash.to_string().as_str())
            .header(HEAD_HASH, last.header.hash.to_string().as_str())
            .header(OWNERS, commit.owners.iter().map(|o| o.token()).collect::<Vec<_>>().join(" ").as_str());
        let ack = self.jetstream.send_publish(self.subject.clone(), message).await;
        let ack = match ack {
            Ok(future) => future.await,
            Err(e) => return Err(publish_error(&e)),
        };
        match ack {
            Ok(ack) if ack.duplicate => {
                // Stored before under this commit id: only the very same
                // commit counts as stored (the same head hash at that sequence).
                let stored = self.stored_head(ack.sequence).await?;
                if stored != last.header.hash.to_string() {
                    return Err(ClusterError::Refused(format!(
                        "commit id {} is stored at commit {} with other records",
                        commit.id, ack.sequence
                    )));
                }
                Ok(Appended { sequence: ack.sequence, duplicate: true })
            }
            Ok(ack) => Ok(Appended { sequence: ack.sequence, duplicate: false }),
            Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                // The refusal names the stream's last sequence when it was
                // checked ("wrong last sequence: N").
                let named = std::error::Error::source(&e).and_then(|source| {
                    let text = source.to_string();
                    let after = text.split("wrong last sequence: ").nth(1)?;
                    after.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u64>().ok()
                });
                let last = match named {
                    Some(last) => last,
                    None => self.last_sequence().await?,
                };
                Err(ClusterError::Conflict { last })
            }
            Err(e) => Err(publish_error(&e)),
        }
    }

    /// The `Ledger-Head-Hash` of the commit stored at `sequence`, read
    /// through the stream leader.
    pub(crate) async fn stored_head(&self, sequence: u64) -> Result<String, ClusterError> {
        let stream = self.jetstream.get_stream_no_info(&self.name).await.map_err(|e| self.stream_error(e))?;
        let message = stream
            .get_raw_message(sequence)
            .await
            .map_err(|e| ClusterError::Read { sequence, reason: e.to_string() })?;
        message
            .headers
            .get(HEAD_HASH)
            .map(|v| v.as_str().to_owned())
            .ok_or_else(|| ClusterError::Malformed { sequence, reason: format!("the {HEAD_HASH} header is missing") })
    }

    /// The commits from stream sequence `from` on, in order, each checked
    /// against `chain` (the verifier of the chain up to commit `from - 1`):
    /// the first commit that does not extend it is answered with
    /// [`ClusterError::Chain`], and the stream ends there. At the end of the
    /// log it waits for new commits.
    pub async fn follow(
        &self,
        from: u64,
        chain: ChainVerifier,
    ) -> Result<BoxStream<'static, Result<FollowedCommit, ClusterError>>, ClusterError> {
        let stream = self.jetstream.get_stream_no_info(&self.name).await.map_err(|e| self.stream_error(e))?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: from.max(1) },
                ..Default::default()
            })
            .await
            .map_err(|e| self.stream_error(e))?;
        let messages = Box::pin(consumer.messages().await.map_err(|e| self.stream_error(e))?);
        // (messages, the chain so far, the next sequence expected, whether following stopped)
        let state = (messages, chain, from.max(1), false);
        Ok(futures_util::stream::unfold(state, |(mut messages, mut chain, expected, halted)| async move {
            if halted {
                return None;
            }
            let read = |reason: String| ClusterError::Read { sequence: expected, reason };
            let outcome = loop {
                break match messages.next().await? {
                    Err(e) => Err(read(e.to_string())),
                    Ok(message) => match message.info() {
                        Err(e) => Err(read(e.to_string())),
                        // The ordered consumer re-creates itself after missed
                        // heartbeats, and may start over from the first commit:
                        // commits already checked and yielded are passed over.
                        Ok(info) if info.stream_sequence < expected => continue,
                        Ok(info) if info.stream_sequence > expected => Err(ClusterError::Malformed {
                            sequence: info.stream_sequence,
                            reason: format!("expected commit {expected}: the stream has a gap"),
                        }),
                        Ok(info) => {
                            let sequence = info.stream_sequence;
                            checked_commit(sequence, &message, &mut chain)
                                .map(|commit| FollowedCommit { sequence, commit })
                        }
                    },
                };
            };
            let halted = outcome.is_err();
            let next = if halted { expected } else { expected + 1 };
            Some((outcome, (messages, chain, next, halted)))
        })
        .boxed())
    }
}

/// How long opening a stream is tried: a cluster that has just started
/// may not know all its servers yet ("no suitable peers", 10005), and two
/// nodes may create the same stream at once.
const OPEN_PATIENCE: Duration = Duration::from_secs(20);

/// Runs `attempt` until it succeeds or [`OPEN_PATIENCE`] has passed; then
/// its last error.
pub(crate) async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClusterError>>,
{
    let deadline = tokio::time::Instant::now() + OPEN_PATIENCE;
    let mut pause = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if tokio::time::Instant::now() + pause < deadline => {
                tracing::info!(error = %e, "the cluster is not ready; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Err(e),
        }
    }
}

/// A publish error as retryable ([`ClusterError::Append`]: no answer, or a
/// broken connection) or final ([`ClusterError::Refused`]).
fn publish_error(e: &jetstream::context::PublishError) -> ClusterError {
    use jetstream::context::PublishErrorKind as Kind;
    match e.kind() {
        // "No stream": no server answered for the subject, as while the
        // stream elects a leader (it existed when the log was opened).
        Kind::TimedOut | Kind::BrokenPipe | Kind::MaxAckPending | Kind::StreamNotFound => {
            ClusterError::Append(e.to_string())
        }
        _ => ClusterError::Refused(e.to_string()),
    }
}

/// Checks a commit before it is appended: at least one record; positions
/// consecutive, each record linked to the one before it; every record of
/// as many owners as records; no payloads (they go to the [`super::PayloadStore`], where
/// erasure can reach them; the log stream never deletes). Whether the first
/// record extends the stream's chain is the caller's to know: it holds the
/// chain's tail. Returns the first and last records.
fn check_commit(commit: &Commit) -> Result<(&Record, &Record), ClusterError> {
    let refuse = |why: String| Err(ClusterError::Refused(why));
    let (Some(first), Some(last)) = (commit.records.first(), commit.records.last()) else {
        return refuse("a commit holds at least one record".to_owned());
    };
    for pair in commit.records.windows(2) {
        if pair[1].seq() != pair[0].seq() + 1 || pair[1].header.prev_hash != pair[0].header.hash {
            return refuse(format!("position {} does not follow position {}", pair[1].seq(), pair[0].seq()));
        }
    }
    if commit.owners.len() != commit.records.len() {
        return refuse(format!("{} owners for {} records", commit.owners.len(), commit.records.len()));
    }
    if let Some(with) = commit.records.iter().find(|r| r.payload.is_some()) {
        return refuse(format!("position {} carries its payload: payloads go to the payload store", with.seq()));
    }
    Ok((first, last))
}

/// Decodes one stream message and checks it extends `chain`.
fn checked_commit(
    sequence: u64,
    message: &async_nats::Message,
    chain: &mut ChainVerifier,
) -> Result<Commit, ClusterError> {
    let malformed = |reason: String| ClusterError::Malformed { sequence, reason };
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
            .ok_or_else(|| malformed(format!("the {name} header is missing")))
    };
    let id = header(async_nats::header::NATS_MESSAGE_ID.as_ref())?
        .parse::<Uuid>()
        .map_err(|e| malformed(format!("the commit id: {e}")))?;
    let records = decode_commit(&message.payload).map_err(|e| malformed(e.to_string()))?;
    let owners = header(OWNERS)?
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(|t| Owner::parse(t).ok_or_else(|| malformed(format!("the {OWNERS} header names {t:?}"))))
        .collect::<Result<Vec<_>, _>>()?;
    if owners.len() != records.len() {
        return Err(malformed(format!(
            "the {OWNERS} header names {} owners for {} records",
            owners.len(),
            records.len()
        )));
    }
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Err(malformed("no records".to_owned()));
    };
    let claims = [
        (FIRST_POSITION, first.seq().to_string()),
        (COUNT, records.len().to_string()),
        (PREVIOUS_HASH, first.header.prev_hash.to_string()),
        (HEAD_HASH, last.header.hash.to_string()),
    ];
    for (name, actual) in claims {
        if header(name)? != actual {
            return Err(malformed(format!("the {name} header does not match the records ({actual})")));
        }
    }
    for record in &records {
        chain
            .check(&record.header, record.payload.as_ref())
            .map_err(|error| ClusterError::Chain { sequence, error })?;
    }
    Ok(Commit { id, records, owners })
}

/// Refuses an existing stream whose settings could lose, reorder or drop commits.
fn check_settings(name: &str, found: &stream::Config, wanted: &stream::Config) -> Result<(), ClusterError> {
    let differs = |setting: &'static str, found: String, wanted: String| {
        Err(ClusterError::Settings { stream: name.to_owned(), setting, found, wanted })
    };
    if found.subjects != wanted.subjects {
        return differs("subjects", format!("{:?}", found.subjects), format!("{:?}", wanted.subjects));
    }
    if found.storage != wanted.storage {
        return differs("storage", format!("{:?}", found.storage), "file".to_owned());
    }
    if found.num_replicas < wanted.num_replicas {
        return differs("replicas", found.num_replicas.to_string(), format!("at least {}", wanted.num_replicas));
    }
    if found.retention != wanted.retention {
        return differs("retention", format!("{:?}", found.retention), "limits".to_owned());
    }
    let unlimited = found.max_messages <= 0
        && found.max_bytes <= 0
        && found.max_age.is_zero()
        && found.max_messages_per_subject <= 0;
    if !unlimited {
        return differs(
            "limits",
            "set".to_owned(),
            "none (max_msgs, max_bytes, max_age, max_msgs_per_subject)".to_owned(),
        );
    }
    if !found.deny_delete || !found.deny_purge || found.allow_rollup {
        return differs(
            "deny_delete/deny_purge/allow_rollup",
            format!("{}/{}/{}", found.deny_delete, found.deny_purge, found.allow_rollup),
            "true/true/false".to_owned(),
        );
    }
    if found.sealed
        || found.mirror.is_some()
        || found.sources.as_ref().is_some_and(|s| !s.is_empty())
        || found.subject_transform.is_some()
        || found.first_sequence.is_some_and(|f| f > 1)
    {
        return differs(
            "sealed/mirror/sources/subject_transform/first_sequence",
            "set".to_owned(),
            "none: the stream is written by the ledger alone, from commit 1".to_owned(),
        );
    }
    if matches!(found.persist_mode, Some(stream::PersistenceMode::Async)) {
        return differs("persist_mode", "async".to_owned(), "default (stored before acknowledged)".to_owned());
    }
    if found.allow_message_ttl {
        return differs("allow_msg_ttl", "true".to_owned(), "false (a commit never expires)".to_owned());
    }
    if found.duplicate_window < Duration::from_secs(60) {
        return differs("duplicate_window", format!("{:?}", found.duplicate_window), "at least 60 s".to_owned());
    }
    Ok(())
}
