//! Read-only time travel: accounts as they were at a log position, folded from
//! each account's own events (found through the history index), not from a
//! replay of the whole log. An account's state at P is its events up to P.

use fjall::Snapshot;
use ledger_events::values::ObjectId;
use ledger_events::{EventLog, Record};
use ledger_projections::{AccountState, StateRead, fold_account, state};

use crate::StoreError;

/// Folds records into an account state; `None` if it did not exist, or if an
/// erased payload makes its past unknowable.
fn fold(records: impl Iterator<Item = Result<Option<Record>, StoreError>>) -> Result<Option<AccountState>, StoreError> {
    let mut current = None;
    for record in records {
        let Some(record) = record? else { continue };
        let Some(event) = record.event() else { return Ok(None) };
        let event = event.map_err(|e| StoreError::Projections(e.into()))?;
        current = fold_account(current, &event).map_err(|why| {
            StoreError::Projections(ledger_projections::Error::Inconsistent(format!(
                "position {}: {why}",
                record.seq()
            )))
        })?;
    }
    Ok(current)
}

/// One account at `position`.
pub fn account_at(
    view: &impl StateRead,
    log: &EventLog,
    snap: &Snapshot,
    id: ObjectId,
    position: u64,
) -> Result<Option<AccountState>, StoreError> {
    let positions = state::history_in(view, id, 0..=position)?;
    fold(positions.into_iter().map(|p| Ok(log.read(snap, p)?)))
}

/// Every account that existed at `position`, in id order.
pub fn accounts_at(
    view: &impl StateRead,
    log: &EventLog,
    snap: &Snapshot,
    position: u64,
) -> Result<Vec<AccountState>, StoreError> {
    let mut out = Vec::new();
    for positions in state::histories_up_to(view, position)?.into_values() {
        if let Some(a) = fold(positions.into_iter().map(|p| Ok(log.read(snap, p)?)))? {
            out.push(a);
        }
    }
    Ok(out)
}
