//! Replay from scratch gives byte-identical projections to the live ones, over
//! random command histories (proptest).

use std::sync::{Arc, Mutex};

use ledger::{Durability, Ledger};
use proptest::prelude::*;

use super::support::{Known, Step, origin, step_command};

fn step() -> impl Strategy<Value = Step> {
    let pairs = || prop::collection::vec((any::<u8>(), any::<u8>()), 0..3);
    let ids = || prop::collection::vec(any::<u8>(), 0..3);
    prop_oneof![
        2 => any::<u8>().prop_map(Step::Domain),
        4 => (any::<u8>(), any::<u8>(), pairs(), ids()).prop_map(|(name, domain, aliases, groups)| Step::User { name, domain, aliases, groups }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(name, domain)| Step::Group { name, domain }),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(target, text)| Step::Describe { target, text }),
        2 => (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(target, name, domain)| Step::Rename { target, name, domain }),
        2 => (any::<u8>(), pairs()).prop_map(|(target, aliases)| Step::Aliases { target, aliases }),
        1 => (any::<u8>(), any::<Option<u32>>()).prop_map(|(target, limit)| Step::Quota { target, limit }),
        1 => (any::<u8>(), ids()).prop_map(|(target, groups)| Step::Join { target, groups }),
        1 => any::<u8>().prop_map(|target| Step::Destroy { target }),
        1 => any::<u8>().prop_map(|domain| Step::DestroyDomain { domain }),
    ]
}

fn dump(ledger: &Ledger) -> Vec<ledger_projections::Entry> {
    ledger.projections().dump(&ledger.database().snapshot()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn replay_equals_live(commits in prop::collection::vec(prop::collection::vec(step(), 1..5), 1..25), chunk in 1u64..4) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path(), Durability::Buffered).unwrap();
        let known = Arc::new(Mutex::new(Known::default()));
        // Submit every commit before awaiting any, so the writer groups them.
        let pending: Vec<_> = commits
            .into_iter()
            .map(|steps| {
                let known = Arc::clone(&known);
                ledger.submit(origin(), move |tx| {
                    let mut accepted = 0;
                    for step in &steps {
                        let command = {
                            let k = known.lock().unwrap();
                            step_command(step, &k.domains, &k.accounts, &k.groups)
                        };
                        if let Some(Ok(events)) = command.map(|c| tx.execute(&c)) {
                            known.lock().unwrap().observe(&events);
                            accepted += 1;
                        }
                    }
                    accepted
                })
            })
            .collect();
        for answer in pending {
            answer.blocking_recv().unwrap().unwrap();
        }
        let live = dump(&ledger);
        let last_seq = ledger.read().last_seq;
        ledger.shutdown();
        drop(ledger);

        let replayed = ledger::store::rebuild(dir.path()).unwrap();
        prop_assert_eq!(replayed, last_seq);
        let ledger = Ledger::open(dir.path(), Durability::Buffered).unwrap();
        let rebuilt = dump(&ledger);
        prop_assert_eq!(live.len(), rebuilt.len());
        prop_assert!(live == rebuilt, "replayed projections differ from live ones");
        ledger.shutdown();
        drop(ledger);
        // Chunk boundaries anywhere: the second and later chunks fold over
        // what the earlier ones wrote.
        prop_assert_eq!(ledger::store::rebuild_in_chunks(dir.path(), chunk, &mut |_, _| {}).unwrap(), last_seq);
        let ledger = Ledger::open(dir.path(), Durability::Buffered).unwrap();
        prop_assert!(live == dump(&ledger), "replayed in chunks of {} records, projections differ from live ones", chunk);
    }
}

/// A rebuild replaces what the projection keyspaces held: a key no event
/// explains (left by an older layout, or damage) is gone afterwards, in every
/// keyspace the rebuild writes, also when the log is empty.
#[test]
fn a_rebuild_leaves_no_key_the_log_does_not_explain() {
    use super::support::{create_domain, run};
    for empty_log in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path(), Durability::Fsync).unwrap();
        if !empty_log {
            run(&ledger, create_domain("example.org"));
        }
        let live = dump(&ledger);
        for keyspace in ["proj_accounts", "proj_index", "proj_changes", "proj_tenants"] {
            let ks = ledger.database().keyspace(keyspace, fjall::KeyspaceCreateOptions::default).unwrap();
            ks.insert(b"zz-stray", b"left by an older build").unwrap();
        }
        assert_ne!(dump(&ledger), live);
        ledger.shutdown();
        drop(ledger);
        ledger::store::rebuild(dir.path()).unwrap();
        let ledger = Ledger::open(dir.path(), Durability::Fsync).unwrap();
        assert_eq!(dump(&ledger), live, "empty log: {empty_log}");
        ledger.shutdown();
    }
}
