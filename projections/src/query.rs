//! Account queries answered from the indexes: filter trees to id sets, and sorts.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use ledger_events::model::AccountKind;
use ledger_events::values::ObjectId;

use crate::error::Result;
use crate::index::words;
use crate::keys;
use crate::state::AddressUse;
use crate::view::{Space, StateRead};

/// A filter over accounts (RFC 8620 §5.5 FilterOperator / FilterCondition).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every account.
    All,
    /// Every word must prefix a word of the name, an address or the description.
    Text(String),
    /// The name starts with this (case-insensitive).
    Name(String),
    /// The primary address is in this domain.
    DomainId(ObjectId),
    /// The account belongs to this tenant.
    MemberTenantId(String),
    /// The account is a member of this group.
    MemberGroupId(ObjectId),
    /// The account's `@type`.
    Kind(AccountKind),
    /// All of the conditions.
    And(Vec<Filter>),
    /// Any of the conditions.
    Or(Vec<Filter>),
    /// None of the conditions.
    Not(Vec<Filter>),
}

/// What a query sorts by (an RFC 8620 §5.5 Comparator's `property`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Creation order: ids are handed out in commit order.
    CreatedAt,
    /// `name`, lowercase.
    Name,
    /// `emailAddress` (the primary address).
    EmailAddress,
}

/// One Comparator of a query's `sort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The property sorted by.
    pub key: SortKey,
    /// `isAscending`.
    pub ascending: bool,
}

fn ids_with_prefix(view: &impl StateRead, prefix: &[u8]) -> Result<BTreeSet<ObjectId>> {
    Ok(view.scan(Space::Index, prefix, None, usize::MAX)?.iter().filter_map(|(k, _)| keys::trailing_id(k)).collect())
}

fn all_accounts(view: &impl StateRead) -> Result<BTreeSet<ObjectId>> {
    ids_with_prefix(view, &[keys::TAG_KIND])
}

/// The ids of all accounts matching `filter`.
pub fn matching_accounts(view: &impl StateRead, filter: &Filter) -> Result<BTreeSet<ObjectId>> {
    Ok(match filter {
        Filter::All => all_accounts(view)?,
        Filter::Text(text) => {
            let mut result: Option<BTreeSet<ObjectId>> = None;
            for word in words(text) {
                let hits = ids_with_prefix(view, &keys::word_prefix(&word))?;
                result = Some(match result {
                    None => hits,
                    Some(acc) => acc.intersection(&hits).copied().collect(),
                });
            }
            match result {
                Some(ids) => ids,
                None => all_accounts(view)?,
            }
        }
        Filter::Name(name) => ids_with_prefix(view, &keys::name_prefix(&name.to_lowercase()))?,
        Filter::DomainId(d) => ids_with_prefix(view, &keys::primary_domain_prefix(*d))?,
        Filter::MemberTenantId(t) => ids_with_prefix(view, &keys::tenant_prefix(t))?,
        Filter::MemberGroupId(g) => ids_with_prefix(view, &keys::group_members_prefix(*g))?,
        Filter::Kind(k) => ids_with_prefix(view, &keys::kind_prefix(*k))?,
        Filter::And(conditions) => {
            let mut result: Option<BTreeSet<ObjectId>> = None;
            for c in conditions {
                let hits = matching_accounts(view, c)?;
                result = Some(match result {
                    None => hits,
                    Some(acc) => acc.intersection(&hits).copied().collect(),
                });
                if result.as_ref().is_some_and(BTreeSet::is_empty) {
                    break;
                }
            }
            result.unwrap_or_default()
        }
        Filter::Or(conditions) => {
            let mut result = BTreeSet::new();
            for c in conditions {
                result.extend(matching_accounts(view, c)?);
            }
            result
        }
        Filter::Not(conditions) => {
            let mut excluded = BTreeSet::new();
            for c in conditions {
                excluded.extend(matching_accounts(view, c)?);
            }
            all_accounts(view)?.difference(&excluded).copied().collect()
        }
    })
}

/// Sort keys of the accounts in `ids`, read from the name or address index.
fn sort_values(view: &impl StateRead, key: SortKey, ids: &BTreeSet<ObjectId>) -> Result<HashMap<ObjectId, String>> {
    let mut out = HashMap::with_capacity(ids.len());
    match key {
        SortKey::CreatedAt => {}
        SortKey::Name => {
            for (k, _) in view.scan(Space::Index, &[keys::TAG_NAME], None, usize::MAX)? {
                if let Some(id) = keys::trailing_id(&k).filter(|id| ids.contains(id)) {
                    let name = &k[1..k.len() - 9];
                    out.insert(id, String::from_utf8_lossy(name).into_owned());
                }
            }
        }
        SortKey::EmailAddress => {
            for (k, v) in view.scan(Space::Index, &keys::address_prefix(), None, usize::MAX)? {
                if let Some((id, AddressUse::Primary)) = keys::decode_address_value(&v)
                    && ids.contains(&id)
                {
                    out.insert(id, String::from_utf8_lossy(&k[1..]).into_owned());
                }
            }
        }
    }
    Ok(out)
}

/// The matching accounts in sort order; ties are broken by creation order.
pub fn query_accounts(view: &impl StateRead, filter: &Filter, sort: &[Sort]) -> Result<Vec<ObjectId>> {
    let ids = matching_accounts(view, filter)?;
    let mut sorted: Vec<ObjectId> = ids.iter().copied().collect();
    if sort.is_empty() || sort == [Sort { key: SortKey::CreatedAt, ascending: true }] {
        return Ok(sorted);
    }
    let values: Vec<_> = sort.iter().map(|s| sort_values(view, s.key, &ids)).collect::<Result<_>>()?;
    sorted.sort_by(|a, b| {
        for (s, vals) in sort.iter().zip(&values) {
            let ord = match s.key {
                SortKey::CreatedAt => a.cmp(b),
                _ => vals.get(a).cmp(&vals.get(b)),
            };
            let ord = if s.ascending { ord } else { ord.reverse() };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.cmp(b)
    });
    Ok(sorted)
}

/// Whether one account matches a filter, evaluated on the object itself (for
/// states that are not in the indexes, such as a past state).
pub fn account_matches(a: &crate::AccountState, filter: &Filter) -> bool {
    match filter {
        Filter::All => true,
        Filter::Text(text) => {
            let have = crate::index::search_words(a);
            words(text).iter().all(|w| have.iter().any(|h| h.starts_with(w.as_str())))
        }
        Filter::Name(n) => a.name.as_str().starts_with(&n.to_lowercase()),
        Filter::DomainId(d) => a.domain_id == *d,
        Filter::MemberTenantId(t) => a.member_tenant_id.as_ref().is_some_and(|x| x.as_str() == t),
        Filter::MemberGroupId(g) => a.member_group_ids.contains(g),
        Filter::Kind(k) => a.kind == *k,
        Filter::And(c) => c.iter().all(|f| account_matches(a, f)),
        Filter::Or(c) => c.iter().any(|f| account_matches(a, f)),
        Filter::Not(c) => !c.iter().any(|f| account_matches(a, f)),
    }
}

/// Sorts account states as `query_accounts` sorts ids.
pub fn sort_states(states: &mut [crate::AccountState], sort: &[Sort]) {
    states.sort_by(|a, b| {
        for s in sort {
            let ord = match s.key {
                SortKey::CreatedAt => a.id.cmp(&b.id),
                SortKey::Name => a.name.cmp(&b.name),
                SortKey::EmailAddress => a.email_address.cmp(&b.email_address),
            };
            let ord = if s.ascending { ord } else { ord.reverse() };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.id.cmp(&b.id)
    });
}
