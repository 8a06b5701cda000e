//! The real app joining a real server, driven through WebDriver like a
//! tournament director would: join with the code, open the event, run the
//! clock, see another device's changes, raise an incident, and meet a
//! conflicting edit. Screenshots of the console, the incident board, the
//! conflict view and the wall display go to `target/screenshots/`.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use fantoccini::Client;
use pitboss_system_tests::page::*;
use pitboss_system_tests::*;
use serde_json::json;

const COORD: &str = "COORD-4242";
const DEALER: &str = "DEAL-1717";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_director_joins_runs_the_clock_and_handles_a_conflict() -> Result<()> {
    let app = app_binary()?;
    let venue = DemoVenue::start(COORD, DEALER).await?;
    let (base, event) = (&venue.base, &venue.event);
    let floor = Device::login(base, DEALER, "Floor").await?;
    // Start from a paused clock, so "start" in the app is a real action.
    let (st, body) = floor.op(event, json!({"type": "clock.pause"})).await?;
    ensure!(st == 403, "a dealer may not pause: {st} {body}");
    let director2 = Device::login(base, COORD, "Second director").await?;
    let (st, body) = director2.op(event, json!({"type": "clock.pause"})).await?;
    ensure!(st == 200, "pause: {body}");

    let xvfb = Xvfb::start()?;
    let sandbox = Sandbox::new()?;
    let driver = Driver::start(
        &xvfb.display,
        &sandbox,
        &[("PITBOSS_DISPLAY_WINDOWED", "1".into())],
    )?;
    let c = driver.session(&app).await?;
    let result = scenario(&c, &xvfb.display, base, event, &floor, &director2).await;
    let result = end_scenario(c, &xvfb.display, "app_console", result).await;
    drop(driver);
    venue.shutdown().await;
    result
}

async fn scenario(
    c: &Client,
    display: &str,
    base: &str,
    event: &str,
    floor: &Device,
    director2: &Device,
) -> Result<()> {
    // Join: address and code, then the event from the list.
    click(c, "#join-venue").await?;
    fill(c, "#join-address", base.trim_start_matches("https://")).await?;
    fill(c, "#join-code", "WRONG-CODE").await?;
    click(c, "#join-submit").await?;
    wait_visible(c, "#join-error", Duration::from_secs(5))
        .await
        .context("a wrong code is refused visibly")?;
    fill(c, "#join-code", COORD).await?;
    click(c, "#join-submit").await?;
    click(c, &format!("#event-list [data-event-id=\"{event}\"]")).await?;
    wait_text(c, "level-title", Duration::from_secs(10), |t| {
        t == "Level 1"
    })
    .await?;
    wait_text(c, "status-state", Duration::from_secs(10), |t| {
        t.contains("Live")
    })
    .await?;
    ensure!(text(c, "clock-status")
        .await?
        .eq_ignore_ascii_case("paused"));

    // Start the clock from the app and watch it run.
    click(c, "#btn-start-pause").await?;
    wait_text(c, "clock-status", Duration::from_secs(3), |t| {
        t.eq_ignore_ascii_case("running")
    })
    .await?;
    let t1 = parse_clock(&text(c, "time").await?)?;
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let t2 = parse_clock(&text(c, "time").await?)?;
    ensure!(
        (1_000..=3_500).contains(&(t1 - t2)),
        "the clock ran {} ms in 2.2 s",
        t1 - t2
    );

    // +1 min from the keyboard-free button, then a change from another
    // device: visible within a second.
    click(c, "#btn-plus").await?;
    wait_text(c, "time", Duration::from_secs(2), |t| {
        parse_clock(t).is_ok_and(|ms| ms > t2 + 50_000)
    })
    .await?;
    let sent = Instant::now();
    let (st, body) = floor
        .op(event, json!({"type": "stats.bust", "count": 3}))
        .await?;
    ensure!(st == 200, "bust: {body}");
    wait_text(c, "players", Duration::from_secs(1), |t| {
        t.starts_with("45")
    })
    .await?;
    eprintln!(
        "another device's bust-out visible after {:?}",
        sent.elapsed()
    );
    click(c, "#btn-entry").await?;
    wait_text(c, "players", Duration::from_secs(2), |t| {
        t.starts_with("46")
    })
    .await?;
    screen(display, "console")?;

    // The incident board: create one.
    click(c, "#nav-incidents").await?;
    fill(c, "#incident-table", "12").await?;
    select(c, "#incident-kind", "Misdeal").await?;
    select(c, "#incident-severity", "high").await?;
    fill(
        c,
        "#incident-note",
        "Seat 4 exposed a card; \"dead hand\"? <b>check</b>",
    )
    .await?;
    click(c, "#incident-create").await?;
    let card = wait_visible(c, ".incident-card", Duration::from_secs(3)).await?;
    let id = card
        .attr("data-incident-id")
        .await?
        .context("card has an incident id")?;
    let card_text = card.text().await?;
    ensure!(
        card_text.contains("<b>check</b>"),
        "note shown verbatim: {card_text:?}"
    );

    // A conflict: the director opens the edit form, meanwhile the floor
    // acknowledges the same incident; saving shows both versions.
    click(
        c,
        &format!(".incident-card[data-incident-id=\"{id}\"] [data-action=\"edit\"]"),
    )
    .await?;
    fill(c, "#edit-note", "Dead hand ruled by the TD").await?;
    let (st, body) = floor
        .op(
            event,
            json!({"type": "incident.update", "incident_id": id, "base_version": 1,
                   "status": "acknowledged", "note": "Floor: checking the camera"}),
        )
        .await?;
    ensure!(st == 200, "floor edit: {body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    click(c, "#edit-save").await?;
    wait_visible(c, "#conflict-view", Duration::from_secs(3)).await?;
    let mine = text(c, "conflict-mine").await?;
    let theirs = text(c, "conflict-theirs").await?;
    ensure!(mine.contains("Dead hand ruled by the TD"), "mine: {mine:?}");
    ensure!(
        theirs.contains("Floor: checking the camera"),
        "theirs: {theirs:?}"
    );
    screen(display, "conflict")?;
    click(c, "#conflict-apply-mine").await?;
    let snap_ok = async {
        for _ in 0..40 {
            let s = director2
                .get(&format!("/api/events/{event}/snapshot"))
                .await?;
            let inc = &s["state"]["incidents"][0];
            if inc["note"] == "Dead hand ruled by the TD" {
                ensure!(inc["lock_version"] == 3, "{inc}");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("\"Apply mine again\" never reached the server")
    };
    snap_ok.await?;
    wait_visible(c, ".incident-card", Duration::from_secs(3)).await?;
    screen(display, "incidents")?;

    // The wall display shows the same clock.
    click(c, "#nav-console").await?;
    click(c, "#btn-open-display").await?;
    let main = c.window().await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let wall = loop {
        let handles = c.windows().await?;
        if let Some(h) = handles.into_iter().find(|h| *h != main) {
            break h;
        }
        ensure!(Instant::now() < deadline, "the display window never opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    c.switch_to_window(wall).await?;
    wait_text(c, "d-title", Duration::from_secs(5), |t| t == "Level 1").await?;
    wait_text(c, "d-players", Duration::from_secs(5), |t| {
        t.starts_with("46")
    })
    .await?;
    screen(display, "display")?;
    let on_wall = parse_clock(&text(c, "d-time").await?)?;
    c.switch_to_window(main).await?;
    let on_console = parse_clock(&text(c, "time").await?)?;
    ensure!(
        (on_wall - on_console).abs() <= 1_000,
        "wall {on_wall} vs console {on_console}"
    );
    Ok(())
}
