//! JMAP Account objects into commands: validation of every property, with the
//! property name in every error, defaults for absent ones, ids resolved (a
//! `#creationId` too, wherever an id goes), and secrets taken from those
//! hashed and sealed before the commit.

use ledger_events::model::{
    AccountKind, CredentialKind, CredentialPermissions, EncryptionAtRest, Permissions, QuotaKind, Quotas, Roles,
};
use ledger_events::values::{ExternalId, IpMask, ObjectId, UtcDateTime};
use ledger_projections::AccountState;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::Account;
use super::render::{MASKED, render};
use crate::command::{AliasSpec, CreateAccount, CredentialChange, CredentialSpec, NewCredential, UpdateAccount};
use crate::jmap::error::SetError;
use crate::jmap::object::JmapObject;
use crate::jmap::object::{ParseContext, SecretRequests, has_property, refuse_server_set, resolve_id, take_fixed};
use crate::secrets::{self, Plaintext};

/// Items one account may list, per property; more is `tooLarge` (RFC 8620
/// §5.3) naming the property (docs/operations.md, "Limits").
pub(crate) const MAX_ALIASES: usize = 500;
pub(crate) const MAX_CREDENTIALS: usize = 100;
pub(crate) const MAX_GROUPS: usize = 500;
pub(crate) const MAX_ROLES: usize = 100;
/// Networks one credential's `allowedIps` lists at most.
pub(crate) const MAX_ALLOWED_IPS: usize = 100;
/// Permission names one list (enabled, disabled, a credential's, a role's) holds at most.
pub(crate) const MAX_PERMISSIONS: usize = 1000;

/// `tooLarge` unless `count` items are at most `max`.
fn within(property: &str, count: usize, max: usize) -> Result<(), SetError> {
    if count <= max { Ok(()) } else { Err(SetError::too_large(property, max)) }
}

/// Refuses a permission name neither Stalwart nor the ledger knows.
pub(crate) fn known_permissions(property: &str, list: &[ledger_events::values::Permission]) -> Result<(), SetError> {
    match crate::auth::catalogue::first_unknown(list.iter().map(|p| p.as_str())) {
        None => Ok(()),
        Some((i, name)) => Err(invalid(&format!("{property}/{i}"), format!("{name:?} is not a known permission"))),
    }
}

fn invalid(property: &str, description: impl Into<String>) -> SetError {
    SetError::invalid(property, description)
}

fn typed<T: DeserializeOwned>(property: &str, value: Value) -> Result<T, SetError> {
    serde_json::from_value(value).map_err(|e| invalid(property, format!("{property}: {e}")))
}

/// The `@type` of an account kind, as variants are named.
pub(super) fn variant(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::User => "User",
        AccountKind::Group => "Group",
    }
}

/// `roles`, with `#creationId` references in `roleIds` resolved to the ids of
/// roles created earlier in the request.
pub(crate) fn parse_roles(mut value: Value, ctx: &ParseContext<'_>) -> Result<Roles, SetError> {
    if let Some(Value::Array(role_ids)) = value.get_mut("roleIds") {
        within("roles/roleIds", role_ids.len(), MAX_ROLES)?;
        for (i, role_id) in role_ids.iter_mut().enumerate() {
            if role_id.as_str().is_some_and(|r| r.starts_with('#')) {
                let id = resolve_id(&format!("roles/roleIds/{i}"), role_id, ctx.ids)?;
                *role_id = Value::String(id.to_jmap());
            }
        }
    }
    typed("roles", value)
}

struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    fn typed<T: DeserializeOwned>(&mut self, name: &str) -> Result<Option<T>, SetError> {
        self.typed_at(name, name)
    }

    /// Takes `key`, naming it `property` (its full path) in errors.
    fn typed_at<T: DeserializeOwned>(&mut self, key: &str, property: &str) -> Result<Option<T>, SetError> {
        self.take(key).map(|v| typed(property, v)).transpose()
    }

    fn string(&mut self, name: &str) -> Result<Option<String>, SetError> {
        self.typed(name)
    }
}

/// The full parsed form of an account object.
struct AccountFields {
    create: CreateAccount,
    credentials: Vec<CredentialSpec>,
}

/// Every client-set property of an account object of `kind` (without `@type`
/// and the server-set ones, which the caller took out).
fn parse_fields(
    kind: AccountKind,
    object: Map<String, Value>,
    current: Option<&AccountState>,
    ctx: &mut ParseContext<'_>,
) -> Result<AccountFields, SetError> {
    let mut f = Fields { map: object };
    let name = match f.take("name") {
        Some(v) => {
            typed::<String>("name", v)?.parse().map_err(|e| SetError::invalid_value("name", format!("name: {e}")))?
        }
        None => return Err(SetError::required("name")),
    };
    let domain_id = match f.take("domainId") {
        Some(v) => resolve_id("domainId", &v, ctx.ids)?,
        None => return Err(SetError::required("domainId")),
    };
    let description = f.string("description")?;
    let locale = f.typed("locale")?.unwrap_or_default();
    let time_zone = f.typed("timeZone")?;
    let member_tenant_id: Option<ExternalId> =
        f.take("memberTenantId").map(|v| crate::jmap::object::resolve_tenant(&v, ctx.ids)).transpose()?;
    let roles: Roles = match f.take("roles") {
        Some(v) => parse_roles(v, ctx)?,
        None => match kind {
            AccountKind::User => Roles::User,
            AccountKind::Group => Roles::Default,
        },
    };
    let permissions: Permissions = f.typed("permissions")?.unwrap_or(Permissions::Inherit);
    if let Permissions::Merge(list) | Permissions::Replace(list) = &permissions {
        within("permissions/enabledPermissions", list.enabled_permissions.len(), MAX_PERMISSIONS)?;
        within("permissions/disabledPermissions", list.disabled_permissions.len(), MAX_PERMISSIONS)?;
        known_permissions("permissions/enabledPermissions", &list.enabled_permissions)?;
        known_permissions("permissions/disabledPermissions", &list.disabled_permissions)?;
    }
    let quotas = match f.take("quotas") {
        Some(Value::Object(map)) => {
            let mut quotas = Quotas::new();
            for (key, value) in map {
                let property = format!("quotas/{key}");
                let quota: QuotaKind = key.parse().map_err(|e| invalid(&property, format!("{e}")))?;
                if !value.is_null() {
                    quotas.insert(quota, typed(&property, value)?);
                }
            }
            quotas
        }
        Some(_) => return Err(invalid("quotas", "quotas must be an object")),
        None => Quotas::new(),
    };
    let aliases = match f.take("aliases") {
        Some(Value::Array(items)) => {
            within("aliases", items.len(), MAX_ALIASES)?;
            items.into_iter().enumerate().map(|(i, item)| parse_alias(i, item, ctx)).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(invalid("aliases", "aliases must be an array")),
        None => vec![],
    };
    let (encryption_at_rest, credentials, member_group_ids) = if kind == AccountKind::User {
        let encryption: EncryptionAtRest = f.typed("encryptionAtRest")?.unwrap_or(EncryptionAtRest::Disabled);
        let credentials = match f.take("credentials") {
            Some(Value::Array(items)) => {
                within("credentials", items.len(), MAX_CREDENTIALS)?;
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| parse_credential(i, item, current, ctx))
                    .collect::<Result<Vec<_>, _>>()?
            }
            Some(_) => return Err(invalid("credentials", "credentials must be an array")),
            None => vec![],
        };
        let groups = match f.take("memberGroupIds") {
            Some(Value::Array(items)) => {
                within("memberGroupIds", items.len(), MAX_GROUPS)?;
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| resolve_id(&format!("memberGroupIds/{i}"), v, ctx.ids))
                    .collect::<Result<Vec<_>, _>>()?
            }
            Some(_) => return Err(invalid("memberGroupIds", "memberGroupIds must be an array")),
            None => vec![],
        };
        (Some(encryption), credentials, groups)
    } else {
        let user_only = Account::PROPERTIES.iter().filter(|p| !p.of(Some("Group"))).map(|p| p.name);
        for property in user_only {
            if f.take(property).is_some_and(|v| v != Value::Array(vec![])) {
                return Err(invalid(property, format!("a Group has no {property}")));
            }
        }
        (None, vec![], vec![])
    };
    if let Some(unknown) = f.map.keys().next() {
        let known = has_property::<Account>(unknown);
        let why = if known { "is not a property of this @type" } else { "is not an Account property" };
        return Err(invalid(unknown, format!("{unknown} {why}")));
    }
    let create = CreateAccount {
        kind,
        name,
        domain_id,
        description,
        locale,
        time_zone,
        member_tenant_id,
        roles,
        permissions,
        quotas,
        encryption_at_rest,
        aliases,
        credentials: vec![],
        member_group_ids,
    };
    Ok(AccountFields { create, credentials })
}

fn parse_alias(i: usize, item: Value, ctx: &ParseContext<'_>) -> Result<AliasSpec, SetError> {
    let property = format!("aliases/{i}");
    let Value::Object(map) = item else { return Err(invalid(&property, "an alias must be an object")) };
    let mut f = Fields { map };
    let name = match f.take("name") {
        Some(v) => typed::<String>(&format!("{property}/name"), v)?
            .parse()
            .map_err(|e| invalid(&format!("{property}/name"), format!("{e}")))?,
        None => return Err(invalid(&format!("{property}/name"), "name is required")),
    };
    let domain_id = match f.take("domainId") {
        Some(v) => resolve_id(&format!("{property}/domainId"), &v, ctx.ids)?,
        None => return Err(invalid(&format!("{property}/domainId"), "domainId is required")),
    };
    let enabled = f.typed_at("enabled", &format!("{property}/enabled"))?.unwrap_or(true);
    let description = f.typed_at("description", &format!("{property}/description"))?;
    if let Some(unknown) = f.map.keys().next() {
        return Err(invalid(&format!("{property}/{unknown}"), format!("{unknown} is not an EmailAlias property")));
    }
    Ok(AliasSpec { name, domain_id, enabled, description })
}

fn parse_credential(
    i: usize,
    item: Value,
    current: Option<&AccountState>,
    ctx: &mut ParseContext<'_>,
) -> Result<CredentialSpec, SetError> {
    let property = format!("credentials/{i}");
    let at = |name: &str| format!("{property}/{name}");
    let Value::Object(map) = item else { return Err(invalid(&property, "a credential must be an object")) };
    let mut f = Fields { map };
    let kind: CredentialKind = match f.take("@type") {
        Some(v) => typed(&at("@type"), v)?,
        None => return Err(invalid(&at("@type"), "@type is required (Password, AppPassword or ApiKey)")),
    };
    // `credentialId` as Stalwart names it; `id` as earlier ledger versions did.
    let given_id = match (f.take("credentialId"), f.take("id")) {
        (Some(_), Some(_)) => return Err(invalid(&at("credentialId"), "give credentialId, not also id")),
        (a, b) => a.or(b),
    };
    // `"****"` is the masked secret `/get` shows: sent back, it changes nothing.
    let masked = |v: &Value| v.as_str() == Some(MASKED);
    if f.map.get("secret").is_some_and(masked) {
        f.map.remove("secret");
    }
    if f.map.get("otpAuth").is_some_and(masked) {
        f.map.remove("otpAuth");
    }
    let existing = match given_id {
        Some(v) => {
            let id = v.as_str().and_then(ObjectId::from_jmap);
            let found = current.and_then(|a| a.credentials.iter().find(|c| Some(c.id) == id));
            match found {
                Some(c) if c.kind == kind => Some(c),
                Some(_) => return Err(invalid(&at("@type"), "a credential's @type cannot change")),
                None => return Err(invalid(&at("credentialId"), "no such credential on this account")),
            }
        }
        None => None,
    };
    let secret: Option<String> = f.typed_at("secret", &at("secret"))?;
    let otp_auth: Option<String> = f.typed_at("otpAuth", &at("otpAuth"))?;
    let expires_at: Option<UtcDateTime> = match f.take("expiresAt") {
        Some(v) => {
            let raw: String = typed(&at("expiresAt"), v)?;
            Some(raw.parse().map_err(|e| invalid(&at("expiresAt"), format!("{e}")))?)
        }
        None => None,
    };
    let allowed_ips: Vec<IpMask> = match f.take("allowedIps") {
        Some(v) => typed::<Vec<String>>(&at("allowedIps"), v)
            .and_then(|list| within(&at("allowedIps"), list.len(), MAX_ALLOWED_IPS).map(|()| list))?
            .iter()
            .map(|s| s.parse().map_err(|e| invalid(&at("allowedIps"), format!("{e}"))))
            .collect::<Result<_, _>>()?,
        None => vec![],
    };
    let (description, permissions, created_at) = if kind == CredentialKind::Password {
        (None, None, None)
    } else {
        let created_at: Option<String> = f.typed_at("createdAt", &at("createdAt"))?;
        let description = f.typed_at("description", &at("description"))?;
        let permissions = f.typed_at::<CredentialPermissions>("permissions", &at("permissions"))?;
        if let Some(CredentialPermissions::Disable(list) | CredentialPermissions::Replace(list)) = &permissions {
            within(&at("permissions"), list.permissions.len(), MAX_PERMISSIONS)?;
            known_permissions(&format!("{}/permissions", at("permissions")), &list.permissions)?;
        }
        (description, permissions, created_at)
    };
    if let Some(unknown) = f.map.keys().next() {
        return Err(invalid(&at(unknown), format!("{unknown} is not a property of a {kind:?} credential")));
    }
    if kind != CredentialKind::Password && otp_auth.is_some() {
        return Err(invalid(&at("otpAuth"), "only a Password has otpAuth"));
    }
    // `""` turns the second factor off; a URI turns it on (or replaces it).
    let otp_sealed = match otp_auth.as_deref() {
        None | Some("") => None,
        Some(uri) if secrets::valid_otp_auth(uri) => Some(
            ctx.secrets
                .sealed_otp
                .get(&Plaintext::new(uri.to_owned()))
                .cloned()
                .ok_or_else(|| invalid(&at("otpAuth"), "the otpAuth URI could not be sealed"))?,
        ),
        Some(_) => return Err(invalid(&at("otpAuth"), "otpAuth must be an otpauth://totp/ URI with a base32 secret")),
    };
    let otp_enabled = otp_auth.as_deref().map(|uri| !uri.is_empty());
    let password_hash = |secret: &str| {
        secrets::check_strength(secret).map_err(|why| invalid(&at("secret"), why))?;
        ctx.secrets
            .password_hashes
            .get(&Plaintext::new(secret.to_owned()))
            .cloned()
            .ok_or_else(|| invalid(&at("secret"), "the password could not be hashed"))
    };
    match existing {
        Some(cur) => {
            if let Some(created) = created_at
                && created != cur.created_at.to_string()
            {
                return Err(invalid(&at("createdAt"), "createdAt is set by the server"));
            }
            if kind != CredentialKind::Password && secret.is_some() {
                return Err(invalid(&at("secret"), "the secret of an AppPassword or ApiKey is set by the server"));
            }
            let new_secret_hash = match &secret {
                Some(s) => Some(password_hash(s)?),
                None => None,
            };
            Ok(CredentialSpec::Keep(CredentialChange {
                id: cur.id,
                new_secret_hash,
                description: Some(description),
                expires_at: Some(expires_at),
                allowed_ips: Some(allowed_ips),
                permissions: Some(permissions),
                otp_enabled: otp_enabled.or(Some(cur.otp_enabled)),
                new_otp_auth_sealed: otp_sealed,
            }))
        }
        None => {
            if created_at.is_some() {
                return Err(invalid(&at("createdAt"), "createdAt is set by the server"));
            }
            let secret_hash = match kind {
                CredentialKind::Password => match &secret {
                    Some(s) if !s.is_empty() => password_hash(s)?,
                    _ => return Err(invalid(&at("secret"), "a Password needs a non-empty secret")),
                },
                _ => {
                    if secret.is_some() {
                        return Err(invalid(
                            &at("secret"),
                            "the secret of an AppPassword or ApiKey is set by the server",
                        ));
                    }
                    let (plain, hash) = secrets::generate(kind);
                    ctx.generated.push((i, plain));
                    hash
                }
            };
            Ok(CredentialSpec::Add(NewCredential {
                kind,
                description,
                secret_hash,
                expires_at,
                allowed_ips,
                permissions,
                otp_enabled: otp_sealed.is_some(),
                otp_auth_sealed: otp_sealed,
            }))
        }
    }
}

/// The `@type` of a create object.
fn kind_of(object: &mut Map<String, Value>) -> Result<AccountKind, SetError> {
    match object.remove("@type").filter(|v| !v.is_null()) {
        Some(v) => typed("@type", v),
        None => Err(invalid("@type", "@type is required (User or Group)")),
    }
}

/// A create object into a command. Generated secrets are keyed by their
/// position in `credentials`, which is also their order among the added ones.
pub(super) fn parse_create(
    mut object: Map<String, Value>,
    ctx: &mut ParseContext<'_>,
) -> Result<CreateAccount, SetError> {
    let kind = kind_of(&mut object)?;
    refuse_server_set::<Account>(&object)?;
    let fields = parse_fields(kind, object, None, ctx)?;
    let mut create = fields.create;
    for spec in fields.credentials {
        match spec {
            CredentialSpec::Add(new) => create.credentials.push(new),
            CredentialSpec::Keep(_) => return Err(invalid("credentials", "a new account has no existing credentials")),
        }
    }
    Ok(create)
}

/// The patched full object of an existing account into an update command.
/// Generated secrets are keyed by their order among the added credentials.
pub(super) fn parse_update(
    current: &AccountState,
    mut patched: Map<String, Value>,
    ctx: &mut ParseContext<'_>,
) -> Result<UpdateAccount, SetError> {
    take_fixed::<Account>(&mut patched, &render(current), Some(variant(current.kind)))?;
    let fields = parse_fields(current.kind, patched, Some(current), ctx)?;
    let added: Vec<usize> = fields
        .credentials
        .iter()
        .enumerate()
        .filter(|(_, spec)| matches!(spec, CredentialSpec::Add(_)))
        .map(|(i, _)| i)
        .collect();
    for (position, _) in ctx.generated.iter_mut() {
        *position = added.iter().position(|p| p == position).unwrap_or(usize::MAX);
    }
    let c = fields.create;
    let is_user = c.kind == AccountKind::User;
    Ok(UpdateAccount {
        id: current.id,
        name: Some(c.name),
        domain_id: Some(c.domain_id),
        description: Some(c.description),
        locale: Some(c.locale),
        time_zone: Some(c.time_zone),
        member_tenant_id: Some(c.member_tenant_id),
        encryption_at_rest: is_user.then_some(c.encryption_at_rest),
        roles: Some(c.roles),
        permissions: Some(c.permissions),
        quotas: Some(c.quotas),
        aliases: Some(c.aliases),
        credentials: is_user.then_some(fields.credentials),
        member_group_ids: is_user.then_some(c.member_group_ids),
    })
}

/// Every Password secret and `otpAuth` URI in a create object or update patch,
/// to hash or seal before the commit (argon2 is too slow for the writer thread).
pub(super) fn collect_secrets(value: &Value, top: bool, out: &mut SecretRequests) {
    match value {
        Value::Object(map) => {
            let is_password = map.get("@type").and_then(Value::as_str) == Some("Password");
            for (k, v) in map {
                let text = v.as_str().filter(|s| !s.is_empty() && *s != MASKED).map(|s| Plaintext::new(s.to_owned()));
                if (k == "secret" && is_password) || (top && k.ends_with("/secret")) {
                    out.passwords.extend(text);
                } else if k == "otpAuth" || (top && k.ends_with("/otpAuth")) {
                    out.otps.extend(text);
                } else {
                    collect_secrets(v, false, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secrets(v, false, out)),
        _ => {}
    }
}
