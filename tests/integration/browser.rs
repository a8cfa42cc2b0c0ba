//! A real headless Chromium for the console's tests, driven through
//! ChromeDriver (WebDriver) by fantoccini. `bash .ci/tools` installs Debian's
//! `chromium` and `chromium-driver`; `LEDGER_CHROMEDRIVER` and
//! `LEDGER_CHROMIUM` point elsewhere. A missing browser fails the test with
//! how to install it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

fn tool(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.is_file(),
        "{} not found: the console's browser tests need Chromium and ChromeDriver. Install them with \
         `bash .ci/tools` (Debian's chromium and chromium-driver, as root), or `apt-get install chromium \
         chromium-driver`, or set {env} to the program.",
        path.display()
    );
    path
}

/// One browser: its ChromeDriver process, a session, and where screenshots go.
pub(super) struct Browser {
    pub(super) client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

/// How the browser starts.
#[derive(Clone, Copy)]
pub(super) struct Options {
    pub(super) javascript: bool,
    pub(super) width: u32,
    pub(super) height: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { javascript: true, width: 1280, height: 900 }
    }
}

impl Browser {
    /// Starts ChromeDriver on a free loopback port and a headless Chromium
    /// session. Screenshots are saved under `shots`, and copied to
    /// `LEDGER_CONSOLE_SHOTS` when it is set (how docs/console.md's are made).
    pub(super) async fn start(shots: &Path, options: Options) -> Browser {
        let driver_path = tool("LEDGER_CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = tool("LEDGER_CHROMIUM", "/usr/bin/chromium");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} did not start: {e}", driver_path.display()));
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={},{}", options.width, options.height),
        ];
        if !options.javascript {
            args.push("--blink-settings=scriptEnabled=false".to_owned());
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        });
        let capabilities = capabilities.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{port}");
        // ChromeDriver takes a moment to listen: retry the session until it does.
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no browser session from {}: {e}", driver_path.display()),
            }
        };
        std::fs::create_dir_all(shots).unwrap();
        Browser { client, driver, _profile: profile, shots: shots.to_owned() }
    }

    pub(super) async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    /// The text of the first element matching `css`, waiting up to 5 s for it.
    pub(super) async fn text(&self, css: &str) -> String {
        let element = self.wait_for(css).await;
        element.text().await.unwrap()
    }

    pub(super) async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// The texts of every element matching `css`.
    pub(super) async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.client.find_all(Locator::Css(css)).await.unwrap() {
            out.push(e.text().await.unwrap());
        }
        out
    }

    /// Types `value` into the field `css`.
    pub(super) async fn fill(&self, css: &str, value: &str) {
        let field = self.wait_for(css).await;
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    pub(super) async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.unwrap();
    }

    /// Signs in through the form at `base`/console/.
    pub(super) async fn sign_in(&self, base: &str, user: &str, secret: &str) {
        self.goto(&format!("{base}/console/")).await;
        self.fill("#username", user).await;
        self.fill("#secret", secret).await;
        self.click("form.sign-in button[type=submit]").await;
        self.wait_for("form.sign-out").await;
    }

    /// Saves a PNG of the whole page (the window grown to its height for the
    /// shot) as `name`.png; returns its path.
    pub(super) async fn screenshot(&self, name: &str) -> PathBuf {
        let (width, height) = self.client.get_window_size().await.unwrap();
        let full = self.client.execute("return document.documentElement.scrollHeight;", vec![]).await.unwrap();
        let full = full.as_u64().unwrap_or(height).clamp(height, 6000) as u32;
        self.client
            .set_window_size(width as u32, full + (height as u32).saturating_sub(self.viewport_height().await))
            .await
            .unwrap();
        let png = self.client.screenshot().await.unwrap();
        self.client.set_window_size(width as u32, height as u32).await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap();
        if let Some(dir) = std::env::var_os("LEDGER_CONSOLE_SHOTS") {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(Path::new(&dir).join(format!("{name}.png")), &png).unwrap();
        }
        path
    }

    async fn viewport_height(&self) -> u32 {
        let inner = self.client.execute("return window.innerHeight;", vec![]).await.unwrap();
        inner.as_u64().unwrap_or(0) as u32
    }

    /// Ends the session and ChromeDriver.
    pub(super) async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that failed before `close`: ChromeDriver must not outlive it.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
