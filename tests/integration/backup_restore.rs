//! Issue 16: backup while the service runs and restore, against the real
//! binary: the copy verifies and restores; cut, altered or stripped copies
//! are refused; restores never write into their source, keep erasures, and
//! leave nothing half-made.

use std::process::Command;

use serde_json::json;

use super::process::{BIN, Served, call, failed, ledger, ok, text};
use super::support::ADMIN_PASSWORD;

/// Online backup while writes go on: the copy verifies, restores, and holds
/// every write acknowledged before it began; a cut copy is refused and
/// leaves nothing behind.
#[tokio::test(flavor = "multi_thread")]
async fn an_online_backup_taken_under_writes_restores_to_a_verified_store() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&dir.path().join("data"), &[]);
    let url = served.url.clone();
    let domain = call(&url, "x:Domain/set", json!({"create": {"d": {"name": "example.org"}}})).await;
    let domain = domain["created"]["d"]["id"].as_str().unwrap().to_owned();
    for i in 0..20 {
        call(
            &url,
            "x:Account/set",
            json!({"create": {"a": {"@type": "User", "name": format!("before{i}"), "domainId": domain}}}),
        )
        .await;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (url, domain, stop) = (url.clone(), domain.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                call(
                    &url,
                    "x:Account/set",
                    json!({"create": {"a": {"@type": "User", "name": format!("during{i}"), "domainId": domain}}}),
                )
                .await;
                i += 1;
            }
        })
    };
    let file = dir.path().join("ledger.bak");
    let (u, f) = (url.clone(), file.clone());
    let note = tokio::task::spawn_blocking(move || ledger(&u, &["backup", f.to_str().unwrap()])).await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    let stderr = text(&note.stderr);
    ok(note);
    assert!(stderr.contains("verified") && stderr.contains("sealing.key"), "the backup says what it lacks: {stderr}");

    let restored = dir.path().join("restored");
    let said = ok(ledger(&url, &["restore", "--from", file.to_str().unwrap(), "--to", restored.to_str().unwrap()]));
    assert!(said.starts_with("restored positions 1..="), "{said}");
    ok(ledger(&url, &["verify", "--data-dir", restored.to_str().unwrap()]));
    // Without the sealing key the restored store does not start silently with a new one.
    let keyless = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", restored.to_str().unwrap()])
        .env("LEDGER_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    let refused = failed(keyless);
    assert!(refused.contains("sealing.key is missing") && refused.contains("--new-sealing-key"), "{refused}");
    std::fs::copy(dir.path().join("data/sealing.key"), restored.join("sealing.key")).unwrap();
    let copy = Served::start(&restored, &[]);
    let names = call(&copy.url, "x:Account/get", json!({"ids": null, "properties": ["name"]})).await;
    let names: Vec<&str> = names["list"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    for i in 0..20 {
        assert!(names.contains(&format!("before{i}").as_str()), "before{i} is in the restored store");
    }
    copy.stop();

    // A copy cut short is refused, and the restore leaves no store behind.
    let bytes = std::fs::read(&file).unwrap();
    let cut = dir.path().join("cut.bak");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let again = dir.path().join("again");
    let verified = ok(ledger(&url, &["audit", "verify", file.to_str().unwrap()]));
    assert!(verified.starts_with("ok: backup of positions 1..="), "{verified}");
    let refused = failed(ledger(&url, &["audit", "verify", cut.to_str().unwrap()]));
    assert!(refused.contains("truncated") || refused.contains("digest"), "{refused}");
    let into_dir = failed(ledger(&url, &["backup", dir.path().to_str().unwrap()]));
    assert!(into_dir.contains("is a directory"), "{into_dir}");
    let other = dir.path().join("notes.txt");
    std::fs::write(&other, "keep me").unwrap();
    let over = failed(ledger(&url, &["backup", other.to_str().unwrap()]));
    assert!(over.contains("not a ledger backup"), "{over}");
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "keep me");
    let stderr = failed(ledger(&url, &["restore", "--from", cut.to_str().unwrap(), "--to", again.to_str().unwrap()]));
    assert!(stderr.contains("cut.bak"), "{stderr}");
    assert!(!again.exists(), "a failed restore removes its target");
    let past = failed(ledger(
        &url,
        &["restore", "--from", file.to_str().unwrap(), "--to", again.to_str().unwrap(), "--seq", "999999"],
    ));
    assert!(past.contains("past it"), "{past}");
    let before = failed(ledger(
        &url,
        &["restore", "--from", file.to_str().unwrap(), "--to", again.to_str().unwrap(), "--at", "2000-01-01T00:00:00Z"],
    ));
    assert!(before.contains("no commit is at or before"), "{before}");
    assert!(!again.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".ledger"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary directories left: {leftovers:?}");
    served.stop();
}

/// The backup frames of `bytes` (`src/backup.rs`): the 17-byte head, then
/// each record frame's body, then the trailer without its digest.
fn frames(bytes: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>, Vec<u8>) {
    let head = bytes[..17].to_vec();
    let mut at = 17;
    let mut records = Vec::new();
    loop {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 4;
        if len == 0 {
            break;
        }
        records.push(bytes[at..at + len].to_vec());
        at += len;
    }
    (head, records, bytes[at..at + 48].to_vec())
}

/// Reassembles a backup with a fresh digest (which has no key: anyone can).
fn assemble(head: &[u8], records: &[Vec<u8>], trailer: &[u8]) -> Vec<u8> {
    let mut out = head.to_vec();
    for r in records {
        out.extend_from_slice(&(r.len() as u32).to_be_bytes());
        out.extend_from_slice(r);
    }
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(trailer);
    let digest = blake3::hash(&out);
    out.extend_from_slice(digest.as_bytes());
    out
}

/// Review finding: payloads stripped from a backup (a password change, a key's
/// removal) keep every hash, so the chain alone would accept the copy and
/// replay it to the older state; a payload-less record no AccountErased lists
/// is refused by `audit verify`, `restore` and `verify`.
#[tokio::test(flavor = "multi_thread")]
async fn a_backup_with_payloads_stripped_outside_an_erasure_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&dir.path().join("data"), &[]);
    let url = served.url.clone();
    ok(ledger(&url, &["create", "domain", "--field", "name=example.org"]));
    ok(ledger(&url, &["create", "account/user", "--field", "name=alice", "--field", "domainId=example.org"]));
    ok(ledger(&url, &["update", "account", "alice@example.org", "--field", "description=changed"]));
    let file = dir.path().join("good.bak");
    ok(ledger(&url, &["backup", file.to_str().unwrap()]));
    served.stop();

    let (head, mut records, trailer) = frames(&std::fs::read(&file).unwrap());
    let last = records.last_mut().unwrap();
    let header_len = u32::from_be_bytes(last[..4].try_into().unwrap()) as usize;
    last.truncate(4 + header_len);
    last.push(0); // "erased"
    let stripped = dir.path().join("stripped.bak");
    std::fs::write(&stripped, assemble(&head, &records, &trailer)).unwrap();

    let refused = failed(ledger(&url, &["audit", "verify", stripped.to_str().unwrap()]));
    assert!(refused.contains("no AccountErased record lists"), "{refused}");
    let target = dir.path().join("restored");
    let refused =
        failed(ledger(&url, &["restore", "--from", stripped.to_str().unwrap(), "--to", target.to_str().unwrap()]));
    assert!(refused.contains("no AccountErased record lists"), "{refused}");
    assert!(!target.exists());
    // The untouched copy, re-assembled the same way, still passes.
    let (head, records, trailer) = frames(&std::fs::read(&file).unwrap());
    let same = dir.path().join("same.bak");
    std::fs::write(&same, assemble(&head, &records, &trailer)).unwrap();
    ok(ledger(&url, &["audit", "verify", same.to_str().unwrap()]));
}

/// Review findings: a keyspace folder reached through a symbolic link is
/// read, not skipped (no "ok: 0 records"); a restore may not write inside its
/// source; the private copy is the owner's only.
#[tokio::test(flavor = "multi_thread")]
async fn offline_tools_follow_links_and_never_restore_into_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = Served::start(&data, &[]);
    ok(ledger(&served.url, &["create", "domain", "--field", "name=example.org"]));
    served.stop();
    let elsewhere = dir.path().join("other-disk");
    std::fs::rename(data.join("keyspaces"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, data.join("keyspaces")).unwrap();
    let verified = ok(ledger("http://127.0.0.1:9", &["verify", "--data-dir", data.to_str().unwrap()]));
    assert!(verified.starts_with("ok: 1 records"), "{verified}");

    let inside = data.join("keyspaces").join("inner");
    let refused = failed(ledger(
        "http://127.0.0.1:9",
        &["restore", "--data-dir", data.to_str().unwrap(), "--to", inside.to_str().unwrap()],
    ));
    assert!(refused.contains("inside the source"), "{refused}");
    assert!(!elsewhere.join("inner").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ledger"))
        .collect();
    assert!(leftovers.is_empty(), "private copies are removed: {leftovers:?}");
}

/// A restore point before an erasure is refused (the restored log would keep
/// payload-less records without the erasure that explains them); after it,
/// the restore verifies. An existing empty target (a mount point) keeps its
/// mode.
#[tokio::test(flavor = "multi_thread")]
async fn restores_keep_erasures_and_an_existing_targets_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = Served::start(&data, &[]);
    let url = served.url.clone();
    ok(ledger(&url, &["create", "domain", "--field", "name=example.org"]));
    ok(ledger(&url, &["create", "account/user", "--field", "name=erin", "--field", "domainId=example.org"]));
    ok(ledger(&url, &["database", "delete", "erin@example.org", "--yes"]));
    let file = dir.path().join("erased.bak");
    ok(ledger(&url, &["backup", file.to_str().unwrap()]));
    served.stop();

    let target = dir.path().join("mount");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o750)).unwrap();
    for source in [vec!["--from", file.to_str().unwrap()], vec!["--data-dir", data.to_str().unwrap()]] {
        let mut args = vec!["restore"];
        args.extend(&source);
        args.extend(["--to", target.to_str().unwrap(), "--seq", "2"]);
        let refused = failed(ledger("http://127.0.0.1:9", &args));
        assert!(refused.contains("erasure at position") && refused.contains("or later"), "{refused}");
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0, "nothing is left in the target");
    }
    ok(ledger("http://127.0.0.1:9", &["restore", "--from", file.to_str().unwrap(), "--to", target.to_str().unwrap()]));
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o750, "the existing target keeps its mode");
    let verified = ok(ledger("http://127.0.0.1:9", &["verify", "--data-dir", target.to_str().unwrap()]));
    assert!(verified.starts_with("ok: "), "{verified}");
}
