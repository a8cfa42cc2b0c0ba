//! Issue 16: the running service as operators watch and configure it,
//! against the real binary: readiness and metrics, logs, the config file,
//! TLS and the public URL, systemd readiness, version, completions and the
//! man page.

use std::io::BufReader;
use std::time::Duration;

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::process::{BIN, Served, call, failed, ledger, ok, session_of};
use super::support::ADMIN_PASSWORD;

/// Input 5 and the health endpoints: ready until the store refuses writes,
/// then 503 with the reason, while live stays 200; `/metrics` counts.
#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_the_store_and_metrics_count_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&dir.path().join("data"), &[]);
    let url = served.url.clone();
    let client = reqwest::Client::new();
    let status = |path: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let r = client.get(format!("{url}{path}")).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(status("/healthz/ready").await.0, 200);
    ok(ledger(&url, &["health"]));
    call(&url, "x:Domain/set", json!({"create": {"d": {"name": "example.org"}}})).await;
    call(&url, "x:Nothing/get", json!({})).await;
    let scrape = client.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
    let value = |name: &str| -> f64 {
        let line = scrape.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {scrape}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value("ledger_commits_total") >= 1.0, "{scrape}");
    assert!(value("ledger_events_total") >= 1.0, "{scrape}");
    assert!(value("ledger_store_size_bytes") > 0.0, "{scrape}");
    assert!(value("ledger_fsync_duration_seconds_count") >= 1.0, "{scrape}");
    assert!(scrape.contains(r#"ledger_method_duration_seconds_count{method="x:Domain/set"} 1"#), "{scrape}");
    assert!(scrape.contains(r#"method="unknown""#) && !scrape.contains("x:Nothing"), "{scrape}");

    // The store refuses writes: a file-size limit of 0 fails the next commit.
    use rustix::process::{Resource, Rlimit, prlimit};
    prlimit(Some(served.pid()), Resource::Fsize, Rlimit { current: Some(0), maximum: None }).unwrap();
    let failed_write = call(&url, "x:Domain/set", json!({"create": {"d": {"name": "full.example"}}})).await;
    assert_eq!(failed_write["type"], "serverFail", "{failed_write}");
    prlimit(Some(served.pid()), Resource::Fsize, Rlimit { current: None, maximum: None }).unwrap();
    let (code, body) = status("/healthz/ready").await;
    assert_eq!(code, 503, "{body}");
    assert!(body["reason"].as_str().unwrap().contains("refuses writes"), "{body}");
    assert_eq!(status("/healthz").await.0, 503);
    assert_eq!(status("/healthz/live").await.0, 200, "alive: reads go on");
    let stderr = failed(ledger(&url, &["health"]));
    assert!(stderr.contains("not ready"), "{stderr}");
    served.stop();
}

/// Logs: `--log-format json` writes one JSON object per line, with an access
/// line per request; an invalid `LEDGER_LOG` is an error.
#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_an_access_line_per_request_and_a_bad_filter_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start_with(
        &dir.path().join("data"),
        &["--log-format", "json"],
        &[("LEDGER_ADMIN_PASSWORD", ADMIN_PASSWORD), ("LEDGER_LOG", "info")],
        Stdio::piped(),
    );
    let stderr = served.child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut log).unwrap();
        log
    });
    call(&served.url, "x:Domain/get", json!({"ids": []})).await;
    served.stop();
    let log = reader.join().unwrap();
    let lines: Vec<Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    let start = lines.iter().find(|l| l["message"] == "serving").expect("a start-up line");
    assert!(start["revision"].is_string() && start["version"].is_string(), "{start}");
    let access = lines.iter().find(|l| l["target"] == "access" && l["path"] == "/api").expect("an access line");
    assert_eq!(access["status"], 200, "{access}");
    assert_eq!(access["principal"], "admin", "{access}");
    assert!(access["millis"].as_f64().is_some(), "{access}");

    for bad in ["info,[", "debg"] {
        let output =
            Command::new(BIN).args(["serve", "--listen", "127.0.0.1:0"]).env("LEDGER_LOG", bad).output().unwrap();
        let stderr = failed(output);
        assert!(stderr.contains("LEDGER_LOG"), "{bad}: {stderr}");
    }
    // A directory that holds other things and no store is not taken over.
    let junk = dir.path().join("junk");
    std::fs::create_dir(&junk).unwrap();
    std::fs::write(junk.join("notes.txt"), "x").unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", junk.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = failed(output);
    assert!(stderr.contains("not empty and holds no ledger store"), "{stderr}");
}

/// The config file: its settings apply, the environment and flags win over
/// it, and an unknown key is an error naming it.
#[tokio::test(flavor = "multi_thread")]
async fn the_config_file_sets_what_flags_and_environment_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ledger.toml");
    std::fs::write(&config, "admin-user = \"root\"\nmax-objects-in-get = 7\ntrusted-proxy = [\"10.0.0.0/8\"]\n")
        .unwrap();
    let config_text = config.to_str().unwrap();
    let served = Served::start(&dir.path().join("data"), &["--config", config_text, "--max-objects-in-get", "9"]);
    let session = session_of(&reqwest::Client::new(), &served.url, "root").await;
    assert_eq!(session["capabilities"]["urn:ietf:params:jmap:core"]["maxObjectsInGet"], 9, "the flag wins");
    served.stop();

    let served = Served::start_with(
        &dir.path().join("data"),
        &[],
        &[
            ("LEDGER_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("LEDGER_CONFIG", config_text),
            ("LEDGER_MAX_OBJECTS_IN_GET", "8"),
        ],
        Stdio::null(),
    );
    let session = session_of(&reqwest::Client::new(), &served.url, "root").await;
    assert_eq!(session["capabilities"]["urn:ietf:params:jmap:core"]["maxObjectsInGet"], 8, "the environment wins");
    served.stop();

    std::fs::write(&config, "max-conections = 5\n").unwrap();
    let output = Command::new(BIN).args(["serve", "--config", config_text]).output().unwrap();
    let stderr = failed(output);
    assert!(stderr.contains("\"max-conections\" is not a setting") && stderr.contains("max-connections"), "{stderr}");
}

/// TLS with a certificate and key; the Session's URLs are https, or the
/// configured public URL.
#[tokio::test(flavor = "multi_thread")]
async fn tls_serves_https_and_the_session_names_the_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let served = Served::start(
        &dir.path().join("data"),
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    assert!(served.url.starts_with("https://"), "{}", served.url);
    let port = served.url.rsplit(':').next().unwrap().to_owned();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", format!("127.0.0.1:{port}").parse().unwrap())
        .build()
        .unwrap();
    let session = session_of(&client, &format!("https://localhost:{port}"), "admin").await;
    assert_eq!(session["apiUrl"], format!("https://localhost:{port}/api"), "{session}");
    // Plain HTTP on the TLS port gets no answer.
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_err());
    served.stop();

    let served = Served::start(&dir.path().join("data"), &["--public-url", "https://ledger.example.org/"]);
    let session = session_of(&reqwest::Client::new(), &served.url, "admin").await;
    assert_eq!(session["apiUrl"], "https://ledger.example.org/api", "{session}");
    served.stop();
}

/// systemd `Type=notify`: READY=1 once serving, STOPPING=1 on SIGTERM.
#[cfg(target_os = "linux")]
#[test]
fn systemd_is_told_when_the_service_is_ready_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let served = Served::start_with(
        &dir.path().join("data"),
        &[],
        &[("LEDGER_ADMIN_PASSWORD", ADMIN_PASSWORD), ("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
        Stdio::null(),
    );
    let mut buffer = [0u8; 256];
    let n = socket.recv(&mut buffer).unwrap();
    assert_eq!(std::str::from_utf8(&buffer[..n]).unwrap().trim(), "READY=1");
    served.stop();
    let n = socket.recv(&mut buffer).unwrap();
    assert_eq!(std::str::from_utf8(&buffer[..n]).unwrap().trim(), "STOPPING=1");
}

/// `ledger version`, completions and the man page come from the binary.
#[test]
fn version_completions_and_man_page_are_generated() {
    let version = ok(ledger("http://127.0.0.1:9", &["version"]));
    assert!(version.starts_with(&format!("ledger {} (git ", env!("CARGO_PKG_VERSION"))), "{version}");
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(ledger("http://127.0.0.1:9", &["completions", shell]));
        assert!(script.contains("ledger") && script.contains("backup"), "{shell}: {script}");
    }
    let man = ok(ledger("http://127.0.0.1:9", &["man"]));
    assert!(man.contains(".TH ledger") && man.contains("backup"), "{man}");
}
