//! docs/cli.md and docs/operations.md run as written: every `sh` block of a
//! page, in order, as one bash script with `set -euo pipefail`, in an empty
//! directory, with the `ledger` binary on PATH and the server's default
//! address moved to a free port (`LEDGER_LISTEN`, `LEDGER_URL`). Blocks in
//! other languages (`text`, `ini`) are shown, not run. A missing tool the
//! pages use fails the test with how to install it.

use std::path::Path;
use std::process::Command;

/// The bodies of the page's ```sh blocks, in order.
fn sh_blocks(page: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find("```sh\n") {
        let body = &rest[start + 6..];
        let end = body.find("\n```").expect("a sh block ends with ```");
        blocks.push(body[..end].to_owned());
        rest = &body[end + 4..];
    }
    blocks
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run_page(name: &str) {
    for tool in ["bash", "curl", "openssl"] {
        let found =
            Command::new(tool).arg("--version").output().is_ok() || Command::new(tool).arg("version").output().is_ok();
        assert!(found, "the docs test needs `{tool}`: install it (Debian: apt-get install {tool})");
    }
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(name)).unwrap();
    let blocks = sh_blocks(&page);
    assert!(blocks.len() >= 4, "{name} has {} sh blocks", blocks.len());
    let port = free_port();
    // The pages speak of the default address; the test moves it to a free port.
    let script = format!(
        "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{}\n",
        blocks.join("\n").replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
    );
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_ledger")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("LEDGER_LISTEN", format!("127.0.0.1:{port}"))
        .env("LEDGER_URL", format!("http://127.0.0.1:{port}"))
        .env("LEDGER_LOG", "warn")
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env_remove("LEDGER_TRUST_DIR")
        .env_remove("LEDGER_LOG_KEY")
        .env_remove("LEDGER_LOG_ORIGIN")
        .env_remove("LEDGER_DATA_DIR")
        .env_remove("LEDGER_ADMIN_PASSWORD")
        .env_remove("LEDGER_CREDENTIALS")
        .env_remove("LEDGER_TOKEN")
        .env_remove("LEDGER_CONFIG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{name} did not run as written ({:?})\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Both pages in one test, one after the other: each starts servers.
#[test]
fn cli_and_operations_pages_run_as_written() {
    run_page("cli.md");
    run_page("operations.md");
}
