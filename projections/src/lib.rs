//! Folds account-ledger events into queryable state: objects, indexes and change tracking.
//!
//! [`apply`] is the pure fold; [`Projections`] are its fjall keyspaces; [`replay`]
//! rebuilds them from the log; [`state`] reads them through any [`StateRead`].

mod apply;
pub mod changes;
mod error;
pub mod keys;
pub mod query;
pub mod replay;
pub mod state;
mod store;
mod view;

pub use crate::{
    apply::{ChangeKind, apply, apply_erased, fold_account, search_words, words},
    error::{Error, Result},
    state::{AccountState, AddressUse, AliasState, CredentialState, DomainState, RoleState},
    store::Projections,
    view::{Entry, KeyValue, Mutation, Overlay, Savepoint, SnapshotView, Space, StateRead},
};
