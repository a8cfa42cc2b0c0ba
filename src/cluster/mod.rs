//! The log of a cluster: one NATS JetStream stream, replicated by three (or
//! five) servers, holding one message per commit.
//!
//! A node appends with optimistic concurrency on the whole stream
//! (`Nats-Expected-Last-Sequence`, checked when the replicated entry is
//! applied, so exactly one of several racing appends wins a sequence) and
//! `Nats-Msg-Id` = the commit id, so an append retried after a lost answer is
//! stored once. The stream keeps its sequences gapless (no deletes, no purges,
//! no limits), so stream sequence N is the N-th commit, and the positions of
//! its records follow from the commits before it.
//!
//! A commit message carries its records' headers only; payloads live in a
//! second stream where erasure can reach them ([`PayloadStore`]: sealed
//! under a key per account, erased key first), and the log stream refuses a
//! record that carries one.
//!
//! Followers read the stream in order and check each commit against the
//! chain they hold ([`StreamLog::follow`]): a record that does not extend it
//! (tampering, or replicas that diverged), a gap, or headers that disagree
//! with the records stop them with the position. A follower that stopped
//! resumes by following again from the commit after the last one it applied.
//! The node that applies a commit fetches its payloads from the payload
//! store; a payload found missing there must be one an `AccountErased`
//! record lists (`ErasureCoverage`), as for a single node.
//!
//! The writer's side (appending a group, catching up after a lost race,
//! folding others' commits) is in `store::cluster` and `store::writer`;
//! [`follow`] is the task that reads the stream for a node.

mod follow;
mod payloads;
pub mod restore;
mod stream;

pub use follow::follow;
pub use payloads::{Owner, PayloadStore};
pub(crate) use stream::MAX_COMMIT_BYTES;
pub use stream::{Appended, ClusterError, Commit, FollowedCommit, StreamLog, stream_config};
