//! Sleep and wake (rule 9 of docs/architecture.md), against a real server over real sockets.
//!
//! A laptop that wakes holds a socket that looks open but is dead. Here the
//! proxy stalls the client's connection (nothing closes, nothing passes)
//! and the client's own dead-socket deadline is set far away, so only the
//! wake itself can explain a quick resync: the heartbeat seeing a jump of
//! `CLOCK_BOOTTIME` (injected: SIGSTOP cannot fake a suspend), or logind
//! saying `PrepareForSleep(false)` on a private system bus.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use common::{accepted as op, seq_of, server, COORD, DEALER};
use pitboss_client::alerts::Watcher;
use pitboss_client::sleep::{LogindBus, ManualClocks, WakeSource};
use pitboss_client::{Client, Config, Notice, Status};
use pitboss_core::Op;

fn sleeper_config(
    addr: std::net::SocketAddr,
    event: &str,
    cache: &Path,
    clocks: Arc<ManualClocks>,
    logind: LogindBus,
) -> Config {
    let mut cfg = Config::new(
        &format!("https://{addr}"),
        DEALER,
        event,
        cache.to_path_buf(),
    );
    cfg.backoff_min = Duration::from_millis(50);
    cfg.backoff_max = Duration::from_millis(200);
    cfg.ping_every = Duration::from_millis(300);
    // Far beyond the test: a resync can only come from the wake.
    cfg.dead_after = Duration::from_secs(120);
    cfg.sleep.clocks = clocks;
    cfg.sleep.heartbeat_every = Duration::from_millis(200);
    cfg.sleep.logind = logind;
    cfg
}

/// What the stalled client's screen does until it shows `seq`: the time it
/// took, whether a wake notice came (and from where), and the alerts heard.
async fn until_resynced(
    c: &Client,
    w: &mut Watcher,
    notices: &mut tokio::sync::broadcast::Receiver<Notice>,
    seq: u64,
    within: Duration,
) -> Result<(Duration, Option<WakeSource>, usize)> {
    let started = Instant::now();
    let mut source = None;
    let mut alerts = 0;
    while started.elapsed() < within {
        while let Ok(n) = notices.try_recv() {
            if let Notice::Woke { source: s, .. } = n {
                source = Some(s);
            }
        }
        if w.tick(c).1.is_some() {
            alerts += 1;
        }
        if seq_of(c) >= seq && *c.status().borrow() == Status::Live {
            return Ok((started.elapsed(), source, alerts));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!(
        "still at seq {} (want {seq}), {:?}, after {within:?}",
        seq_of(c),
        *c.status().borrow()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jump_of_boottime_resyncs_at_once_without_a_sound() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = server(&dir.path().join("srv")).await?;
    let event = srv.demo_event_id().context("demo")?.to_string();
    let proxy = common::Proxy::start(srv.local_addr()).await?;
    let clocks = Arc::new(ManualClocks::default());
    let mut coord = Config::new(
        &format!("https://{}", srv.local_addr()),
        COORD,
        &event,
        dir.path().join("a.db"),
    );
    coord.sleep.logind = LogindBus::Off;
    let a = Client::start(coord)?;
    let b = Client::start(sleeper_config(
        proxy.addr(),
        &event,
        &dir.path().join("b.db"),
        clocks.clone(),
        LogindBus::Off,
    ))?;
    for c in [&a, &b] {
        c.wait_status(Duration::from_secs(5), |s| *s == Status::Live)
            .await?;
    }
    // The demo event's clock is already running.
    let mut wb = Watcher::new(&b);
    for _ in 0..10 {
        wb.tick(&b);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The lid closes: the socket stalls; meanwhile the floor moves on.
    proxy.stall_current();
    op(&a, Op::ClockSetLevel { level_index: 3 }).await?;
    op(&a, Op::StatsBust { count: 2 }).await?;
    let last = op(&a, Op::StatsEntry { count: 1 }).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(seq_of(&b) < last, "the stalled client must not have it yet");

    // The lid opens: BOOTTIME moved 10 minutes, MONOTONIC did not.
    let mut notices = b.notices();
    clocks.suspend(10 * 60_000);
    let (took, source, alerts) =
        until_resynced(&b, &mut wb, &mut notices, last, Duration::from_secs(2)).await?;
    ensure!(source == Some(WakeSource::Heartbeat), "woke by {source:?}");
    ensure!(alerts == 0, "a level learned on waking must not sound");
    let (ra, rb) = (
        a.replica().borrow().clone().unwrap(),
        b.replica().borrow().clone().unwrap(),
    );
    ensure!(ra.state == rb.state, "same state as the coordinator");
    // The banner: level 4 (index 3) began while this device was asleep.
    let mut banner = None;
    for _ in 0..10 {
        wb.tick(&b);
        banner = banner.or(wb.take_slept_through());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let banner = banner.context("no 'started while asleep' banner")?;
    ensure!(banner.level_index == 3, "{banner:?}");
    ensure!(banner.started_at_ms.is_some(), "{banner:?}");
    eprintln!("heartbeat wake: resynced {took:?} after the clock jump");
    b.shutdown().await;
    a.shutdown().await;
    Ok(())
}

/// A private bus standing in for the system bus, and python-dbusmock's
/// logind on it. Killed on drop.
struct MockLogind {
    address: String,
    bus: Child,
    logind: Child,
}

impl Drop for MockLogind {
    fn drop(&mut self) {
        drop(self.logind.kill());
        drop(self.logind.wait());
        drop(self.bus.kill());
        drop(self.bus.wait());
    }
}

async fn mock_logind() -> Result<MockLogind> {
    let mut bus = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .spawn()
        .context("dbus-daemon (package dbus) is needed; `cargo xtask test` installs it")?;
    let mut line = String::new();
    BufReader::new(bus.stdout.take().context("stdout")?).read_line(&mut line)?;
    let address = line.trim().to_string();
    ensure!(!address.is_empty(), "dbus-daemon printed no address");
    // Debian's python3, which python3-dbusmock installs into (a python3
    // earlier on PATH, such as pyenv's, would not have it).
    let logind = Command::new("/usr/bin/python3")
        .args(["-m", "dbusmock", "--system", "--template", "logind"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
        .stdout(Stdio::null())
        .spawn()
        .context("python3-dbusmock is needed; `cargo xtask test` installs it")?;
    let mut m = MockLogind {
        address,
        bus,
        logind,
    };
    let conn = zbus::connection::Builder::address(m.address.as_str())?
        .build()
        .await?;
    let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
    let started = Instant::now();
    while !dbus
        .name_has_owner("org.freedesktop.login1".try_into()?)
        .await?
    {
        ensure!(
            m.logind.try_wait()?.is_none(),
            "python3 -m dbusmock exited (is python3-dbusmock installed?)"
        );
        ensure!(
            started.elapsed() < Duration::from_secs(20),
            "mocked logind did not appear"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(m)
}

async fn prepare_for_sleep(address: &str, start: bool) -> Result<()> {
    let conn = zbus::connection::Builder::address(address)?.build().await?;
    let args: Vec<zbus::zvariant::Value> = vec![start.into()];
    conn.call_method(
        Some("org.freedesktop.login1"),
        "/org/freedesktop/login1",
        Some("org.freedesktop.DBus.Mock"),
        "EmitSignal",
        &(
            "org.freedesktop.login1.Manager",
            "PrepareForSleep",
            "b",
            args,
        ),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logind_prepare_for_sleep_resyncs_at_once() -> Result<()> {
    let logind = mock_logind().await?;
    let dir = tempfile::tempdir()?;
    let srv = server(&dir.path().join("srv")).await?;
    let event = srv.demo_event_id().context("demo")?.to_string();
    let proxy = common::Proxy::start(srv.local_addr()).await?;
    let mut coord = Config::new(
        &format!("https://{}", srv.local_addr()),
        COORD,
        &event,
        dir.path().join("a.db"),
    );
    coord.sleep.logind = LogindBus::Off;
    let a = Client::start(coord)?;
    // Clocks that never move: the heartbeat cannot be what notices.
    let b = Client::start(sleeper_config(
        proxy.addr(),
        &event,
        &dir.path().join("b.db"),
        Arc::new(ManualClocks::default()),
        LogindBus::Address(logind.address.clone()),
    ))?;
    for c in [&a, &b] {
        c.wait_status(Duration::from_secs(5), |s| *s == Status::Live)
            .await?;
    }
    // Give the client a moment to register its match rule on the bus.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut wb = Watcher::new(&b);
    prepare_for_sleep(&logind.address, true).await?;
    proxy.stall_current();
    op(&a, Op::StatsRebuy { count: 3 }).await?;
    let last = op(&a, Op::StatsAddon { count: 1 }).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure!(seq_of(&b) < last, "the stalled client must not have it yet");
    let mut notices = b.notices();
    prepare_for_sleep(&logind.address, false).await?;
    let (took, source, _) =
        until_resynced(&b, &mut wb, &mut notices, last, Duration::from_secs(2)).await?;
    ensure!(source == Some(WakeSource::Os), "woke by {source:?}");
    ensure!(
        a.replica().borrow().as_ref().map(|r| &r.state)
            == b.replica().borrow().as_ref().map(|r| &r.state),
        "same state as the coordinator"
    );
    eprintln!("logind wake: resynced {took:?} after PrepareForSleep(false)");
    b.shutdown().await;
    a.shutdown().await;
    Ok(())
}
