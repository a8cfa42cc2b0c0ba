//! The permission names a role, an account's permission list or a narrowed
//! credential may hold: Stalwart 0.16's `Permission` enum (the schema's
//! `enums.Permission`, 660 names, in its order, kept in
//! `stalwart-permissions.txt`) and the ledger's own
//! ([`super::permissions::ledger_wide`]). A name outside both is a typo
//! (`sysAccountGte`) that would grant nothing while looking as if it did, so
//! `/set` refuses it with `invalidProperties`.

use super::permissions::ledger_wide;

/// Stalwart 0.16's permission names, one per line, in the schema's order.
const STALWART: &str = include_str!("stalwart-permissions.txt");

/// The ledger's own permission names.
const LEDGER: [&str; 6] = [
    ledger_wide::FEED_READ,
    ledger_wide::AUDIT_EXPORT,
    ledger_wide::ACCOUNT_REPORT_USAGE,
    ledger_wide::DATABASE_ERASE,
    ledger_wide::DATABASE_PURGE,
    ledger_wide::DATABASE_BACKUP,
];

/// Every known name, built on first use.
static KNOWN: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| STALWART.lines().filter(|l| !l.is_empty()).chain(LEDGER).collect());

/// Every known name: Stalwart's in its order, then the ledger's.
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    STALWART.lines().filter(|l| !l.is_empty()).chain(LEDGER)
}

/// Whether `name` is a permission Stalwart or the ledger knows.
pub(crate) fn is_known(name: &str) -> bool {
    KNOWN.contains(name)
}

/// The first name in `names` that is not a known permission, with its index.
pub(crate) fn first_unknown<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<(usize, &'a str)> {
    names.into_iter().enumerate().find(|(_, n)| !is_known(n))
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_names_are_known_and_typos_are_not() {
        assert_eq!(super::STALWART.lines().count(), 660, "Stalwart 0.16 has 660 permission names");
        assert!(super::is_known("sysAccountGet"));
        assert!(super::is_known("sysFeedRead"));
        assert!(!super::is_known("sysAccountGte"));
        assert_eq!(super::first_unknown(["authenticate", "emailSnd"]), Some((1, "emailSnd")));
    }
}
