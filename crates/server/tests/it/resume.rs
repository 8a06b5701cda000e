//! Subscriptions: resume from a seq with no gap and no duplicate, snapshot
//! past retention, and nothing from other events.

use anyhow::{ensure, Result};
use serde_json::json;

use crate::common::*;

fn seqs(frames: &[serde_json::Value]) -> Vec<u64> {
    frames
        .iter()
        .filter(|f| f["type"] == "change")
        .filter_map(|f| f["seq"].as_u64())
        .collect()
}

#[tokio::test]
async fn a_resume_gets_exactly_the_missed_changes_then_live_ones() -> Result<()> {
    let server = TestServer::start(&[])?;
    let http = server.login(COORD, "Ana").await?;
    let event = server.long_event(&http, "Resume").await?;
    for _ in 0..10 {
        http.op(&event, &new_op_id(), json!({"type": "stats.entry"}))
            .await?;
    }

    let mut ws = http.ws().await?;
    let frames = ws.subscribe(&event, Some(4)).await?;
    ensure!(
        seqs(&frames) == (5..=10).collect::<Vec<_>>(),
        "replayed {:?}",
        seqs(&frames)
    );
    ensure!(frames.iter().all(|f| f["type"] != "snapshot"));
    ensure!(frames.last().map(|f| f["seq"].as_u64()) == Some(Some(10)));
    // Each replayed change carries the records it touched.
    ensure!(frames[0]["stats"]["entries"] == 5, "{}", frames[0]);
    ensure!(frames[0]["by"]["name"] == "Ana" && frames[0]["op_id"].is_string());

    // Live changes follow in order, while a writer hammers the event.
    let writer = http.clone();
    let ev = event.clone();
    let burst = tokio::spawn(async move {
        for _ in 0..50 {
            writer
                .op(&ev, &new_op_id(), json!({"type": "stats.rebuy"}))
                .await?;
        }
        anyhow::Ok(())
    });
    // Meanwhile a second subscriber joins mid-burst from seq 10.
    let mut late = http.ws().await?;
    let mut late_seen = seqs(&late.subscribe(&event, Some(10)).await?);
    burst.await??;
    let mut seen = Vec::new();
    while seen.len() < 50 {
        let f = ws.next_of("change").await?;
        seen.push(f["seq"].as_u64().unwrap_or(0));
    }
    ensure!(seen == (11..=60).collect::<Vec<_>>(), "live {seen:?}");
    while late_seen.last() != Some(&60) {
        let f = late.next_of("change").await?;
        late_seen.push(f["seq"].as_u64().unwrap_or(0));
    }
    ensure!(
        late_seen == (11..=60).collect::<Vec<_>>(),
        "mid-burst subscriber saw {late_seen:?}"
    );

    // HTTP /changes gives the same objects.
    let (s, v) = http
        .get(&format!("/api/events/{event}/changes?after=58"))
        .await?;
    ensure!(s == 200);
    let changes = v["changes"].as_array().cloned().unwrap_or_default();
    ensure!(seqs(&changes) == vec![59, 60]);
    ensure!(changes[1]["stats"]["rebuys"] == 50);

    // A fresh subscriber (after: null) gets a snapshot at the current seq.
    let mut fresh = http.ws().await?;
    let frames = fresh.subscribe(&event, None).await?;
    ensure!(
        frames[0]["type"] == "snapshot" && frames[0]["seq"] == 60,
        "{}",
        frames[0]
    );
    ensure!(frames[0]["state"]["stats"]["rebuys"] == 50);
    Ok(())
}

#[tokio::test]
async fn a_resume_past_retention_gets_a_snapshot() -> Result<()> {
    let server = TestServer::start(&["--retention", "5"])?;
    let http = server.login(COORD, "Ana").await?;
    let event = server.long_event(&http, "Retention").await?;
    for _ in 0..30 {
        http.op(&event, &new_op_id(), json!({"type": "stats.entry"}))
            .await?;
    }
    let mut ws = http.ws().await?;
    let frames = ws.subscribe(&event, Some(1)).await?;
    ensure!(
        frames.len() == 2 && frames[0]["type"] == "snapshot",
        "{frames:?}"
    );
    ensure!(frames[0]["seq"] == 30 && frames[0]["state"]["stats"]["entries"] == 30);
    let (s, v) = http
        .get(&format!("/api/events/{event}/changes?after=1"))
        .await?;
    ensure!(s == 410 && v["error"] == "gone", "{s} {v}");
    // The most recent changes are still kept for a resume.
    let frames = ws.subscribe(&event, Some(27)).await?;
    ensure!(seqs(&frames) == vec![28, 29, 30], "{frames:?}");
    // A client that is ahead of the server (restored from another store)
    // gets a snapshot, not silence.
    let frames = ws.subscribe(&event, Some(1000)).await?;
    ensure!(frames[0]["type"] == "snapshot" && frames[0]["seq"] == 30);
    Ok(())
}

#[tokio::test]
async fn a_subscriber_of_one_event_receives_nothing_of_another() -> Result<()> {
    let server = TestServer::start(&[])?;
    let http = server.login(COORD, "Ana").await?;
    let a = server.long_event(&http, "Event A").await?;
    let b = server.long_event(&http, "Event B").await?;
    let mut ws = http.ws().await?;
    ws.subscribe(&a, None).await?;
    for _ in 0..5 {
        http.op(&b, &new_op_id(), json!({"type": "stats.entry"}))
            .await?;
        http.op(
            &b,
            &new_op_id(),
            json!({"type": "incident.create", "table": "3", "kind": "dispute", "severity": "low"}),
        )
        .await?;
    }
    // A marker on A: everything before it on this socket must be A's.
    http.op(&a, &new_op_id(), json!({"type": "stats.addon"}))
        .await?;
    let f = ws.next().await?;
    ensure!(
        f["type"] == "change" && f["event_id"] == a.as_str() && f["seq"] == 1,
        "got {f}"
    );
    ensure!(ws.quiet_for(300).await?.is_none());

    // After unsubscribing, A's changes stop too.
    ws.send(json!({"type": "unsubscribe", "event_id": a}))
        .await?;
    ensure!(ws.next().await?["type"] == "unsubscribed");
    http.op(&a, &new_op_id(), json!({"type": "stats.addon"}))
        .await?;
    ensure!(ws.quiet_for(300).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn the_sender_receives_its_own_change_and_its_ack_once_each() -> Result<()> {
    let server = TestServer::start(&[])?;
    let http = server.login(COORD, "Ana").await?;
    let event = server.long_event(&http, "Own").await?;
    let mut ws = http.ws().await?;
    ws.subscribe(&event, None).await?;
    ws.send(
        json!({"type": "op", "op_id": "own-1", "event_id": event, "op": {"type": "clock.start"}}),
    )
    .await?;
    let (x, y) = (ws.next().await?, ws.next().await?);
    let mut kinds = [
        x["type"].as_str().unwrap_or(""),
        y["type"].as_str().unwrap_or(""),
    ];
    kinds.sort();
    ensure!(kinds == ["ack", "change"], "{x} {y}");
    ensure!(x["seq"] == y["seq"] && x["op_id"] == "own-1" && y["op_id"] == "own-1");
    ensure!(ws.quiet_for(300).await?.is_none());
    Ok(())
}
