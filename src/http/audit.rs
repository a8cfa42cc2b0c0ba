//! `GET /api/audit/export` (streaming NDJSON) and `GET /api/audit/checkpoint`,
//! for principals with `sysAuditExport` (not tenant-scoped).

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ledger_events::values::ObjectId;
use ledger_projections::state;
use serde::Deserialize;
use serde_json::json;

use super::{AppState, problem};
use crate::audit::export::{Bound, export as write_export, resolve_range};
use crate::auth::Principal;
use crate::auth::permissions::ledger_wide::AUDIT_EXPORT;

/// The refusal for a principal that may not read the whole log, if it may not.
fn refusal(principal: &Principal) -> Option<Response> {
    (!principal.may_globally(AUDIT_EXPORT))
        .then(|| problem(StatusCode::FORBIDDEN, format!("{AUDIT_EXPORT} is required")))
}

#[derive(Deserialize)]
pub(super) struct ExportQuery {
    from: Option<String>,
    to: Option<String>,
    /// An account id or address: only its records in full, others as `skipped`.
    account: Option<String>,
}

pub(super) async fn export(
    State(app): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    Query(q): Query<ExportQuery>,
) -> Response {
    if let Some(denied) = refusal(&principal) {
        return denied;
    }
    let parse = |s: &Option<String>| s.as_deref().map(str::parse::<Bound>).transpose();
    let (from, to) = match (parse(&q.from), parse(&q.to)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return problem(StatusCode::BAD_REQUEST, e),
    };
    let read = app.ledger.read();
    let account = match &q.account {
        None => None,
        Some(a) => {
            let id = ObjectId::from_jmap(a).or_else(|| state::address_owner(&read.view, a).ok().flatten().map(|o| o.0));
            match id {
                Some(id) => Some(id),
                None => return problem(StatusCode::NOT_FOUND, format!("no account {a:?}")),
            }
        }
    };
    let log = app.ledger.log().clone();
    // The range first, so that one outside the log is a 400, not an empty export.
    let range = {
        let (log, read) = (log.clone(), Arc::clone(&read));
        tokio::task::spawn_blocking(move || {
            let snap = read.view.snapshot();
            Ok::<_, crate::StoreError>((resolve_range(&log, snap, from, to)?, log.last_seq(snap)?))
        })
        .await
    };
    let (start, end) = match range {
        Ok(Ok(((start, end), last))) => {
            if from.is_some() && start > last.max(1) {
                return problem(StatusCode::BAD_REQUEST, format!("from is past the end of the log (position {last})"));
            }
            if from.is_some() && to.is_some() && start > end {
                return problem(StatusCode::BAD_REQUEST, "from is after to".to_owned());
            }
            (start, end)
        }
        _ => return problem(StatusCode::INTERNAL_SERVER_ERROR, "the log could not be read".into()),
    };
    let (lines, stream) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(256);
    tokio::task::spawn_blocking(move || {
        let snap = read.view.snapshot();
        let result = (|| {
            let only: Option<HashSet<u64>> = match account {
                Some(id) => Some(state::history_positions(&read.view, id)?.into_iter().collect()),
                None => None,
            };
            write_export(&log, snap, start, end, only.as_ref(), |line| lines.blocking_send(Ok(line + "\n")).is_ok())
        })();
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

/// The export of one account's records (the others as `skipped`), as
/// `GET /api/audit/export?account=ID` answers it; for the console's download.
pub(crate) async fn account_export(app: AppState, principal: Arc<Principal>, account: String) -> Response {
    export(State(app), Extension(principal), Query(ExportQuery { from: None, to: None, account: Some(account) })).await
}

/// The current end of the chain, to keep and later prove the log only grew.
pub(super) async fn checkpoint(
    State(app): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
) -> Response {
    if let Some(denied) = refusal(&principal) {
        return denied;
    }
    let read = app.ledger.read();
    let log = app.ledger.log().clone();
    let found = tokio::task::spawn_blocking(move || log.read(read.view.snapshot(), read.last_seq)).await;
    match found {
        Ok(Ok(Some(record))) => {
            Json(json!({"position": record.seq(), "hash": record.header.hash.to_hex()})).into_response()
        }
        Ok(Ok(None)) => Json(json!({"position": 0, "hash": ledger_events::Digest::ZERO.to_hex()})).into_response(),
        _ => problem(StatusCode::INTERNAL_SERVER_ERROR, "the log could not be read".into()),
    }
}
