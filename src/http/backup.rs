//! `GET /api/backup`: a consistent backup of the whole log (see
//! [`crate::backup`]) streamed while the service runs, from one read
//! snapshot; writes go on meanwhile. Needs `sysDatabaseBackup` (not
//! tenant-scoped). The `X-Ledger-Last-Seq` header gives the last position
//! the backup will hold, for progress.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, problem};
use crate::auth::Principal;
use crate::auth::permissions::ledger_wide::DATABASE_BACKUP;

/// Why a backup stream stopped when its client left.
const CLIENT_GONE: &str = "stream: the client went away";

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 256 * 1024;

/// Sends what the writer gives in chunks; fails once the client is gone.
struct ChunkSender {
    buffer: Vec<u8>,
    sink: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
}

impl std::io::Write for ChunkSender {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.buffer);
        self.sink.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::other(CLIENT_GONE))
    }
}

pub(super) async fn backup(State(app): State<AppState>, Extension(principal): Extension<Arc<Principal>>) -> Response {
    if !principal.may_globally(DATABASE_BACKUP) {
        return problem(StatusCode::FORBIDDEN, format!("{DATABASE_BACKUP} is required"));
    }
    let read = app.ledger.read();
    let last_seq = read.last_seq;
    let log = app.ledger.log().clone();
    let (sink, stream) = tokio::sync::mpsc::channel(8);
    tokio::task::spawn_blocking(move || {
        let out = ChunkSender { buffer: Vec::new(), sink: sink.clone() };
        let written = crate::backup::write_from_log(&log, read.view.snapshot(), last_seq, out, |_| true);
        if let Err(e) = written {
            if e.to_string().contains(CLIENT_GONE) {
                tracing::info!("a backup ended early: its client went away");
                return;
            }
            tracing::error!(error = %e, "backup failed");
            // The client sees a broken body, and its check of the file fails.
            let _ = sink.blocking_send(Err(std::io::Error::other("backup failed")));
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(stream));
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::HeaderName::from_static("x-ledger-last-seq"), last_seq.to_string().as_str()),
        ],
        body,
    )
        .into_response()
}
