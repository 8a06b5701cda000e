//! Harness for system tests: a private X server, a private session bus, the
//! real Pitboss app started by tauri-driver, each with its own XDG folders.
//! Nothing here is skipped when a tool is missing: `cargo xtask test`
//! installs the tools, and a missing one is a failure that says what to do.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The target folder cargo builds into.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The app binary built by `cargo build -p pitboss-app`.
pub fn app_binary() -> Result<PathBuf> {
    let p = target_dir().join("debug").join("pitboss");
    if !p.is_file() {
        bail!(
            "{} is missing: build the app first (cargo build -p pitboss-app; cargo xtask test does it)",
            p.display()
        );
    }
    Ok(p)
}

/// A port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn which(bin: &str) -> Result<PathBuf> {
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(home)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
        .with_context(|| format!("{bin} is not installed (cargo xtask test installs it)"))
}

/// A child process killed (and reaped) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.0.kill());
        drop(self.0.wait());
    }
}

/// A headless X server on a display of its own.
pub struct Xvfb {
    pub display: String,
    _proc: Proc,
}

/// Stopped with SIGTERM first, so the server removes its lock file and
/// socket: a SIGKILL leaves them, and after a hundred runs every display
/// number in the range looked taken.
impl Drop for Xvfb {
    fn drop(&mut self) {
        let child = &mut self._proc.0;
        drop(signal(child.id(), libc::SIGTERM));
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether display `n` is held by a live X server. A lock file whose
/// process is gone (a server killed with SIGKILL) is stale: it and the
/// socket are removed so the number can be used again.
fn display_taken(n: u32) -> bool {
    let lock = format!("/tmp/.X{n}-lock");
    let socket = format!("/tmp/.X11-unix/X{n}");
    let Ok(text) = std::fs::read_to_string(&lock) else {
        return Path::new(&socket).exists();
    };
    let alive = text
        .trim()
        .parse::<i32>()
        // SAFETY: kill(2) with signal 0 only checks that the pid exists.
        .is_ok_and(|pid| pid > 0 && unsafe { libc::kill(pid, 0) } == 0);
    if alive {
        return true;
    }
    drop(std::fs::remove_file(&lock));
    drop(std::fs::remove_file(&socket));
    false
}

impl Xvfb {
    pub fn start() -> Result<Xvfb> {
        let xvfb = which("Xvfb")?;
        for n in 90..200u32 {
            if display_taken(n) {
                continue;
            }
            let display = format!(":{n}");
            let child = Command::new(&xvfb)
                .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let proc = Proc(child);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                    return Ok(Xvfb {
                        display,
                        _proc: proc,
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        bail!("could not start Xvfb on any display")
    }
}

/// Private XDG folders, so a test run never touches the user's settings.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Result<Sandbox> {
        let dir = tempfile::tempdir()?;
        for sub in ["data", "config", "cache", "runtime"] {
            std::fs::create_dir_all(dir.path().join(sub))?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.path().join("runtime"),
                std::fs::Permissions::from_mode(0o700),
            )?;
        }
        Ok(Sandbox { dir })
    }

    pub fn apply(&self, cmd: &mut Command) {
        let p = self.dir.path();
        cmd.env("XDG_DATA_HOME", p.join("data"))
            .env("XDG_CONFIG_HOME", p.join("config"))
            .env("XDG_CACHE_HOME", p.join("cache"))
            .env("XDG_RUNTIME_DIR", p.join("runtime"))
            .env("NO_AT_BRIDGE", "1");
    }
}

/// tauri-driver under a private session bus, on `display`.
///
/// The whole tree (dbus-run-session, its dbus-daemon, tauri-driver,
/// WebKitWebDriver and the app) runs in a process group of its own, so
/// dropping the driver stops all of it and nothing is left holding a port or
/// a display for the next test.
pub struct Driver {
    pub port: u16,
    log: PathBuf,
    child: Child,
}

impl Driver {
    pub fn start(display: &str, sandbox: &Sandbox, env: &[(&str, String)]) -> Result<Driver> {
        use std::os::unix::process::CommandExt;
        let driver = which("tauri-driver")?;
        let native = which("WebKitWebDriver")?;
        let port = free_port()?;
        let native_port = free_port()?;
        let log = sandbox.dir.path().join("tauri-driver.log");
        let out = std::fs::File::create(&log)?;
        let mut cmd = Command::new(which("dbus-run-session")?);
        cmd.arg("--")
            .arg(driver)
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native_port.to_string(),
            ])
            .arg("--native-driver")
            .arg(native)
            .env("DISPLAY", display)
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0);
        sandbox.apply(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn()?;
        let d = Driver { port, log, child };
        // tauri-driver listens at once but proxies to WebKitWebDriver, which
        // comes up a little later; a session request sent in between is
        // dropped. Wait for both.
        let deadline = Instant::now() + Duration::from_secs(15);
        let up = |p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
        while Instant::now() < deadline {
            if up(port) && up(native_port) {
                return Ok(d);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "tauri-driver did not start listening on {port} and {native_port}: {}",
            d.log_text()
        )
    }

    /// `kill -9` of the app this driver started (as when a laptop's app
    /// crashes or is killed from a task manager): nothing is flushed, the
    /// WebDriver session dies with it. Returns how many were killed.
    pub fn kill9_app(&self, application: &Path) -> Result<usize> {
        let pgid = self.child.id() as i32;
        let want = std::fs::canonicalize(application)?;
        let mut killed = 0;
        for entry in std::fs::read_dir("/proc")? {
            let Ok(pid) = entry?.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            // SAFETY: getpgid(2) only reads the process table.
            let group = unsafe { libc::getpgid(pid) };
            if exe.as_deref() == Some(want.as_path()) && group == pgid {
                signal(pid as u32, libc::SIGKILL)?;
                killed += 1;
            }
        }
        Ok(killed)
    }

    /// What tauri-driver and WebKitWebDriver printed, for error messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Opens a WebDriver session on the app at `application`. A refused or
    /// dropped first request is retried a few times (the native driver can
    /// still be settling); any other failure is reported with the driver log.
    pub async fn session(&self, application: &Path) -> Result<fantoccini::Client> {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), serde_json::json!("wry"));
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": application }),
        );
        let mut last = None;
        for _ in 0..4 {
            match fantoccini::ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{}", self.port))
                .await
            {
                Ok(c) => return Ok(c),
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        bail!(
            "WebDriver session: {}\n--- tauri-driver log ---\n{}",
            last.map(|e| e.to_string()).unwrap_or_default(),
            self.log_text()
        )
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SIGTERM to the whole group first (WebKitWebDriver closes the app),
        // then SIGKILL whatever is left.
        let pgid = self.child.id() as i32;
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{pgid}")])
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
        drop(self.child.wait());
    }
}

/// Reading and driving the app's page through WebDriver.
pub mod page {
    use std::time::{Duration, Instant};

    use anyhow::{bail, Context, Result};
    use fantoccini::{Client, Locator};
    use serde_json::{json, Value};

    /// The text of element `id`. Read as `textContent`: WebKitWebDriver's
    /// rendered-text call returns "" for an ellipsis-clipped flex item even
    /// while it is plainly visible.
    pub async fn text(c: &Client, id: &str) -> Result<String> {
        let v = c
            .execute(
                "const e = document.getElementById(arguments[0]); return e ? e.textContent : null",
                vec![json!(id)],
            )
            .await?;
        match v {
            Value::String(s) => Ok(s.trim().to_string()),
            _ => bail!("no element #{id} on the page"),
        }
    }

    /// Polls until `id`'s text satisfies `ok`, or fails naming what it saw.
    pub async fn wait_text(
        c: &Client,
        id: &str,
        within: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + within;
        let mut last = String::from("<no element>");
        while Instant::now() < deadline {
            if let Ok(t) = text(c, id).await {
                if ok(&t) {
                    return Ok(t);
                }
                last = t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("#{id} still shows {last:?} after {within:?}")
    }

    /// Waits until a CSS selector matches a visible element, then returns it.
    pub async fn wait_visible(
        c: &Client,
        css: &str,
        within: Duration,
    ) -> Result<fantoccini::elements::Element> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(e) = c.find(Locator::Css(css)).await {
                if e.is_displayed().await.unwrap_or(false) {
                    return Ok(e);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{css} never became visible within {within:?}")
    }

    /// Clicks what a person would click: waits for it to be visible first.
    pub async fn click(c: &Client, css: &str) -> Result<()> {
        wait_visible(c, css, Duration::from_secs(10))
            .await?
            .click()
            .await
            .with_context(|| format!("clicking {css}"))?;
        Ok(())
    }

    /// Replaces the value of an input or textarea, as typing would.
    pub async fn fill(c: &Client, css: &str, value: &str) -> Result<()> {
        let e = wait_visible(c, css, Duration::from_secs(10)).await?;
        e.clear().await?;
        e.send_keys(value).await?;
        Ok(())
    }

    /// Picks an option of a `<select>` by value.
    pub async fn select(c: &Client, css: &str, value: &str) -> Result<()> {
        let e = wait_visible(c, css, Duration::from_secs(10)).await?;
        e.select_by_value(value).await?;
        Ok(())
    }

    /// Calls one of the app's commands from the page, as the UI does.
    pub async fn invoke(c: &Client, cmd: &str, args: Value) -> Result<Value> {
        let v = c
            .execute_async(
                "const [cmd, args, done] = arguments;
                 window.__TAURI__.core.invoke(cmd, args)
                   .then(v => done({ok: v}), e => done({err: e}));",
                vec![json!(cmd), args],
            )
            .await?;
        match v.get("ok") {
            Some(ok) => Ok(ok.clone()),
            None => bail!("{cmd} failed: {}", v["err"]),
        }
    }

    /// "19:34" or "1:05:00" → milliseconds.
    pub fn parse_clock(t: &str) -> Result<i64> {
        let parts: Vec<i64> = t
            .split(':')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("not a clock: {t:?}"))?;
        Ok(match parts.as_slice() {
            [m, s] => (m * 60 + s) * 1000,
            [h, m, s] => ((h * 60 + m) * 60 + s) * 1000,
            _ => bail!("not a clock: {t:?}"),
        })
    }

    /// Saves what the X display shows (every window, as a person would see
    /// the screen) with ImageMagick's `import`, under `target/screenshots/`.
    /// Not WebDriver's screenshot: WebKitWebDriver's hangs at times (seen
    /// after a modal closed) while the window itself paints fine.
    pub fn screen(display: &str, name: &str) -> Result<std::path::PathBuf> {
        let dir = super::target_dir().join("screenshots");
        std::fs::create_dir_all(&dir)?;
        let p = dir.join(format!("{name}.png"));
        // WebDriver reads the DOM; `import` reads pixels. Under Xvfb's
        // software rendering the paint of a just-changed screen can lag the
        // DOM a little (seen: an audit list asserted on, then captured
        // empty), so give it a moment to reach the screen.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let out = std::process::Command::new(super::which("import")?)
            .args(["-display", display, "-window", "root"])
            .arg(&p)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(p)
    }
}

/// An HTTPS client for a server this test started on loopback: it pins
/// the key that answers first, as a device joining with a long code does.
pub fn https_client() -> Result<reqwest::Client> {
    Ok(pitboss_tls::Pin::first_use().http_client(reqwest::Client::builder())?)
}

/// A WebSocket (`wss://`) to a server this test started, pinned on first use.
pub async fn wss(url: &str) -> Result<tokio_tungstenite::WebSocketStream<pitboss_tls::TlsStream>> {
    let (ws, _) = pitboss_tls::Pin::first_use().websocket(url, None).await?;
    Ok(ws)
}

/// A logged-in HTTP client of the public API: "another device".
pub struct Device {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Device {
    pub async fn login(base: &str, code: &str, name: &str) -> Result<Device> {
        let http = https_client()?;
        let login: serde_json::Value = http
            .post(format!("{base}/api/session"))
            .json(&serde_json::json!({"join_code": code, "name": name, "device": "e2e"}))
            .send()
            .await?
            .json()
            .await?;
        let token = login["token"]
            .as_str()
            .with_context(|| format!("login: {login}"))?
            .to_string();
        Ok(Device {
            http,
            base: base.to_string(),
            token,
        })
    }

    pub async fn get(&self, path: &str) -> Result<serde_json::Value> {
        Ok(self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .json()
            .await?)
    }

    /// Sends an op; returns (HTTP status, body).
    pub async fn op(&self, event: &str, op: serde_json::Value) -> Result<(u16, serde_json::Value)> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let id = format!(
            "e2e-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let r = self
            .http
            .post(format!("{}/api/events/{event}/ops", self.base))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"op_id": id, "op": op}))
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await?))
    }
}

/// A binary of this workspace built by `cargo build` (cargo xtask test builds
/// them before the tests run).
pub fn workspace_bin(name: &str) -> Result<PathBuf> {
    let p = target_dir().join("debug").join(name);
    if !p.is_file() {
        bail!(
            "{} is missing: build it first (cargo build --bins; cargo xtask test does it)",
            p.display()
        );
    }
    Ok(p)
}

/// `pitboss-server` as its own process, on a fixed port and data folder, so
/// that a test can `kill -9` it and start it again where it was.
pub struct ServerProc {
    child: tokio::process::Child,
    pub base: String,
    pub demo_event: String,
    pub coordinator_code: String,
    pub dealer_code: String,
}

pub const COORD_CODE: &str = "coord-code-sys";
pub const DEALER_CODE: &str = "dealer-code-sys";

impl ServerProc {
    /// Starts on `127.0.0.1:port` with the store in `data`, the demo event
    /// and fixed join codes; waits for its "demo event:" line.
    pub async fn start(data: &Path, port: u16, extra: &[&str]) -> Result<ServerProc> {
        ServerProc::start_with_env(data, port, extra, &[]).await
    }

    /// [`ServerProc::start`] with extra environment (libfaketime, say).
    pub async fn start_with_env(
        data: &Path,
        port: u16,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Result<ServerProc> {
        use tokio::io::AsyncBufReadExt;
        let mut cmd = tokio::process::Command::new(workspace_bin("pitboss-server")?);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data")
            .arg(data)
            .args([
                "--coordinator-code",
                COORD_CODE,
                "--dealer-code",
                DEALER_CODE,
            ])
            .arg("--demo")
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().context("cannot start pitboss-server")?;
        let out = child.stdout.take().context("no stdout")?;
        let mut lines = tokio::io::BufReader::new(out).lines();
        let demo = tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(l) = lines.next_line().await? {
                if let Some(id) = l.strip_prefix("demo event: ") {
                    return Ok::<_, anyhow::Error>(id.trim().to_string());
                }
            }
            bail!("pitboss-server exited before printing its demo event")
        })
        .await
        .context("pitboss-server did not start within 15 s")??;
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ServerProc {
            child,
            base: format!("https://127.0.0.1:{port}"),
            demo_event: demo,
            coordinator_code: COORD_CODE.into(),
            dealer_code: DEALER_CODE.into(),
        })
    }

    /// `kill -9`: no goodbye to anyone, as when the host laptop is unplugged.
    pub async fn kill9(mut self) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

/// Sends a signal to a process.
pub fn signal(pid: u32, sig: i32) -> Result<()> {
    // SAFETY: kill(2) with a pid we spawned; no memory is involved.
    let r = unsafe { libc::kill(pid as i32, sig) };
    if r != 0 {
        bail!("kill({pid}, {sig}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// A `pitboss-follow` process: a real client (engine, cache, outbox, sleep
/// detector, alert gate) that can be stopped, killed and started again.
pub struct Follower {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    /// Every line it printed, in order, parsed.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    seen: tokio::sync::watch::Receiver<usize>,
    pub name: String,
}

impl Follower {
    pub async fn start(
        name: &str,
        server: &str,
        code: &str,
        event: &str,
        cache: &Path,
        extra: &[&str],
    ) -> Result<Follower> {
        Follower::start_with_env(name, server, code, event, cache, extra, &[]).await
    }

    /// [`Follower::start`] with extra environment (libfaketime, say).
    pub async fn start_with_env(
        name: &str,
        server: &str,
        code: &str,
        event: &str,
        cache: &Path,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Result<Follower> {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(workspace_bin("pitboss-follow")?)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["--server", server, "--code", code, "--event", event])
            .arg("--cache")
            .arg(cache)
            .args(["--name", name, "--device", name])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start pitboss-follow")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let out = child.stdout.take().context("no stdout")?;
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, seen) = tokio::sync::watch::channel(0usize);
        let l2 = log.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(out).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                let v = serde_json::from_str(&l)
                    .unwrap_or_else(|_| serde_json::json!({"kind": "unparsed", "line": l}));
                let n = {
                    let mut g = l2.lock().unwrap_or_else(|e| e.into_inner());
                    g.push(v);
                    g.len()
                };
                tx.send_replace(n);
            }
        });
        Ok(Follower {
            child,
            stdin,
            log,
            seen,
            name: name.to_string(),
        })
    }

    pub fn pid(&self) -> Result<u32> {
        self.child.id().context("the follower has exited")
    }

    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub async fn send(&mut self, v: serde_json::Value) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        self.stdin.write_all(format!("{v}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// Waits for a line at index `from` or later that satisfies `ok`.
    pub async fn wait_line(
        &mut self,
        from: usize,
        within: Duration,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(v) = self.lines().into_iter().skip(from).find(|v| ok(v)) {
                return Ok(v);
            }
            match tokio::time::timeout_at(deadline, self.seen.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => bail!("{}: the process ended", self.name),
                Err(_) => bail!(
                    "{}: no such line within {within:?}; last lines: {:?}",
                    self.name,
                    self.lines().iter().rev().take(5).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Queues an op; returns its op id once it is durable in the outbox.
    pub async fn op(&mut self, op: serde_json::Value) -> Result<String> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static TAG: AtomicU64 = AtomicU64::new(0);
        let tag = format!("t{}", TAG.fetch_add(1, Ordering::Relaxed));
        let from = self.lines().len();
        self.send(serde_json::json!({"op": op, "tag": tag})).await?;
        let v = self
            .wait_line(from, Duration::from_secs(5), |v| v["tag"] == tag.as_str())
            .await?;
        v["op_id"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("{}: op not queued: {v}", self.name))
    }

    /// The follower's view now: status, seq, state, pending, clock position.
    pub async fn state(&mut self) -> Result<serde_json::Value> {
        let from = self.lines().len();
        self.send(serde_json::json!({"cmd": "state"})).await?;
        self.wait_line(from, Duration::from_secs(5), |v| v["kind"] == "state")
            .await
    }

    /// Waits until it is live with a replica.
    pub async fn wait_live(&mut self, within: Duration) -> Result<()> {
        self.wait_state(within, |s| {
            s["status"]["state"] == "live" && s["seq"].is_u64()
        })
        .await
        .map(drop)
    }

    /// Waits until it has applied `seq`.
    pub async fn wait_seq(&mut self, seq: u64, within: Duration) -> Result<()> {
        self.wait_state(within, |s| s["seq"].as_u64().is_some_and(|n| n >= seq))
            .await
            .map(drop)
    }

    /// Asks for its state every 50 ms until `ok` holds.
    pub async fn wait_state(
        &mut self,
        within: Duration,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value> {
        let deadline = Instant::now() + within;
        loop {
            let s = self.state().await?;
            if ok(&s) {
                return Ok(s);
            }
            if Instant::now() >= deadline {
                bail!("{}: not there within {within:?}: {s}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9`: the app is gone without flushing anything.
    pub async fn kill9(mut self) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// Asks it to quit and waits.
    pub async fn quit(mut self) -> Result<()> {
        drop(self.send(serde_json::json!({"cmd": "quit"})).await);
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .context("pitboss-follow did not quit")??;
        Ok(())
    }
}

/// The event's snapshot, as any device reads it.
pub async fn snapshot(device: &Device, event: &str) -> Result<serde_json::Value> {
    let s = device.get(&format!("/api/events/{event}/snapshot")).await?;
    if !s["seq"].is_u64() {
        bail!("snapshot: {s}");
    }
    Ok(s)
}

/// Where the server's clock (in a snapshot) is at server instant `at_ms`:
/// the truth every screen must show.
pub fn server_position(
    snapshot: &serde_json::Value,
    at_ms: i64,
) -> Result<pitboss_core::clock::Position> {
    let clock: pitboss_core::clock::ClockState =
        serde_json::from_value(snapshot["state"]["clock"].clone()).context("snapshot clock")?;
    let structure: pitboss_core::structure::Structure =
        serde_json::from_value(snapshot["state"]["structure"].clone())
            .context("snapshot structure")?;
    Ok(pitboss_core::clock::position(&clock, &structure, at_ms))
}

/// A venue server in this test's process, hosting the demo event with known
/// join codes and a store in its own temp folder: what an app under test
/// joins.
pub struct DemoVenue {
    pub server: pitboss_server::Server,
    /// `https://127.0.0.1:PORT`.
    pub base: String,
    /// The demo event's id.
    pub event: String,
    _data: tempfile::TempDir,
}

impl DemoVenue {
    pub async fn start(coordinator_code: &str, dealer_code: &str) -> Result<DemoVenue> {
        let data = tempfile::tempdir()?;
        let mut cfg =
            pitboss_server::Config::new("127.0.0.1:0".parse()?, data.path().to_path_buf());
        cfg.coordinator_code = Some(coordinator_code.into());
        cfg.dealer_code = Some(dealer_code.into());
        cfg.demo = true;
        let server = pitboss_server::start(cfg).await?;
        let base = server.url();
        let event = server.demo_event_id().context("demo event")?.to_string();
        Ok(DemoVenue {
            server,
            base,
            event,
            _data: data,
        })
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// Ends a WebDriver scenario: on failure, says why and keeps a screenshot
/// `<name>_failure.png`; then closes the session (within 10 s) and returns
/// the scenario's result.
pub async fn end_scenario(
    c: fantoccini::Client,
    display: &str,
    name: &str,
    result: Result<()>,
) -> Result<()> {
    if let Err(e) = &result {
        eprintln!("failed: {e:#}");
        drop(page::screen(display, &format!("{name}_failure")));
    }
    drop(tokio::time::timeout(Duration::from_secs(10), c.close()).await);
    result
}

/// libfaketime on one process: its wall clock, and only that, is set by the
/// test while the monotonic and boot clocks run on, as an NTP or Windows
/// time sync (or a person fixing the time by hand) does to a laptop.
pub struct Faketime {
    lib: PathBuf,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Faketime {
    /// The wall clock starts true. Fails (never skips) when libfaketime is
    /// not installed: `cargo xtask test` installs it.
    pub fn new() -> Result<Faketime> {
        let lib = [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/lib",
        ]
        .iter()
        .map(|d| Path::new(d).join("faketime/libfaketime.so.1"))
        .find(|p| p.is_file())
        .context(
            "libfaketime is missing (apt-get install libfaketime; cargo xtask test installs it)",
        )?;
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("faketime");
        std::fs::write(&file, "+0\n")?;
        Ok(Faketime {
            lib,
            file,
            _dir: dir,
        })
    }

    /// The environment that puts a process under this fake wall clock. The
    /// offset file is read again at every call (`FAKETIME_NO_CACHE`), so a
    /// [`Faketime::set_offset_s`] steps the running process at once.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), self.lib.display().to_string()),
            (
                "FAKETIME_TIMESTAMP_FILE".into(),
                self.file.display().to_string(),
            ),
            ("FAKETIME_NO_CACHE".into(), "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ]
    }

    /// Sets the process's wall clock to the true time plus `secs`.
    pub fn set_offset_s(&self, secs: i64) -> Result<()> {
        // Written aside and renamed, so the process never reads half a line.
        let tmp = self.file.with_extension("new");
        std::fs::write(&tmp, format!("{secs:+}\n"))?;
        std::fs::rename(&tmp, &self.file)?;
        Ok(())
    }

    /// A script that runs `program` under this fake wall clock, for
    /// launchers that take a program but no environment (WebDriver).
    pub fn wrapper(&self, program: &Path) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let script = self.file.with_file_name("under-faketime.sh");
        let mut text = String::from("#!/bin/sh\n");
        for (k, v) in self.env() {
            text.push_str(&format!("export {k}='{v}'\n"));
        }
        text.push_str(&format!("exec '{}' \"$@\"\n", program.display()));
        std::fs::write(&script, text)?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
        Ok(script)
    }
}

/// A server's clock placed on this machine's boot clock, which every
/// process shares and nobody sets: `at(boot_ms)` is the server's time at
/// that boot instant. Measured over loopback (a round trip well under a
/// millisecond), so it is the truth a client's estimate is held against.
#[derive(Debug, Clone, Copy)]
pub struct ServerTimeline {
    /// Server time minus boot time, from the fastest exchange.
    pub lead_ms: i64,
    pub rtt_ms: i64,
}

impl ServerTimeline {
    /// The best of 20 `GET /api/health` exchanges.
    pub async fn measure(base: &str) -> Result<ServerTimeline> {
        let http = https_client()?;
        let mut best: Option<ServerTimeline> = None;
        for _ in 0..20 {
            let sent = pitboss_client::time::boot_ms();
            let v: serde_json::Value = http
                .get(format!("{base}/api/health"))
                .send()
                .await?
                .json()
                .await?;
            let got = pitboss_client::time::boot_ms();
            let server = v["server_time_ms"]
                .as_i64()
                .with_context(|| format!("health has no server_time_ms: {v}"))?;
            let rtt = got - sent;
            let lead = server - (sent + got) / 2;
            if best.is_none_or(|b| rtt < b.rtt_ms) {
                best = Some(ServerTimeline {
                    lead_ms: lead,
                    rtt_ms: rtt,
                });
            }
        }
        best.context("no exchange")
    }

    /// The server's time at boot instant `boot_ms`.
    pub fn at(&self, boot_ms: i64) -> i64 {
        boot_ms + self.lead_ms
    }
}
