//! A dealer's laptop that stops running for 20 s (SIGSTOP: the process does
//! not run, as in a suspend; but a stopped process's boot and monotonic
//! clocks advance together, unlike a real suspend's, so the suspend signature
//! itself is tested with injected clocks in `crates/client/tests/wake.rs`) while the
//! clock crosses a level and other devices change the event. After SIGCONT
//! it must have the server's state within 2 s, show the same clock as the
//! server, report the level it slept through, and make no sound for it.
//!
//! A second client that stays awake is the control: it hears the level
//! change once, so the check that the sleeper heard nothing can fail.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use pitboss_system_tests::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stopped_for_20_s_has_the_servers_state_within_2_s_and_stays_silent() -> Result<()>
{
    let data = tempfile::tempdir()?;
    let caches = tempfile::tempdir()?;
    let server = ServerProc::start(data.path(), free_port()?, &[]).await?;
    let event = server.demo_event.clone();
    let director = Device::login(&server.base, COORD_CODE, "Director").await?;
    let floor = Device::login(&server.base, DEALER_CODE, "Floor").await?;

    // The sleeper and the control, both dealers, pinging often so the
    // control's clock offset is good; the sleeper's dead-socket deadline is
    // the app's (12 s), shorter than the stop.
    let fast = ["--ping-every-ms", "500", "--backoff-max-ms", "1000"];
    let mut sleeper = Follower::start(
        "sleeper",
        &server.base,
        DEALER_CODE,
        &event,
        &caches.path().join("sleeper.sqlite"),
        &fast,
    )
    .await?;
    let mut control = Follower::start(
        "control",
        &server.base,
        DEALER_CODE,
        &event,
        &caches.path().join("control.sqlite"),
        &fast,
    )
    .await?;
    for f in [&mut sleeper, &mut control] {
        f.wait_live(Duration::from_secs(10)).await?;
    }
    // Let the offset estimators take a few samples.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // Leave 8 s in the level in play: the clock crosses into the next level
    // while the sleeper is stopped.
    let snap = snapshot(&director, &event).await?;
    let pos = server_position(&snap, snap["server_time_ms"].as_i64().context("time")?)?;
    let level_before = pos.level_index;
    ensure!(pos.running, "the demo clock runs");
    let (st, body) = director
        .op(
            &event,
            json!({"type": "clock.adjust", "delta_ms": 8_000 - pos.remaining_ms}),
        )
        .await?;
    ensure!(st == 200, "adjust: {body}");
    let crossing_at = body["result"]["clock"]["anchor_ms"]
        .as_i64()
        .context("anchor")?
        + 8_000;
    sleeper
        .wait_seq(body["seq"].as_u64().context("seq")?, Duration::from_secs(5))
        .await?;

    let stopped_at_line = sleeper.lines().len();
    signal(sleeper.pid()?, libc::SIGSTOP)?;
    let stopped = Instant::now();
    // Others keep working while it sleeps.
    for _ in 0..3 {
        let (st, body) = floor
            .op(&event, json!({"type": "stats.bust", "count": 1}))
            .await?;
        ensure!(st == 200, "bust: {body}");
    }
    let (st, body) = floor
        .op(
            &event,
            json!({"type": "incident.create", "table": "9", "kind": "Clock dispute",
                   "severity": "medium", "note": "made while the sleeper slept"}),
        )
        .await?;
    ensure!(st == 200, "incident: {body}");
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(stopped.elapsed())).await;
    let want = snapshot(&director, &event).await?;
    ensure!(
        server_position(&want, want["server_time_ms"].as_i64().context("time")?)?.level_index
            == level_before + 1,
        "the clock crossed a level during the stop"
    );

    signal(sleeper.pid()?, libc::SIGCONT)?;
    let woke = Instant::now();
    let caught = loop {
        let s = sleeper.state().await?;
        if s["seq"] == want["seq"] && s["status"]["state"] == "live" && s["shown_at_ms"].is_i64() {
            break s;
        }
        ensure!(
            woke.elapsed() < Duration::from_secs(2),
            "2 s after SIGCONT the sleeper still shows seq {} ({}), the server has {}",
            s["seq"],
            s["status"],
            want["seq"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = woke.elapsed();
    ensure!(
        caught["state"] == want["state"],
        "the sleeper's state differs from the server's:\n{}\nvs\n{}",
        caught["state"],
        want["state"]
    );
    // Its clock: the level it shows against the server's clock at the same
    // instant, and its estimate of server time against the real one. Server
    // and follower run on this machine and the server's clock is the wall
    // clock read at its start plus monotonic time, so the true offset is ~0:
    // the estimate's error is how far the screen is off.
    let at = caught["shown_at_ms"].as_i64().context("shown_at_ms")?;
    let truth = server_position(&want, at)?;
    let estimate_error = (caught["server_now_ms"].as_i64().context("server_now_ms")?
        - caught["at_ms"].as_i64().context("at_ms")?)
    .abs();
    let shown_remaining = caught["remaining_ms"].as_i64().context("remaining")?;
    ensure!(
        caught["level_index"] == json!(truth.level_index),
        "sleeper shows level index {}, the server {}",
        caught["level_index"],
        truth.level_index
    );
    ensure!(
        shown_remaining == truth.remaining_ms,
        "the sleeper shows {shown_remaining} ms left, the server's clock {} at the same instant",
        truth.remaining_ms
    );
    let clock_error = estimate_error;
    ensure!(
        clock_error <= 250,
        "the sleeper's server-time estimate is {clock_error} ms off"
    );

    // A second of ticks more, then: no sound from the sleeper since it was
    // stopped, a banner for the level it slept through, a wake noticed.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after: Vec<Value> = sleeper.lines().split_off(stopped_at_line);
    let alerts: Vec<&Value> = after.iter().filter(|l| l["kind"] == "alert").collect();
    ensure!(
        alerts.is_empty(),
        "the sleeper sounded for a level it slept through: {alerts:?}"
    );
    ensure!(
        after.iter().any(|l| l["kind"] == "woke"),
        "the sleeper did not notice it was away: {after:?}"
    );
    let banner = after
        .iter()
        .find(|l| l["kind"] == "slept_through")
        .context("no 'level started while asleep' report")?;
    ensure!(
        banner["info"]["level_index"] == json!(level_before + 1),
        "slept through: {banner}"
    );
    let started = banner["info"]["started_at_ms"].as_i64().unwrap_or(0);
    ensure!(
        (started - crossing_at).abs() <= 1_000,
        "the banner says the level began at {started}, it began at {crossing_at}"
    );

    // The control heard the level change, once.
    let heard: Vec<Value> = control
        .lines()
        .into_iter()
        .filter(|l| l["kind"] == "alert" && l["level_index"] == json!(level_before + 1))
        .collect();
    ensure!(
        heard.len() == 1,
        "the awake client heard the level change {} times: {heard:?}",
        heard.len()
    );
    eprintln!(
        "sleeper: stopped 20 s; had the server's state {took:?} after SIGCONT; clock off by {clock_error} ms; control heard the level once"
    );
    sleeper.quit().await?;
    control.quit().await?;
    drop(server);
    Ok(())
}
