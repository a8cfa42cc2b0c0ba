//! Payloads of a cluster's log, kept where they can be erased.
//!
//! The log stream never deletes (its sequences must stay gapless), so in a
//! cluster a commit carries its records' headers only, and each payload
//! lives in a second stream, `<NAME>_PAYLOADS`, sealed with its owner's key
//! (XChaCha20-Poly1305; the subject is the associated data, so a payload
//! cannot be moved to another event or owner). Keys live in a third stream,
//! `<NAME>_KEYS`, one message per owner: an account, or the ledger itself
//! for events of no account.
//!
//! Erasing an owner ([`PayloadStore::erase`]) deletes its key message first
//! (`STREAM.MSG.DELETE`, which overwrites the stored bytes), leaves an
//! "erased" marker in its place so that no key is ever made for it again,
//! and then deletes each of its payload messages. Once the key is gone,
//! every copy of its payloads that may remain (a replica's write-ahead log
//! before compaction, a backup of the payload stream, a payload stored by
//! a write that raced the erasure) is unreadable. The key itself may remain
//! in the key stream's own write-ahead log until the servers compact it;
//! that log stays on the servers. The chain still verifies: record hashes
//! cover payload hashes, not payloads.
//!
//! A node keeps the keys it sealed with in memory, and drops an owner's
//! when it erases it: the node that erases at once, every other node when
//! it folds the erasure (and erases again, which sweeps anything it sealed
//! under the old key meanwhile; that opened for no one).
//!
//! Keys and payloads are read through the stream leader, never a replica's
//! direct get: no node reads a key after its erasure was acknowledged, and
//! a lagging replica never makes a stored payload look erased.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_nats::jetstream::{self, consumer, message::PublishMessage, stream};
use bytes::Bytes;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload as Sealed};
use futures_util::StreamExt;
use ledger_events::Payload;
use ledger_events::codec::{decode_payload, encode_payload};
use ledger_events::values::ObjectId;
use uuid::Uuid;

use super::stream::ClusterError;

/// How often creating a key is tried while another node's key is on its
/// way (waiting 10, 20, … ms between tries: about 2 s in all).
const KEY_ATTEMPTS: u32 = 20;

/// What an owner's key message holds.
enum Key {
    Sealing([u8; 32]),
    /// The marker left where an erased owner's key was.
    Erased,
}

/// The marker of an erased owner, in place of its 32-byte key.
const ERASED: &[u8] = b"erased";

/// Whose key seals a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// An account's own key: erasing the account erases it.
    Account(ObjectId),
    /// The ledger's key, for events that belong to no account (domains,
    /// roles, tenants).
    Ledger,
}

impl Owner {
    /// The owner as one subject token (a JMAP id is `[A-Za-z0-9_-]`).
    pub(crate) fn token(self) -> String {
        match self {
            Owner::Account(id) => id.to_jmap(),
            Owner::Ledger => LEDGER_TOKEN.to_owned(),
        }
    }

    /// The owner a [`Owner::token`] names.
    pub(crate) fn parse(token: &str) -> Option<Owner> {
        if token == LEDGER_TOKEN {
            return Some(Owner::Ledger);
        }
        ObjectId::from_jmap(token).map(Owner::Account)
    }

    /// Whose key seals `record`'s payload: the account it is about (so that
    /// erasing the account makes it unreadable), except an `AccountErased`
    /// record, which must outlive that key (it lists what was erased), and
    /// events of no account: the ledger's.
    pub fn of(record: &ledger_events::Record) -> Owner {
        if record.header.event_type == "AccountErased" {
            return Owner::Ledger;
        }
        match record.event() {
            Some(Ok(event)) => match event.subject() {
                Some((ledger_events::ObjectType::Account, id)) => Owner::Account(id),
                _ => Owner::Ledger,
            },
            _ => Owner::Ledger,
        }
    }
}

const LEDGER_TOKEN: &str = "_ledger";
/// The key-stream subject token of the cluster's sealing key (see
/// [`PayloadStore::sealing_key`]); never an account's token (JMAP ids
/// have no dot, and `_` starts no id this ledger makes).
const SEALING_TOKEN: &str = "_sealing";

/// The payload and key streams of one cluster log.
#[derive(Clone)]
pub struct PayloadStore {
    keys: stream::Stream,
    payloads: stream::Stream,
    jetstream: jetstream::Context,
    /// The subject prefix (the log's name, lowercased).
    prefix: String,
    /// Keys this node sealed with, so that storing a payload needs no read
    /// of its key; an owner's entry goes when this node erases it (the
    /// eraser, and every other node when it folds the erasure).
    sealing: Arc<Mutex<HashMap<Owner, [u8; 32]>>>,
}

fn failed(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Payloads(e.to_string())
}

impl PayloadStore {
    /// Opens (creating if missing) the payload and key streams of the log
    /// `name`, with `replicas` copies, file storage, deletes allowed.
    pub async fn open(jetstream: &jetstream::Context, name: &str, replicas: usize) -> Result<Self, ClusterError> {
        let prefix = name.to_lowercase();
        let config = |suffix: &str, subject: String, per_subject: i64| stream::Config {
            name: format!("{name}_{suffix}"),
            subjects: vec![subject],
            storage: stream::StorageType::File,
            num_replicas: replicas,
            max_messages_per_subject: per_subject,
            deny_delete: false,
            deny_purge: false,
            allow_direct: true,
            ..Default::default()
        };
        let keys = super::stream::retrying(|| async {
            jetstream.get_or_create_stream(config("KEYS", format!("{prefix}.key.*"), 1)).await.map_err(failed)
        })
        .await?;
        let payloads = super::stream::retrying(|| async {
            jetstream
                .get_or_create_stream(config("PAYLOADS", format!("{prefix}.payload.*.*"), -1))
                .await
                .map_err(failed)
        })
        .await?;
        Ok(PayloadStore { keys, payloads, jetstream: jetstream.clone(), prefix, sealing: Arc::default() })
    }

    fn key_subject(&self, owner: Owner) -> String {
        self.token_subject(&owner.token())
    }

    fn token_subject(&self, token: &str) -> String {
        format!("{}.key.{token}", self.prefix)
    }

    fn payload_subject(&self, owner: Owner, event_id: Uuid) -> String {
        format!("{}.payload.{}.{}", self.prefix, owner.token(), event_id.simple())
    }

    /// The owner's key message, read through the stream leader: its
    /// sequence and what it holds.
    async fn key_message(&self, owner: Owner) -> Result<Option<(u64, Key)>, ClusterError> {
        self.token_key_message(&owner.token()).await
    }

    async fn token_key_message(&self, token: &str) -> Result<Option<(u64, Key)>, ClusterError> {
        match self.keys.get_last_raw_message_by_subject(&self.token_subject(token)).await {
            Ok(message) => {
                let key = if message.payload.as_ref() == ERASED {
                    Key::Erased
                } else {
                    Key::Sealing(message.payload.as_ref().try_into().map_err(|_| {
                        failed(format!("the key of {token} is {} bytes, not 32", message.payload.len()))
                    })?)
                };
                Ok(Some((message.sequence, key)))
            }
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }

    /// The owner's key, created if it has none. Two nodes creating it at
    /// once both end with the one that was stored first (the create expects
    /// the subject to be empty, which the stream checks when it applies it).
    async fn key_or_create(&self, owner: Owner) -> Result<[u8; 32], ClusterError> {
        self.token_key_or_create(&owner.token()).await
    }

    /// The cluster's sealing key (what `sealing.key` is to one node: it seals
    /// TOTP seeds inside payloads), created by the first node that asks.
    /// Every node of a cluster must use it, or secrets sealed on one node
    /// would not open on another.
    pub async fn sealing_key(&self) -> Result<[u8; 32], ClusterError> {
        self.token_key_or_create(SEALING_TOKEN).await
    }

    /// Makes `key` the cluster's sealing key, for a stream restored from a
    /// ledger whose secrets were sealed with it. Errors if the stream has
    /// another one already.
    pub async fn adopt_sealing_key(&self, key: [u8; 32]) -> Result<(), ClusterError> {
        let create = PublishMessage::build().payload(Bytes::copy_from_slice(&key)).expected_last_subject_sequence(0);
        if let Ok(ack) = self.jetstream.send_publish(self.token_subject(SEALING_TOKEN), create).await {
            let _ = ack.await;
        }
        match self.token_key_message(SEALING_TOKEN).await? {
            Some((_, Key::Sealing(held))) if held == key => Ok(()),
            _ => Err(failed("the stream has another sealing key: restore into a new stream")),
        }
    }

    async fn token_key_or_create(&self, token: &str) -> Result<[u8; 32], ClusterError> {
        let mut attempt = 0u32;
        loop {
            match self.token_key_message(token).await? {
                Some((_, Key::Sealing(key))) => return Ok(key),
                Some((_, Key::Erased)) => {
                    return Err(failed(format!("{token} was erased: nothing of it is stored again")));
                }
                None => {}
            }
            let fresh = crate::secrets::random_bytes::<32>();
            let create =
                PublishMessage::build().payload(Bytes::copy_from_slice(&fresh)).expected_last_subject_sequence(0);
            let stored = match self.jetstream.send_publish(self.token_subject(token), create).await {
                Ok(ack) => ack.await,
                Err(e) => return Err(failed(e)),
            };
            match stored {
                Ok(_) => return Ok(fresh),
                // Refused: another node's key is stored or on its way (the
                // servers name this 10071 or 10164, by version). Read again,
                // a bounded number of times, until it is visible.
                Err(e) if attempt >= KEY_ATTEMPTS => return Err(failed(e)),
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(attempt))).await;
                }
            }
        }
    }

    /// Seals and stores the payload of event `event_id`. Retrying it stores it
    /// once (the event id is the message id).
    pub async fn put(&self, owner: Owner, event_id: Uuid, payload: &Payload) -> Result<(), ClusterError> {
        let cached = self.sealing.lock().unwrap_or_else(|p| p.into_inner()).get(&owner).copied();
        let key = match cached {
            Some(key) => key,
            None => {
                let key = self.key_or_create(owner).await?;
                self.sealing.lock().unwrap_or_else(|p| p.into_inner()).insert(owner, key);
                key
            }
        };
        let subject = self.payload_subject(owner, event_id);
        let nonce = crate::secrets::random_bytes::<24>();
        let body = encode_payload(payload);
        let sealed = XChaCha20Poly1305::new(&key.into())
            .encrypt(&nonce.into(), Sealed { msg: &body, aad: subject.as_bytes() })
            .map_err(|_| failed("sealing a payload failed"))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        let message = PublishMessage::build().payload(Bytes::from(bytes)).message_id(event_id.to_string());
        match self.jetstream.send_publish(subject, message).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(failed),
            Err(e) => Err(failed(e)),
        }
    }

    /// The payload of event `event_id` (`format`: its header's), or `None`
    /// when it was erased: its owner's key was replaced by the erasure
    /// marker, or the payload by a tombstone ([`PayloadStore::erase_payload`]).
    /// Anything else missing is [`ClusterError::Missing`] (a payload is
    /// stored before its commit is appended, so it was removed by someone
    /// other than an erasure), as is a payload that does not open under its
    /// owner's key.
    pub async fn get(&self, owner: Owner, event_id: Uuid, format: u8) -> Result<Option<Payload>, ClusterError> {
        let subject = self.payload_subject(owner, event_id);
        let missing = |why: String| ClusterError::Missing { subject: subject.clone(), reason: why };
        let key = match self.key_message(owner).await? {
            Some((_, Key::Sealing(key))) => key,
            Some((_, Key::Erased)) => return Ok(None),
            None => return Err(missing("its owner has no key".to_owned())),
        };
        let message = match self.payloads.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => message,
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
                return Err(missing("no message, and no erasure tombstone".to_owned()));
            }
            Err(e) => return Err(failed(e)),
        };
        if message.payload.as_ref() == ERASED {
            return Ok(None);
        }
        if message.payload.len() < 24 {
            return Err(failed(format!("the payload at {subject} is truncated")));
        }
        let (nonce, sealed) = message.payload.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(failed)?;
        let body = XChaCha20Poly1305::new(&key.into())
            .decrypt(&nonce.into(), Sealed { msg: sealed, aad: subject.as_bytes() })
            .map_err(|_| missing("it does not open under its owner's key".to_owned()))?;
        decode_payload(format, &body).map(Some).map_err(failed)
    }

    /// Stores the tombstone of event `event_id`: its payload was erased
    /// before it was ever stored (an erasure that lists records of its own
    /// commit), so a node that fetches it reads "erased", not "missing".
    pub async fn put_tombstone(&self, owner: Owner, event_id: Uuid) -> Result<(), ClusterError> {
        let tombstone = PublishMessage::build().payload(Bytes::from_static(ERASED)).message_id(event_id.to_string());
        match self.jetstream.send_publish(self.payload_subject(owner, event_id), tombstone).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(failed),
            Err(e) => Err(failed(e)),
        }
    }

    /// Erases the payload of event `event_id` (sealed under `owner`'s key),
    /// for a record an erasure lists whose key lives on (its owner is not
    /// the erased account): stores a tombstone on its subject, so a node
    /// that fetches it later reads "erased", not "missing", then deletes
    /// (overwrites) every earlier message there. `false` if it held none.
    pub async fn erase_payload(&self, owner: Owner, event_id: Uuid) -> Result<bool, ClusterError> {
        let subject = self.payload_subject(owner, event_id);
        let before = match self.payloads.get_last_raw_message_by_subject(&subject).await {
            Ok(message) if message.payload.as_ref() == ERASED => return Ok(false),
            Ok(message) => Some(message.sequence),
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => None,
            Err(e) => return Err(failed(e)),
        };
        let tombstone = PublishMessage::build().payload(Bytes::from_static(ERASED));
        match self.jetstream.send_publish(subject, tombstone).await {
            Ok(ack) => ack.await.map_err(failed)?,
            Err(e) => return Err(failed(e)),
        };
        match before {
            Some(sequence) => delete(&self.payloads, sequence).await,
            None => Ok(false),
        }
    }

    /// Erases everything of `owner`: its key first (from then on no copy
    /// opens, and no key is made for it again), then each of its payload
    /// messages, overwritten. Returns how many payload messages this call
    /// erased. Erasing an owner with nothing stored, or erasing twice (from
    /// two nodes at once too), succeeds.
    pub async fn erase(&self, owner: Owner) -> Result<u64, ClusterError> {
        self.sealing.lock().unwrap_or_else(|p| p.into_inner()).remove(&owner);
        let subject = self.key_subject(owner);
        // Replace the key with the marker: delete, then write the marker on
        // the empty subject. A key created in between is deleted in turn.
        for _ in 0..KEY_ATTEMPTS {
            match self.key_message(owner).await? {
                Some((_, Key::Erased)) => break,
                Some((sequence, Key::Sealing(_))) => {
                    delete(&self.keys, sequence).await?;
                }
                None => {}
            }
            let marker = PublishMessage::build().payload(Bytes::from_static(ERASED)).expected_last_subject_sequence(0);
            if let Ok(ack) = self.jetstream.send_publish(subject.clone(), marker).await
                && ack.await.is_ok()
            {
                break;
            }
        }
        if !matches!(self.key_message(owner).await?, Some((_, Key::Erased))) {
            return Err(failed(format!("the key of {} could not be replaced by the erasure marker", owner.token())));
        }
        let filter = format!("{}.payload.{}.*", self.prefix, owner.token());
        let mut erased = 0;
        for _ in 0..KEY_ATTEMPTS {
            let left = self.payloads.clone().info_with_subjects(filter.clone()).await.map_err(failed)?.count().await;
            if left == 0 {
                return Ok(erased);
            }
            let consumer = self
                .payloads
                .create_consumer(consumer::pull::OrderedConfig {
                    filter_subject: filter.clone(),
                    headers_only: true,
                    deliver_policy: consumer::DeliverPolicy::All,
                    ..Default::default()
                })
                .await
                .map_err(failed)?;
            let mut messages = consumer.messages().await.map_err(failed)?;
            // Another node erasing the same owner may delete what this one
            // was about to read: a quiet second ends the pass, and the count
            // above decides whether another is needed.
            while let Ok(Some(message)) = tokio::time::timeout(PASS_QUIET, messages.next()).await {
                let message = message.map_err(failed)?;
                let (sequence, pending) = {
                    let info = message.info().map_err(failed)?;
                    (info.stream_sequence, info.pending)
                };
                if delete(&self.payloads, sequence).await? {
                    erased += 1;
                }
                if pending == 0 {
                    break;
                }
            }
        }
        Err(failed(format!("payloads of {} remained after {KEY_ATTEMPTS} passes", owner.token())))
    }
}

/// How long an erasure pass waits for the next payload message.
const PASS_QUIET: std::time::Duration = std::time::Duration::from_secs(1);

/// Deletes (overwrites) message `sequence`; `false` if it was already gone.
async fn delete(stream: &stream::Stream, sequence: u64) -> Result<bool, ClusterError> {
    match stream.delete_message(sequence).await {
        Ok(done) => Ok(done),
        // 10037 "no message found", 10043 "sequence not found": another node
        // erasing the same owner deleted it first.
        Err(e) if ["10037", "10043", "no message found", "not found"].iter().any(|m| e.to_string().contains(m)) => {
            Ok(false)
        }
        Err(e) => Err(failed(e)),
    }
}
