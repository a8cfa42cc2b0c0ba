//! `ledger audit verify` and `ledger audit new-key`: the audit commands that
//! run offline, on an export or backup file and the trust directory.

use anyhow::{Context, bail};

use super::audit::AuditCommand;
use super::output::{emit, printable};
use super::trust::TrustStore;
use crate::audit::line::{ExportLine, Trailer};
use crate::audit::note::Checkpoint;
use crate::audit::verify::{Against, verify};

pub(super) fn run_offline(command: AuditCommand) -> anyhow::Result<()> {
    if let AuditCommand::NewKey { origin, file } = &command {
        if !crate::audit::note::valid_name(origin) {
            bail!(
                "{origin:?} cannot be an origin: it must be printable ASCII (a host and path, punycode for other scripts), without spaces or +"
            );
        }
        let key = crate::audit::note::SignerKey::generate(origin)?;
        crate::secrets::write_private(file, key.encode().as_bytes())
            .with_context(|| format!("writing {} (it must not exist)", file.display()))?;
        emit(key.verifier().encode());
        return Ok(());
    }
    let AuditCommand::Verify { file, data_dir, checkpoint, key, trust_dir, unsigned } = command else {
        bail!("not an offline command")
    };
    if let Some(dir) = data_dir {
        return super::verify_store(&dir);
    }
    let Some(file) = file else { bail!("give an export file, or --data-dir") };
    if crate::backup::is_backup_file(&file) {
        // A backup file (`ledger backup`): its chain and digest.
        if checkpoint.is_some() || key.is_some() {
            bail!("--checkpoint and --key apply to exports; a backup (unsigned) is checked whole");
        }
        let summary = crate::backup::verify_file(&file, |_, _| {})?;
        emit(format_args!(
            "ok: backup of positions 1..={}, {} records, head hash {} (a backup is not signed: its own chain and digest were checked)",
            summary.last_seq, summary.records, summary.last_hash
        ));
        return Ok(());
    }
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{} is neither an audit export (NDJSON) nor a ledger backup", file.display()))?;
    // `POSITION:HASH` of the chain, or a file holding a signed checkpoint.
    // `POSITION:HASH` (64 hex digits) of the chain, else a file.
    let chain = checkpoint.as_deref().and_then(|c| {
        c.split_once(':').and_then(|(s, h)| Some((s.parse::<u64>().ok()?, ledger_events::Digest::from_hex(h)?)))
    });
    let kept_note = match checkpoint.as_deref() {
        Some(c) if chain.is_none() => Some(
            std::fs::read_to_string(c)
                .with_context(|| format!("--checkpoint {c:?}: neither POSITION:HASH nor a readable checkpoint file"))?,
        ),
        _ => None,
    };
    let trailer = last_trailer(&text);
    let note = trailer.as_ref().and_then(|t| t.checkpoint.as_deref());
    let store = TrustStore::at(trust_dir)?;
    let choice = match note {
        Some(note) => {
            // The origin as the note claims it; nothing is trusted or
            // remembered unless the note then verifies with its key.
            let origin = note.lines().next().unwrap_or_default();
            let offered = trailer.as_ref().and_then(|t| t.verifier_key.as_deref());
            Some(store.key_for(origin, key.as_deref(), offered)?)
        }
        None if key.is_some() || kept_note.is_some() => {
            bail!("{} carries no signed checkpoint (it was made before signed checkpoints)", file.display())
        }
        // A file without a trailer, or not an export at all: `verify` says which.
        None if chain.is_none() && !unsigned && trailer.is_some() => bail!(
            "{} carries no signed checkpoint, so only its own hash chain could be checked, and anyone can make a \
             chain. For an export made before signed checkpoints give --checkpoint POSITION:HASH from a \
             checkpoint you kept, or --unsigned to check its chain alone",
            file.display()
        ),
        None => None,
    };
    let key = choice.as_ref().map(|c| &c.key);
    let remembered =
        choice.as_ref().and_then(|c| c.remembered.as_ref()).and_then(|r| r.checkpoint.as_ref()).map(|(c, _)| c);
    let kept = match (&kept_note, key) {
        (Some(note), Some(key)) => Some(
            Checkpoint::open(note, key)
                .context("the --checkpoint file is not a signed checkpoint of this log's key")?,
        ),
        _ => None,
    };
    // The export must be consistent with the checkpoint named, else the one
    // remembered; with a file named, the remembered one is checked as well
    // when the export can show it.
    let trusted = kept.as_ref().or(remembered);
    let also = kept.as_ref().and(remembered);
    let against = Against { chain, key, trusted, also };
    match verify(&text, against) {
        Ok(v) => {
            let mut summary = if v.records + v.skipped == 0 {
                "ok: no records (an empty range), the export's trailer is intact".to_owned()
            } else if v.one_account {
                format!(
                    "ok: {} of one account, each checked in full and proven in the signed tree (not proven: that \
                     the file holds all of the account's records)",
                    count(v.records, "record")
                )
            } else {
                format!("ok: positions {}..={}, {} checked in full", v.from, v.last_seq, count(v.records, "record"))
            };
            if v.erased > 0 {
                summary.push_str(&format!(", {} erased (header and links checked)", v.erased));
            }
            if v.erased_unexplained > 0 {
                summary.push_str(&format!(
                    " ({} of them listed by no AccountErased record in this export: erased after its last \
                     position, or their payloads withheld)",
                    v.erased_unexplained
                ));
            }
            if v.redacted > 0 {
                summary.push_str(&format!(", {} with secrets redacted", v.redacted));
            }
            if v.skipped > 0 {
                summary.push_str(&format!(", {} skipped", v.skipped));
            }
            if v.records > 0 {
                summary.push_str(&format!(", last hash {}", v.last_hash));
            }
            if let Some((position, _)) = chain {
                summary.push_str(&format!("; the checkpoint at position {position} is in it: the log only grew"));
            }
            if note.is_none() {
                summary.push_str("; UNSIGNED: no signed checkpoint, only the export's own chain was checked");
            }
            if let (Some(c), Some(choice), Some(note)) = (&v.checkpoint, &choice, note) {
                let key = &choice.key;
                summary.push_str(&format!(
                    "; the checkpoint of tree size {} signed by {} ({}) verifies",
                    c.size,
                    key.name(),
                    key.id_hex()
                ));
                match (v.consistent_with, &kept) {
                    (Some(size), Some(_)) => {
                        summary.push_str(&format!(", consistent with the checkpoint of tree size {size} given"));
                        if let Some(r) = remembered {
                            summary.push_str(&format!(" and with the one of tree size {} remembered", r.size));
                        }
                    }
                    (Some(size), None) => {
                        summary.push_str(&format!(", consistent with the checkpoint of tree size {size} remembered"))
                    }
                    (None, _) => summary.push_str(", the first checkpoint remembered for this log"),
                }
                // Remembered only when it extends what was remembered, shown so.
                let remember = match remembered {
                    None => true,
                    Some(r) if c.size < r.size => {
                        summary.push_str(&format!(
                            "; older than the checkpoint of tree size {} remembered (consistent with it), which stays remembered",
                            r.size
                        ));
                        false
                    }
                    // Shown consistent with it: as `trusted`, or as `also`.
                    Some(_) => true,
                };
                if remember {
                    store.remember(choice, note)?;
                }
            }
            emit(printable(&summary));
            Ok(())
        }
        Err(mut faults) => {
            // In file order; problems of the whole file (position 0) first.
            faults.sort_by_key(|f| f.position);
            for f in &faults {
                let shown = if f.position == 0 { f.reason.clone() } else { f.to_string() };
                eprintln!("{}", printable(&shown));
            }
            bail!("{} did not verify: {}, listed above", file.display(), count(faults.len() as u64, "problem"))
        }
    }
}

/// `n thing` or `n things`.
fn count(n: u64, thing: &str) -> String {
    if n == 1 { format!("1 {thing}") } else { format!("{n} {thing}s") }
}

/// The trailer of an export, read from its last line.
fn last_trailer(text: &str) -> Option<Trailer> {
    let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
    serde_json::from_str::<ExportLine<'_>>(last).ok()?.trailer
}
