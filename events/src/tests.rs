//! Round trips of the codec and the log, and tamper detection of the chain.

use proptest::prelude::*;
use uuid::Uuid;

use crate::codec::{self, decode_header, encode_header};
use crate::model::Change;
use crate::values::{ObjectId, UtcDateTime};
use crate::{
    AccountUpdated, Actor, AuthMethod, ChainError, ChainFault, ChainTail, ChainVerifier, CommitMeta, DomainCreated,
    Event, EventLog, Record,
};

fn meta(n: u64) -> CommitMeta {
    CommitMeta {
        commit_id: Uuid::from_u128(0xC000 + n as u128),
        committed_at: UtcDateTime::from_millis(1_790_000_000_000 + n as i64),
        actor: Actor { principal_id: "b".into(), name: "admin".into(), auth_method: AuthMethod::Fallback },
        request_id: format!("req-{n}"),
        call_id: "c1".into(),
    }
}

fn sample_event(n: u64) -> Event {
    if n.is_multiple_of(2) {
        Event::DomainCreated(DomainCreated {
            domain_id: ObjectId(n + 1),
            name: format!("d{n}.example.org").parse().unwrap(),
            description: Some(format!("domain number {n}")),
            created_at: UtcDateTime::from_millis(1_790_000_000_000),
            member_tenant_id: None,
            settings: None,
        })
    } else {
        Event::AccountUpdated(AccountUpdated {
            account_id: ObjectId(n),
            description: Change::between(None, Some("x".into())),
            ..Default::default()
        })
    }
}

fn chain_of(n: u64) -> Vec<Record> {
    let mut tail = ChainTail::GENESIS;
    (0..n).map(|i| tail.seal(&meta(i), Uuid::from_u128(i as u128), &sample_event(i), &[i as u8; 32])).collect()
}

const ARGON: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

fn credential_added() -> Event {
    Event::CredentialAdded(crate::CredentialAdded {
        account_id: ObjectId(7),
        credential_id: ObjectId(1),
        kind: crate::model::CredentialKind::Password,
        description: None,
        secret_hash: ARGON.parse().unwrap(),
        expires_at: None,
        allowed_ips: Default::default(),
        permissions: None,
        otp_enabled: true,
        created_at: UtcDateTime::from_millis(1_790_000_000_000),
        otp_auth_sealed: Some("xc1:00112233".into()),
    })
}

fn raw(records: &[Record]) -> Vec<(Vec<u8>, Vec<u8>)> {
    records.iter().map(|r| (encode_header(&r.header), codec::encode_payload(r.payload.as_ref().unwrap()))).collect()
}

/// Verifies stored (header bytes, payload bytes) pairs as the log would.
fn verify_raw(records: &[(Vec<u8>, Vec<u8>)]) -> Result<(), ChainError> {
    let mut v = ChainVerifier::from_genesis();
    for (i, (header, payload)) in records.iter().enumerate() {
        v.check_raw(i as u64 + 1, header, Some(payload))?;
    }
    Ok(())
}

#[test]
fn header_encoding_round_trips() {
    for record in chain_of(5) {
        let bytes = encode_header(&record.header);
        assert_eq!(decode_header(&bytes).unwrap(), record.header);
        assert_eq!(
            record.event().unwrap().unwrap(),
            sample_event(record.seq() - 1),
            "payload decodes to the sealed event"
        );
    }
}

#[test]
fn sealed_chain_verifies_and_links() {
    let records = chain_of(10);
    let mut v = ChainVerifier::from_genesis();
    for r in &records {
        v.check(&r.header, r.payload.as_ref()).unwrap();
    }
    assert_eq!(v.tail().next_seq, 11);
    assert_eq!(records[3].header.prev_hash, records[2].header.hash);
    assert_eq!(records[0].header.prev_hash, crate::Digest::ZERO);
}

#[test]
fn erased_payload_keeps_chain_valid_but_edited_payload_does_not() {
    let records = chain_of(3);
    let mut v = ChainVerifier::from_genesis();
    v.check(&records[0].header, None).unwrap();
    let Some(crate::Payload::V2 { salt, .. }) = records[1].payload.clone() else { panic!("format 2") };
    let edited = crate::Payload::V2 { salt, body: b"{}".to_vec(), sealed: Vec::new() };
    let err = v.check(&records[1].header, Some(&edited)).unwrap_err();
    assert_eq!(err, ChainError { seq: 2, fault: ChainFault::PayloadMismatch });
}

/// Format 2 keeps secrets beside the body: the body (what exports and the feed
/// show, and the payload hash covers) holds only salted commitments, and the
/// event decodes whole from both parts.
#[test]
fn secrets_are_kept_beside_the_body_and_committed_to() {
    let event = credential_added();
    let record = { ChainTail::GENESIS }.seal(&meta(0), Uuid::nil(), &event, &[9; 32]);
    let Some(crate::Payload::V2 { salt, body, sealed }) = record.payload.clone() else { panic!("format 2") };
    let body_text = String::from_utf8(body.clone()).unwrap();
    assert!(!body_text.contains("argon2") && !body_text.contains("xc1:"), "{body_text}");
    assert!(body_text.contains("\"secretCommitment\"") && body_text.contains("\"otpAuthCommitment\""), "{body_text}");
    assert!(String::from_utf8(sealed.clone()).unwrap().contains(ARGON));
    assert_eq!(record.event().unwrap().unwrap(), event);
    assert_eq!(record.header.schema_version, 3);
    let mut v = ChainVerifier::from_genesis();
    v.check(&record.header, record.payload.as_ref()).unwrap();

    // Another secret beside the same body is caught by the chain check.
    let swapped = String::from_utf8(sealed).unwrap().replace("aGFzaGhh", "aGFzaGhi").into_bytes();
    let forged = crate::Payload::V2 { salt, body, sealed: swapped };
    let err = ChainVerifier::from_genesis().check(&record.header, Some(&forged)).unwrap_err();
    assert_eq!(err.fault, ChainFault::PayloadMismatch);
    assert_eq!(codec::decode_event("CredentialAdded", 3, &forged).unwrap_err(), crate::CodecError::SealedMismatch);
}

/// The same event sealed twice gets two unrelated payload hashes and
/// commitments: nothing in a header is a function of the payload alone.
#[test]
fn payload_hashes_and_commitments_are_salted() {
    let a = { ChainTail::GENESIS }.seal(&meta(0), Uuid::nil(), &credential_added(), &[1; 32]);
    let b = { ChainTail::GENESIS }.seal(&meta(0), Uuid::nil(), &credential_added(), &[2; 32]);
    assert_ne!(a.header.payload_hash, b.header.payload_hash);
    assert_ne!(a.payload.as_ref().unwrap().body(), b.payload.as_ref().unwrap().body());
    assert_eq!(a.header.payload_len, None, "format 2 keeps no payload length");
    assert_ne!(a.header.payload_hash, codec::payload_hash_v1(a.payload.as_ref().unwrap().body()));
}

/// Format 1 records (written before format 2) still decode, re-encode to the
/// same bytes and verify.
#[test]
fn format_1_records_still_read() {
    let body = br#"{"domainId":"c","name":"old.example.org","description":null,"createdAt":"2026-01-01T00:00:00Z"}"#;
    let mut header = crate::RecordHeader {
        format: 1,
        seq: 1,
        event_id: Uuid::nil(),
        commit: meta(0),
        event_type: "DomainCreated".into(),
        schema_version: 1,
        payload_len: Some(body.len() as u32),
        payload_hash: codec::payload_hash_v1(body),
        prev_hash: crate::Digest::ZERO,
        hash: crate::Digest::ZERO,
    };
    header.hash = codec::record_hash(&header);
    let bytes = encode_header(&header);
    assert_eq!(bytes[0], 1);
    assert_eq!(decode_header(&bytes).unwrap(), header);
    let stored = codec::encode_payload(&crate::Payload::V1(body.to_vec()));
    assert_eq!(stored, body.to_vec(), "format 1 stores the JSON as is");
    let mut v = ChainVerifier::from_genesis();
    let checked = v.check_raw(1, &bytes, Some(&stored)).unwrap();
    let record = Record { header: checked, payload: Some(codec::decode_payload(1, &stored).unwrap()) };
    assert!(matches!(record.event(), Some(Ok(Event::DomainCreated(_)))));
}

#[test]
fn removed_and_reordered_records_are_reported_at_their_position() {
    let raw = raw(&chain_of(6));
    let mut removed = raw.clone();
    removed.remove(3);
    let err = verify_raw(&removed).unwrap_err();
    assert_eq!(err.seq, 4);
    assert!(matches!(err.fault, ChainFault::OutOfSequence { expected: 4, found: 5 }));

    let mut swapped = raw.clone();
    swapped.swap(1, 2);
    assert_eq!(verify_raw(&swapped).unwrap_err().seq, 2);
}

#[test]
fn unknown_schema_versions_and_types_are_refused() {
    let (ty, _, payload) = codec::seal_event(&sample_event(0), &[0; 32]);
    assert!(matches!(
        codec::decode_event(ty, 4, &payload),
        Err(crate::CodecError::UnknownSchemaVersion { version: 4, .. })
    ));
    assert!(matches!(
        codec::decode_event("CredentialAdded", 4, &payload),
        Err(crate::CodecError::UnknownSchemaVersion { version: 4, .. })
    ));
    assert!(matches!(
        codec::decode_event("AccountTeleported", 1, &payload),
        Err(crate::CodecError::UnknownEventType(_))
    ));
}

#[test]
fn every_event_type_has_a_distinct_name() {
    let mut names = Event::TYPE_NAMES.to_vec();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), Event::TYPE_NAMES.len());
    assert!(names.contains(&"QuotaUsageChanged"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Flipping any bit of any record, header or payload, is detected, and the
    /// report names that record's position.
    #[test]
    fn any_flipped_bit_is_detected(record in 0usize..8, offset in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut raw = raw(&chain_of(8));
        let (header, payload) = &mut raw[record];
        let total = header.len() + payload.len();
        let at = offset.index(total);
        if at < header.len() { header[at] ^= 1 << bit } else { payload[at - header.len()] ^= 1 << bit }
        let err = verify_raw(&raw).expect_err("tampering must be detected");
        // A flipped position field may make the record claim another position;
        // the report still points at the record where the chain breaks.
        prop_assert_eq!(err.seq, record as u64 + 1, "{}", err);
    }
}

#[test]
fn log_append_and_read_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let db = fjall::Database::builder(dir.path()).open().unwrap();
    let log = EventLog::open(&db, dir.path()).unwrap();
    let records = chain_of(20);
    let mut batch = db.batch();
    for r in &records {
        log.stage(&mut batch, r);
    }
    batch.commit().unwrap();
    let snap = db.snapshot();
    assert_eq!(log.last_seq(&snap).unwrap(), 20);
    assert_eq!(log.read(&snap, 7).unwrap().as_ref(), Some(&records[6]));
    let scanned: Vec<_> = log.scan(&snap, 15).map(Result::unwrap).collect();
    assert_eq!(scanned, records[14..].to_vec());
    let tail = log.check_tail(&snap, 5).unwrap();
    assert_eq!(tail, ChainTail::after(&records[19].header));
    assert_eq!(log.verify_all(&snap).unwrap(), (tail, 20));
}

#[test]
fn tampered_stored_record_is_reported_with_position_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = fjall::Database::builder(dir.path()).open().unwrap();
    let log = EventLog::open(&db, dir.path()).unwrap();
    let mut records = chain_of(4);
    let mut batch = db.batch();
    let Some(crate::Payload::V2 { salt, sealed, .. }) = records[2].payload.clone() else { panic!("format 2") };
    let body =
        br#"{"domainId":"c","name":"evil.example.org","description":null,"createdAt":"2026-01-01T00:00:00Z"}"#.to_vec();
    records[2].payload = Some(crate::Payload::V2 { salt, body, sealed });
    for r in &records {
        log.stage(&mut batch, r);
    }
    batch.commit().unwrap();
    let err = log.check_tail(&db.snapshot(), 100).unwrap_err().to_string();
    assert!(err.contains("position 3"), "{err}");
    assert!(err.contains(crate::HEADERS_KEYSPACE), "{err}");
}

#[test]
fn a_commit_message_round_trips_and_refuses_damage() {
    let mut records = chain_of(4);
    records[1].payload = None; // an erased payload travels without it
    let bytes = codec::encode_commit(&records);
    assert_eq!(codec::decode_commit(&bytes).unwrap(), records);
    assert_eq!(codec::decode_commit(&codec::encode_commit(&[])).unwrap(), Vec::<Record>::new());
    // Every cut of the message is refused, never a panic or a shorter commit.
    for cut in 0..bytes.len() {
        assert!(codec::decode_commit(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(codec::decode_commit(&longer), Err(codec::CodecError::TrailingBytes(1)));
    let mut other_format = bytes.clone();
    other_format[0] = 9;
    assert!(matches!(codec::decode_commit(&other_format), Err(codec::CodecError::BadValue(_))));
    // A count far beyond the bytes is refused without reserving for it.
    let mut huge = bytes;
    huge[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(codec::decode_commit(&huge), Err(codec::CodecError::Truncated));
}

#[test]
fn the_merkle_tree_follows_the_log_in_steps_and_is_rebuilt_when_it_does_not_match() {
    use crate::merkle::{self, CompactRange};
    let dir = tempfile::tempdir().unwrap();
    let db = fjall::Database::builder(dir.path()).open().unwrap();
    let log = EventLog::open(&db, dir.path()).unwrap();
    let tree = crate::MerkleTree::open(&db).unwrap();
    let records = chain_of(40);
    let stage = |range: std::ops::Range<usize>| {
        let mut batch = db.batch();
        for r in &records[range] {
            log.stage(&mut batch, r);
        }
        batch.commit().unwrap();
    };
    stage(0..25);
    assert_eq!(tree.extend(&db, &log, 20).unwrap(), crate::Extended { size: 20, rebuilt: false });
    stage(25..40);
    assert_eq!(tree.extend(&db, &log, 40).unwrap(), crate::Extended { size: 40, rebuilt: false });
    let leaves: Vec<_> = records.iter().map(|r| merkle::leaf_hash(&r.header.hash.0)).collect();
    let snap = db.snapshot();
    let view = tree.view(&snap);
    let mut range = CompactRange::new();
    for n in 1..=40u64 {
        range.append(leaves[n as usize - 1], |_, _, _| {});
        let root = merkle::root(&view, n).unwrap();
        assert_eq!(root, range.root(), "root at {n}");
        for i in 0..n {
            let proof = merkle::inclusion_proof(&view, i, n).unwrap();
            merkle::verify_inclusion(i, n, &leaves[i as usize], &proof, &root).unwrap();
        }
    }
    // A tree that is not the log's (another log's leaf at its end) is rebuilt.
    let other = chain_of(41);
    let dir2 = tempfile::tempdir().unwrap();
    let db2 = fjall::Database::builder(dir2.path()).open().unwrap();
    let log2 = EventLog::open(&db2, dir2.path()).unwrap();
    let tree2 = crate::MerkleTree::open(&db2).unwrap();
    let mut batch = db2.batch();
    for r in &records[..10] {
        log2.stage(&mut batch, r);
    }
    batch.commit().unwrap();
    tree2.extend(&db2, &log2, 10).unwrap();
    let mut batch = db2.batch();
    batch.insert(tree2.keyspace(), [0u8, 0, 0, 0, 0, 0, 0, 0, 9], merkle::leaf_hash(&other[40].header.hash.0).to_vec());
    batch.commit().unwrap();
    assert_eq!(tree2.extend(&db2, &log2, 10).unwrap(), crate::Extended { size: 10, rebuilt: true });
    let snap2 = db2.snapshot();
    assert_eq!(merkle::root(&tree2.view(&snap2), 10).unwrap(), merkle::root(&view, 10).unwrap());
}
