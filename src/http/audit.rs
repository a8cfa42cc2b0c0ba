//! `GET /api/audit/export` (streaming NDJSON), `/api/audit/checkpoint` (signed),
//! `/api/audit/key`, and the proofs `/api/audit/proof/inclusion` and
//! `/api/audit/proof/consistency`, for principals with `sysAuditExport` (not
//! tenant-scoped).

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ledger_events::values::ObjectId;
use ledger_projections::state;
use serde::Deserialize;
use serde_json::json;

use super::{AppState, problem};
use crate::audit::export::{Bound, Evidence, Prove, export as write_export, resolve_range};
use crate::audit::notary::NotaryError;
use crate::auth::Principal;
use crate::auth::permissions::ledger_wide::AUDIT_EXPORT;
use ledger_events::merkle::Hash;

/// The refusal for a principal that may not read the whole log, if it may not.
fn refusal(principal: &Principal) -> Option<Response> {
    (!principal.may_globally(AUDIT_EXPORT))
        .then(|| problem(StatusCode::FORBIDDEN, format!("{AUDIT_EXPORT} is required")))
}

/// The query of a principal that may read the whole log; else the refusal
/// (403), or the query's fault as a problem (400).
fn admit<T>(principal: &Principal, q: Result<Query<T>, QueryRejection>) -> Result<T, Box<Response>> {
    if let Some(denied) = refusal(principal) {
        return Err(Box::new(denied));
    }
    q.map(|Query(q)| q).map_err(|e| Box::new(problem(StatusCode::BAD_REQUEST, e.body_text())))
}

#[derive(Deserialize)]
pub(super) struct ExportQuery {
    from: Option<String>,
    to: Option<String>,
    /// An account id or address: only its records, each with its inclusion proof.
    account: Option<String>,
    /// A tree size the client trusts: the trailer carries the consistency
    /// proof between it and the export's checkpoint.
    since: Option<String>,
}

pub(super) async fn export(
    State(app): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> Response {
    let q = match admit(&principal, q) {
        Ok(q) => q,
        Err(refused) => return *refused,
    };
    let parse = |s: &Option<String>| s.as_deref().map(str::parse::<Bound>).transpose();
    let (from, to) = match (parse(&q.from), parse(&q.to)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return problem(StatusCode::BAD_REQUEST, e),
    };
    let read = app.ledger.read();
    let since = match q.since.as_deref().map(str::parse::<u64>).transpose() {
        Ok(since) => since,
        Err(_) => return problem(StatusCode::BAD_REQUEST, "since must be a tree size (a number)".into()),
    };
    let log = app.ledger.log().clone();
    // The range and the evidence first, so that a range outside the log is
    // a 400 and a notary that refuses is an error, not a broken export.
    let range = {
        let (log, read, notary) = (log.clone(), Arc::clone(&read), Arc::clone(&app.notary));
        let account = q.account;
        tokio::task::spawn_blocking(move || {
            let bad = |why: String| Ok(Err((StatusCode::BAD_REQUEST, why)));
            // One account's positions: of an account's id (a destroyed
            // one's too: its history stays) or a live address; an id of
            // anything else is no account.
            let only: Option<HashSet<u64>> = match &account {
                None => None,
                Some(a) => {
                    let history =
                        |id: ObjectId| state::history_positions(&read.view, id).map_err(crate::StoreError::from);
                    let mut positions = match ObjectId::from_jmap(a) {
                        Some(id) => history(id)?,
                        None => Vec::new(),
                    };
                    if positions.is_empty()
                        && let Some(owner) = state::address_owner(&read.view, a).map_err(crate::StoreError::from)?
                    {
                        positions = history(owner.0)?;
                    }
                    if positions.is_empty() {
                        return Ok(Err((StatusCode::NOT_FOUND, format!("no account {a:?}"))));
                    }
                    Some(positions.into_iter().collect())
                }
            };
            let snap = read.view.snapshot();
            let (start, end) = resolve_range(&log, snap, from, to)?;
            let last = log.last_seq(snap)?;
            if from.is_some() && start > last.max(1) {
                return bad(format!("from is past the end of the log (position {last})"));
            }
            if from.is_some() && to.is_some() && start > end {
                return bad("from is after to".to_owned());
            }
            if let Some(m) = since.filter(|m| *m > last) {
                return bad(format!("since ({m}) is beyond the log (position {last})"));
            }
            let signed = notary.checkpoint(Some(end))?;
            let compact_range = match only {
                Some(_) => None,
                None => Some(notary.compact_range(start.saturating_sub(1).min(end))?.hashes().to_vec()),
            };
            let consistency = match since {
                Some(m) if m != end => Some(notary.consistency(m.min(end), m.max(end))?),
                _ => None,
            };
            let evidence = Evidence {
                checkpoint: signed.note,
                verifier_key: notary.verifier().encode(),
                compact_range,
                consistency,
            };
            Ok::<_, NotaryError>(Ok(((start, end), evidence, only)))
        })
        .await
    };
    let ((start, end), evidence, only) = match range {
        Ok(Ok(Ok(found))) => found,
        Ok(Ok(Err((status, why)))) => return problem(status, why),
        Ok(Err(e)) => return notary_problem(e),
        Err(_) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "the log could not be read".into()),
    };
    let (lines, stream) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(256);
    let notary = Arc::clone(&app.notary);
    tokio::task::spawn_blocking(move || {
        let snap = read.view.snapshot();
        let prove = |seq: u64| -> Result<Vec<Hash>, crate::StoreError> {
            notary.inclusion(seq, Some(end)).map(|p| p.hashes).map_err(|e| match e {
                NotaryError::Store(e) => *e,
                other => crate::StoreError::Internal(other.to_string()),
            })
        };
        let only = only.as_ref().map(|set| (set, Some(&prove as Prove<'_>)));
        let result = write_export(&log, snap, (start, end), only, Some(evidence), |line| {
            lines.blocking_send(Ok(line + "\n")).is_ok()
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "audit export failed");
            let _ = lines.blocking_send(Err(std::io::Error::other("export failed")));
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(stream));
    // The positions it covers, for a client's progress (one line each, then the trailer).
    let covered = format!("{start}-{end}");
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::HeaderName::from_static("x-ledger-positions"), covered.as_str()),
        ],
        body,
    )
        .into_response()
}

/// The export of one account's records, each with its inclusion proof, as
/// `GET /api/audit/export?account=ID` answers it; for the console's download.
pub(crate) async fn account_export(app: AppState, principal: Arc<Principal>, account: String) -> Response {
    let query = ExportQuery { from: None, to: None, account: Some(account), since: None };
    export(State(app), Extension(principal), Ok(Query(query))).await
}

/// An error of the notary as an HTTP problem.
fn notary_problem(e: NotaryError) -> Response {
    match e {
        NotaryError::BeyondLog { .. } | NotaryError::Bad(_) => problem(StatusCode::BAD_REQUEST, e.to_string()),
        NotaryError::Inconsistent { .. } => problem(StatusCode::CONFLICT, e.to_string()),
        NotaryError::Behind { .. } => {
            let mut response = problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            response
        }
        NotaryError::Key { .. } | NotaryError::Store(_) => {
            tracing::error!(error = %e, "the notary failed");
            problem(StatusCode::INTERNAL_SERVER_ERROR, "the log's tree or key could not be used".into())
        }
    }
}

/// A query parameter that must be a number, if given; else why not.
fn number(name: &str, value: Option<&str>) -> Result<Option<u64>, String> {
    value.map(|v| v.parse::<u64>().map_err(|_| format!("{name} must be a number, not {v:?}"))).transpose()
}

/// Runs `work` on the notary off the executor.
async fn with_notary<T: Send + 'static>(
    app: &AppState,
    work: impl FnOnce(&crate::audit::notary::Notary) -> Result<T, NotaryError> + Send + 'static,
) -> Result<T, Response> {
    let notary = Arc::clone(&app.notary);
    match tokio::task::spawn_blocking(move || work(&notary)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(notary_problem(e)),
        Err(_) => Err(problem(StatusCode::INTERNAL_SERVER_ERROR, "the notary's task failed".into())),
    }
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

#[derive(Deserialize)]
pub(super) struct CheckpointQuery {
    size: Option<String>,
}

/// A checkpoint of the log signed with its key (C2SP tlog-checkpoint), of
/// tree size `size` or the whole log: `text/plain` (the signed note), or
/// JSON with `Accept: application/json`.
pub(super) async fn checkpoint(
    State(app): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: axum::http::HeaderMap,
    q: Result<Query<CheckpointQuery>, QueryRejection>,
) -> Response {
    let q = match admit(&principal, q) {
        Ok(q) => q,
        Err(refused) => return *refused,
    };
    let size = match number("size", q.size.as_deref()) {
        Ok(size) => size,
        Err(why) => return problem(StatusCode::BAD_REQUEST, why),
    };
    let signed = match with_notary(&app, move |n| n.checkpoint(size)).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let json =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"));
    if json {
        let c = &signed.checkpoint;
        Json(json!({
            "origin": c.origin,
            "treeSize": c.size,
            "rootHash": hex::encode(c.root),
            "checkpoint": signed.note,
            "position": c.size,
            "hash": signed.head.to_hex(),
        }))
        .into_response()
    } else {
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], signed.note).into_response()
    }
}

/// The log's public key: origin, key id, Ed25519 key, and the verifier key
/// (C2SP signed-note) an auditor keeps.
pub(super) async fn key(State(app): State<AppState>, Extension(principal): Extension<Arc<Principal>>) -> Response {
    if let Some(denied) = refusal(&principal) {
        return denied;
    }
    let key = app.notary.verifier();
    Json(json!({
        "origin": key.name(),
        "keyId": key.id_hex(),
        "publicKey": key.public_base64(),
        "verifierKey": key.encode(),
    }))
    .into_response()
}

#[derive(Deserialize)]
pub(super) struct InclusionQuery {
    position: Option<String>,
    size: Option<String>,
}

/// `GET /api/audit/proof/inclusion?position=N&size=S`: the inclusion proof
/// (RFC 9162 §2.1.3) of log position N (leaf N - 1) in the tree of size S
/// (the whole log when absent), hex hashes.
pub(super) async fn inclusion(
    State(app): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    q: Result<Query<InclusionQuery>, QueryRejection>,
) -> Response {
    let q = match admit(&principal, q) {
        Ok(q) => q,
        Err(refused) => return *refused,
    };
    let (position, size) = match (number("position", q.position.as_deref()), number("size", q.size.as_deref())) {
        (Ok(Some(p)), Ok(s)) => (p, s),
        (Ok(None), _) => return problem(StatusCode::BAD_REQUEST, "position is required".into()),
        (Err(why), _) | (_, Err(why)) => return problem(StatusCode::BAD_REQUEST, why),
    };
    match with_notary(&app, move |n| n.inclusion(position, size)).await {
        Ok(p) => Json(json!({
            "position": p.position,
            "leafIndex": p.position - 1,
            "treeSize": p.size,
            "recordHash": p.record_hash.to_hex(),
            "leafHash": hex::encode(ledger_events::merkle::leaf_hash(&p.record_hash.0)),
            "rootHash": hex::encode(p.root),
            "hashes": hexes(&p.hashes),
        }))
        .into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
pub(super) struct ConsistencyQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/audit/proof/consistency?from=M&to=N`: the consistency proof
/// (RFC 9162 §2.1.4) from tree size M to N (the whole log when absent).
pub(super) async fn consistency(
    State(app): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    q: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Response {
    let q = match admit(&principal, q) {
        Ok(q) => q,
        Err(refused) => return *refused,
    };
    let (from, to) = match (number("from", q.from.as_deref()), number("to", q.to.as_deref())) {
        (Ok(Some(f)), Ok(t)) => (f, t),
        (Ok(None), _) => return problem(StatusCode::BAD_REQUEST, "from is required".into()),
        (Err(why), _) | (_, Err(why)) => return problem(StatusCode::BAD_REQUEST, why),
    };
    let proof = with_notary(&app, move |n| {
        let to = match to {
            Some(to) => to,
            None => n.catch_up()?,
        };
        n.consistency(from, to)
    })
    .await;
    match proof {
        Ok(c) => Json(json!({
            "from": c.from,
            "to": c.to,
            "fromRootHash": hex::encode(c.from_root),
            "toRootHash": hex::encode(c.to_root),
            "hashes": hexes(&c.hashes),
        }))
        .into_response(),
        Err(response) => response,
    }
}
