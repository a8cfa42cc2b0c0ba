//! The ledger store: one fjall database holding the event log and its projections,
//! a single writer thread, and published read snapshots.

pub mod cluster;
mod compact;
mod error;
mod files;
pub mod location;
mod tx;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;

use fjall::Database;
use ledger_events::values::UtcDateTime;
use ledger_events::{Actor, ChainTail, EventLog};
use ledger_projections::{Projections, SnapshotView, replay};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub use error::StoreError;

pub(crate) use location::ReadOnlyStore;
pub use location::{verify_offline, verify_offline_with};
pub use tx::Tx;

/// fjall replays its whole journal on open (seconds per 100 MB); a small limit
/// makes it flush memtables sooner so that reopening stays quick.
pub const JOURNAL_LIMIT: u64 = 64 * 1024 * 1024;

/// fjall's block cache. Its default (32 MiB) holds a small part of a 100k-account
/// directory's projections; replay and queries then read from disk.
pub const CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// How long a clean shutdown waits for its flush before leaving it to the journal.
const SHUTDOWN_FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A keyspace that exists only for a moment during erasure (see `retire_journal`).
pub const SCRATCH_KEYSPACE: &str = "maintenance_scratch";

/// How long an erasure waits for readers that began before it (and hold its
/// data in files) to end.
pub const ERASURE_SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// How many records at the end of the log are verified on every open.
const TAIL_CHECK_DEPTH: u64 = 1024;

/// Whether a commit is acknowledged only after fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// Acknowledge after the group's fsync: nothing acknowledged is ever lost.
    Fsync,
    /// Acknowledge once written to the OS: survives a process crash, not a power loss.
    Buffered,
}

/// Who is committing, and in answer to what.
#[derive(Debug, Clone)]
pub struct CommitOrigin {
    pub actor: Actor,
    pub request_id: String,
    pub call_id: String,
}

impl CommitOrigin {
    pub fn system() -> Self {
        CommitOrigin { actor: Actor::system(), request_id: String::new(), call_id: String::new() }
    }
}

/// Where a durable commit landed. `last_seq` is 0 when it recorded no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitInfo {
    pub commit_id: Uuid,
    pub committed_at: UtcDateTime,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// A job's result once its commit is durable (or failed).
pub struct Committed<T> {
    pub info: CommitInfo,
    pub value: T,
}

/// A job the writer runs, perhaps more than once: in a cluster, a commit
/// that lost the race for the log's next position is decided again on the
/// state that won (see [`writer`]); the value of the last run is answered.
pub(crate) trait JobRun: Send {
    fn run(&mut self, tx: &mut Tx<'_>);
    fn answer(self: Box<Self>, result: Result<CommitInfo, StoreError>);
}

struct TypedJob<T, F> {
    job: F,
    value: Option<T>,
    answer: oneshot::Sender<Result<Committed<T>, StoreError>>,
}

impl<T: Send, F: FnMut(&mut Tx<'_>) -> T + Send> JobRun for TypedJob<T, F> {
    fn run(&mut self, tx: &mut Tx<'_>) {
        self.value = Some((self.job)(tx));
    }

    fn answer(self: Box<Self>, result: Result<CommitInfo, StoreError>) {
        let answered = match (result, self.value) {
            (Ok(info), Some(value)) => Ok(Committed { info, value }),
            (Ok(_), None) => Err(StoreError::Internal("a job was answered before it ran".to_owned())),
            (Err(e), _) => Err(e),
        };
        // The caller may have stopped waiting; then nobody needs the answer.
        let _ = self.answer.send(answered);
    }
}

pub(crate) struct Job {
    origin: CommitOrigin,
    run: Box<dyn JobRun>,
}

/// A consistent view for readers: projections plus the log position they include.
/// Readers hold it (as the `Arc` [`Ledger::read`] gives) for as long as they
/// use its snapshot, so that erasure can tell when no older snapshot is left;
/// it is not `Clone` for that reason.
pub struct ReadState {
    pub view: SnapshotView,
    pub last_seq: u64,
    /// Counts publications, so erasure can tell which readers are older.
    pub(crate) generation: u64,
}

/// Counters a test, a benchmark or `/metrics` can read.
#[derive(Debug)]
pub struct Metrics {
    /// Commits that recorded at least one event.
    pub commits: AtomicU64,
    /// Events (records) appended.
    pub events: AtomicU64,
    /// Batches written (one per group).
    pub groups: AtomicU64,
    pub fsyncs: AtomicU64,
    /// Groups whose write failed.
    pub write_failures: AtomicU64,
    /// Commits per group.
    pub group_sizes: prometheus_client::metrics::histogram::Histogram,
    /// Seconds per group fsync.
    pub fsync_seconds: prometheus_client::metrics::histogram::Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
        Metrics {
            commits: AtomicU64::new(0),
            events: AtomicU64::new(0),
            groups: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
            // 1 to 1024 commits.
            group_sizes: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            // 50 µs to about 3.3 s.
            fsync_seconds: Histogram::new(exponential_buckets(0.00005, 2.0, 17)),
        }
    }
}

/// The last write failure: why, when, and whether the store now refuses
/// every write until restarted (fjall after a failed journal write).
#[derive(Debug, Clone)]
pub(crate) struct WriteRefusal {
    pub(crate) reason: String,
    pub(crate) at: std::time::Instant,
    pub(crate) until_restart: bool,
}

pub(crate) struct Inner {
    pub(crate) db: Database,
    pub(crate) log: EventLog,
    pub(crate) projections: Projections,
    durability: Durability,
    read: RwLock<Arc<ReadState>>,
    /// Every read state published and maybe still held by a reader (pruned at
    /// each publish): erasure waits for those older than it to be dropped.
    published: Mutex<Vec<std::sync::Weak<ReadState>>>,
    /// The last durable position, for subscribers that follow the log.
    durable: tokio::sync::watch::Sender<u64>,
    write_gate: Mutex<()>,
    metrics: Metrics,
    /// Set by the writer when a group fails; cleared when one succeeds.
    pub(crate) refusal: Mutex<Option<WriteRefusal>>,
    /// Where a cluster node is in its stream; `None` for a single node.
    pub(crate) cluster_status: Option<Mutex<ClusterStatus>>,
}

/// Where a cluster node is in its log stream, as the writer last left it.
#[derive(Debug, Clone)]
pub struct ClusterStatus {
    /// The stream's name.
    pub stream: String,
    /// The last stream commit this node's store holds.
    pub applied: u64,
    /// The chain's end after it: the last position and its hash.
    pub tail: ChainTail,
    /// Why this node stopped applying the stream, if it did (a commit that
    /// does not extend its chain, a store that cannot take it): writes then
    /// fail and reads answer the state before it, until an operator acts.
    pub halted: Option<String>,
    /// When another node last said it keeps losing races for the next commit.
    pub contended_at: Option<std::time::Instant>,
}

impl Inner {
    /// The read state published last.
    fn read_state(&self) -> Arc<ReadState> {
        Arc::clone(&self.read.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Makes `read` what readers get from now on.
    pub(crate) fn publish(&self, view: SnapshotView, last_seq: u64) {
        let generation = self.read.read().unwrap_or_else(|p| p.into_inner()).generation + 1;
        let read = Arc::new(ReadState { view, last_seq, generation });
        {
            let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
            published.retain(|w| w.strong_count() > 0);
            published.push(Arc::downgrade(&read));
        }
        *self.read.write().unwrap_or_else(|p| p.into_inner()) = read;
    }
}

/// Handle to an open ledger. Cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
    control: Arc<Control>,
}

struct Control {
    jobs: Mutex<Option<mpsc::UnboundedSender<writer::Work>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Control {
    fn drop(&mut self) {
        stop_writer(&self.jobs, &self.writer);
    }
}

fn stop_writer(jobs: &Mutex<Option<mpsc::UnboundedSender<writer::Work>>>, writer: &Mutex<Option<JoinHandle<()>>>) {
    drop(jobs.lock().unwrap_or_else(|p| p.into_inner()).take());
    if let Some(handle) = writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
        let _ = handle.join();
    }
}

/// Opens the fjall database and its log and projection keyspaces, without checks.
pub(crate) fn open_parts(data_dir: &Path) -> Result<(Database, EventLog, Projections), StoreError> {
    let deadline = std::time::Instant::now() + location::LOCK_WAIT;
    location::check_not_held_until(data_dir, deadline)?;
    location::create_private_dir(data_dir)
        .map_err(|e| StoreError::DataDir { path: data_dir.display().to_string(), reason: e.to_string() })?;
    let db = loop {
        match Database::builder(data_dir).max_journaling_size(JOURNAL_LIMIT).cache_size(CACHE_BYTES).open() {
            // Released between the check and the open by one closing store,
            // taken by another: wait for it as the check does.
            Err(fjall::Error::Locked) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
                location::check_not_held_until(data_dir, deadline)?;
            }
            Err(fjall::Error::Locked) => {
                return Err(StoreError::Held {
                    path: data_dir.display().to_string(),
                    pid: location::server_pid(data_dir),
                });
            }
            other => {
                break other.map_err(|e| StoreError::DataDir {
                    path: data_dir.display().to_string(),
                    reason: error::fjall_text(&e),
                })?;
            }
        }
    };
    // A scratch keyspace left by a crash during an erasure holds filler whose
    // memtable nothing would flush, which keeps fjall from ever deleting the
    // journal it is in (and the erased data that journal may hold).
    if db.keyspace_exists(SCRATCH_KEYSPACE) {
        db.delete_keyspace(db.keyspace(SCRATCH_KEYSPACE, fjall::KeyspaceCreateOptions::default)?)?;
    }
    let log = EventLog::open(&db, data_dir)?;
    let projections = Projections::open(&db)?;
    Ok((db, log, projections))
}

impl Ledger {
    /// Opens (or creates) the ledger in `data_dir`: verifies the end of the chain,
    /// brings projections up to the log, and starts the writer.
    pub fn open(data_dir: &Path, durability: Durability) -> Result<Self, StoreError> {
        Self::open_with(data_dir, durability, None)
    }

    /// Opens the local copy in `data_dir` of a cluster's log (an empty
    /// directory on a node's first start) and checks that it is the copy of
    /// `link`'s stream and agrees with it: the stream's commit that the copy
    /// ends with must end with the same hash. Commits after it are folded as
    /// the follower ([`crate::cluster::follow`]) brings them.
    pub fn open_cluster(
        data_dir: &Path,
        durability: Durability,
        link: cluster::ClusterLink,
    ) -> Result<Self, StoreError> {
        Self::open_with(data_dir, durability, Some(link))
    }

    fn open_with(
        data_dir: &Path,
        durability: Durability,
        mut link: Option<cluster::ClusterLink>,
    ) -> Result<Self, StoreError> {
        let (db, log, projections) = open_parts(data_dir)?;
        let snap = db.snapshot();
        let tail = log.check_tail(&snap, TAIL_CHECK_DEPTH)?;
        let last_committed_at = match tail.next_seq - 1 {
            0 => 0,
            last => log.read(&snap, last)?.map_or(0, |r| r.header.commit.committed_at.millis()),
        };
        drop(snap);
        let cluster_status = match &mut link {
            None => None,
            Some(link) => {
                link.bind(&db, tail.next_seq - 1)?;
                if link.applied > 0 {
                    let stored = link
                        .runtime
                        .block_on(async {
                            tokio::time::timeout(cluster::APPEND_LIMIT * 3, link.log.stored_head(link.applied)).await
                        })
                        .map_err(|_| StoreError::Cluster("the log stream did not answer".to_owned()))?
                        .map_err(|e| StoreError::Cluster(e.to_string()))?;
                    if stored != tail.last_hash.to_hex() {
                        return Err(StoreError::Cluster(format!(
                            "this data directory ends at position {} with hash {}, but commit {} of the log stream \
                             ends with {stored}: it is not a copy of this stream (or the stream was altered)",
                            tail.next_seq - 1,
                            tail.last_hash,
                            link.applied
                        )));
                    }
                }
                Some(Mutex::new(ClusterStatus {
                    stream: link.log.name().to_owned(),
                    applied: link.applied,
                    tail,
                    halted: None,
                    contended_at: None,
                }))
            }
        };
        let replayed = replay::open_projections(&db, &log, &projections)?;
        if replayed > 0 {
            tracing::info!(replayed, "projections caught up with the log");
        }
        let read =
            Arc::new(ReadState { view: projections.view(db.snapshot()), last_seq: tail.next_seq - 1, generation: 0 });
        let inner = Arc::new(Inner {
            db,
            log,
            projections,
            durability,
            published: Mutex::new(vec![Arc::downgrade(&read)]),
            read: RwLock::new(read),
            durable: tokio::sync::watch::Sender::new(tail.next_seq - 1),
            write_gate: Mutex::new(()),
            metrics: Metrics::default(),
            refusal: Mutex::new(None),
            cluster_status,
        });
        let (sender, receiver) = mpsc::unbounded_channel();
        let writer = writer::Writer {
            inner: Arc::clone(&inner),
            tail,
            last_committed_at,
            cluster: link,
            compact_through: None,
            others_wrote_at: None,
            won_last: false,
        };
        let handle = std::thread::Builder::new()
            .name("ledger-writer".to_owned())
            .spawn(move || writer.run(receiver))
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Ledger {
            inner,
            control: Arc::new(Control { jobs: Mutex::new(Some(sender)), writer: Mutex::new(Some(handle)) }),
        })
    }

    /// Queues a commit. `job` runs on the writer thread against the latest state;
    /// the receiver answers once the commit is durable (or failed). In a
    /// cluster `job` may run more than once (each run on a newer state, all
    /// but the last dropped), so it must not consume what it captures.
    pub fn submit<T, F>(&self, origin: CommitOrigin, job: F) -> oneshot::Receiver<Result<Committed<T>, StoreError>>
    where
        T: Send + 'static,
        F: FnMut(&mut Tx<'_>) -> T + Send + 'static,
    {
        let (answer, receiver) = oneshot::channel();
        let run = Box::new(TypedJob { job, value: None, answer });
        let sent = match &*self.control.jobs.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(jobs) => jobs.send(writer::Work::Job(Job { origin, run })).is_ok(),
            None => false,
        };
        if !sent {
            // The job (and its answer channel) was dropped: the receiver reports it.
            tracing::warn!("commit submitted after shutdown");
        }
        receiver
    }

    /// Submits and waits, for callers outside an async runtime.
    pub fn commit_blocking<T, F>(&self, origin: CommitOrigin, job: F) -> Result<Committed<T>, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut Tx<'_>) -> T + Send + 'static,
    {
        self.submit(origin, job).blocking_recv().map_err(|_| StoreError::ShuttingDown)?
    }

    /// Submits and awaits.
    pub async fn commit<T, F>(&self, origin: CommitOrigin, job: F) -> Result<Committed<T>, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut Tx<'_>) -> T + Send + 'static,
    {
        self.submit(origin, job).await.map_err(|_| StoreError::ShuttingDown)?
    }

    /// Where this node is in its cluster's stream; `None` for a single node.
    pub fn cluster_status(&self) -> Option<ClusterStatus> {
        Some(self.inner.cluster_status.as_ref()?.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// Records that following the stream stopped for good (`reason`): writes
    /// fail from now on (they could not be decided on the latest state).
    pub(crate) fn halt_following(&self, reason: String) {
        if let Some(status) = &self.inner.cluster_status {
            status.lock().unwrap_or_else(|p| p.into_inner()).halted.get_or_insert(reason);
        }
    }

    /// Records that another node keeps losing races for the next commit:
    /// this node's writer gives turns away for a while.
    pub(crate) fn note_contention(&self) {
        if let Some(status) = &self.inner.cluster_status {
            status.lock().unwrap_or_else(|p| p.into_inner()).contended_at = Some(std::time::Instant::now());
        }
    }

    /// Hands a commit of the stream to the writer, to fold. `false` once
    /// the writer has stopped.
    pub(crate) fn offer_followed(&self, commit: cluster::Fetched) -> bool {
        match &*self.control.jobs.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(jobs) => jobs.send(writer::Work::Followed(Box::new(commit))).is_ok(),
            None => false,
        }
    }

    /// The latest durable state. Never waits for the writer.
    pub fn read(&self) -> Arc<ReadState> {
        Arc::clone(&self.inner.read.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Changes whenever new records become durable (and readable); the value is
    /// the last durable position.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.durable.subscribe()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Holds the writer between groups while the guard lives (for consistent copies).
    pub fn pause_writes(&self) -> MutexGuard<'_, ()> {
        self.inner.write_gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn log(&self) -> &EventLog {
        &self.inner.log
    }

    pub fn projections(&self) -> &Projections {
        &self.inner.projections
    }

    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// Verifies the whole chain from genesis.
    pub fn verify(&self) -> Result<(ChainTail, u64), StoreError> {
        Ok(self.inner.log.verify_all(&self.inner.db.snapshot())?)
    }

    /// Flushes every keyspace and compacts it fully, so that data removed from the
    /// store up to position `through` is gone from disk ([`Inner::compact`]).
    /// Slow; run it off the executor.
    pub(crate) fn compact(&self, through: u64) -> Result<(), StoreError> {
        self.inner.compact(through)
    }

    /// Finishes queued commits and stops the writer, then flushes every keyspace
    /// so that the next open need not replay fjall's journal into memtables.
    /// Later submits fail.
    pub fn shutdown(&self) {
        stop_writer(&self.control.jobs, &self.control.writer);
        // fjall waits for a flush without a time limit, and a flush that cannot
        // write (full disk) never ends; nothing is lost by giving up on it: the
        // journal still holds everything and the next open replays it.
        let (done, outcome) = std::sync::mpsc::channel();
        let inner = Arc::clone(&self.inner);
        let flushing = std::thread::Builder::new().name("ledger-flush".to_owned()).spawn(move || {
            // The receiver may have given up; then nobody needs the answer.
            let _ = done.send(flush_memtables(&inner.log, &inner.projections).map_err(|e| e.to_string()));
        });
        let result = match flushing {
            Ok(_) => outcome.recv_timeout(SHUTDOWN_FLUSH_LIMIT).map_err(|_| "timed out".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "flushing at shutdown failed; the next open replays the journal"),
            Err(e) => {
                tracing::warn!(error = %e, "flushing at shutdown did not finish; the next open replays the journal")
            }
        }
    }

    /// Why the store does not take writes now, if it does not: it refuses
    /// every write until restarted, or a write failed less than `recent` ago.
    pub fn write_refusal(&self, recent: std::time::Duration) -> Option<String> {
        let refusal = self.inner.refusal.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
        if refusal.until_restart {
            Some(format!("the store refuses writes until the service restarts: {}", refusal.reason))
        } else if refusal.at.elapsed() < recent {
            Some(format!("a write failed {:?} ago: {}", refusal.at.elapsed(), refusal.reason))
        } else {
            None
        }
    }

    pub fn durable_commits(&self) -> u64 {
        self.inner.metrics.commits.load(Ordering::Relaxed)
    }
}

/// Writes every keyspace's memtable out to disk tables, so that opening the store
/// next time does not replay fjall's journal (seconds per 64 MB of it).
pub(crate) fn flush_memtables(log: &EventLog, projections: &Projections) -> Result<(), StoreError> {
    for keyspace in all_keyspaces(log, projections) {
        keyspace.rotate_memtable_and_wait()?;
    }
    Ok(())
}

/// The log's keyspaces and every projection keyspace.
fn all_keyspaces<'a>(log: &'a EventLog, projections: &'a Projections) -> Vec<&'a fjall::Keyspace> {
    let mut keyspaces = log.keyspaces().to_vec();
    keyspaces.extend(projections.keyspaces());
    keyspaces
}

/// Drops the projections of the ledger in `data_dir` and replays its log.
/// Returns the number of events replayed. The ledger must not be open elsewhere.
pub fn rebuild(data_dir: &Path) -> Result<u64, StoreError> {
    rebuild_with(data_dir, &mut |_, _| {})
}

/// [`rebuild`], telling `progress` (position, last position) as it goes.
pub fn rebuild_with(data_dir: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<u64, StoreError> {
    rebuild_in_chunks(data_dir, replay::CHUNK_RECORDS, progress)
}

/// [`rebuild_with`], folding at most `chunk_records` records per chunk (the
/// replay tests make chunk boundaries fall everywhere with small chunks).
pub fn rebuild_in_chunks(
    data_dir: &Path,
    chunk_records: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, StoreError> {
    location::check_existing(data_dir)?;
    let (db, log, projections) = open_parts(data_dir)?;
    log.check_tail(&db.snapshot(), TAIL_CHECK_DEPTH)?;
    let replayed = replay::rebuild_in_chunks(&db, &log, &projections, chunk_records, progress)?;
    flush_memtables(&log, &projections)?;
    Ok(replayed)
}
