//! Uses of replay: account history, verifiable export, checkpoints, restore.

pub mod asof;
pub mod export;
pub mod history;
pub mod line;
pub mod restore;
pub mod verify;
