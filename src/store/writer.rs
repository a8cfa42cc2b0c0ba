//! The single writer thread: group commit with one fsync per group.
//!
//! It takes every job queued, runs them in order against one overlay, writes all
//! their records and projection updates in one atomic batch, fsyncs once, publishes
//! a new read snapshot and only then answers each job. Readers never wait for it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use fjall::PersistMode;
use ledger_events::values::UtcDateTime;
use ledger_events::{ChainTail, CommitMeta, Record};
use ledger_projections::Overlay;
use tokio::sync::mpsc::UnboundedReceiver;
use uuid::Uuid;

use super::StoreError;
use super::tx::Tx;
use super::{CommitInfo, Durability, Inner, Job};

/// Most jobs folded into one group, so one huge burst cannot hold answers back long.
const MAX_GROUP: usize = 1024;

pub(super) struct Writer {
    pub(super) inner: Arc<Inner>,
    pub(super) tail: ChainTail,
    pub(super) last_committed_at: i64,
}

impl Writer {
    pub(super) fn run(mut self, mut jobs: UnboundedReceiver<Job>) {
        while let Some(first) = jobs.blocking_recv() {
            let inner = Arc::clone(&self.inner);
            // Held for the whole group: pausing writes waits for the group in flight.
            let _gate = inner.write_gate.lock().unwrap_or_else(|p| p.into_inner());
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match jobs.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            self.write_group(group);
        }
    }

    fn now(&mut self) -> UtcDateTime {
        // Commit times never go backwards, so "the state at time T" is well defined.
        let wall = jiff::Timestamp::now().as_millisecond();
        self.last_committed_at = self.last_committed_at.max(wall);
        UtcDateTime::from_millis(self.last_committed_at)
    }

    fn write_group(&mut self, group: Vec<Job>) {
        let inner = Arc::clone(&self.inner);
        let mut overlay = Overlay::new(inner.projections.view(inner.db.snapshot()));
        let mut records: Vec<Record> = Vec::new();
        let mut erased: Vec<u64> = Vec::new();
        let mut answers = Vec::with_capacity(group.len());
        let tail_at_start = self.tail;
        for job in group {
            let meta = CommitMeta {
                commit_id: Uuid::now_v7(),
                committed_at: self.now(),
                actor: job.origin.actor,
                request_id: job.origin.request_id,
                call_id: job.origin.call_id,
            };
            let savepoint = overlay.savepoint();
            let (tail_before, first, erased_before) = (self.tail, records.len(), erased.len());
            let mut tx = Tx {
                overlay: &mut overlay,
                tail: &mut self.tail,
                records: &mut records,
                meta: &meta,
                aborted: false,
                erased: &mut erased,
            };
            let reply = (job.run)(&mut tx);
            if tx.aborted {
                overlay.rollback(savepoint);
                self.tail = tail_before;
                records.truncate(first);
                erased.truncate(erased_before);
            }
            let written = &records[first..];
            let info = CommitInfo {
                commit_id: meta.commit_id,
                committed_at: meta.committed_at,
                first_seq: written.first().map_or(0, |r| r.seq()),
                last_seq: written.last().map_or(0, |r| r.seq()),
            };
            answers.push((reply, info));
        }

        let outcome = if records.is_empty() { Ok(()) } else { self.persist(&records, &erased, &mut overlay) };
        match &outcome {
            Ok(()) => {
                if !records.is_empty() {
                    let committed = answers.iter().filter(|(_, i)| i.last_seq != 0).count() as u64;
                    inner.metrics.commits.fetch_add(committed, Ordering::Relaxed);
                    inner.metrics.events.fetch_add(records.len() as u64, Ordering::Relaxed);
                    inner.metrics.groups.fetch_add(1, Ordering::Relaxed);
                    inner.metrics.group_sizes.observe(committed as f64);
                    let mut refusal = inner.refusal.lock().unwrap_or_else(|p| p.into_inner());
                    if refusal.as_ref().is_some_and(|r| !r.until_restart) {
                        *refusal = None;
                    }
                    inner.publish(inner.projections.view(inner.db.snapshot()), self.tail.next_seq - 1);
                    inner.durable.send_replace(self.tail.next_seq - 1);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "group commit failed; {} commits answered with an error", answers.len());
                inner.metrics.write_failures.fetch_add(1, Ordering::Relaxed);
                *inner.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(super::WriteRefusal {
                    reason: super::error::fjall_text(e),
                    at: std::time::Instant::now(),
                    // fjall poisons itself after a failed journal write and
                    // then refuses every write; the probe says whether it did.
                    until_restart: matches!(e, fjall::Error::Poisoned)
                        || matches!(inner.db.persist(PersistMode::Buffer), Err(fjall::Error::Poisoned)),
                });
                if matches!(e, fjall::Error::Poisoned) {
                    // fjall refuses every write after a failed journal write, to keep
                    // the store consistent; reads go on.
                    tracing::error!(
                        "the store takes no writes until the service restarts: free disk space, then restart"
                    );
                }
                // The batch may or may not have reached the store; the store says
                // where the chain ends now, so no position is ever written twice.
                self.tail = inner.log.check_tail(&inner.db.snapshot(), 1).unwrap_or(tail_at_start);
            }
        }
        for (reply, info) in answers {
            let result = match &outcome {
                Ok(()) => Ok(info),
                Err(e) => Err(StoreError::WriteFailed(super::error::fjall_text(e))),
            };
            reply(result);
        }
    }

    fn persist(
        &self,
        records: &[Record],
        erased: &[u64],
        overlay: &mut Overlay<ledger_projections::SnapshotView>,
    ) -> Result<(), fjall::Error> {
        let inner = &self.inner;
        let mut batch = inner.db.batch();
        for record in records {
            inner.log.stage(&mut batch, record);
        }
        for seq in erased {
            inner.log.erase_payload(&mut batch, *seq);
        }
        inner.projections.stage(&mut batch, overlay.take_mutations());
        batch.commit()?;
        if inner.durability == Durability::Fsync {
            let started = std::time::Instant::now();
            inner.db.persist(PersistMode::SyncAll)?;
            inner.metrics.fsync_seconds.observe(started.elapsed().as_secs_f64());
            inner.metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
