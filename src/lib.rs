//! account-ledger: the event-sourced system of record for mail-server accounts.
//!
//! `store` owns the fjall database (log + projections) and the single writer;
//! `command` decides events from commands; `http` serves the API; `cli` is the
//! `ledger` binary's command line.

pub mod audit;
pub mod auth;
pub mod cli;
pub mod command;
pub mod error;
pub mod feed;
pub mod http;
pub mod jmap;
pub mod maintenance;
pub mod secrets;
pub mod seed;
pub mod store;
pub mod usage;

pub use crate::{
    error::StoreError,
    store::{CommitInfo, CommitOrigin, Committed, Durability, Ledger, ReadState, Tx},
};
