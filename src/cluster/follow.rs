//! The follower of a cluster node: reads the log stream in order from the
//! commit after the last one the node's store holds, fetches each commit's
//! payloads from the payload store, and hands the commit to the writer,
//! which folds it ([`crate::store::Ledger::offer_followed`]).
//!
//! A commit that does not extend the chain, or a stream that skips a
//! commit, stops the follower for good: the node reports it
//! ([`crate::store::ClusterStatus::halted`]), its writes fail, its reads
//! answer the state before it. A broken connection only restarts the
//! follower, from where the store is.

use std::time::Duration;

use futures_util::StreamExt;
use ledger_events::{ChainVerifier, Record};

use super::{ClusterError, FollowedCommit, Owner, PayloadStore, StreamLog};
use crate::store::Ledger;
use crate::store::cluster::Fetched;

/// Commits the follower hands the writer before it waits for them to be applied.
const MAX_AHEAD: u64 = 256;

/// How long the follower waits for the next commit before it checks
/// whether the stream has moved on without it.
const QUIET: Duration = Duration::from_secs(3);

/// The pause before following again after the connection broke.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Follows `log` into `ledger` until the ledger shuts down or following
/// halts; `node` is the node's [`crate::store::cluster::ClusterLink::node`].
/// Spawn it on the runtime the servers' client runs on.
pub async fn follow(ledger: Ledger, log: StreamLog, payloads: PayloadStore, node: u64) {
    // Other nodes that keep losing races say so; this node then gives turns away.
    if let Ok(mut contention) = log.contention().await {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            while let Some(from) = contention.next().await {
                if from != node {
                    ledger.note_contention();
                }
            }
        });
    }
    loop {
        let Some(status) = ledger.cluster_status() else { return };
        if status.halted.is_some() {
            return;
        }
        let verifier = ChainVerifier::from_tail(status.tail);
        let mut commits = match tokio::time::timeout(QUIET * 3, log.follow(status.applied + 1, verifier)).await {
            Ok(Ok(commits)) => commits,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "following the log stream failed; trying again");
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
            Err(_) => {
                tracing::warn!("the log stream did not answer; trying again");
                continue;
            }
        };
        loop {
            // A consumer whose server went away may wait without an error:
            // when nothing arrives for a while and the stream is ahead of
            // this node, follow again.
            let next = match tokio::time::timeout(QUIET, commits.next()).await {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(_) => {
                    let applied = ledger.cluster_status().map_or(0, |s| s.applied);
                    match tokio::time::timeout(QUIET, log.last_sequence()).await {
                        Ok(Ok(last)) if last <= applied => continue,
                        _ => {
                            tracing::warn!("the log stream is ahead of this node and nothing arrives; following again");
                            break;
                        }
                    }
                }
            };
            let halted = match next {
                // A commit the store holds already (this node's own) goes to the
                // writer without its payloads: it only checks the hashes agree.
                Ok(followed) if ledger.cluster_status().is_some_and(|s| s.applied >= followed.sequence) => {
                    let FollowedCommit { sequence, commit } = followed;
                    if !ledger.offer_followed(Fetched { sequence, records: commit.records }) {
                        return;
                    }
                    None
                }
                Ok(followed) => match fetch(&payloads, ahead_by_at_most(&ledger, followed).await).await {
                    Ok(fetched) => {
                        let erasures = erased_accounts(&fetched.records);
                        if !ledger.offer_followed(fetched) {
                            return;
                        }
                        // The node that erased did this before it answered; a
                        // node that crashed in between left it to the others.
                        // (This node's own files are compacted by its writer.)
                        for account in erasures {
                            if let Err(e) = payloads.erase(Owner::Account(account)).await {
                                tracing::warn!(error = %e, "erasing in the payload store failed");
                            }
                        }
                        None
                    }
                    Err(e @ ClusterError::Missing { .. }) => Some(e),
                    Err(e) => {
                        tracing::warn!(error = %e, "fetching payloads failed; following again");
                        break;
                    }
                },
                Err(e @ (ClusterError::Chain { .. } | ClusterError::Malformed { .. })) => Some(e),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the log stream failed; following again");
                    break;
                }
            };
            if let Some(e) = halted {
                tracing::error!(error = %e, "this node stopped following the log stream");
                ledger.halt_following(e.to_string());
                return;
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Waits until the writer is at most [`MAX_AHEAD`] commits behind
/// `followed`: a node copying a long stream holds only that many commits
/// (and their payloads) in memory.
async fn ahead_by_at_most(ledger: &Ledger, followed: FollowedCommit) -> FollowedCommit {
    let mut durable = ledger.subscribe();
    while ledger.cluster_status().is_some_and(|s| s.applied + MAX_AHEAD < followed.sequence && s.halted.is_none()) {
        // Applying moves the durable position; a second bounds a missed wake-up.
        let _ = tokio::time::timeout(Duration::from_secs(1), durable.changed()).await;
    }
    followed
}

/// The commit with each record's payload from the payload store (`None`
/// where it was erased).
async fn fetch(payloads: &PayloadStore, followed: FollowedCommit) -> Result<Fetched, ClusterError> {
    let FollowedCommit { sequence, commit } = followed;
    let gets = commit
        .records
        .iter()
        .zip(&commit.owners)
        .map(|(record, owner)| payloads.get(*owner, record.header.event_id, record.header.format));
    let found = futures_util::future::try_join_all(gets).await?;
    let records = commit
        .records
        .into_iter()
        .zip(found)
        .map(|(record, payload)| Record { header: record.header, payload })
        .collect();
    Ok(Fetched { sequence, records })
}

/// The accounts `AccountErased` records among `records` erase.
fn erased_accounts(records: &[Record]) -> Vec<ledger_events::values::ObjectId> {
    records
        .iter()
        .filter(|r| r.header.event_type == "AccountErased")
        .filter_map(|r| match r.event() {
            Some(Ok(ledger_events::Event::AccountErased(e))) => Some(e.account_id),
            _ => None,
        })
        .collect()
}
