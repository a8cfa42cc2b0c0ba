//! Decide-layer tests: commands against in-memory state, folded with the real `apply`.

use ledger_events::model::{CredentialKind, CredentialPermissions, QuotaKind, Roles};
use ledger_events::values::{ObjectId, UtcDateTime};
use ledger_events::{Actor, ChainTail, CommitMeta, Event};
use ledger_projections::{AccountState, Empty, Overlay, apply, state};
use uuid::Uuid;

use super::*;

struct World {
    state: Overlay<Empty>,
    tail: ChainTail,
}

const NOW: i64 = 1_795_000_000_000;

impl World {
    fn new() -> Self {
        World { state: Overlay::new(Empty), tail: ChainTail::GENESIS }
    }

    fn run(&mut self, command: Command) -> Result<Vec<Event>, Rejection> {
        let ctx = DecideContext { now: UtcDateTime::from_millis(NOW) };
        let events = decide(&command, &self.state, &ctx)?;
        self.fold(&events);
        Ok(events)
    }

    fn fold(&mut self, events: &[Event]) {
        let meta = CommitMeta {
            commit_id: Uuid::nil(),
            committed_at: UtcDateTime::from_millis(NOW),
            actor: Actor::system(),
            request_id: String::new(),
            call_id: String::new(),
        };
        for e in events {
            let record = self.tail.seal(&meta, Uuid::nil(), e, &[0; 32]);
            let mutations = apply(&self.state, &record.header, e).expect("decided events must fold");
            self.state.apply(mutations);
        }
    }

    fn report(&mut self, reports: Vec<UsageReport>) -> UsagePlan {
        let plan = ReportUsage { reports }.plan(&self.state).unwrap();
        self.fold(&plan.events);
        plan
    }

    fn domain(&mut self, name: &str) -> ObjectId {
        let events = self
            .run(Command::CreateDomain(CreateDomain {
                name: name.parse().unwrap(),
                description: None,
                member_tenant_id: None,
                settings: Default::default(),
            }))
            .unwrap();
        match &events[0] {
            Event::DomainCreated(e) => e.domain_id,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn account(&mut self, create: CreateAccount) -> Result<ObjectId, Rejection> {
        let events = self.run(Command::CreateAccount(create))?;
        match &events[0] {
            Event::AccountCreated(e) => Ok(e.account_id),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn get(&self, id: ObjectId) -> AccountState {
        state::account(&self.state, id).unwrap().expect("account exists")
    }
}

fn user(name: &str, domain: ObjectId) -> CreateAccount {
    CreateAccount::user(name.parse().unwrap(), domain)
}

fn group(name: &str, domain: ObjectId) -> CreateAccount {
    CreateAccount::group(name.parse().unwrap(), domain)
}

fn alias(name: &str, domain: ObjectId) -> AliasSpec {
    AliasSpec { name: name.parse().unwrap(), domain_id: domain, enabled: true, description: None }
}

fn app_password(description: &str) -> NewCredential {
    NewCredential {
        kind: CredentialKind::AppPassword,
        description: Some(description.into()),
        secret_hash: format!("blake3:{}", "ab".repeat(32)).parse().unwrap(),
        expires_at: None,
        allowed_ips: vec![],
        permissions: Some(CredentialPermissions::Inherit),
        otp_enabled: false,
        otp_auth_sealed: None,
    }
}

#[test]
fn create_account_derives_address_and_emits_fine_grained_events() {
    let mut w = World::new();
    let d = w.domain("example.org");
    let g = w.account(group("staff", d)).unwrap();
    let mut alice = user("Alice", d);
    alice.aliases = vec![alias("al", d)];
    alice.credentials = vec![app_password("phone")];
    alice.member_group_ids = vec![g];
    let events = w.run(Command::CreateAccount(alice)).unwrap();
    let types: Vec<_> = events.iter().map(Event::type_name).collect();
    assert_eq!(types, ["AccountCreated", "AliasAdded", "CredentialAdded", "GroupMembershipChanged"]);
    let Event::AccountCreated(created) = &events[0] else { unreachable!() };
    assert_eq!(created.email_address, "alice@example.org");
    assert_eq!(created.created_at, UtcDateTime::from_millis(NOW));
    let a = w.get(created.account_id);
    assert_eq!(a.member_group_ids, vec![g]);
    assert_eq!(state::address_owner(&w.state, "AL@example.org").unwrap().map(|o| o.0), Some(a.id));
    assert!(state::group_has_members(&w.state, g).unwrap());
}

#[test]
fn taken_address_is_already_exists_with_the_holder() {
    let mut w = World::new();
    let d = w.domain("example.org");
    let mut bob = user("bob", d);
    bob.aliases = vec![alias("postmaster", d)];
    let bob_id = w.account(bob).unwrap();
    for name in ["BOB", "postmaster"] {
        match w.account(user(name, d)) {
            Err(Rejection::AlreadyExists { existing_id, .. }) => assert_eq!(existing_id, bob_id),
            other => panic!("{name}: expected alreadyExists, got {other:?}"),
        }
    }
}

#[test]
fn references_must_exist_and_have_the_right_type() {
    let mut w = World::new();
    let d = w.domain("example.org");
    let carol = w.account(user("carol", d)).unwrap();
    let missing = ObjectId(999);
    let err = w.account(user("x", missing)).unwrap_err();
    assert!(
        matches!(&err, Rejection::InvalidForeignKey { property, object: ObjectType::Domain, id, .. }
            if property == "domainId" && id == &missing.to_jmap()),
        "{err:?}"
    );
    let mut dave = user("dave", d);
    dave.member_group_ids = vec![carol];
    let err = w.account(dave).unwrap_err();
    assert!(matches!(&err, Rejection::InvalidForeignKey { property, .. } if property == "memberGroupIds/0"), "{err:?}");
    let mut admin_group = group("admins", d);
    admin_group.roles = Roles::Admin;
    assert!(matches!(w.account(admin_group), Err(Rejection::InvalidProperties { .. })));
}

#[test]
fn domain_with_accounts_cannot_be_destroyed() {
    let mut w = World::new();
    let d = w.domain("example.org");
    let other = w.domain("example.net");
    let mut erin = user("erin", d);
    erin.aliases = vec![alias("erin", other)];
    let erin_id = w.account(erin).unwrap();
    for domain in [d, other] {
        assert!(matches!(
            w.run(Command::DestroyDomain(DestroyDomain { id: domain })),
            Err(Rejection::Linked { linked, .. }) if linked == vec![(ObjectType::Account, erin_id)]
        ));
    }
    w.run(Command::DestroyAccount(DestroyAccount { id: erin_id })).unwrap();
    w.run(Command::DestroyDomain(DestroyDomain { id: other })).unwrap();
    assert!(state::domain(&w.state, other).unwrap().is_none());
    assert!(state::address_owner(&w.state, "erin@example.org").unwrap().is_none(), "address freed");
}

#[test]
fn update_names_what_changed() {
    let mut w = World::new();
    let d = w.domain("example.org");
    let mut frank = user("frank", d);
    frank.aliases = vec![alias("f", d), alias("sales", d)];
    let id = w.account(frank).unwrap();
    let update = UpdateAccount {
        id,
        name: Some("franklin".parse().unwrap()),
        description: Some(Some("Sales lead".into())),
        aliases: Some(vec![alias("fr", d), AliasSpec { enabled: false, ..alias("sales", d) }]),
        quotas: Some([(QuotaKind::MaxDiskQuota, 1_000_000)].into()),
        ..Default::default()
    };
    let events = w.run(Command::UpdateAccount(update)).unwrap();
    let types: Vec<_> = events.iter().map(Event::type_name).collect();
    assert_eq!(types, ["AccountRenamed", "AccountUpdated", "QuotaLimitSet", "AliasRenamed", "AliasUpdated"]);
    let a = w.get(id);
    assert_eq!(a.email_address, "franklin@example.org");
    assert_eq!(a.aliases[0].email_address, "fr@example.org");
    assert!(!a.aliases[1].enabled);
    assert!(state::address_owner(&w.state, "frank@example.org").unwrap().is_none());
    assert!(state::address_owner(&w.state, "f@example.org").unwrap().is_none());
    let noop = UpdateAccount { id, description: Some(Some("Sales lead".into())), ..Default::default() };
    assert_eq!(w.run(Command::UpdateAccount(noop)).unwrap(), vec![], "no-op updates record nothing");
}

#[test]
fn credential_rules_and_quota_counts() {
    let mut w = World::new();
    let d = w.domain("example.org");
    let mut gina = user("gina", d);
    gina.quotas = [(QuotaKind::MaxAppPasswords, 1)].into();
    gina.credentials = vec![app_password("a"), app_password("b")];
    assert!(matches!(w.account(gina.clone()), Err(Rejection::OverQuota { .. })));
    gina.credentials = vec![app_password("a")];
    let id = w.account(gina).unwrap();
    let cred = w.get(id).credentials[0].id;
    let update = UpdateAccount {
        id,
        credentials: Some(vec![
            CredentialSpec::Keep(CredentialChange {
                id: cred,
                description: Some(Some("laptop".into())),
                ..Default::default()
            }),
            CredentialSpec::Add(NewCredential {
                permissions: None,
                description: None,
                kind: CredentialKind::Password,
                ..app_password("")
            }),
        ]),
        ..Default::default()
    };
    let events = w.run(Command::UpdateAccount(update)).unwrap();
    let types: Vec<_> = events.iter().map(Event::type_name).collect();
    assert_eq!(types, ["CredentialUpdated", "CredentialAdded"]);
    let removal = UpdateAccount { id, credentials: Some(vec![]), ..Default::default() };
    let events = w.run(Command::UpdateAccount(removal)).unwrap();
    assert_eq!(events.len(), 2);
    assert!(w.get(id).credentials.is_empty());
}

#[test]
fn destroying_a_group_records_each_member_leaving() {
    let mut w = World::new();
    let d = w.domain("example.org");
    let g = w.account(group("team", d)).unwrap();
    let mut members = Vec::new();
    for name in ["h1", "h2"] {
        let mut u = user(name, d);
        u.member_group_ids = vec![g];
        members.push(w.account(u).unwrap());
    }
    let events = w.run(Command::DestroyAccount(DestroyAccount { id: g })).unwrap();
    let types: Vec<_> = events.iter().map(Event::type_name).collect();
    assert_eq!(types, ["GroupMembershipChanged", "GroupMembershipChanged", "AccountDestroyed"]);
    for m in members {
        assert!(w.get(m).member_group_ids.is_empty());
    }
}

#[test]
fn ids_are_allocated_from_state_and_never_reused() {
    let mut w = World::new();
    let d = w.domain("example.org");
    let a = w.account(user("i1", d)).unwrap();
    w.run(Command::DestroyAccount(DestroyAccount { id: a })).unwrap();
    let b = w.account(user("i1", d)).unwrap();
    assert!(b > a, "{b} must be newer than {a}");
}

fn usage(account_id: ObjectId, quota: QuotaKind, change: UsageChange) -> UsageReport {
    UsageReport { account_id, quota, change, enforce: false }
}

#[test]
fn usage_reports_coalesce_to_one_event_per_account_and_kind() {
    let mut w = World::new();
    let d = w.domain("example.org");
    let (a, b) = (w.account(user("ann", d)).unwrap(), w.account(user("bob", d)).unwrap());
    let disk = QuotaKind::MaxDiskQuota;
    let plan = w.report(vec![
        usage(a, disk, UsageChange::Delta(100)),
        usage(b, QuotaKind::MaxEmails, UsageChange::Delta(3)),
        usage(a, disk, UsageChange::Delta(-30)),
        usage(a, disk, UsageChange::Delta(5)),
    ]);
    let used: Vec<u64> = plan.outcomes.iter().map(|o| o.as_ref().unwrap().used).collect();
    assert_eq!(used, [100, 3, 70, 75], "each report answers with the running total");
    assert_eq!(plan.events.len(), 2, "one event per (account, kind): {:?}", plan.events);
    assert_eq!(w.get(a).used_disk_quota(), 75);
    assert_eq!(w.get(b).usage[&QuotaKind::MaxEmails], 3);

    // An absolute report resets the running total; later deltas build on it.
    let plan = w.report(vec![usage(a, disk, UsageChange::Used(1000)), usage(a, disk, UsageChange::Delta(1))]);
    assert_eq!(
        plan.events,
        vec![Event::QuotaUsageChanged(ledger_events::QuotaUsageChanged {
            account_id: a,
            quota: disk,
            old: 75,
            new: 1001,
        })]
    );
    // Usage never goes below zero, and a batch that nets to nothing records nothing.
    assert_eq!(w.report(vec![usage(a, disk, UsageChange::Delta(-5000))]).outcomes[0].as_ref().unwrap().used, 0);
    let plan = w.report(vec![usage(a, disk, UsageChange::Delta(10)), usage(a, disk, UsageChange::Delta(-10))]);
    assert!(plan.events.is_empty());
    let missing = ObjectId(999);
    let plan = w.report(vec![usage(missing, disk, UsageChange::Delta(1))]);
    assert!(matches!(plan.outcomes[0], Err(Rejection::NotFound { .. })));
}

#[test]
fn usage_past_the_limit_is_flagged_once_or_refused_when_enforced() {
    let mut w = World::new();
    let d = w.domain("example.org");
    let mut create = user("cat", d);
    create.quotas = [(QuotaKind::MaxDiskQuota, 1000)].into();
    let c = w.account(create).unwrap();
    let disk = QuotaKind::MaxDiskQuota;
    let plan = w.report(vec![usage(c, disk, UsageChange::Delta(900))]);
    assert!(!plan.outcomes[0].as_ref().unwrap().exceeded());
    assert_eq!(plan.events.len(), 1);

    // A store that asks first is refused; nothing is recorded for it.
    let plan = w.report(vec![UsageReport { enforce: true, ..usage(c, disk, UsageChange::Delta(200)) }]);
    assert!(matches!(plan.outcomes[0], Err(Rejection::OverQuota { .. })), "{:?}", plan.outcomes);
    assert!(plan.events.is_empty());
    assert_eq!(w.get(c).used_disk_quota(), 900);

    // A store reporting after the fact is recorded, and the crossing is flagged once.
    let plan = w.report(vec![usage(c, disk, UsageChange::Delta(200))]);
    let accepted = plan.outcomes[0].as_ref().unwrap();
    assert_eq!((accepted.used, accepted.limit, accepted.exceeded()), (1100, Some(1000), true));
    let types: Vec<_> = plan.events.iter().map(Event::type_name).collect();
    assert_eq!(types, ["QuotaUsageChanged", "QuotaExceeded"]);
    let plan = w.report(vec![usage(c, disk, UsageChange::Delta(50))]);
    let types: Vec<_> = plan.events.iter().map(Event::type_name).collect();
    assert_eq!(types, ["QuotaUsageChanged"], "still over: no second QuotaExceeded");

    // Shrinking is always allowed, even enforced and still over the limit.
    let plan = w.report(vec![UsageReport { enforce: true, ..usage(c, disk, UsageChange::Delta(-100)) }]);
    assert_eq!(plan.outcomes[0].as_ref().unwrap().used, 1050);
}
