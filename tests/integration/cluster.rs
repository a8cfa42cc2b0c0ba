//! The cluster's log on a real three-server JetStream cluster
//! (`NatsCluster`): the stream's settings, compare-and-append under races,
//! retried appends stored once, following with the chain checked (a forged
//! commit halts it), and appends resuming after the stream leader is killed.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ledger::cluster::{Appended, ClusterError, Commit, Owner, StreamLog};
use ledger_events::model::Change;
use ledger_events::values::{ObjectId, UtcDateTime};
use ledger_events::{AccountUpdated, Actor, AuthMethod, ChainTail, ChainVerifier, CommitMeta, Event};
use uuid::Uuid;

use super::nats::NatsCluster;

/// Every step that waits on the cluster is bounded by this.
const BOUND: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A commit of `n` description updates sealed onto `tail`, as the log
/// carries it: headers only (payloads go to the payload store).
fn commit(tail: &mut ChainTail, n: u64) -> Commit {
    let mut c = sealed(tail, n);
    for record in &mut c.records {
        record.payload = None;
    }
    c
}

/// A commit of `n` description updates sealed onto `tail`, payloads included.
fn sealed(tail: &mut ChainTail, n: u64) -> Commit {
    let id = Uuid::now_v7();
    let meta = CommitMeta {
        commit_id: id,
        committed_at: UtcDateTime::from_millis(1_790_000_000_000),
        actor: Actor { principal_id: String::new(), name: "system".into(), auth_method: AuthMethod::System },
        request_id: "cluster-test".into(),
        call_id: "c".into(),
    };
    let records: Vec<_> = (0..n)
        .map(|i| {
            let event = Event::AccountUpdated(AccountUpdated {
                account_id: ObjectId(7),
                description: Change::between(None, Some(format!("update {i} of {id}"))),
                ..Default::default()
            });
            tail.seal(&meta, Uuid::now_v7(), &event, &[i as u8; 32])
        })
        .collect();
    let owners = vec![Owner::Account(ObjectId(7)); records.len()];
    Commit { id, records, owners }
}

/// The header of the last record of the log (for a test that appends more).
async fn log_tail(log: &StreamLog) -> ledger_events::RecordHeader {
    let last = log.last_sequence().await.unwrap();
    let verifier = ChainVerifier::from_genesis();
    let mut follow = log.follow(1, verifier).await.unwrap();
    let mut header = None;
    for _ in 0..last {
        let got = tokio::time::timeout(BOUND, follow.next()).await.unwrap().unwrap().unwrap();
        header = got.commit.records.last().map(|r| r.header.clone());
    }
    header.expect("the log has a record")
}

async fn open(url: &str, stream: &str) -> StreamLog {
    tokio::time::timeout(BOUND, StreamLog::open(url, stream, 3)).await.expect("open within the bound").unwrap()
}

#[test]
fn the_log_stream_is_replicated_gapless_and_refuses_deletes() {
    let cluster = NatsCluster::start();
    runtime().block_on(async {
        let log = open(&cluster.urls(), "LEDGER").await;
        let mut tail = ChainTail::GENESIS;
        log.append(&commit(&mut tail, 2), 0).await.unwrap();

        let client = async_nats::connect(cluster.url(1)).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream("LEDGER").await.unwrap();
        let info = stream.info().await.unwrap().clone();
        assert_eq!(info.config.num_replicas, 3);
        assert_eq!(info.config.storage, async_nats::jetstream::stream::StorageType::File);
        assert!(info.config.deny_delete && info.config.deny_purge && !info.config.allow_rollup);
        assert_eq!(info.state.last_sequence, 1);
        assert!(stream.delete_message(1).await.is_err(), "the log stream refuses deletes");
        assert!(stream.purge().await.is_err(), "the log stream refuses purges");
        assert_eq!(stream.info().await.unwrap().state.messages, 1);

        // Opening again (another node) takes the stream as it is.
        let again = open(&cluster.url(2), "LEDGER").await;
        assert_eq!(again.last_sequence().await.unwrap(), 1);

        // A stream that could lose commits is refused, naming the setting.
        let mut single = ledger::cluster::stream_config("SINGLE", 1);
        single.num_replicas = 1;
        js.create_stream(single).await.unwrap();
        match StreamLog::open(&cluster.urls(), "SINGLE", 3).await {
            Err(ClusterError::Settings { setting, .. }) => assert_eq!(setting, "replicas"),
            other => panic!("a stream of one replica was taken: {:?}", other.map(|_| ())),
        }
        let mut deletable = ledger::cluster::stream_config("DELETABLE", 3);
        deletable.deny_delete = false;
        js.create_stream(deletable).await.unwrap();
        match StreamLog::open(&cluster.urls(), "DELETABLE", 3).await {
            Err(ClusterError::Settings { setting, .. }) => assert_eq!(setting, "deny_delete/deny_purge/allow_rollup"),
            other => panic!("a stream that allows deletes was taken: {:?}", other.map(|_| ())),
        }

        // The log refuses what it must never hold: payloads, records that
        // do not hang together, records without an owner for their payload.
        let mut tail = ChainTail::after(&log_tail(&log).await);
        let with_payloads = sealed(&mut tail.clone(), 1);
        assert!(matches!(log.append(&with_payloads, 1).await, Err(ClusterError::Refused(_))));
        let mut unlinked = commit(&mut tail.clone(), 2);
        unlinked.records[1].header.prev_hash = ledger_events::Digest::ZERO;
        assert!(matches!(log.append(&unlinked, 1).await, Err(ClusterError::Refused(_))));
        let mut ownerless = commit(&mut tail, 2);
        ownerless.owners.pop();
        assert!(matches!(log.append(&ownerless, 1).await, Err(ClusterError::Refused(_))));
        assert_eq!(log.last_sequence().await.unwrap(), 1);
    });
}

#[test]
fn racing_appends_from_three_servers_leave_one_winner_per_commit() {
    let cluster = NatsCluster::start();
    runtime().block_on(async {
        let mut logs = Vec::new();
        for i in 0..3 {
            logs.push(open(&cluster.url(i), "RACE").await);
        }
        let rounds = 10u64;
        let mut tail = ChainTail::GENESIS;
        for round in 0..rounds {
            let attempts: Vec<_> = logs
                .iter()
                .map(|log| {
                    let (log, commit) = (log.clone(), commit(&mut tail.clone(), 1));
                    tokio::spawn(async move { log.append(&commit, round).await })
                })
                .collect();
            let mut won = Vec::new();
            for attempt in attempts {
                match tokio::time::timeout(BOUND, attempt).await.unwrap().unwrap() {
                    Ok(Appended { sequence, duplicate: false }) => won.push(sequence),
                    // The refusal names the last sequence as the checking
                    // server saw it, which may lag the winner by one.
                    Err(ClusterError::Conflict { last }) => assert!((round..=round + 1).contains(&last), "{last}"),
                    other => panic!("round {round}: {other:?}"),
                }
            }
            assert_eq!(won, vec![round + 1], "round {round}: exactly one append wins");
            commit(&mut tail, 1);
        }
        assert_eq!(logs[2].last_sequence().await.unwrap(), rounds, "no conflict used up a sequence");
    });
}

#[test]
fn a_retried_append_is_stored_once() {
    let cluster = NatsCluster::start();
    runtime().block_on(async {
        let log = open(&cluster.urls(), "RETRY").await;
        let mut tail = ChainTail::GENESIS;
        let first = commit(&mut tail, 3);
        let second = commit(&mut tail, 1);
        assert_eq!(log.append(&first, 0).await.unwrap(), Appended { sequence: 1, duplicate: false });
        assert_eq!(log.append(&second, 1).await.unwrap(), Appended { sequence: 2, duplicate: false });
        // The first append's answer was "lost": the same commit is sent again,
        // with the sequence it expected then.
        assert_eq!(log.append(&first, 0).await.unwrap(), Appended { sequence: 1, duplicate: true });
        // The same commit id with other records is not taken for stored.
        let mut reused = commit(&mut tail, 1);
        reused.id = first.id;
        for record in &mut reused.records {
            record.header.commit.commit_id = first.id;
        }
        assert!(matches!(log.append(&reused, 2).await, Err(ClusterError::Refused(_))));
        assert_eq!(log.last_sequence().await.unwrap(), 2);
    });
}

#[test]
fn a_follower_checks_the_chain_and_halts_at_a_forged_commit() {
    let cluster = NatsCluster::start();
    runtime().block_on(async {
        let log = open(&cluster.urls(), "FOLLOW").await;
        let mut tail = ChainTail::GENESIS;
        let commits: Vec<Commit> = (1..=3).map(|n| commit(&mut tail, n)).collect();
        for (i, c) in commits.iter().enumerate() {
            log.append(c, i as u64).await.unwrap();
        }
        // A forged commit: well-formed, appended in turn, but chained from
        // the start of the log instead of from commit 3.
        let forged = commit(&mut ChainTail::GENESIS.clone(), 1);
        log.append(&forged, 3).await.unwrap();

        let mut follow = log.follow(1, ChainVerifier::from_genesis()).await.unwrap();
        for (i, expected) in commits.iter().enumerate() {
            let got = tokio::time::timeout(BOUND, follow.next()).await.unwrap().unwrap().unwrap();
            assert_eq!(got.sequence, i as u64 + 1);
            assert_eq!(&got.commit, expected);
        }
        match tokio::time::timeout(BOUND, follow.next()).await.unwrap() {
            Some(Err(ClusterError::Chain { sequence: 4, error })) => assert_eq!(error.seq, 7),
            other => panic!("the forged commit was not refused: {other:?}"),
        }
        // Following stops there.
        assert!(tokio::time::timeout(BOUND, follow.next()).await.unwrap().is_none());

        // A follower that starts in the middle continues the chain it holds.
        let after_one = ChainVerifier::from_tail(ChainTail::after(&commits[0].records[0].header));
        let mut follow = log.follow(2, after_one).await.unwrap();
        let got = tokio::time::timeout(BOUND, follow.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(got.commit, commits[1]);
    });
}

#[test]
fn appends_resume_after_the_stream_leader_is_killed() {
    let mut cluster = NatsCluster::start();
    let runtime = runtime();
    let log = runtime.block_on(open(&cluster.urls(), "FAILOVER"));
    let mut tail = ChainTail::GENESIS;
    let mut acknowledged = Vec::new();
    for i in 0..5u64 {
        let c = commit(&mut tail, 2);
        runtime.block_on(log.append(&c, i)).unwrap();
        acknowledged.push(c);
    }
    let leader = runtime.block_on(log.leader()).unwrap().expect("the stream has a leader");
    cluster.kill(cluster.index_of(&leader));

    // The same commit is retried until the new leader takes it (bounded).
    let next = commit(&mut tail, 2);
    let killed_at = Instant::now();
    let appended = runtime.block_on(async {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), log.append(&next, 5)).await {
                Ok(Ok(appended)) => return appended,
                Ok(Err(ClusterError::Conflict { last })) => panic!("no one else writes, yet the stream ends at {last}"),
                Ok(Err(_)) | Err(_) => assert!(killed_at.elapsed() < BOUND, "appends did not resume within {BOUND:?}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let stall = killed_at.elapsed();
    assert_eq!(appended.sequence, 6);
    acknowledged.push(next);
    eprintln!("appends resumed {stall:?} after the stream leader {leader} was killed");

    // Every acknowledged commit is there once, in order, and the chain holds
    // (read through a server that stayed up).
    let survivor = (0..3).find(|&i| i != cluster.index_of(&leader)).unwrap();
    runtime.block_on(async {
        // Opening and creating a consumer need the cluster's meta leader,
        // which may still be being elected if the killed server held it too.
        let (log, mut follow) = loop {
            let opened = StreamLog::open(&cluster.url(survivor), "FAILOVER", 3).await;
            match opened {
                Ok(log) => match log.follow(1, ChainVerifier::from_genesis()).await {
                    Ok(follow) => break (log, follow),
                    Err(e) => assert!(killed_at.elapsed() < BOUND * 2, "no consumer after the failover: {e}"),
                },
                Err(e) => {
                    assert!(killed_at.elapsed() < BOUND * 2, "the stream is not reachable after the failover: {e}")
                }
            }
        };
        for (i, expected) in acknowledged.iter().enumerate() {
            let got = tokio::time::timeout(BOUND, follow.next()).await.unwrap().unwrap().unwrap();
            assert_eq!((got.sequence, &got.commit), (i as u64 + 1, expected));
        }
        assert_eq!(log.last_sequence().await.unwrap(), acknowledged.len() as u64);
    });

    // The killed server comes back and catches up (bounded).
    let killed = cluster.index_of(&leader);
    cluster.restart(killed);
    let restarted_at = Instant::now();
    runtime.block_on(async {
        let client = loop {
            match async_nats::connect(cluster.url(killed)).await {
                Ok(client) => break client,
                Err(e) => assert!(restarted_at.elapsed() < BOUND, "the restarted server takes no clients: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let js = async_nats::jetstream::new(client);
        let restarted = leader.clone();
        loop {
            // The stream's leader reports each replica's state: the restarted
            // server is current and has no commit left to receive.
            let caught_up = match js.get_stream("FAILOVER").await {
                Ok(mut stream) => stream.info().await.ok().and_then(|info| {
                    let replica = info.cluster.as_ref()?.replicas.iter().find(|r| r.name == restarted)?;
                    Some(replica.current && replica.lag.unwrap_or(0) == 0 && !replica.offline)
                }),
                Err(_) => None,
            };
            if caught_up == Some(true) {
                break;
            }
            assert!(restarted_at.elapsed() < BOUND, "the restarted server did not catch up within {BOUND:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// The payload of `record`, which `commit` sealed.
fn payload_of(c: &Commit, i: usize) -> (Uuid, u8, ledger_events::Payload) {
    let record = &c.records[i];
    (record.header.event_id, record.header.format, record.payload.clone().unwrap())
}

#[test]
fn erasing_an_owner_leaves_none_of_its_payloads_readable() {
    use ledger::cluster::Owner;
    let cluster = NatsCluster::start();
    runtime().block_on(async {
        let log = open(&cluster.urls(), "ERASE").await;
        let store = log.payload_store(3).await.unwrap();
        // A second node's handle, on another server.
        let other = open(&cluster.url(2), "ERASE").await.payload_store(3).await.unwrap();
        let mut tail = ChainTail::GENESIS;
        let c = sealed(&mut tail, 3);
        let (alice, bob) = (Owner::Account(ObjectId(7)), Owner::Account(ObjectId(8)));
        let stored = [(alice, payload_of(&c, 0)), (alice, payload_of(&c, 1)), (bob, payload_of(&c, 2))];
        // Both nodes write at once: alice's key is created once and shared.
        let (first, second) = tokio::join!(
            store.put(alice, stored[0].1.0, &stored[0].1.2),
            other.put(alice, stored[1].1.0, &stored[1].1.2)
        );
        first.unwrap();
        second.unwrap();
        store.put(bob, stored[2].1.0, &stored[2].1.2).await.unwrap();
        store.put(Owner::Ledger, Uuid::from_u128(1), &stored[2].1.2).await.unwrap();
        for (owner, (event_id, format, payload)) in &stored {
            for handle in [&store, &other] {
                assert_eq!(handle.get(*owner, *event_id, *format).await.unwrap().as_ref(), Some(payload));
            }
        }
        // What the stream holds is sealed: no payload's bytes appear in it.
        let client = async_nats::connect(cluster.url(1)).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let raw = js.get_stream("ERASE_PAYLOADS").await.unwrap();
        for sequence in 1..=4 {
            let message = raw.get_raw_message(sequence).await.unwrap();
            for (_, (_, _, payload)) in &stored {
                let plain = ledger_events::codec::encode_payload(payload);
                assert!(!message.payload.windows(plain.len()).any(|w| w == plain.as_slice()));
            }
        }

        assert_eq!(store.erase(alice).await.unwrap(), 2);
        for handle in [&store, &other] {
            for (event_id, format, _) in [&stored[0].1, &stored[1].1] {
                assert_eq!(handle.get(alice, *event_id, *format).await.unwrap(), None);
            }
            // Nothing of anyone else's is touched.
            let (event_id, format, payload) = &stored[2].1;
            assert_eq!(handle.get(bob, *event_id, *format).await.unwrap().as_ref(), Some(payload));
        }
        // Alice's key is replaced by the erasure marker, and no key is made
        // for her again: nothing of hers can be stored after her erasure.
        let mut keys = js.get_stream("ERASE_KEYS").await.unwrap();
        let marker = keys.get_last_raw_message_by_subject(&format!("erase.key.{}", ObjectId(7).to_jmap())).await;
        assert_eq!(marker.unwrap().payload.as_ref(), b"erased");
        assert_eq!(keys.info().await.unwrap().state.messages, 3, "bob's and the ledger's keys, alice's marker");
        // A node that sealed for alice before the erasure reached it keeps
        // her key in memory until it applies the erasure: what it stores
        // meanwhile opens for no one (her key is gone), and applying the
        // erasure erases again, which sweeps it.
        let late = Uuid::now_v7();
        if other.put(alice, late, &stored[0].1.2).await.is_ok() {
            assert_eq!(other.get(alice, late, stored[0].1.1).await.unwrap(), None);
        }
        other.erase(alice).await.unwrap();
        assert!(matches!(other.put(alice, Uuid::now_v7(), &stored[0].1.2).await, Err(ClusterError::Payloads(_))));
        assert!(matches!(store.put(alice, Uuid::now_v7(), &stored[0].1.2).await, Err(ClusterError::Payloads(_))));
        let mut payloads = js.get_stream("ERASE_PAYLOADS").await.unwrap();
        assert_eq!(payloads.info().await.unwrap().state.messages, 2, "bob's and the ledger's payloads remain");
        // Erasing again, or an owner with nothing stored, erases nothing.
        assert_eq!(store.erase(alice).await.unwrap(), 0);
        assert_eq!(store.erase(Owner::Account(ObjectId(99))).await.unwrap(), 0);
    });
}

#[test]
fn a_commit_whose_headers_lie_halts_the_follower() {
    let cluster = NatsCluster::start();
    runtime().block_on(async {
        let log = open(&cluster.urls(), "LIES").await;
        let c = commit(&mut ChainTail::GENESIS.clone(), 2);
        let (first, last) = (&c.records[0].header, &c.records[1].header);
        // Published by hand, as a node with a bug (or an intruder with
        // write access to the subject) could: the records are sound, the
        // count header is not.
        let client = async_nats::connect(cluster.url(0)).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let message = async_nats::jetstream::message::PublishMessage::build()
            .payload(ledger_events::codec::encode_commit(&c.records).into())
            .message_id(c.id.to_string())
            .expected_last_sequence(0)
            .header("Ledger-First-Position", first.seq.to_string().as_str())
            .header("Ledger-Count", "1")
            .header("Ledger-Previous-Hash", first.prev_hash.to_string().as_str())
            .header("Ledger-Head-Hash", last.hash.to_string().as_str())
            .header("Ledger-Owners", format!("{0} {0}", ObjectId(7).to_jmap()).as_str());
        js.send_publish("lies.commit", message).await.unwrap().await.unwrap();

        let mut follow = log.follow(1, ChainVerifier::from_genesis()).await.unwrap();
        match tokio::time::timeout(BOUND, follow.next()).await.unwrap() {
            Some(Err(ClusterError::Malformed { sequence: 1, reason })) => {
                assert!(reason.contains("Ledger-Count"), "{reason}")
            }
            other => panic!("a commit with a lying header was taken: {other:?}"),
        }
        assert!(tokio::time::timeout(BOUND, follow.next()).await.unwrap().is_none());
    });
}
