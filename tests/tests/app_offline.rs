//! The real app on a joined laptop when the host goes away (rules 9 and 10 of docs/architecture.md),
//! driven through WebDriver like a director would:
//!
//! the host is killed (`kill -9`) → the app says "Host unreachable since …",
//! keeps the clock running from the last anchor, disables the clock controls
//! and says why; bust-outs and an incident made now show as pending; the app
//! itself is killed and started again → it shows the last known state and the
//! same pending changes at once; the host comes back → the changes apply
//! exactly once, with no button pressed. Screenshots of both offline
//! screens go to `target/screenshots/`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use fantoccini::Client;
use pitboss_system_tests::page::*;
use pitboss_system_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_app_works_offline_across_its_own_restart_and_catches_up() -> Result<()> {
    let app = app_binary()?;
    let data = tempfile::tempdir()?;
    let port = free_port()?;
    let server = ServerProc::start(data.path(), port, &[]).await?;
    let event = server.demo_event.clone();
    let xvfb = Xvfb::start()?;
    let sandbox = Sandbox::new()?;
    let driver = Driver::start(&xvfb.display, &sandbox, &[])?;
    let c = driver.session(&app).await?;
    let mut server = Some(server);
    let result = scenario(
        &c,
        &driver,
        &app,
        &xvfb.display,
        data.path(),
        port,
        &event,
        &mut server,
    )
    .await;
    let result = end_scenario(c, &xvfb.display, "app_offline", result).await;
    drop(driver);
    drop(server);
    result
}

#[allow(clippy::too_many_arguments)]
async fn scenario(
    c: &Client,
    driver: &Driver,
    app: &Path,
    display: &str,
    data: &Path,
    port: u16,
    event: &str,
    server: &mut Option<ServerProc>,
) -> Result<()> {
    let base = format!("https://127.0.0.1:{port}");
    click(c, "#join-venue").await?;
    fill(c, "#join-address", &format!("127.0.0.1:{port}")).await?;
    fill(c, "#join-code", COORD_CODE).await?;
    click(c, "#join-submit").await?;
    click(c, &format!("#event-list [data-event-id=\"{event}\"]")).await?;
    wait_text(c, "status-state", Duration::from_secs(10), |t| {
        t.contains("Live")
    })
    .await?;
    wait_text(c, "players", Duration::from_secs(5), |t| {
        t.starts_with("48")
    })
    .await?;
    let director = Device::login(&base, COORD_CODE, "Director").await?;
    let before = snapshot(&director, event).await?;

    // The host laptop is unplugged.
    server.take().context("server")?.kill9().await?;
    let lost = Instant::now();
    wait_text(c, "status-state", Duration::from_secs(20), |t| {
        t.contains("Host unreachable since")
    })
    .await?;
    eprintln!(
        "'Host unreachable' shown {:?} after the host died",
        lost.elapsed()
    );
    // The clock keeps running from the last anchor.
    let t1 = parse_clock(&text(c, "time").await?)?;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let t2 = parse_clock(&text(c, "time").await?)?;
    ensure!(
        (1_000..=3_500).contains(&(t1 - t2)),
        "offline clock ran {} ms in 2.1 s",
        t1 - t2
    );
    // Clock controls need the host, and say so.
    let plus = c.find(fantoccini::Locator::Id("btn-plus")).await?;
    ensure!(!plus.is_enabled().await?, "+1 min is enabled with no host");
    let why = text(c, "clock-why").await?;
    ensure!(
        why.contains("live connection"),
        "why the clock controls are off: {why:?}"
    );

    // Work goes on: two bust-outs and an incident, shown as pending.
    click(c, "#btn-bust").await?;
    click(c, "#btn-bust").await?;
    wait_text(c, "status-pending", Duration::from_secs(3), |t| t == "2").await?;
    let pending = text(c, "console-pending").await?;
    ensure!(pending.contains("×2"), "pending note: {pending:?}");
    ensure!(
        text(c, "players").await?.starts_with("48"),
        "players count waits for the host"
    );
    click(c, "#nav-incidents").await?;
    fill(c, "#incident-table", "14").await?;
    select(c, "#incident-kind", "Misdeal").await?;
    select(c, "#incident-severity", "medium").await?;
    fill(c, "#incident-note", "raised while the host was down").await?;
    click(c, "#incident-create").await?;
    wait_text(c, "status-pending", Duration::from_secs(3), |t| t == "3").await?;
    let card = wait_visible(c, ".pending-card", Duration::from_secs(3)).await?;
    let card_text = card.text().await?;
    ensure!(
        card_text.to_lowercase().contains("pending"),
        "the offline incident is marked pending: {card_text:?}"
    );
    screen(display, "offline_incidents")?;
    click(c, "#nav-console").await?;
    screen(display, "offline_console")?;

    // The app dies too, and starts again with the host still away.
    ensure!(driver.kill9_app(app)? >= 1, "no app process to kill");
    let restarted = Instant::now();
    // The driver still holds the dead app's session: end it, as a user's
    // desktop forgets a crashed window.
    drop(tokio::time::timeout(Duration::from_secs(10), c.clone().close()).await);
    let c2 = driver.session(app).await?;
    let r = after_restart(
        &c2, display, &base, event, data, port, server, &before, restarted,
    )
    .await;
    drop(tokio::time::timeout(Duration::from_secs(10), c2.close()).await);
    r
}

#[allow(clippy::too_many_arguments)]
async fn after_restart(
    c: &Client,
    display: &str,
    base: &str,
    event: &str,
    data: &Path,
    port: u16,
    server: &mut Option<ServerProc>,
    before: &serde_json::Value,
    restarted: Instant,
) -> Result<()> {
    wait_text(c, "level-title", Duration::from_secs(30), |t| {
        t.starts_with("Level")
    })
    .await?;
    eprintln!(
        "restarted app shows the cached clock after {:?}",
        restarted.elapsed()
    );
    wait_text(c, "status-pending", Duration::from_secs(5), |t| t == "3").await?;
    let status = text(c, "status-state").await?;
    ensure!(!status.contains("Live"), "live with no host: {status:?}");
    // Restarted with the host away: offline since the last sync at once, not
    // "Reconnecting" as if the connection had just dropped.
    wait_text(c, "status-state", Duration::from_secs(5), |t| {
        t.contains("Host unreachable since")
    })
    .await?;
    screen(display, "offline_after_restart")?;

    // The host comes back; nobody touches the app.
    *server = Some(ServerProc::start(data, port, &[]).await?);
    let back = Instant::now();
    wait_text(c, "status-pending", Duration::from_secs(30), |t| t == "0").await?;
    wait_text(c, "status-state", Duration::from_secs(5), |t| {
        t.contains("Live")
    })
    .await?;
    eprintln!(
        "pending changes applied {:?} after the host came back",
        back.elapsed()
    );
    let players = before["state"]["stats"]["players_remaining"]
        .as_u64()
        .context("players")?;
    wait_text(c, "players", Duration::from_secs(3), |t| {
        t.starts_with(&(players - 2).to_string())
    })
    .await?;
    let director = Device::login(base, COORD_CODE, "Director").await?;
    let after = snapshot(&director, event).await?;
    ensure!(
        after["state"]["stats"]["players_remaining"] == serde_json::json!(players - 2),
        "two bust-outs, once each: {}",
        after["state"]["stats"]
    );
    let made = after["state"]["incidents"]
        .as_array()
        .context("incidents")?
        .iter()
        .filter(|i| i["note"] == "raised while the host was down")
        .count();
    ensure!(made == 1, "the offline incident exists {made} times");
    screen(display, "back_online")?;
    Ok(())
}
