//! Usage ingestion at mail-store rates: reports from concurrent requests queue
//! here and are committed together, so the log grows by one QuotaUsageChanged per
//! account and quota kind per commit window, not one per report.
//!
//! Usage commits start at most once per window (`--usage-window-ms`) and never
//! overlap: a report arriving when none was committed for a window goes at once;
//! under load, everything that arrived during the window (and during the commit
//! in flight) goes in the next one. So each account records at most one usage
//! event per kind per window, whatever the report rate, and a quiet system adds
//! no delay.
//! A request is answered only once the commit holding its reports is durable, so
//! an acknowledged report is never lost; reports not yet acknowledged when the
//! process dies are lost and the store must send them again.
//!
//! Reports of different principals are never merged into one commit, so every
//! record still names who reported it.

use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::command::{Rejection, ReportUsage, UsageAccepted, UsageReport};
use crate::store::StoreError;
use crate::store::{CommitInfo, CommitOrigin, Committed, Ledger};

/// What became of one request's reports, and the commit that recorded them.
#[derive(Debug)]
pub struct Ingested {
    pub outcomes: Vec<Result<UsageAccepted, Rejection>>,
    pub info: CommitInfo,
}

type Answer = oneshot::Sender<Result<Ingested, StoreError>>;
type Outcomes = Vec<Result<UsageAccepted, Rejection>>;
type Flushed = Result<Committed<Outcomes>, StoreError>;

struct Waiter {
    range: Range<usize>,
    answer: Answer,
}

/// Reports queued for one principal.
struct Queue {
    origin: CommitOrigin,
    reports: Vec<UsageReport>,
    waiters: Vec<Waiter>,
}

#[derive(Default)]
struct Pending {
    queues: Vec<Queue>,
    flushing: bool,
    /// When the last usage commit was submitted: the next waits a window after it.
    last_flush: Option<tokio::time::Instant>,
}

/// The fixed wait before each usage commit unless `--usage-window-ms` says otherwise.
pub(crate) const DEFAULT_WINDOW: Duration = Duration::from_millis(100);

/// The coalescing front of usage reports. Cheap to clone.
#[derive(Clone)]
pub struct UsageIngest {
    shared: Arc<Shared>,
}

struct Shared {
    ledger: Ledger,
    window: Duration,
    pending: Mutex<Pending>,
}

impl UsageIngest {
    pub fn new(ledger: Ledger, window: Duration) -> Self {
        UsageIngest { shared: Arc::new(Shared { ledger, window, pending: Mutex::new(Pending::default()) }) }
    }

    /// Queues `reports` and waits until they are durable (or refused).
    pub async fn report(&self, origin: CommitOrigin, reports: Vec<UsageReport>) -> Result<Ingested, StoreError> {
        let (answer, receiver) = oneshot::channel();
        let start_flusher = {
            let mut pending = self.shared.pending.lock().unwrap_or_else(|p| p.into_inner());
            let queue = match pending.queues.iter().position(|q| q.origin.actor == origin.actor) {
                Some(i) => &mut pending.queues[i],
                None => {
                    pending.queues.push(Queue { origin, reports: Vec::new(), waiters: Vec::new() });
                    pending.queues.last_mut().expect("just pushed")
                }
            };
            let start = queue.reports.len();
            queue.reports.extend(reports);
            queue.waiters.push(Waiter { range: start..queue.reports.len(), answer });
            !std::mem::replace(&mut pending.flushing, true)
        };
        if start_flusher {
            tokio::spawn(Arc::clone(&self.shared).flush_until_empty());
        }
        receiver.await.map_err(|_| StoreError::ShuttingDown)?
    }
}

impl Shared {
    /// Commits whatever is queued, again and again, until nothing is.
    async fn flush_until_empty(self: Arc<Self>) {
        loop {
            let last_flush = self.pending.lock().unwrap_or_else(|p| p.into_inner()).last_flush;
            if let Some(last) = last_flush {
                tokio::time::sleep_until(last + self.window).await;
            }
            let queues = {
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                if pending.queues.is_empty() {
                    pending.flushing = false;
                    return;
                }
                pending.last_flush = Some(tokio::time::Instant::now());
                std::mem::take(&mut pending.queues)
            };
            // All principals' commits are submitted before any is awaited, so the
            // writer folds them into one group and one fsync.
            let submitted: Vec<_> = queues.into_iter().map(|queue| self.submit(queue)).collect();
            for (receiver, waiters) in submitted {
                let result = receiver.await.unwrap_or(Err(StoreError::ShuttingDown));
                answer_waiters(waiters, result);
            }
        }
    }

    fn submit(&self, queue: Queue) -> (oneshot::Receiver<Flushed>, Vec<Waiter>) {
        let Queue { mut origin, reports, waiters } = queue;
        if waiters.len() > 1 {
            // Many requests in one commit: none of their ids is the commit's own.
            origin.request_id = format!("usage:{} requests", waiters.len());
            origin.call_id = String::new();
        }
        let count = reports.len();
        let receiver = self.ledger.submit(origin, move |tx| {
            let batch = ReportUsage { reports: reports.clone() };
            let planned = batch.plan(tx.state()).and_then(|plan| {
                tx.record(&plan.events)?;
                Ok(plan.outcomes)
            });
            planned.unwrap_or_else(|rejection| vec![Err(rejection); count])
        });
        (receiver, waiters)
    }
}

fn answer_waiters(waiters: Vec<Waiter>, result: Flushed) {
    match result {
        Ok(committed) => {
            for waiter in waiters {
                let outcomes = committed.value[waiter.range].to_vec();
                let _ = waiter.answer.send(Ok(Ingested { outcomes, info: committed.info }));
            }
        }
        Err(e) => {
            let reason = e.to_string();
            for waiter in waiters {
                let error = if matches!(e, StoreError::ShuttingDown) {
                    StoreError::ShuttingDown
                } else {
                    StoreError::WriteFailed(reason.clone())
                };
                let _ = waiter.answer.send(Err(error));
            }
        }
    }
}
