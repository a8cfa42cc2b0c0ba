//! The ledger as a verifiable log (RFC 9162, C2SP tlog-checkpoint): signed
//! checkpoints, inclusion and consistency proofs over HTTP, one-account
//! exports with inclusion proofs, and the auditor's CLI remembering a log's
//! key and checkpoint (trust on first use) and catching another key or a
//! rewritten history.

use std::path::Path;
use std::process::{Command, Stdio};

use ledger::audit::note::{Checkpoint, SignerKey, VerifierKey};
use ledger::audit::verify::{Against, verify};
use ledger_events::merkle::{self, Hash};
use serde_json::{Value, json};

use super::process::{BIN, Served, failed, ok};
use super::support::{ADMIN_PASSWORD, TestServer, admin_auth, basic};

async fn get(server: &TestServer, path: &str, auth: &str) -> (u16, String) {
    let response =
        server.client().get(format!("{}{path}", server.url)).header("authorization", auth).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn json_at(server: &TestServer, path: &str) -> Value {
    let (status, text) = get(server, path, &admin_auth()).await;
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn log_key(server: &TestServer) -> VerifierKey {
    let v = json_at(server, "/api/audit/key").await;
    let key = VerifierKey::parse(v["verifierKey"].as_str().unwrap()).unwrap();
    assert_eq!((v["origin"].as_str(), v["keyId"].as_str()), (Some(key.name()), Some(key.id_hex().as_str())));
    key
}

async fn signed(server: &TestServer, key: &VerifierKey, size: Option<u64>) -> Checkpoint {
    let path = size.map_or("/api/audit/checkpoint".to_owned(), |s| format!("/api/audit/checkpoint?size={s}"));
    let (status, note) = get(server, &path, &admin_auth()).await;
    assert_eq!(status, 200, "{note}");
    Checkpoint::open(&note, key).unwrap_or_else(|e| panic!("{e}: {note}"))
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h.as_str().unwrap(), &mut out).unwrap();
            out
        })
        .collect()
}

fn users(names: impl IntoIterator<Item = String>, domain: &str) -> Value {
    let create: serde_json::Map<String, Value> =
        names.into_iter().map(|n| (n.clone(), json!({"@type": "User", "name": n, "domainId": domain}))).collect();
    json!({ "create": create })
}

#[tokio::test(flavor = "multi_thread")]
async fn proofs_verify_for_every_position_and_size_against_signed_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    server
        .account(json!({"@type": "User", "name": "pat", "domainId": d,
            "credentials": [{"@type": "Password", "secret": "pat-password-1"}]}))
        .await;
    server.call("x:Account/set", users((0..4).map(|i| format!("u{i}")), &d)).await;
    let key = log_key(&server).await;
    let n = signed(&server, &key, None).await.size;
    assert_eq!(n, server.ledger.read().last_seq);
    let roots: Vec<Hash> = {
        let mut roots = Vec::new();
        for s in 0..=n {
            roots.push(signed(&server, &key, Some(s)).await.root);
        }
        roots
    };
    assert_eq!(roots[0], merkle::empty_root());
    // Every record of every tree size is in it; every size is a prefix of every later one.
    let export = json_lines(&get(&server, "/api/audit/export", &admin_auth()).await.1);
    for s in 1..=n {
        for p in 1..=s {
            let proof = json_at(&server, &format!("/api/audit/proof/inclusion?position={p}&size={s}")).await;
            assert_eq!(proof["recordHash"], export[p as usize - 1]["hash"], "position {p}");
            let mut record = [0u8; 32];
            hex::decode_to_slice(proof["recordHash"].as_str().unwrap(), &mut record).unwrap();
            let leaf = merkle::leaf_hash(&record);
            merkle::verify_inclusion(p - 1, s, &leaf, &hashes(&proof["hashes"]), &roots[s as usize])
                .unwrap_or_else(|e| panic!("position {p} in size {s}: {e}"));
        }
        for m in 0..=s {
            let proof = json_at(&server, &format!("/api/audit/proof/consistency?from={m}&to={s}")).await;
            let (r1, r2) = (&roots[m as usize], &roots[s as usize]);
            merkle::verify_consistency(m, s, r1, r2, &hashes(&proof["hashes"]))
                .unwrap_or_else(|e| panic!("{m} to {s}: {e}"));
        }
    }
    // Without `size`, the whole log; without `to`, likewise.
    let whole = json_at(&server, "/api/audit/proof/inclusion?position=1").await;
    assert_eq!(whole["treeSize"], n);
    let whole = json_at(&server, "/api/audit/proof/consistency?from=1").await;
    assert_eq!(whole["to"], n);

    // Tampered checkpoints and another key's are refused.
    let (_, note) = get(&server, "/api/audit/checkpoint", &admin_auth()).await;
    let mut lines: Vec<&str> = note.split('\n').collect();
    let bigger = (n + 1).to_string();
    lines[1] = &bigger;
    assert!(Checkpoint::open(&lines.join("\n"), &key).is_err(), "an edited size");
    let other_root = note.replacen(&note.split('\n').nth(2).unwrap()[..4], "AAAA", 1);
    assert!(Checkpoint::open(&other_root, &key).is_err(), "an edited root");
    let impostor = SignerKey::generate(key.name()).unwrap();
    let forged = impostor.sign(&Checkpoint { origin: key.name().into(), size: n, root: [0; 32] }.text());
    assert!(Checkpoint::open(&forged, &key).is_err(), "another key's checkpoint");

    // Bad input is a 400 naming what was wrong; nothing panics.
    for (path, status) in [
        ("/api/audit/proof/inclusion?position=0", 400),
        (&format!("/api/audit/proof/inclusion?position={}", n + 1), 400),
        (&format!("/api/audit/proof/inclusion?position=1&size={}", n + 1), 400),
        ("/api/audit/proof/inclusion?size=1", 400),
        ("/api/audit/proof/inclusion?position=x", 400),
        ("/api/audit/proof/inclusion?position=18446744073709551615&size=18446744073709551615", 400),
        ("/api/audit/proof/consistency?from=3&to=2", 400),
        (&format!("/api/audit/proof/consistency?from=1&to={}", n + 1), 400),
        ("/api/audit/proof/consistency?to=2", 400),
        (&format!("/api/audit/checkpoint?size={}", n + 1), 400),
        ("/api/audit/checkpoint?size=-1", 400),
        (&format!("/api/audit/export?since={}", n + 1), 400),
    ] {
        let (got, body) = get(&server, path, &admin_auth()).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body.contains("\"detail\""), "{path}: {body}");
    }
    // Only sysAuditExport may read them.
    let pat = basic("pat@example.org", "pat-password-1");
    for path in [
        "/api/audit/key",
        "/api/audit/checkpoint",
        "/api/audit/proof/inclusion?position=1",
        "/api/audit/proof/consistency?from=1",
    ] {
        assert_eq!(get(&server, path, &pat).await.0, 403, "{path}");
    }
    server.stop().await;
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_signed_while_the_log_grows_are_all_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let key = log_key(&server).await;
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (url, d) = (server.url.clone(), d.clone());
            tokio::spawn(async move {
                for i in 0..10 {
                    let r = super::process::call(&url, "x:Account/set", users([format!("w{w}n{i}")], &d)).await;
                    assert!(r["created"].is_object(), "{r}");
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    while seen.len() < 15 || !writers.iter().all(|w| w.is_finished()) {
        seen.push(signed(&server, &key, None).await);
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    seen.push(signed(&server, &key, None).await);
    seen.sort_by_key(|c| c.size);
    seen.dedup();
    assert!(seen.len() > 2, "the log grew while checkpoints were signed");
    for (i, a) in seen.iter().enumerate() {
        for b in &seen[i..] {
            let proof = json_at(&server, &format!("/api/audit/proof/consistency?from={}&to={}", a.size, b.size)).await;
            merkle::verify_consistency(a.size, b.size, &a.root, &b.root, &hashes(&proof["hashes"]))
                .unwrap_or_else(|e| panic!("checkpoints of sizes {} and {} are inconsistent: {e}", a.size, b.size));
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_account_export_carries_inclusion_proofs_and_grows_with_log2_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let alice = server.account(json!({"@type": "User", "name": "alice", "domainId": d})).await;
    server.call("x:Account/set", json!({"update": {(alice.clone()): {"description": "Sales"}}})).await;
    server.call("x:Account/set", users((0..12).map(|i| format!("a{i}")), &d)).await;
    let key = log_key(&server).await;
    let small = get(&server, &format!("/api/audit/export?account={alice}"), &admin_auth()).await.1;
    let n1 = server.ledger.read().last_seq;

    let v = verify(&small, Against { key: Some(&key), ..Against::default() }).expect("the slice verifies");
    assert_eq!((v.records, v.skipped, v.signed), (2, 0, true), "alice's two records (created, updated), nothing else");
    assert_eq!(v.checkpoint.as_ref().map(|c| c.size), Some(n1));
    assert!(!small.contains("a3@example.org"));
    let lines = json_lines(&small);
    assert!(lines[..2].iter().all(|l| l["inclusion"].is_array()), "{small}");
    assert!(lines[2].get("inclusion").is_none(), "the trailer carries the checkpoint, not a proof");

    // Tampering with a proof, the checkpoint, or the key is caught.
    let edit_proof = {
        let mut l = lines.clone();
        let h = l[1]["inclusion"][0].as_str().unwrap().to_owned();
        let flipped = format!("{}{}", if h.starts_with('0') { "1" } else { "0" }, &h[1..]);
        l[1]["inclusion"][0] = json!(flipped);
        l.iter().map(|v| v.to_string() + "\n").collect::<String>()
    };
    let faults = verify(&edit_proof, Against { key: Some(&key), ..Against::default() }).unwrap_err();
    let second = lines[1]["seq"].as_u64().unwrap();
    assert!(faults.iter().any(|f| f.position == second && f.reason.contains("not in the signed tree")), "{faults:?}");
    let other = SignerKey::generate(key.name()).unwrap().verifier();
    assert!(verify(&small, Against { key: Some(&other), ..Against::default() }).is_err(), "another key");
    let resized = small.replacen(&format!("\\n{n1}\\n"), &format!("\\n{}\\n", n1 + 1), 1);
    assert_ne!(resized, small);
    assert!(verify(&resized, Against { key: Some(&key), ..Against::default() }).is_err(), "an edited checkpoint");

    // Sixteen times the log: the slice grows by a few hashes a record, not by the log.
    for batch in 0..12 {
        let (_, r) = server.call("x:Account/set", users((0..20).map(|i| format!("b{batch}x{i}")), &d)).await;
        assert_eq!(r["created"].as_object().map(|c| c.len()), Some(20), "{r}");
    }
    let n2 = server.ledger.read().last_seq;
    assert!(n2 >= 16 * n1, "the log grew from {n1} to {n2}");
    let large = get(&server, &format!("/api/audit/export?account={alice}"), &admin_auth()).await.1;
    verify(&large, Against { key: Some(&key), ..Against::default() }).expect("the larger slice verifies");
    let depth = |n: u64| 64 - (n - 1).leading_zeros() as usize; // ceil(log2 n)
    let proof_len =
        |text: &str| json_lines(text)[..2].iter().map(|l| l["inclusion"].as_array().unwrap().len()).sum::<usize>();
    assert!(proof_len(&large) <= 2 * depth(n2) && proof_len(&large) > proof_len(&small));
    // Each extra hash is 64 hex digits, 2 quotes and a comma.
    let grown = large.len() - small.len();
    let allowed = (proof_len(&large) - proof_len(&small)) * 67 + 64;
    assert!(
        grown <= allowed,
        "the slice grew by {grown} bytes for {} more hashes",
        proof_len(&large) - proof_len(&small)
    );
    let whole = get(&server, "/api/audit/export", &admin_auth()).await.1;
    assert!(large.len() * 20 < whole.len(), "slice {} bytes, whole log {} bytes", large.len(), whole.len());
    server.stop().await;
}

/// `ledger ARGS` against `url` as the administrator, remembering logs in `trust`.
pub(super) fn cli(url: &str, trust: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("LEDGER_URL", url)
        .env("LEDGER_CREDENTIALS", format!("admin:{ADMIN_PASSWORD}"))
        .env("LEDGER_TRUST_DIR", trust)
        .env_remove("LEDGER_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exports with the CLI into `file`.
pub(super) fn export_to(url: &str, trust: &Path, args: &[&str], file: &Path) {
    let mut all = vec!["audit", "export"];
    all.extend_from_slice(args);
    let out = cli(url, trust, &all);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(file, &out.stdout).unwrap();
}

pub(super) fn add_users(url: &str, prefix: &str, count: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let d = super::process::call(url, "x:Domain/query", json!({})).await["ids"][0].as_str().unwrap().to_owned();
        let r = super::process::call(url, "x:Account/set", users((0..count).map(|i| format!("{prefix}{i}")), &d)).await;
        assert_eq!(r["created"].as_object().map(|c| c.len()), Some(count), "{r}");
    });
}

pub(super) fn add_domain(url: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let r = super::process::call(url, "x:Domain/set", json!({"create": {"d": {"name": "example.org"}}})).await;
        assert!(r["created"]["d"].is_object(), "{r}");
    });
}

#[test]
fn the_auditors_cli_trusts_on_first_use_and_catches_another_key_and_a_rewritten_log() {
    let (a, trust, files) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let trust = trust.path();
    let served = Served::start(a.path(), &["--log-origin", "ledger.test/accounts"]);
    let url = served.url.clone();
    add_domain(&url);
    add_users(&url, "u", 5);
    let key = ok(cli(&url, trust, &["audit", "key"]));
    assert!(key.starts_with("ledger.test/accounts+"), "{key}");
    let key_mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(a.path().join("log.key")).unwrap().permissions());
    assert_eq!(key_mode & 0o777, 0o600);

    // First use: the server's key is trusted and its checkpoint remembered.
    let out = cli(&url, trust, &["audit", "checkpoint"]);
    let (note, said) = (ok(out.clone()), text(&out.stderr));
    assert!(note.starts_with("ledger.test/accounts\n"), "{note}");
    assert!(said.contains("trusting the log key") && said.contains("the first checkpoint remembered"), "{said}");
    let first = Checkpoint::open(&note, &VerifierKey::parse(&key).unwrap()).unwrap();
    add_users(&url, "v", 3);
    let said = text(&cli(&url, trust, &["audit", "checkpoint"]).stderr);
    assert!(said.contains(&format!("consistent with the checkpoint of tree size {} remembered", first.size)), "{said}");

    // Exports verify offline against the remembered checkpoint: the whole
    // log, a range (rebuilt from its compact range), one account (proofs).
    add_users(&url, "w", 2);
    for (name, args) in
        [("whole", vec![]), ("range", vec!["--from", "4"]), ("alice", vec!["--account", "u1@example.org"])]
    {
        let file = files.path().join(name);
        export_to(&url, trust, &args, &file);
        let said = ok(cli(&url, trust, &["audit", "verify", file.to_str().unwrap()]));
        assert!(
            said.contains("signed by ledger.test/accounts")
                && said.contains("consistent with the checkpoint of tree size"),
            "{name}: {said}"
        );
    }
    let said = ok(cli(&url, trust, &["audit", "proof", "inclusion", "2", "--table"]));
    assert!(said.starts_with("ok: position 2 "), "{said}");
    let said = ok(cli(&url, trust, &["audit", "proof", "consistency", "--from", "3", "--table"]));
    assert!(said.starts_with("ok: the signed tree of size 3 "), "{said}");
    // An edited export lists each problem with its position.
    let whole = std::fs::read_to_string(files.path().join("whole")).unwrap();
    let edited: String = whole
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 2 || i == 5 { l.replace("\"requestId\":\"", "\"requestId\":\"x") } else { l.to_owned() } + "\n")
        .collect();
    std::fs::write(files.path().join("edited"), edited).unwrap();
    let said = failed(cli(&url, trust, &["audit", "verify", files.path().join("edited").to_str().unwrap()]));
    assert!(said.contains("position 3:") && said.contains("position 6:"), "{said}");
    assert!(!said.contains("forked"), "an edited file is not a forked log: {said}");

    // Another ledger claiming the same origin with another key is refused.
    let b = tempfile::tempdir().unwrap();
    let impostor = Served::start(b.path(), &["--log-origin", "ledger.test/accounts"]);
    add_domain(&impostor.url);
    let said = failed(cli(&impostor.url, trust, &["audit", "checkpoint"]));
    assert!(said.contains("another key signs this log"), "{said}");
    export_to(&impostor.url, &files.path().join("fresh-trust"), &[], &files.path().join("impostor"));
    let said = failed(cli(&url, trust, &["audit", "verify", files.path().join("impostor").to_str().unwrap()]));
    assert!(said.contains("another key signs this log"), "{said}");
    impostor.stop();

    // The same key on another history (a restored or copied log) never signs
    // it: behind the last checkpoint it answers 503; once past it, 409; and a
    // restart is refused.
    let signed_size = Checkpoint::open(
        &std::fs::read_to_string(a.path().join("log.key.checkpoint")).unwrap(),
        &VerifierKey::parse(&key).unwrap(),
    )
    .unwrap()
    .size;
    served.stop();
    let keys = tempfile::tempdir().unwrap();
    for f in ["log.key", "log.key.checkpoint"] {
        std::fs::copy(a.path().join(f), keys.path().join(f)).unwrap();
    }
    let c = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("log.key");
    let copied = Served::start(c.path(), &["--log-key", key_file.to_str().unwrap()]);
    add_domain(&copied.url);
    let said = failed(cli(&copied.url, trust, &["audit", "checkpoint"]));
    assert!(said.contains("503") || said.contains("already signed a checkpoint of tree size"), "{said}");
    add_users(&copied.url, "z", signed_size as usize);
    let out = cli(&copied.url, trust, &["audit", "export"]);
    assert!(
        !out.status.success() && text(&out.stderr).contains("will not sign a second history"),
        "{}",
        text(&out.stderr)
    );
    let said = failed(cli(&copied.url, trust, &["audit", "checkpoint"]));
    assert!(said.contains("will not sign a second history"), "{said}");
    copied.stop();
    let restart = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(c.path())
        .args(["--log-key", key_file.to_str().unwrap()])
        .env("LEDGER_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!restart.status.success());
    assert!(text(&restart.stderr).contains("will not sign a second history"), "{}", text(&restart.stderr));
}
