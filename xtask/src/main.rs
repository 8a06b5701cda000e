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
    // Steps one process's wall clock (and only that), as a time sync
    // does, for the clock tests of issue 18.
    "libfaketime",
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = root()?;
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("fuzz") => fuzz(&args[1..]),
        Some("deps") => {
            ensure_packages(BUILD_PACKAGES)?;
            ensure_packages(TEST_PACKAGES)
        }
        _ => {
            eprintln!(
                "usage:\n  cargo xtask run     install what is missing, build, start the app hosting the demo event\n  cargo xtask test    install what is missing, run every test (Rust, UI, end-to-end)\n  cargo xtask bench   release builds, then the benchmarks against the floor, Redis and polling (table + target/bench/bench.json)\n  cargo xtask fuzz    run each fuzz target for a while (--secs N, default 60; --only frame|op|clock), then minimize fuzz/corpus\n  cargo xtask deps    only install the system packages"
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

/// The cargo-fuzz targets in `fuzz/`, each one call into `crates/fuzz-harness`.
const FUZZ_TARGETS: &[&str] = &["frame", "op", "clock"];

/// `cargo xtask fuzz [--secs N] [--only TARGET]`: runs each fuzz target for
/// N seconds, one after the other, then minimizes what it found together
/// with the committed corpus back into `fuzz/corpus/<target>/`. Stops at the
/// first crash, naming the crash file. Not part of `test`: a bounded run
/// finds nothing in the time a test may take, while the replay of the kept
/// corpus (in the harness crate's tests) is cheap and does run there.
fn fuzz(args: &[String]) -> Result<()> {
    let mut secs: u64 = 60;
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--secs" => {
                secs = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .context("--secs needs a number of seconds above 0")?;
            }
            "--only" => {
                let t = it.next().context("--only needs a target")?;
                if !FUZZ_TARGETS.contains(&t.as_str()) {
                    bail!(
                        "no fuzz target {t}: the targets are {}",
                        FUZZ_TARGETS.join(", ")
                    );
                }
                only = Some(t.clone());
            }
            other => bail!(
                "cargo xtask fuzz [--secs N] [--only frame|op|clock]: unknown argument {other}"
            ),
        }
    }
    ensure_nightly()?;
    ensure_cargo_fuzz()?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("target").to_path_buf());
    let target = std::path::absolute(target)?;
    // Scratch corpora (kept between runs, so a second run goes on from the
    // first) and the fuzzers' logs.
    let work = target.join("fuzz-work");
    let build_dir = target.join("fuzz");
    let targets: Vec<&str> = FUZZ_TARGETS
        .iter()
        .copied()
        .filter(|t| only.as_deref().is_none_or(|o| o == *t))
        .collect();
    say("building the fuzz targets (nightly, overflow checks on)");
    for t in &targets {
        status(cargo_fuzz("build", &build_dir).arg(t))?;
    }
    let mut summary = Vec::new();
    for t in &targets {
        let scratch = work.join(t);
        let corpus = Path::new("fuzz/corpus").join(t);
        let seeds = Path::new("fuzz/seeds").join(t);
        let artifacts = std::path::absolute(Path::new("fuzz/artifacts").join(t))?;
        for d in [&scratch, &corpus, &artifacts] {
            std::fs::create_dir_all(d)?;
        }
        let log_path = work.join(format!("{t}.log"));
        say(&format!(
            "fuzzing {t} for {secs} s (log: {})",
            log_path.display()
        ));
        let crashes_before = files_of(&artifacts)?;
        let log = std::fs::File::create(&log_path)?;
        // New inputs go to the first folder, the scratch one; the kept
        // corpus and the seeds are only read.
        let ran = cargo_fuzz("run", &build_dir)
            .arg(t)
            .arg(&scratch)
            .arg(&corpus)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={secs}"))
            // A clock computation that hangs is a bug like a panic.
            .arg("-timeout=10")
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .context("cannot run cargo fuzz")?;
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if !ran.success() {
            // The broken property, as the harness worded it; the log has
            // the backtrace.
            let lines: Vec<&str> = text.lines().collect();
            let from = lines
                .iter()
                .position(|l| l.contains("panicked at"))
                .unwrap_or(lines.len().saturating_sub(20));
            let excerpt: Vec<&str> = lines[from..]
                .iter()
                .copied()
                .take_while(|l| !l.starts_with("stack backtrace:"))
                .take(20)
                .collect();
            eprintln!("{}", excerpt.join("\n"));
            let new: Vec<PathBuf> = files_of(&artifacts)?
                .into_iter()
                .filter(|p| !crashes_before.contains(p))
                .collect();
            if let Some(crash) = new.first() {
                bail!(
                    "fuzz target {t} found a crash: {}\nreplay it: rustup run nightly cargo fuzz run --sanitizer none {t} {}\nonce fixed, keep it in fuzz/seeds/{t}/ so the replay test holds the fix",
                    crash.display(),
                    crash.display()
                );
            }
            bail!(
                "cargo fuzz run {t} failed ({ran}); see {}",
                log_path.display()
            );
        }
        let stat = |key: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        let runs = stat("stat::number_of_executed_units:");
        let per_sec = stat("stat::average_exec_per_sec:");

        say(&format!(
            "minimizing the {t} corpus into {}",
            corpus.display()
        ));
        // Inputs are named by their hash, so copying the kept corpus over
        // the scratch one only adds what it lacks. Two passes of cmin: the
        // scratch corpus keeps every input that reaches new code or a new
        // hit count (what the next run mutates best); the committed one
        // only what reaches new code (`-use_counters=0`), a tenth of the
        // size for the same edges, so the repository stays small.
        for f in files_of(&corpus)? {
            if let Some(name) = f.file_name() {
                std::fs::copy(&f, scratch.join(name))?;
            }
        }
        let minimized = work.join(format!("{t}-min"));
        if minimized.exists() {
            std::fs::remove_dir_all(&minimized)?;
        }
        std::fs::create_dir_all(&minimized)?;
        let cmin_log = std::fs::File::create(work.join(format!("{t}-cmin.log")))?;
        let mut cmin = cargo_fuzz("cmin", &build_dir);
        cmin.arg(t).arg(&scratch);
        status(
            cmin.stdout(cmin_log.try_clone()?)
                .stderr(cmin_log.try_clone()?),
        )?;
        for f in files_of(&scratch)? {
            if let Some(name) = f.file_name() {
                std::fs::copy(&f, minimized.join(name))?;
            }
        }
        let mut cmin = cargo_fuzz("cmin", &build_dir);
        cmin.arg(t).arg(&minimized).args(["--", "-use_counters=0"]);
        status(cmin.stdout(cmin_log.try_clone()?).stderr(cmin_log))?;
        for f in files_of(&corpus)? {
            std::fs::remove_file(f)?;
        }
        let (mut files, mut bytes) = (0u64, 0u64);
        for f in files_of(&minimized)? {
            if let Some(name) = f.file_name() {
                bytes += std::fs::copy(&f, corpus.join(name))?;
                files += 1;
            }
        }
        summary.push(format!(
            "{t:<6} {secs:>6} s {runs:>12} runs {per_sec:>8} exec/s   corpus {files} files, {} KiB",
            bytes.div_ceil(1024)
        ));
    }
    println!("\nfuzzing: no crash\n{}", summary.join("\n"));
    Ok(())
}

/// `cargo fuzz SUB` on the nightly toolchain, building into `build_dir`.
///
/// No sanitizer: the code under test is safe Rust, where AddressSanitizer
/// has nothing to find, and it made the `op` target six times slower. The
/// build keeps debug assertions and overflow checks, so an overflow in the
/// clock math is a crash.
fn cargo_fuzz(sub: &str, build_dir: &Path) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args([
        "run",
        "nightly",
        "cargo",
        "fuzz",
        sub,
        "--sanitizer",
        "none",
    ])
    .arg("--target-dir")
    .arg(build_dir)
    // Set by the stable cargo running this xtask; they would point the
    // nightly cargo at stable tools.
    .env_remove("CARGO")
    .env_remove("RUSTC")
    .env_remove("RUSTDOC")
    .env_remove("RUSTUP_TOOLCHAIN");
    cmd
}

/// The files directly in `dir`, sorted; none when it does not exist.
fn files_of(dir: &Path) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    for e in entries {
        let p = e?.path();
        if p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// The nightly toolchain cargo-fuzz needs, installed through rustup.
fn ensure_nightly() -> Result<()> {
    let have = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .is_ok_and(|o| o.status.success());
    if have {
        return Ok(());
    }
    if !on_path("rustup") {
        bail!("cargo xtask fuzz needs rustup to install the nightly toolchain (https://rustup.rs)");
    }
    say("installing the nightly toolchain (rustup, minimal profile)");
    status(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))
}

/// cargo-fuzz, from crates.io, when it is not there yet.
fn ensure_cargo_fuzz() -> Result<()> {
    if on_path("cargo-fuzz") {
        return Ok(());
    }
    let home_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|h| h.join("bin").join("cargo-fuzz"));
    if home_bin.as_ref().is_some_and(|p| p.is_file()) {
        return Ok(());
    }
    say("installing cargo-fuzz (cargo install --locked)");
    status(Command::new(cargo()).args(["install", "cargo-fuzz", "--locked", "--version", "^0.13"]))
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
