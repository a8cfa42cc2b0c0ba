//! `x:Account/reportUsage` (extension): mail stores report quota usage in batches.
//! Each report is `{id, quota, delta | used, enforce?}`; accepted reports answer
//! with the usage after them and the limit, refused ones with a SetError
//! (`overQuota` when `enforce` is set and the limit would be passed). Needs
//! `sysAccountReportUsage`. Coalescing happens in [`crate::usage`].

use serde_json::{Map, Value, json};

use ledger_events::ObjectType;
use ledger_events::model::QuotaKind;
use ledger_events::values::ObjectId;
use ledger_projections::state;

use crate::auth::permissions::ledger_wide::ACCOUNT_REPORT_USAGE;
use crate::command::{UsageChange, UsageReport};
use crate::jmap::context::{CallContext, blocking};
use crate::jmap::error::{MethodError, SetError};
use crate::jmap::request::Args;
use crate::jmap::session::ACCOUNT_ID;
use crate::jmap::state::state_string;

/// Most reports in one call: a store batching a second of deliveries fits.
const MAX_REPORTS: usize = 10_000;

/// Largest delta or usage a report may carry: JMAP's UnsignedInt range.
const MAX_JMAP_INT: u64 = (1 << 53) - 1;

pub(crate) async fn report_usage(ctx: &mut CallContext<'_>, arguments: Value) -> Result<Value, MethodError> {
    let mut args = Args::new(arguments)?;
    args.account_id()?;
    let raw: Vec<Value> = args.take("reports")?.ok_or_else(|| MethodError::invalid("reports is required"))?;
    args.finish()?;
    ctx.require_globally(ACCOUNT_REPORT_USAGE)?;
    if raw.len() > MAX_REPORTS {
        return Err(MethodError::RequestTooLarge(format!("at most {MAX_REPORTS} reports per call")));
    }

    let mut not_accepted = Map::new();
    let mut reports = Vec::with_capacity(raw.len());
    let mut indexes = Vec::with_capacity(raw.len());
    for (i, value) in raw.into_iter().enumerate() {
        match parse_report(value) {
            Ok(report) => {
                reports.push(report);
                indexes.push(i);
            }
            Err(e) => {
                not_accepted.insert(i.to_string(), e.to_json());
            }
        }
    }

    let mut accepted = Map::new();
    let new_state = if reports.is_empty() {
        None
    } else {
        let ingested = ctx.services.usage.report(ctx.origin.clone(), reports).await?;
        for (i, outcome) in indexes.into_iter().zip(ingested.outcomes) {
            match outcome {
                Ok(usage) => {
                    accepted.insert(
                        i.to_string(),
                        json!({ "used": usage.used, "limit": usage.limit, "exceeded": usage.exceeded() }),
                    );
                }
                Err(rejection) => {
                    not_accepted.insert(i.to_string(), SetError::from(rejection).to_json());
                }
            }
        }
        (ingested.info.last_seq != 0).then_some(ingested.info.last_seq)
    };
    let new_state = match new_state {
        Some(seq) => seq,
        None => {
            let read = ctx.services.ledger.read();
            blocking(move || Ok(state::type_state(&read.view, ObjectType::Account)?)).await?
        }
    };
    let or_null = |m: Map<String, Value>| if m.is_empty() { Value::Null } else { Value::Object(m) };
    Ok(json!({
        "accountId": ACCOUNT_ID,
        "newState": state_string(new_state),
        "accepted": or_null(accepted),
        "notAccepted": or_null(not_accepted),
    }))
}

fn parse_report(value: Value) -> Result<UsageReport, SetError> {
    let Value::Object(mut map) = value else {
        return Err(SetError::invalid_properties(vec![], "a report must be an object"));
    };
    let invalid = |property: &str, why: &str| SetError::invalid(property, why);
    let account_id = match map.remove("id") {
        Some(Value::String(s)) => {
            ObjectId::from_jmap(&s).ok_or_else(|| SetError::not_found(format!("no account {s}")))?
        }
        _ => return Err(invalid("id", "id must be an account id")),
    };
    let quota: QuotaKind = match map.remove("quota") {
        Some(Value::String(s)) => s.parse().map_err(|_| invalid("quota", &format!("{s:?} is not a StorageQuota")))?,
        _ => return Err(invalid("quota", "quota must be a StorageQuota name")),
    };
    let change = match (map.remove("delta"), map.remove("used")) {
        (Some(delta), None) => match delta.as_i64() {
            Some(d) if d.unsigned_abs() <= MAX_JMAP_INT => UsageChange::Delta(d),
            _ => return Err(invalid("delta", "delta must be an Int")),
        },
        (None, Some(used)) => match used.as_u64() {
            Some(u) if u <= MAX_JMAP_INT => UsageChange::Used(u),
            _ => return Err(invalid("used", "used must be an UnsignedInt")),
        },
        _ => return Err(invalid("delta", "give exactly one of delta and used")),
    };
    let enforce = match map.remove("enforce") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(invalid("enforce", "enforce must be a Boolean")),
    };
    if let Some(extra) = map.keys().next() {
        return Err(invalid(extra, &format!("unknown report property {extra:?}")));
    }
    Ok(UsageReport { account_id, quota, change, enforce })
}
