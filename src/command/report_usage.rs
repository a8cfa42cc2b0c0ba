//! ReportUsage: a batch of usage reports from mail stores, folded into one
//! QuotaUsageChanged per account and quota kind (the coalescing of issue 7).
//!
//! Reports apply in order against a running total, so deltas from many stores sum
//! exactly however they were batched; only the net change of the batch is recorded.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use ledger_events::model::QuotaKind;
use ledger_events::values::ObjectId;
use ledger_events::{Event, QuotaExceeded, QuotaUsageChanged};
use ledger_projections::{AccountState, StateRead, state};

use super::Rejection;

/// How a store states its usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageChange {
    /// Usage grew (positive) or shrank (negative) by this much. Never below zero.
    Delta(i64),
    /// Usage is exactly this (a store reconciling after a recount).
    Used(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageReport {
    pub account_id: ObjectId,
    pub quota: QuotaKind,
    pub change: UsageChange,
    /// Refuse the report (`overQuota`) instead of recording usage past the limit:
    /// for a store that asks before it accepts a message.
    pub enforce: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportUsage {
    pub reports: Vec<UsageReport>,
}

/// Usage after an accepted report, within the batch's running total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageAccepted {
    pub used: u64,
    pub limit: Option<u64>,
}

impl UsageAccepted {
    pub fn exceeded(&self) -> bool {
        self.limit.is_some_and(|limit| self.used > limit)
    }
}

/// The events a batch records, and what became of each report, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct UsagePlan {
    pub events: Vec<Event>,
    pub outcomes: Vec<Result<UsageAccepted, Rejection>>,
}

struct Running {
    old: u64,
    used: u64,
    limit: Option<u64>,
}

impl ReportUsage {
    /// Pure: decides the batch against `view`. Fails only when state is unreadable.
    pub(crate) fn plan(&self, view: &impl StateRead) -> Result<UsagePlan, Rejection> {
        let mut accounts: BTreeMap<ObjectId, Option<AccountState>> = BTreeMap::new();
        let mut totals: BTreeMap<(ObjectId, QuotaKind), Running> = BTreeMap::new();
        let mut outcomes = Vec::with_capacity(self.reports.len());
        for report in &self.reports {
            let key = (report.account_id, report.quota);
            let running = match totals.entry(key) {
                Entry::Occupied(slot) => slot.into_mut(),
                Entry::Vacant(slot) => {
                    let account = match accounts.get(&report.account_id) {
                        Some(cached) => cached.clone(),
                        None => {
                            let loaded = state::account(view, report.account_id)?;
                            accounts.insert(report.account_id, loaded.clone());
                            loaded
                        }
                    };
                    let Some(account) = account else {
                        outcomes.push(Err(Rejection::NotFound { what: "account", id: report.account_id }));
                        continue;
                    };
                    let old = account.usage.get(&report.quota).copied().unwrap_or(0);
                    slot.insert(Running { old, used: old, limit: account.quotas.get(&report.quota).copied() })
                }
            };
            let used = match report.change {
                UsageChange::Delta(d) => running.used.saturating_add_signed(d),
                UsageChange::Used(u) => u,
            };
            if report.enforce
                && let Some(limit) = running.limit
                && used > limit
                && used > running.used
            {
                outcomes.push(Err(Rejection::OverQuota {
                    description: format!(
                        "account {} would use {used} of {} = {limit} (now {})",
                        report.account_id, report.quota, running.used
                    ),
                }));
                continue;
            }
            running.used = used;
            outcomes.push(Ok(UsageAccepted { used, limit: running.limit }));
        }

        let mut events = Vec::new();
        for ((account_id, quota), running) in totals {
            if running.used == running.old {
                continue;
            }
            events.push(Event::QuotaUsageChanged(QuotaUsageChanged {
                account_id,
                quota,
                old: running.old,
                new: running.used,
            }));
            if let Some(limit) = running.limit
                && running.old <= limit
                && running.used > limit
            {
                events.push(Event::QuotaExceeded(QuotaExceeded { account_id, quota, used: running.used, limit }));
            }
        }
        Ok(UsagePlan { events, outcomes })
    }
}
