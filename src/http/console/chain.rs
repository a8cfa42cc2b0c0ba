//! The chain's status on the overview: how far this server has verified the
//! hash chain of its log (every link, record hash and payload hash, as
//! `ledger verify` does), continued from where it stopped, and the
//! checkpoint (`POSITION:HASH`, as `GET /api/audit/checkpoint` gives it) at
//! the end of the verified prefix, with when it was reached.

use std::sync::Mutex;

use ledger_events::values::UtcDateTime;
use ledger_events::{ChainTail, ChainVerifier};

use crate::store::Ledger;

/// Records verified on a page's request at most; a longer stretch is
/// verified by a background task and the page shows how far it has got.
const INLINE: u64 = 50_000;

/// What the overview shows of the chain.
#[derive(Debug, Clone)]
pub(crate) struct Status {
    /// The verified prefix ends after this position (0: nothing yet).
    pub(crate) through: u64,
    /// The hash of the record at `through`.
    pub(crate) head: String,
    /// When `through` was reached.
    pub(crate) at: Option<UtcDateTime>,
    /// The last position of the log, when it is further than `through`.
    pub(crate) pending: u64,
    /// The fault, if verification failed: its text names the position.
    pub(crate) fault: Option<String>,
}

#[derive(Default)]
struct Progress {
    tail: Option<ChainTail>,
    at: Option<UtcDateTime>,
    fault: Option<String>,
    running: bool,
}

/// The verified prefix, kept between requests.
#[derive(Default)]
pub(crate) struct Watch {
    progress: Mutex<Progress>,
}

impl Watch {
    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Verifies what was appended since the last call (up to [`INLINE`]
    /// records; more in the background, through `spawn`), then reports.
    /// Blocking (store reads).
    pub(crate) fn status(self: &std::sync::Arc<Self>, ledger: &Ledger) -> Status {
        let read = ledger.read();
        let last = read.last_seq;
        let (tail, running) = {
            let p = self.lock();
            (p.tail.unwrap_or(ChainTail::GENESIS), p.running)
        };
        let behind = last.saturating_sub(tail.next_seq.saturating_sub(1));
        if behind > 0 && !running && self.lock().fault.is_none() {
            if behind <= INLINE {
                self.advance(ledger, tail);
            } else {
                self.lock().running = true;
                let (watch, ledger) = (std::sync::Arc::clone(self), ledger.clone());
                std::thread::spawn(move || {
                    watch.advance(&ledger, tail);
                    watch.lock().running = false;
                });
            }
        }
        let p = self.lock();
        let tail = p.tail.unwrap_or(ChainTail::GENESIS);
        let through = tail.next_seq.saturating_sub(1);
        Status {
            through,
            head: tail.last_hash.to_hex(),
            at: p.at,
            pending: if last > through { last } else { 0 },
            fault: p.fault.clone(),
        }
    }

    fn advance(&self, ledger: &Ledger, from: ChainTail) {
        let read = ledger.read();
        let mut verifier = ChainVerifier::from_tail(from);
        let result = ledger.log().verify_range(read.view.snapshot(), from.next_seq, &mut verifier);
        let mut p = self.lock();
        match result {
            Ok(()) => {
                // A record appended after the snapshot was taken is left to the next call.
                p.tail = Some(verifier.tail());
                p.at = Some(crate::http::now());
            }
            Err(e) => {
                tracing::error!(error = %e, "console: the chain did not verify");
                p.tail = Some(verifier.tail());
                p.fault = Some(e.to_string());
            }
        }
    }
}
