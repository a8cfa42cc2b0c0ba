//! The JMAP Session resource (RFC 8620 §2) and the server's limits.

use serde_json::{Value, json};

/// The one JMAP account the ledger exposes: the directory itself.
pub const ACCOUNT_ID: &str = "ledger";
pub const CORE: &str = "urn:ietf:params:jmap:core";
pub const STALWART: &str = "urn:stalwart:jmap";

/// Limits advertised in the core capability and enforced by the API.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_size_request: usize,
    pub max_concurrent_requests: usize,
    pub max_calls_in_request: usize,
    pub max_objects_in_get: usize,
    pub max_objects_in_set: usize,
    /// Ids one `/query` answers at most (RFC 8620 §5.5 lets the server cap
    /// `limit`; the answer then names the limit it used). Not in the Session
    /// object: RFC 8620 has no place for it.
    pub max_query_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_size_request: 10_000_000,
            max_concurrent_requests: 64,
            max_calls_in_request: 32,
            max_objects_in_get: 500,
            max_objects_in_set: 500,
            max_query_limit: 10_000,
        }
    }
}

/// The Session object for `username`, with URLs under `base` (e.g. `http://host:port`).
pub fn session(limits: &Limits, base: &str, username: &str) -> Value {
    let mut session = json!({
        "capabilities": {
            CORE: {
                "maxSizeUpload": 0,
                "maxConcurrentUpload": 0,
                "maxSizeRequest": limits.max_size_request,
                "maxConcurrentRequests": limits.max_concurrent_requests,
                "maxCallsInRequest": limits.max_calls_in_request,
                "maxObjectsInGet": limits.max_objects_in_get,
                "maxObjectsInSet": limits.max_objects_in_set,
                "collationAlgorithms": ["i;ascii-casemap"],
            },
            STALWART: {},
        },
        "accounts": {
            ACCOUNT_ID: {
                "name": "account-ledger directory",
                "isPersonal": false,
                "isReadOnly": false,
                "accountCapabilities": { STALWART: {} },
            }
        },
        "primaryAccounts": { STALWART: ACCOUNT_ID },
        "username": username,
        "apiUrl": format!("{base}/api"),
        "downloadUrl": format!("{base}/download/{{accountId}}/{{blobId}}/{{name}}?accept={{type}}"),
        "uploadUrl": format!("{base}/upload/{{accountId}}/"),
        "eventSourceUrl": format!("{base}/eventsource/?types={{types}}&closeafter={{closeafter}}&ping={{ping}}"),
    });
    session["state"] = json!(session_state(limits, username));
    session
}

/// Changes whenever the Session object would: a digest of what it depends on
/// (the advertised limits and the user name; settings the Session does not
/// show leave it as it was).
pub(crate) fn session_state(limits: &Limits, username: &str) -> String {
    let advertised = [
        limits.max_size_request,
        limits.max_concurrent_requests,
        limits.max_calls_in_request,
        limits.max_objects_in_get,
        limits.max_objects_in_set,
    ];
    let basis = format!("{advertised:?}/{username}");
    blake3::hash(basis.as_bytes()).to_hex()[..16].to_owned()
}
