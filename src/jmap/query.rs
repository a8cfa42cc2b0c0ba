//! `/query` (RFC 8620 §5.5): filters, sorts and windows, answered from indexes.

use ledger_events::ObjectType;
use ledger_events::model::AccountKind;
use ledger_events::values::ObjectId;
use ledger_projections::query::{Filter, Sort, SortKey, query_accounts};
use ledger_projections::{StateRead, state};
use serde_json::{Map, Value, json};

use super::error::MethodError;
use super::request::Args;
use super::{CallContext, blocking, state_string};

/// Parsed `filter` and `sort` of a query, shared with `/queryChanges`.
pub struct QuerySpec {
    pub filter: Filter,
    pub sort: Vec<Sort>,
}

impl QuerySpec {
    /// Whether results can only change by creation and destruction: then
    /// `upToId` may cut `/queryChanges` short.
    pub fn is_immutable(&self) -> bool {
        fn immutable(f: &Filter) -> bool {
            match f {
                Filter::All | Filter::Kind(_) => true,
                Filter::And(c) | Filter::Or(c) | Filter::Not(c) => c.iter().all(immutable),
                _ => false,
            }
        }
        immutable(&self.filter) && self.sort.iter().all(|s| s.key == SortKey::CreatedAt)
    }
}

fn resolve_id(ctx: &CallContext<'_>, value: &Value, what: &str) -> Result<ObjectId, MethodError> {
    let raw = value.as_str().ok_or_else(|| MethodError::invalid(format!("filter {what} must be an id")))?;
    let raw = super::get::resolve_reference(ctx, raw);
    // An id this ledger never issued matches nothing, like any unknown id.
    Ok(ObjectId::from_jmap(&raw).unwrap_or(ObjectId(u64::MAX)))
}

fn parse_filter(ctx: &CallContext<'_>, t: ObjectType, value: Value, depth: usize) -> Result<Filter, MethodError> {
    if depth > 16 {
        return Err(MethodError::UnsupportedFilter("filters nest at most 16 deep".into()));
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
            conditions.into_iter().map(|c| parse_filter(ctx, t, c, depth + 1)).collect::<Result<Vec<_>, _>>()?;
        return match operator.as_str() {
            Some("AND") => Ok(Filter::And(conditions)),
            Some("OR") => Ok(Filter::Or(conditions)),
            Some("NOT") => Ok(Filter::Not(conditions)),
            _ => Err(MethodError::UnsupportedFilter(format!("operator {operator} is not AND, OR or NOT"))),
        };
    }
    let mut conditions = Vec::new();
    for (key, value) in map {
        let text = || {
            value
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| MethodError::invalid(format!("filter {key} must be a string")))
        };
        let condition = match (t, key.as_str()) {
            (ObjectType::Account, "text") => Filter::Text(text()?),
            (_, "name") => Filter::Name(text()?),
            (ObjectType::Account, "domainId") => Filter::DomainId(resolve_id(ctx, &value, "domainId")?),
            (ObjectType::Account, "memberTenantId") => Filter::MemberTenantId(text()?),
            (ObjectType::Account, "memberGroupIds") => {
                Filter::MemberGroupId(resolve_id(ctx, &value, "memberGroupIds")?)
            }
            (ObjectType::Account, "@type") => match value.as_str() {
                Some("User") => Filter::Kind(AccountKind::User),
                Some("Group") => Filter::Kind(AccountKind::Group),
                _ => return Err(MethodError::invalid("filter @type must be User or Group")),
            },
            (ObjectType::Domain | ObjectType::Role, "text") => Filter::Text(text()?),
            _ => return Err(MethodError::UnsupportedFilter(format!("{key} is not a filter of {}", t.jmap_name()))),
        };
        conditions.push(condition);
    }
    Ok(match conditions.len() {
        0 => Filter::All,
        1 => conditions.remove(0),
        _ => Filter::And(conditions),
    })
}

fn parse_sort(t: ObjectType, value: Option<Value>) -> Result<Vec<Sort>, MethodError> {
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
            let key = match (t, property.as_deref()) {
                (_, Some("name")) => SortKey::Name,
                (_, Some("createdAt")) => SortKey::CreatedAt,
                (ObjectType::Account, Some("emailAddress")) => SortKey::EmailAddress,
                (_, Some(p)) => return Err(MethodError::UnsupportedSort(format!("cannot sort by {p}"))),
                (_, None) => return Err(MethodError::invalid("a Comparator needs a property")),
            };
            Ok(Sort { key, ascending })
        })
        .collect()
}

/// Parses `filter` and `sort` from the arguments.
/// Parses `filter` and `sort`, checks the query permission, and confines a
/// tenant-scoped principal to its tenant.
pub fn take_spec(ctx: &CallContext<'_>, t: ObjectType, args: &mut Args) -> Result<QuerySpec, MethodError> {
    let permission = super::permissions::query_permission(t);
    if !ctx.principal.may(permission) {
        return Err(MethodError::Forbidden(format!("{permission} is required")));
    }
    let mut filter = match args.take_raw("filter") {
        Some(f) => parse_filter(ctx, t, f, 0)?,
        None => Filter::All,
    };
    if let (ObjectType::Account, Some(tenant)) = (t, &ctx.principal.tenant) {
        filter = Filter::And(vec![filter, Filter::MemberTenantId(tenant.as_str().to_owned())]);
    }
    let sort = parse_sort(t, args.take_raw("sort"))?;
    Ok(QuerySpec { filter, sort })
}

/// Domains and roles are few: they are filtered and sorted in memory.
struct Named {
    id: ObjectId,
    name: String,
    description: Option<String>,
}

fn named_objects(view: &impl StateRead, t: ObjectType, filter: &Filter) -> Result<Vec<Named>, MethodError> {
    fn matches(o: &Named, f: &Filter) -> bool {
        match f {
            Filter::All => true,
            Filter::Name(n) => o.name.to_lowercase().starts_with(&n.to_lowercase()),
            Filter::Text(t) => {
                let t = t.to_lowercase();
                o.name.to_lowercase().contains(&t)
                    || o.description.as_deref().is_some_and(|x| x.to_lowercase().contains(&t))
            }
            Filter::And(c) => c.iter().all(|f| matches(o, f)),
            Filter::Or(c) => c.iter().any(|f| matches(o, f)),
            Filter::Not(c) => !c.iter().any(|f| matches(o, f)),
            _ => false,
        }
    }
    let named: Vec<Named> = if t == ObjectType::Role {
        state::roles(view)?.into_iter().map(|r| Named { id: r.id, name: r.name, description: r.description }).collect()
    } else {
        state::domains(view)?
            .into_iter()
            .map(|d| Named { id: d.id, name: d.name.as_str().to_owned(), description: d.description })
            .collect()
    };
    Ok(named.into_iter().filter(|o| matches(o, filter)).collect())
}

/// The full sorted result of a query at the view's state.
pub fn run_query(view: &impl StateRead, t: ObjectType, spec: &QuerySpec) -> Result<Vec<ObjectId>, MethodError> {
    if t == ObjectType::Account {
        return Ok(query_accounts(view, &spec.filter, &spec.sort)?);
    }
    let mut objects = named_objects(view, t, &spec.filter)?;
    objects.sort_by(|a, b| {
        for s in &spec.sort {
            let ord = match s.key {
                SortKey::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
                _ => a.id.cmp(&b.id),
            };
            let ord = if s.ascending { ord } else { ord.reverse() };
            if ord.is_ne() {
                return ord;
            }
        }
        a.id.cmp(&b.id)
    });
    Ok(objects.into_iter().map(|o| o.id).collect())
}

pub async fn query(ctx: &mut CallContext<'_>, t: ObjectType, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let spec = take_spec(ctx, t, &mut args)?;
    let position: i64 = args.take("position")?.unwrap_or(0);
    let anchor: Option<String> = args.take("anchor")?;
    let anchor_offset: i64 = args.take("anchorOffset")?.unwrap_or(0);
    let limit: Option<i64> = args.take("limit")?;
    let calculate_total: bool = args.take("calculateTotal")?.unwrap_or(false);
    let as_of = super::get::take_as_of(&mut args, t)?;
    args.finish()?;
    if limit.is_some_and(|l| l < 0) {
        return Err(MethodError::invalid("limit must not be negative"));
    }
    let anchor = anchor.map(|a| super::get::resolve_reference(ctx, &a));
    let read = ctx.app.ledger.read();
    let log = ctx.app.ledger.log().clone();
    blocking(move || {
        let view = &read.view;
        let query_state = state::type_state(view, t)?;
        let as_of = super::get::resolve_as_of(as_of.as_ref(), &log, view.snapshot())?;
        let ids = match as_of {
            None => run_query(view, t, &spec)?,
            Some(p) => {
                let mut states = crate::audit::asof::accounts_at(view, &log, view.snapshot(), p)?;
                states.retain(|a| ledger_projections::query::account_matches(a, &spec.filter));
                ledger_projections::query::sort_states(&mut states, &spec.sort);
                states.into_iter().map(|a| a.id).collect()
            }
        };
        let total = ids.len() as i64;
        let start = match &anchor {
            Some(anchor) => {
                let index = ObjectId::from_jmap(anchor)
                    .and_then(|a| ids.iter().position(|id| *id == a))
                    .ok_or(MethodError::AnchorNotFound)? as i64;
                index.saturating_add(anchor_offset).clamp(0, total)
            }
            None if position < 0 => (total + position).max(0),
            None => position.min(total),
        };
        let end = match limit {
            Some(l) => start.saturating_add(l).min(total),
            None => total,
        };
        let window: Vec<Value> = ids[start as usize..end as usize].iter().map(|id| json!(id.to_jmap())).collect();
        let mut out = Map::new();
        out.insert("accountId".into(), json!(super::session::ACCOUNT_ID));
        out.insert("queryState".into(), json!(state_string(query_state)));
        out.insert("canCalculateChanges".into(), json!(true));
        out.insert("position".into(), json!(start));
        out.insert("ids".into(), Value::Array(window));
        if calculate_total {
            out.insert("total".into(), json!(total));
        }
        if let Some(p) = as_of {
            out.insert("asOf".into(), json!(p));
        }
        Ok(Value::Object(out))
    })
    .await
}
