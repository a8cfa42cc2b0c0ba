//! ReportUsage: the mail store reports measured usage of one quota kind.

use ledger_events::model::QuotaKind;
use ledger_events::values::ObjectId;
use ledger_events::{Event, QuotaUsageChanged};
use ledger_projections::StateRead;

use super::Decision;
use super::account_spec::existing_account;

#[derive(Debug, Clone, PartialEq)]
pub struct ReportUsage {
    pub account_id: ObjectId,
    pub quota: QuotaKind,
    pub used: u64,
}

impl ReportUsage {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        let account = existing_account(view, self.account_id)?;
        let old = account.usage.get(&self.quota).copied().unwrap_or(0);
        if old == self.used {
            return Ok(vec![]);
        }
        Ok(vec![Event::QuotaUsageChanged(QuotaUsageChanged {
            account_id: self.account_id,
            quota: self.quota,
            old,
            new: self.used,
        })])
    }
}
