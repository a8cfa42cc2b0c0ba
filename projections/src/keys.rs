//! Key layouts of the projection keyspaces. Ids and positions are big-endian so
//! that key order is id order and log order.
//!
//! `proj_index` holds every secondary index, told apart by the first byte:
//!
//! | key                                   | value                   | for                      |
//! |---------------------------------------|-------------------------|--------------------------|
//! | `a` address                           | account id, use (0/1)   | name@domain uniqueness   |
//! | `d` domain name                       | domain id               | domain name uniqueness   |
//! | `r` domain id, account id             | –                       | domain still referenced  |
//! | `m` domain id, account id             | –                       | `domainId` filter        |
//! | `k` @type (0 User, 1 Group), id       | –                       | `@type` filter           |
//! | `l` (layout 2: role name, no more)   | –                       | –                        |
//! | `o` role id, account id               | –                       | role still in use        |
//! | `h` generated-secret digest           | account id, credential  | Bearer / app password    |
//! | `v` account id, position              | –                       | audit history (kept after the account is destroyed) |
//! | `g` group id, member id               | –                       | group membership         |
//! | `t` tenant id, 0x00, account id       | –                       | tenant filter            |
//! | `w` word, 0x00, account id            | –                       | text search              |
//! | `n` name, 0x00, account id            | –                       | name filter and sort     |
//!
//! `proj_changes`: type tag, position → [`crate::changes::ChangeEntry`] (object
//! id, change kind, commit id; encoded only there).
//! `proj_meta`: `applied_seq`, `next_id`, `state/<tag>`, `rebuilding`,
//! `format` (u16 BE, [`PROJECTION_FORMAT`]).

use ledger_events::ObjectType;
use ledger_events::model::AccountKind;
use ledger_events::values::{DomainName, ObjectId};

use crate::state::AddressUse;

pub(crate) const META_APPLIED_SEQ: &[u8] = b"applied_seq";
pub(crate) const META_NEXT_ID: &[u8] = b"next_id";
pub(crate) const META_REBUILDING: &[u8] = b"rebuilding";
/// The layout the projections were built with; another one is rebuilt from
/// the log on open.
pub(crate) const META_FORMAT: &[u8] = b"format";
/// Projection layout 3: roles in Stalwart's shape, without the name index
/// (layout 2: change entries carry the tenants of their object; layout 1,
/// with no `format` key, had none). Another layout is rebuilt on open.
pub(crate) const PROJECTION_FORMAT: u16 = 3;
/// The first position change tracking still covers (retention).
pub(crate) const META_CHANGES_FROM: &[u8] = b"changes_from";

pub(crate) const TAG_ADDRESS: u8 = b'a';
pub(crate) const TAG_DOMAIN_NAME: u8 = b'd';
pub(crate) const TAG_DOMAIN_REF: u8 = b'r';
pub(crate) const TAG_GROUP_MEMBER: u8 = b'g';
pub(crate) const TAG_TENANT: u8 = b't';
pub(crate) const TAG_WORD: u8 = b'w';
pub(crate) const TAG_NAME: u8 = b'n';
pub(crate) const TAG_PRIMARY_DOMAIN: u8 = b'm';
pub(crate) const TAG_KIND: u8 = b'k';
pub(crate) const TAG_ROLE_HOLDER: u8 = b'o';
pub(crate) const TAG_SECRET: u8 = b'h';
pub(crate) const TAG_HISTORY: u8 = b'v';

pub(crate) fn meta_type_state(t: ObjectType) -> Vec<u8> {
    let mut k = b"state/".to_vec();
    k.push(t.tag());
    k
}

fn tagged(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![tag];
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

pub(crate) fn address(address: &str) -> Vec<u8> {
    tagged(TAG_ADDRESS, &[address.as_bytes()])
}

pub(crate) fn address_value(id: ObjectId, use_: AddressUse) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.push(match use_ {
        AddressUse::Primary => 0,
        AddressUse::Alias => 1,
    });
    v
}

pub(crate) fn decode_address_value(raw: &[u8]) -> Option<(ObjectId, AddressUse)> {
    let id = decode_id(raw.get(..8)?)?;
    let use_ = match raw.get(8)? {
        0 => AddressUse::Primary,
        _ => AddressUse::Alias,
    };
    Some((id, use_))
}

pub(crate) fn decode_id(raw: &[u8]) -> Option<ObjectId> {
    Some(ObjectId(u64::from_be_bytes(raw.try_into().ok()?)))
}

/// The trailing 8-byte id of an index key.
pub(crate) fn trailing_id(key: &[u8]) -> Option<ObjectId> {
    decode_id(key.get(key.len().checked_sub(8)?..)?)
}

pub(crate) fn domain_name(name: &DomainName) -> Vec<u8> {
    tagged(TAG_DOMAIN_NAME, &[name.as_str().as_bytes()])
}

pub(crate) fn domain_refs_prefix(domain: ObjectId) -> Vec<u8> {
    tagged(TAG_DOMAIN_REF, &[&domain.to_be_bytes()])
}

pub(crate) fn domain_ref(domain: ObjectId, account: ObjectId) -> Vec<u8> {
    tagged(TAG_DOMAIN_REF, &[&domain.to_be_bytes(), &account.to_be_bytes()])
}

pub(crate) fn group_members_prefix(group: ObjectId) -> Vec<u8> {
    tagged(TAG_GROUP_MEMBER, &[&group.to_be_bytes()])
}

pub(crate) fn group_member(group: ObjectId, member: ObjectId) -> Vec<u8> {
    tagged(TAG_GROUP_MEMBER, &[&group.to_be_bytes(), &member.to_be_bytes()])
}

pub(crate) fn tenant_prefix(tenant: &str) -> Vec<u8> {
    tagged(TAG_TENANT, &[tenant.as_bytes(), &[0]])
}

pub(crate) fn word_prefix(word: &str) -> Vec<u8> {
    tagged(TAG_WORD, &[word.as_bytes()])
}

pub(crate) fn word(word: &str, account: ObjectId) -> Vec<u8> {
    tagged(TAG_WORD, &[word.as_bytes(), &[0], &account.to_be_bytes()])
}

pub(crate) fn name_prefix(name: &str) -> Vec<u8> {
    tagged(TAG_NAME, &[name.as_bytes()])
}

pub(crate) fn name(name: &str, account: ObjectId) -> Vec<u8> {
    tagged(TAG_NAME, &[name.as_bytes(), &[0], &account.to_be_bytes()])
}

pub(crate) fn tenant(tenant: &str, account: ObjectId) -> Vec<u8> {
    tagged(TAG_TENANT, &[tenant.as_bytes(), &[0], &account.to_be_bytes()])
}

pub(crate) fn change(t: ObjectType, seq: u64) -> Vec<u8> {
    let mut k = vec![t.tag()];
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The position of a `proj_changes` key.
pub(crate) fn change_position(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?))
}

pub(crate) fn primary_domain_prefix(domain: ObjectId) -> Vec<u8> {
    tagged(TAG_PRIMARY_DOMAIN, &[&domain.to_be_bytes()])
}

pub(crate) fn primary_domain(domain: ObjectId, account: ObjectId) -> Vec<u8> {
    tagged(TAG_PRIMARY_DOMAIN, &[&domain.to_be_bytes(), &account.to_be_bytes()])
}

pub(crate) fn kind_prefix(kind: AccountKind) -> Vec<u8> {
    tagged(TAG_KIND, &[&[kind_byte(kind)]])
}

pub(crate) fn kind(kind: AccountKind, account: ObjectId) -> Vec<u8> {
    tagged(TAG_KIND, &[&[kind_byte(kind)], &account.to_be_bytes()])
}

fn kind_byte(kind: AccountKind) -> u8 {
    match kind {
        AccountKind::User => 0,
        AccountKind::Group => 1,
    }
}

/// All address index entries (to walk in address order).
pub(crate) fn address_prefix() -> Vec<u8> {
    vec![TAG_ADDRESS]
}

pub(crate) fn role_holders_prefix(role: ObjectId) -> Vec<u8> {
    tagged(TAG_ROLE_HOLDER, &[&role.to_be_bytes()])
}

pub(crate) fn role_holder(role: ObjectId, account: ObjectId) -> Vec<u8> {
    tagged(TAG_ROLE_HOLDER, &[&role.to_be_bytes(), &account.to_be_bytes()])
}

/// Index key of an AppPassword or ApiKey by the digest of its secret.
pub(crate) fn secret(digest: &str) -> Vec<u8> {
    tagged(TAG_SECRET, &[digest.as_bytes()])
}

pub(crate) fn secret_value(account: ObjectId, credential: ObjectId) -> Vec<u8> {
    let mut v = account.to_be_bytes().to_vec();
    v.extend_from_slice(&credential.to_be_bytes());
    v
}

pub(crate) fn decode_secret_value(raw: &[u8]) -> Option<(ObjectId, ObjectId)> {
    Some((decode_id(raw.get(..8)?)?, decode_id(raw.get(8..16)?)?))
}

pub(crate) fn history_prefix(account: ObjectId) -> Vec<u8> {
    tagged(TAG_HISTORY, &[&account.to_be_bytes()])
}

pub(crate) fn history(account: ObjectId, seq: u64) -> Vec<u8> {
    tagged(TAG_HISTORY, &[&account.to_be_bytes(), &seq.to_be_bytes()])
}

/// The account and position of a history key.
pub(crate) fn decode_history(key: &[u8]) -> Option<(ObjectId, u64)> {
    if key.len() != 17 || key[0] != TAG_HISTORY {
        return None;
    }
    Some((decode_id(&key[1..9])?, u64::from_be_bytes(key[9..17].try_into().ok()?)))
}
