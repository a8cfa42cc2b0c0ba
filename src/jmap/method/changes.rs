//! `/changes` (RFC 8620 §5.2) of any object type, from change tracking.

use ledger_events::values::ObjectId;
use ledger_projections::StateRead;
use ledger_projections::changes::{ChangesError, changes_since};
use ledger_projections::state;
use serde_json::{Value, json};

use crate::jmap::context::{CallContext, blocking};
use crate::jmap::error::MethodError;
use crate::jmap::object::{JmapObject, Verb};
use crate::jmap::request::Args;
use crate::jmap::session::ACCOUNT_ID;
use crate::jmap::state::{parse_state, state_string, type_state};

/// Ids as a JSON array of their wire form.
pub(super) fn ids(list: &[ObjectId]) -> Value {
    Value::Array(list.iter().map(|id| json!(id.to_jmap())).collect())
}

/// The position a client's state string stands for, if this ledger can still
/// answer from it (it issued it, and retention has not dropped what came after).
pub(super) fn since(view: &impl StateRead, raw: &str, current: u64) -> Result<u64, MethodError> {
    let retained_from = state::changes_from(view)?;
    match parse_state(raw) {
        Some(seq) if seq <= current && seq + 1 >= retained_from => Ok(seq),
        Some(seq) if seq <= current => Err(MethodError::CannotCalculateChanges(format!(
            "state {raw:?} is older than the retained change history (from position {retained_from}); resynchronise with /get or /query"
        ))),
        _ => Err(MethodError::CannotCalculateChanges(format!("state {raw:?} is not one this server issued"))),
    }
}

/// Ids one `/changes` answers at most, whatever `maxChanges` asks; the rest
/// follow with `hasMoreChanges`.
pub(crate) const MAX_CHANGES: usize = 10_000;

/// `maxChanges` must be positive when given.
pub(super) fn check_max_changes(max_changes: Option<u64>) -> Result<(), MethodError> {
    match max_changes {
        Some(0) => Err(MethodError::invalid("maxChanges must be greater than 0")),
        _ => Ok(()),
    }
}

pub(crate) async fn changes<O: JmapObject>(ctx: &mut CallContext<'_>, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let since_state: String = args.take("sinceState")?.ok_or_else(|| MethodError::invalid("sinceState is required"))?;
    let max_changes: Option<u64> = args.take("maxChanges")?;
    args.finish()?;
    check_max_changes(max_changes)?;
    let permission = O::permission(Verb::Get);
    if !ctx.principal.may(permission) {
        return Err(MethodError::needs(permission));
    }
    // RFC 8620 §5.2: the server may return fewer than `maxChanges`.
    let max = max_changes.map_or(MAX_CHANGES, |m| usize::try_from(m).unwrap_or(usize::MAX).min(MAX_CHANGES));
    // A tenant principal is told only of its tenant's objects.
    let scope = if O::TENANT_SCOPED { ctx.principal.tenant.clone() } else { None };
    let read = ctx.services.ledger.read();
    blocking(move || {
        let view = &read.view;
        let current = type_state(view, O::TYPE)?;
        let from = since(view, &since_state, current)?;
        let page = match changes_since(view, O::TYPE, from, max, scope.as_ref()) {
            Ok(page) => page,
            Err(ChangesError::CommitTooLarge { objects }) => {
                return Err(MethodError::CannotCalculateChanges(format!(
                    "one commit changed {objects} objects, more than maxChanges; ask with a larger maxChanges"
                )));
            }
            Err(ChangesError::Read(e)) => return Err(e.into()),
        };
        let new_state = if page.has_more { page.new_state } else { current };
        Ok(json!({
            "accountId": ACCOUNT_ID,
            "oldState": since_state,
            "newState": state_string(new_state),
            "hasMoreChanges": page.has_more,
            "created": ids(&page.created),
            "updated": ids(&page.updated),
            "destroyed": ids(&page.destroyed),
        }))
    })
    .await
}
