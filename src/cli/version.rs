//! The version the binary reports (`ledger version`, `ledger --version`, the
//! start-up log line): the package version and the git revision it was built
//! from (`unknown` outside a git checkout; see `build.rs`).

/// The package version, `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git revision, 12 hex digits.
pub const REVISION: &str = env!("LEDGER_GIT_REVISION");
/// `0.1.0 (git 0123456789ab)`.
pub const LONG: &str = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("LEDGER_GIT_REVISION"), ")");
