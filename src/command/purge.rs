//! PurgeExpiredCredentials: maintenance that removes credentials past `expiresAt`,
//! recording each as CredentialRemoved with reason `expired`.

use ledger_events::codec::from_json;
use ledger_events::values::UtcDateTime;
use ledger_events::{CredentialRemoved, Event, RemovalReason};
use ledger_projections::{AccountState, Space, StateRead};

use super::{Decision, Rejection};

#[derive(Debug, Clone, PartialEq)]
pub struct PurgeExpiredCredentials {
    pub now: UtcDateTime,
}

impl PurgeExpiredCredentials {
    pub(crate) fn decide(&self, view: &impl StateRead) -> Decision {
        let mut events = Vec::new();
        for (_, raw) in view.scan(Space::Accounts, &[], None, usize::MAX)? {
            let account: AccountState = from_json(&raw).map_err(|e| Rejection::Internal(e.to_string()))?;
            for c in account.credentials.iter().filter(|c| c.expires_at.is_some_and(|at| at <= self.now)) {
                events.push(Event::CredentialRemoved(CredentialRemoved {
                    account_id: account.id,
                    credential_id: c.id,
                    kind: c.kind,
                    reason: RemovalReason::Expired,
                }));
            }
        }
        Ok(events)
    }
}
