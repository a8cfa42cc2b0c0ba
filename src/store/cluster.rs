//! The writer's side of a cluster: the log is a JetStream stream
//! ([`crate::cluster::StreamLog`]) and this node's fjall store is its local
//! copy, folded into projections.
//!
//! Invariants (docs/ARCHITECTURE.md, "Two log back ends"):
//! - the local log holds exactly the records of stream commits 1..=`applied`,
//!   and `applied` is written in the same fjall batch as those records;
//! - a node appends a group only with `Nats-Expected-Last-Sequence` =
//!   `applied`, so it decided that group on the state every other node will
//!   have before it; a conflict means catching up and deciding again;
//! - a payload is stored in the payload store before the commit that
//!   refers to it is appended, so a node that folds a commit finds each
//!   payload there, unless it was erased.

use std::time::{Duration, Instant};

use fjall::{Keyspace, OwnedWriteBatch};
use ledger_events::{Event, Record};
use uuid::Uuid;

use crate::cluster::{ClusterError, Commit, Owner, PayloadStore, StreamLog};

/// The fjall keyspace that binds a node's store to its stream.
pub(crate) const KEYSPACE: &str = "cluster_link";
const APPLIED_KEY: &[u8] = b"applied";
const STREAM_KEY: &[u8] = b"stream";

/// How long storing a group's payloads, and then appending it, may each
/// take (tries included) before the write fails: a write fails within
/// twice this when the servers do not answer.
pub(crate) const APPEND_LIMIT: Duration = Duration::from_secs(5);

/// A node's connection to its cluster, as the writer holds it.
pub struct ClusterLink {
    pub(crate) log: StreamLog,
    pub(crate) payloads: PayloadStore,
    pub(crate) runtime: tokio::runtime::Handle,
    keyspace: Option<Keyspace>,
    /// The last stream commit this node's store holds.
    pub(crate) applied: u64,
    /// This node among those announcing contention (random per start).
    pub(crate) node: u64,
}

impl ClusterLink {
    /// A link to the stream `log` with its payload store, driven on `runtime`
    /// (the writer is a plain thread and blocks on it).
    pub fn new(log: StreamLog, payloads: PayloadStore, runtime: tokio::runtime::Handle) -> Self {
        let node = u64::from_le_bytes(crate::secrets::random_bytes::<8>());
        ClusterLink { log, payloads, runtime, keyspace: None, applied: 0, node }
    }

    /// Binds the link to the store in `db`: reads which stream and commit
    /// it holds, refusing a store of another stream or a single-node store
    /// (one with records but no stream).
    pub(crate) fn bind(&mut self, db: &fjall::Database, local_last: u64) -> Result<(), super::StoreError> {
        let keyspace = db.keyspace(KEYSPACE, fjall::KeyspaceCreateOptions::default)?;
        let refuse = |why: String| Err(super::StoreError::Cluster(why));
        match keyspace.get(STREAM_KEY)? {
            Some(name) if *name != *self.log.name().as_bytes() => {
                return refuse(format!(
                    "this data directory holds the copy of log stream {:?}, not {:?}; give each stream its own \
                     directory",
                    String::from_utf8_lossy(&name),
                    self.log.name()
                ));
            }
            Some(_) => {}
            None if local_last > 0 => {
                return refuse(
                    "this data directory holds a single-node ledger; a cluster node starts from an empty \
                     directory and copies the log from the stream"
                        .to_owned(),
                );
            }
            None => keyspace.insert(STREAM_KEY, self.log.name().as_bytes())?,
        }
        self.applied = match keyspace.get(APPLIED_KEY)? {
            Some(bytes) => u64::from_be_bytes(
                bytes.as_ref().try_into().map_err(|_| super::StoreError::Damaged("cluster_link/applied".to_owned()))?,
            ),
            None => 0,
        };
        self.keyspace = Some(keyspace);
        Ok(())
    }

    /// This node's id in contention announcements.
    pub fn node(&self) -> u64 {
        self.node
    }

    /// Records in `batch` that the store holds stream commits up to `sequence`.
    pub(crate) fn stage(&self, batch: &mut OwnedWriteBatch, sequence: u64) {
        if let Some(keyspace) = &self.keyspace {
            batch.insert(keyspace, APPLIED_KEY, sequence.to_be_bytes());
        }
    }

    /// Stores the payloads of `records`, then appends them (without
    /// payloads) as one stream message expecting `self.applied` to be the
    /// stream's last commit. Blocks; returns the stream sequence.
    /// Errors: [`ClusterError::Conflict`] (catch up and decide again);
    /// others mean the write failed, and [`ClusterError::Append`] that its
    /// outcome is unknown (it may still appear in the stream, and is then
    /// folded as any other node's commit).
    pub(crate) fn append(&self, records: &[Record]) -> Result<u64, ClusterError> {
        let owners: Vec<Owner> = records.iter().map(Owner::of).collect();
        // Stored once however often tried (each payload's message id is its
        // event id): tried again until the deadline, as a failover makes the
        // servers refuse for a few seconds.
        let deadline = Instant::now() + APPEND_LIMIT;
        let mut pause = Duration::from_millis(10);
        loop {
            // A record without payload was erased by its own commit: its
            // tombstone is stored instead.
            let puts = records.iter().zip(&owners).map(|(record, owner)| {
                let (payloads, event_id) = (&self.payloads, record.header.event_id);
                async move {
                    match &record.payload {
                        Some(payload) => payloads.put(*owner, event_id, payload).await,
                        None => payloads.put_tombstone(*owner, event_id).await,
                    }
                }
            });
            let left = deadline.saturating_duration_since(Instant::now());
            let stored = self
                .runtime
                .block_on(async { tokio::time::timeout(left, futures_util::future::try_join_all(puts)).await });
            match stored {
                Ok(Ok(_)) => break,
                // An account this group writes to was erased by a commit this
                // node has not folded yet: fold it and decide again.
                Ok(Err(e)) if e.to_string().contains("was erased") => return Err(ClusterError::Conflict { last: 0 }),
                Ok(Err(e)) if Instant::now() + pause >= deadline => return Err(e),
                Ok(Err(_)) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(_) => {
                    return Err(ClusterError::Payloads(format!(
                        "storing the payloads took longer than {APPEND_LIMIT:?}"
                    )));
                }
            }
        }
        let stripped = records.iter().map(|r| Record { header: r.header.clone(), payload: None }).collect();
        let commit = Commit { id: Uuid::now_v7(), records: stripped, owners };
        // The same message (its id) each time: it lands once.
        let deadline = Instant::now() + APPEND_LIMIT;
        let mut pause = Duration::from_millis(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let outcome = self
                .runtime
                .block_on(async { tokio::time::timeout(left, self.log.append(&commit, self.applied)).await });
            let last_error = match outcome {
                Ok(Ok(appended)) => return Ok(appended.sequence),
                Ok(Err(ClusterError::Append(e))) => e,
                Err(_) => format!("no answer within {APPEND_LIMIT:?}"),
                Ok(Err(e)) => return Err(e),
            };
            if Instant::now() + pause >= deadline {
                return Err(ClusterError::Append(format!(
                    "{last_error} (tried for {APPEND_LIMIT:?}; the write may still appear in the log, and is then \
                     applied)"
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// After an erasure's commit is in the stream: erases each erased
    /// account's key and payloads from the payload store, and the payload
    /// messages of listed records another owner's key seals. `local`
    /// answers a listed position's record as this node holds it (its
    /// payload names its owner). Blocks.
    pub(crate) fn erase(&self, records: &[Record], local: &dyn Fn(u64) -> Option<Record>) -> Result<(), ClusterError> {
        for record in records.iter().filter(|r| r.header.event_type == "AccountErased") {
            let Some(Ok(Event::AccountErased(erased))) = record.event() else { continue };
            let account = Owner::Account(erased.account_id);
            self.runtime.block_on(self.payloads.erase(account))?;
            for listed in &erased.erased {
                let Some(found) = local(listed.position) else { continue };
                let owner = Owner::of(&found);
                if owner != account {
                    self.runtime.block_on(self.payloads.erase_payload(owner, found.header.event_id))?;
                }
            }
        }
        Ok(())
    }
}

/// A commit read from the stream, with the payloads fetched: what a node
/// folds into its store.
#[derive(Debug)]
pub struct Fetched {
    pub sequence: u64,
    pub records: Vec<Record>,
}
