//! Wire formats that must never change once shipped: every event payload, and the
//! binary record header. A diff here means a new schema version is needed.

use std::collections::BTreeMap;

use ledger_events::codec::{self, encode_header};
use ledger_events::model::*;
use ledger_events::values::{ObjectId, UtcDateTime};
use ledger_events::*;
use uuid::Uuid;

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}

fn at() -> UtcDateTime {
    "2026-11-22T09:30:00Z".parse().unwrap()
}

fn hash() -> values::SecretHash {
    format!("blake3:{}", "0f".repeat(32)).parse().unwrap()
}

fn one_of_each() -> Vec<Event> {
    let (acct, dom, cred, grp) = (ObjectId(40), ObjectId(2), ObjectId(41), ObjectId(7));
    let name = |s: &str| s.parse().unwrap();
    let perms = Permissions::Merge(PermissionsList {
        enabled_permissions: vec!["sysAccountGet".parse().unwrap()],
        disabled_permissions: vec!["sysAccountDestroy".parse().unwrap()],
    });
    vec![
        AccountCreated {
            account_id: acct,
            kind: AccountKind::User,
            name: name("alice"),
            domain_id: dom,
            email_address: "alice@example.org".into(),
            description: Some("Example".into()),
            locale: "en_US".parse().unwrap(),
            time_zone: Some("Africa/Abidjan".parse().unwrap()),
            member_tenant_id: Some("t1".parse().unwrap()),
            roles: Roles::User,
            permissions: Permissions::Inherit,
            quotas: [(QuotaKind::MaxDiskQuota, 1 << 30)].into(),
            encryption_at_rest: Some(EncryptionAtRest::Disabled),
            created_at: at(),
        }
        .into(),
        AccountUpdated {
            account_id: acct,
            description: Change::between(Some("Example".into()), Some("Updated".into())),
            locale: Change::between("en_US".parse().unwrap(), "de_DE".parse().unwrap()),
            ..Default::default()
        }
        .into(),
        AccountRenamed {
            account_id: acct,
            old_name: name("alice"),
            new_name: name("alice.smith"),
            old_domain_id: dom,
            new_domain_id: dom,
            old_email_address: "alice@example.org".into(),
            new_email_address: "alice.smith@example.org".into(),
        }
        .into(),
        AccountDestroyed { account_id: acct, kind: AccountKind::User, email_address: "alice.smith@example.org".into() }
            .into(),
        CredentialAdded {
            account_id: acct,
            credential_id: cred,
            kind: CredentialKind::ApiKey,
            description: Some("deploy bot".into()),
            secret_hash: hash(),
            expires_at: Some("2027-01-01T00:00:00Z".parse().unwrap()),
            allowed_ips: vec!["192.0.2.0/24".parse().unwrap()],
            permissions: Some(CredentialPermissions::Replace(CredentialPermissionsList {
                permissions: vec!["sysAccountQuery".parse().unwrap()],
            })),
            otp_enabled: false,
            created_at: at(),
            otp_auth_sealed: None,
        }
        .into(),
        CredentialRemoved {
            account_id: acct,
            credential_id: cred,
            kind: CredentialKind::ApiKey,
            reason: RemovalReason::Expired,
        }
        .into(),
        CredentialUpdated {
            account_id: acct,
            credential_id: cred,
            new_secret_hash: Some(hash()),
            description: None,
            expires_at: Change::between(None, Some(at())),
            allowed_ips: None,
            permissions: None,
            otp_enabled: Change::between(false, true),
            new_otp_auth_sealed: Some("xc1:00112233".into()),
        }
        .into(),
        AliasAdded {
            account_id: acct,
            name: name("info"),
            domain_id: dom,
            email_address: "info@example.org".into(),
            enabled: true,
            description: None,
        }
        .into(),
        AliasRenamed {
            account_id: acct,
            old_name: name("info"),
            old_domain_id: dom,
            old_email_address: "info@example.org".into(),
            new_name: name("hello"),
            new_domain_id: dom,
            new_email_address: "hello@example.org".into(),
        }
        .into(),
        AliasUpdated {
            account_id: acct,
            email_address: "hello@example.org".into(),
            enabled: Change::between(true, false),
            description: None,
        }
        .into(),
        AliasRemoved {
            account_id: acct,
            name: name("hello"),
            domain_id: dom,
            email_address: "hello@example.org".into(),
        }
        .into(),
        GroupMembershipChanged { account_id: acct, joined: vec![grp], left: vec![ObjectId(8)] }.into(),
        RolesChanged {
            account_id: acct,
            old: Roles::User,
            new: Roles::Custom { role_ids: vec!["r1".parse().unwrap()] },
        }
        .into(),
        PermissionsChanged { account_id: acct, old: Permissions::Inherit, new: perms }.into(),
        QuotaLimitSet { account_id: acct, quota: QuotaKind::MaxAppPasswords, old: None, new: Some(5) }.into(),
        QuotaUsageChanged { account_id: acct, quota: QuotaKind::MaxDiskQuota, old: 1024, new: 4096 }.into(),
        QuotaExceeded { account_id: acct, quota: QuotaKind::MaxDiskQuota, used: 4096, limit: 4000 }.into(),
        DomainCreated {
            domain_id: dom,
            name: "example.org".parse().unwrap(),
            description: None,
            created_at: at(),
            member_tenant_id: Some("t1".parse().unwrap()),
            settings: Some(Box::new(DomainSettings {
                aliases: vec!["example.net".parse().unwrap()],
                catch_all_address: Some("postmaster@example.org".into()),
                dkim_management: DkimManagement::Automatic(serde_json::from_value(serde_json::json!({})).unwrap()),
                ..DomainSettings::default()
            })),
        }
        .into(),
        DomainUpdated {
            domain_id: dom,
            description: Change::between(None, Some("primary".into())),
            member_tenant_id: Change::between(Some("t1".parse().unwrap()), None),
            settings: Change::between(
                DomainSettings::default(),
                DomainSettings { is_enabled: false, ..DomainSettings::default() },
            )
            .map(Box::new),
        }
        .into(),
        DomainDestroyed { domain_id: dom, name: "example.org".parse().unwrap() }.into(),
        RoleCreated {
            role_id: ObjectId(9),
            name: None,
            description: Some("Resets passwords".into()),
            permissions: vec!["sysAccountGet".parse().unwrap(), "sysAccountUpdate".parse().unwrap()],
            disabled_permissions: vec!["sysAccountDestroy".parse().unwrap()],
            role_ids: vec![ObjectId(8)],
            member_tenant_id: Some("t1".parse().unwrap()),
        }
        .into(),
        RoleUpdated {
            role_id: ObjectId(9),
            name: None,
            description: None,
            permissions: Change::between(vec![], vec!["sysAccountQuery".parse().unwrap()]),
            disabled_permissions: Change::between(vec!["sysAccountDestroy".parse().unwrap()], vec![]),
            role_ids: Change::between(vec![ObjectId(8)], vec![]),
            member_tenant_id: Change::between(Some("t1".parse().unwrap()), None),
        }
        .into(),
        RoleDestroyed { role_id: ObjectId(9), name: "helpdesk".into() }.into(),
        TenantCreated {
            tenant_id: ObjectId(11),
            name: "Acme".into(),
            logo: None,
            roles: Roles::Custom { role_ids: vec!["j".parse().unwrap()] },
            permissions: Permissions::Merge(PermissionsList {
                enabled_permissions: vec![],
                disabled_permissions: vec!["sysDomainCreate".parse().unwrap()],
            }),
            quotas: [(TenantQuotaKind::MaxAccounts, 100)].into(),
            created_at: "2026-11-30T12:00:00Z".parse().unwrap(),
        }
        .into(),
        TenantUpdated {
            tenant_id: ObjectId(11),
            name: Change::between("Acme".to_owned(), "Acme Corp".to_owned()),
            logo: Change::between(None, Some("https://acme.example/logo.png".into())),
            roles: None,
            permissions: None,
            quotas: Change::between([(TenantQuotaKind::MaxAccounts, 100)].into(), [].into()),
        }
        .into(),
        TenantDestroyed { tenant_id: ObjectId(11), name: "Acme Corp".into() }.into(),
        AccountErased {
            account_id: acct,
            erased: vec![ErasedRecord {
                position: 12,
                change: "created".into(),
                commit_id: "01900000-0000-7000-8000-000000000001".into(),
            }],
            max_allocated_id: ObjectId(41),
        }
        .into(),
        ChangesTrimmed { before: 1200 }.into(),
    ]
}

#[test]
fn every_event_payload_format() {
    let events = one_of_each();
    let covered: Vec<_> = events.iter().map(Event::type_name).collect();
    assert_eq!(covered, Event::TYPE_NAMES, "one sample per event type, in catalogue order");
    let mut payloads = BTreeMap::new();
    for event in &events {
        let (ty, version, payload) = codec::seal_event(event, &[0; 32]);
        let decoded = codec::decode_event(ty, version, &payload).unwrap();
        assert_eq!(&decoded, event, "{ty} round-trips");
        let json: serde_json::Value = serde_json::from_slice(payload.body()).unwrap();
        payloads.insert(format!("{ty} v{version}"), json);
        if let ledger_events::Payload::V2 { sealed, .. } = &payload
            && !sealed.is_empty()
        {
            let sealed: serde_json::Value = serde_json::from_slice(sealed).unwrap();
            payloads.insert(format!("{ty} v{version} (kept beside the body)"), sealed);
        }
    }
    settings().bind(|| insta::assert_json_snapshot!("event_payloads", payloads));
}

#[test]
fn record_header_binary_format() {
    let meta = CommitMeta {
        commit_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
        committed_at: at(),
        actor: Actor { principal_id: "b".into(), name: "admin".into(), auth_method: AuthMethod::Password },
        request_id: "r-1".into(),
        call_id: "c1".into(),
    };
    let mut tail = ChainTail::GENESIS;
    let sample = |name: &str| one_of_each().into_iter().find(|e| e.type_name() == name).unwrap();
    let first = tail.seal(&meta, Uuid::from_u128(1), &sample("DomainCreated"), &[1; 32]);
    let second = tail.seal(&meta, Uuid::from_u128(2), &sample("DomainUpdated"), &[2; 32]);
    let dump = |r: &Record| {
        let bytes = encode_header(&r.header);
        let hex: Vec<String> = bytes.chunks(32).map(|c| c.iter().map(|b| format!("{b:02x}")).collect()).collect();
        format!("seq {} {} hash {}\n{}", r.header.seq, r.header.event_type, r.header.hash, hex.join("\n"))
    };
    settings().bind(|| insta::assert_snapshot!("record_headers", format!("{}\n\n{}", dump(&first), dump(&second))));
}

#[test]
fn version_1_credential_payloads_upcast_to_version_2() {
    let v1 = br#"{"accountId":"bi","credentialId":"bj","@type":"Password","description":null,
        "secretHash":"blake3:0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f",
        "expiresAt":null,"allowedIps":[],"permissions":null,"otpEnabled":false,"createdAt":"2026-11-22T09:30:00Z"}"#;
    let v1 = ledger_events::Payload::V1(v1.to_vec());
    let Event::CredentialAdded(e) = codec::decode_event("CredentialAdded", 1, &v1).unwrap() else { unreachable!() };
    assert_eq!(e.otp_auth_sealed, None);
    assert_eq!(e.credential_id, ObjectId::from_jmap("bj").unwrap());
    assert!(codec::decode_event("CredentialAdded", 4, &v1).is_err(), "a future version is refused");
}
