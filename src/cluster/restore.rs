//! Restoring a log into a new, empty cluster stream: `ledger restore
//! --to-log nats://…` appends the records of a restored store (a backup or
//! a stopped store, cut at a point in time by `audit::restore`) as stream
//! commits, storing each payload (or the tombstone of an erased one) first,
//! as a node does. Nodes started on the stream with empty data directories
//! then copy it.

use ledger_events::Record;
use uuid::Uuid;

use super::{ClusterError, Commit, Owner, PayloadStore, StreamLog};

/// Bytes of record headers per stream message at most, well under the
/// stream's 1 MiB limit.
const GROUP_BYTES: usize = 256 * 1024;

/// Appends `records` (positions 1.., in order) to the empty stream `log`,
/// whole commits per message, telling `progress` the last position
/// appended; returns the number of stream messages.
/// Errors: the stream is not empty ([`ClusterError::Refused`]), or any
/// error of storing or appending.
pub async fn append_all(
    log: &StreamLog,
    payloads: &PayloadStore,
    records: impl Iterator<Item = Record>,
    mut progress: impl FnMut(u64),
) -> Result<u64, ClusterError> {
    let last = log.last_sequence().await?;
    if last != 0 {
        return Err(ClusterError::Refused(format!(
            "the log stream {} holds {last} commits already: restore into a new stream (--log-stream NAME)",
            log.name()
        )));
    }
    let mut group: Vec<Record> = Vec::new();
    let mut bytes = 0;
    let mut appended = 0u64;
    for record in records {
        let new_commit = group.last().is_some_and(|r| r.header.commit.commit_id != record.header.commit.commit_id);
        if new_commit && bytes > GROUP_BYTES {
            let through = group.last().map_or(0, |r| r.seq());
            appended = append_group(log, payloads, std::mem::take(&mut group), appended).await?;
            progress(through);
            bytes = 0;
        }
        bytes += ledger_events::codec::encode_header(&record.header).len() + 8;
        group.push(record);
    }
    if let Some(through) = group.last().map(|r| r.seq()) {
        appended = append_group(log, payloads, group, appended).await?;
        progress(through);
    }
    Ok(appended)
}

/// Stores the group's payloads (tombstones for erased ones) and appends it
/// as commit `appended + 1`.
async fn append_group(
    log: &StreamLog,
    payloads: &PayloadStore,
    records: Vec<Record>,
    appended: u64,
) -> Result<u64, ClusterError> {
    let owners: Vec<Owner> = records.iter().map(Owner::of).collect();
    let puts = records.iter().zip(&owners).map(|(record, owner)| async move {
        match &record.payload {
            Some(payload) => payloads.put(*owner, record.header.event_id, payload).await,
            None => payloads.put_tombstone(*owner, record.header.event_id).await,
        }
    });
    futures_util::future::try_join_all(puts).await?;
    let stripped = records.into_iter().map(|r| Record { header: r.header, payload: None }).collect();
    let commit = Commit { id: Uuid::now_v7(), records: stripped, owners };
    Ok(log.append(&commit, appended).await?.sequence)
}
