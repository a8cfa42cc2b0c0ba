//! Open event streams per principal: `/api/feed` and `/eventsource/` hold a
//! connection for as long as the client stays, so each principal may hold at
//! most `max_streams_per_principal` of them at once (docs/operations.md,
//! "Limits"); one more is answered 429.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;

use super::problem;
use crate::auth::Principal;
use crate::slots::{Places, Slot};

/// Streams open per principal: its account id, or the fallback
/// administrator's name.
pub(crate) type OpenStreams = Places<String>;

/// A place for one more stream of `principal` (kept with the stream; freed
/// when it ends), or the 429 answer.
pub(crate) fn open(
    streams: &Arc<OpenStreams>,
    principal: &Principal,
    max: usize,
) -> Result<Slot<String>, Box<Response>> {
    streams.take(principal.key(), max).ok_or_else(|| {
        Box::new(problem(
            StatusCode::TOO_MANY_REQUESTS,
            format!("this principal has {max} event streams open already; close one first"),
        ))
    })
}
