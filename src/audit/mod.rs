//! Uses of replay: account history, verifiable export, checkpoints, restore.

pub mod asof;
pub mod export;
pub(crate) mod history;
pub(crate) mod line;
pub mod restore;
pub mod verify;
