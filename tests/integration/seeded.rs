//! The benchmark's seeded generator at test size: it is deterministic, its
//! directory answers indexed queries exactly as a brute-force scan does, and its
//! projections equal a rebuild. Keeps `benches/scale.rs` from rotting.

use ledger::seed::{SeedRng, SeedSpec, seed};
use ledger::{Durability, Ledger};
use ledger_events::values::ObjectId;
use ledger_projections::query::{Filter, account_matches, query_accounts};
use ledger_projections::{AccountState, state};

fn shape(a: &AccountState) -> (String, Option<String>, Vec<String>, Vec<ObjectId>) {
    let aliases = a.aliases.iter().map(|al| al.email_address.clone()).collect();
    (a.email_address.clone(), a.description.clone(), aliases, a.member_group_ids.clone())
}

#[test]
fn the_seeded_directory_is_deterministic_and_queries_match_a_scan() {
    let spec = SeedSpec::small(42);
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = Ledger::open(one.path(), Durability::Buffered).unwrap();
    let second = Ledger::open(two.path(), Durability::Buffered).unwrap();
    let built = seed(&first, &spec).unwrap();
    let again = seed(&second, &spec).unwrap();
    assert_eq!(built.users.len(), spec.users);
    assert_eq!(built.groups.len(), spec.groups);
    assert!(built.last_seq >= spec.min_events);
    assert_eq!((built.users.clone(), built.last_seq), (again.users.clone(), again.last_seq));

    let (a, b) = (first.read(), second.read());
    let every: Vec<ObjectId> = built.groups.iter().chain(&built.users).copied().collect();
    let states: Vec<AccountState> = every.iter().map(|id| state::account(&a.view, *id).unwrap().unwrap()).collect();
    for (id, s) in every.iter().zip(&states) {
        let other = state::account(&b.view, *id).unwrap().unwrap();
        assert_eq!(shape(s), shape(&other), "the same seed builds the same account {id}");
    }
    assert!(states.iter().any(|s| !s.aliases.is_empty()) && states.iter().any(|s| !s.member_group_ids.is_empty()));

    let mut rng = SeedRng::new(7);
    for _ in 0..60 {
        let filter = match rng.below(5) {
            0 => Filter::Name(format!("user{}", rng.below(40))),
            1 => Filter::DomainId(built.domains[rng.below(built.domains.len())]),
            2 => Filter::MemberGroupId(built.groups[rng.below(built.groups.len())]),
            3 => Filter::Text(["berlin", "sales engineering", "tok", "night shift"][rng.below(4)].to_owned()),
            _ => Filter::And(vec![
                Filter::DomainId(built.domains[rng.below(built.domains.len())]),
                Filter::Not(vec![Filter::Text("remote".into())]),
            ]),
        };
        let mut indexed = query_accounts(&a.view, &filter, &[]).unwrap();
        indexed.sort();
        let mut scanned: Vec<ObjectId> =
            every.iter().zip(&states).filter(|(_, s)| account_matches(s, &filter)).map(|(id, _)| *id).collect();
        scanned.sort();
        assert_eq!(indexed, scanned, "{filter:?}");
    }

    let live = first.projections().dump(&first.database().snapshot()).unwrap();
    drop((a, b));
    first.shutdown();
    drop(first);
    ledger::store::rebuild(one.path()).unwrap();
    let rebuilt = Ledger::open(one.path(), Durability::Buffered).unwrap();
    assert!(live == rebuilt.projections().dump(&rebuilt.database().snapshot()).unwrap());
    second.shutdown();
}
