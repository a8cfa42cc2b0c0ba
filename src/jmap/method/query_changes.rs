//! `/queryChanges` (RFC 8620 §5.6) of any object type: what left and entered a
//! query's results since a query state, from change tracking.

use std::collections::HashSet;

use ledger_events::values::ObjectId;
use ledger_projections::changes::{ChangesError, changes_since};
use serde_json::{Map, Value, json};

use super::changes::{check_max_changes, ids, since};
use super::query::take_spec;
use crate::jmap::context::{CallContext, blocking};
use crate::jmap::error::MethodError;
use crate::jmap::object::JmapObject;
use crate::jmap::request::Args;
use crate::jmap::session::ACCOUNT_ID;
use crate::jmap::state::{state_string, type_state};

pub(crate) async fn query_changes<O: JmapObject>(
    ctx: &mut CallContext<'_>,
    arguments: Value,
) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let spec = take_spec::<O>(ctx, &mut args)?;
    let since_state: String =
        args.take("sinceQueryState")?.ok_or_else(|| MethodError::invalid("sinceQueryState is required"))?;
    let max_changes: Option<u64> = args.take("maxChanges")?;
    let up_to_id: Option<String> = args.take("upToId")?;
    let calculate_total: bool = args.take("calculateTotal")?.unwrap_or(false);
    args.finish()?;
    check_max_changes(max_changes)?;
    let up_to_id = up_to_id.map(|id| ctx.created_ids.resolve(&id).ok());
    // A tenant principal is told only of its tenant's objects.
    let scope = if O::TENANT_SCOPED { ctx.principal.tenant.clone() } else { None };
    let read = ctx.services.ledger.read();
    blocking(move || {
        let view = &read.view;
        let current = type_state(view, O::TYPE)?;
        let from = since(view, &since_state, current)?;
        let page = match changes_since(view, O::TYPE, from, usize::MAX, scope.as_ref()) {
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
        let results = spec.run::<O>(view)?;
        let cutoff = match (up_to_id, spec.is_immutable()) {
            (Some(up_to), true) => up_to.and_then(|u| results.iter().position(|id| *id == u)).unwrap_or(usize::MAX),
            _ => usize::MAX,
        };
        let added: Vec<Value> = results
            .iter()
            .enumerate()
            .filter(|(index, id)| *index <= cutoff && touched.contains(id))
            .map(|(index, id)| json!({ "id": id.to_jmap(), "index": index }))
            .collect();
        let mut out = Map::new();
        out.insert("accountId".into(), json!(ACCOUNT_ID));
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
