//! One clock in the room, whatever a machine's wall clock does (issue 18).
//!
//! A laptop's operating system steps its wall clock when a time sync first
//! reaches the internet, when someone fixes the time by hand, or when the
//! RTC is corrected after a wake. Here that is libfaketime on one real
//! process (only the wall clock stepped; the monotonic and boot clocks run
//! on, as with a real time sync), against a real server on loopback:
//! steps of +300 s, −300 s and −2 s, first on a dealer's `pitboss-follow`,
//! then on the host's `pitboss-server`.
//!
//! After each step, from the first tick on, the client's estimate of server
//! time and the clock it shows stay within 20 ms of the server's own clock
//! (placed on the boot clock every process shares, over loopback); nothing
//! wakes, nothing resyncs, nothing sounds, no banner appears, the status
//! does not change. On the host, the server's time does not move either,
//! and an anchor stamped after the step is a true instant.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use pitboss_system_tests::*;
use serde_json::{json, Value};

/// Each step: the wall clock's offset from the truth afterwards (seconds),
/// the step itself (ms) and its name. Applied in order: +300 s, then
/// −300 s back to true time, then −2 s.
const STEPS: [(i64, i64, &str); 3] = [
    (300, 300_000, "+300 s"),
    (0, -300_000, "-300 s"),
    (-2, -2_000, "-2 s"),
];
/// How far a screen may be from the server's clock.
const AGREE_MS: i64 = 20;
/// How long each step is watched.
const WATCH: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_sync_on_a_dealer_laptop_moves_nothing_on_its_screen() -> Result<()> {
    let data = tempfile::tempdir()?;
    let caches = tempfile::tempdir()?;
    let port = free_port()?;
    let server = ServerProc::start(data.path(), port, &[]).await?;
    let event = server.demo_event.clone();
    let wall = Faketime::new()?;
    let mut dealer = Follower::start_with_env(
        "dealer-7",
        &server.base,
        DEALER_CODE,
        &event,
        &caches.path().join("dealer.sqlite"),
        &["--ping-every-ms", "1000"],
        &wall.env(),
    )
    .await?;
    dealer.wait_live(Duration::from_secs(20)).await?;
    let director = Device::login(&server.base, COORD_CODE, "Director").await?;
    let mut figures = Vec::new();
    for (offset, step_ms, name) in STEPS {
        let from = dealer.lines().len();
        let before = ServerTimeline::measure(&server.base).await?;
        wall.set_offset_s(offset)?;
        let worst = watch(&mut dealer, &director, &event, &before).await?;
        figures.push(format!(
            "dealer wall clock {name}: largest deviation {worst} ms"
        ));
        ensure!(
            worst <= AGREE_MS,
            "after a wall-clock step of {name} the dealer's screen was {worst} ms off the server's clock"
        );
        quiet_since(&dealer, from, name)?;
        // The heartbeat saw a step, and said it was one (not a wake).
        let said = dealer
            .lines()
            .into_iter()
            .skip(from)
            .find(|l| l["kind"] == "wall_clock_set")
            .with_context(|| format!("the sleep detector did not notice the {name} step"))?;
        let by = said["by_ms"].as_i64().unwrap_or(0);
        ensure!(
            (by - step_ms).abs() <= 500,
            "the {name} step was seen as {by} ms"
        );
    }
    eprintln!("{}", figures.join("\n"));
    dealer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_sync_on_the_host_changes_no_anchor_and_no_screen() -> Result<()> {
    let data = tempfile::tempdir()?;
    let caches = tempfile::tempdir()?;
    let port = free_port()?;
    let wall = Faketime::new()?;
    let server = ServerProc::start_with_env(data.path(), port, &[], &wall.env()).await?;
    let event = server.demo_event.clone();
    let mut dealer = Follower::start(
        "dealer-3",
        &server.base,
        DEALER_CODE,
        &event,
        &caches.path().join("dealer.sqlite"),
        &["--ping-every-ms", "1000"],
    )
    .await?;
    dealer.wait_live(Duration::from_secs(20)).await?;
    let director = Device::login(&server.base, COORD_CODE, "Director").await?;
    let mut figures = Vec::new();
    for (offset, _, name) in STEPS {
        let from = dealer.lines().len();
        let before = ServerTimeline::measure(&server.base).await?;
        wall.set_offset_s(offset)?;
        // Past libfaketime's re-read and a few of the server's own ticks.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = ServerTimeline::measure(&server.base).await?;
        ensure!(
            (after.lead_ms - before.lead_ms).abs() <= 3,
            "the host's server time moved by {} ms with a {name} wall-clock step",
            after.lead_ms - before.lead_ms
        );
        // An anchor stamped now is the true instant, not the stepped one.
        for op in [
            json!({"type": "clock.pause"}),
            json!({"type": "clock.start"}),
        ] {
            let asked = pitboss_client::time::boot_ms();
            let (st, body) = director.op(&event, op.clone()).await?;
            let answered = pitboss_client::time::boot_ms();
            ensure!(st == 200, "{op}: {body}");
            let anchor = snapshot(&director, &event).await?["state"]["clock"]["anchor_ms"]
                .as_i64()
                .context("anchor")?;
            ensure!(
                (before.at(asked) - 2..=before.at(answered) + 2).contains(&anchor),
                "{op} after a {name} step on the host was anchored at {anchor}, not between {} and {}",
                before.at(asked),
                before.at(answered)
            );
        }
        let worst = watch(&mut dealer, &director, &event, &before).await?;
        figures.push(format!("host wall clock {name}: largest deviation on a dealer's screen {worst} ms, server time moved {} ms", after.lead_ms - before.lead_ms));
        ensure!(
            worst <= AGREE_MS,
            "after a {name} step on the host the dealer's screen was {worst} ms off"
        );
        // The pause and start are live changes, heard as such: no level
        // moved, so no sound; nothing else either.
        quiet_since(&dealer, from, name)?;
    }
    eprintln!("{}", figures.join("\n"));
    dealer.quit().await?;
    Ok(())
}

/// Samples the follower every 100 ms for [`WATCH`]; returns the largest
/// deviation, in ms, of its server-time estimate and of the clock it shows
/// from the server's clock at the same true instant.
async fn watch(
    f: &mut Follower,
    director: &Device,
    event: &str,
    server: &ServerTimeline,
) -> Result<i64> {
    let until = tokio::time::Instant::now() + WATCH;
    let mut worst = 0i64;
    let (mut samples, mut screens) = (0, 0);
    while tokio::time::Instant::now() < until {
        let truth = snapshot(director, event).await?;
        let s = f.state().await?;
        ensure!(
            s["seq"] == truth["seq"],
            "the follower is not at the server's seq: {} vs {}",
            s["seq"],
            truth["seq"]
        );
        let boot = s["boot_ms"].as_i64().context("boot_ms")?;
        let est = s["server_now_ms"].as_i64().context("server_now_ms")?;
        worst = worst.max((est - server.at(boot)).abs());
        samples += 1;
        // The screen's last tick, if it was computed from this state (a
        // change applied since the tick is shown at the next one).
        if s["shown_seq"] != truth["seq"] {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let shown_boot = s["shown_boot_ms"].as_i64().context("shown_boot_ms")?;
        let shown_at = server.at(shown_boot);
        let p = server_position(&truth, shown_at)?;
        ensure!(
            s["level_index"].as_u64() == Some(p.level_index as u64),
            "shows level {} where the server is at {}",
            s["level_index"],
            p.level_index
        );
        let shown = s["remaining_ms"].as_i64().context("remaining_ms")?;
        worst = worst.max((shown - p.remaining_ms).abs());
        screens += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(
        samples >= 10 && screens >= 5,
        "only {samples} samples, {screens} of the screen"
    );
    Ok(worst)
}

/// Nothing a person would notice happened since line `from`: no wake, no
/// resync, no sound, no banner, no change of status.
fn quiet_since(f: &Follower, from: usize, step: &str) -> Result<()> {
    let noisy: Vec<Value> = f
        .lines()
        .into_iter()
        .skip(from)
        .filter(|l| {
            matches!(
                l["kind"].as_str(),
                Some("woke" | "snapshot" | "caught_up" | "alert" | "slept_through" | "status")
            )
        })
        .collect();
    ensure!(
        noisy.is_empty(),
        "after a {step} wall-clock step: {noisy:#?}"
    );
    Ok(())
}
