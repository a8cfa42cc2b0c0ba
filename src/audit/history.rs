//! Account history: every event that touched an account, oldest first, with
//! who did it and what changed. Secrets appear only as "changed".

use fjall::Snapshot;
use ledger_events::values::{ExternalId, ObjectId};
use ledger_events::{EventLog, ObjectType, Record};
use ledger_projections::{StateRead, state};
use serde_json::{Value, json};

use ledger_events::codec::SECRET_FIELDS;

/// Replaces secret fields (format 1) and commitments to secrets (format 2), at
/// any depth, by the secret's field name with `"changed"`.
pub(crate) fn redact_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, mut v) in std::mem::take(map) {
                match SECRET_FIELDS.iter().find(|(secret, commitment)| *secret == k || *commitment == k) {
                    Some((secret, _)) => {
                        map.insert((*secret).to_owned(), json!("changed"));
                    }
                    None => {
                        redact_secrets(&mut v);
                        map.insert(k, v);
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secrets),
        _ => {}
    }
}

/// One record as a history entry. An erased payload shows as `null`; an account
/// actor is named by its current address, or `null` once it is gone. For a
/// reader confined to tenant `scope`, an actor outside that tenant (another
/// tenant's, a global account, the fallback administrator) shows as `null`.
pub(crate) fn entry(view: &impl StateRead, record: &Record, scope: Option<&ExternalId>) -> Value {
    let h = &record.header;
    let actor =
        ObjectId::from_jmap(&h.commit.actor.principal_id).and_then(|id| state::account(view, id).ok().flatten());
    let visible = scope.is_none_or(|t| actor.as_ref().is_some_and(|a| a.member_tenant_id.as_ref() == Some(t)));
    let (actor_id, actor_name) = match (visible, h.commit.actor.name.as_str(), &actor) {
        (false, _, _) => (Value::Null, Value::Null),
        (true, "", Some(a)) => (json!(h.commit.actor.principal_id), json!(a.email_address)),
        (true, "", None) => (json!(h.commit.actor.principal_id), Value::Null),
        (true, name, _) => (json!(h.commit.actor.principal_id), json!(name)),
    };
    let mut details: Option<Value> = record.payload.as_ref().and_then(|p| serde_json::from_slice(p.body()).ok());
    if let Some(d) = details.as_mut() {
        redact_secrets(d);
    }
    json!({
        "position": h.seq,
        "at": h.commit.committed_at.to_string(),
        "event": h.event_type,
        "actor": {
            "id": actor_id,
            "name": actor_name,
            "authMethod": h.commit.actor.auth_method.as_str(),
        },
        "commitId": h.commit.commit_id.to_string(),
        "requestId": h.commit.request_id,
        "callId": h.commit.call_id,
        "details": details,
    })
}

/// The positions of the commits that kept the account inside `tenant` from
/// start to end: a commit that moved it in or out (and whatever else it did
/// to the account, which may tell of its time elsewhere) is left out, as is
/// everything of another tenant's time.
fn within_tenant(
    view: &impl StateRead,
    positions: Vec<u64>,
    tenant: &ExternalId,
) -> Result<Vec<u64>, crate::StoreError> {
    let mut entries = Vec::with_capacity(positions.len());
    for seq in positions {
        let entry = state::change_at(view, ObjectType::Account, seq)?;
        entries.push((seq, entry));
    }
    let inside = |e: &Option<ledger_projections::ChangeEntry>| {
        e.as_ref().is_some_and(|c| c.tenants.len() == 1 && c.tenants[0] == *tenant)
    };
    let outside_commits: std::collections::HashSet<_> =
        entries.iter().filter(|(_, e)| !inside(e)).filter_map(|(_, e)| e.as_ref().map(|c| c.commit)).collect();
    Ok(entries
        .into_iter()
        .filter(|(_, e)| inside(e) && e.as_ref().is_some_and(|c| !outside_commits.contains(&c.commit)))
        .map(|(seq, _)| seq)
        .collect())
}

/// The history of an account, or `None` if no event ever touched it. For a
/// reader confined to tenant `scope`, only the commits that kept the account
/// inside that tenant throughout ([`within_tenant`]).
pub(crate) fn account_history(
    view: &impl StateRead,
    log: &EventLog,
    snapshot: &Snapshot,
    account: ObjectId,
    scope: Option<&ExternalId>,
) -> Result<Option<Vec<Value>>, crate::StoreError> {
    let positions = state::history_positions(view, account)?;
    if positions.is_empty() {
        return Ok(None);
    }
    let positions = match scope {
        None => positions,
        Some(tenant) => within_tenant(view, positions, tenant)?,
    };
    let mut out = Vec::with_capacity(positions.len());
    for seq in positions {
        if let Some(record) = log.read(snapshot, seq)? {
            out.push(entry(view, &record, scope));
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_show_only_as_changed() {
        let mut v = json!({"secretHash": "$argon2id$x", "nested": [{"newSecretHash": "blake3:00", "keep": 1}], "otpAuthSealed": "xc1:00"});
        redact_secrets(&mut v);
        assert_eq!(
            v,
            json!({"secretHash": "changed", "nested": [{"newSecretHash": "changed", "keep": 1}], "otpAuthSealed": "changed"})
        );
        let mut v = json!({"secretCommitment": "ab", "newOtpAuthCommitment": "cd", "keep": 1});
        redact_secrets(&mut v);
        assert_eq!(v, json!({"secretHash": "changed", "newOtpAuthSealed": "changed", "keep": 1}));
    }
}
