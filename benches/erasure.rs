//! The cost of an erasure: destroying one account and erasing every record
//! that touched it, until no file of the data directory holds its data (wait
//! for older readers, flush and compact every keyspace, retire the journal,
//! wait for replaced tables to be deleted). The baseline, measured in the
//! same run on the same store, is what a bare fjall store needs to drop
//! deleted data from its files: flush every keyspace and compact it fully.
//!
//! Run: `cargo bench --bench erasure` (LEDGER_BENCH_ACCOUNTS to change the
//! size; 20,000 by default, each with a description and an alias).

// A benchmark whose setup fails has nothing to measure: it stops there.
#![allow(clippy::unwrap_used)]

mod support;
use support::median;

use std::time::Instant;

use ledger::command::{AliasSpec, Command, CreateAccount};
use ledger::{CommitOrigin, Durability, Ledger};
use ledger_events::Event;

const ROUNDS: usize = 5;

fn main() {
    let accounts: usize = std::env::var("LEDGER_BENCH_ACCOUNTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), Durability::Fsync).unwrap();
    let domain_id = support::create_domain(&ledger);
    let mut ids = Vec::with_capacity(accounts);
    for chunk in (0..accounts).collect::<Vec<_>>().chunks(500) {
        let chunk = chunk.to_vec();
        let created = ledger
            .commit_blocking(CommitOrigin::system(), move |tx| {
                chunk
                    .iter()
                    .copied()
                    .map(|i| {
                        let mut create = CreateAccount::user(format!("user{i}").parse().unwrap(), domain_id);
                        create.description = Some(format!("account {i} of the erasure bench"));
                        create.aliases = vec![AliasSpec {
                            name: format!("alias{i}").parse().unwrap(),
                            domain_id,
                            enabled: true,
                            description: None,
                        }];
                        let events = tx.execute(&Command::CreateAccount(create)).unwrap();
                        let Event::AccountCreated(a) = &events[0] else { unreachable!() };
                        a.account_id
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap()
            .value;
        ids.extend(created);
    }
    let events = ledger.read().last_seq;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let writer = ledger::auth::Principal::fallback("admin").writer();

    let (mut baseline, mut erasure) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let t = Instant::now();
        let keyspaces = ledger.log().keyspaces().into_iter().chain(ledger.projections().keyspaces());
        for keyspace in keyspaces {
            keyspace.rotate_memtable_and_wait().unwrap();
            keyspace.major_compact().unwrap();
        }
        ledger.database().persist(fjall::PersistMode::SyncAll).unwrap();
        baseline.push(t.elapsed().as_secs_f64() * 1e3);

        let id = ids[round * (accounts / ROUNDS)];
        let t = Instant::now();
        let report = runtime
            .block_on(ledger::maintenance::erase(&ledger, CommitOrigin::system(), vec![id], writer.clone()))
            .unwrap();
        erasure.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(report.outcomes[0].1.is_ok(), "{report:?}");
    }
    let (b, e) = (median(baseline), median(erasure));
    println!("erasure bench: {accounts} accounts, {events} events, {ROUNDS} rounds");
    println!("  baseline: bare fjall flush + major compaction of every keyspace  median {b:>8.1} ms");
    println!(
        "  erasure of one account until no file holds it                median {e:>8.1} ms   ({:.2}x the baseline)",
        e / b
    );
    ledger.shutdown();
}
