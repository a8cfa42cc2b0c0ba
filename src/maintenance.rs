//! Maintenance of the ledger's data, each recorded as events:
//!
//! - purge, behind `ledger database purge`, `x:Database/purge` and the
//!   scheduled task: removes expired credentials and, by the retention policy,
//!   change tracking older than the retained window;
//! - erasure, behind `ledger database delete` and `x:Database/erase`: destroys
//!   accounts and erases the payloads of every record that touched them, then
//!   compacts the store so the bytes are gone from disk.

use std::time::Duration;

use ledger_events::Event;
use ledger_events::values::{ObjectId, UtcDateTime};
use ledger_projections::state;

use crate::StoreError;
use crate::command::{Command, DestroyAccount, EraseAccount, PurgeExpiredCredentials, Rejection, TrimChanges, Writer};
use crate::store::{CommitOrigin, Ledger};

/// What purge keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgePolicy {
    /// How long change tracking (`/changes` history) is kept; `None`: forever.
    pub changes_retention: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeReport {
    pub expired_credentials_removed: usize,
    /// Change tracking now starts here (1 when never trimmed).
    pub changes_from: u64,
    pub last_position: u64,
}

/// Runs purge now. `trim_before` overrides the retention policy's cut.
pub async fn purge(
    ledger: &Ledger,
    origin: CommitOrigin,
    policy: PurgePolicy,
    trim_before: Option<u64>,
) -> Result<PurgeReport, StoreError> {
    let before = match (trim_before, policy.changes_retention) {
        (Some(seq), _) => Some(seq),
        (None, Some(keep)) => {
            let cutoff = jiff::Timestamp::now().as_millisecond() - i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
            let ledger = ledger.clone();
            let at = UtcDateTime::from_millis(cutoff);
            Some(
                tokio::task::spawn_blocking(move || {
                    ledger.log().first_position_from(ledger.read().view.snapshot(), at)
                })
                .await
                .map_err(|e| StoreError::Internal(format!("the purge's read task failed: {e}")))??,
            )
        }
        (None, None) => None,
    };
    let committed = ledger
        .commit(origin, move |tx| {
            let expired = tx.execute(&Command::PurgeExpiredCredentials(PurgeExpiredCredentials)).map(|e| e.len());
            if let Some(before) = before {
                let _ = tx.execute(&Command::TrimChanges(TrimChanges { before }));
            }
            let changes_from = ledger_projections::state::changes_from(tx.state()).unwrap_or(1);
            (expired.unwrap_or(0), changes_from)
        })
        .await?;
    let (expired_credentials_removed, changes_from) = committed.value;
    Ok(PurgeReport { expired_credentials_removed, changes_from, last_position: committed.info.last_seq })
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureReport {
    /// Each account asked for, in order: erased, or why not.
    pub outcomes: Vec<(ObjectId, Result<(), Rejection>)>,
    /// The last position of the erasure's commit (0 if it recorded nothing).
    pub last_position: u64,
}

/// Destroys each account (if it still exists) and erases the payloads of every
/// record that touched it, all in one commit; then, if anything was erased,
/// compacts the store so that the erased bytes are gone from disk (slow).
pub async fn erase(
    ledger: &Ledger,
    origin: CommitOrigin,
    ids: Vec<ObjectId>,
    writer: Writer,
) -> Result<ErasureReport, StoreError> {
    let mut unique = std::collections::HashSet::new();
    let ids: Vec<ObjectId> = ids.into_iter().filter(|id| unique.insert(*id)).collect();
    let published = ledger.clone();
    let committed = ledger
        .commit(origin, move |tx| {
            let mut outcomes = Vec::with_capacity(ids.len());
            for &id in &ids {
                // One account's erasure is all or nothing: a refused erase
                // leaves the account as it was (not destroyed).
                let outcome = tx.all_or_nothing(|tx| {
                    if state::account(tx.state(), id)?.is_some() {
                        // Erasing an account that still exists destroys it: that
                        // needs what destroying it through /set needs.
                        if !writer.permissions.may("sysAccountDestroy") {
                            return Err(Rejection::Forbidden {
                                description: "sysAccountDestroy is required to erase an account that still exists"
                                    .to_owned(),
                            });
                        }
                        // Destroying a group frees its members of what it disables:
                        // the writer's authority is checked as for any destroy.
                        tx.execute_as(&Command::DestroyAccount(DestroyAccount { id }), &writer)?;
                    }
                    let trimmed = trimmed_history(&published, tx.state(), id)?;
                    for event in tx.execute_as(&Command::EraseAccount(EraseAccount { id, trimmed }), &writer)? {
                        if let Event::AccountErased(e) = event {
                            let positions: Vec<u64> = e.erased.iter().map(|r| r.position).collect();
                            tx.erase_payloads(&positions);
                        }
                    }
                    Ok(())
                });
                outcomes.push((id, outcome));
            }
            outcomes
        })
        .await?;
    let outcomes = committed.value;
    if outcomes.iter().any(|(_, outcome)| outcome.is_ok()) {
        let ledger = ledger.clone();
        let through = committed.info.last_seq;
        tokio::task::spawn_blocking(move || ledger.compact(through))
            .await
            .map_err(|e| StoreError::Internal(format!("the compaction task failed: {e}")))??;
    }
    Ok(ErasureReport { outcomes, last_position: committed.info.last_seq })
}

/// The change and commit id, from the log's record headers, of each position
/// of `id`'s history whose change tracking purge has trimmed.
fn trimmed_history(
    ledger: &Ledger,
    view: &impl ledger_projections::StateRead,
    id: ObjectId,
) -> Result<std::collections::BTreeMap<u64, (ledger_projections::ChangeKind, uuid::Uuid)>, Rejection> {
    let mut trimmed = std::collections::BTreeMap::new();
    let read = ledger.read();
    for position in state::history_positions(view, id)? {
        if state::change_at(view, ledger_events::ObjectType::Account, position)?.is_some() {
            continue;
        }
        // A position without change entry was trimmed, so it is older than
        // this commit and durable: the published snapshot holds it.
        let header = ledger
            .log()
            .read(read.view.snapshot(), position)
            .map_err(|e| Rejection::Internal(format!("reading the log at position {position}: {e}")))?
            .ok_or_else(|| Rejection::Internal(format!("no log record at position {position}")))?
            .header;
        let kind = ledger_projections::ChangeKind::of_type(&header.event_type);
        trimmed.insert(position, (kind, header.commit.commit_id));
    }
    Ok(trimmed)
}

/// Runs purge every `every`, as the system, until the process ends.
pub(crate) fn schedule(ledger: Ledger, policy: PurgePolicy, every: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match purge(&ledger, CommitOrigin::system(), policy, None).await {
                Ok(report) => tracing::info!(
                    expired = report.expired_credentials_removed,
                    changes_from = report.changes_from,
                    "scheduled purge done"
                ),
                Err(e) => tracing::error!(error = %e, "scheduled purge failed"),
            }
        }
    });
}
