//! `pitboss-bench`: the runner and load generator behind `cargo xtask bench`.
//!
//! Every server runs as its own process on loopback; this process is the
//! load generator and holds the one clock every timing is read on. Each
//! figure is the median of several runs, with the spread (max − min). The
//! references run in the same invocation with the same subscribers, rate
//! and payload size, so each Pitboss figure is also a ratio:
//!
//! - `floor`: a bare tokio-tungstenite broadcast server (`bench-floor`);
//! - `redis`: Redis pub/sub (redis-server from the distribution);
//! - `poll-100ms`: Pitboss delivering by reading its store every 100 ms,
//!   as a database-backed pub/sub adapter does (`bench-poll-server`).
//!
//! The table goes to stdout, the same figures as JSON to `--out`.

mod app;
mod catchup;
mod fanout;
mod memory;
mod stats;
mod targets;
mod writes;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::{json, Value};

use stats::{median, Median};
use targets::{Bins, Kind, PitbossOpts, Target};

#[derive(Parser, Debug)]
#[command(about = "Pitboss benchmarks against a bare broadcast floor, Redis pub/sub and polling")]
struct Args {
    /// Folder holding pitboss-server, bench-poll-server, bench-floor and the app
    /// (release builds).
    #[arg(long)]
    bin_dir: PathBuf,
    /// Where the JSON goes.
    #[arg(long)]
    out: PathBuf,
    /// Runs per figure (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds of publishing per fan-out run.
    #[arg(long, default_value_t = 6)]
    secs: u64,
    /// Which parts: fanout, writes, catchup, memory, app (comma-separated).
    #[arg(long, default_value = "fanout,writes,catchup,memory,app")]
    only: String,
    /// Fan-out and memory: only these connection counts (comma-separated).
    #[arg(long)]
    subscribers: Option<String>,
    /// Fan-out and memory: only these targets (pitboss, floor, redis, poll-100ms).
    #[arg(long)]
    targets: Option<String>,
}

/// A line of the table: a name, the figures, and a goal's verdict.
struct Table {
    lines: Vec<String>,
    json: BTreeMap<String, Value>,
    missed: Vec<String>,
}

impl Table {
    fn section(&mut self, title: &str) {
        self.lines.push(String::new());
        self.lines.push(format!("## {title}"));
    }
    fn line(&mut self, s: String) {
        println!("{s}");
        self.lines.push(s);
    }
    fn goal(&mut self, what: &str, ok: bool, detail: String) {
        let s = format!(
            "  goal {what}: {} ({detail})",
            if ok { "met" } else { "MISSED" }
        );
        if !ok {
            self.missed.push(format!("{what} ({detail})"));
        }
        self.line(s);
    }
}

fn fmt(m: &Median) -> String {
    format!("{:.2} ±{:.2}", m.median, m.spread / 2.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let fds = targets::raise_fd_limit()?;
    let bins = Bins {
        dir: args.bin_dir.clone(),
    };
    let parts: Vec<&str> = args.only.split(',').map(str::trim).collect();
    let mut t = Table {
        lines: Vec::new(),
        json: BTreeMap::new(),
        missed: Vec::new(),
    };
    t.line(format!(
        "Pitboss benchmarks — {} run(s) per figure, medians ± half the spread; loopback, server and load generator share this machine's {} cores; open files {fds}",
        args.runs,
        std::thread::available_parallelism().map_or(0, usize::from)
    ));
    if parts.contains(&"fanout") {
        fanout_part(&bins, &args, &mut t).await?;
    }
    if parts.contains(&"writes") {
        writes_part(&bins, &args, &mut t).await?;
    }
    if parts.contains(&"catchup") {
        catchup_part(&bins, &args, &mut t).await?;
    }
    if parts.contains(&"memory") {
        memory_part(&bins, &args, &mut t).await?;
    }
    if parts.contains(&"app") {
        app_part(&bins, &args, &mut t).await?;
    }
    t.line(String::new());
    if t.missed.is_empty() {
        t.line("every goal met".into());
    } else {
        t.line(format!("goals missed: {}", t.missed.len()));
        for m in t.missed.clone() {
            t.line(format!("  - {m}"));
        }
    }
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let doc =
        json!({"runs": args.runs, "figures": t.json, "goals_missed": t.missed, "table": t.lines});
    std::fs::write(&args.out, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("\nJSON: {}", args.out.display());
    Ok(())
}

async fn fanout_once(bins: &Bins, kind: Kind, spec: fanout::Spec) -> Result<fanout::Run> {
    let target = Target::start(kind, bins, &PitbossOpts::default()).await?;
    let r = fanout::run(kind, &target, spec).await;
    target.stop().await;
    r
}

async fn fanout_part(bins: &Bins, args: &Args, t: &mut Table) -> Result<()> {
    t.section("Fan-out latency (ms, send → each subscriber's receipt)");
    let specs = [(10, 50), (100, 50), (1_000, 50), (5_000, 10), (5_000, 50)];
    let all = [Kind::Pitboss, Kind::Floor, Kind::Redis, Kind::Poll];
    let kinds: Vec<Kind> = match &args.targets {
        Some(list) => all
            .into_iter()
            .filter(|k| list.split(',').any(|x| x == k.name()))
            .collect(),
        None => all.to_vec(),
    };
    let wanted = |n: usize| {
        args.subscribers
            .as_ref()
            .is_none_or(|l| l.split(',').any(|x| x.trim().parse() == Ok(n)))
    };
    for (n, rate) in specs {
        if !wanted(n) {
            continue;
        }
        let spec = fanout::Spec {
            subscribers: n,
            events: 1,
            rate,
            secs: args.secs,
        };
        let mut p99 = BTreeMap::new();
        let mut p50 = BTreeMap::new();
        for &kind in &kinds {
            let mut runs = Vec::new();
            for _ in 0..args.runs {
                runs.push(fanout_once(bins, kind, spec).await?);
            }
            let m50 = median(&runs.iter().map(|r| r.latency.p50).collect::<Vec<_>>());
            let m99 = median(&runs.iter().map(|r| r.latency.p99).collect::<Vec<_>>());
            let mmax = median(&runs.iter().map(|r| r.latency.max).collect::<Vec<_>>());
            let missing: u64 = runs.iter().map(|r| r.missing).sum();
            let first = median(&runs.iter().map(|r| r.first_quarter_p50).collect::<Vec<_>>());
            let last = median(&runs.iter().map(|r| r.last_quarter_p50).collect::<Vec<_>>());
            t.line(format!(
                "N={n:>5} {rate:>2}/s {:<11} p50 {:>14} p99 {:>14} max {:>14}  first/last quarter p50 {:.2}/{:.2}  missing {missing}  frame {} B",
                kind.name(),
                fmt(&m50),
                fmt(&m99),
                fmt(&mmax),
                first.median,
                last.median,
                runs.first().map_or(0, |r| r.frame_bytes)
            ));
            t.json.insert(
                format!("fanout/{n}/{rate}/{}", kind.name()),
                json!({"p50": m50, "p99": m99, "max": mmax, "missing": missing,
                       "first_quarter_p50": first, "last_quarter_p50": last, "runs": runs}),
            );
            p99.insert(kind.name(), m99.median);
            p50.insert(kind.name(), m50.median);
        }
        if kinds.len() < all.len() {
            continue;
        }
        let (pb, fl, rd, pl) = (
            p99["pitboss"],
            p99["floor"],
            p99["redis"],
            p50["poll-100ms"],
        );
        let ratio = pb / fl.max(1e-9);
        t.goal(
            &format!("N={n} {rate}/s p99 within 1.25x of the floor"),
            ratio <= 1.25,
            format!("{ratio:.2}x: {pb:.2} vs {fl:.2} ms"),
        );
        t.goal(
            &format!("N={n} {rate}/s p99 no worse than Redis"),
            pb <= rd,
            format!("{pb:.2} vs {rd:.2} ms"),
        );
        let pb50 = p50["pitboss"];
        if n <= 100 {
            t.goal(
                &format!("N={n} median 20x below polling"),
                pl >= 20.0 * pb50,
                format!("{:.1}x: {pb50:.2} vs {pl:.2} ms", pl / pb50.max(1e-9)),
            );
        } else {
            t.goal(
                &format!("N={n} median below polling"),
                pb50 < pl,
                format!("{pb50:.2} vs {pl:.2} ms"),
            );
        }
    }
    // 5,000 subscribers over 50 events.
    if !wanted(5_000) || !kinds.contains(&Kind::Pitboss) {
        return Ok(());
    }
    let spec = fanout::Spec {
        subscribers: 5_000,
        events: 50,
        rate: 50,
        secs: args.secs,
    };
    let mut runs = Vec::new();
    for _ in 0..args.runs {
        runs.push(fanout_once(bins, Kind::Pitboss, spec).await?);
    }
    let m99 = median(&runs.iter().map(|r| r.latency.p99).collect::<Vec<_>>());
    let m50 = median(&runs.iter().map(|r| r.latency.p50).collect::<Vec<_>>());
    t.line(format!(
        "5,000 over 50 events, 50/s in all, pitboss: p50 {} p99 {}  missing {}",
        fmt(&m50),
        fmt(&m99),
        runs.iter().map(|r| r.missing).sum::<u64>()
    ));
    t.json.insert(
        "fanout/5000x50events/50/pitboss".into(),
        json!({"p50": m50, "p99": m99, "runs": runs}),
    );
    t.goal(
        "5,000 over 50 events p99 <= 10 ms",
        m99.median <= 10.0,
        format!("{:.2} ms", m99.median),
    );
    Ok(())
}

async fn writes_part(bins: &Bins, args: &Args, t: &mut Table) -> Result<()> {
    t.section(
        "Contended writes (16 clients, clock.adjust + stats.bust on one event, 16 in flight each)",
    );
    for sync in ["normal", "full"] {
        let mut runs = Vec::new();
        for _ in 0..args.runs {
            let target = Target::start(
                Kind::Pitboss,
                bins,
                &PitbossOpts {
                    synchronous: sync,
                    ..PitbossOpts::default()
                },
            )
            .await?;
            runs.push(writes::run(&target, 16, 5).await?);
            target.stop().await;
        }
        let ops = median(&runs.iter().map(|r| r.accepted_per_sec).collect::<Vec<_>>());
        let p99 = median(&runs.iter().map(|r| r.ack.p99).collect::<Vec<_>>());
        let lost: i64 = runs.iter().map(|r| r.lost_updates).sum();
        t.line(format!(
            "synchronous {sync:<6} accepted ops/s {:>18}  ack p99 {} ms  lost updates {lost}",
            fmt(&ops),
            fmt(&p99)
        ));
        t.json.insert(
            format!("writes/{sync}"),
            json!({"ops_per_sec": ops, "ack_p99": p99, "lost": lost, "runs": runs}),
        );
        let want = if sync == "normal" { 10_000.0 } else { 2_000.0 };
        t.goal(
            &format!("synchronous {sync} >= {want} ops/s"),
            ops.median >= want,
            format!("{:.0}", ops.median),
        );
        t.goal(
            &format!("synchronous {sync} zero lost updates"),
            lost == 0,
            format!("{lost}"),
        );
    }
    Ok(())
}

async fn catchup_part(bins: &Bins, args: &Args, t: &mut Table) -> Result<()> {
    t.section(
        "Catch-up (the app's engine offline while K changes happen; start → last change applied)",
    );
    for (missed, retention) in [(1_000u64, 10_000u64), (10_000, 10_000), (10_000, 1_000)] {
        let mut runs = Vec::new();
        for _ in 0..args.runs {
            let target = Target::start(
                Kind::Pitboss,
                bins,
                &PitbossOpts {
                    retention,
                    ..PitbossOpts::default()
                },
            )
            .await?;
            runs.push(catchup::run(&target, missed).await?);
            target.stop().await;
        }
        let ms = median(&runs.iter().map(|r| r.ms).collect::<Vec<_>>());
        let how = if runs.iter().all(|r| r.snapshot) {
            "snapshot"
        } else {
            "resume"
        };
        t.line(format!(
            "{missed:>6} missed, retention {retention:>6}: {how:<8} {} ms",
            fmt(&ms)
        ));
        t.json.insert(
            format!("catchup/{missed}/{retention}"),
            json!({"ms": ms, "how": how, "runs": runs}),
        );
        if missed == 10_000 {
            t.goal(
                &format!("catch-up of 10,000 ({how}) <= 250 ms"),
                ms.median <= 250.0,
                format!("{:.0} ms", ms.median),
            );
        }
    }
    Ok(())
}

async fn memory_part(bins: &Bins, args: &Args, t: &mut Table) -> Result<()> {
    t.section("Memory per idle connection (server RSS delta / connections, KiB)");
    let want_n = |n: usize| {
        args.subscribers
            .as_ref()
            .is_none_or(|l| l.split(',').any(|x| x.trim().parse() == Ok(n)))
    };
    let want_kind = |k: Kind| {
        args.targets
            .as_ref()
            .is_none_or(|l| l.split(',').any(|x| x == k.name()))
    };
    for n in [1_000usize, 5_000] {
        if !want_n(n) {
            continue;
        }
        let mut per = BTreeMap::new();
        for kind in [Kind::Pitboss, Kind::Floor, Kind::Redis] {
            if !want_kind(kind) {
                continue;
            }
            let mut runs = Vec::new();
            for _ in 0..args.runs {
                let target = Target::start(kind, bins, &PitbossOpts::default()).await?;
                runs.push(memory::run(kind, &target, n).await?);
                target.stop().await;
            }
            let kib = median(
                &runs
                    .iter()
                    .map(|r| r.kib_per_connection)
                    .collect::<Vec<_>>(),
            );
            t.line(format!(
                "{n:>5} connections {:<8} {} KiB each",
                kind.name(),
                fmt(&kib)
            ));
            t.json.insert(
                format!("memory/{n}/{}", kind.name()),
                json!({"kib_per_connection": kib, "runs": runs}),
            );
            per.insert(kind.name(), kib.median);
        }
        if n == 5_000 && per.contains_key("pitboss") {
            t.goal(
                "<= 10 KiB per idle connection at 5,000",
                per["pitboss"] <= 10.0,
                format!("{:.1} KiB", per["pitboss"]),
            );
        }
    }
    Ok(())
}

async fn app_part(bins: &Bins, args: &Args, t: &mut Table) -> Result<()> {
    t.section("The app (release build, host mode with the demo clock running, Xvfb)");
    let app = bins.get("pitboss")?;
    let mb = app::binary_mb(&app)?;
    let x = app::xvfb()?;
    let mut runs = Vec::new();
    for _ in 0..args.runs {
        runs.push(app::run(&app, &x.display, 20).await?);
    }
    let paint = median(&runs.iter().map(|r| r.first_paint_ms).collect::<Vec<_>>());
    let pss = median(&runs.iter().map(|r| r.idle_pss_mb).collect::<Vec<_>>());
    let cpu = median(
        &runs
            .iter()
            .map(|r| r.cpu_percent_of_a_core)
            .collect::<Vec<_>>(),
    );
    t.line(format!("release binary {mb:.1} MB"));
    t.line(format!("start → first paint {} ms", fmt(&paint)));
    t.line(format!(
        "memory at idle (PSS, {} processes) {} MB",
        runs.first().map_or(0, |r| r.processes),
        fmt(&pss)
    ));
    t.line(format!(
        "CPU with the clock running, window visible: {} % of a core",
        fmt(&cpu)
    ));
    t.json.insert("app".into(), json!({"binary_mb": mb, "first_paint_ms": paint, "idle_pss_mb": pss, "cpu_percent": cpu, "runs": runs}));
    t.goal(
        "first paint <= 1 s",
        paint.median <= 1_000.0,
        format!("{:.0} ms", paint.median),
    );
    t.goal(
        "idle PSS <= 250 MB",
        pss.median <= 250.0,
        format!("{:.0} MB", pss.median),
    );
    t.goal(
        "CPU <= 2 % of a core",
        cpu.median <= 2.0,
        format!("{:.2} %", cpu.median),
    );
    t.goal("release binary <= 20 MB", mb <= 20.0, format!("{mb:.1} MB"));
    Ok(())
}
