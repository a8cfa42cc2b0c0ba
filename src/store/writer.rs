//! The single writer thread: group commit with one fsync per group.
//!
//! It takes every job queued, runs them in order against one overlay, writes all
//! their records and projection updates in one atomic batch, fsyncs once, publishes
//! a new read snapshot and only then answers each job. Readers never wait for it.
//!
//! In a cluster ([`super::cluster`]) the group is first appended to the
//! stream as one message; if another node took the position, the writer
//! folds the commits it missed (they arrive on the same queue, from the
//! follower) and runs the group's jobs again on the new state. Commits of
//! other nodes are folded between groups.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fjall::PersistMode;
use ledger_events::values::UtcDateTime;
use ledger_events::{ChainTail, ChainVerifier, CommitMeta, Event, Record};
use ledger_projections::{Overlay, SnapshotView, replay};
use tokio::sync::mpsc::UnboundedReceiver;
use uuid::Uuid;

use super::StoreError;
use super::cluster::{ClusterLink, Fetched};
use super::tx::Tx;
use super::{CommitInfo, Durability, Inner, Job};
use crate::cluster::ClusterError;

/// Most jobs folded into one group, so one huge burst cannot hold answers back long.
const MAX_GROUP: usize = 1024;

/// Times a cluster node decides a group again after losing the race for
/// the log's next position, before its writes fail.
const MAX_DECISIONS: u32 = 32;

/// How long a cluster node waits, after losing a race, for the commits
/// that won it to reach it.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(10);

/// How often a writer waiting for others' commits checks that its
/// follower still follows.
const HALT_CHECK: Duration = Duration::from_millis(100);

/// The longest a node that keeps winning waits before its next group
/// while another node writes too.
const YIELD_TURN: Duration = Duration::from_millis(50);

/// How recently another node's commit must have been folded for this node
/// to count as contended.
const CONTENDED_WINDOW: Duration = Duration::from_millis(50);

/// What the writer's queue carries.
pub(crate) enum Work {
    Job(Job),
    /// A commit of the cluster's log, from the follower.
    Followed(Box<Fetched>),
}

pub(super) struct Writer {
    pub(super) inner: Arc<Inner>,
    pub(super) tail: ChainTail,
    pub(super) last_committed_at: i64,
    pub(super) cluster: Option<ClusterLink>,
    /// A cluster node folded another node's erasure of payloads it held:
    /// its files are compacted through this position once the gate is free.
    pub(super) compact_through: Option<u64>,
    /// When this node last folded another node's commit, and whether its
    /// own last group landed at the first try (see [`Writer::yield_turn`]).
    pub(super) others_wrote_at: Option<Instant>,
    pub(super) won_last: bool,
}

/// A group's jobs run against one overlay.
struct Decided {
    overlay: Overlay<SnapshotView>,
    records: Vec<Record>,
    erased: Vec<u64>,
    infos: Vec<CommitInfo>,
    tail_at_start: ChainTail,
}

impl Writer {
    pub(super) fn run(mut self, mut work: UnboundedReceiver<Work>) {
        while let Some(first) = work.blocking_recv() {
            let inner = Arc::clone(&self.inner);
            // Held for the whole group: pausing writes waits for the group in flight.
            let gate = inner.write_gate.lock().unwrap_or_else(|p| p.into_inner());
            let mut group = Vec::new();
            let mut followed = Vec::new();
            let mut next = Some(first);
            while let Some(item) = next.take() {
                match item {
                    Work::Job(job) => group.push(job),
                    Work::Followed(commit) => followed.push(commit),
                }
                if group.len() < MAX_GROUP {
                    next = work.try_recv().ok();
                }
            }
            // Others' commits first: the group is then decided on the newest state.
            for commit in followed {
                if let Err(e) = self.apply_followed(*commit) {
                    self.halt(&e);
                }
            }
            if !group.is_empty() {
                if self.cluster.is_some() {
                    self.write_group_cluster(group, &mut work);
                } else {
                    self.write_group(group);
                }
            }
            drop(gate);
            // Before anything later is applied: a node that has applied a
            // later position has the erased payloads out of its files.
            if let Some(through) = self.compact_through.take()
                && let Err(e) = inner.compact(through)
            {
                tracing::error!(error = %e, "another node's erasure is applied, but this node's files keep it");
            }
        }
    }

    fn now(&mut self) -> UtcDateTime {
        // Commit times never go backwards, so "the state at time T" is well defined.
        let wall = jiff::Timestamp::now().as_millisecond();
        self.last_committed_at = self.last_committed_at.max(wall);
        UtcDateTime::from_millis(self.last_committed_at)
    }

    /// Runs each job of `group` against one overlay of the latest state.
    fn decide(&mut self, group: &mut [Job]) -> Decided {
        let inner = Arc::clone(&self.inner);
        let mut overlay = Overlay::new(inner.projections.view(inner.db.snapshot()));
        let mut records: Vec<Record> = Vec::new();
        let mut erased: Vec<u64> = Vec::new();
        let mut infos = Vec::with_capacity(group.len());
        let tail_at_start = self.tail;
        for job in group.iter_mut() {
            let meta = CommitMeta {
                commit_id: Uuid::now_v7(),
                committed_at: self.now(),
                actor: job.origin.actor.clone(),
                request_id: job.origin.request_id.clone(),
                call_id: job.origin.call_id.clone(),
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
            job.run.run(&mut tx);
            if tx.aborted {
                overlay.rollback(savepoint);
                self.tail = tail_before;
                records.truncate(first);
                erased.truncate(erased_before);
            }
            let written = &records[first..];
            infos.push(CommitInfo {
                commit_id: meta.commit_id,
                committed_at: meta.committed_at,
                first_seq: written.first().map_or(0, |r| r.seq()),
                last_seq: written.last().map_or(0, |r| r.seq()),
            });
        }
        Decided { overlay, records, erased, infos, tail_at_start }
    }

    fn write_group(&mut self, mut group: Vec<Job>) {
        let mut decided = self.decide(&mut group);
        let outcome = if decided.records.is_empty() {
            Ok(())
        } else {
            match self.persist(&decided.records, &decided.erased, &mut decided.overlay, None) {
                Ok(()) => {
                    self.after_persist(&decided);
                    Ok(())
                }
                Err(e) => Err(self.write_failed(&e, decided.tail_at_start)),
            }
        };
        answer(group, &decided.infos, outcome);
    }

    /// A cluster node's group: append, and on a lost race catch up and
    /// decide again (at most [`MAX_DECISIONS`] times).
    fn write_group_cluster(&mut self, mut group: Vec<Job>, work: &mut UnboundedReceiver<Work>) {
        self.wait_for_turn(&mut group, work);
        let mut decisions = 0;
        loop {
            decisions += 1;
            let mut decided = self.decide(&mut group);
            if decided.records.is_empty() {
                return answer(group, &decided.infos, Ok(()));
            }
            // One stream message holds at most MAX_COMMIT_BYTES: a group that
            // would not fit is written as two (each decided on its own).
            if group.len() > 1 && commit_bytes(&decided.records) > MAX_GROUP_BYTES {
                self.tail = decided.tail_at_start;
                drop(decided);
                let second = group.split_off(group.len() / 2);
                self.write_group_cluster(group, work);
                return self.write_group_cluster(second, work);
            }
            let Some(link) = &self.cluster else { return };
            let appended = match self.halted() {
                Some(reason) => Err(ClusterError::Refused(format!("this node stopped following the log: {reason}"))),
                None => link.append(&decided.records),
            };
            match appended {
                Ok(sequence) => {
                    // Erased in the payload store before this node drops its own
                    // copies (they name each payload's owner).
                    if !decided.erased.is_empty() {
                        let snap = self.inner.db.snapshot();
                        let local = |seq: u64| self.inner.log.read(&snap, seq).ok().flatten();
                        if let Err(e) = link.erase(&decided.records, &local) {
                            tracing::error!(error = %e, "the erasure is in the log, but the payload store kept data");
                        }
                    }
                    self.won_last = decisions == 1;
                    let outcome = match self.persist(
                        &decided.records,
                        &decided.erased,
                        &mut decided.overlay,
                        Some(sequence),
                    ) {
                        Ok(()) => {
                            if let Some(link) = &mut self.cluster {
                                link.applied = sequence;
                            }
                            self.after_persist(&decided);
                            Ok(())
                        }
                        Err(e) => {
                            // The group is in the log: the follower brings it back.
                            let failed = self.write_failed(&e, decided.tail_at_start);
                            Err(StoreError::WriteFailed(format!(
                                "{failed}; the write is in the cluster log (commit {sequence}) and this node applies it \
                                 when it can write again"
                            )))
                        }
                    };
                    return answer(group, &decided.infos, outcome);
                }
                Err(ClusterError::Conflict { last }) if decisions < MAX_DECISIONS => {
                    if decisions >= 2 {
                        link.runtime.block_on(link.log.announce_contention(link.node));
                    }
                    self.tail = decided.tail_at_start;
                    drop(decided);
                    if let Err(e) = self.catch_up(last, &mut group, work) {
                        return answer(group, &[], Err(e));
                    }
                }
                Err(e) => {
                    self.tail = decided.tail_at_start;
                    let e = StoreError::Cluster(e.to_string());
                    tracing::error!(error = %e, "a group's append failed; {} commits answered with an error", group.len());
                    self.inner.metrics.write_failures.fetch_add(1, Ordering::Relaxed);
                    *self.inner.refusal.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(super::WriteRefusal { reason: e.to_string(), at: Instant::now(), until_restart: false });
                    return answer(group, &decided.infos, Err(e));
                }
            }
        }
    }

    /// Fairness between nodes that write at once. A node that lost a race
    /// must fold the winner's commit (fetching its payloads) before it can
    /// try again, which takes longer than the winner's next group: under
    /// steady load from both, the loser would lose every time. So a node
    /// that won its last group while another node was writing gives the
    /// next turn away: it waits (up to [`YIELD_TURN`]) until it has folded
    /// another node's commit, then decides on that state. Jobs that arrive
    /// meanwhile join `group`. Nodes that write alone never wait.
    fn wait_for_turn(&mut self, group: &mut Vec<Job>, work: &mut UnboundedReceiver<Work>) {
        let announced = self
            .inner
            .cluster_status
            .as_ref()
            .and_then(|status| status.lock().unwrap_or_else(|p| p.into_inner()).contended_at);
        let contended = self.others_wrote_at.is_some_and(|at| at.elapsed() < CONTENDED_WINDOW)
            || announced.is_some_and(|at| at.elapsed() < CONTENDED_WINDOW * 4);
        if !(contended && self.won_last) {
            return;
        }
        let Some(runtime) = self.cluster.as_ref().map(|l| l.runtime.clone()) else { return };
        let deadline = Instant::now() + YIELD_TURN;
        while group.len() < MAX_GROUP {
            let left = deadline.saturating_duration_since(Instant::now());
            match runtime.block_on(async { tokio::time::timeout(left, work.recv()).await }) {
                Ok(Some(Work::Followed(commit))) => {
                    let before = self.cluster.as_ref().map_or(0, |l| l.applied);
                    if let Err(e) = self.apply_followed(*commit) {
                        self.halt(&e);
                        return;
                    }
                    // This node's own commits come back too: only another's ends the wait.
                    if self.cluster.as_ref().is_some_and(|l| l.applied > before) {
                        return;
                    }
                }
                Ok(Some(Work::Job(job))) => group.push(job),
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// After losing the race for the commit after `applied`: folds the
    /// commits that won it, as the follower delivers them, until this node
    /// holds commit `last` (the stream's end when the append was refused)
    /// or at least one more. Jobs that arrive meanwhile join `group`.
    fn catch_up(
        &mut self,
        last: u64,
        group: &mut Vec<Job>,
        work: &mut UnboundedReceiver<Work>,
    ) -> Result<(), StoreError> {
        let Some(link) = &self.cluster else { return Ok(()) };
        let runtime = link.runtime.clone();
        let target = last.max(link.applied + 1);
        let deadline = Instant::now() + CATCH_UP_LIMIT;
        while self.cluster.as_ref().is_some_and(|l| l.applied < target) {
            if let Some(reason) = self.halted() {
                return Err(StoreError::Cluster(format!("this node stopped following the log: {reason}")));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Cluster(format!(
                    "another node wrote commit {target}, and it did not reach this node within {CATCH_UP_LIMIT:?}"
                )));
            }
            // In slices, so that a follower that halts meanwhile is noticed.
            match runtime.block_on(async { tokio::time::timeout(left.min(HALT_CHECK), work.recv()).await }) {
                Ok(Some(Work::Followed(commit))) => {
                    if let Err(e) = self.apply_followed(*commit) {
                        self.halt(&e);
                        return Err(e);
                    }
                }
                Ok(Some(Work::Job(job))) => group.push(job),
                Ok(None) => return Err(StoreError::ShuttingDown),
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// Folds a commit of the stream into the store: its records (payloads
    /// fetched), the payloads an erasure in it lists dropped, and the
    /// stream sequence, in one batch; then the projections catch up.
    /// A commit the store already holds (this node's own) is checked and
    /// passed over.
    fn apply_followed(&mut self, commit: Fetched) -> Result<(), StoreError> {
        let inner = Arc::clone(&self.inner);
        let Some(link) = &self.cluster else { return Ok(()) };
        let (Some(first), Some(last)) = (commit.records.first(), commit.records.last()) else {
            return Err(StoreError::Cluster(format!("commit {} of the log stream has no records", commit.sequence)));
        };
        if commit.sequence <= link.applied {
            let held = inner.log.read(&inner.db.snapshot(), last.seq())?;
            if held.is_none_or(|r| r.header.hash != last.header.hash) {
                return Err(StoreError::Cluster(format!(
                    "commit {} of the log stream is not the one this node holds at position {}: the replicas \
                     diverged, or the stream was altered",
                    commit.sequence,
                    last.seq()
                )));
            }
            return Ok(());
        }
        if commit.sequence != link.applied + 1 || first.seq() != self.tail.next_seq {
            return Err(StoreError::Cluster(format!(
                "commit {} (from position {}) does not follow commit {} (to position {})",
                commit.sequence,
                first.seq(),
                link.applied,
                self.tail.next_seq - 1
            )));
        }
        let mut verifier = ChainVerifier::from_tail(self.tail);
        let mut batch = inner.db.batch();
        let mut held_erased = false;
        let snap = inner.db.snapshot();
        for record in &commit.records {
            verifier.check(&record.header, record.payload.as_ref()).map_err(|e| inner.log.corrupt(e))?;
            inner.log.stage(&mut batch, record);
            if record.header.event_type == "AccountErased"
                && let Some(Ok(Event::AccountErased(erased))) = record.event()
            {
                for listed in &erased.erased {
                    held_erased |= inner.log.read(&snap, listed.position)?.is_some_and(|r| r.payload.is_some());
                    inner.log.erase_payload(&mut batch, listed.position);
                }
            }
        }
        drop(snap);
        link.stage(&mut batch, commit.sequence);
        batch.commit()?;
        // No fsync: the stream holds the commit durably, and a crash that
        // loses this batch leaves the store at an earlier commit (the batch
        // is atomic), which the follower brings it past again.
        self.tail = verifier.tail();
        if let Some(link) = &mut self.cluster {
            link.applied = commit.sequence;
        }
        if held_erased {
            self.compact_through = Some(self.tail.next_seq - 1);
        }
        self.others_wrote_at = Some(Instant::now());
        replay::catch_up(&inner.db, &inner.log, &inner.projections)?;
        inner.metrics.events.fetch_add(commit.records.len() as u64, Ordering::Relaxed);
        self.publish_cluster_status(None);
        inner.publish(inner.projections.view(inner.db.snapshot()), self.tail.next_seq - 1);
        inner.durable.send_replace(self.tail.next_seq - 1);
        Ok(())
    }

    /// Why this node stopped following its stream, if it did.
    fn halted(&self) -> Option<String> {
        self.inner.cluster_status.as_ref()?.lock().unwrap_or_else(|p| p.into_inner()).halted.clone()
    }

    /// Stops following: the store no longer matches the stream (or cannot
    /// take it); writes fail from now on, reads go on.
    fn halt(&mut self, e: &StoreError) {
        tracing::error!(error = %e, "this node stopped applying the cluster log");
        self.publish_cluster_status(Some(e.to_string()));
    }

    fn publish_cluster_status(&self, halted: Option<String>) {
        let (Some(status), Some(link)) = (&self.inner.cluster_status, &self.cluster) else { return };
        let mut status = status.lock().unwrap_or_else(|p| p.into_inner());
        status.applied = link.applied;
        status.tail = self.tail;
        if halted.is_some() {
            status.halted = halted;
        }
    }

    /// Counts a durable group and publishes what it wrote.
    fn after_persist(&self, decided: &Decided) {
        let inner = &self.inner;
        let committed = decided.infos.iter().filter(|i| i.last_seq != 0).count() as u64;
        inner.metrics.commits.fetch_add(committed, Ordering::Relaxed);
        inner.metrics.events.fetch_add(decided.records.len() as u64, Ordering::Relaxed);
        inner.metrics.groups.fetch_add(1, Ordering::Relaxed);
        inner.metrics.group_sizes.observe(committed as f64);
        {
            let mut refusal = inner.refusal.lock().unwrap_or_else(|p| p.into_inner());
            if refusal.as_ref().is_some_and(|r| !r.until_restart) {
                *refusal = None;
            }
        }
        self.publish_cluster_status(None);
        inner.publish(inner.projections.view(inner.db.snapshot()), self.tail.next_seq - 1);
        inner.durable.send_replace(self.tail.next_seq - 1);
    }

    /// Notes a failed group write; returns the error its jobs are answered with.
    fn write_failed(&mut self, e: &fjall::Error, tail_at_start: ChainTail) -> StoreError {
        let inner = &self.inner;
        tracing::error!(error = %e, "group commit failed; its commits are answered with an error");
        inner.metrics.write_failures.fetch_add(1, Ordering::Relaxed);
        *inner.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(super::WriteRefusal {
            reason: super::error::fjall_text(e),
            at: Instant::now(),
            // fjall poisons itself after a failed journal write and
            // then refuses every write; the probe says whether it did.
            until_restart: matches!(e, fjall::Error::Poisoned)
                || matches!(inner.db.persist(PersistMode::Buffer), Err(fjall::Error::Poisoned)),
        });
        if matches!(e, fjall::Error::Poisoned) {
            // fjall refuses every write after a failed journal write, to keep
            // the store consistent; reads go on.
            tracing::error!("the store takes no writes until the service restarts: free disk space, then restart");
        }
        // The batch may or may not have reached the store; the store says
        // where the chain ends now, so no position is ever written twice.
        self.tail = inner.log.check_tail(&inner.db.snapshot(), 1).unwrap_or(tail_at_start);
        StoreError::WriteFailed(super::error::fjall_text(e))
    }

    fn persist(
        &self,
        records: &[Record],
        erased: &[u64],
        overlay: &mut Overlay<SnapshotView>,
        sequence: Option<u64>,
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
        if let (Some(link), Some(sequence)) = (&self.cluster, sequence) {
            link.stage(&mut batch, sequence);
        }
        batch.commit()?;
        // A cluster node's group is durable once the stream has it (its
        // servers fsync before they answer); the local copy is rebuilt from
        // the stream, so it is not fsynced (see `apply_followed`).
        if inner.durability == Durability::Fsync && self.cluster.is_none() {
            let started = Instant::now();
            inner.db.persist(PersistMode::SyncAll)?;
            inner.metrics.fsync_seconds.observe(started.elapsed().as_secs_f64());
            inner.metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The most bytes of record headers one group's stream message carries,
/// leaving room under the stream's message limit for the NATS headers.
const MAX_GROUP_BYTES: usize = crate::cluster::MAX_COMMIT_BYTES as usize * 7 / 8;

/// The size of `records` as a stream message carries them (headers only).
fn commit_bytes(records: &[Record]) -> usize {
    records.iter().map(|r| ledger_events::codec::encode_header(&r.header).len() + 8).sum()
}

/// Answers each job of `group` with its commit (`infos`, by job) or the error.
fn answer(group: Vec<Job>, infos: &[CommitInfo], outcome: Result<(), StoreError>) {
    for (i, job) in group.into_iter().enumerate() {
        let result = match (&outcome, infos.get(i)) {
            (Ok(()), Some(info)) => Ok(*info),
            (Ok(()), None) => Err(StoreError::Internal("a job was not run".to_owned())),
            (Err(e), _) => Err(e.duplicate()),
        };
        job.run.answer(result);
    }
}
