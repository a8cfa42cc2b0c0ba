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
//! Keys and payloads are read through the stream leader, never a replica's
//! direct get: no node reads a key after its erasure was acknowledged, and
//! a lagging replica never makes a stored payload look erased.

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
    fn token(self) -> String {
        match self {
            Owner::Account(id) => id.to_jmap(),
            Owner::Ledger => "_ledger".to_owned(),
        }
    }
}

/// The payload and key streams of one cluster log.
#[derive(Clone)]
pub struct PayloadStore {
    keys: stream::Stream,
    payloads: stream::Stream,
    jetstream: jetstream::Context,
    /// The subject prefix (the log's name, lowercased).
    prefix: String,
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
        let keys =
            jetstream.get_or_create_stream(config("KEYS", format!("{prefix}.key.*"), 1)).await.map_err(failed)?;
        let payloads = jetstream
            .get_or_create_stream(config("PAYLOADS", format!("{prefix}.payload.*.*"), -1))
            .await
            .map_err(failed)?;
        Ok(PayloadStore { keys, payloads, jetstream: jetstream.clone(), prefix })
    }

    fn key_subject(&self, owner: Owner) -> String {
        format!("{}.key.{}", self.prefix, owner.token())
    }

    fn payload_subject(&self, owner: Owner, event_id: Uuid) -> String {
        format!("{}.payload.{}.{}", self.prefix, owner.token(), event_id.simple())
    }

    /// The owner's key message, read through the stream leader: its
    /// sequence and what it holds.
    async fn key_message(&self, owner: Owner) -> Result<Option<(u64, Key)>, ClusterError> {
        match self.keys.get_last_raw_message_by_subject(&self.key_subject(owner)).await {
            Ok(message) => {
                let key = if message.payload.as_ref() == ERASED {
                    Key::Erased
                } else {
                    Key::Sealing(message.payload.as_ref().try_into().map_err(|_| {
                        failed(format!("the key of {} is {} bytes, not 32", owner.token(), message.payload.len()))
                    })?)
                };
                Ok(Some((message.sequence, key)))
            }
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }

    /// The owner's key; `None` if it has none yet or was erased.
    async fn key(&self, owner: Owner) -> Result<Option<[u8; 32]>, ClusterError> {
        Ok(match self.key_message(owner).await? {
            Some((_, Key::Sealing(key))) => Some(key),
            Some((_, Key::Erased)) | None => None,
        })
    }

    /// The owner's key, created if it has none. Two nodes creating it at
    /// once both end with the one that was stored first (the create expects
    /// the subject to be empty, which the stream checks when it applies it).
    async fn key_or_create(&self, owner: Owner) -> Result<[u8; 32], ClusterError> {
        let mut attempt = 0u32;
        loop {
            match self.key_message(owner).await? {
                Some((_, Key::Sealing(key))) => return Ok(key),
                Some((_, Key::Erased)) => {
                    return Err(failed(format!("{} was erased: nothing of it is stored again", owner.token())));
                }
                None => {}
            }
            let fresh = crate::secrets::random_bytes::<32>();
            let create =
                PublishMessage::build().payload(Bytes::copy_from_slice(&fresh)).expected_last_subject_sequence(0);
            let stored = match self.jetstream.send_publish(self.key_subject(owner), create).await {
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
        let key = self.key_or_create(owner).await?;
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
    /// when it was erased: its owner's key or the payload itself is gone.
    /// A payload that does not open under its owner's key is an error.
    pub async fn get(&self, owner: Owner, event_id: Uuid, format: u8) -> Result<Option<Payload>, ClusterError> {
        let Some(key) = self.key(owner).await? else { return Ok(None) };
        let subject = self.payload_subject(owner, event_id);
        let message = match self.payloads.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => message,
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(e) => return Err(failed(e)),
        };
        if message.payload.len() < 24 {
            return Err(failed(format!("the payload at {subject} is truncated")));
        }
        let (nonce, sealed) = message.payload.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(failed)?;
        let body = XChaCha20Poly1305::new(&key.into())
            .decrypt(&nonce.into(), Sealed { msg: sealed, aad: subject.as_bytes() })
            .map_err(|_| failed(format!("the payload at {subject} does not open under its owner's key")))?;
        decode_payload(format, &body).map(Some).map_err(failed)
    }

    /// Erases everything of `owner`: its key first (from then on no copy
    /// opens, and no key is made for it again), then each of its payload
    /// messages, overwritten. Returns how many payload messages this call
    /// erased. Erasing an owner with nothing stored, or erasing twice (from
    /// two nodes at once too), succeeds.
    pub async fn erase(&self, owner: Owner) -> Result<u64, ClusterError> {
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
        // 10037: no message found (another node deleted it first).
        Err(e) if e.to_string().contains("10037") || e.to_string().contains("no message found") => Ok(false),
        Err(e) => Err(failed(e)),
    }
}
