//! The index keys an account or domain owns (`proj_index`), and the writes
//! that take them from one state of the object to the next.
//!
//! An account's keys fall into families ([`IndexPart`]), each with its own
//! key tag and the fields it derives from; an event re-derives only the
//! families whose fields it changed, which writes exactly what diffing the
//! whole index writes (tested below). Bulk replay diffs whole indexes.

use std::collections::{BTreeMap, BTreeSet};

use ledger_events::model::{CredentialKind, Roles};
use ledger_events::values::ObjectId;

use crate::keys;
use crate::state::{AccountState, AddressUse, DomainState};
use crate::view::{Mutation, Space};

pub(crate) fn diff_index(out: &mut Vec<Mutation>, old: BTreeMap<Vec<u8>, Vec<u8>>, new: BTreeMap<Vec<u8>, Vec<u8>>) {
    for key in old.keys() {
        if !new.contains_key(key) {
            out.push(Mutation { space: Space::Index, key: key.clone(), value: None });
        }
    }
    for (key, value) in new {
        if old.get(&key) != Some(&value) {
            out.push(Mutation { space: Space::Index, key, value: Some(value) });
        }
    }
}

/// Every index entry an account owns.
pub(crate) fn account_index(account: Option<&AccountState>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut idx = BTreeMap::new();
    if let Some(a) = account {
        for part in IndexPart::ALL {
            part.derive(a, &mut idx);
        }
    }
    idx
}

/// The index writes that take an account from `old` to `new`: the same writes
/// as diffing [`account_index`] of both, derived only for the parts whose
/// fields differ (an update of the description re-derives its words, nothing
/// else).
pub(crate) fn diff_account_index(out: &mut Vec<Mutation>, old: Option<&AccountState>, new: Option<&AccountState>) {
    match (old, new) {
        (Some(old), Some(new)) if old.id == new.id => {
            for part in IndexPart::ALL.into_iter().filter(|p| !p.same(old, new)) {
                let (mut before, mut after) = (BTreeMap::new(), BTreeMap::new());
                part.derive(old, &mut before);
                part.derive(new, &mut after);
                diff_index(out, before, after);
            }
        }
        _ => diff_index(out, account_index(old), account_index(new)),
    }
}

/// The families of index keys an account owns. Each family has its own key
/// tag (see [`keys`]), so no key belongs to two families, and its keys derive
/// only from the fields [`IndexPart::same`] compares: where those are equal,
/// the family's keys are equal.
#[derive(Debug, Clone, Copy)]
enum IndexPart {
    /// Addresses, the domains they are in, the primary domain.
    Addressing,
    Kind,
    Groups,
    Secrets,
    Roles,
    Tenant,
    Name,
    Words,
}

impl IndexPart {
    const ALL: [IndexPart; 8] = [
        IndexPart::Addressing,
        IndexPart::Kind,
        IndexPart::Groups,
        IndexPart::Secrets,
        IndexPart::Roles,
        IndexPart::Tenant,
        IndexPart::Name,
        IndexPart::Words,
    ];

    /// Whether two states of one account give this family the same keys.
    fn same(self, a: &AccountState, b: &AccountState) -> bool {
        fn secrets(x: &AccountState) -> Vec<(&str, ObjectId)> {
            x.credentials
                .iter()
                .filter(|c| c.kind != CredentialKind::Password)
                .map(|c| (c.secret_hash.as_str(), c.id))
                .collect()
        }
        match self {
            IndexPart::Addressing => {
                a.email_address == b.email_address && a.domain_id == b.domain_id && a.aliases == b.aliases
            }
            IndexPart::Kind => a.kind == b.kind,
            IndexPart::Groups => a.member_group_ids == b.member_group_ids,
            IndexPart::Secrets => secrets(a) == secrets(b),
            IndexPart::Roles => a.roles == b.roles,
            IndexPart::Tenant => a.member_tenant_id == b.member_tenant_id,
            IndexPart::Name => a.name == b.name,
            IndexPart::Words => {
                a.name == b.name
                    && a.email_address == b.email_address
                    && a.aliases == b.aliases
                    && a.description == b.description
            }
        }
    }

    /// Adds this family's keys for account `a` to `idx`.
    fn derive(self, a: &AccountState, idx: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
        match self {
            IndexPart::Addressing => {
                idx.insert(keys::address(&a.email_address), keys::address_value(a.id, AddressUse::Primary));
                idx.insert(keys::domain_ref(a.domain_id, a.id), Vec::new());
                idx.insert(keys::primary_domain(a.domain_id, a.id), Vec::new());
                for alias in &a.aliases {
                    idx.insert(keys::address(&alias.email_address), keys::address_value(a.id, AddressUse::Alias));
                    idx.insert(keys::domain_ref(alias.domain_id, a.id), Vec::new());
                }
            }
            IndexPart::Kind => {
                idx.insert(keys::kind(a.kind, a.id), Vec::new());
            }
            IndexPart::Groups => {
                for group in &a.member_group_ids {
                    idx.insert(keys::group_member(*group, a.id), Vec::new());
                }
            }
            IndexPart::Secrets => {
                for c in a.credentials.iter().filter(|c| c.kind != CredentialKind::Password) {
                    idx.insert(keys::secret(c.secret_hash.as_str()), keys::secret_value(a.id, c.id));
                }
            }
            IndexPart::Roles => {
                if let Roles::Custom { role_ids } = &a.roles {
                    for role in role_ids.iter().filter_map(|r| ObjectId::from_jmap(r.as_str())) {
                        idx.insert(keys::role_holder(role, a.id), Vec::new());
                    }
                }
            }
            IndexPart::Tenant => {
                if let Some(tenant) = &a.member_tenant_id {
                    idx.insert(keys::tenant(tenant.as_str(), a.id), Vec::new());
                }
            }
            IndexPart::Name => {
                idx.insert(keys::name(a.name.as_str(), a.id), Vec::new());
            }
            IndexPart::Words => {
                for word in search_words(a) {
                    idx.insert(keys::word(&word, a.id), Vec::new());
                }
            }
        }
    }
}

/// Lowercased words of the name, addresses and description, for `text` filters.
pub fn search_words(a: &AccountState) -> BTreeSet<String> {
    let mut text = vec![a.name.as_str(), a.email_address.as_str()];
    text.extend(a.aliases.iter().map(|al| al.email_address.as_str()));
    text.extend(a.description.as_deref());
    words(&text.join(" "))
}

/// Splits text into index words; also used to split queries the same way.
pub fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase().chars().take(64).collect())
        .collect()
}

pub(crate) fn domain_index(domain: Option<&DomainState>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut idx = BTreeMap::new();
    if let Some(d) = domain {
        idx.insert(keys::domain_name(&d.name), d.id.to_be_bytes().to_vec());
    }
    idx
}

#[cfg(test)]
mod tests {
    //! Deriving the index by part writes exactly what diffing the whole index
    //! writes, for changes to each family's fields and to several at once.

    use std::collections::BTreeSet;

    use super::*;
    use crate::apply::tests::account;
    use crate::state::AliasState;

    fn by_part(old: Option<&AccountState>, new: Option<&AccountState>) -> BTreeSet<(Vec<u8>, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        diff_account_index(&mut out, old, new);
        out.into_iter().map(|m| (m.key, m.value)).collect()
    }

    fn whole(old: Option<&AccountState>, new: Option<&AccountState>) -> BTreeSet<(Vec<u8>, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        diff_index(&mut out, account_index(old), account_index(new));
        out.into_iter().map(|m| (m.key, m.value)).collect()
    }

    #[test]
    fn deriving_by_part_writes_what_diffing_the_whole_index_writes() {
        let base = account();
        let alias = AliasState {
            name: "al".parse().unwrap(),
            domain_id: ObjectId(2),
            email_address: "al@example.org".into(),
            enabled: true,
            description: None,
        };
        type Change = Box<dyn Fn(&mut AccountState)>;
        let changes: Vec<(&str, Change)> = vec![
            ("description", Box::new(|a| a.description = Some("Head of marketing".into()))),
            ("description removed", Box::new(|a| a.description = None)),
            (
                "rename",
                Box::new(|a| {
                    a.name = "alicia".parse().unwrap();
                    a.email_address = "alicia@example.org".into();
                }),
            ),
            ("alias in the primary domain", Box::new(move |a| a.aliases.push(alias.clone()))),
            (
                "moved domain",
                Box::new(|a| {
                    a.domain_id = ObjectId(3);
                    a.email_address = "alice@example.net".into();
                }),
            ),
            ("groups", Box::new(|a| a.member_group_ids = vec![ObjectId(11), ObjectId(12)])),
            ("roles", Box::new(|a| a.roles = Roles::Custom { role_ids: vec!["d".parse().unwrap()] })),
            ("tenant", Box::new(|a| a.member_tenant_id = Some("x".parse().unwrap()))),
            ("locale only", Box::new(|a| a.locale = "de_DE".parse().unwrap())),
        ];
        for (what, change) in &changes {
            let mut new = base.clone();
            change(&mut new);
            assert_eq!(by_part(Some(&base), Some(&new)), whole(Some(&base), Some(&new)), "{what}");
            assert_eq!(by_part(Some(&new), Some(&base)), whole(Some(&new), Some(&base)), "{what}, undone");
        }
        // Every change at once, creation and destruction.
        let mut all = base.clone();
        for (_, change) in &changes {
            change(&mut all);
        }
        assert_eq!(by_part(Some(&base), Some(&all)), whole(Some(&base), Some(&all)));
        assert!(!by_part(Some(&base), Some(&all)).is_empty());
        assert_eq!(by_part(None, Some(&base)), whole(None, Some(&base)));
        assert_eq!(by_part(Some(&base), None), whole(Some(&base), None));
        // A change that touches no indexed field writes nothing.
        let mut quiet = base.clone();
        quiet.locale = "de_DE".parse().unwrap();
        assert!(by_part(Some(&base), Some(&quiet)).is_empty());
    }
}
