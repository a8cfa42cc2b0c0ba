//! Signed checkpoints on a cluster: nodes given one log key (`--log-key`)
//! sign byte-identical checkpoints of one tree, and an auditor's `ledger`
//! follows the log from node to node against what it remembers.
//!
//! Waits are bounded; a node is asked for a position with
//! `X-Ledger-Min-Position`, which the node itself waits for (no sleeps).

use super::cluster_nodes::{BOUND, agree, call_at, create_domain, user};
use super::nats::NatsCluster;
use super::process::Served;
use super::support::admin_auth;

/// A checkpoint as a node signs it at tree size `size`, once it has applied it.
async fn checkpoint_at(url: &str, size: u64) -> String {
    let response = tokio::time::timeout(
        BOUND,
        reqwest::Client::new()
            .get(format!("{url}/api/audit/checkpoint?size={size}"))
            .header("authorization", admin_auth())
            .header("x-ledger-min-position", size.to_string())
            .send(),
    )
    .await
    .expect("an answer within the bound")
    .unwrap();
    assert_eq!(response.status(), 200, "checkpoint at {url}");
    response.text().await.unwrap()
}

#[test]
fn nodes_given_one_log_key_sign_one_log_that_an_auditor_follows_from_node_to_node() {
    use super::process::{ledger, ok};
    let cluster = NatsCluster::start();
    let (keys, trust) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let trust = trust.path().to_str().unwrap();
    let made = keys.path().join("made.key");
    let verifier = ok(ledger("", &["audit", "new-key", "--origin", "ledger.test/cluster", made.to_str().unwrap()]));
    assert!(verifier.starts_with("ledger.test/cluster+"), "{verifier}");
    // Each node its own copy (as each machine would have), mode kept.
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let nodes: Vec<Served> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let copy = keys.path().join(format!("node{i}.key"));
            std::fs::copy(&made, &copy).unwrap();
            Served::start_with(
                d.path(),
                &["--log", &cluster.urls(), "--log-key", copy.to_str().unwrap(), "--checkpoint-interval-secs", "0"],
                &[("LEDGER_ADMIN_PASSWORD", super::support::ADMIN_PASSWORD), ("LEDGER_LOG", "warn")],
                std::process::Stdio::inherit(),
            )
        })
        .collect();
    let urls = [nodes[0].url.as_str(), nodes[1].url.as_str()];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let first = runtime.block_on(async {
        let (domain, _) = create_domain(urls[0], "example.org").await;
        let mut last = 0;
        for (i, name) in ["ann", "bob", "cid"].iter().enumerate() {
            last = call_at(urls[i % 2], "x:Account/set", user(name, &domain), 0).await.1;
        }
        agree(&urls, last).await;
        // Ed25519 signs deterministically: one tree, one key, one note.
        let notes = [checkpoint_at(urls[0], last).await, checkpoint_at(urls[1], last).await];
        assert_eq!(notes[0], notes[1], "both nodes sign the same checkpoint of tree size {last}");
        assert!(notes[0].starts_with(&format!("ledger.test/cluster\n{last}\n")), "{}", notes[0]);
        (domain, last)
    });

    // The auditor trusts node 0 on first use, then checks node 1 against it.
    let said = ok(ledger(urls[0], &["audit", "checkpoint", "--trust-dir", trust]));
    assert!(said.starts_with("ledger.test/cluster\n"), "{said}");
    let last = runtime.block_on(async {
        let (_, last) = call_at(urls[1], "x:Account/set", user("dee", &first.0), 0).await;
        agree(&urls, last).await;
        last
    });
    let work = tempfile::tempdir().unwrap();
    for (name, url) in [("from-node-1", urls[1]), ("from-node-0", urls[0])] {
        let file = work.path().join(name);
        std::fs::write(&file, ok(ledger(url, &["audit", "export", "--trust-dir", trust]))).unwrap();
        let verified = ok(ledger("", &["audit", "verify", file.to_str().unwrap(), "--trust-dir", trust]));
        assert!(
            verified.contains(&format!("the checkpoint of tree size {last} signed by ledger.test/cluster"))
                && verified.contains("consistent with the checkpoint of tree size"),
            "{name}: {verified}"
        );
    }
    let said = ok(ledger(
        urls[1],
        &["audit", "proof", "consistency", "--from", &first.1.to_string(), "--table", "--trust-dir", trust],
    ));
    assert!(said.starts_with(&format!("ok: the signed tree of size {} ", first.1)), "{said}");
    for node in nodes {
        node.stop();
    }
}
