//! Uses of replay: account history, verifiable export, signed checkpoints and
//! proofs, restore.

pub mod asof;
pub mod export;
pub(crate) mod history;
pub(crate) mod line;
pub mod notary;
pub mod note;
pub mod restore;
pub mod verify;
