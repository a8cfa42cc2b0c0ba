//! A commit in progress: the job of one `/set` call runs commands against it, and
//! each accepted command's events are sealed onto the chain and folded at once, so
//! later commands of the same commit see them.

use ledger_events::{ChainTail, CommitMeta, Event, Record};
use ledger_projections::{Overlay, SnapshotView, StateRead, apply};
use uuid::Uuid;

use crate::command::authority::{self, Writer};
use crate::command::{Command, DecideContext, Rejection, decide};

/// A point a commit can go back to: a command refused after it was folded.
struct Mark {
    savepoint: ledger_projections::Savepoint,
    tail: ChainTail,
    records: usize,
    erased: usize,
}

pub struct Tx<'a> {
    pub(super) overlay: &'a mut Overlay<SnapshotView>,
    pub(super) tail: &'a mut ChainTail,
    pub(super) records: &'a mut Vec<Record>,
    pub(super) meta: &'a CommitMeta,
    pub(super) aborted: bool,
    /// Positions whose payloads this commit erases.
    pub(super) erased: &'a mut Vec<u64>,
}

impl Tx<'_> {
    /// State as of this point of the commit (earlier commands included).
    pub fn state(&self) -> &impl StateRead {
        &*self.overlay
    }

    /// Decides and records one command. On rejection nothing of it is kept.
    pub fn execute(&mut self, command: &Command) -> Result<Vec<Event>, Rejection> {
        let ctx = DecideContext { now: self.meta.committed_at };
        let events = decide(command, &*self.overlay, &ctx)?;
        self.record(&events)?;
        Ok(events)
    }

    /// Decides one command written by `writer` and records it only if the
    /// writer may make that change ([`authority`]): nothing it touches ends
    /// with a right its writer lacks. On rejection nothing of it is kept.
    pub fn execute_as(&mut self, command: &Command, writer: &Writer) -> Result<Vec<Event>, Rejection> {
        let ctx = DecideContext { now: self.meta.committed_at };
        let writer = &writer.as_of(&*self.overlay, ctx.now)?;
        authority::check_tenant_bounds(writer, &*self.overlay, command)?;
        let events = decide(command, &*self.overlay, &ctx)?;
        authority::check_self_service(writer, &*self.overlay, &events)?;
        if writer.unlimited() {
            self.record(&events)?;
            return Ok(events);
        }
        let touched = authority::touched(&*self.overlay, &events)?;
        let before = authority::held(&*self.overlay, &touched)?;
        let mark = self.mark();
        self.record(&events)?;
        let after = authority::held(&*self.overlay, &touched);
        if let Err(e) = after.and_then(|after| authority::check_growth(writer, &before, &after)) {
            self.rollback(mark);
            return Err(e);
        }
        Ok(events)
    }

    fn mark(&self) -> Mark {
        Mark {
            savepoint: self.overlay.savepoint(),
            tail: *self.tail,
            records: self.records.len(),
            erased: self.erased.len(),
        }
    }

    fn rollback(&mut self, mark: Mark) {
        self.overlay.rollback(mark.savepoint);
        *self.tail = mark.tail;
        self.records.truncate(mark.records);
        self.erased.truncate(mark.erased);
    }

    /// Runs `steps` (several commands that stand or fall together); if they
    /// fail, nothing of them is kept and the commit goes on without them.
    pub(crate) fn all_or_nothing<T>(
        &mut self,
        steps: impl FnOnce(&mut Self) -> Result<T, Rejection>,
    ) -> Result<T, Rejection> {
        let mark = self.mark();
        let outcome = steps(self);
        if outcome.is_err() {
            self.rollback(mark);
        }
        outcome
    }

    /// Records events already decided against [`Tx::state`] (for batch commands
    /// that decide more than a yes or no). On failure nothing of them is kept.
    pub fn record(&mut self, events: &[Event]) -> Result<(), Rejection> {
        let mark = self.mark();
        for event in events {
            let entropy = crate::secrets::random_bytes::<32>();
            let record = self.tail.seal(self.meta, Uuid::now_v7(), event, &entropy);
            match apply(&*self.overlay, &record.header, event) {
                Ok(mutations) => self.overlay.apply(mutations),
                Err(e) => {
                    // decide produced events the fold refuses: a bug, never the client's fault.
                    tracing::error!(error = ?e, "fold rejected decided events; command dropped");
                    self.rollback(mark);
                    return Err(Rejection::Internal("the ledger could not apply this change".to_owned()));
                }
            }
            self.records.push(record);
        }
        Ok(())
    }

    /// Erases the payloads at `positions` in this commit's batch (their headers
    /// stay). Records of this very commit among them are written without payload.
    pub(crate) fn erase_payloads(&mut self, positions: &[u64]) {
        for record in self.records.iter_mut().filter(|r| positions.contains(&r.seq())) {
            record.payload = None;
        }
        self.erased.extend_from_slice(positions);
    }

    /// Drops everything this commit did (e.g. `ifInState` did not match).
    pub fn abort(&mut self) {
        self.aborted = true;
    }
}
