//! Account history: every event that touched an account, oldest first, with
//! who did it and what changed. Secrets appear only as "changed".

use fjall::Snapshot;
use ledger_events::values::ObjectId;
use ledger_events::{EventLog, Record};
use ledger_projections::{StateRead, state};
use serde_json::{Value, json};

/// Payload fields that hold secrets (hashed or sealed); never shown.
const SECRET_FIELDS: &[&str] = &["secretHash", "newSecretHash", "otpAuthSealed", "newOtpAuthSealed"];

/// Replaces secret fields, at any depth, by `"changed"`.
pub(crate) fn redact_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if SECRET_FIELDS.contains(&k.as_str()) {
                    *v = json!("changed");
                } else {
                    redact_secrets(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secrets),
        _ => {}
    }
}

/// One record as a history entry. An erased payload shows as `null`; an account
/// actor is named by its current address, or `null` once it is gone.
pub(crate) fn entry(view: &impl StateRead, record: &Record) -> Value {
    let h = &record.header;
    let actor_name = match (h.commit.actor.name.as_str(), ObjectId::from_jmap(&h.commit.actor.principal_id)) {
        ("", Some(id)) => {
            state::account(view, id).ok().flatten().map(|a| json!(a.email_address)).unwrap_or(Value::Null)
        }
        (name, _) => json!(name),
    };
    let mut details: Option<Value> = record.payload.as_deref().and_then(|p| serde_json::from_slice(p).ok());
    if let Some(d) = details.as_mut() {
        redact_secrets(d);
    }
    json!({
        "position": h.seq,
        "at": h.commit.committed_at.to_string(),
        "event": h.event_type,
        "actor": {
            "id": h.commit.actor.principal_id,
            "name": actor_name,
            "authMethod": h.commit.actor.auth_method.as_str(),
        },
        "commitId": h.commit.commit_id.to_string(),
        "requestId": h.commit.request_id,
        "callId": h.commit.call_id,
        "details": details,
    })
}

/// The history of an account, or `None` if no event ever touched it.
pub(crate) fn account_history(
    view: &impl StateRead,
    log: &EventLog,
    snapshot: &Snapshot,
    account: ObjectId,
) -> Result<Option<Vec<Value>>, crate::StoreError> {
    let positions = state::history_positions(view, account)?;
    if positions.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(positions.len());
    for seq in positions {
        if let Some(record) = log.read(snapshot, seq)? {
            out.push(entry(view, &record));
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
    }
}
