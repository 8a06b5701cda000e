//! Contended writes: M coordinators hammering `clock.adjust` and
//! `stats.bust` on one event over WebSockets, each keeping a window of ops
//! in flight. Throughput of accepted ops, ack latency, and the check that
//! the final state is exactly the sum of what was acknowledged.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::stats::{dist_us, Dist};
use crate::targets::{create_event, login, Target, COORD};

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub clients: usize,
    pub accepted_per_sec: f64,
    pub ack: Dist,
    pub accepted: u64,
    pub rejected: u64,
    /// Final state minus the sum of acknowledged ops: must be zero.
    pub lost_updates: i64,
}

const WINDOW: usize = 16;
const ADJUST_MS: i64 = 1_000;

async fn http_op(
    base: &str,
    token: &str,
    event: &str,
    id: &str,
    op: serde_json::Value,
) -> Result<()> {
    let r = crate::targets::https()?
        .post(format!("{base}/api/events/{event}/ops"))
        .bearer_auth(token)
        .json(&serde_json::json!({"op_id": id, "op": op}))
        .send()
        .await?;
    ensure!(
        r.status().is_success(),
        "setup op {id}: {}",
        r.text().await?
    );
    Ok(())
}

async fn snapshot(base: &str, token: &str, event: &str) -> Result<serde_json::Value> {
    Ok(crate::targets::https()?
        .get(format!("{base}/api/events/{event}/snapshot"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?)
}

pub async fn run(target: &Target, clients: usize, secs: u64) -> Result<Run> {
    let base = target.base();
    let token = login(&base, COORD).await?;
    let event = create_event(&base, &token, "contended").await?;
    // Enough players that no bust-out is refused.
    for i in 0..10 {
        http_op(
            &base,
            &token,
            &event,
            &format!("setup-{i}"),
            serde_json::json!({"type": "stats.entry", "count": 10_000}),
        )
        .await?;
    }
    let before = snapshot(&base, &token, &event).await?;
    let url = format!("wss://127.0.0.1:{}/ws?token={token}", target.port);
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (url, event) = (url.clone(), event.clone());
        tasks.push(tokio::spawn(async move {
            let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
                &url,
                None,
                true,
                Some(crate::targets::ws_tls()),
            )
            .await?;
            let (mut sink, mut stream) = ws.split();
            let mut inflight: HashMap<String, (Instant, bool)> = HashMap::new();
            let (mut adjusts, mut busts, mut rejected) = (0u64, 0u64, 0u64);
            let mut lat = Vec::new();
            let mut n = 0u64;
            loop {
                while inflight.len() < WINDOW && Instant::now() < until {
                    let adjust = n % 2 == 0;
                    let id = format!("w{c}-{n}");
                    n += 1;
                    let op = if adjust {
                        serde_json::json!({"type": "clock.adjust", "delta_ms": ADJUST_MS})
                    } else {
                        serde_json::json!({"type": "stats.bust", "count": 1})
                    };
                    inflight.insert(id.clone(), (Instant::now(), adjust));
                    sink.feed(Message::Text(
                        serde_json::json!({"type": "op", "op_id": id, "event_id": event, "op": op})
                            .to_string()
                            .into(),
                    ))
                    .await?;
                }
                sink.flush().await?;
                if inflight.is_empty() {
                    break;
                }
                let Some(Ok(Message::Text(t))) = stream.next().await else {
                    anyhow::bail!(
                        "client {c}: connection lost with {} ops in flight",
                        inflight.len()
                    );
                };
                let v: serde_json::Value = serde_json::from_str(&t)?;
                let Some(id) = v["op_id"].as_str() else {
                    continue;
                };
                let Some((sent, adjust)) = inflight.remove(id) else {
                    continue;
                };
                lat.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                match v["type"].as_str() {
                    Some("ack") if adjust => adjusts += 1,
                    Some("ack") => busts += 1,
                    _ => rejected += 1,
                }
            }
            anyhow::Ok((adjusts, busts, rejected, lat))
        }));
    }
    let (mut adjusts, mut busts, mut rejected, mut lat) = (0, 0, 0, Vec::new());
    for t in tasks {
        let (a, b, r, l) = t.await??;
        adjusts += a;
        busts += b;
        rejected += r;
        lat.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = snapshot(&base, &token, &event).await?;
    let num = |v: &serde_json::Value, p: &str| {
        v.pointer(p)
            .and_then(serde_json::Value::as_i64)
            .context(p.to_string())
    };
    let remaining_gain =
        num(&after, "/state/clock/remaining_ms")? - num(&before, "/state/clock/remaining_ms")?;
    let players_drop = num(&before, "/state/stats/players_remaining")?
        - num(&after, "/state/stats/players_remaining")?;
    let lost = (adjusts as i64 * ADJUST_MS - remaining_gain).abs() / ADJUST_MS
        + (busts as i64 - players_drop).abs();
    Ok(Run {
        clients,
        accepted_per_sec: (adjusts + busts) as f64 / elapsed,
        ack: dist_us(&mut lat),
        accepted: adjusts + busts,
        rejected,
        lost_updates: lost,
    })
}
