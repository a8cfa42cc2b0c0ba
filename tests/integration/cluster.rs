//! The cluster's log on a real three-server JetStream cluster
//! (`NatsCluster`): the stream's settings, compare-and-append under races,
//! retried appends stored once, following with the chain checked (a forged
//! commit halts it), and appends resuming after the stream leader is killed.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ledger::cluster::{Appended, ClusterError, Commit, StreamLog};
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

/// A commit of `n` description updates sealed onto `tail`.
fn commit(tail: &mut ChainTail, n: u64) -> Commit {
    let id = Uuid::now_v7();
    let meta = CommitMeta {
        commit_id: id,
        committed_at: UtcDateTime::from_millis(1_790_000_000_000),
        actor: Actor { principal_id: String::new(), name: "system".into(), auth_method: AuthMethod::System },
        request_id: "cluster-test".into(),
        call_id: "c".into(),
    };
    let records = (0..n)
        .map(|i| {
            let event = Event::AccountUpdated(AccountUpdated {
                account_id: ObjectId(7),
                description: Change::between(None, Some(format!("update {i} of {id}"))),
                ..Default::default()
            });
            tail.seal(&meta, Uuid::now_v7(), &event, &[i as u8; 32])
        })
        .collect();
    Commit { id, records }
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
        let mut loose = ledger::cluster::stream_config("LOOSE", 1);
        loose.deny_delete = false;
        js.create_stream(loose).await.unwrap();
        match StreamLog::open(&cluster.urls(), "LOOSE", 3).await {
            Err(ClusterError::Settings { setting, .. }) => assert_eq!(setting, "replicas"),
            other => panic!("a stream of one replica was taken: {:?}", other.map(|_| ())),
        }
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
        loop {
            // A direct get is answered by the server asked, from its own copy.
            let stream = js.get_stream("FAILOVER").await;
            if let Ok(stream) = stream
                && let Ok(message) = stream.direct_get(acknowledged.len() as u64).await
                && message.sequence == acknowledged.len() as u64
            {
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
        let c = commit(&mut tail, 3);
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
        // Neither alice's key nor her payload messages are left in the streams.
        let mut keys = js.get_stream("ERASE_KEYS").await.unwrap();
        assert!(keys.get_last_raw_message_by_subject(&format!("erase.key.{}", ObjectId(7).to_jmap())).await.is_err());
        assert_eq!(keys.info().await.unwrap().state.messages, 2, "bob's and the ledger's keys remain");
        let mut payloads = js.get_stream("ERASE_PAYLOADS").await.unwrap();
        assert_eq!(payloads.info().await.unwrap().state.messages, 2, "bob's and the ledger's payloads remain");
        // Erasing again, or an owner with nothing stored, erases nothing.
        assert_eq!(store.erase(alice).await.unwrap(), 0);
        assert_eq!(store.erase(Owner::Account(ObjectId(99))).await.unwrap(), 0);
    });
}
