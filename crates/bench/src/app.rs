//! The app's footprint: the release binary's size, cold start to the first
//! painted page, memory at idle (PSS of the app and its WebKit processes
//! together) and CPU while the clock runs with the window visible. The app
//! runs in host mode with the demo clock, under Xvfb, in its own XDG folders.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tokio::io::AsyncBufReadExt;

use crate::targets::which;

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub first_paint_ms: f64,
    pub idle_pss_mb: f64,
    pub processes: usize,
    pub cpu_percent_of_a_core: f64,
}

/// A headless X server, stopped when dropped.
pub struct Xvfb {
    pub display: String,
    child: std::process::Child,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

pub fn xvfb() -> Result<Xvfb> {
    for n in 150..250u32 {
        if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            || Path::new(&format!("/tmp/.X{n}-lock")).exists()
        {
            continue;
        }
        let display = format!(":{n}");
        let child = std::process::Command::new(which("Xvfb")?)
            .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let x = Xvfb { display, child };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                return Ok(x);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    bail!("could not start Xvfb")
}

/// Every process whose parent chain leads to `root`, `root` included.
fn tree(root: u32) -> Vec<u32> {
    let mut parent = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The command name is in parentheses and may hold spaces.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.to_string()) else {
                continue;
            };
            let ppid: u32 = rest
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            parent.push((pid, ppid));
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after ')'.
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

pub async fn run(app: &Path, display: &str, sample_secs: u64) -> Result<Run> {
    let xdg = tempfile::tempdir()?;
    for d in ["data", "config", "cache", "runtime"] {
        std::fs::create_dir_all(xdg.path().join(d))?;
    }
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            xdg.path().join("runtime"),
            std::fs::Permissions::from_mode(0o700),
        )?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(which("dbus-run-session")?)
        .arg("--")
        .arg(app)
        .arg("--host")
        .env("DISPLAY", display)
        .env("NO_AT_BRIDGE", "1")
        .env("XDG_DATA_HOME", xdg.path().join("data"))
        .env("XDG_CONFIG_HOME", xdg.path().join("config"))
        .env("XDG_CACHE_HOME", xdg.path().join("cache"))
        .env("XDG_RUNTIME_DIR", xdg.path().join("runtime"))
        .env("PITBOSS_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the app")?;
    let wrapper = child.id().context("no pid")?;
    let err = child.stderr.take().context("stderr")?;
    let out = child.stdout.take().context("stdout")?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    for r in [
        Box::new(err) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
        Box::new(out),
    ] {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(r).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                drop(tx.send(l));
            }
        });
    }
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(l) = rx.recv().await {
            if l.contains("window ready") {
                return Some(l);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .context("the app never logged 'window ready'")?;
    let wall = started.elapsed().as_secs_f64() * 1000.0;
    // The app's own measure, from process start to the UI's first command.
    let first_paint_ms = ready
        .split("ms=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(wall);
    // The app process is the wrapper's child whose executable is the app.
    let want = std::fs::canonicalize(app)?;
    let app_pid = tree(wrapper)
        .into_iter()
        .find(|p| {
            std::fs::read_link(format!("/proc/{p}/exe")).ok().as_deref() == Some(want.as_path())
        })
        .context("no app process")?;
    // Idle: let start-up settle, then read PSS across the app's processes
    // (the app and its WebKit children; not the dbus-run-session wrapper and
    // its dbus-daemon, which are the harness).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let procs = tree(app_pid);
    let pss: u64 = procs.iter().map(|p| pss_kib(*p)).sum();
    let t0: u64 = procs.iter().map(|p| cpu_ticks(*p)).sum();
    let w0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(sample_secs)).await;
    let procs2 = tree(app_pid);
    let t1: u64 = procs2.iter().map(|p| cpu_ticks(*p)).sum();
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu = (t1.saturating_sub(t0)) as f64 / hz / w0.elapsed().as_secs_f64() * 100.0;
    // SAFETY: kill(2) on the app we started; it closes its window and exits.
    unsafe {
        libc::kill(app_pid as i32, libc::SIGTERM);
    }
    drop(tokio::time::timeout(Duration::from_secs(10), child.wait()).await);
    drop(child.start_kill());
    Ok(Run {
        first_paint_ms,
        idle_pss_mb: pss as f64 / 1024.0,
        processes: procs.len(),
        cpu_percent_of_a_core: cpu,
    })
}

/// Size of the release binary, in MB.
pub fn binary_mb(app: &Path) -> Result<f64> {
    Ok(std::fs::metadata(app)?.len() as f64 / (1024.0 * 1024.0))
}
