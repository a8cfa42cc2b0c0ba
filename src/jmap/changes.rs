//! `/changes` (RFC 8620 §5.2) and `/queryChanges` (§5.6), from the change index.

use std::collections::HashSet;

use ledger_events::ObjectType;
use ledger_events::values::ObjectId;
use ledger_projections::changes::{ChangesError, changes_since};
use ledger_projections::state;
use serde_json::{Map, Value, json};

use super::error::MethodError;
use super::query::{run_query, take_spec};
use super::request::Args;
use super::{CallContext, blocking, parse_state, state_string};

fn ids(list: &[ObjectId]) -> Value {
    Value::Array(list.iter().map(|id| json!(id.to_jmap())).collect())
}

/// The position a client's state string stands for, if this ledger can still
/// answer from it (it issued it, and retention has not dropped what came after).
fn since(view: &impl ledger_projections::StateRead, raw: &str, current: u64) -> Result<u64, MethodError> {
    let retained_from = state::changes_from(view)?;
    match parse_state(raw) {
        Some(seq) if seq <= current && seq + 1 >= retained_from => Ok(seq),
        Some(seq) if seq <= current => Err(MethodError::CannotCalculateChanges(format!(
            "state {raw:?} is older than the retained change history (from position {retained_from}); resynchronise with /get or /query"
        ))),
        _ => Err(MethodError::CannotCalculateChanges(format!("state {raw:?} is not one this server issued"))),
    }
}

pub async fn changes(ctx: &mut CallContext<'_>, t: ObjectType, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let since_state: String = args.take("sinceState")?.ok_or_else(|| MethodError::invalid("sinceState is required"))?;
    let max_changes: Option<u64> = args.take("maxChanges")?;
    args.finish()?;
    if max_changes == Some(0) {
        return Err(MethodError::invalid("maxChanges must be greater than 0"));
    }
    let permission = super::permissions::get_permission(t);
    if !ctx.principal.may(permission) {
        return Err(MethodError::Forbidden(format!("{permission} is required")));
    }
    let max = max_changes.map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
    let read = ctx.app.ledger.read();
    blocking(move || {
        let view = &read.view;
        let current = state::type_state(view, t)?;
        let from = since(view, &since_state, current)?;
        let page = match changes_since(view, t, from, max) {
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
            "accountId": super::session::ACCOUNT_ID,
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

pub async fn query_changes(ctx: &mut CallContext<'_>, t: ObjectType, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let spec = take_spec(ctx, t, &mut args)?;
    let since_state: String =
        args.take("sinceQueryState")?.ok_or_else(|| MethodError::invalid("sinceQueryState is required"))?;
    let max_changes: Option<u64> = args.take("maxChanges")?;
    let up_to_id: Option<String> = args.take("upToId")?;
    let calculate_total: bool = args.take("calculateTotal")?.unwrap_or(false);
    args.finish()?;
    if max_changes == Some(0) {
        return Err(MethodError::invalid("maxChanges must be greater than 0"));
    }
    let up_to_id = up_to_id.map(|id| super::get::resolve_reference(ctx, &id));
    let read = ctx.app.ledger.read();
    blocking(move || {
        let view = &read.view;
        let current = state::type_state(view, t)?;
        let from = since(view, &since_state, current)?;
        let page = match changes_since(view, t, from, usize::MAX) {
            Ok(page) => page,
            Err(ChangesError::CommitTooLarge { .. }) => return Err(MethodError::ServerFail),
            Err(ChangesError::Read(e)) => return Err(e.into()),
        };
        if max_changes.is_some_and(|m| page.len() as u64 > m) {
            return Err(MethodError::TooManyChanges);
        }
        // Anything updated or destroyed may have left the old results; anything
        // created or updated that is in the results now is (re-)added at its index.
        let removed: Vec<ObjectId> = page.updated.iter().chain(&page.destroyed).copied().collect();
        let touched: HashSet<ObjectId> = page.created.iter().chain(&page.updated).copied().collect();
        let results = run_query(view, t, &spec)?;
        let cutoff = match (&up_to_id, spec.is_immutable()) {
            (Some(up_to), true) => {
                ObjectId::from_jmap(up_to).and_then(|u| results.iter().position(|id| *id == u)).unwrap_or(usize::MAX)
            }
            _ => usize::MAX,
        };
        let added: Vec<Value> = results
            .iter()
            .enumerate()
            .filter(|(index, id)| *index <= cutoff && touched.contains(id))
            .map(|(index, id)| json!({ "id": id.to_jmap(), "index": index }))
            .collect();
        let mut out = Map::new();
        out.insert("accountId".into(), json!(super::session::ACCOUNT_ID));
        out.insert("oldQueryState".into(), json!(since_state));
        out.insert("newQueryState".into(), json!(state_string(current)));
        if calculate_total {
            out.insert("total".into(), json!(results.len()));
        }
        out.insert("removed".into(), ids(&removed));
        out.insert("added".into(), Value::Array(added));
        Ok(Value::Object(out))
    })
    .await
}
