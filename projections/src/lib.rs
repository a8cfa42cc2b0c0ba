//! Folds account-ledger events into queryable state: objects, indexes and change tracking.
//!
//! [`apply`] is the pure fold; [`Projections`] are its fjall keyspaces; [`replay`]
//! rebuilds them from the log; [`state`] reads them through any [`StateRead`],
//! [`query`] answers account filters from the indexes and [`changes`] pages the
//! change tracking. Key layouts are private to this crate (`keys`): callers use
//! the typed reads, never raw keys.

#![warn(missing_docs)] // its public surface is the typed read API: every item says what it is

mod apply;
mod bulk;
pub mod changes;
mod error;
mod index;
mod keys;
pub mod query;
pub mod replay;
pub mod state;
mod store;
mod view;

pub use crate::{
    apply::{apply, apply_erased, fold_account},
    changes::{ChangeEntry, ChangeKind},
    error::{Error, Result},
    index::{search_words, words},
    state::{AccountState, AddressUse, AliasState, CredentialState, DomainState, RoleState, TenantState},
    store::{KEYSPACES, Projections},
    view::{Empty, Entry, Mutation, Overlay, Savepoint, SnapshotView, StateRead},
};
