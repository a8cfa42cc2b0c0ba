//! State strings (RFC 8620 §1.2, §5.1): the log position of the last change to
//! a type. They are opaque to clients, change exactly when an object of the
//! type changes, and survive restarts.

use ledger_events::ObjectType;
use ledger_projections::{StateRead, state};

use super::error::MethodError;

/// The state string of a log position.
pub fn state_string(position: u64) -> String {
    position.to_string()
}

/// The position a state string this server issued stands for.
pub(crate) fn parse_state(s: &str) -> Option<u64> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The current state of a type: the last position that changed one of its objects.
pub(crate) fn type_state(view: &impl StateRead, object_type: ObjectType) -> Result<u64, MethodError> {
    Ok(state::type_state(view, object_type)?)
}
