//! The ledger store: durable commits, group commit, atomic aborts, open-time checks.

use std::sync::atomic::Ordering;

use ledger::command::{Command, UpdateAccount};
use ledger::{Durability, Ledger};
use ledger_events::codec::{decode_header, encode_header, seq_key};
use ledger_events::{HEADERS_KEYSPACE, PAYLOADS_KEYSPACE};
use ledger_projections::state;

use super::support::{create_domain, created_id, origin, run, user};

#[test]
fn acknowledged_commits_are_readable_at_once_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), Durability::Fsync).unwrap();
    let domain = created_id(&run(&ledger, create_domain("example.org")));
    let alice = created_id(&run(&ledger, Command::CreateAccount(user("alice", domain))));
    // Read-your-write: the published snapshot already holds the commit.
    let read = ledger.read();
    assert_eq!(read.last_seq, 2);
    assert_eq!(state::account(&read.view, alice).unwrap().unwrap().email_address, "alice@example.org");
    ledger.shutdown();
    drop((ledger, read));

    let ledger = Ledger::open(dir.path(), Durability::Fsync).unwrap();
    let read = ledger.read();
    assert_eq!(read.last_seq, 2);
    assert_eq!(state::address_owner(&read.view, "alice@example.org").unwrap().map(|o| o.0), Some(alice));
    let (tail, checked) = ledger.verify().unwrap();
    assert_eq!((tail.next_seq, checked), (3, 2));
    let record = ledger.log().read(&ledger.database().snapshot(), 2).unwrap().unwrap();
    assert_eq!(record.header.event_type, "AccountCreated");
    assert_eq!(record.header.commit.actor.name, "admin");
    assert_eq!(record.header.commit.call_id, "c1");
}

#[test]
fn concurrent_commits_share_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), Durability::Fsync).unwrap();
    let domain = created_id(&run(&ledger, create_domain("example.org")));
    let before = (ledger.metrics().fsyncs.load(Ordering::Relaxed), ledger.durable_commits());
    let pending: Vec<_> = {
        // While paused, the writer cannot start a group, so all 64 queue up.
        let _paused = ledger.pause_writes();
        (0..64)
            .map(|i| {
                let command = Command::CreateAccount(user(&format!("user{i}"), domain));
                ledger.submit(origin(), move |tx| tx.execute(&command))
            })
            .collect()
    };
    for answer in pending {
        answer.blocking_recv().unwrap().unwrap().value.unwrap();
    }
    let fsyncs = ledger.metrics().fsyncs.load(Ordering::Relaxed) - before.0;
    let commits = ledger.durable_commits() - before.1;
    assert_eq!(commits, 64);
    assert_eq!(fsyncs, 1, "64 queued commits are made durable by one fsync");
    assert_eq!(ledger.read().last_seq, 65);
}

#[test]
fn an_aborted_commit_leaves_no_trace_and_later_commits_continue_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), Durability::Fsync).unwrap();
    let domain = created_id(&run(&ledger, create_domain("example.org")));
    let aborted = ledger
        .commit_blocking(origin(), move |tx| {
            tx.execute(&Command::CreateAccount(user("ghost", domain))).unwrap();
            tx.abort();
        })
        .unwrap();
    assert_eq!(aborted.info.last_seq, 0);
    let bob = created_id(&run(&ledger, Command::CreateAccount(user("bob", domain))));
    let read = ledger.read();
    assert!(state::address_owner(&read.view, "ghost@example.org").unwrap().is_none());
    assert_eq!(read.last_seq, 2);
    assert_eq!(state::account(&read.view, bob).unwrap().unwrap().name.as_str(), "bob");
    ledger.verify().unwrap();
}

#[test]
fn a_rejected_item_does_not_undo_accepted_items_of_the_same_commit() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), Durability::Fsync).unwrap();
    let domain = created_id(&run(&ledger, create_domain("example.org")));
    let outcome = ledger
        .commit_blocking(origin(), move |tx| {
            let first = tx.execute(&Command::CreateAccount(user("carol", domain)));
            let duplicate = tx.execute(&Command::CreateAccount(user("carol", domain)));
            let id = created_id(first.as_ref().unwrap());
            let update = tx.execute(&Command::UpdateAccount(UpdateAccount {
                id,
                description: Some(Some("seen in the same commit".into())),
                ..Default::default()
            }));
            (first.is_ok(), duplicate.is_err(), update.map(|e| e.len()))
        })
        .unwrap();
    assert_eq!(outcome.value, (true, true, Ok(1)));
    assert_eq!((outcome.info.first_seq, outcome.info.last_seq), (2, 3));
    let log = ledger.log();
    let snap = ledger.database().snapshot();
    let commits: Vec<_> = (2..=3).map(|s| log.read(&snap, s).unwrap().unwrap().header.commit.commit_id).collect();
    assert_eq!(commits[0], commits[1], "one commit id for all events of one commit");
}

fn write_two_commits(dir: &std::path::Path) {
    let ledger = Ledger::open(dir, Durability::Fsync).unwrap();
    let domain = created_id(&run(&ledger, create_domain("example.org")));
    run(&ledger, Command::CreateAccount(user("dave", domain)));
    ledger.shutdown();
}

#[test]
fn a_tampered_record_refuses_to_open_naming_position_and_file() {
    let dir = tempfile::tempdir().unwrap();
    write_two_commits(dir.path());
    {
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        let headers = db.keyspace(HEADERS_KEYSPACE, fjall::KeyspaceCreateOptions::default).unwrap();
        let mut header = decode_header(&headers.get(seq_key(2)).unwrap().unwrap()).unwrap();
        header.commit.actor.name = "mallory".into();
        headers.insert(seq_key(2), encode_header(&header)).unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let err = Ledger::open(dir.path(), Durability::Fsync).err().expect("must refuse").to_string();
    assert!(err.contains("position 2"), "{err}");
    assert!(err.contains(HEADERS_KEYSPACE), "{err}");
}

#[test]
fn a_truncated_log_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    write_two_commits(dir.path());
    {
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        for ks in [HEADERS_KEYSPACE, PAYLOADS_KEYSPACE] {
            db.keyspace(ks, fjall::KeyspaceCreateOptions::default).unwrap().remove(seq_key(2)).unwrap();
        }
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let err = Ledger::open(dir.path(), Durability::Fsync).err().expect("must refuse").to_string();
    assert!(err.contains("truncated"), "{err}");
    assert!(err.contains("position 1"), "{err}");
}

#[test]
fn projections_that_fell_behind_catch_up_on_open() {
    let dir = tempfile::tempdir().unwrap();
    write_two_commits(dir.path());
    ledger::store::rebuild(dir.path()).unwrap();
    {
        // Simulate a store whose projections never saw the last record.
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        for name in ledger_projections::KEYSPACES {
            db.keyspace(name, fjall::KeyspaceCreateOptions::default).unwrap().clear().unwrap();
        }
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let ledger = Ledger::open(dir.path(), Durability::Fsync).unwrap();
    let read = ledger.read();
    assert!(state::address_owner(&read.view, "dave@example.org").unwrap().is_some());
    assert_eq!(state::applied_seq(&read.view).unwrap(), 2);
}

/// Issue 18: a store closed a moment ago may still be locked while fjall's
/// background threads end; the next command waits for the lock instead of
/// failing with fjall's `Locked`. Here another handle holds the lock for a
/// while (as a closing store's threads do) while a rebuild and an open start.
#[test]
fn a_store_closed_a_moment_ago_reopens_without_a_lock_error() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), Durability::Fsync).unwrap();
    let domain = created_id(&run(&ledger, create_domain("example.org")));
    run(&ledger, Command::CreateAccount(user("alice", domain)));
    ledger.shutdown();
    drop(ledger);
    for open_next in [true, false] {
        let holder = fjall::Database::builder(dir.path()).open().unwrap();
        let (held, holding) = std::sync::mpsc::channel();
        let releaser = std::thread::spawn(move || {
            held.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(holder);
        });
        holding.recv().unwrap();
        let started = std::time::Instant::now();
        if open_next {
            let ledger = Ledger::open(dir.path(), Durability::Fsync).unwrap();
            assert_eq!(ledger.read().last_seq, 2);
            ledger.shutdown();
        } else {
            assert_eq!(ledger::store::rebuild(dir.path()).unwrap(), 2);
        }
        assert!(started.elapsed() >= std::time::Duration::from_millis(250), "it waited for the lock");
        releaser.join().unwrap();
    }
}
