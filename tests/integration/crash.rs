//! Crash safety: a writer process killed with SIGKILL at random points loses no
//! acknowledged commit, and the store it leaves opens, verifies and rebuilds equal.

use std::io::{BufRead, BufReader};
use std::process::{Command as Process, Stdio};
use std::sync::Arc;

use ledger::command::Command;
use ledger::{Durability, Ledger};
use ledger_projections::state;

use super::support::{create_domain, created_id, origin, run, user};
use ledger::seed::SeedRng;

const CHILD_DIR: &str = "LEDGER_CRASH_CHILD_DIR";
const CHILD_ROUND: &str = "LEDGER_CRASH_CHILD_ROUND";
const DOMAIN: &str = "crash.example";
const WRITERS: usize = 4;

/// The child side: writes accounts from several threads forever, printing each
/// name only after its commit was acknowledged. Run by the test below.
#[test]
#[ignore = "run as a child process by sigkill_loses_no_acknowledged_commit"]
fn writer_child() {
    let dir = std::env::var(CHILD_DIR).expect("child needs its data directory");
    let round = std::env::var(CHILD_ROUND).expect("child needs its round");
    let ledger = Ledger::open(dir.as_ref(), Durability::Fsync).unwrap();
    let domain = match state::domain_by_name(&ledger.read().view, &DOMAIN.parse().unwrap()).unwrap() {
        Some(id) => id,
        None => created_id(&run(&ledger, create_domain(DOMAIN))),
    };
    let ledger = Arc::new(ledger);
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (ledger, round) = (Arc::clone(&ledger), round.clone());
            std::thread::spawn(move || {
                for n in 0u64.. {
                    let name = format!("r{round}w{w}n{n}");
                    let command = Command::CreateAccount(user(&name, domain));
                    ledger.commit_blocking(origin(), move |tx| tx.execute(&command)).unwrap().value.unwrap();
                    println!("ack {name}");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
}

#[test]
fn sigkill_loses_no_acknowledged_commit() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut rng = SeedRng::new(seed);
    let mut acked: Vec<String> = Vec::new();
    for round in 0..4 {
        let mut child = Process::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "integration::crash::writer_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let kill_after = 10 + rng.below(150);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut this_round = 0;
        while this_round < kill_after {
            let Some(line) = lines.next() else { break };
            if let Some(name) = line.unwrap().strip_prefix("ack ") {
                acked.push(name.to_owned());
                this_round += 1;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert_eq!(this_round, kill_after, "seed {seed}: the child stopped writing before it was killed");

        let ledger = Ledger::open(dir.path(), Durability::Fsync).expect("a killed store opens");
        let read = ledger.read();
        for name in &acked {
            assert!(
                state::address_owner(&read.view, &format!("{name}@{DOMAIN}")).unwrap().is_some(),
                "seed {seed}: acknowledged {name} was lost"
            );
        }
        let (_, records) = ledger.verify().expect("the chain verifies after a crash");
        assert!(records as usize > acked.len());
        let live = ledger.projections().dump(&ledger.database().snapshot()).unwrap();
        ledger.shutdown();
        drop((ledger, read));
        ledger::store::rebuild(dir.path()).unwrap();
        let ledger = Ledger::open(dir.path(), Durability::Fsync).unwrap();
        let rebuilt = ledger.projections().dump(&ledger.database().snapshot()).unwrap();
        assert!(live == rebuilt, "seed {seed}: projections after the crash differ from a rebuild");
    }
}
