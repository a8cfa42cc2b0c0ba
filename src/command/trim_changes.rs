//! TrimChanges: drop change tracking before a position (the retention policy).

use ledger_events::{ChangesTrimmed, Event};
use ledger_projections::{StateRead, state};

use super::Decision;

#[derive(Debug, Clone, PartialEq)]
pub struct TrimChanges {
    /// Keep change tracking from this position on.
    pub before: u64,
}

impl TrimChanges {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        let covered_from = state::changes_from(view)?;
        let last = state::applied_seq(view)?;
        // Never trims forward past the log's end, and never backwards.
        let before = self.before.min(last + 1);
        if before <= covered_from {
            return Ok(vec![]);
        }
        Ok(vec![Event::ChangesTrimmed(ChangesTrimmed { before })])
    }
}
