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

/// The pause before following again after the connection broke.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Follows `log` into `ledger` until the ledger shuts down or following
/// halts. Spawn it on the runtime the servers' client runs on.
pub async fn follow(ledger: Ledger, log: StreamLog, payloads: PayloadStore) {
    loop {
        let Some(status) = ledger.cluster_status() else { return };
        if status.halted.is_some() {
            return;
        }
        let verifier = ChainVerifier::from_tail(status.tail);
        let mut commits = match log.follow(status.applied + 1, verifier).await {
            Ok(commits) => commits,
            Err(e) => {
                tracing::warn!(error = %e, "following the log stream failed; trying again");
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        while let Some(next) = commits.next().await {
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
                Ok(followed) => match fetch(&payloads, followed).await {
                    Ok(fetched) => {
                        let erasures = erased_accounts(&fetched.records);
                        let last = fetched.records.last().map_or(0, |r| r.seq());
                        if !ledger.offer_followed(fetched) {
                            return;
                        }
                        if !erasures.is_empty() {
                            for account in erasures {
                                // The node that erased did this before it answered; a
                                // node that crashed in between left it to the others.
                                if let Err(e) = payloads.erase(Owner::Account(account)).await {
                                    tracing::warn!(error = %e, "erasing in the payload store failed");
                                }
                            }
                            // Before the next commit is offered: a node that has
                            // applied a later position has its files rewritten.
                            compact_after(ledger.clone(), last).await;
                        }
                        None
                    }
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

/// Once this node has applied the erasure ending at `position`, rewrites
/// its files so that the erased payloads are gone from its disk too (as
/// the node that erased did before it answered).
async fn compact_after(ledger: Ledger, position: u64) {
    let mut durable = ledger.subscribe();
    if durable.wait_for(|applied| *applied >= position).await.is_err() {
        return;
    }
    let compacted = tokio::task::spawn_blocking(move || ledger.compact(position)).await;
    match compacted {
        Ok(Ok(())) => tracing::info!(position, "erased payloads removed from this node's files"),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "an erasure from another node is applied, but this node's files keep it")
        }
        Err(e) => tracing::error!(error = %e, "compacting after an erasure failed"),
    }
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
