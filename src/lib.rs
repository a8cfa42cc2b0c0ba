//! account-ledger: the event-sourced system of record for mail-server accounts.
//!
//! `store` owns the fjall database (log + projections) and the single writer;
//! `command` decides events from commands; `jmap` is the protocol and `http`
//! serves it; `cli` is the `ledger` binary's command line. The code map, with
//! each module's layer and invariant, is in docs/ARCHITECTURE.md.
//!
//! The public modules are what the binary, the integration tests and the
//! benchmarks use; everything else is `pub(crate)`.

pub mod audit;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod cluster;
pub mod command;
mod feed;
pub mod http;
pub mod jmap;
pub mod maintenance;
pub mod secrets;
pub mod seed;
mod slots;
pub mod store;
pub mod usage;

pub use crate::store::{CommitInfo, CommitOrigin, Committed, Durability, Ledger, ReadState, StoreError, Tx};
