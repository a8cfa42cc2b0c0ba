//! PurgeExpiredCredentials: maintenance that removes credentials past `expiresAt`,
//! recording each as CredentialRemoved with reason `expired`.

use ledger_events::{CredentialRemoved, Event, RemovalReason};
use ledger_projections::{StateRead, state};

use super::{DecideContext, Decision};

/// Expired means `expiresAt` at or before the commit's time.
#[derive(Debug, Clone, PartialEq)]
pub struct PurgeExpiredCredentials;

impl PurgeExpiredCredentials {
    pub(crate) fn decide(&self, view: &impl StateRead, ctx: &DecideContext) -> Decision {
        let mut events = Vec::new();
        for account in state::accounts(view)? {
            for c in account.credentials.iter().filter(|c| c.expires_at.is_some_and(|at| at <= ctx.now)) {
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
