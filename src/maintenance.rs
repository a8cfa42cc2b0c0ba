//! Purge: the maintenance behind `ledger database purge`, `x:Database/purge` and
//! the scheduled task. Removes expired credentials and, by the retention policy,
//! change tracking older than the retained window. Both are recorded as events.

use std::time::Duration;

use ledger_events::values::UtcDateTime;

use crate::StoreError;
use crate::command::{Command, PurgeExpiredCredentials, TrimChanges};
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

/// The first log position committed at or after `at` (one past the end if none).
fn first_position_at(ledger: &Ledger, at: UtcDateTime) -> Result<u64, StoreError> {
    let read = ledger.read();
    let before = UtcDateTime::from_millis(at.millis().saturating_sub(1));
    Ok(crate::audit::asof::position_at(ledger.log(), read.view.snapshot(), before)? + 1)
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
                tokio::task::spawn_blocking(move || first_position_at(&ledger, at))
                    .await
                    .map_err(|e| StoreError::WriteFailed(e.to_string()))??,
            )
        }
        (None, None) => None,
    };
    let committed = ledger
        .commit(origin, move |tx| {
            let now = tx.now();
            let expired =
                tx.execute(&Command::PurgeExpiredCredentials(PurgeExpiredCredentials { now })).map(|e| e.len());
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

/// Runs purge every `every`, as the system, until the process ends.
pub fn schedule(ledger: Ledger, policy: PurgePolicy, every: Duration) {
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
