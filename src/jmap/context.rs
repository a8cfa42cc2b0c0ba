//! What JMAP methods work with: the service's parts ([`Services`], owned by
//! the JMAP layer and held by the HTTP state), the context of one method call
//! ([`CallContext`]), and the one resolver of `#creationId` references
//! ([`CreatedIds`], RFC 8620 §5.3), for ids in keys and in values alike.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use std::time::Duration;

use ledger_events::values::ObjectId;

use super::error::MethodError;
use super::session::Limits;
use crate::auth::Principal;
use crate::maintenance::PurgePolicy;
use crate::secrets::SealingKey;
use crate::slots::Places;
use crate::store::{CommitOrigin, Ledger};
use crate::usage::{DEFAULT_WINDOW, UsageIngest};

/// How the JMAP service is set up: its limits, the usage coalescing window, and
/// the purge policy.
#[derive(Debug, Clone, Copy)]
pub struct ServicesConfig {
    pub limits: Limits,
    /// Usage commits start at most once per window (see [`crate::usage`]).
    pub usage_window: Duration,
    pub purge_policy: PurgePolicy,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        ServicesConfig { limits: Limits::default(), usage_window: DEFAULT_WINDOW, purge_policy: PurgePolicy::default() }
    }
}

/// The parts of the service JMAP methods use. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub(crate) ledger: Ledger,
    pub(crate) limits: Limits,
    /// Requests in flight per principal, for `maxConcurrentRequests`.
    pub(crate) concurrency: Arc<Places<String>>,
    /// Seals `otpAuth` URIs before they go into events.
    pub(crate) sealing: Arc<SealingKey>,
    /// Where `x:Account/reportUsage` queues reports for coalesced commits.
    pub(crate) usage: UsageIngest,
    pub(crate) purge_policy: PurgePolicy,
    /// argon2id password hashes computed by `/set` since the start.
    pub(crate) passwords_hashed: Arc<std::sync::atomic::AtomicU64>,
    /// Seconds per method call, by method (for `/metrics`).
    pub(crate) method_seconds: Family<MethodLabel, Histogram>,
}

/// The label of a method's latency: its name when the server knows it, else
/// `unknown` (so that clients cannot grow the label set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub(crate) struct MethodLabel {
    pub(crate) method: String,
}

/// Latency buckets: 100 µs to about 6.5 s.
fn latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 17))
}

impl Services {
    pub(crate) fn new(ledger: Ledger, sealing: Arc<SealingKey>, config: ServicesConfig) -> Self {
        Services {
            usage: UsageIngest::new(ledger.clone(), config.usage_window),
            ledger,
            limits: config.limits,
            concurrency: Arc::default(),
            sealing,
            purge_policy: config.purge_policy,
            passwords_hashed: Arc::default(),
            method_seconds: Family::new_with_constructor(latency_histogram),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn purge_policy(&self) -> PurgePolicy {
        self.purge_policy
    }

    /// Passwords `/set` has hashed (argon2id) since the start: what refused
    /// calls must not add to.
    pub fn passwords_hashed(&self) -> u64 {
        self.passwords_hashed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Requests being answered now, over all principals (each has at most
    /// `maxConcurrentRequests`).
    pub fn requests_in_flight(&self) -> usize {
        self.concurrency.total()
    }
}

/// What a method call needs beyond its arguments.
pub(crate) struct CallContext<'a> {
    pub(crate) services: &'a Services,
    pub(crate) principal: &'a Arc<Principal>,
    /// Objects created earlier in this request, by creation id.
    pub(crate) created_ids: &'a mut CreatedIds,
    /// Who the commits of this call are recorded as, and in answer to what.
    pub(crate) origin: CommitOrigin,
    /// Passwords the rest of the request may still hash (argon2id).
    pub(crate) passwords_left: &'a mut usize,
    /// Bytes (as compact JSON) left of the response's bound: a method that
    /// builds a long list stops once it would pass them (`requestTooLarge`)
    /// instead of building it all first.
    pub(crate) response_left: usize,
}

/// Counts what a method adds to its answer against what is left of the
/// response's bound ([`CallContext::response_left`]).
pub(crate) struct ResponseBudget(usize);

impl ResponseBudget {
    pub(crate) fn new(left: usize) -> Self {
        ResponseBudget(left)
    }

    /// Charges `value`; `requestTooLarge` once the answer would pass the bound.
    pub(crate) fn charge(&mut self, value: &serde_json::Value) -> Result<(), MethodError> {
        match super::request::json_size_within(value, self.0) {
            Some(size) => {
                self.0 -= size;
                Ok(())
            }
            None => Err(MethodError::ResponseFull(format!(
                "the answer would be larger than what is left of the response's {} bytes; ask for fewer",
                super::request::MAX_SIZE_RESPONSE
            ))),
        }
    }
}

/// Passwords one request may set, over all its calls: each costs an argon2id
/// hash (about 25 ms of CPU and 19 MiB). More is `requestTooLarge`
/// (docs/operations.md, "Limits").
pub(crate) const MAX_PASSWORDS_IN_REQUEST: usize = 64;

impl CallContext<'_> {
    /// `forbidden` unless the principal may act on the whole ledger with
    /// `permission` (holds it and is not tenant-scoped).
    pub(crate) fn require_globally(&self, permission: &str) -> Result<(), MethodError> {
        if self.principal.may_globally(permission) { Ok(()) } else { Err(MethodError::needs(permission)) }
    }
}

/// Creation id → id of every object created earlier in the request (and those
/// the client passed in `createdIds`), RFC 8620 §3.3 and §5.3.
#[derive(Debug, Clone, Default)]
pub(crate) struct CreatedIds(HashMap<String, String>);

/// Why a wire id names no object of this ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UnresolvedId {
    #[error("creation id #{0} was not created in this request")]
    UnknownCreation(String),
    #[error("{0:?} is not an id of this ledger")]
    NotAnId(String),
}

impl CreatedIds {
    pub(crate) fn new(ids: HashMap<String, String>) -> Self {
        CreatedIds(ids)
    }

    pub(crate) fn insert(&mut self, creation_id: String, id: ObjectId) {
        self.0.insert(creation_id, id.to_jmap());
    }

    pub(crate) fn extend(&mut self, other: CreatedIds) {
        self.0.extend(other.0);
    }

    pub(crate) fn to_map(&self) -> &HashMap<String, String> {
        &self.0
    }

    /// The id string `raw` stands for: the id created for `#creationId`, or
    /// `raw` itself when it is not a reference.
    pub(crate) fn lookup<'r>(&'r self, raw: &'r str) -> Result<&'r str, UnresolvedId> {
        match raw.strip_prefix('#') {
            Some(creation) => {
                self.0.get(creation).map(String::as_str).ok_or_else(|| UnresolvedId::UnknownCreation(creation.into()))
            }
            None => Ok(raw),
        }
    }

    /// The id `raw` names: a `#creationId` of this request, or an id this ledger issued.
    pub(crate) fn resolve(&self, raw: &str) -> Result<ObjectId, UnresolvedId> {
        let id = self.lookup(raw)?;
        ObjectId::from_jmap(id).ok_or_else(|| UnresolvedId::NotAnId(id.to_owned()))
    }

    /// How to name `raw` back to the client: the id it resolved to, else as given.
    pub(crate) fn shown(&self, raw: &str) -> String {
        self.lookup(raw).unwrap_or(raw).to_owned()
    }

    /// The object `raw` names (`None` when it names none) and how to name it
    /// back to the client, for methods that list ids as `notFound`.
    pub(crate) fn resolve_shown(&self, raw: &str) -> (Option<ObjectId>, String) {
        (self.resolve(raw).ok(), self.shown(raw))
    }
}

/// Runs blocking reads (fjall) off the async executor.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, MethodError> + Send + 'static,
) -> Result<T, MethodError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "read task failed");
        MethodError::ServerFail
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_resolver_for_references_and_ids() {
        let mut ids = CreatedIds::default();
        ids.insert("d1".into(), ObjectId(5));
        assert_eq!(ids.resolve("#d1"), Ok(ObjectId(5)));
        assert_eq!(ids.resolve("f"), Ok(ObjectId(5)));
        assert_eq!(ids.resolve("#nope"), Err(UnresolvedId::UnknownCreation("nope".into())));
        assert_eq!(ids.resolve("ab"), Err(UnresolvedId::NotAnId("ab".into())));
        assert_eq!((ids.shown("#d1"), ids.shown("#nope"), ids.shown("x")), ("f".into(), "#nope".into(), "x".into()));
        let passed_in = CreatedIds::new(HashMap::from([("k".to_owned(), "not-an-id".to_owned())]));
        assert_eq!(passed_in.resolve("#k"), Err(UnresolvedId::NotAnId("not-an-id".into())));
        assert_eq!(passed_in.shown("#k"), "not-an-id");
    }
}
