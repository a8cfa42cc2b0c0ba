//! Accounts as JMAP objects: the wire form of the Account reference page.
//! Secrets are masked, as Stalwart masks them (`MASKED_PASSWORD`): every
//! credential's `secret` is `"****"`, and so is `otpAuth` when set.

use ledger_events::model::{AccountKind, CredentialKind};
use ledger_projections::{AccountState, CredentialState};
use serde_json::{Map, Value, json};

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// What a secret reads as on `/get`; sent back in an update it means "unchanged".
pub(crate) const MASKED: &str = "****";

/// A credential with its secret masked. `credentialId` lets clients keep it
/// across updates.
pub(super) fn render_credential(c: &CredentialState) -> Value {
    let mut out = Map::new();
    out.insert("@type".into(), to_value(&c.kind));
    out.insert("credentialId".into(), json!(c.id.to_jmap()));
    out.insert("secret".into(), json!(MASKED));
    if c.otp_enabled {
        out.insert("otpAuth".into(), json!(MASKED));
    }
    if c.kind != CredentialKind::Password {
        out.insert("description".into(), to_value(&c.description));
        out.insert("createdAt".into(), to_value(&c.created_at));
        out.insert("permissions".into(), to_value(&c.permissions));
    }
    out.insert("expiresAt".into(), to_value(&c.expires_at));
    out.insert("allowedIps".into(), to_value(&c.allowed_ips));
    Value::Object(out)
}

/// The full object, as `/get` returns it with no `properties` filter.
pub(crate) fn render(a: &AccountState) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), json!(a.id.to_jmap()));
    out.insert("@type".into(), to_value(&a.kind));
    out.insert("name".into(), json!(a.name.as_str()));
    out.insert("domainId".into(), json!(a.domain_id.to_jmap()));
    out.insert("emailAddress".into(), json!(a.email_address));
    out.insert("createdAt".into(), to_value(&a.created_at));
    out.insert("memberTenantId".into(), to_value(&a.member_tenant_id));
    out.insert("roles".into(), to_value(&a.roles));
    out.insert("permissions".into(), to_value(&a.permissions));
    out.insert("quotas".into(), to_value(&a.quotas));
    out.insert("usedDiskQuota".into(), json!(a.used_disk_quota()));
    let aliases: Vec<Value> = a
        .aliases
        .iter()
        .map(|al| {
            json!({
                "enabled": al.enabled,
                "name": al.name.as_str(),
                "domainId": al.domain_id.to_jmap(),
                "description": al.description,
            })
        })
        .collect();
    out.insert("aliases".into(), Value::Array(aliases));
    out.insert("description".into(), to_value(&a.description));
    out.insert("locale".into(), json!(a.locale.as_str()));
    out.insert("timeZone".into(), to_value(&a.time_zone));
    if a.kind == AccountKind::User {
        out.insert("credentials".into(), Value::Array(a.credentials.iter().map(render_credential).collect()));
        out.insert("memberGroupIds".into(), json!(a.member_group_ids.iter().map(|g| g.to_jmap()).collect::<Vec<_>>()));
        out.insert("encryptionAtRest".into(), to_value(&a.encryption_at_rest));
    }
    out
}
