//! The real app, in a real window under Xvfb, driven through WebDriver: it
//! hosts the venue server with the demo event and shows that event's clock,
//! and a change made by another device through the public API reaches the
//! screen.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use fantoccini::{Client, Locator};
use pitboss_core::clock::position;
use pitboss_core::{ClockState, Structure};
use pitboss_system_tests::*;
use serde_json::{json, Value};

/// The text of element `id`. Read as `textContent`: WebKitWebDriver's
/// rendered-text call returns "" for an ellipsis-clipped flex item even
/// while it is plainly visible (checked on the saved screenshot).
async fn text(c: &Client, id: &str) -> Result<String> {
    c.find(Locator::Id(id)).await?;
    let v = c
        .execute(
            "return document.getElementById(arguments[0]).textContent",
            vec![json!(id)],
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().trim().to_string())
}

/// Polls until `id`'s text satisfies `ok`, or fails naming what it saw.
async fn wait_text(
    c: &Client,
    id: &str,
    within: Duration,
    ok: impl Fn(&str) -> bool,
) -> Result<String> {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(t) = text(c, id).await {
            if ok(&t) {
                return Ok(t);
            }
            last = t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("#{id} still shows {last:?} after {within:?}")
}

/// "19:34" or "1:05:00" → milliseconds.
fn parse_clock(t: &str) -> Result<i64> {
    let parts: Vec<i64> = t
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("not a clock: {t:?}"))?;
    Ok(match parts.as_slice() {
        [m, s] => (m * 60 + s) * 1000,
        [h, m, s] => ((h * 60 + m) * 60 + s) * 1000,
        _ => bail!("not a clock: {t:?}"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_shows_the_hosted_demo_clock_and_follows_changes() -> Result<()> {
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
    let result = scenario(&c, port).await;
    let shots = target_dir().join("screenshots");
    std::fs::create_dir_all(&shots)?;
    if let Ok(png) = c.screenshot().await {
        std::fs::write(shots.join("app_clock.png"), png)?;
    }
    drop(c.close().await);
    drop(driver);
    result
}

async fn scenario(c: &Client, port: u16) -> Result<()> {
    // The demo event appears, running at level 1 with 48 players.
    wait_text(c, "level-title", Duration::from_secs(30), |t| {
        t == "Level 1"
    })
    .await?;
    let name = text(c, "event-name").await?;
    ensure!(name == "Saturday Deepstack (demo)", "event name {name:?}");
    ensure!(text(c, "status").await?.eq_ignore_ascii_case("running"));
    ensure!(text(c, "players").await? == "48 / 48");
    ensure!(text(c, "blinds").await? == "100 / 200");

    // The join codes on screen work: another device logs in with them.
    let host = text(c, "host").await?;
    let code = host
        .split("Coordinator ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .with_context(|| format!("no coordinator code in {host:?}"))?
        .to_string();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let login: Value = http
        .post(format!("{base}/api/session"))
        .json(&json!({"join_code": code, "name": "Test floor", "device": "e2e"}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"]
        .as_str()
        .with_context(|| format!("login: {login}"))?
        .to_string();
    let events: Value = http
        .get(format!("{base}/api/events"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let event = events["events"][0]["id"]
        .as_str()
        .context("event id")?
        .to_string();

    // The screen agrees with the server's clock to the second.
    let snap: Value = http
        .get(format!("{base}/api/events/{event}/snapshot"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let clock: ClockState = serde_json::from_value(snap["state"]["clock"].clone())?;
    let structure: Structure = serde_json::from_value(snap["state"]["structure"].clone())?;
    let t0 = Instant::now();
    let shown = parse_clock(&text(c, "time").await?)?;
    let server_now =
        snap["server_time_ms"].as_i64().context("server time")? + t0.elapsed().as_millis() as i64;
    let expected = position(&clock, &structure, server_now).remaining_ms;
    ensure!(
        (shown - expected).abs() <= 2_000,
        "screen shows {shown} ms, server says {expected} ms"
    );

    // Three bust-outs and a pause from another device reach the screen.
    let op = |op: Value| {
        let http = http.clone();
        let url = format!("{base}/api/events/{event}/ops");
        let token = token.clone();
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"op_id": format!("e2e-{}", op), "op": op}))
                .send()
                .await?;
            ensure!(r.status() == 200, "op failed: {}", r.text().await?);
            anyhow::Ok(())
        }
    };
    let sent = Instant::now();
    op(json!({"type": "stats.bust", "count": 3})).await?;
    op(json!({"type": "clock.pause"})).await?;
    wait_text(c, "players", Duration::from_secs(2), |t| t == "45 / 48").await?;
    wait_text(c, "status", Duration::from_secs(2), |t| {
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

    // Moving to the first break shows the break and its color-up.
    op(json!({"type": "clock.set_level", "level_index": 5})).await?;
    wait_text(c, "level-title", Duration::from_secs(2), |t| t == "Break").await?;
    ensure!(text(c, "note").await?.contains("Color up"));
    ensure!(text(c, "time").await? == "15:00");
    ensure!(text(c, "blinds").await?.is_empty(), "no blinds on a break");
    ensure!(text(c, "break-label").await? == "Play resumes in");
    Ok(())
}
