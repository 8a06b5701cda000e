//! The servers under test, each its own process on loopback: Pitboss
//! (`pitboss-server`, push delivery, or `bench-poll-server`, polling), the
//! bare broadcast floor, and Redis.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

pub const COORD: &str = "bench-coordinator";
pub const DEALER: &str = "bench-dealer";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// pitboss-server as venues run it (push delivery).
    Pitboss,
    /// bench-poll-server: Pitboss reading changes back from the store every
    /// 100 ms.
    Poll,
    /// bench-floor: bare broadcast.
    Floor,
    /// redis-server pub/sub.
    Redis,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pitboss => "pitboss",
            Kind::Poll => "poll-100ms",
            Kind::Floor => "floor",
            Kind::Redis => "redis",
        }
    }
}

/// Where the binaries are.
#[derive(Debug, Clone)]
pub struct Bins {
    pub dir: PathBuf,
}

impl Bins {
    pub fn get(&self, name: &str) -> Result<PathBuf> {
        let p = self.dir.join(name);
        if !p.is_file() {
            bail!("{} is missing (cargo xtask bench builds it)", p.display());
        }
        Ok(p)
    }
}

/// Options for a Pitboss server.
#[derive(Debug, Clone)]
pub struct PitbossOpts {
    pub synchronous: &'static str,
    pub retention: u64,
}

impl Default for PitbossOpts {
    fn default() -> Self {
        PitbossOpts {
            synchronous: "normal",
            retention: 10_000,
        }
    }
}

/// A running server, stopped when dropped.
pub struct Target {
    pub port: u16,
    pub pid: u32,
    child: Child,
    _dir: tempfile::TempDir,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Target {
    pub async fn start(kind: Kind, bins: &Bins, opts: &PitbossOpts) -> Result<Target> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let mut cmd = match kind {
            Kind::Pitboss | Kind::Poll => {
                let bin = match kind {
                    Kind::Poll => "bench-poll-server",
                    _ => "pitboss-server",
                };
                let mut c = Command::new(bins.get(bin)?);
                c.arg("--listen")
                    .arg(format!("127.0.0.1:{port}"))
                    .arg("--data")
                    .arg(dir.path())
                    .args(["--coordinator-code", COORD, "--dealer-code", DEALER])
                    .args(["--synchronous", opts.synchronous])
                    // One load generator on one address stands in for
                    // thousands of screens: the abuse limits would refuse it.
                    .arg("--no-limits")
                    .arg("--retention")
                    .arg(opts.retention.to_string());
                if kind == Kind::Poll {
                    c.args(["--poll-interval-ms", "100"]);
                }
                c.env("RUST_LOG", "warn");
                c
            }
            Kind::Floor => {
                let mut c = Command::new(bins.get("bench-floor")?);
                c.arg("--listen").arg(format!("127.0.0.1:{port}"));
                c
            }
            Kind::Redis => {
                let mut c = Command::new(which("redis-server")?);
                c.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no", "--maxclients", "20000"])
                    .args(["--daemonize", "no", "--protected-mode", "no"])
                    .arg("--dir")
                    .arg(dir.path());
                c
            }
        };
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start the {} server", kind.name()))?;
        let pid = child.id().context("no pid")?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("the {} server did not listen on {port}", kind.name());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Target {
            port,
            pid,
            child,
            _dir: dir,
        })
    }

    pub fn base(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> Result<u64> {
        rss_kib(self.pid)
    }

    /// SIGTERM (every target shuts down cleanly on it), SIGKILL after 5 s.
    pub async fn stop(mut self) {
        // SAFETY: kill(2) on the child we started.
        unsafe {
            libc::kill(self.pid as i32, libc::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            drop(self.child.start_kill());
            drop(self.child.wait().await);
        }
    }
}

pub fn rss_kib(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

pub fn which(bin: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
        .with_context(|| format!("{bin} is not installed (cargo xtask bench installs it)"))
}

/// An HTTPS client for the Pitboss servers the bench started on loopback:
/// it pins the key that answers first.
pub fn https() -> Result<reqwest::Client> {
    Ok(pitboss_tls::Pin::first_use().http_client(reqwest::Client::builder())?)
}

/// What TLS a WebSocket dial uses: Pitboss speaks it (`wss://`), and a
/// client pinning the key on first use costs what the app's does; the
/// floor and Redis are dialled plain (`ws://`, RESP).
pub fn ws_tls() -> tokio_tungstenite::Connector {
    tokio_tungstenite::Connector::Rustls(pitboss_tls::Pin::first_use().client_config())
}

/// A coordinator's session token on a Pitboss server.
pub async fn login(base: &str, code: &str) -> Result<String> {
    let v: serde_json::Value = https()?
        .post(format!("{base}/api/session"))
        .json(&serde_json::json!({"join_code": code, "name": "bench", "device": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    v["token"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("login: {v}"))
}

/// Creates an event with a paused clock (the default) and returns its id.
pub async fn create_event(base: &str, token: &str, name: &str) -> Result<String> {
    let levels: Vec<serde_json::Value> = (1..=20u64)
        .map(|i| {
            serde_json::json!({"kind": "level", "small_blind": 100 * i, "big_blind": 200 * i,
                               "ante": 0, "duration_ms": 1_200_000})
        })
        .collect();
    let v: serde_json::Value = https()?
        .post(format!("{base}/api/events"))
        .bearer_auth(token)
        .json(
            &serde_json::json!({"name": name, "structure": {"levels": levels},
                                  "starting_stack": 20_000, "buy_in": 100}),
        )
        .send()
        .await?
        .json()
        .await?;
    v["id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("create event: {v}"))
}

/// Raises this process's open-file limit to the hard limit; children (the
/// servers) inherit it. 5,000 connections need 10,000 descriptors here.
pub fn raise_fd_limit() -> Result<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        r.rlim_cur = r.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
            bail!("setrlimit: {}", std::io::Error::last_os_error());
        }
    }
    Ok(r.rlim_cur)
}
