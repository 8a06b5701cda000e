//! The real app, in a real window under Xvfb, driven through WebDriver:
//! "Host this venue" starts the server in the app with the demo event and
//! shows its clock; another device joins with the codes the host shows and
//! its changes reach the screen.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use fantoccini::Client;
use pitboss_core::clock::position;
use pitboss_core::{ClockState, Structure};
use pitboss_system_tests::page::*;
use pitboss_system_tests::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosting_shows_the_demo_clock_and_follows_other_devices() -> Result<()> {
    let app = app_binary()?;
    let xvfb = Xvfb::start()?;
    let sandbox = Sandbox::new()?;
    let port = free_port()?;
    let driver = Driver::start(
        &xvfb.display,
        &sandbox,
        &[("PITBOSS_LISTEN", format!("127.0.0.1:{port}"))],
    )?;
    let c = driver.session(&app).await?;
    let mut result = scenario(&c, port).await;
    drop(screen(&xvfb.display, "app_clock"));
    if result.is_ok() {
        result = change_settings(&c).await;
    }
    drop(tokio::time::timeout(Duration::from_secs(10), c.close()).await);
    if result.is_ok() {
        // Start the app again on the same folders: it comes back hosting
        // the same venue, with the settings as they were left.
        let c = driver.session(&app).await?;
        result = after_restart(&c).await;
        drop(tokio::time::timeout(Duration::from_secs(10), c.close()).await);
    }
    drop(driver);
    result
}

async fn change_settings(c: &Client) -> Result<()> {
    click(c, "#nav-settings").await?;
    fill(c, "#settings-operator", "Ana").await?;
    click(c, "#settings-theme-light").await?;
    click(c, "#settings-sound-on").await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = invoke(c, "get_settings", json!({})).await?;
        if s["operatorName"] == "Ana" && s["theme"] == "light" && s["soundOn"] == false {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "settings not saved: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn after_restart(c: &Client) -> Result<()> {
    wait_text(c, "level-title", Duration::from_secs(30), |t| t == "Break").await?;
    ensure!(
        text(c, "players").await?.starts_with("45"),
        "same event, same figures"
    );
    let state = invoke(c, "app_state", json!({})).await?;
    ensure!(state["mode"] == "host", "{state}");
    let s = &state["settings"];
    ensure!(
        s["operatorName"] == "Ana" && s["theme"] == "light" && s["soundOn"] == false,
        "settings after restart: {s}"
    );
    let theme = c
        .execute(
            "return document.documentElement.dataset.theme || document.body.dataset.theme || ''",
            vec![],
        )
        .await?;
    ensure!(
        theme == json!("light"),
        "the light theme is applied: {theme}"
    );
    Ok(())
}

async fn scenario(c: &Client, port: u16) -> Result<()> {
    let started = Instant::now();
    click(c, "#host-venue").await?;
    // The demo event appears, running at level 1 with 48 players.
    wait_text(c, "level-title", Duration::from_secs(30), |t| {
        t == "Level 1"
    })
    .await?;
    eprintln!("host clicked → clock on screen in {:?}", started.elapsed());
    wait_text(c, "clock-status", Duration::from_secs(5), |t| {
        t.eq_ignore_ascii_case("running")
    })
    .await?;
    ensure!(text(c, "players").await?.starts_with("48"));
    ensure!(text(c, "blinds").await?.starts_with("100 / 200"));

    // The join codes the host shows work for another device.
    let state = invoke(c, "app_state", json!({})).await?;
    ensure!(state["mode"] == "host", "{state}");
    let code = state["host"]["coordinatorCode"]
        .as_str()
        .context("coordinator code")?;
    ensure!(
        state["host"]["addresses"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == &json!(format!("127.0.0.1:{port}")))),
        "the address to join is shown: {state}"
    );
    let base = format!("https://127.0.0.1:{port}");
    let other = Device::login(&base, code, "Second screen").await?;
    let events = other.get("/api/events").await?;
    let event = events["events"][0]["id"]
        .as_str()
        .context("event id")?
        .to_string();

    // The screen agrees with the server's clock to the second.
    let snap = other.get(&format!("/api/events/{event}/snapshot")).await?;
    let clock: ClockState = serde_json::from_value(snap["state"]["clock"].clone())?;
    let structure: Structure = serde_json::from_value(snap["state"]["structure"].clone())?;
    let t0 = Instant::now();
    let shown = parse_clock(&text(c, "time").await?)?;
    let server_now =
        snap["server_time_ms"].as_i64().context("server time")? + t0.elapsed().as_millis() as i64;
    let expected = position(&clock, &structure, server_now).remaining_ms;
    ensure!(
        (shown - expected).abs() <= 1_500,
        "screen shows {shown} ms, server says {expected} ms"
    );

    // Three bust-outs and a pause from another device reach the screen.
    let sent = Instant::now();
    for op in [
        json!({"type": "stats.bust", "count": 3}),
        json!({"type": "clock.pause"}),
    ] {
        let (st, body) = other.op(&event, op).await?;
        ensure!(st == 200, "op failed: {body}");
    }
    wait_text(c, "players", Duration::from_secs(2), |t| {
        t.starts_with("45")
    })
    .await?;
    wait_text(c, "clock-status", Duration::from_secs(2), |t| {
        t.eq_ignore_ascii_case("paused")
    })
    .await?;
    eprintln!("change visible on screen after {:?}", sent.elapsed());
    let frozen = text(c, "time").await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure!(
        text(c, "time").await? == frozen,
        "a paused clock kept moving"
    );

    // Moving to the first break shows the break.
    let (st, body) = other
        .op(&event, json!({"type": "clock.set_level", "level_index": 5}))
        .await?;
    ensure!(st == 200, "{body}");
    wait_text(c, "level-title", Duration::from_secs(2), |t| t == "Break").await?;
    ensure!(text(c, "time").await? == "15:00");
    ensure!(text(c, "blinds").await?.is_empty(), "no blinds on a break");
    Ok(())
}
