//! Durability: `kill -9` in the middle of a burst loses no acknowledged op,
//! and the store stays consistent.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn kill_9_mid_burst_keeps_every_acknowledged_op() -> Result<()> {
    // Every change of the burst must stay in the log for the checks below:
    // a retention far above what 0.7 s of pipelined ops can reach (since
    // TCP_NODELAY, more than the default 10,000). No rate limits: four
    // pipelining sockets from one address are the load this test is about,
    // and the per-address op limit would cap the burst at a few hundred.
    let mut server = TestServer::start(&["--retention", "1000000", "--no-limits"])?;
    let http = server.login(COORD, "Ana").await?;
    let event = server.long_event(&http, "Crash").await?;

    // Four connections pipeline entries as fast as they can; each records
    // the op ids the server acknowledged before it died.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut ws = http.ws().await?;
        let event = event.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut sent = 0;
            loop {
                if sent - acked.len() < 50 {
                    let id = new_op_id();
                    let frame = json!({"type": "op", "op_id": id, "event_id": event, "op": {"type": "stats.entry"}});
                    if ws.send(frame).await.is_err() {
                        break;
                    }
                    sent += 1;
                    continue;
                }
                match ws.next_timeout(5).await {
                    Ok(v) if v["type"] == "ack" => acked.push(v["op_id"].as_str().unwrap_or_default().to_string()),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.kill9()?;
    let mut acked: HashSet<String> = HashSet::new();
    for t in tasks {
        acked.extend(t.await?);
    }
    ensure!(
        acked.len() > 100,
        "only {} ops were acknowledged before the kill",
        acked.len()
    );

    server.restart()?;
    let http = server.login(COORD, "Ana").await?;
    let snap = http.snapshot(&event).await?;
    let entries = snap["state"]["stats"]["entries"]
        .as_u64()
        .context("entries")?;
    let seq = snap["seq"].as_u64().context("seq")?;
    ensure!(
        entries >= acked.len() as u64,
        "{entries} entries stored, {} acknowledged",
        acked.len()
    );
    ensure!(
        entries == seq,
        "every stored change is one entry: entries {entries}, seq {seq}"
    );

    // Every acknowledged op id is in the change log, exactly once.
    let (_, v) = http
        .get(&format!("/api/events/{event}/changes?after=0"))
        .await?;
    let logged: Vec<String> = v["changes"]
        .as_array()
        .context("changes")?
        .iter()
        .map(|c| c["op_id"].as_str().unwrap_or_default().to_string())
        .collect();
    let unique: HashSet<&String> = logged.iter().collect();
    ensure!(
        unique.len() == logged.len(),
        "an op id appears twice in the log"
    );
    for id in &acked {
        ensure!(
            unique.contains(id),
            "acknowledged op {id} is missing after the crash"
        );
    }
    // A retry of an acknowledged op changes nothing.
    let id = acked.iter().next().context("one op")?;
    let (s, _) = http.op(&event, id, json!({"type": "stats.entry"})).await?;
    ensure!(s == 200);
    ensure!(http.snapshot(&event).await?["state"]["stats"]["entries"].as_u64() == Some(entries));

    server.kill9()?;
    let conn = rusqlite::Connection::open(server.data.join("pitboss.db"))?;
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    ensure!(check == "ok", "integrity_check: {check}");
    Ok(())
}

#[tokio::test]
async fn sigterm_closes_sockets_with_going_away_and_exits_cleanly() -> Result<()> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let mut server = TestServer::start(&["--demo"])?;
    let http = server.login(DEALER, "Ben").await?;
    let event = server.demo_event.clone().context("demo event")?;
    let mut ws = http.ws().await?;
    ws.subscribe(&event, None).await?;
    let pid = server.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()?;
    ensure!(status.success());
    let frame = tokio::time::timeout(Duration::from_secs(5), ws.stream.next())
        .await
        .context("no close frame")?
        .context("stream ended")??;
    match frame {
        Message::Close(Some(c)) => ensure!(u16::from(c.code) == 1001, "close code {}", c.code),
        other => anyhow::bail!("expected a close frame, got {other:?}"),
    }
    let exit = tokio::task::spawn_blocking(move || server.child.wait()).await??;
    ensure!(exit.success(), "exit status {exit}");
    Ok(())
}
