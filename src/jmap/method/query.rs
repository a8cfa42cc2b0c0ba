//! `/query` (RFC 8620 §5.5) of any object type: filters, sorts and windows,
//! answered by the type's `query` (indexes for accounts); with `asOf` for
//! types with history. The filter and sort parsing is shared with `/queryChanges`.

use ledger_events::EventLog;
use ledger_events::values::ObjectId;
use ledger_projections::query::{Filter, Sort, SortKey};
use serde_json::{Map, Value, json};

use crate::jmap::context::{CallContext, CreatedIds, blocking};
use crate::jmap::error::MethodError;
use crate::jmap::object::{JmapObject, Verb};
use crate::jmap::request::Args;
use crate::jmap::session::ACCOUNT_ID;
use crate::jmap::state::{state_string, type_state};

/// Filters nest at most this deep.
const MAX_FILTER_DEPTH: usize = 16;

/// Parsed `filter` and `sort` of a query, shared with `/queryChanges`.
pub(super) struct QuerySpec {
    pub(super) filter: Filter,
    pub(super) sort: Vec<Sort>,
}

impl QuerySpec {
    /// Whether results can only change by creation and destruction: then
    /// `upToId` may cut `/queryChanges` short.
    pub(super) fn is_immutable(&self) -> bool {
        fn immutable(f: &Filter) -> bool {
            match f {
                Filter::All | Filter::Kind(_) => true,
                Filter::And(c) | Filter::Or(c) | Filter::Not(c) => c.iter().all(immutable),
                _ => false,
            }
        }
        immutable(&self.filter) && self.sort.iter().all(|s| s.key == SortKey::CreatedAt)
    }

    /// The full sorted result at the view's state.
    pub(super) fn run<O: JmapObject>(
        &self,
        view: &impl ledger_projections::StateRead,
    ) -> Result<Vec<ObjectId>, MethodError> {
        O::query(view, &self.filter, &self.sort)
    }
}

fn parse_filter<O: JmapObject>(value: Value, ids: &CreatedIds, depth: usize) -> Result<Filter, MethodError> {
    if depth > MAX_FILTER_DEPTH {
        return Err(MethodError::UnsupportedFilter(format!("filters nest at most {MAX_FILTER_DEPTH} deep")));
    }
    let Value::Object(mut map) = value else { return Err(MethodError::invalid("a filter must be an object")) };
    if let Some(operator) = map.remove("operator") {
        let Some(Value::Array(conditions)) = map.remove("conditions") else {
            return Err(MethodError::invalid("a FilterOperator needs `conditions`"));
        };
        if let Some(extra) = map.keys().next() {
            return Err(MethodError::invalid(format!("unknown FilterOperator property {extra:?}")));
        }
        let conditions =
            conditions.into_iter().map(|c| parse_filter::<O>(c, ids, depth + 1)).collect::<Result<Vec<_>, _>>()?;
        return match operator.as_str() {
            Some("AND") => Ok(Filter::And(conditions)),
            Some("OR") => Ok(Filter::Or(conditions)),
            Some("NOT") => Ok(Filter::Not(conditions)),
            _ => Err(MethodError::UnsupportedFilter(format!("operator {operator} is not AND, OR or NOT"))),
        };
    }
    let mut conditions = Vec::new();
    for (key, value) in map {
        match O::filter(&key, &value, ids)? {
            Some(condition) => conditions.push(condition),
            None => return Err(MethodError::UnsupportedFilter(format!("{key} is not a filter of {}", O::NAME))),
        }
    }
    Ok(match conditions.len() {
        0 => Filter::All,
        1 => conditions.remove(0),
        _ => Filter::And(conditions),
    })
}

fn parse_sort<O: JmapObject>(value: Option<Value>) -> Result<Vec<Sort>, MethodError> {
    let Some(value) = value else { return Ok(vec![]) };
    let Value::Array(items) = value else { return Err(MethodError::invalid("sort must be an array")) };
    items
        .into_iter()
        .map(|item| {
            let Value::Object(mut c) = item else { return Err(MethodError::invalid("a Comparator must be an object")) };
            let property = c.remove("property").and_then(|p| p.as_str().map(str::to_owned));
            let ascending = match c.remove("isAscending") {
                None | Some(Value::Null) => true,
                Some(Value::Bool(b)) => b,
                Some(_) => return Err(MethodError::invalid("isAscending must be a boolean")),
            };
            if let Some(collation) = c.remove("collation")
                && collation.as_str() != Some("i;ascii-casemap")
            {
                return Err(MethodError::UnsupportedSort(format!("collation {collation} is not supported")));
            }
            if let Some(extra) = c.keys().next() {
                return Err(MethodError::invalid(format!("unknown Comparator property {extra:?}")));
            }
            let key = match property.as_deref() {
                Some(p) => O::sort_key(p).ok_or_else(|| MethodError::UnsupportedSort(format!("cannot sort by {p}")))?,
                None => return Err(MethodError::invalid("a Comparator needs a property")),
            };
            Ok(Sort { key, ascending })
        })
        .collect()
}

/// Parses `filter` and `sort`, checks the query permission, and confines a
/// tenant-scoped principal to its tenant.
pub(super) fn take_spec<O: JmapObject>(ctx: &CallContext<'_>, args: &mut Args) -> Result<QuerySpec, MethodError> {
    let permission = O::permission(Verb::Query);
    if !ctx.principal.may(permission) {
        return Err(MethodError::needs(permission));
    }
    let mut filter = match args.take_raw("filter") {
        Some(f) => parse_filter::<O>(f, ctx.created_ids, 0)?,
        None => Filter::All,
    };
    if let (true, Some(tenant)) = (O::TENANT_SCOPED, &ctx.principal.tenant) {
        filter = Filter::And(vec![filter, Filter::MemberTenantId(tenant.as_str().to_owned())]);
    }
    let sort = parse_sort::<O>(args.take_raw("sort"))?;
    Ok(QuerySpec { filter, sort })
}

/// Takes the `asOf` extension argument (a log position or an RFC 3339 UTC
/// time), which only types with history accept.
pub(super) fn take_as_of<O: JmapObject>(args: &mut Args) -> Result<Option<Value>, MethodError> {
    let as_of = args.take_raw("asOf");
    if as_of.is_some() && !O::TIME_TRAVEL {
        return Err(MethodError::invalid("asOf is supported for x:Account"));
    }
    Ok(as_of)
}

/// The log position an `asOf` argument stands for: a position (number or
/// digits) up to the end of the log, or the last position committed at or
/// before a time.
/// The last position of the commit that holds position `p`: a commit is
/// atomic, so the states between its events never existed for any reader (and
/// one taken there could show an object half moved between tenants).
fn commit_end(log: &EventLog, snap: &fjall::Snapshot, p: u64, last: u64) -> Result<u64, MethodError> {
    let read = |seq| log.read(snap, seq).map_err(crate::StoreError::from);
    let Some(commit) = read(p)?.map(|r| r.header.commit.commit_id) else { return Ok(p) };
    let mut end = p;
    while end < last && read(end + 1)?.is_some_and(|r| r.header.commit.commit_id == commit) {
        end += 1;
    }
    Ok(end)
}

pub(super) fn resolve_as_of(
    as_of: Option<&Value>,
    log: &EventLog,
    snap: &fjall::Snapshot,
) -> Result<Option<u64>, MethodError> {
    let Some(value) = as_of else { return Ok(None) };
    let last = log.last_seq(snap).map_err(crate::StoreError::from)?;
    let position = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        Value::String(s) => match s.parse() {
            Ok(at) => return Ok(Some(log.position_at(snap, at).map_err(crate::StoreError::from)?)),
            Err(_) => None,
        },
        _ => None,
    };
    match position {
        Some(p) if p <= last => Ok(Some(commit_end(log, snap, p, last)?)),
        Some(p) => Err(MethodError::invalid(format!("asOf position {p} is past the end of the log ({last})"))),
        None => Err(MethodError::invalid("asOf must be a log position or an RFC 3339 UTC time")),
    }
}

pub(crate) async fn query<O: JmapObject>(ctx: &mut CallContext<'_>, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let spec = take_spec::<O>(ctx, &mut args)?;
    let position: i64 = args.take("position")?.unwrap_or(0);
    let anchor: Option<String> = args.take("anchor")?;
    let anchor_offset: i64 = args.take("anchorOffset")?.unwrap_or(0);
    let limit: Option<i64> = args.take("limit")?;
    let calculate_total: bool = args.take("calculateTotal")?.unwrap_or(false);
    let as_of = take_as_of::<O>(&mut args)?;
    args.finish()?;
    if limit.is_some_and(|l| l < 0) {
        return Err(MethodError::invalid("limit must not be negative"));
    }
    let anchor = anchor.map(|a| ctx.created_ids.resolve(&a).ok());
    let max_limit = i64::try_from(ctx.services.limits.max_query_limit).unwrap_or(i64::MAX);
    let read = ctx.services.ledger.read();
    let log = ctx.services.ledger.log().clone();
    blocking(move || {
        let view = &read.view;
        let query_state = type_state(view, O::TYPE)?;
        let as_of = resolve_as_of(as_of.as_ref(), &log, view.snapshot())?;
        let ids = match as_of {
            None => spec.run::<O>(view)?,
            Some(p) => O::query_at(view, &log, p, &spec.filter, &spec.sort)?,
        };
        let total = ids.len() as i64;
        let start = match anchor {
            Some(anchor) => {
                let index =
                    anchor.and_then(|a| ids.iter().position(|id| *id == a)).ok_or(MethodError::AnchorNotFound)? as i64;
                index.saturating_add(anchor_offset).clamp(0, total)
            }
            None if position < 0 => (total + position).max(0),
            None => position.min(total),
        };
        // RFC 8620 §5.5: a limit over the server's (or none) gets at most the
        // server's, and the answer says which limit it used.
        let clamped = limit.is_none_or(|l| l > max_limit);
        let limit = limit.map_or(max_limit, |l| l.min(max_limit));
        let end = start.saturating_add(limit).min(total);
        let window: Vec<Value> = ids[start as usize..end as usize].iter().map(|id| json!(id.to_jmap())).collect();
        let mut out = Map::new();
        out.insert("accountId".into(), json!(ACCOUNT_ID));
        out.insert("queryState".into(), json!(state_string(query_state)));
        out.insert("canCalculateChanges".into(), json!(true));
        out.insert("position".into(), json!(start));
        out.insert("ids".into(), Value::Array(window));
        if calculate_total {
            out.insert("total".into(), json!(total));
        }
        if clamped && total - start > limit {
            out.insert("limit".into(), json!(limit));
        }
        if let Some(p) = as_of {
            out.insert("asOf".into(), json!(p));
        }
        Ok(Value::Object(out))
    })
    .await
}
