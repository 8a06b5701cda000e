//! Concurrency on a real server over real sockets: the races from the field.

use anyhow::{ensure, Result};
use pitboss_core::clock::position;
use pitboss_core::{ClockState, Structure};
use serde_json::{json, Value};

use crate::common::*;

const CLIENTS: usize = 10;
const PER_CLIENT: usize = 20;

/// The storms' clients all pipeline from 127.0.0.1, where a venue would have
/// one device per address: with the abuse limits on, the second storm of a
/// test can run into the address's bucket (timing-dependent). These tests
/// are about concurrent writes; the limits are tested in `trust.rs`.
const UNLIMITED: &[&str] = &["--no-limits"];

/// Each of `CLIENTS` connections pipelines `PER_CLIENT` copies of `op` at
/// once; returns how many were acknowledged and how many rejected.
async fn storm(http: &Http, event: &str, op: Value) -> Result<(usize, usize)> {
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let mut ws = http.ws().await?;
        let event = event.to_string();
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..PER_CLIENT {
                ws.send(json!({"type": "op", "op_id": new_op_id(), "event_id": event, "op": op}))
                    .await?;
            }
            let (mut acked, mut rejected) = (0, 0);
            while acked + rejected < PER_CLIENT {
                let v = ws.next().await?;
                match v["type"].as_str() {
                    Some("ack") => acked += 1,
                    Some("rejected") => rejected += 1,
                    _ => {}
                }
            }
            anyhow::Ok((acked, rejected))
        }));
    }
    let (mut a, mut r) = (0, 0);
    for t in tasks {
        let (x, y) = t.await??;
        a += x;
        r += y;
    }
    Ok((a, r))
}

fn clock_of(snapshot: &Value) -> Result<(ClockState, Structure)> {
    Ok((
        serde_json::from_value(snapshot["state"]["clock"].clone())?,
        serde_json::from_value(snapshot["state"]["structure"].clone())?,
    ))
}

#[tokio::test]
async fn concurrent_adjustments_are_never_lost() -> Result<()> {
    let server = TestServer::start(UNLIMITED)?;
    let http = server.login(COORD, "Ana").await?;
    let event = server.long_event(&http, "Race").await?;
    let before = http.snapshot(&event).await?;

    let (acked, rejected) = storm(
        &http,
        &event,
        json!({"type": "clock.adjust", "delta_ms": 60_000}),
    )
    .await?;
    ensure!(
        acked == CLIENTS * PER_CLIENT && rejected == 0,
        "acked {acked}, rejected {rejected}"
    );
    let after = http.snapshot(&event).await?;
    let moved = after["state"]["clock"]["remaining_ms"]
        .as_i64()
        .unwrap_or(0)
        - before["state"]["clock"]["remaining_ms"]
            .as_i64()
            .unwrap_or(0);
    ensure!(
        moved == 200 * 60_000,
        "the clock moved by {moved} ms, not 200 minutes"
    );

    let (acked, _) = storm(
        &http,
        &event,
        json!({"type": "clock.adjust", "delta_ms": -60_000}),
    )
    .await?;
    ensure!(acked == CLIENTS * PER_CLIENT);
    let back = http.snapshot(&event).await?;
    ensure!(
        back["state"]["clock"]["remaining_ms"] == before["state"]["clock"]["remaining_ms"],
        "after +200 and -200 minutes: {} vs {}",
        back["state"]["clock"]["remaining_ms"],
        before["state"]["clock"]["remaining_ms"]
    );
    ensure!(back["seq"].as_u64() == Some(400), "seq {}", back["seq"]);
    Ok(())
}

#[tokio::test]
async fn concurrent_adjustments_of_a_running_clock_are_never_lost() -> Result<()> {
    let server = TestServer::start(UNLIMITED)?;
    let http = server.login(COORD, "Ana").await?;
    let event = server.long_event(&http, "Race running").await?;
    let (s, v) = http
        .op(&event, &new_op_id(), json!({"type": "clock.start"}))
        .await?;
    ensure!(s == 200, "{v}");
    let before = http.snapshot(&event).await?;
    let (acked, _) = storm(
        &http,
        &event,
        json!({"type": "clock.adjust", "delta_ms": -60_000}),
    )
    .await?;
    ensure!(acked == CLIENTS * PER_CLIENT);
    let after = http.snapshot(&event).await?;
    // Compare both clocks at one instant: the running time cancels out.
    let t = after["server_time_ms"].as_i64().unwrap_or(0);
    let (c0, s0) = clock_of(&before)?;
    let (c1, s1) = clock_of(&after)?;
    let p0 = position(&c0, &s0, t);
    let p1 = position(&c1, &s1, t);
    ensure!(p0.level_index == 0 && p1.level_index == 0);
    ensure!(
        p0.remaining_ms - p1.remaining_ms == 200 * 60_000,
        "moved by {} ms",
        p0.remaining_ms - p1.remaining_ms
    );
    ensure!(p1.running);
    Ok(())
}

#[tokio::test]
async fn concurrent_busts_match_the_acknowledged_count_and_never_go_below_zero() -> Result<()> {
    let server = TestServer::start(UNLIMITED)?;
    let http = server.login(COORD, "Ana").await?;
    let dealer = server.login(DEALER, "Ben").await?;
    let event = server.long_event(&http, "Busts").await?;
    let (s, _) = http
        .op(
            &event,
            &new_op_id(),
            json!({"type": "stats.entry", "count": 150}),
        )
        .await?;
    ensure!(s == 200);

    // 200 busts at 150 players: exactly 150 are accepted, the rest refused.
    let (acked, rejected) = storm(&dealer, &event, json!({"type": "stats.bust"})).await?;
    let st = http.snapshot(&event).await?;
    let remaining = st["state"]["stats"]["players_remaining"]
        .as_u64()
        .unwrap_or(999);
    ensure!(
        acked == 150 && rejected == 50,
        "acked {acked} rejected {rejected}"
    );
    ensure!(remaining == 0, "players remaining {remaining}");
    ensure!(st["state"]["stats"]["entries"] == 150);

    // And below the limit every bust counts.
    let (s, _) = http
        .op(
            &event,
            &new_op_id(),
            json!({"type": "stats.entry", "count": 500}),
        )
        .await?;
    ensure!(s == 200);
    let (acked, rejected) =
        storm(&dealer, &event, json!({"type": "stats.bust", "count": 2})).await?;
    let st = http.snapshot(&event).await?;
    ensure!(acked == 200 && rejected == 0);
    ensure!(
        st["state"]["stats"]["players_remaining"] == 100,
        "{}",
        st["state"]["stats"]
    );
    Ok(())
}

#[tokio::test]
async fn two_edits_of_one_incident_version_give_one_win_and_one_conflict() -> Result<()> {
    let server = TestServer::start(UNLIMITED)?;
    let ana = server.login(COORD, "Ana").await?;
    let ben = server.login(DEALER, "Ben").await?;
    let event = server.long_event(&ana, "Incidents").await?;
    let (s, created) = ben
        .op(&event, &new_op_id(), json!({"type": "incident.create", "table": "12", "kind": "misdeal", "severity": "medium", "note": "two cards exposed"}))
        .await?;
    ensure!(s == 200, "{created}");
    let id = created["result"]["incident"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    for round in 0..10 {
        let snap = ana.snapshot(&event).await?;
        let base = snap["state"]["incidents"][0]["lock_version"]
            .as_u64()
            .unwrap_or(0);
        let (ida, idb) = (new_op_id(), new_op_id());
        let a = ana.op(&event, &ida, json!({"type": "incident.update", "incident_id": id, "base_version": base, "note": format!("Ana {round}"), "severity": "high"}));
        let b = ben.op(&event, &idb, json!({"type": "incident.update", "incident_id": id, "base_version": base, "note": format!("Ben {round}")}));
        let ((sa, va), (sb, vb)) = tokio::try_join!(a, b)?;
        let mut statuses = [sa, sb];
        statuses.sort();
        ensure!(
            statuses == [200, 409],
            "round {round}: {sa} {va} / {sb} {vb}"
        );
        let (winner, loser) = if sa == 200 { (&va, &vb) } else { (&vb, &va) };
        ensure!(loser["error"] == "conflict");
        let current = &loser["current"];
        ensure!(
            current["lock_version"].as_u64() == Some(base + 1),
            "current: {current}"
        );
        ensure!(
            current["note"] == winner["result"]["incident"]["note"],
            "current is the winner's record"
        );
        // Nothing merged: the stored record is exactly the winner's.
        let after = ana.snapshot(&event).await?;
        ensure!(
            after["state"]["incidents"][0] == winner["result"]["incident"],
            "stored {}",
            after["state"]["incidents"][0]
        );
    }
    Ok(())
}
