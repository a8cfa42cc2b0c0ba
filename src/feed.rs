//! Following the log for the change feed: the records after a position, then,
//! when following, each new record once it is durable. A follower reads the
//! log at its own pace from published snapshots, a chunk at a time off the
//! executor, so a slow one never holds a writer back. The stream ends when the
//! server starts shutting down (`stopping` turns true), and is simply dropped
//! when its subscriber goes away. HTTP framing (NDJSON or SSE) is the caller's.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ledger_events::values::{ObjectId, UtcDateTime};
use ledger_events::{Event, ObjectType, Record};
use ledger_projections::SnapshotView;
use tokio::sync::watch;
use tokio_stream::Stream;

use crate::StoreError;
use crate::audit::line::ExportLine;
use crate::store::Ledger;

/// Records read per snapshot before the stream yields.
const CHUNK: usize = 1000;

/// Which records a follower wants.
#[derive(Debug, Clone, Default)]
pub(crate) struct FeedFilter {
    /// Only these event types (`None`: all).
    pub types: Option<HashSet<String>>,
    /// Only records whose event is about this account.
    pub account: Option<ObjectId>,
}

impl FeedFilter {
    fn keeps(&self, record: &Record) -> bool {
        if self.types.as_ref().is_some_and(|t| !t.contains(&record.header.event_type)) {
            return false;
        }
        match self.account {
            None => true,
            Some(id) => match record.event() {
                Some(Ok(event)) => event_account(&event) == Some(id),
                _ => false,
            },
        }
    }
}

fn event_account(event: &Event) -> Option<ObjectId> {
    match event.subject() {
        Some((ObjectType::Account, id)) => Some(id),
        _ => None,
    }
}

/// One record of the feed: its position and its export line (no newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FeedRecord {
    pub position: u64,
    pub line: String,
}

/// Whether the follower may still be sent records: asked before every chunk,
/// at the snapshot the chunk is read from. `None` ends the stream; otherwise
/// the instant its login expires (`None`: never), which ends it then even if
/// nothing is written.
pub(crate) type Gate = Arc<dyn Fn(&SnapshotView) -> Option<Option<UtcDateTime>> + Send + Sync>;

/// Positions read from one snapshot, each with its line if the filter keeps
/// it, and the login's expiry as of that snapshot; `None` when the gate closed.
type Chunk = Option<(Vec<(u64, Option<String>)>, Option<UtcDateTime>)>;

fn read_chunk(ledger: &Ledger, after: u64, filter: &FeedFilter, gate: &Gate) -> Result<Chunk, StoreError> {
    let state = ledger.read();
    let Some(deadline) = gate(&state.view) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    let Some(from) = after.checked_add(1) else { return Ok(Some((Vec::new(), deadline))) };
    for record in ledger.log().scan(state.view.snapshot(), from).take(CHUNK) {
        let record = record?;
        if record.seq() > state.last_seq {
            break;
        }
        let line = match filter.keeps(&record) {
            true => Some(ExportLine::record_text(&record)?),
            false => None,
        };
        out.push((record.seq(), line));
    }
    Ok(Some((out, deadline)))
}

/// Resolves when `deadline` (a stream's credential expiry) passes; never
/// without one. Both long-lived streams (this feed, JMAP push) end on it.
pub(crate) async fn expiry(deadline: Option<UtcDateTime>) {
    match deadline {
        Some(at) => {
            let left = at.millis() - jiff::Timestamp::now().as_millisecond();
            tokio::time::sleep(Duration::from_millis(u64::try_from(left).unwrap_or(0))).await;
        }
        None => std::future::pending().await,
    }
}

/// What a follower wants and who it is: the filter, whether to follow live,
/// and the gate its login must pass before every delivery.
pub(crate) struct Follower {
    pub filter: FeedFilter,
    pub live: bool,
    pub gate: Gate,
}

/// The records after `after` that the follower's filter keeps, in log order;
/// when live, then every new durable record, until `stopping` turns true or
/// the gate closes. An error ends the stream after it is yielded.
pub(crate) fn follow(
    ledger: Ledger,
    after: u64,
    follower: Follower,
    mut stopping: watch::Receiver<bool>,
) -> impl Stream<Item = Result<FeedRecord, StoreError>> + Send + 'static {
    let Follower { filter, live, gate } = follower;
    async_stream::stream! {
        let mut durable = ledger.subscribe();
        let mut cursor = after;
        loop {
            let (l, f, g, from) = (ledger.clone(), filter.clone(), Arc::clone(&gate), cursor);
            let read = tokio::task::spawn_blocking(move || read_chunk(&l, from, &f, &g)).await;
            let (chunk, deadline) = match read {
                Ok(Ok(Some(chunk))) => chunk,
                // The login no longer holds: nothing more is sent.
                Ok(Ok(None)) => return,
                Ok(Err(e)) => {
                    yield Err(e);
                    return;
                }
                Err(e) => {
                    yield Err(StoreError::Internal(format!("the feed's read task failed: {e}")));
                    return;
                }
            };
            let read_count = chunk.len();
            for (position, line) in chunk {
                cursor = position;
                if let Some(line) = line {
                    yield Ok(FeedRecord { position, line });
                }
            }
            if read_count == CHUNK {
                continue;
            }
            if !live {
                return;
            }
            while *durable.borrow_and_update() <= cursor {
                tokio::select! {
                    changed = durable.changed() => if changed.is_err() { return },
                    // The credential expires: the stream ends with it.
                    () = expiry(deadline) => return,
                    // The server is shutting down: end the stream; the subscriber resumes elsewhere.
                    () = async { drop(stopping.wait_for(|s| *s).await) } => return,
                }
            }
        }
    }
}
