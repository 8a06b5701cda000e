//! The real app, hosting, under a wall clock that a time sync steps
//! (libfaketime on the app and its webview; the monotonic and boot clocks
//! run on): the console's clock text does not jump, the status stays Live
//! and no banner appears (issue 18). Driven through WebDriver in a real
//! window under Xvfb.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use fantoccini::Client;
use pitboss_system_tests::page::*;
use pitboss_system_tests::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_sync_on_the_host_laptop_does_not_move_the_console_clock() -> Result<()> {
    let app = app_binary()?;
    let wall = Faketime::new()?;
    let under_faketime = wall.wrapper(&app)?;
    let xvfb = Xvfb::start()?;
    let sandbox = Sandbox::new()?;
    let port = free_port()?;
    let driver = Driver::start(
        &xvfb.display,
        &sandbox,
        &[("PITBOSS_LISTEN", format!("127.0.0.1:{port}"))],
    )?;
    let c = driver.session(&under_faketime).await?;
    let result = scenario(&c, port, &wall, &xvfb.display).await;
    end_scenario(c, &xvfb.display, "app_clock_step", result).await
}

async fn scenario(c: &Client, port: u16, wall: &Faketime, display: &str) -> Result<()> {
    click(c, "#host-venue").await?;
    wait_text(c, "level-title", Duration::from_secs(30), |t| {
        t == "Level 1"
    })
    .await?;
    wait_text(c, "status-state", Duration::from_secs(10), |t| t == "Live").await?;
    let base = format!("https://127.0.0.1:{port}");
    let state = invoke(c, "app_state", json!({})).await?;
    let code = state["host"]["coordinatorCode"]
        .as_str()
        .context("coordinator code")?;
    let other = Device::login(&base, code, "Floor").await?;
    let events = other.get("/api/events").await?;
    let event = events["events"][0]["id"]
        .as_str()
        .context("event id")?
        .to_string();
    let server = ServerTimeline::measure(&base).await?;
    let mut figures = Vec::new();
    for (offset, name) in [(0, "no step"), (300, "+300 s"), (0, "-300 s"), (-2, "-2 s")] {
        wall.set_offset_s(offset)?;
        let worst = follow_screen(c, &other, &event, &server).await?;
        figures.push(format!("{name}: console clock off by at most {worst} ms"));
        ensure!(
            worst <= 300,
            "after a {name} wall-clock step the console's clock was {worst} ms off the server's"
        );
        ensure!(
            text(c, "status-state").await? == "Live",
            "the status changed after a {name} step"
        );
        let banners = c
            .execute(
                "const b = document.querySelector('pb-banners'); return b ? b.innerText.trim() : '';",
                vec![],
            )
            .await?;
        ensure!(
            banners == json!(""),
            "a banner after a {name} step: {banners}"
        );
    }
    drop(screen(display, "app_clock_step"));
    eprintln!("{}", figures.join("\n"));
    // The host's server kept true time through it all.
    let after = ServerTimeline::measure(&base).await?;
    ensure!(
        (after.lead_ms - server.lead_ms).abs() <= 3,
        "the host's server time moved by {} ms",
        after.lead_ms - server.lead_ms
    );
    Ok(())
}

/// Reads the console's clock every 150 ms for 3 s. Returns the largest
/// distance, in ms, between what it shows (whole seconds) and the server's
/// clock when it was read; fails at once if it ever jumps.
async fn follow_screen(
    c: &Client,
    other: &Device,
    event: &str,
    server: &ServerTimeline,
) -> Result<i64> {
    let snap = snapshot(other, event).await?;
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut worst = 0;
    let mut last: Option<i64> = None;
    while tokio::time::Instant::now() < until {
        let before = pitboss_client::time::boot_ms();
        let shown = parse_clock(&text(c, "time").await?)?;
        let after = pitboss_client::time::boot_ms();
        // The screen shows whole seconds, rounded up, from a frame at most
        // 250 ms old: the truth at some instant of the read window lies in
        // [shown - 1 s, shown] give or take one frame.
        let lo = server_position(&snap, server.at(after))?.remaining_ms;
        let hi = server_position(&snap, server.at(before) - 250)?.remaining_ms;
        let off = if shown < lo {
            lo - shown
        } else if shown - 1_000 > hi {
            shown - 1_000 - hi
        } else {
            0
        };
        worst = worst.max(off);
        if let Some(l) = last {
            ensure!(
                shown <= l && l - shown <= 2_000,
                "the console's clock jumped from {l} to {shown} ms"
            );
        }
        last = Some(shown);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    Ok(worst)
}
