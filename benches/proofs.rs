//! Proof cost at scale: a seeded log of 1M records, its Merkle tree built by
//! the notary (`ledger::audit::notary`), then inclusion and consistency
//! proofs generated (fjall reads of the stored tree nodes) and verified (pure
//! SHA-256), medians and p99 over seeded random positions and sizes.
//!
//! The baseline, in the same run: as many point reads of 32-byte values at
//! random keys of a bare fjall keyspace of as many entries as the proof has
//! hashes (plus one, the record hash), and as many bare SHA-256 node hashes as
//! a verification computes. The `ratio` lines divide the ledger's median by
//! the baseline's.
//!
//! Run: `cargo bench --bench proofs` (1M records; `LEDGER_BENCH_RECORDS` to
//! change it). `cargo test` runs it without `--bench` at 3,000 records, so
//! that it cannot rot.

// A benchmark whose setup fails has nothing to measure: it stops there.
#![allow(clippy::unwrap_used)]

mod support;
use support::percentile;

use std::time::Instant;

use ledger::audit::notary::{Notary, NotaryConfig};
use ledger::seed::{SeedRng, SeedSpec, seed};
use ledger::{Durability, Ledger};
use ledger_events::merkle;

/// Samples per measured figure.
const SAMPLES: usize = 3_000;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let records: u64 = std::env::var("LEDGER_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(if full {
        1_000_000
    } else {
        3_000
    });
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ledger = Ledger::open(&data, Durability::Buffered).unwrap();
    let started = Instant::now();
    let spec = SeedSpec {
        seed: 21,
        domains: 2,
        groups: 0,
        users: (records / 20).clamp(10, 20_000) as usize,
        min_events: records,
        batch: 5_000,
    };
    let seeded = seed(&ledger, &spec).unwrap();
    let size = seeded.last_seq;
    println!("proofs bench: {size} records (seeded in {:.1}s)", started.elapsed().as_secs_f64());

    // The tree, built from the whole log as on a first start after an upgrade.
    let started = Instant::now();
    let notary = Notary::open(&ledger, &data, &NotaryConfig::default()).unwrap();
    let built = started.elapsed().as_secs_f64();
    println!("tree built over {size} leaves in {built:.2}s ({:.0} leaves/s)", size as f64 / built);

    let mut rng = SeedRng::new(7);
    let mut pick = |n: u64| 1 + rng.next_u64() % n;
    let (mut generate, mut verify, mut lengths) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..SAMPLES {
        let position = pick(size);
        let t = Instant::now();
        let proof = notary.inclusion(position, Some(size)).unwrap();
        generate.push(t.elapsed().as_secs_f64() * 1e6);
        let leaf = merkle::leaf_hash(&proof.record_hash.0);
        let t = Instant::now();
        merkle::verify_inclusion(position - 1, size, &leaf, &proof.hashes, &proof.root).unwrap();
        verify.push(t.elapsed().as_secs_f64() * 1e6);
        lengths.push(proof.hashes.len());
    }
    let (mut c_generate, mut c_verify, mut c_lengths) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..SAMPLES {
        let from = pick(size);
        let t = Instant::now();
        let proof = notary.consistency(from, size).unwrap();
        c_generate.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        merkle::verify_consistency(from, size, &proof.from_root, &proof.to_root, &proof.hashes).unwrap();
        c_verify.push(t.elapsed().as_secs_f64() * 1e6);
        c_lengths.push(proof.hashes.len());
    }
    let mean = |l: &[usize]| l.iter().sum::<usize>() as f64 / l.len() as f64;
    let reads = mean(&lengths).round() as usize + 1;

    // Baselines: bare fjall point reads and bare SHA-256 node hashes.
    let raw = fjall::Database::builder(dir.path().join("raw"))
        .max_journaling_size(ledger::store::JOURNAL_LIMIT)
        .cache_size(ledger::store::CACHE_BYTES)
        .open()
        .unwrap();
    let keyspace = raw.keyspace("raw", fjall::KeyspaceCreateOptions::default).unwrap();
    for chunk in (0..size).collect::<Vec<_>>().chunks(50_000) {
        let mut batch = raw.batch();
        for &i in chunk {
            let mut value = [0u8; 32];
            value[..8].copy_from_slice(&i.to_le_bytes());
            batch.insert(&keyspace, i.to_be_bytes(), value);
        }
        batch.commit().unwrap();
    }
    let mut raw_reads = Vec::new();
    for _ in 0..SAMPLES {
        let t = Instant::now();
        for _ in 0..reads {
            let key = (pick(size) - 1).to_be_bytes();
            assert!(keyspace.get(key).unwrap().is_some());
        }
        raw_reads.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let hashes = mean(&lengths).round() as usize + 1;
    let mut raw_hashes = Vec::new();
    let mut acc = merkle::leaf_hash(b"baseline");
    for _ in 0..SAMPLES {
        let t = Instant::now();
        for _ in 0..hashes {
            acc = merkle::node_hash(&acc, &acc);
        }
        raw_hashes.push(t.elapsed().as_secs_f64() * 1e6);
    }
    assert_ne!(acc, [0u8; 32]);

    let med = |v: &[f64]| percentile(v.to_vec(), 0.5);
    let p99 = |v: &[f64]| percentile(v.to_vec(), 0.99);
    println!("| at {size} records | median µs | p99 µs | hashes (mean) |");
    println!("|---|---|---|---|");
    for (name, samples, l) in [
        ("inclusion proof, generated", &generate, mean(&lengths)),
        ("inclusion proof, verified", &verify, mean(&lengths)),
        ("consistency proof, generated", &c_generate, mean(&c_lengths)),
        ("consistency proof, verified", &c_verify, mean(&c_lengths)),
        ("baseline: bare fjall point reads", &raw_reads, reads as f64),
        ("baseline: bare SHA-256 node hashes", &raw_hashes, hashes as f64),
    ] {
        println!("| {name} | {:.1} | {:.1} | {l:.1} |", med(samples), p99(samples));
    }
    println!("ratio inclusion generated / {reads} bare fjall reads: {:.2}", med(&generate) / med(&raw_reads));
    println!("ratio consistency generated / {reads} bare fjall reads: {:.2}", med(&c_generate) / med(&raw_reads));
    println!("ratio inclusion verified / {hashes} bare node hashes: {:.2}", med(&verify) / med(&raw_hashes));
    println!("ratio consistency verified / {hashes} bare node hashes: {:.2}", med(&c_verify) / med(&raw_hashes));
}
