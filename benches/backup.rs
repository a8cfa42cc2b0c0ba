//! The cost of a backup and of restoring it. The baseline, measured in the
//! same run on the same store, is a bare fjall read of what a backup holds:
//! every key and value of the log's two keyspaces from one snapshot. Then:
//! writing the backup file from a snapshot (chain checked, fsynced),
//! verifying the file, and restoring it into a new store (projections
//! rebuilt).
//!
//! Run: `cargo bench --bench backup` (LEDGER_BENCH_ACCOUNTS to change the
//! size; 20,000 by default, each with a description and an alias).

// A benchmark whose setup fails has nothing to measure: it stops there.
#![allow(clippy::unwrap_used)]

mod support;
use support::median;

use std::time::Instant;

use fjall::Readable;

use ledger::audit::restore::{Source, restore};
use ledger::command::{AliasSpec, Command, CreateAccount};
use ledger::{CommitOrigin, Durability, Ledger};

const ROUNDS: usize = 5;

fn main() {
    let accounts: usize = std::env::var("LEDGER_BENCH_ACCOUNTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("store"), Durability::Buffered).unwrap();
    let domain_id = support::create_domain(&ledger);
    for chunk in (0..accounts).collect::<Vec<_>>().chunks(500) {
        let chunk = chunk.to_vec();
        ledger
            .commit_blocking(CommitOrigin::system(), move |tx| {
                for &i in &chunk {
                    let mut create = CreateAccount::user(format!("user{i}").parse().unwrap(), domain_id);
                    create.description = Some(format!("account {i} of the backup bench"));
                    create.aliases = vec![AliasSpec {
                        name: format!("alias{i}").parse().unwrap(),
                        domain_id,
                        enabled: true,
                        description: None,
                    }];
                    tx.execute(&Command::CreateAccount(create)).unwrap();
                }
            })
            .unwrap();
    }
    let last_seq = ledger.read().last_seq;

    let (mut baseline, mut write, mut verify, mut restored) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut size = 0;
    for round in 0..ROUNDS {
        let snapshot = ledger.database().snapshot();
        let t = Instant::now();
        let mut bytes = 0usize;
        for keyspace in ledger.log().keyspaces() {
            for entry in snapshot.iter(keyspace) {
                let (key, value) = entry.into_inner().unwrap();
                bytes += key.len() + value.len();
            }
        }
        baseline.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(bytes > 0);

        let file = dir.path().join(format!("round{round}.bak"));
        let t = Instant::now();
        let out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let (summary, out) = ledger::backup::write_from_log(ledger.log(), &snapshot, last_seq, out, |_| true).unwrap();
        out.into_inner().unwrap().sync_all().unwrap();
        write.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(summary.last_seq, last_seq);
        size = std::fs::metadata(&file).unwrap().len();

        let t = Instant::now();
        ledger::backup::verify_file(&file, |_, _| {}).unwrap();
        verify.push(t.elapsed().as_secs_f64() * 1e3);

        let target = dir.path().join(format!("restored{round}"));
        let t = Instant::now();
        restore(Source::Backup(&file), &target, None, |_, _| {}).unwrap();
        restored.push(t.elapsed().as_secs_f64() * 1e3);
        std::fs::remove_dir_all(&target).unwrap();
        std::fs::remove_file(&file).unwrap();
    }
    let (b, w, v, r) = (median(baseline), median(write), median(verify), median(restored));
    println!(
        "backup bench: {accounts} accounts, {last_seq} events, backup file {:.1} MiB, {ROUNDS} rounds",
        size as f64 / 1048576.0
    );
    println!("  baseline: bare fjall read of the log keyspaces from a snapshot  median {b:>8.1} ms");
    println!("  backup written (chain checked, fsynced)                      median {w:>8.1} ms   ({:.2}x)", w / b);
    println!("  backup file verified                                         median {v:>8.1} ms   ({:.2}x)", v / b);
    println!("  restored from the file (projections rebuilt)                 median {r:>8.1} ms   ({:.2}x)", r / b);
    ledger.shutdown();
}
