//! `cargo xtask run` and `cargo xtask test`: the two commands that set
//! Pitboss up on a fresh Debian/Ubuntu machine. Each installs what is
//! missing (saying what it does), then builds and runs.
//!
//! Kept dependency-free apart from anyhow so that it builds in seconds on
//! a clean machine, before anything else is there.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Debian packages the app needs to build and run.
const BUILD_PACKAGES: &[&str] = &[
    "libwebkit2gtk-4.1-dev",
    "libgtk-3-dev",
    "librsvg2-dev",
    "libayatana-appindicator3-dev",
    "libssl-dev",
    "pkg-config",
    "build-essential",
    "libasound2-dev",
];

/// Debian packages the tests need on top: a headless X server, WebKit's
/// WebDriver, screenshots, a session bus, Node for the UI's unit tests,
/// python3-dbusmock for logind.
const TEST_PACKAGES: &[&str] = &[
    "xvfb",
    "xauth",
    "webkit2gtk-driver",
    "imagemagick",
    "xdotool",
    "x11-utils",
    "dbus-x11",
    "alsa-utils",
    "nodejs",
    // A mocked logind on a private system bus, for the sleep/wake tests.
    "dbus",
    "python3-dbusmock",
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = root()?;
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("deps") => {
            ensure_packages(BUILD_PACKAGES)?;
            ensure_packages(TEST_PACKAGES)
        }
        _ => {
            eprintln!(
                "usage:\n  cargo xtask run     install what is missing, build, start the app hosting the demo event\n  cargo xtask test    install what is missing, run every test (Rust, UI, end-to-end)\n  cargo xtask bench   release builds, then the benchmarks against the floor, Redis and polling (table + target/bench/bench.json)\n  cargo xtask deps    only install the system packages"
            );
            bail!("unknown or missing task");
        }
    }
}

fn root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Ok(manifest
        .parent()
        .context("xtask has a parent folder")?
        .to_path_buf())
}

fn run(extra: &[String]) -> Result<()> {
    ensure_packages(BUILD_PACKAGES)?;
    say("building and starting Pitboss (hosting the demo event)");
    let mut cmd = Command::new(cargo());
    // `--host`: this machine hosts the venue with the demo event, so a
    // newcomer sees a running clock at once.
    cmd.args(["run", "-p", "pitboss-app", "--", "--host"])
        .args(extra);
    status(&mut cmd)
}

/// Debian packages the benchmarks need besides the build: Redis for the
/// pub/sub reference, a headless X server and a session bus for the app.
const BENCH_PACKAGES: &[&str] = &["redis-server", "xvfb", "xauth", "dbus", "dbus-x11"];

fn bench(extra: &[String]) -> Result<()> {
    ensure_packages(BUILD_PACKAGES)?;
    ensure_packages(BENCH_PACKAGES)?;
    say("release builds of the server, the app and the benchmark");
    status(Command::new(cargo()).args([
        "build",
        "--release",
        "-p",
        "pitboss-server",
        "-p",
        "pitboss-bench",
        "-p",
        "pitboss-app",
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("target").to_path_buf());
    let release = target.join("release");
    say("running the benchmarks (about 15 minutes; --runs 1 --secs 4 for a quick look)");
    status(
        Command::new(release.join("pitboss-bench"))
            .arg("--bin-dir")
            .arg(&release)
            .arg("--out")
            .arg(target.join("bench").join("bench.json"))
            .args(extra),
    )
}

fn test(extra: &[String]) -> Result<()> {
    ensure_packages(BUILD_PACKAGES)?;
    ensure_packages(TEST_PACKAGES)?;
    ensure_tauri_driver()?;
    say("checking formatting");
    status(Command::new(cargo()).args(["fmt", "--all", "--check"]))?;
    say("clippy (warnings are errors)");
    status(Command::new(cargo()).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The system tests start these binaries as real processes (the app,
    // pitboss-server, pitboss-follow) so they can be stopped and killed.
    say("building the app, the server and the headless client for the system tests");
    status(Command::new(cargo()).args(["build", "--workspace", "--bins"]))?;
    say("UI unit tests (node --test)");
    let ui = counted(Command::new("node").args(["--test", "ui/tests/"]))?;
    say("Rust tests: core, server, app, system and end-to-end");
    let mut cmd = Command::new(cargo());
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .args(extra);
    let rust = counted(&mut cmd)?;
    let (passed, failed) = (ui.0 + rust.0, ui.1 + rust.1);
    // One closing line for the whole run, so that CI reads the total and
    // not the count of the last (doc-test) binary.
    println!("\nall tests: {passed} passed, {failed} failed");
    if !ui.2 || !rust.2 || failed > 0 {
        bail!("tests failed");
    }
    if passed == 0 {
        bail!("no test ran");
    }
    Ok(())
}

/// Runs a test command, echoing its output, and counts passed and failed
/// tests from cargo's `test result:` lines and node's `# pass` / `# fail`.
fn counted(cmd: &mut Command) -> Result<(u64, u64, bool)> {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    let out = child.stdout.take().context("no stdout")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in BufReader::new(out).lines() {
        let line = line?;
        println!("{line}");
        let num = |after: &str| -> u64 {
            line.split(after)
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.trim_end_matches(';').parse().ok())
                .unwrap_or(0)
        };
        if line.starts_with("test result:") {
            passed += num("ok. ").max(num("FAILED. "));
            failed += num("passed; ");
        } else if let Some(n) = line.strip_prefix("# pass ") {
            passed += n.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(n) = line.strip_prefix("# fail ") {
            failed += n.trim().parse::<u64>().unwrap_or(0);
        }
    }
    let ok = child.wait()?.success();
    Ok((passed, failed, ok))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn say(msg: &str) {
    eprintln!("\n==> {msg}");
}

fn status(cmd: &mut Command) -> Result<()> {
    let s = cmd
        .status()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    if !s.success() {
        bail!("{:?} failed ({s})", cmd);
    }
    Ok(())
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Installs the Debian packages that are missing, with apt-get, as root or
/// through sudo. On a machine without dpkg it only says what it needs.
fn ensure_packages(pkgs: &[&str]) -> Result<()> {
    if !Path::new("/usr/bin/dpkg-query").exists() {
        eprintln!(
            "not a Debian/Ubuntu machine: make sure these (or their equivalents) are installed: {}",
            pkgs.join(" ")
        );
        return Ok(());
    }
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    say(&format!(
        "installing system packages: {}",
        missing.join(" ")
    ));
    let root = is_root();
    let apt = |args: &[&str]| -> Result<()> {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        status(&mut cmd)
    };
    apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    apt(&args)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}

/// tauri-driver bridges WebDriver to WebKitWebDriver for the end-to-end tests.
fn ensure_tauri_driver() -> Result<()> {
    if on_path("tauri-driver") {
        return Ok(());
    }
    let home_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|h| h.join("bin").join("tauri-driver"));
    if home_bin.as_ref().is_some_and(|p| p.is_file()) {
        return Ok(());
    }
    say("installing tauri-driver (cargo install --locked)");
    status(Command::new(cargo()).args(["install", "tauri-driver", "--locked", "--version", "^2"]))
}
