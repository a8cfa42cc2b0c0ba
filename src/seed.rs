//! A seeded generator of realistic directories: domains, groups, users with
//! aliases, group memberships and descriptions, then updates until the log holds
//! the events asked for. The same seed gives the same directory. Used by the
//! scale benchmark at 100k accounts and by the tests at a few hundred, so the
//! bench code cannot rot.

use ledger_events::Event;
use ledger_events::values::ObjectId;
use rand_core::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::command::{AliasSpec, Command, CreateAccount, CreateDomain, UpdateAccount};
use crate::store::StoreError;
use crate::store::{CommitOrigin, Ledger};

/// What to build.
#[derive(Debug, Clone, Copy)]
pub struct SeedSpec {
    pub seed: u64,
    pub domains: usize,
    pub groups: usize,
    pub users: usize,
    /// Keep updating accounts until the log holds at least this many events.
    pub min_events: u64,
    /// Commands per commit while building.
    pub batch: usize,
}

impl SeedSpec {
    pub fn small(seed: u64) -> Self {
        SeedSpec { seed, domains: 3, groups: 10, users: 300, min_events: 1_500, batch: 100 }
    }

    /// The directory of the performance targets: 100k accounts, 1M events.
    pub fn large(seed: u64) -> Self {
        SeedSpec { seed, domains: 20, groups: 1_000, users: 99_000, min_events: 1_000_000, batch: 2_000 }
    }
}

/// What was built.
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    pub domains: Vec<ObjectId>,
    pub groups: Vec<ObjectId>,
    pub users: Vec<ObjectId>,
    /// The last log position.
    pub last_seq: u64,
}

/// Words for descriptions, so that text search has something to find.
const WORDS: &[&str] = &[
    "sales",
    "support",
    "finance",
    "legal",
    "engineering",
    "marketing",
    "operations",
    "research",
    "berlin",
    "lisbon",
    "tokyo",
    "austin",
    "manager",
    "intern",
    "contractor",
    "director",
    "night",
    "shift",
    "remote",
    "archive",
];

/// The project's one seeded generator (PCG, `rand_pcg::Pcg64Mcg`): the same
/// seed gives the same values, and so the same directory, in every build.
#[derive(Debug, Clone)]
pub struct SeedRng(Pcg64Mcg);

impl SeedRng {
    pub fn new(seed: u64) -> Self {
        SeedRng(Pcg64Mcg::seed_from_u64(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Nearly uniform in `0..n` (modulo bias is negligible for small `n`); 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        match n {
            0 => 0,
            n => (self.next_u64() % n as u64) as usize,
        }
    }

    fn words(&mut self, count: usize) -> String {
        (0..count).map(|_| WORDS[self.below(WORDS.len())]).collect::<Vec<_>>().join(" ")
    }
}

/// Builds `spec` into `ledger` (expected empty) with system commits.
pub fn seed(ledger: &Ledger, spec: &SeedSpec) -> Result<Seeded, StoreError> {
    let mut rng = SeedRng::new(spec.seed);
    let mut out = Seeded::default();
    let commands: Vec<Command> = (0..spec.domains)
        .map(|d| {
            Command::CreateDomain(CreateDomain {
                settings: Default::default(),
                name: format!("d{d}.example").parse().expect("valid domain"),
                description: None,
                member_tenant_id: None,
            })
        })
        .collect();
    out.domains = commit_all(ledger, commands)?;

    let domain = |i: usize| out.domains[i % out.domains.len()];
    let groups: Vec<Command> = (0..spec.groups)
        .map(|g| {
            let mut create = CreateAccount::group(format!("team{g}").parse().expect("valid name"), domain(g));
            create.description = Some(format!("team {}", rng.words(2)));
            Command::CreateAccount(create)
        })
        .collect();
    out.groups = commit_all(ledger, groups)?;

    let mut users = Vec::with_capacity(spec.users);
    for u in 0..spec.users {
        let mut create = CreateAccount::user(format!("user{u}").parse().expect("valid name"), domain(u));
        create.description = Some(format!("{} {}", rng.words(3), u));
        if u % 4 == 0 {
            create.aliases.push(AliasSpec {
                name: format!("alias{u}").parse().expect("valid name"),
                domain_id: domain(u + 1),
                enabled: true,
                description: None,
            });
        }
        if !out.groups.is_empty() && u % 3 != 0 {
            create.member_group_ids.push(out.groups[rng.below(out.groups.len())]);
        }
        users.push(Command::CreateAccount(create));
    }
    for chunk in users.chunks(spec.batch.max(1)) {
        out.users.extend(commit_all(ledger, chunk.to_vec())?);
    }

    // Updates, as a directory's life adds them: descriptions, mostly.
    out.last_seq = ledger.read().last_seq;
    let mut round = 0u64;
    while out.last_seq < spec.min_events && !out.users.is_empty() {
        let updates: Vec<Command> = (0..spec.batch.max(1))
            .map(|_| {
                round += 1;
                let id = out.users[rng.below(out.users.len())];
                let description = Some(Some(format!("{} r{round}", rng.words(3))));
                Command::UpdateAccount(UpdateAccount { id, description, ..Default::default() })
            })
            .collect();
        commit_all(ledger, updates)?;
        out.last_seq = ledger.read().last_seq;
    }
    Ok(out)
}

/// Runs `commands` in one commit; returns the ids of what they created. A refused
/// command is a bug of the generator, reported as a failed write.
fn commit_all(ledger: &Ledger, commands: Vec<Command>) -> Result<Vec<ObjectId>, StoreError> {
    let committed = ledger.commit_blocking(CommitOrigin::system(), move |tx| {
        let mut created = Vec::new();
        for command in &commands {
            let events = tx.execute(command).map_err(|e| e.to_string())?;
            created.extend(events.iter().find_map(|e| match e {
                Event::DomainCreated(d) => Some(d.domain_id),
                Event::AccountCreated(a) => Some(a.account_id),
                _ => None,
            }));
        }
        Ok::<_, String>(created)
    })?;
    committed.value.map_err(|e| StoreError::Internal(format!("seed command refused: {e}")))
}
