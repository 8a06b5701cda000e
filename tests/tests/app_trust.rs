//! Trust on an open venue network in the real app, driven through WebDriver
//! like a tournament director would: pair a dealer with a 6-digit code from
//! the Devices screen, see it in the device list, revoke it behind the
//! confirm step (its own WebSocket must close within a second and its token
//! then get a 401), read the audit trail's sentences and one incident's
//! history and check them against what was done, export the CSV and check
//! its rows, then join this same app as a display with a pairing code and
//! see no controls at all, and finally see the app's own revocation as a
//! signed-out screen. Screenshots go to `target/screenshots/`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use fantoccini::{Client, Locator};
use futures_util::{SinkExt, StreamExt};
use pitboss_system_tests::page::*;
use pitboss_system_tests::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const COORD: &str = "COORD-8383";
const DEALER: &str = "DEAL-9494";
const REVOKED: &str = "This device was revoked by the coordinator; join again with a new code";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_director_pairs_revokes_audits_and_a_display_sees_no_controls() -> Result<()> {
    let app = app_binary()?;
    let venue = DemoVenue::start(COORD, DEALER).await?;

    let xvfb = Xvfb::start()?;
    let sandbox = Sandbox::new()?;
    let downloads = sandbox.dir.path().join("Downloads");
    let driver = Driver::start(
        &xvfb.display,
        &sandbox,
        &[
            ("PITBOSS_DISPLAY_WINDOWED", "1".into()),
            // Sentences carry the time of day; the test reckons it in UTC.
            ("TZ", "UTC".into()),
            ("XDG_DOWNLOAD_DIR", downloads.display().to_string()),
        ],
    )?;
    let c = driver.session(&app).await?;
    let result = scenario(&c, &xvfb.display, &venue.base, &venue.event, &downloads).await;
    let result = end_scenario(c, &xvfb.display, "app_trust", result).await;
    drop(driver);
    venue.shutdown().await;
    result
}

/// Logs in through the public API as a device would; returns (token, operator id).
async fn join(base: &str, code: &str, name: &str, device: &str) -> Result<(String, String)> {
    let r: Value = https_client()?
        .post(format!("{base}/api/session"))
        .json(&json!({"join_code": code, "name": name, "device": device}))
        .send()
        .await?
        .json()
        .await?;
    Ok((
        r["token"]
            .as_str()
            .with_context(|| format!("login: {r}"))?
            .to_string(),
        r["operator_id"]
            .as_str()
            .context("operator id")?
            .to_string(),
    ))
}

async fn api(
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let http = https_client()?;
    let url = format!("{base}{path}");
    let mut rq = match method {
        "GET" => http.get(url),
        _ => http.post(url),
    }
    .bearer_auth(token);
    if let Some(b) = body {
        rq = rq.json(&b);
    }
    let r = rq.send().await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// Texts of the elements matching `css`, in page order.
async fn texts(c: &Client, css: &str) -> Result<Vec<String>> {
    let v = c
        .execute(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent.trim())",
            vec![json!(css)],
        )
        .await?;
    Ok(serde_json::from_value(v)?)
}

/// Whether anything matching `css` is on screen (not just in the page).
async fn any_visible(c: &Client, css: &str) -> Result<bool> {
    for e in c.find_all(Locator::Css(css)).await? {
        if e.is_displayed().await.unwrap_or(false) {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn wait_for<T>(
    within: Duration,
    what: &str,
    mut f: impl AsyncFnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + within;
    let mut last = None;
    while Instant::now() < deadline {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "{what} within {within:?}{}",
        last.map(|e| format!(" (last error: {e:#})"))
            .unwrap_or_default()
    )
}

/// Clicks an item of a list the page may be re-rendering (the event list
/// reloads when the app state arrives): a node replaced between finding and
/// clicking it is found again.
async fn click_in_list(c: &Client, css: &str) -> Result<()> {
    let mut last = None;
    for _ in 0..5 {
        match click(c, css).await {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no click")))
}

/// "21:14:03" of a server instant, in UTC (the app runs with TZ=UTC here).
fn hms(ms: i64) -> String {
    let s = (ms / 1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

async fn scenario(
    c: &Client,
    display: &str,
    base: &str,
    event: &str,
    downloads: &Path,
) -> Result<()> {
    // The director joins with the long coordinator code, named so the
    // audit sentences can be checked.
    click(c, "#join-venue").await?;
    fill(c, "#connect-operator", "Ana").await?;
    fill(c, "#connect-device", "director-desk").await?;
    fill(c, "#join-address", base.trim_start_matches("https://")).await?;
    fill(c, "#join-code", COORD).await?;
    click(c, "#join-submit").await?;
    click_in_list(c, &format!("#event-list [data-event-id=\"{event}\"]")).await?;
    wait_text(c, "status-state", Duration::from_secs(10), |t| {
        t.contains("Live")
    })
    .await?;
    let (coord_token, _) = join(base, COORD, "Audit reader", "script").await?;

    // --- Pair a dealer from the Devices screen.
    click(c, "#nav-devices").await?;
    click(c, "label[for=\"pair-role-dealer\"]").await?;
    click(c, "#pair-create").await?;
    let shown = wait_text(c, "pair-code", Duration::from_secs(5), |t| t.len() == 7).await?;
    ensure!(
        shown.as_bytes()[3] == b' ' && shown.replace(' ', "").bytes().all(|b| b.is_ascii_digit()),
        "the code is shown as two groups of digits: {shown:?}"
    );
    let code = shown.replace(' ', "");
    let expiry = text(c, "pair-code-expiry").await?;
    ensure!(
        expiry == "expires in 5:00" || expiry.starts_with("expires in 4:5"),
        "a fresh code shows its 5 minutes: {expiry:?}"
    );
    ensure!(text(c, "pair-code-role").await?.contains("Dealer"));
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let later = text(c, "pair-code-expiry").await?;
    ensure!(
        later != expiry && later.starts_with("expires in 4:5"),
        "the countdown runs: {expiry:?} then {later:?}"
    );
    screen(display, "trust_pairing")?;

    // The dealer's laptop joins with the code and opens its own WebSocket.
    let (dealer_token, dealer_id) = join(base, &code, "Dan", "table-4").await?;
    let mut ws = wss(&format!(
        "{}/ws?token={dealer_token}",
        base.replacen("https://", "wss://", 1)
    ))
    .await?;
    ws.send(Message::Text(
        json!({"type": "subscribe", "event_id": event, "after": null})
            .to_string()
            .into(),
    ))
    .await?;
    // The dealer reports from the table.
    let (st, body) = api(
        base,
        &dealer_token,
        "POST",
        &format!("/api/events/{event}/ops"),
        Some(json!({"op_id": "e2e-dan-bust", "op": {"type": "stats.bust", "count": 1}})),
    )
    .await?;
    ensure!(st == 200, "dealer bust: {st} {body}");
    let (st, body) = api(base, &dealer_token, "POST", &format!("/api/events/{event}/ops"),
        Some(json!({"op_id": "e2e-dan-inc", "op": {"type": "incident.create", "table": "4", "kind": "Misdeal", "severity": "high", "note": "two cards exposed"}}))).await?;
    ensure!(st == 200, "dealer incident: {st} {body}");
    let incident = body["result"]["incident"]["id"]
        .as_str()
        .context("incident id")?
        .to_string();

    // The device list shows it, connected, with its role and address.
    let row = format!("#device-rows tr[data-operator-id=\"{dealer_id}\"]");
    let cell = async |class: &str| -> Result<String> {
        Ok(texts(c, &format!("{row} .{class}")).await?.join(" "))
    };
    wait_for(
        Duration::from_secs(10),
        "Dan listed as connected",
        async || {
            Ok((cell("c-state .state-tag").await? == "Connected"
                && cell("c-state .conn-count").await? == "1 open")
                .then_some(()))
        },
    )
    .await?;
    ensure!(
        cell("c-name").await? == "Dan" && cell("c-device").await? == "table-4",
        "who"
    );
    ensure!(cell("c-role").await? == "Dealer", "role");
    ensure!(cell("c-address").await?.contains("127.0.0.1"), "address");
    let seen = cell("c-seen").await?;
    ensure!(
        seen == "just now" || seen.ends_with("s ago"),
        "last seen: {seen:?}"
    );
    ensure!(
        any_visible(c, &format!("{row} button[data-revoke]")).await?,
        "Revoke is offered for Dan"
    );
    screen(display, "trust_devices")?;

    // --- The director works the clock and the board (the audit's material).
    click(c, "#nav-console").await?;
    click(c, "#btn-plus").await?;
    click(c, "#nav-incidents").await?;
    click(
        c,
        &format!(".incident-card[data-incident-id=\"{incident}\"] [data-action=\"acknowledge\"]"),
    )
    .await?;
    wait_visible(
        c,
        "#incidents-acknowledged .incident-card",
        Duration::from_secs(5),
    )
    .await?;

    // --- Revoke Dan, behind a confirm step that names the device.
    click(c, "#nav-devices").await?;
    click(c, &format!("{row} button[data-revoke]")).await?;
    let q = wait_text(c, "revoke-title", Duration::from_secs(3), |t| !t.is_empty()).await?;
    ensure!(
        q.contains("Dan on table-4") && q.contains("Dealer"),
        "the confirm names the device: {q:?}"
    );
    screen(display, "trust_revoke_confirm")?;
    // Keep it: nothing happens.
    click(c, "#revoke-cancel").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (st, _) = api(base, &dealer_token, "GET", "/api/events", None).await?;
    ensure!(st == 200, "Keep it left the device working");

    click(c, &format!("{row} button[data-revoke]")).await?;
    wait_visible(c, "#revoke-confirm", Duration::from_secs(3)).await?;
    let reader = tokio::spawn(async move {
        // Drain until the close frame (or the end of the stream).
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Close(f)) => {
                    return (
                        Instant::now(),
                        f.map(|f| (u16::from(f.code), f.reason.to_string())),
                    )
                }
                Ok(_) => {}
                Err(_) => return (Instant::now(), None),
            }
        }
        (Instant::now(), None)
    });
    let clicked = Instant::now();
    click(c, "#revoke-confirm").await?;
    let (closed_at, frame) = tokio::time::timeout(Duration::from_secs(3), reader)
        .await
        .context("the revoked device's WebSocket stayed open 3 s")??;
    let took = closed_at.saturating_duration_since(clicked);
    println!(
        "revoke click to the dealer's WebSocket close: {} ms ({frame:?})",
        took.as_millis()
    );
    ensure!(
        took < Duration::from_secs(1),
        "the WebSocket closed after {took:?}"
    );
    ensure!(matches!(&frame, Some((1008, _))), "close frame {frame:?}");
    let (st, body) = api(base, &dealer_token, "GET", "/api/events", None).await?;
    ensure!(
        st == 401 && body["revoked"] == json!(true),
        "the revoked token: {st} {body}"
    );
    let (st, _) = api(
        base,
        &dealer_token,
        "POST",
        &format!("/api/events/{event}/ops"),
        Some(json!({"op_id": "e2e-dan-late", "op": {"type": "stats.bust", "count": 1}})),
    )
    .await?;
    ensure!(st == 401, "a revoked device's op: {st}");
    wait_text(c, "devices-msg", Duration::from_secs(3), |t| {
        t.contains("Revoked Dan on table-4")
    })
    .await?;
    let state = wait_for(Duration::from_secs(5), "Dan shown as revoked", async || {
        let s = cell("c-state").await?;
        Ok(s.starts_with("Revoked").then_some(s))
    })
    .await?;
    ensure!(
        !any_visible(c, &format!("{row} button[data-revoke]")).await?,
        "no Revoke twice: {state:?}"
    );
    screen(display, "trust_revoked")?;

    // --- The audit trail, as the floor says it, against the server's.
    let (st, trail) = api(
        base,
        &coord_token,
        "GET",
        &format!("/api/events/{event}/audit"),
        None,
    )
    .await?;
    ensure!(st == 200, "audit: {st} {trail}");
    let entries = trail["entries"].as_array().context("entries")?.clone();
    let expected: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "{} on {} {} · {}",
                e["name"].as_str().unwrap_or(""),
                e["device"].as_str().unwrap_or(""),
                e["summary"].as_str().unwrap_or(""),
                hms(e["at_ms"].as_i64().unwrap_or(0))
            )
        })
        .collect();
    click(c, "#nav-audit").await?;
    let lines = wait_for(Duration::from_secs(5), "the audit list", async || {
        let l = texts(c, "#audit-list li.audit-line").await?;
        Ok((l.len() == expected.len()).then_some(l))
    })
    .await?;
    ensure!(
        lines == expected,
        "the screen says\n{lines:#?}\nthe server's trail says\n{expected:#?}"
    );
    // What was done, newest first: Ana's acknowledge and +1 min, Dan's
    // incident and bust-out.
    let done = [
        (
            "Ana on director-desk updated incident",
            "status open → acknowledged",
        ),
        ("Ana on director-desk added 1:00 to level 1", "left)"),
        ("Dan on table-4 raised incident", "Misdeal at table 4"),
        ("Dan on table-4 reported 1 bust-out", "players)"),
    ];
    ensure!(lines.len() >= done.len(), "{lines:?}");
    for (line, (start, has)) in lines.iter().zip(done) {
        ensure!(
            line.starts_with(start) && line.contains(has),
            "{line:?} is not {start:?} … {has:?}"
        );
    }
    screen(display, "trust_audit")?;

    // One incident: the filter and the incident's History say the same.
    select(c, "#audit-filter", &incident).await?;
    let filtered = wait_for(Duration::from_secs(5), "the filtered list", async || {
        let l = texts(c, "#audit-list li.audit-line").await?;
        Ok((l.len() == 2).then_some(l))
    })
    .await?;
    ensure!(
        filtered[0] == lines[0] && filtered[1] == lines[2],
        "{filtered:?}"
    );
    click(c, "#nav-incidents").await?;
    click(
        c,
        &format!(".incident-card[data-incident-id=\"{incident}\"] [data-action=\"history\"]"),
    )
    .await?;
    let history = wait_for(
        Duration::from_secs(5),
        "the incident's history",
        async || {
            let l = texts(c, "#incident-history li.audit-line").await?;
            Ok((l.len() == 2).then_some(l))
        },
    )
    .await?;
    ensure!(
        history == filtered,
        "History {history:?} vs filter {filtered:?}"
    );
    screen(display, "trust_incident_history")?;
    click(c, "#detail-close").await?;

    // --- Export CSV: the saved path is reported and its rows are the trail.
    click(c, "#nav-audit").await?;
    select(c, "#audit-filter", "").await?;
    click(c, "#audit-export").await?;
    let msg = wait_text(c, "audit-export-msg", Duration::from_secs(5), |t| {
        t.starts_with("Saved")
    })
    .await?;
    let path = msg
        .split(" to ")
        .nth(1)
        .context("a path in the message")?
        .to_string();
    let p = Path::new(&path);
    ensure!(
        p.parent() == Some(downloads),
        "saved in the download folder: {path}"
    );
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let prefix = format!("pitboss-audit-{event}-");
    ensure!(
        name.starts_with(&prefix)
            && name.ends_with(".csv")
            && name[prefix.len()..name.len() - 4].len() == 13
            && name.as_bytes()[prefix.len() + 8] == b'-',
        "file name {name}"
    );
    let csv = std::fs::read_to_string(p)?;
    let mut rows = csv.lines();
    ensure!(
        rows.next() == Some("seq,time_utc,at_ms,name,device,role,address,operator_id,op_id,op,summary,incident_id,before,after"),
        "header of {path}"
    );
    ensure!(
        msg.contains(&format!("Saved {} changes", entries.len())),
        "{msg}"
    );
    for e in &entries {
        let seq = e["seq"].as_u64().unwrap_or(0);
        let op_id = e["op_id"].as_str().unwrap_or("");
        ensure!(
            csv.lines()
                .any(|l| l.starts_with(&format!("{seq},")) && l.contains(op_id)),
            "no row for seq {seq} ({op_id}) in {path}"
        );
    }
    screen(display, "trust_export")?;

    // --- A display code from the Devices screen; this app joins with it.
    click(c, "#nav-devices").await?;
    click(c, "label[for=\"pair-role-display\"]").await?;
    click(c, "#pair-create").await?;
    let shown = wait_text(c, "pair-code", Duration::from_secs(5), |t| {
        t.len() == 7 && t.replace(' ', "") != code
    })
    .await?;
    let wall_code = shown.replace(' ', "");
    ensure!(text(c, "pair-code-role").await?.contains("Display"));
    click(c, "#nav-settings").await?;
    click(c, "#leave-venue").await?;
    click(c, "#leave-venue").await?;
    click(c, "#join-venue").await?;
    fill(c, "#connect-operator", "Wall").await?;
    fill(c, "#connect-device", "bar-tv").await?;
    fill(c, "#join-address", base.trim_start_matches("https://")).await?;
    // Typed as read off the screen, with the space.
    fill(c, "#join-code", &shown).await?;
    click(c, "#join-submit").await?;
    click_in_list(c, &format!("#event-list [data-event-id=\"{event}\"]")).await?;
    wait_text(c, "status-state", Duration::from_secs(10), |t| {
        t.contains("Live")
    })
    .await?;
    wait_text(c, "role-badge", Duration::from_secs(5), |t| {
        t.starts_with("Display")
    })
    .await?;
    wait_text(c, "level-title", Duration::from_secs(5), |t| {
        t.starts_with("Level")
    })
    .await?;
    ensure!(
        parse_clock(&text(c, "time").await?).is_ok(),
        "the clock shows"
    );
    for css in [
        "#btn-start-pause",
        "#btn-plus",
        "#btn-minus",
        "#btn-next-level",
        "#btn-bust",
        "#btn-entry",
        "#nav-structure",
        "#nav-devices",
        "#nav-audit",
    ] {
        ensure!(!any_visible(c, css).await?, "a display shows {css}");
    }
    screen(display, "trust_display_console")?;
    click(c, "#nav-incidents").await?;
    wait_visible(
        c,
        &format!(".incident-card[data-incident-id=\"{incident}\"]"),
        Duration::from_secs(5),
    )
    .await?;
    for css in [
        "#incident-form",
        ".incident-card button",
        ".pending-card button",
    ] {
        ensure!(!any_visible(c, css).await?, "a display shows {css}");
    }
    screen(display, "trust_display_board")?;
    // Nor does the shell take an op from it.
    let r = invoke(
        c,
        "submit_op",
        json!({"op": {"type": "stats.bust", "count": 1}}),
    )
    .await;
    ensure!(r.is_err(), "a display's op was taken: {r:?}");

    // --- The coordinator revokes the wall: the app says so, in words.
    let (st, devices) = api(base, &coord_token, "GET", "/api/devices", None).await?;
    ensure!(st == 200, "{devices}");
    let wall = devices["devices"]
        .as_array()
        .and_then(|d| {
            d.iter()
                .find(|d| d["name"] == "Wall" && d["revoked"] == json!(false))
        })
        .context("the wall in the device list")?;
    ensure!(
        wall["role"] == "display" && wall["via"] == "pairing",
        "{wall}"
    );
    let id = wall["operator_id"].as_str().context("id")?;
    let t = Instant::now();
    let (st, body) = api(
        base,
        &coord_token,
        "POST",
        &format!("/api/devices/{id}/revoke"),
        None,
    )
    .await?;
    ensure!(st == 200, "revoke the wall: {st} {body}");
    wait_text(c, "signed-out-reason", Duration::from_secs(2), |t| {
        t == REVOKED
    })
    .await?;
    println!(
        "the app showed its own revocation after {} ms",
        t.elapsed().as_millis()
    );
    wait_text(c, "status-state", Duration::from_secs(2), |t| {
        t.starts_with("Signed out")
    })
    .await?;
    ensure!(
        !any_visible(c, "#nav-console").await?,
        "a signed-out app offers no screens"
    );
    screen(display, "trust_signed_out")?;
    // A spent pairing code does not join again either.
    click(c, "#signed-out-join").await?;
    click(c, "#join-venue").await?;
    fill(c, "#join-code", &wall_code).await?;
    click(c, "#join-submit").await?;
    wait_text(c, "join-error", Duration::from_secs(5), |t| {
        t.contains("used or expired")
    })
    .await?;
    Ok(())
}

/// The host shows all three long join codes (the display one too) in its
/// header and on the Devices screen, and each works for the role it names;
/// a pairing code made for a coordinator joins as one; Cancel withdraws a
/// code so it no longer joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_shows_three_join_codes_and_cancel_withdraws_a_pairing_code() -> Result<()> {
    let app = app_binary()?;
    let port = free_port()?;
    let xvfb = Xvfb::start()?;
    let sandbox = Sandbox::new()?;
    let driver = Driver::start(
        &xvfb.display,
        &sandbox,
        &[("PITBOSS_LISTEN", format!("127.0.0.1:{port}"))],
    )?;
    let c = driver.session(&app).await?;
    let result = host_scenario(&c, &xvfb.display, &format!("https://127.0.0.1:{port}")).await;
    let result = end_scenario(c, &xvfb.display, "app_trust_host", result).await;
    drop(driver);
    result
}

async fn host_scenario(c: &Client, display: &str, base: &str) -> Result<()> {
    fill(c, "#connect-operator", "Ana").await?;
    click(c, "#host-venue").await?;
    wait_text(c, "level-title", Duration::from_secs(15), |t| {
        t.starts_with("Level")
    })
    .await?;
    let state = invoke(c, "app_state", json!({})).await?;
    let host = &state["host"];
    let codes = [
        (
            "coordinator",
            host["coordinatorCode"]
                .as_str()
                .context("coordinator code")?,
        ),
        (
            "dealer",
            host["dealerCode"].as_str().context("dealer code")?,
        ),
        (
            "display",
            host["displayCode"]
                .as_str()
                .context("the host has a display code")?,
        ),
    ];
    let line = text(c, "host").await?;
    ensure!(
        line.contains(&format!("Display code {}", codes[2].1)),
        "header: {line:?}"
    );
    click(c, "#nav-devices").await?;
    for (role, code) in codes {
        let shown = wait_text(
            c,
            &format!("join-code-{role}"),
            Duration::from_secs(5),
            |t| !t.is_empty(),
        )
        .await?;
        ensure!(
            shown == code,
            "{role}: shows {shown:?}, the host has {code:?}"
        );
        let r: Value = https_client()?
            .post(format!("{base}/api/session"))
            .json(&json!({"join_code": code, "name": format!("{role} check"), "device": "e2e"}))
            .send()
            .await?
            .json()
            .await?;
        ensure!(r["role"] == role, "the {role} code joins as {}", r["role"]);
    }

    // A coordinator pairing code joins as a coordinator.
    click(c, "label[for=\"pair-role-coordinator\"]").await?;
    wait_text(c, "pair-role-duty", Duration::from_secs(2), |t| {
        t.starts_with("Coordinator")
    })
    .await?;
    click(c, "#pair-create").await?;
    let shown = wait_text(c, "pair-code", Duration::from_secs(5), |t| t.len() == 7).await?;
    ensure!(text(c, "pair-code-role").await?.contains("Coordinator"));
    screen(display, "trust_host_devices")?;
    let (token, _) = join(base, &shown.replace(' ', ""), "Bea", "second-desk").await?;
    let (st, me) = api(base, &token, "GET", "/api/pairing", None).await?;
    ensure!(st == 200, "a paired coordinator may manage: {st} {me}");
    // The box says the code is spent once the list is read again.
    wait_text(c, "pair-code-expiry", Duration::from_secs(10), |t| {
        t.contains("used")
    })
    .await?;

    // Cancel: the code is withdrawn and no longer joins.
    click(c, "label[for=\"pair-role-dealer\"]").await?;
    click(c, "#pair-create").await?;
    let shown = wait_text(c, "pair-code", Duration::from_secs(5), |t| {
        t.len() == 7 && !t.contains("used")
    })
    .await?;
    let code = shown.replace(' ', "");
    click(c, "#pair-cancel").await?;
    wait_for(Duration::from_secs(3), "the code box gone", async || {
        Ok((!any_visible(c, "#pair-box").await?).then_some(()))
    })
    .await?;
    let (st, list) = api(base, &token, "GET", "/api/pairing", None).await?;
    ensure!(
        st == 200 && !list.to_string().contains(&code),
        "still listed: {list}"
    );
    let r = https_client()?
        .post(format!("{base}/api/session"))
        .json(&json!({"join_code": code, "name": "Late", "device": "e2e"}))
        .send()
        .await?;
    ensure!(
        r.status().as_u16() == 401,
        "a cancelled code joined: {}",
        r.status()
    );

    // A small laptop window, and the window the app opens with.
    for (w, h) in [(800, 600), (1100, 720)] {
        c.set_window_size(w, h).await?;
        tokio::time::sleep(Duration::from_millis(400)).await;
        click(c, "#pair-create").await?;
        wait_visible(c, "#pair-cancel", Duration::from_secs(5)).await?;
        no_sideways_overflow(c, &format!("Devices at {w}×{h}")).await?;
        screen(display, &format!("trust_host_devices_{w}"))?;
        click(c, "#nav-audit").await?;
        wait_visible(c, "#audit-list li.audit-line", Duration::from_secs(5)).await?;
        no_sideways_overflow(c, &format!("Audit at {w}×{h}")).await?;
        screen(display, &format!("trust_host_audit_{w}"))?;
        click(c, "#nav-devices").await?;
    }

    // A code leaked: a dealer laptop on the Wi-Fi (127.0.0.2) is in with
    // it. The director locks the venue: that laptop is signed out, the host
    // runs on, and its header shows new codes.
    let old = invoke(c, "app_state", json!({})).await?["host"].clone();
    let stranger = pitboss_tls::Pin::first_use()
        .http_client(reqwest::Client::builder().local_address(Some("127.0.0.2".parse()?)))?;
    let r: Value = stranger
        .post(format!("{base}/api/session"))
        .json(&json!({"join_code": old["dealerCode"], "name": "Leak", "device": "phone"}))
        .send()
        .await?
        .json()
        .await?;
    let leaked = r["token"]
        .as_str()
        .with_context(|| format!("login: {r}"))?
        .to_string();
    click(c, "#lock-venue").await?;
    wait_visible(c, "#lock-confirm", Duration::from_secs(3)).await?;
    screen(display, "trust_lock_confirm")?;
    click(c, "#lock-confirm").await?;
    wait_text(c, "lock-msg", Duration::from_secs(5), |t| {
        t.starts_with("Venue locked") && t.contains("1 device signed out")
    })
    .await?;
    let status = stranger
        .get(format!("{base}/api/events"))
        .bearer_auth(&leaked)
        .send()
        .await?
        .status();
    ensure!(
        status.as_u16() == 401,
        "the leaked session after the lock: {status}"
    );
    let new = invoke(c, "app_state", json!({})).await?["host"].clone();
    ensure!(
        new["dealerCode"] != old["dealerCode"] && new["coordinatorCode"] != old["coordinatorCode"],
        "the header still shows the old codes: {new}"
    );
    screen(display, "trust_host_locked")?;
    Ok(())
}

/// Nothing of the coordinator's screens may hide past the right edge (a
/// clipped Revoke button or a cut sentence) on a small laptop window.
async fn no_sideways_overflow(c: &Client, what: &str) -> Result<()> {
    let v = c
        .execute(
            "const m = document.getElementById('screens');
             const over = [...m.querySelectorAll('*')].filter(e => e.offsetParent !== null)
               .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
               .map(e => e.id || e.className || e.tagName);
             return {scroll: m.scrollWidth - m.clientWidth, over: over.slice(0, 5)};",
            vec![],
        )
        .await?;
    ensure!(
        v["scroll"].as_i64() == Some(0) && v["over"].as_array().is_some_and(Vec::is_empty),
        "{what}: wider than the window: {v}"
    );
    Ok(())
}
