//! Authentication and authorisation: who is calling (Basic with a password or app
//! password, Bearer with an API key, or the fallback administrator) and what they
//! may do.

pub mod admin;
pub(crate) mod catalogue;
pub mod limiter;
pub mod permissions;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use ipnet::IpNet;
use ledger_events::model::{AccountKind, CredentialKind, Roles};
use ledger_events::values::{ExternalId, ObjectId, SecretHash, UtcDateTime};
use ledger_events::{Actor, AuthMethod};
use ledger_projections::{AccountState, AddressUse, CredentialState, SnapshotView, StateRead, state};

use crate::command::Writer;
use crate::secrets::{self, Plaintext, SealingKey};
use crate::store::Ledger;
use permissions::{Bounds, PermissionSet};

/// Who a request acts as.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `None` for the fallback administrator.
    pub account_id: Option<ObjectId>,
    pub name: String,
    pub method: AuthMethod,
    pub permissions: PermissionSet,
    /// A tenant-scoped principal sees and changes only its tenant's accounts.
    pub tenant: Option<ExternalId>,
    /// The credential it logged in with; `None` for the fallback administrator.
    pub credential: Option<CredentialRef>,
}

/// The credential a principal logged in with: which one, the secret hash it
/// had then (a changed secret ends a stream), and its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRef {
    pub id: ObjectId,
    pub secret_hash: SecretHash,
    pub bounds: Bounds,
}

impl Principal {
    /// The fallback administrator named `name`: every permission, no tenant,
    /// no credential of the log.
    pub fn fallback(name: &str) -> Self {
        Principal {
            account_id: None,
            name: name.to_owned(),
            method: AuthMethod::Fallback,
            permissions: PermissionSet::everything(),
            tenant: None,
            credential: None,
        }
    }

    pub fn may(&self, permission: &str) -> bool {
        self.permissions.may(permission)
    }

    /// What per-principal bounds count by: the account id, or the fallback
    /// administrator's name.
    pub(crate) fn key(&self) -> String {
        match self.account_id {
            Some(id) => id.to_jmap(),
            None => format!("fallback:{}", self.name),
        }
    }

    pub fn is(&self, id: ObjectId) -> bool {
        self.account_id == Some(id)
    }

    /// The actor recorded in the log. Accounts are recorded by id only, never by
    /// address: headers are hashed and cannot be erased, so they hold no personal
    /// data. Readers show the address from the current directory.
    pub fn actor(&self) -> Actor {
        match self.account_id {
            Some(id) => Actor { principal_id: id.to_jmap(), name: String::new(), auth_method: self.method },
            None => Actor { principal_id: String::new(), name: self.name.clone(), auth_method: self.method },
        }
    }

    /// The principal as the authority check of the decide step sees it.
    pub fn writer(&self) -> Writer {
        Writer {
            account_id: self.account_id,
            credential_id: self.credential.as_ref().map(|c| c.id),
            permissions: self.permissions.clone(),
            bounds: self.credential.as_ref().map(|c| c.bounds.clone()).unwrap_or_default(),
            tenant: self.tenant.clone(),
            secret: self.credential.as_ref().map(|c| c.secret_hash.clone()),
        }
    }

    /// Whether the principal may do something to the whole ledger: it has the
    /// permission and is not confined to a tenant.
    pub(crate) fn may_globally(&self, permission: &str) -> bool {
        self.tenant.is_none() && self.may(permission)
    }

    /// Whether an object of `tenant` is within this principal's tenant (always,
    /// if the principal is not tenant-scoped).
    pub(crate) fn sees(&self, tenant: Option<&ExternalId>) -> bool {
        self.tenant.is_none() || tenant == self.tenant.as_ref()
    }
}

/// Why a request was not let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Missing or wrong credentials; the same answer whatever was wrong.
    Unauthorized,
    /// Too many failures from this address; retry after this many seconds.
    RateLimited(u64),
    /// Too many password checks at once; retry in a second (not a failure).
    Busy,
}

/// Settings of the authenticator.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub admin_user: String,
    pub admin_password: Option<String>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Failed logins one source (an IPv4 address, 127.0.0.0/8, an IPv6 /64)
    /// may have within a window (see [`limiter`]).
    pub per_source: limiter::Budget,
    /// Failed logins at one account (or unknown login name), from anywhere,
    /// within a window.
    pub per_account: limiter::Budget,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            admin_user: "admin".into(),
            admin_password: None,
            trusted_proxies: vec![],
            per_source: limiter::Budget { max_failures: 10, window: Duration::from_secs(60) },
            per_account: limiter::Budget { max_failures: 100, window: Duration::from_secs(15 * 60) },
        }
    }
}

/// A verified (account, secret) pair, so a busy client does not pay argon2 on
/// every request. Valid only while the credential keeps the same stored hash.
#[derive(Clone)]
struct CachedLogin {
    credential_id: Option<ObjectId>,
    secret_hash: SecretHash,
}

pub struct Authenticator {
    admin_user: String,
    admin_hash: SecretHash,
    trusted_proxies: Vec<IpNet>,
    cache: moka::sync::Cache<[u8; 32], CachedLogin>,
    cache_key: [u8; 32],
    limiter: limiter::LoginLimiter,
    sealing: Arc<SealingKey>,
    /// Verified when the user is unknown, so timing does not tell.
    dummy_hash: SecretHash,
    otp_steps: OtpSteps,
}

/// The last TOTP time step each credential logged in with: a code is good
/// once (RFC 6238 §5.2, "the verifier MUST NOT accept the second attempt of the
/// OTP after the successful validation"). A later code of the same credential
/// must be of a later step. Kept in memory, so a restart forgets it: a code
/// used in the 90 seconds before a restart may be used once more after it.
#[derive(Default)]
struct OtpSteps {
    last: std::sync::Mutex<std::collections::HashMap<ObjectId, u64>>,
}

/// Credentials remembered at most; older steps are dropped first.
const OTP_STEPS_LIMIT: usize = 100_000;

impl OtpSteps {
    /// Records `step` for `credential` if it is later than the last one used.
    fn first_use(&self, credential: ObjectId, step: u64) -> bool {
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.get(&credential).is_some_and(|&used| used >= step) {
            return false;
        }
        if last.len() >= OTP_STEPS_LIMIT {
            // Steps more than two behind this one can no longer be replayed.
            last.retain(|_, used| *used + 2 >= step);
        }
        last.insert(credential, step);
        true
    }
}

/// Verified logins kept at most; the least recently used go first.
const CACHE_LIMIT: u64 = 100_000;
/// How long a verified password spares argon2: a password that leaks from
/// memory is usable from the cache no longer than this.
const CACHE_TTL: Duration = Duration::from_secs(15 * 60);

impl Authenticator {
    pub(crate) fn new(config: &AuthConfig, admin_hash: SecretHash, sealing: Arc<SealingKey>) -> Self {
        let mut cache_key = [0u8; 32];
        getrandom::fill(&mut cache_key).expect("the operating system's random source failed");
        Authenticator {
            admin_user: config.admin_user.clone(),
            admin_hash,
            trusted_proxies: config.trusted_proxies.clone(),
            cache: moka::sync::Cache::builder().max_capacity(CACHE_LIMIT).time_to_live(CACHE_TTL).build(),
            cache_key,
            limiter: limiter::LoginLimiter::new(config.per_source, config.per_account),
            sealing,
            dummy_hash: secrets::hash_password("account-ledger timing equaliser"),
            otp_steps: OtpSteps::default(),
        }
    }

    /// Whether `ip` is one of the proxies whose `X-Forwarded-For` is believed.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// The client address: the peer, or the forwarded-for address when the peer is
    /// a trusted proxy.
    pub fn client_ip(&self, peer: SocketAddr, forwarded_for: Option<&str>) -> IpAddr {
        let peer_ip = peer.ip();
        if !self.trusted_proxies.iter().any(|net| net.contains(&peer_ip)) {
            return peer_ip;
        }
        forwarded_for
            .into_iter()
            .flat_map(|h| h.split(','))
            .rev()
            .filter_map(|part| part.trim().parse::<IpAddr>().ok())
            .find(|ip| !self.trusted_proxies.iter().any(|net| net.contains(ip)))
            .unwrap_or(peer_ip)
    }

    fn cache_slot(&self, who: &str, secret: &str) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.cache_key);
        hasher.update(who.as_bytes());
        hasher.update(&[0]);
        hasher.update(secret.as_bytes());
        *hasher.finalize().as_bytes()
    }

    /// Authenticates one request. Blocking (argon2, store reads): call it off the
    /// async executor.
    ///
    /// Checks that cost nothing (a cached login, a generated secret's digest)
    /// need only the source to be below its limit; every other check takes a
    /// limiter slot for its source and target first (see [`limiter`]).
    pub fn authenticate(
        &self,
        ledger: &Ledger,
        authorization: Option<&str>,
        ip: IpAddr,
        now: UtcDateTime,
    ) -> Result<Principal, AuthError> {
        let clock = Instant::now();
        let source = limiter::Source::of(ip);
        if let Some(retry) = self.limiter.source_blocked(source, clock) {
            return Err(AuthError::RateLimited(retry));
        }
        let Some(authorization) = authorization else { return Err(AuthError::Unauthorized) };
        // The read state itself, not a clone of its view: erasure knows it is held.
        let read = ledger.read();
        let view = &read.view;
        let attempt = Try { source, clock, ip, now };
        let result = if let Some(token) = strip_scheme(authorization, "Bearer") {
            self.bearer(view, token.trim(), ip, now).ok_or(AuthError::Unauthorized)
        } else if let Some(encoded) = strip_scheme(authorization, "Basic") {
            match decode_basic(encoded.trim()) {
                Some((user, secret)) => return self.basic(view, &user, &secret, attempt),
                None => Err(AuthError::Unauthorized),
            }
        } else {
            Err(AuthError::Unauthorized)
        };
        if result.is_err() {
            self.limiter.record_failure(source, clock);
        }
        result
    }

    /// The limiter's digest of a login target.
    fn target(&self, kind: &str, key: &str) -> limiter::Target {
        let digest = self.cache_slot(kind, key);
        let mut target = [0u8; 16];
        target.copy_from_slice(&digest[..16]);
        target
    }

    /// A Basic login of `user` with `secret`.
    fn basic(&self, view: &SnapshotView, user: &str, secret: &Plaintext, at: Try) -> Result<Principal, AuthError> {
        let failed = Err(AuthError::Unauthorized);
        if user == self.admin_user {
            let slot = self.cache_slot("", secret.expose());
            if self.cache.get(&slot).is_some_and(|c| c.secret_hash == self.admin_hash) {
                return Ok(Principal::fallback(&self.admin_user));
            }
            let attempt = self.begin(at, self.target("fallback", user))?;
            if !checked(&attempt, secret.expose(), &self.admin_hash)? {
                return failed;
            }
            attempt.succeeded();
            self.cache.insert(slot, CachedLogin { credential_id: None, secret_hash: self.admin_hash.clone() });
            return Ok(Principal::fallback(&self.admin_user));
        }
        let Some(account) = find_account(view, user) else {
            let attempt = self.begin(at, self.target("name", user))?;
            // Same work as a wrong password, so timing does not reveal unknown users.
            checked(&attempt, secret.expose(), &self.dummy_hash)?;
            return failed;
        };
        let usable = |c: &&CredentialState| usable(c, at.ip, at.now);
        // App passwords: compare digests (cheap, constant-time, and a generated
        // secret cannot be guessed, so a match needs no slot).
        let digest = secrets::digest_generated(secret.expose());
        if let Some(c) = account
            .credentials
            .iter()
            .filter(usable)
            .find(|c| c.kind == CredentialKind::AppPassword && digests_equal(&c.secret_hash, &digest))
        {
            return self.principal(view, &account, c).ok_or(AuthError::Unauthorized);
        }
        let password = account.credentials.iter().filter(usable).find(|c| c.kind == CredentialKind::Password);
        let slot = self.cache_slot(&account.id.to_jmap(), secret.expose());
        if let Some(password) = password.filter(|p| !p.otp_enabled)
            && self
                .cache
                .get(&slot)
                .is_some_and(|c| c.credential_id == Some(password.id) && c.secret_hash == password.secret_hash)
        {
            return self.principal(view, &account, password).ok_or(AuthError::Unauthorized);
        }
        let attempt = self.begin(at, self.target("account", &account.id.to_jmap()))?;
        let Some(password) = password else {
            checked(&attempt, secret.expose(), &self.dummy_hash)?;
            return failed;
        };
        let principal = if password.otp_enabled {
            // `password$123456`: the password, `$`, the current TOTP code. Never
            // cached. The password is checked whatever else is wrong, so a
            // missing code costs the same argon2 work as a wrong one.
            let (pass, code) = secret.expose().rsplit_once('$').unwrap_or((secret.expose(), ""));
            let password_ok = checked(&attempt, pass, &password.secret_hash)?;
            let step = self.sealing.unseal(password.otp_auth_sealed.as_deref().unwrap_or_default()).and_then(|uri| {
                let unix = u64::try_from(at.now.millis() / 1000).ok()?;
                secrets::totp_step(uri.expose(), code, unix)
            });
            match step {
                Some(step) if password_ok && self.otp_steps.first_use(password.id, step) => {
                    self.principal(view, &account, password)
                }
                _ => None,
            }
        } else if checked(&attempt, secret.expose(), &password.secret_hash)? {
            self.cache.insert(
                slot,
                CachedLogin { credential_id: Some(password.id), secret_hash: password.secret_hash.clone() },
            );
            self.principal(view, &account, password)
        } else {
            None
        };
        let principal = principal.ok_or(AuthError::Unauthorized)?;
        attempt.succeeded();
        Ok(principal)
    }

    /// Takes a limiter slot for an attempt at `target`.
    fn begin(&self, at: Try, target: limiter::Target) -> Result<limiter::Attempt<'_>, AuthError> {
        self.limiter.begin(at.source, Some(target), at.clock).map_err(AuthError::RateLimited)
    }

    fn bearer(&self, view: &SnapshotView, token: &str, ip: IpAddr, now: UtcDateTime) -> Option<Principal> {
        let digest = secrets::digest_generated(token);
        let (account_id, credential_id) = state::secret_owner(view, digest.as_str()).ok()??;
        let account = state::account(view, account_id).ok()??;
        let credential = account.credentials.iter().find(|c| c.id == credential_id)?;
        (credential.kind == CredentialKind::ApiKey
            && digests_equal(&credential.secret_hash, &digest)
            && usable(credential, ip, now))
        .then(|| self.principal(view, &account, credential))
        .flatten()
    }

    /// The principal of a login; `None` if its rights cannot be read (a login
    /// fails closed rather than lose a group's disabled permissions).
    fn principal(
        &self,
        view: &SnapshotView,
        account: &AccountState,
        credential: &CredentialState,
    ) -> Option<Principal> {
        let permissions = effective_permissions(view, account).ok()?.narrowed(credential.permissions.as_ref());
        let method = match credential.kind {
            CredentialKind::Password => AuthMethod::Password,
            CredentialKind::AppPassword => AuthMethod::AppPassword,
            CredentialKind::ApiKey => AuthMethod::ApiKey,
        };
        Some(Principal {
            account_id: Some(account.id),
            name: account.email_address.clone(),
            method,
            permissions,
            tenant: account.member_tenant_id.clone(),
            credential: Some(CredentialRef {
                id: credential.id,
                secret_hash: credential.secret_hash.clone(),
                bounds: Bounds::of(credential),
            }),
        })
    }
}

/// A password check inside `attempt`: `Busy` (no turn at the argon2 gate
/// in time) ends the attempt as no failure and is answered 503.
fn checked(attempt: &limiter::Attempt<'_>, secret: &str, hash: &SecretHash) -> Result<bool, AuthError> {
    match secrets::verify_password(secret, hash) {
        secrets::Checked::Match => Ok(true),
        secrets::Checked::Mismatch => Ok(false),
        secrets::Checked::Busy => {
            attempt.abandon();
            Err(AuthError::Busy)
        }
    }
}

/// Where and when one login attempt is made.
#[derive(Clone, Copy)]
struct Try {
    source: limiter::Source,
    clock: Instant,
    ip: IpAddr,
    now: UtcDateTime,
}

/// The login behind a long-lived stream (the change feed, push), rechecked
/// before every delivery: the stream ends when it no longer holds.
pub(crate) struct Session {
    auth: Arc<Authenticator>,
    principal: Arc<Principal>,
    ip: IpAddr,
}

impl Session {
    pub(crate) fn new(auth: Arc<Authenticator>, principal: Arc<Principal>, ip: IpAddr) -> Self {
        Session { auth, principal, ip }
    }

    /// The tenant the principal is confined to.
    pub(crate) fn tenant(&self) -> Option<&ExternalId> {
        self.principal.tenant.as_ref()
    }

    /// When the credential expires, if it does.
    pub(crate) fn expires_at(&self) -> Option<UtcDateTime> {
        self.principal.credential.as_ref().and_then(|c| c.bounds.expires_at)
    }

    /// The principal as it is in `view` at `now`, if the login still holds:
    /// the account is alive, its credential is still there with the same
    /// secret, unexpired and allowed from the client's address, and its tenant
    /// is unchanged. Its permissions are recomputed (roles, groups and modes may
    /// have changed). `None` ends the stream. Blocking (store reads).
    pub(crate) fn current(&self, view: &SnapshotView, now: UtcDateTime) -> Option<Principal> {
        let Some(id) = self.principal.account_id else { return Some((*self.principal).clone()) };
        let login = self.principal.credential.as_ref()?;
        let (account, credential) =
            login_still_there(view, id, login.id, &login.secret_hash, self.principal.tenant.as_ref()).ok()??;
        if !usable(&credential, self.ip, now) {
            return None;
        }
        self.auth.principal(view, &account, &credential)
    }
}

/// The account and credential of a login, if both are still there: the
/// account alive and in the same tenant, the credential present with the same
/// secret. Whether it may still be used (expiry, address) is the caller's
/// check. Blocking (store reads).
pub(crate) fn login_still_there(
    view: &impl StateRead,
    account_id: ObjectId,
    credential_id: ObjectId,
    secret: &SecretHash,
    tenant: Option<&ExternalId>,
) -> Result<Option<(AccountState, CredentialState)>, ledger_projections::Error> {
    let Some(account) = state::account(view, account_id)?.filter(|a| a.member_tenant_id.as_ref() == tenant) else {
        return Ok(None);
    };
    let credential = account.credentials.iter().find(|c| c.id == credential_id && c.secret_hash == *secret).cloned();
    Ok(credential.map(|c| (account, c)))
}

/// The effective permissions of `account` as `view` has it: its roles, its
/// groups (each with its roles and mode) and its own mode, folded by
/// [`permissions::effective`]. Blocking (store reads).
pub(crate) fn effective_permissions(
    view: &impl StateRead,
    account: &AccountState,
) -> Result<PermissionSet, ledger_projections::Error> {
    let mut groups = Vec::with_capacity(account.member_group_ids.len());
    for g in &account.member_group_ids {
        groups.extend(state::account(view, *g)?);
    }
    let mut roles = std::collections::BTreeMap::new();
    for a in std::iter::once(account).chain(groups.iter()) {
        if let Roles::Custom { role_ids } = &a.roles {
            for id in role_ids.iter().filter_map(|r| ObjectId::from_jmap(r.as_str())) {
                roles.insert(id, role_grant(view, id)?);
            }
        }
    }
    let mut set = permissions::effective(account, &groups, &|id| roles.get(&id).cloned());
    // What the account's tenant disables is disabled for it (a tenant only
    // ever takes rights away: see `command::tenant`).
    if let Some(tenant) = account.member_tenant_id.as_ref().and_then(|t| ObjectId::from_jmap(t.as_str()))
        && let Some(tenant) = state::tenant(view, tenant)?
        && let ledger_events::model::Permissions::Merge(list) | ledger_events::model::Permissions::Replace(list) =
            &tenant.permissions
    {
        set.denied.extend(permissions::PermissionSet::of(&list.disabled_permissions));
    }
    Ok(set)
}

/// What role `id` grants with every role it extends, transitively (each
/// role once, so a cycle an old log might hold ends).
fn role_grant(view: &impl StateRead, id: ObjectId) -> Result<permissions::RoleGrant, ledger_projections::Error> {
    let mut grant = permissions::RoleGrant::default();
    let mut seen = std::collections::BTreeSet::new();
    let mut stack = vec![id];
    while let Some(next) = stack.pop() {
        if !seen.insert(next) {
            continue;
        }
        if let Some(role) = state::role(view, next)? {
            grant.enabled.extend(role.permissions);
            grant.disabled.extend(role.disabled_permissions);
            stack.extend(role.role_ids);
        }
    }
    Ok(grant)
}

fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = header.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}

fn decode_basic(encoded: &str) -> Option<(String, Plaintext)> {
    let raw = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, secret) = text.split_once(':')?;
    Some((user.to_lowercase(), Plaintext::new(secret.to_owned())))
}

/// `name@domain` (primary address), or a bare name that only one account
/// without a tenant has.
fn find_account(view: &SnapshotView, user: &str) -> Option<AccountState> {
    let id = if user.contains('@') {
        match state::address_owner(view, user).ok()?? {
            (id, AddressUse::Primary) => id,
            (_, AddressUse::Alias) => return None,
        }
    } else {
        // Only among accounts without a tenant: a tenant cannot make another
        // account's bare name ambiguous by creating the same name.
        let mut global = state::accounts_named(view, user)
            .ok()?
            .into_iter()
            .filter(|id| state::account(view, *id).ok().flatten().is_some_and(|a| a.member_tenant_id.is_none()));
        match (global.next(), global.next()) {
            (Some(only), None) => only,
            _ => return None,
        }
    };
    state::account(view, id).ok()?.filter(|a| a.kind == AccountKind::User)
}

fn usable(c: &CredentialState, ip: IpAddr, now: UtcDateTime) -> bool {
    Bounds::of(c).allow(ip, now)
}

/// Compares two `blake3:` digests in constant time.
fn digests_equal(a: &SecretHash, b: &SecretHash) -> bool {
    let parse = |h: &SecretHash| h.as_str().strip_prefix("blake3:").and_then(|x| blake3::Hash::from_hex(x).ok());
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator(trusted: &[&str]) -> Authenticator {
        let dir = tempfile::tempdir().unwrap();
        let config =
            AuthConfig { trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(), ..Default::default() };
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI"
            .parse()
            .unwrap();
        Authenticator::new(&config, hash, Arc::new(SealingKey::load_or_create(dir.path()).unwrap()))
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let auth = authenticator(&["10.0.0.0/8"]);
        let proxy: SocketAddr = "10.1.1.1:4000".parse().unwrap();
        let stranger: SocketAddr = "192.0.2.9:4000".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(auth.client_ip(proxy, Some("198.51.100.1")), ip("198.51.100.1"));
        assert_eq!(
            auth.client_ip(proxy, Some("6.6.6.6, 198.51.100.1, 10.2.2.2")),
            ip("198.51.100.1"),
            "rightmost untrusted hop"
        );
        assert_eq!(auth.client_ip(stranger, Some("198.51.100.1")), ip("192.0.2.9"), "spoofed header ignored");
        assert_eq!(auth.client_ip(proxy, Some("garbage")), ip("10.1.1.1"));
        assert_eq!(auth.client_ip(proxy, None), ip("10.1.1.1"));
    }
}
