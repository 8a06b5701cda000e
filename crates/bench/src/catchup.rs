//! Catch-up: a client (the app's own engine, with its SQLite cache) is
//! offline while K changes happen, then starts again; the time until it has
//! applied the last one. Within retention it resumes (the server replays the
//! changes); past retention it takes a snapshot.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::targets::{create_event, login, Target, COORD};

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub missed: u64,
    pub ms: f64,
    /// Whether the server answered with a snapshot rather than a replay.
    pub snapshot: bool,
}

async fn wait_seq(c: &pitboss_client::Client, seq: u64, within: Duration) -> Result<()> {
    let mut r = c.replica();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if r.borrow_and_update().as_ref().is_some_and(|r| r.seq >= seq) {
            return Ok(());
        }
        if tokio::time::timeout_at(deadline, r.changed())
            .await
            .is_err()
        {
            bail!("not at seq {seq} within {within:?}");
        }
    }
}

/// Makes `k` changes as fast as the server takes them (64 in flight).
async fn burst(port: u16, token: &str, event: &str, k: u64) -> Result<u64> {
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        format!("wss://127.0.0.1:{port}/ws?token={token}"),
        None,
        true,
        Some(crate::targets::ws_tls()),
    )
    .await?;
    let (mut sink, mut stream) = ws.split();
    let (mut sent, mut done, mut last) = (0u64, 0u64, 0u64);
    while done < k {
        while sent < k && sent - done < 64 {
            let op = serde_json::json!({"type": "op", "op_id": format!("c-{sent}"), "event_id": event,
                                        "op": {"type": "stats.entry", "count": 1}});
            sink.feed(Message::Text(op.to_string().into())).await?;
            sent += 1;
        }
        sink.flush().await?;
        match stream.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(&t)?;
                if v["type"] == "ack" {
                    done += 1;
                    last = last.max(v["seq"].as_u64().unwrap_or(0));
                } else if v["type"] == "rejected" {
                    bail!("refused: {v}");
                }
            }
            _ => bail!("connection lost during the burst"),
        }
    }
    Ok(last)
}

pub async fn run(target: &Target, missed: u64) -> Result<Run> {
    let base = target.base();
    let token = login(&base, COORD).await?;
    let event = create_event(&base, &token, "catch-up").await?;
    let dir = tempfile::tempdir()?;
    let cfg = || pitboss_client::Config::new(&base, COORD, &event, dir.path().join("cache.sqlite"));
    let c = pitboss_client::Client::start(cfg())?;
    wait_seq(&c, 0, Duration::from_secs(10))
        .await
        .context("first sync")?;
    c.shutdown().await;
    let last = burst(target.port, &token, &event, missed).await?;
    // Whether the server will replay or must snapshot: what it answers a
    // client that has nothing after seq 0.
    let gone = crate::targets::https()?
        .get(format!("{base}/api/events/{event}/changes?after=0"))
        .bearer_auth(&token)
        .send()
        .await?
        .status()
        == reqwest::StatusCode::GONE;
    let started = Instant::now();
    let c = pitboss_client::Client::start(cfg())?;
    wait_seq(&c, last, Duration::from_secs(60)).await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let snapshot = gone;
    c.shutdown().await;
    Ok(Run {
        missed,
        ms,
        snapshot,
    })
}
