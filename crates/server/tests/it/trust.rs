//! Issue 6 against the real server binary over real sockets: the role table
//! walked over both transports, pairing, revocation, abuse limits and the
//! audit trail. Devices are told apart by their loopback source address
//! (127.0.0.2, 127.0.0.3, …), which is what the per-address limits key on.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

fn ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

/// Every op of the API, built against the event as it is now, so that an
/// allowed one applies (a start on a paused clock, an update naming the
/// current version).
fn ops_for(snapshot: &Value, tag: &str) -> Vec<(&'static str, Value)> {
    let state = &snapshot["state"];
    let structure_version = state["structure"]["lock_version"].as_u64().unwrap_or(0);
    let levels = state["structure"]["levels"].clone();
    let incident = state["incidents"].as_array().and_then(|a| a.first());
    let running = state["clock"]["running"].as_bool().unwrap_or(false);
    let mut ops = vec![
        (
            "clock.start/pause",
            if running {
                json!({"type": "clock.pause"})
            } else {
                json!({"type": "clock.start"})
            },
        ),
        (
            "clock.adjust",
            json!({"type": "clock.adjust", "delta_ms": 60_000}),
        ),
        (
            "clock.set_level",
            json!({"type": "clock.set_level", "level_index": 0}),
        ),
        ("stats.entry", json!({"type": "stats.entry", "count": 2})),
        ("stats.bust", json!({"type": "stats.bust", "count": 1})),
        ("stats.rebuy", json!({"type": "stats.rebuy"})),
        ("stats.addon", json!({"type": "stats.addon"})),
        (
            "incident.create",
            json!({"type": "incident.create", "table": "7", "kind": "misdeal", "severity": "low", "note": tag}),
        ),
        (
            "structure.update",
            json!({"type": "structure.update", "base_version": structure_version, "levels": levels}),
        ),
    ];
    if let Some(i) = incident {
        ops.push((
            "incident.update",
            json!({"type": "incident.update", "incident_id": i["id"], "base_version": i["lock_version"], "note": format!("{tag} edit")}),
        ));
    }
    ops
}

/// The role table of docs/protocol/auth.md, written out again here on purpose:
/// a change to `Role::may` that the documentation does not follow fails.
fn allowed(role: &str, op: &str) -> bool {
    match role {
        "coordinator" => true,
        "dealer" => op.starts_with("stats.") || op.starts_with("incident."),
        _ => false,
    }
}

/// Sends one op over HTTP or the WebSocket; the answer as (ok, error code).
async fn send(http: &Http, ws: Option<&mut Ws>, event: &str, op: &Value) -> Result<(bool, String)> {
    let id = new_op_id();
    match ws {
        None => {
            let (status, v) = http.op(event, &id, op.clone()).await?;
            if status == 200 {
                return Ok((true, String::new()));
            }
            let code = v["error"].as_str().unwrap_or_default().to_string();
            ensure!(
                code != "forbidden" || status == 403,
                "forbidden must be 403, got {status}"
            );
            Ok((false, code))
        }
        Some(ws) => {
            ws.send(json!({"type": "op", "op_id": id, "event_id": event, "op": op}))
                .await?;
            loop {
                let v = ws.next().await?;
                if v["op_id"] != id.as_str() {
                    continue;
                }
                return match v["type"].as_str() {
                    Some("ack") => Ok((true, String::new())),
                    Some("rejected") => Ok((false, v["error"].as_str().unwrap_or_default().into())),
                    _ => bail!("unexpected answer {v}"),
                };
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_op_role_and_transport_of_the_role_table() -> Result<()> {
    let server = TestServer::start(&[])?;
    let coord = server.login(COORD, "Ana").await?;
    let dealer = server.login(DEALER, "Ben").await?;
    let display = server.login(DISPLAY, "Wall").await?;
    ensure!(
        display.role == "display",
        "display code gives {}",
        display.role
    );
    let event = server.long_event(&coord, "Roles").await?;
    let mut walked = 0;
    for transport in ["http", "ws"] {
        for (role, who) in [
            ("coordinator", &coord),
            ("dealer", &dealer),
            ("display", &display),
        ] {
            let mut ws = if transport == "ws" {
                Some(who.ws().await?)
            } else {
                None
            };
            // Make sure there is an incident to update on the first pass.
            if walked == 0 {
                send(
                    &coord,
                    None,
                    &event,
                    &json!({"type": "incident.create", "table": "1", "kind": "seed", "severity": "low"}),
                )
                .await?;
            }
            let before = coord.snapshot(&event).await?;
            for (name, op) in ops_for(&before, &format!("{transport}-{role}")) {
                let state_before = coord.state(&event).await?;
                let (ok, code) = send(who, ws.as_mut(), &event, &op).await?;
                walked += 1;
                let state_after = coord.state(&event).await?;
                if allowed(role, name) {
                    ensure!(ok, "{role} {name} over {transport} was refused: {code}");
                    ensure!(
                        state_after["seq"].as_u64() == state_before["seq"].as_u64().map(|s| s + 1),
                        "{role} {name} over {transport}: applied once"
                    );
                } else {
                    ensure!(
                        !ok && code == "forbidden",
                        "{role} {name} over {transport}: expected forbidden, got ok={ok} {code}"
                    );
                    ensure!(
                        state_after == state_before,
                        "{role} {name} over {transport} changed the event"
                    );
                }
            }
            // Reads: every role, every path (HTTP, replay, snapshot, subscription).
            let (s, _) = who.get("/api/events").await?;
            ensure!(s == 200, "{role} lists events: {s}");
            let (s, _) = who
                .get(&format!("/api/events/{event}/changes?after=0"))
                .await?;
            ensure!(s == 200, "{role} reads changes: {s}");
            let mut sub = who.ws().await?;
            let frames = sub.subscribe(&event, None).await?;
            ensure!(frames[0]["type"] == "snapshot", "{role} gets a snapshot");
            let frames = sub.subscribe(&event, Some(1)).await?;
            ensure!(frames.len() > 1, "{role} gets a replay");
            // Management: coordinators only.
            for path in [
                "/api/devices".to_string(),
                "/api/pairing".to_string(),
                format!("/api/events/{event}/audit"),
            ] {
                let (s, v) = who.get(&path).await?;
                let want = if role == "coordinator" { 200 } else { 403 };
                ensure!(s == want, "{role} GET {path}: {s} {v}");
            }
            let (s, _) = who
                .post("/api/pairing", &json!({"role": "display"}))
                .await?;
            ensure!(
                s == if role == "coordinator" { 201 } else { 403 },
                "{role} makes a pairing code: {s}"
            );
            let (s, _) = who
                .post(
                    "/api/events",
                    &json!({"name": "x", "structure": {"levels": [{"kind": "level", "small_blind": 1, "big_blind": 2, "ante": 0, "duration_ms": 60000}]}}),
                )
                .await?;
            ensure!(
                s == if role == "coordinator" { 201 } else { 403 },
                "{role} creates an event: {s}"
            );
        }
    }
    ensure!(
        walked == 2 * 3 * 10,
        "walked {walked} op × role × transport cells"
    );
    Ok(())
}

/// Waits for the server's close frame; its code and when it came.
async fn closed(ws: &mut Ws, within: Duration) -> Result<(u16, String, Instant)> {
    let until = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(until, ws.stream.next()).await {
            Err(_) => bail!("no close within {within:?}"),
            Ok(Some(Ok(Message::Close(Some(c))))) => {
                return Ok((c.code.into(), c.reason.to_string(), Instant::now()))
            }
            Ok(Some(Ok(_))) => continue,
            Ok(other) => bail!("connection ended without a close frame: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paired_device_is_cut_off_at_once_when_revoked_and_stays_out() -> Result<()> {
    let mut server = TestServer::start(&[])?;
    let coord = server.login(COORD, "Ana").await?;
    let event = server.long_event(&coord, "Revoke").await?;

    let (s, code) = coord
        .post("/api/pairing", &json!({"role": "dealer"}))
        .await?;
    ensure!(s == 201, "pairing code: {s} {code}");
    let pin = code["code"].as_str().context("code")?.to_string();
    ensure!(pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()));
    let (_, list) = coord.get("/api/pairing").await?;
    ensure!(list["codes"][0]["code"] == pin.as_str(), "listed: {list}");

    let dealer = server.login_from(&pin, "Ben", ip("127.0.0.2")).await?;
    ensure!(dealer.role == "dealer");
    let (s, v, _) = server.try_login(&pin, "Eve", ip("127.0.0.3")).await?;
    ensure!(s == 401, "a pairing code works once: {s} {v}");
    let (_, list) = coord.get("/api/pairing").await?;
    ensure!(
        list["codes"].as_array().is_some_and(Vec::is_empty),
        "used up: {list}"
    );

    let mut sockets = Vec::new();
    for _ in 0..3 {
        let mut ws = dealer.ws().await?;
        ws.subscribe(&event, None).await?;
        sockets.push(ws);
    }
    let (_, devices) = coord.get("/api/devices").await?;
    let ben = devices["devices"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["name"] == "Ben"))
        .context("Ben listed")?
        .clone();
    ensure!(ben["connections"] == 3, "three open sockets: {ben}");
    ensure!(
        ben["via"] == "pairing" && ben["address"] == "127.0.0.2",
        "{ben}"
    );
    ensure!(ben["role"] == "dealer" && ben["revoked"] == false, "{ben}");
    let id = ben["operator_id"].as_str().context("id")?.to_string();

    let t0 = Instant::now();
    let (s, v) = coord
        .post(&format!("/api/devices/{id}/revoke"), &json!({}))
        .await?;
    ensure!(s == 200 && v["revoked"] == true, "revoke: {s} {v}");
    ensure!(
        v.get("rotated_code").is_none(),
        "a paired device knew no long code: {v}"
    );
    let mut slowest = Duration::ZERO;
    for ws in &mut sockets {
        let (code, reason, at) = closed(ws, Duration::from_secs(1)).await?;
        ensure!(code == 1008, "close code {code} {reason}");
        ensure!(reason.contains("revoked"), "reason {reason}");
        slowest = slowest.max(at - t0);
    }
    println!("revoke → last of 3 sockets closed: {slowest:?}");
    ensure!(slowest < Duration::from_secs(1), "{slowest:?}");

    let (s, v) = dealer.get("/api/events").await?;
    ensure!(
        s == 401 && v["revoked"] == true,
        "token after revoke: {s} {v}"
    );
    let (s, v) = dealer
        .op(&event, &new_op_id(), json!({"type": "stats.entry"}))
        .await?;
    ensure!(s == 401 && v["revoked"] == true, "op after revoke: {s} {v}");
    let err = dealer
        .ws()
        .await
        .err()
        .context("a WebSocket after revoke")?;
    ensure!(err.to_string().contains("401"), "upgrade: {err}");

    let (s, v) = coord
        .post(
            &format!(
                "/api/devices/{}/revoke",
                devices["devices"]
                    .as_array()
                    .and_then(|d| d.iter().find(|d| d["name"] == "Ana"))
                    .context("Ana")?["operator_id"]
                    .as_str()
                    .context("id")?
            ),
            &json!({}),
        )
        .await?;
    ensure!(s == 400, "a coordinator cannot revoke itself: {s} {v}");

    // Ben paired, so no long code needs replacing; Dan joined with the
    // dealer code, which he knows: revoking him replaces it.
    let dan = server.login_from(DEALER, "Dan", ip("127.0.0.4")).await?;
    let (_, devices) = coord.get("/api/devices").await?;
    let dan_id = devices["devices"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["name"] == "Dan"))
        .and_then(|d| d["operator_id"].as_str())
        .context("Dan")?
        .to_string();
    let (s, v) = coord
        .post(&format!("/api/devices/{dan_id}/revoke"), &json!({}))
        .await?;
    ensure!(s == 200 && v["rotated_code"]["role"] == "dealer", "{s} {v}");
    let fresh = v["rotated_code"]["code"]
        .as_str()
        .context("new code")?
        .to_string();
    ensure!(fresh != DEALER);
    let (s, _, _) = server.try_login(DEALER, "Dan", ip("127.0.0.4")).await?;
    ensure!(s == 401, "the revoked device's code no longer joins: {s}");
    let (_, codes) = coord.get("/api/join-codes").await?;
    ensure!(
        codes["dealer"] == fresh.as_str() && codes["coordinator"] == COORD,
        "{codes}"
    );
    let newcomer = server.login_from(&fresh, "Fay", ip("127.0.0.5")).await?;
    ensure!(newcomer.role == "dealer");
    let (s, _) = dan.get("/api/events").await?;
    ensure!(s == 401);
    let (s, _) = newcomer.get("/api/join-codes").await?;
    ensure!(s == 403, "a dealer reads no join codes: {s}");

    // A restarted host still refuses it, and still says why.
    server.restart()?;
    let dealer = Http {
        base: format!("https://{}", server.addr),
        ..dealer
    };
    let (s, v) = dealer.get("/api/events").await?;
    ensure!(s == 401 && v["revoked"] == true, "after restart: {s} {v}");
    let coord = Http {
        base: format!("https://{}", server.addr),
        ..coord
    };
    let (_, devices) = coord.get("/api/devices").await?;
    ensure!(
        devices["devices"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["name"] == "Ben" && d["revoked"] == true)),
        "{devices}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_cool_one_address_down_and_many_withdraw_pairing() -> Result<()> {
    let server = TestServer::start(&[])?;
    let coord = server.login(COORD, "Ana").await?;
    let (s, _) = coord
        .post("/api/pairing", &json!({"role": "dealer"}))
        .await?;
    ensure!(s == 201);

    let guesser = ip("127.0.0.2");
    for i in 0..5 {
        let (s, v, _) = server
            .try_login(&format!("{:06}", 100_000 + i), "Guess", guesser)
            .await?;
        ensure!(
            s == 401 && v["error"] == "unauthorized",
            "guess {i}: {s} {v}"
        );
    }
    // Cooling down: even the right code is refused, with when to come back.
    let client = server
        .pin
        .http_client(reqwest::Client::builder().local_address(guesser))?;
    let r = client
        .post(server.url("/api/session"))
        .json(&json!({"join_code": DEALER, "name": "Guess"}))
        .send()
        .await?;
    ensure!(r.status() == 429, "cool-down: {}", r.status());
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .context("Retry-After")?;
    let v: Value = r.json().await?;
    ensure!(v["error"] == "rate_limited", "{v}");
    let ms = v["retry_after_ms"].as_u64().context("retry_after_ms")?;
    ensure!(
        (290_000..=300_000).contains(&ms) && retry == ms.div_ceil(1000),
        "{ms} {retry}"
    );

    // Another device is not affected.
    let t = Instant::now();
    let other = server.login_from(DEALER, "Cleo", ip("127.0.0.3")).await?;
    println!(
        "login from another address during the cool-down: {:?}",
        t.elapsed()
    );
    ensure!(other.role == "dealer");

    // Many addresses guessing: every pairing code is withdrawn.
    for a in 0..10u8 {
        let from = Some(IpAddr::from([127, 0, 1, a + 1]));
        for i in 0..5 {
            let (s, _, _) = server
                .try_login(
                    &format!("{:06}", 200_000 + u32::from(a) * 10 + i),
                    "Guess",
                    from,
                )
                .await?;
            ensure!(s == 401, "{s}");
        }
    }
    let (_, list) = coord.get("/api/pairing").await?;
    ensure!(
        list["codes"].as_array().is_some_and(Vec::is_empty),
        "withdrawn after 55 wrong codes venue-wide: {list}"
    );
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `n` ops at `every`, one at a time, each timed from send to ack.
async fn timed_ops(ws: &mut Ws, event: &str, n: usize, every: Duration) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let id = new_op_id();
        let t = Instant::now();
        ws.send(
            json!({"type": "op", "op_id": id, "event_id": event, "op": {"type": "stats.entry"}}),
        )
        .await?;
        loop {
            let v = ws.next().await?;
            if v["op_id"] == id.as_str() {
                ensure!(v["type"] == "ack", "the other client's op was refused: {v}");
                break;
            }
        }
        out.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(every).await;
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_throttled_while_another_keeps_its_latency() -> Result<()> {
    let server = TestServer::start(&["--synchronous", "normal"])?;
    let coord = server.login(COORD, "Ana").await?;
    let event = server.long_event(&coord, "Flood").await?;
    let flooder = server.login_from(DEALER, "Flood", ip("127.0.0.2")).await?;
    let calm = server.login_from(DEALER, "Calm", ip("127.0.0.3")).await?;
    let mut calm_ws = calm.ws().await?;
    let every = Duration::from_millis(50);
    let mut quiet = timed_ops(&mut calm_ws, &event, 40, every).await?;

    let ws = flooder.ws().await?;
    let (mut sink, mut stream) = ws.stream.split();
    let flood = Duration::from_secs(3);
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let (mut acked, mut limited, mut without_wait) = (0u64, 0u64, 0u64);
        let mut last = Instant::now();
        while let Ok(Some(Ok(m))) =
            tokio::time::timeout(Duration::from_secs(2), stream.next()).await
        {
            let Message::Text(t) = m else { continue };
            last = Instant::now();
            let v: Value = serde_json::from_str(&t).unwrap_or_default();
            match (v["type"].as_str(), v["error"].as_str()) {
                (Some("ack"), _) => acked += 1,
                (Some("rejected"), Some("rate_limited")) => {
                    limited += 1;
                    if v["retry_after_ms"].as_u64().is_none() {
                        without_wait += 1;
                    }
                }
                _ => {}
            }
        }
        (acked, limited, without_wait, last)
    });
    let flood_event = event.clone();
    let writer = tokio::spawn(async move {
        use futures_util::SinkExt;
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < flood {
            let f = json!({"type": "op", "op_id": new_op_id(), "event_id": flood_event, "op": {"type": "stats.entry"}});
            if sink
                .send(Message::Text(f.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
            sent += 1;
        }
        (sent, sink)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut during = timed_ops(&mut calm_ws, &event, 40, every).await?;
    let (sent, _sink) = writer.await?;
    let (acked, limited, without_wait, last) = reader.await?;
    // The server answers its backlog after the flood stops; the bucket
    // refills meanwhile, so the bound runs to the last answer.
    let answered_for = (last - started).as_secs_f64();
    let (q, d) = (median(&mut quiet), median(&mut during));
    let p90 = |v: &[f64]| v[v.len() * 9 / 10];
    println!(
        "flood: {sent} ops sent in {flood:?} (answered within {answered_for:.2} s), {acked} applied, {limited} refused as rate_limited; \
         the other client's ack latency: median {q:.2} ms (p90 {:.2}) before, {d:.2} ms (p90 {:.2}) during",
        p90(&quiet),
        p90(&during)
    );
    ensure!(limited > 0, "the flood was not throttled");
    ensure!(
        without_wait == 0,
        "{without_wait} refusals did not say when to retry"
    );
    // The per-connection bucket: 200 at once, then 20 a second.
    let bound = 200.0 + 20.0 * (answered_for + 0.5);
    ensure!(
        (acked as f64) <= bound,
        "{acked} flood ops applied in {answered_for:.2} s (at most {bound:.0})"
    );
    ensure!(
        acked + limited == sent,
        "every flood op answered: {acked} + {limited} of {sent}"
    );
    let snap = coord.snapshot(&event).await?;
    ensure!(
        snap["state"]["stats"]["entries"].as_u64() == Some(acked + 80),
        "refused ops changed nothing: {} entries",
        snap["state"]["stats"]["entries"]
    );
    // "Normal latency": within a few milliseconds of the quiet figure on a
    // loaded 2-core machine running a debug build and the flood itself.
    ensure!(
        d <= q * 3.0 + 5.0,
        "the other client slowed from {q:.2} to {d:.2} ms"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_matches_a_scripted_run_op_for_op() -> Result<()> {
    let server = TestServer::start(&[])?;
    let ana = server.login(COORD, "Ana").await?;
    let event = server.long_event(&ana, "Audit").await?;
    // Ben pairs from table 7's laptop, whose name a prankster set to a
    // spreadsheet formula.
    let (_, code) = ana.post("/api/pairing", &json!({"role": "dealer"})).await?;
    let client = server
        .pin
        .http_client(reqwest::Client::builder().local_address(ip("127.0.0.2")))?;
    let v: Value = client
        .post(server.url("/api/session"))
        .json(&json!({"join_code": code["code"], "name": "Ben", "device": "=2+3"}))
        .send()
        .await?
        .json()
        .await?;
    let ben = Http {
        client,
        pin: server.pin.clone(),
        base: format!("https://{}", server.addr),
        token: v["token"].as_str().context("token")?.to_string(),
        role: "dealer".into(),
        local: ip("127.0.0.2"),
    };

    // (who, op, expected sentence)
    ana.op(&event, &new_op_id(), json!({"type": "clock.start"}))
        .await?;
    ana.op(&event, &new_op_id(), json!({"type": "clock.pause"}))
        .await?;
    ana.op(
        &event,
        &new_op_id(),
        json!({"type": "clock.adjust", "delta_ms": 300_000}),
    )
    .await?;
    ben.op(
        &event,
        &new_op_id(),
        json!({"type": "stats.entry", "count": 5}),
    )
    .await?;
    // An op from Ben's outbox: sent on a WebSocket that dropped before the
    // ack arrived, then sent again over HTTP with the same op id when the
    // app came back. It must be recorded once.
    let replayed = new_op_id();
    {
        let mut ws = ben.ws().await?;
        ws.send(json!({"type": "op", "op_id": replayed, "event_id": event, "op": {"type": "stats.bust", "count": 2}}))
            .await?;
        ws.next_of("ack").await?;
        drop(ws);
    }
    let (s, _) = ben
        .op(&event, &replayed, json!({"type": "stats.bust", "count": 2}))
        .await?;
    ensure!(s == 200, "replay answered: {s}");
    ben.op(&event, &new_op_id(), json!({"type": "incident.create", "table": "7", "kind": "misdeal", "severity": "medium", "note": "=HYPERLINK(\"x\")"}))
        .await?;
    let snap = ana.snapshot(&event).await?;
    let inc = &snap["state"]["incidents"][0];
    ana.op(&event, &new_op_id(), json!({"type": "incident.update", "incident_id": inc["id"], "base_version": inc["lock_version"], "status": "resolved"}))
        .await?;
    // Refused ops are not changes and are not in the trail.
    let (s, _) = ben
        .op(&event, &new_op_id(), json!({"type": "clock.start"}))
        .await?;
    ensure!(s == 403);
    let (s, _) = ana
        .op(&event, &new_op_id(), json!({"type": "clock.pause"}))
        .await?;
    ensure!(s == 409);

    let expected: [(&str, &str, &str, &str); 7] = [
        (
            "Ana",
            "Ana-laptop",
            "clock.start",
            "started the clock (level 1, 20:00:00 left)",
        ),
        (
            "Ana",
            "Ana-laptop",
            "clock.pause",
            "paused the clock (level 1, ",
        ),
        (
            "Ana",
            "Ana-laptop",
            "clock.adjust",
            "added 5:00 to level 1 (",
        ),
        (
            "Ben",
            "=2+3",
            "stats.entry",
            "added 5 entries (0 → 5 players)",
        ),
        (
            "Ben",
            "=2+3",
            "stats.bust",
            "reported 2 bust-outs (5 → 3 players)",
        ),
        (
            "Ben",
            "=2+3",
            "incident.create",
            "raised incident inc-1: misdeal at table 7 (medium severity)",
        ),
        (
            "Ana",
            "Ana-laptop",
            "incident.update",
            "updated incident inc-1: status open → resolved",
        ),
    ];
    let (s, trail) = ana.get(&format!("/api/events/{event}/audit")).await?;
    ensure!(s == 200, "{s} {trail}");
    let mut entries = trail["entries"].as_array().context("entries")?.clone();
    entries.reverse();
    ensure!(
        entries.len() == expected.len(),
        "{} entries for {} changes: {trail:#}",
        entries.len(),
        expected.len()
    );
    for (i, (e, (name, device, op, sentence))) in entries.iter().zip(expected).enumerate() {
        ensure!(e["seq"] == i as u64 + 1, "entry {i} seq {}", e["seq"]);
        ensure!(e["name"] == name && e["device"] == device, "entry {i}: {e}");
        ensure!(e["op"]["type"] == op, "entry {i}: {e}");
        let summary = e["summary"].as_str().unwrap_or_default();
        ensure!(
            summary.starts_with(sentence),
            "entry {i}: {summary:?}, want {sentence:?}"
        );
        let address = if name == "Ben" {
            "127.0.0.2"
        } else {
            "127.0.0.1"
        };
        ensure!(e["address"] == address, "entry {i}: {e}");
        ensure!(e["at_ms"].as_i64().is_some_and(|t| t > 0));
    }
    ensure!(entries[4]["op_id"] == replayed.as_str());
    ensure!(entries[4]["before"]["stats"]["players_remaining"] == 5);
    ensure!(entries[4]["after"]["stats"]["players_remaining"] == 3);
    ensure!(entries[6]["before"]["incident"]["status"] == "open");
    ensure!(entries[6]["after"]["incident"]["status"] == "resolved");

    let (_, one) = ana
        .get(&format!("/api/events/{event}/audit?incident_id=inc-1"))
        .await?;
    let kinds: Vec<&str> = one["entries"]
        .as_array()
        .context("entries")?
        .iter()
        .filter_map(|e| e["op"]["type"].as_str())
        .collect();
    ensure!(kinds == ["incident.update", "incident.create"], "{kinds:?}");

    let r = ana
        .client
        .get(server.url(&format!("/api/events/{event}/audit.csv")))
        .bearer_auth(&ana.token)
        .send()
        .await?;
    ensure!(r.status() == 200);
    ensure!(r.headers()["content-type"]
        .to_str()?
        .starts_with("text/csv"));
    let csv = r.text().await?;
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    ensure!(lines.len() == 1 + expected.len(), "{csv}");
    ensure!(lines[0].starts_with("seq,time_utc,at_ms,name,device,role,address"));
    ensure!(
        lines[4].contains(",\"'=2+3\","),
        "formula defused: {}",
        lines[4]
    );
    ensure!(!csv.contains(",=2+3"), "no live formula: {csv}");
    let (s, _) = ben.get(&format!("/api/events/{event}/audit")).await?;
    ensure!(s == 403, "a dealer reads no audit trail: {s}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_per_address_are_capped() -> Result<()> {
    let server = TestServer::start(&["--max-connections-per-address", "3"])?;
    let a = server.login_from(DEALER, "A", ip("127.0.0.2")).await?;
    let b = server.login_from(DEALER, "B", ip("127.0.0.3")).await?;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(a.ws().await?);
    }
    let err = a.ws().await.err().context("a fourth socket")?;
    ensure!(err.to_string().contains("429"), "{err}");
    let mut other = b.ws().await?;
    other.ping().await?;
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = a.ws().await?;
    again.ping().await?;
    for ws in &mut open {
        ws.ping().await?;
    }
    Ok(())
}

/// How many WebSockets the server holds open, as its health answer says.
async fn open_websockets(http: &Http) -> Result<u64> {
    let (s, v) = http.get("/api/health").await?;
    ensure!(s == 200, "health: {s} {v}");
    v["websockets"].as_u64().context("websockets")
}

/// An event whose snapshot is ~45 KB (150 levels with long notes): a few
/// dozen unread snapshots fill a socket's buffers.
async fn event_with_big_snapshots(server: &TestServer, coord: &Http, name: &str) -> Result<String> {
    let event = server.long_event(coord, name).await?;
    let levels: Vec<Value> = (0..150)
        .map(|i| {
            json!({"kind": "level", "small_blind": 100 + i, "big_blind": 200 + 2 * i,
                   "duration_ms": 600_000, "note": "n".repeat(200)})
        })
        .collect();
    let (s, v) = coord
        .op(
            &event,
            &new_op_id(),
            json!({"type": "structure.update", "base_version": 1, "levels": levels}),
        )
        .await?;
    ensure!(s == 200, "structure: {s} {v}");
    Ok(event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_that_stopped_reading_is_cut_off_and_its_later_ops_are_refused(
) -> Result<()> {
    let server = TestServer::start(&["--no-limits"])?;
    let coord = server.login(COORD, "Ana").await?;
    let event = event_with_big_snapshots(&server, &coord, "Stalled").await?;
    let entries_before = coord.snapshot(&event).await?["state"]["stats"]["entries"].clone();

    let dealer = server.login(DEALER, "Ben").await?;
    let mut ws = dealer.ws().await?;
    // Subscribes and unsubscribes, never reading: every snapshot waits in
    // the server's queue and the kernel's buffers.
    for _ in 0..300 {
        ws.send(json!({"type": "subscribe", "event_id": event, "after": null}))
            .await?;
        ws.send(json!({"type": "unsubscribe", "event_id": event}))
            .await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(
        open_websockets(&coord).await? == 1,
        "the dealer's socket is open"
    );

    let (_, devices) = coord.get("/api/devices").await?;
    let id = devices["devices"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["name"] == "Ben"))
        .and_then(|d| d["operator_id"].as_str())
        .context("Ben listed")?
        .to_string();
    let t0 = Instant::now();
    let (s, v) = coord
        .post(&format!("/api/devices/{id}/revoke"), &json!({}))
        .await?;
    ensure!(s == 200 && v["revoked"] == true, "revoke: {s} {v}");
    // The same socket goes on sending ops, as a stolen laptop would.
    let sender = tokio::spawn(async move {
        for _ in 0..40 {
            let op = json!({"type": "op", "op_id": new_op_id(), "event_id": "x", "op": {"type": "stats.entry"}});
            let op = op.to_string().replace("\"x\"", &format!("\"{event}\""));
            if ws.send_text(op).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        event
    });
    let mut gone_after = None;
    while t0.elapsed() < Duration::from_secs(3) {
        if open_websockets(&coord).await? == 0 {
            gone_after = Some(t0.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let event = sender.await?;
    println!("revoke → stalled socket closed after {gone_after:?}");
    let gone_after =
        gone_after.context("the revoked socket was still open 3 s after the revoke")?;
    ensure!(
        gone_after < Duration::from_secs(1),
        "the revoked socket took {gone_after:?} to close"
    );
    let entries_after = coord.snapshot(&event).await?["state"]["stats"]["entries"].clone();
    ensure!(
        entries_after == entries_before,
        "ops of a revoked device were applied: entries {entries_before} -> {entries_after}"
    );
    Ok(())
}

/// The server's resident memory, from the kernel's account of its process.
fn rss_bytes(server: &TestServer) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("VmRSS")?;
    Ok(kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_asking_for_catch_up_after_catch_up_without_reading_is_cut_off() -> Result<()> {
    let server = TestServer::start(&["--no-limits"])?;
    let coord = server.login(COORD, "Ana").await?;
    let event = event_with_big_snapshots(&server, &coord, "Flood").await?;
    let before = rss_bytes(&server)?;

    // Another dealer works the floor meanwhile.
    let dealer = server.login(DEALER, "Ben").await?;
    let worker = {
        let dealer = dealer.clone();
        let event = event.clone();
        tokio::spawn(async move {
            let mut took = Vec::new();
            for _ in 0..40 {
                let t = Instant::now();
                let (s, v) = dealer
                    .op(&event, &new_op_id(), json!({"type": "stats.entry"}))
                    .await?;
                ensure!(s == 200, "entry: {s} {v}");
                took.push(t.elapsed());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            anyhow::Ok(took)
        })
    };
    // 2,000 snapshots of ~45 KB asked for and none read: ~90 MB if each
    // were kept.
    let flooder = server.login(DEALER, "Eve").await?;
    let mut ws = flooder.ws().await?;
    let mut sent = 0;
    for _ in 0..2000 {
        let sub = json!({"type": "subscribe", "event_id": event, "after": null});
        let unsub = json!({"type": "unsubscribe", "event_id": event});
        if ws.send(sub).await.is_err() || ws.send(unsub).await.is_err() {
            break;
        }
        sent += 1;
    }
    // The server reads the flood at its own pace: watch it until the
    // flooding socket is gone (or 15 s), keeping the most it grew.
    let mut grown = 0;
    let mut cut_off = false;
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(15) {
        grown = grown.max(rss_bytes(&server)?.saturating_sub(before));
        if open_websockets(&coord).await? == 0 {
            cut_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut took = worker.await??;
    took.sort();
    let p99 = took[took.len() * 99 / 100 - 1];
    println!(
        "flood of {sent} subscribe pairs: server grew {} KiB; the other dealer's op p99 {p99:?}",
        grown / 1024
    );
    // Catch-ups are capped at 4 MiB a connection; with only the queue's
    // 1,024 items as a bound, this flood held ~24 MiB before the socket was
    // cut, 10 s later.
    ensure!(
        grown < 16 * 1024 * 1024,
        "the server grew {grown} bytes for one socket's unread catch-ups"
    );
    ensure!(cut_off, "the flooding socket was still open after 15 s");
    ensure!(
        p99 < Duration::from_millis(250),
        "the other dealer's ops: p99 {p99:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_or_a_foreign_name_cannot_use_the_server_nor_lock_out_its_devices() -> Result<()>
{
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::start(&[])?;
    let url = server.url("/api/session");
    let http = server.http_client()?;
    let wrong = json!({"join_code": "WRONG-0000", "name": "Eve"}).to_string();
    // More wrong codes than the cool-down allows, three ways a page could
    // send them; none reaches the login, so none counts.
    for _ in 0..6 {
        let r = http
            .post(&url)
            .header("origin", "http://evil.example")
            .header("content-type", "application/json")
            .body(wrong.clone())
            .send()
            .await?;
        ensure!(r.status() == 403, "foreign origin: {}", r.status());
        let r = http
            .post(&url)
            .header("content-type", "text/plain")
            .body(wrong.clone())
            .send()
            .await?;
        ensure!(r.status() == 415, "text/plain: {}", r.status());
        let r = http
            .post(&url)
            .header("host", "evil.example:7878")
            .header("content-type", "application/json")
            .body(wrong.clone())
            .send()
            .await?;
        ensure!(r.status() == 421, "foreign host: {}", r.status());
        let v: Value = r.json().await?;
        ensure!(v["error"] == "misdirected", "{v}");
    }
    // The app's own webview and the server's own name pass.
    let r = http
        .get(server.url("/api/health"))
        .header("origin", "tauri://localhost")
        .send()
        .await?;
    ensure!(r.status() == 200, "the app's origin: {}", r.status());
    let coord = server.login(COORD, "Ana").await?;
    ensure!(coord.role == "coordinator", "the real device still joins");

    // A page's WebSocket, even with a stolen token, is refused at the upgrade.
    let mut req = format!(
        "{}/ws",
        server
            .url("")
            .replace("https://", "wss://")
            .trim_end_matches('/')
    )
    .into_client_request()?;
    req.headers_mut()
        .insert("origin", "http://evil.example".parse()?);
    req.headers_mut()
        .insert("authorization", format!("Bearer {}", coord.token).parse()?);
    match server.pin.websocket(req, None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            ensure!(resp.status() == 403, "upgrade: {}", resp.status())
        }
        Ok(_) => bail!("a foreign page opened a WebSocket"),
        Err(e) => bail!("upgrade: {e}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_capped_per_address_and_closed_within_10_s() -> Result<()> {
    use tokio::io::AsyncReadExt;
    let server = TestServer::start(&[])?;
    let addr: std::net::SocketAddr = server.addr.parse()?;
    // A stranger opens 300 connections and says nothing on any of them.
    let opened = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(tokio::net::TcpStream::connect(addr).await?);
    }
    // Another address is served meanwhile.
    let other = server.login_from(DEALER, "Ben", ip("127.0.0.2")).await?;
    let (s, _) = other.get("/api/events").await?;
    ensure!(
        s == 200,
        "another address while the stranger holds its connections: {s}"
    );
    // Every one of them is closed by the server: past the per-address cap at
    // once, the rest when they have said nothing for 10 s.
    let deadline = tokio::time::Instant::from_std(opened + Duration::from_secs(13));
    let watchers: Vec<_> = idle
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut byte = [0u8; 1];
                match tokio::time::timeout_at(deadline, c.read(&mut byte)).await {
                    Ok(Ok(0) | Err(_)) => Ok(opened.elapsed()),
                    Ok(Ok(_)) => {
                        Err("the server sent something to a connection that asked nothing")
                    }
                    Err(_) => Err("a silent connection was still open 13 s after it was opened"),
                }
            })
        })
        .collect();
    let mut closed_at = Vec::new();
    for w in watchers {
        closed_at.push(w.await?.map_err(anyhow::Error::msg)?);
    }
    let at_once = closed_at
        .iter()
        .filter(|t| **t < Duration::from_secs(5))
        .count();
    println!(
        "300 silent connections: {at_once} closed at once (past the cap), the rest by {:?}",
        closed_at.iter().max()
    );
    ensure!(
        at_once >= 300 - 128,
        "only {at_once} were refused past the cap of 128"
    );
    // Their address may connect again once they are gone.
    let back = server.login(DEALER, "Eve").await?;
    let (s, _) = back.get("/api/events").await?;
    ensure!(s == 200, "the address after its connections closed: {s}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_told_to_use_https_and_nothing_it_sent_is_taken() -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut server = TestServer::start(&[])?;
    // A script still on http:// sends a login, code and all, in clear.
    let mut tcp = tokio::net::TcpStream::connect(&server.addr).await?;
    let body = json!({"join_code": COORD, "name": "Script"}).to_string();
    let request = format!(
        "POST /api/session HTTP/1.1\r\nHost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        server.addr,
        body.len()
    );
    tcp.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut answer)).await??;
    ensure!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    ensure!(
        answer.contains("\"tls_required\"") && answer.contains("https://"),
        "{answer}"
    );
    // Nothing it sent was taken: no session was made from it.
    let coord = server.login(COORD, "Ana").await?;
    let (_, devices) = coord.get("/api/devices").await?;
    ensure!(!devices.to_string().contains("Script"), "{devices}");
    // The key devices pinned outlives a restart of the host.
    let key = server.pin.key();
    server.restart()?;
    ensure!(
        key.is_some() && server.pin.key() == key,
        "the key changed on restart"
    );
    let again = server.login(DEALER, "Ben").await?;
    ensure!(again.role == "dealer");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_exchanges_refuse_bad_input_and_codes_keep_distinct_slots() -> Result<()> {
    let server = TestServer::start(&[])?;
    let coord = server.login(COORD, "Ana").await?;
    let mut slots = std::collections::HashSet::new();
    for _ in 0..10 {
        let (s, v) = coord
            .post("/api/pairing", &json!({"role": "dealer"}))
            .await?;
        ensure!(s == 201, "{s} {v}");
        let code = v["code"].as_str().context("code")?.to_string();
        ensure!(
            slots.insert(code.as_bytes()[0]),
            "two codes share a first digit"
        );
    }
    let anon = Http {
        token: String::new(),
        ..coord.clone()
    };
    for (body, words) in [
        (json!({"slot": 12, "message": "00"}), "slot"),
        (json!({"slot": 1, "message": "not hex"}), "hex"),
        (json!({"slot": 1, "message": "0011"}), "message"),
        (json!({"slot": 1}), "message"),
    ] {
        let (s, v) = anon.post("/api/pairing/exchange", &body).await?;
        ensure!(
            s == 400
                && v["error"] == "invalid"
                && v["message"].as_str().is_some_and(|m| m.contains(words)),
            "{body}: {s} {v}"
        );
    }
    let (s, v) = anon
        .post(
            "/api/pairing/confirm",
            &json!({"exchange": "nope", "proof": "00", "name": "Eve"}),
        )
        .await?;
    ensure!(s == 401 && v["error"] == "unauthorized", "{s} {v}");
    // Nothing above made a session; the server still answers.
    let (_, devices) = coord.get("/api/devices").await?;
    ensure!(
        devices["devices"].as_array().is_some_and(|d| d.len() == 1),
        "{devices}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locking_the_venue_leaves_every_session_but_the_hosts_with_401_and_every_old_code_dead(
) -> Result<()> {
    let server = TestServer::start(&[])?;
    // The director on the host itself; a dealer, a wall and a second
    // coordinator elsewhere on the Wi-Fi; a pairing code still out.
    let host = server.login(COORD, "Ana").await?;
    let dealer = server.login_from(DEALER, "Dan", ip("127.0.0.2")).await?;
    let wall = server.login_from(DISPLAY, "Wall", ip("127.0.0.3")).await?;
    let remote = server.login_from(COORD, "Rex", ip("127.0.0.4")).await?;
    let (_, pairing) = host
        .post("/api/pairing", &json!({"role": "dealer"}))
        .await?;
    let mut ws = dealer.ws().await?;

    // A coordinator elsewhere reads no codes and cannot cut the host off.
    let (s, v) = remote.get("/api/join-codes").await?;
    ensure!(
        s == 403 && v["error"] == "forbidden",
        "remote join codes: {s} {v}"
    );
    let (_, devices) = host.get("/api/devices").await?;
    let host_id = devices["devices"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["name"] == "Ana"))
        .and_then(|d| d["operator_id"].as_str())
        .context("the host's device")?
        .to_string();
    let (s, v) = remote
        .post(&format!("/api/devices/{host_id}/revoke"), &json!({}))
        .await?;
    ensure!(s == 403, "a remote revoke of the host: {s} {v}");

    // That coordinator locks the venue (its code leaked, say).
    let (s, v) = remote.post("/api/lock", &json!({})).await?;
    ensure!(
        s == 200 && v["revoked"] == 3 && v["kept"] == 1,
        "lock: {s} {v}"
    );
    for (who, h) in [("dealer", &dealer), ("wall", &wall), ("remote", &remote)] {
        let (s, v) = h.get("/api/events").await?;
        ensure!(
            s == 401 && v["revoked"] == true,
            "{who} after the lock: {s} {v}"
        );
    }
    // The dealer's open socket is closed.
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match ws.stream.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)))
                | None
                | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    ensure!(closed.is_ok(), "the dealer's WebSocket stayed open");
    let (s, _) = host.get("/api/events").await?;
    ensure!(s == 200, "the host's own session survives the lock");

    // No old code joins: not the long ones, not the pairing code.
    for code in [
        COORD,
        DEALER,
        DISPLAY,
        pairing["code"].as_str().context("code")?,
    ] {
        let (s, v, _) = server.try_login(code, "Late", ip("127.0.0.5")).await?;
        ensure!(s == 401, "{code} still joins after the lock: {s} {v}");
    }
    // The new ones, read on the host, do.
    let (s, codes) = host.get("/api/join-codes").await?;
    ensure!(s == 200, "{codes}");
    let new_dealer = codes["dealer"].as_str().context("dealer code")?.to_string();
    ensure!(new_dealer != DEALER);
    let (s, v, _) = server
        .try_login(&new_dealer, "Dan", ip("127.0.0.2"))
        .await?;
    ensure!(
        s == 200 && v["role"] == "dealer",
        "the new dealer code: {s} {v}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_unused_past_the_venues_limit_expires_and_one_in_use_does_not() -> Result<()> {
    let server = TestServer::start(&["--session-idle-secs", "2"])?;
    let busy = server.login(DEALER, "Dan").await?;
    let idle = server.login(DEALER, "Lent laptop").await?;
    // Dan's screen calls every second; the lent laptop stays in a drawer.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        let (s, v) = busy.get("/api/events").await?;
        ensure!(s == 200, "a session in use expired: {s} {v}");
    }
    let (s, v) = idle.get("/api/events").await?;
    ensure!(
        s == 401
            && v["error"] == "unauthorized"
            && v["revoked"].is_null()
            && v["message"].as_str().is_some_and(|m| m.contains("expired")),
        "an idle session: {s} {v}"
    );
    // Its device joins again with its code, as the app does on its own.
    let again = server.login(DEALER, "Lent laptop").await?;
    let (s, _) = again.get("/api/events").await?;
    ensure!(s == 200);
    Ok(())
}
