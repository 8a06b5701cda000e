//! Memory per idle connection: the server's resident memory before and
//! after N idle, subscribed connections, divided by N.

use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::targets::{create_event, login, Kind, Target, COORD};

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub connections: usize,
    pub kib_per_connection: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
}

pub async fn run(kind: Kind, target: &Target, n: usize) -> Result<Run> {
    let (token, event) = match kind {
        Kind::Pitboss | Kind::Poll => {
            let t = login(&target.base(), COORD).await?;
            let e = create_event(&target.base(), &t, "idle").await?;
            (t, e)
        }
        _ => (String::new(), "ev-0".to_string()),
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = target.rss_kib()?;
    let gate = std::sync::Arc::new(Semaphore::new(64));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (token, event, gate, port) = (token.clone(), event.clone(), gate.clone(), target.port);
        tasks.push(tokio::spawn(async move {
            let _p = gate.acquire_owned().await?;
            let keep: Box<dyn std::any::Any + Send> = match kind {
                Kind::Redis => {
                    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
                    let mut ps = client.get_async_pubsub().await?;
                    ps.subscribe(&event).await?;
                    Box::new(ps)
                }
                Kind::Floor => {
                    let (ws, _) =
                        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/")).await?;
                    Box::new(ws)
                }
                _ => {
                    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
                        format!("wss://127.0.0.1:{port}/ws?token={token}"),
                        None,
                        true,
                        Some(crate::targets::ws_tls()),
                    )
                    .await?;
                    let sub =
                        serde_json::json!({"type": "subscribe", "event_id": event, "after": null});
                    ws.send(Message::Text(sub.to_string().into())).await?;
                    loop {
                        match ws.next().await {
                            Some(Ok(Message::Text(t))) if t.contains("\"subscribed\"") => break,
                            Some(Ok(_)) => {}
                            _ => anyhow::bail!("closed before subscribed"),
                        }
                    }
                    Box::new(ws)
                }
            };
            anyhow::Ok(keep)
        }));
    }
    let mut held = Vec::new();
    for t in tasks {
        held.push(t.await?.context("idle connection")?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = target.rss_kib()?;
    drop(held);
    Ok(Run {
        connections: n,
        kib_per_connection: after.saturating_sub(before) as f64 / n as f64,
        rss_before_kib: before,
        rss_after_kib: after,
    })
}
