//! Time travel cost: `asOf` reads of one account (folded from its own events
//! through the history index) and of the whole directory, against a full
//! restore to the same position. Medians and p99 over random ids and positions.
//!
//! Run: `cargo bench --bench asof` (LEDGER_BENCH_ACCOUNTS to change the size).

// A benchmark whose setup fails has nothing to measure: it stops there.
#![allow(clippy::unwrap_used)]

mod support;
use support::percentile;

use std::time::Instant;

use ledger::audit::{asof, restore};
use ledger::command::{Command, CreateAccount, UpdateAccount};
use ledger::{CommitOrigin, Durability, Ledger};
use ledger_events::Event;
use ledger_events::values::ObjectId;

fn main() {
    let accounts: usize = std::env::var("LEDGER_BENCH_ACCOUNTS").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let ledger = Ledger::open(&source, Durability::Buffered).unwrap();
    let domain_id = support::create_domain(&ledger);
    let mut ids = Vec::with_capacity(accounts);
    let started = Instant::now();
    for chunk in (0..accounts).collect::<Vec<_>>().chunks(500) {
        let chunk = chunk.to_vec();
        let created = ledger
            .commit_blocking(CommitOrigin::system(), move |tx| {
                let mut out = Vec::new();
                for &i in &chunk {
                    let mut create = CreateAccount::user(format!("user{i}").parse().unwrap(), domain_id);
                    create.description = Some(format!("account {i}"));
                    let events = tx.execute(&Command::CreateAccount(create)).unwrap();
                    let Event::AccountCreated(a) = &events[0] else { unreachable!() };
                    let id = a.account_id;
                    for round in 0..3 {
                        let update = UpdateAccount {
                            id,
                            description: Some(Some(format!("account {i} r{round}"))),
                            ..Default::default()
                        };
                        tx.execute(&Command::UpdateAccount(update)).unwrap();
                    }
                    out.push(id);
                }
                out
            })
            .unwrap()
            .value;
        ids.extend(created);
    }
    let last = ledger.read().last_seq;
    println!("asof bench: {accounts} accounts, {last} events (built in {:.1}s)", started.elapsed().as_secs_f64());

    let read = ledger.read();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut one = Vec::new();
    for _ in 0..2_000 {
        let id: ObjectId = ids[(next() % ids.len() as u64) as usize];
        let position = 1 + next() % last;
        let t = Instant::now();
        let _ = asof::account_at(&read.view, ledger.log(), read.view.snapshot(), id, position).unwrap();
        one.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let mut all = Vec::new();
    for _ in 0..5 {
        let position = 1 + next() % last;
        let t = Instant::now();
        let states = asof::accounts_at(&read.view, ledger.log(), read.view.snapshot(), position).unwrap();
        all.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(states.len() <= accounts);
    }
    drop(read);
    ledger.shutdown();
    drop(ledger);
    let mut restores = Vec::new();
    for i in 0..3 {
        let target = dir.path().join(format!("restore{i}"));
        let t = Instant::now();
        restore::restore(
            ledger::audit::restore::Source::Store(&source),
            &target,
            Some(ledger::audit::export::Bound::Seq(last / 2)),
            |_, _| {},
        )
        .unwrap();
        restores.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (m1, p1) = (percentile(one.clone(), 0.5), percentile(one, 0.99));
    let (ma, mr) = (percentile(all, 0.5), percentile(restores, 0.5));
    println!("  asOf x:Account/get, one account  median {m1:>8.1} us   p99 {p1:>8.1} us");
    println!("  asOf whole directory (query)     median {ma:>8.1} ms");
    println!("  restore to half the log          median {mr:>8.1} ms   ({:.0}x the one-account asOf)", mr * 1e3 / m1);
}
