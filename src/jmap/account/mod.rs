//! `x:Account` objects on the wire.

pub mod parse;
pub mod render;
