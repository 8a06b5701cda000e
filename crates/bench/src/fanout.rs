//! Fan-out latency: one publisher sending at a steady rate (open loop: it
//! never waits for an answer), N subscribers, every delivery timed on this
//! process's one clock from just before the send to the frame's arrival.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::stats::{dist_us, Dist};
use crate::targets::{create_event, login, Kind, Target, COORD};

/// One fan-out scenario.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spec {
    pub subscribers: usize,
    pub events: usize,
    pub rate: u32,
    pub secs: u64,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub latency: Dist,
    /// Median latency of the first and the last quarter of the run: a
    /// backlog that grows shows as a last quarter far above the first.
    pub first_quarter_p50: f64,
    pub last_quarter_p50: f64,
    pub missing: u64,
    pub frame_bytes: usize,
}

/// The reference payload for the floor and Redis: as long as a Pitboss
/// change frame for the same op (measured: ~330 bytes), with the op id in the
/// same JSON shape, so every target moves and scans the same bytes.
fn reference_payload(k: u64) -> String {
    let head = format!("{{\"type\":\"change\",\"op_id\":\"b-{k}\",\"pad\":\"");
    let pad = "x".repeat(330usize.saturating_sub(head.len() + 2));
    format!("{head}{pad}\"}}")
}

/// The op id number in a frame, found without parsing the JSON (the load
/// generator must stay cheap: it receives up to 250,000 frames a second).
pub fn op_number(frame: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"op_id\":\"b-";
    let at = frame.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = frame[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&frame[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

struct Shared {
    base: Instant,
    /// Send instant of op k, in ns since `base` (0: not sent yet).
    sent: Vec<AtomicU64>,
    /// Ops numbered below this are warm-up and not counted.
    warmup: u64,
    ready: AtomicUsize,
    stop: CancellationToken,
    frame_bytes: AtomicUsize,
}

/// (op number, latency in µs) for every counted delivery of one subscriber.
type Samples = Vec<(u32, u32)>;

fn record(sh: &Shared, frame: &[u8], out: &mut Samples) {
    let Some(k) = op_number(frame) else { return };
    if k < sh.warmup {
        return;
    }
    let Some(sent) = sh.sent.get(k as usize).map(|s| s.load(Ordering::Acquire)) else {
        return;
    };
    if sent == 0 {
        return;
    }
    let now = sh.base.elapsed().as_nanos() as u64;
    let us = (now.saturating_sub(sent) / 1_000).min(u64::from(u32::MAX)) as u32;
    out.push((k as u32, us));
    sh.frame_bytes.store(frame.len(), Ordering::Relaxed);
}

pub async fn run(kind: Kind, target: &Target, spec: Spec) -> Result<Run> {
    let total = u64::from(spec.rate) * spec.secs;
    let sh = Arc::new(Shared {
        base: Instant::now(),
        sent: (0..total).map(|_| AtomicU64::new(0)).collect(),
        warmup: u64::from(spec.rate), // the first second
        ready: AtomicUsize::new(0),
        stop: CancellationToken::new(),
        frame_bytes: AtomicUsize::new(0),
    });
    let (events, token) = match kind {
        Kind::Pitboss | Kind::Poll => {
            let token = login(&target.base(), COORD).await?;
            let mut ev = Vec::new();
            for i in 0..spec.events {
                ev.push(create_event(&target.base(), &token, &format!("bench {i}")).await?);
            }
            (ev, token)
        }
        _ => (
            (0..spec.events).map(|i| format!("ev-{i}")).collect(),
            String::new(),
        ),
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Samples>();
    let handshakes = Arc::new(Semaphore::new(64));
    let mut subs = Vec::new();
    for i in 0..spec.subscribers {
        let event = events[i % events.len()].clone();
        let (sh, tx, handshakes, token) =
            (sh.clone(), tx.clone(), handshakes.clone(), token.clone());
        let port = target.port;
        subs.push(tokio::spawn(async move {
            let r = subscriber(kind, port, &token, &event, &sh, &handshakes).await;
            match r {
                Ok(s) => drop(tx.send(s)),
                Err(e) => {
                    eprintln!("subscriber {i}: {e:#}");
                    drop(tx.send(Vec::new()));
                }
            }
        }));
    }
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(120);
    while sh.ready.load(Ordering::Acquire) < spec.subscribers {
        if Instant::now() > deadline {
            bail!(
                "only {} of {} subscribers connected",
                sh.ready.load(Ordering::Acquire),
                spec.subscribers
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    publish(kind, target.port, &token, &events, &sh, spec.rate, total).await?;
    // Let the last deliveries arrive; what is later than this counts as
    // missing, which a target with a growing backlog shows.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sh.stop.cancel();
    let mut all: Vec<(u32, u32)> = Vec::new();
    while let Some(s) = rx.recv().await {
        all.extend(s);
    }
    for s in subs {
        drop(s.await);
    }
    // Op k goes to event k % events; subscriber i follows event i % events.
    let mut per_event = vec![0u64; events.len()];
    for k in sh.warmup..total {
        per_event[(k as usize) % events.len()] += 1;
    }
    let expected: u64 = (0..spec.subscribers)
        .map(|i| per_event[i % events.len()])
        .sum();
    let missing = expected.saturating_sub(all.len() as u64);
    let q = (total - sh.warmup) / 4;
    let quarter = |lo: u64, hi: u64| {
        let mut v: Vec<u32> = all
            .iter()
            .filter(|(k, _)| u64::from(*k) >= lo && u64::from(*k) < hi)
            .map(|(_, l)| *l)
            .collect();
        dist_us(&mut v).p50
    };
    let first = quarter(sh.warmup, sh.warmup + q);
    let last = quarter(total - q, total);
    let mut lat: Vec<u32> = all.into_iter().map(|(_, l)| l).collect();
    Ok(Run {
        latency: dist_us(&mut lat),
        first_quarter_p50: first,
        last_quarter_p50: last,
        missing,
        frame_bytes: sh.frame_bytes.load(Ordering::Relaxed),
    })
}

async fn subscriber(
    kind: Kind,
    port: u16,
    token: &str,
    event: &str,
    sh: &Shared,
    handshakes: &Semaphore,
) -> Result<Samples> {
    let mut out = Vec::with_capacity(4096);
    match kind {
        Kind::Redis => {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
            let mut ps = {
                let _permit = handshakes.acquire().await?;
                let mut ps = client.get_async_pubsub().await?;
                ps.subscribe(event).await?;
                ps
            };
            sh.ready.fetch_add(1, Ordering::AcqRel);
            let mut stream = ps.on_message();
            loop {
                tokio::select! {
                    () = sh.stop.cancelled() => break,
                    m = stream.next() => match m {
                        Some(m) => record(sh, m.get_payload_bytes(), &mut out),
                        None => break,
                    },
                }
            }
        }
        _ => {
            let url = match kind {
                Kind::Floor => format!("ws://127.0.0.1:{port}/"),
                _ => format!("wss://127.0.0.1:{port}/ws?token={token}"),
            };
            let mut ws = {
                let _permit = handshakes.acquire().await?;
                let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
                    &url,
                    Some(ws_config()),
                    true,
                    Some(crate::targets::ws_tls()),
                )
                .await
                .with_context(|| format!("connect {url}"))?;
                if kind != Kind::Floor {
                    let sub =
                        serde_json::json!({"type": "subscribe", "event_id": event, "after": null});
                    ws.send(Message::Text(sub.to_string().into())).await?;
                    // Until the catch-up ends.
                    loop {
                        match ws.next().await {
                            Some(Ok(Message::Text(t))) if t.contains("\"type\":\"subscribed\"") => {
                                break
                            }
                            Some(Ok(_)) => {}
                            _ => bail!("closed before subscribed"),
                        }
                    }
                }
                ws
            };
            sh.ready.fetch_add(1, Ordering::AcqRel);
            loop {
                tokio::select! {
                    () = sh.stop.cancelled() => break,
                    m = ws.next() => match m {
                        Some(Ok(Message::Text(t))) => record(sh, t.as_bytes(), &mut out),
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
            drop(tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await);
        }
    }
    Ok(out)
}

async fn publish(
    kind: Kind,
    port: u16,
    token: &str,
    events: &[String],
    sh: &Arc<Shared>,
    rate: u32,
    total: u64,
) -> Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let stamp = |k: u64| {
        sh.sent[k as usize].store(
            sh.base.elapsed().as_nanos().max(1) as u64,
            Ordering::Release,
        );
    };
    match kind {
        Kind::Redis => {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
            let conn = client.get_multiplexed_async_connection().await?;
            for k in 0..total {
                tick.tick().await;
                let mut c = conn.clone();
                let ch = events[(k as usize) % events.len()].clone();
                let payload = reference_payload(k);
                stamp(k);
                // Not awaited here: open loop.
                tokio::spawn(async move {
                    let r: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                        .arg(ch)
                        .arg(payload)
                        .query_async(&mut c)
                        .await;
                    drop(r);
                });
            }
        }
        _ => {
            let url = match kind {
                Kind::Floor => format!("ws://127.0.0.1:{port}/"),
                _ => format!("wss://127.0.0.1:{port}/ws?token={token}"),
            };
            let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
                &url,
                Some(ws_config()),
                true,
                Some(crate::targets::ws_tls()),
            )
            .await
            .with_context(|| format!("publisher: connect {url}"))?;
            let (mut sink, mut stream) = ws.split();
            // Drain what comes back (acks) so it never pushes back.
            let drain = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
            for k in 0..total {
                tick.tick().await;
                let text = match kind {
                    Kind::Floor => reference_payload(k),
                    _ => serde_json::json!({"type": "op", "op_id": format!("b-{k}"),
                            "event_id": events[(k as usize) % events.len()],
                            "op": {"type": "stats.entry", "count": 1}})
                    .to_string(),
                };
                stamp(k);
                sink.send(Message::Text(text.into())).await?;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            drain.abort();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_op_number_is_found_in_every_target_s_frames() {
        assert_eq!(op_number(reference_payload(1234).as_bytes()), Some(1234));
        let change = br#"{"type":"change","event_id":"ev-1","seq":9,"op_id":"b-77","op":{}}"#;
        assert_eq!(op_number(change), Some(77));
        assert_eq!(op_number(br#"{"op_id":"other-1"}"#), None);
        assert!((320..=340).contains(&reference_payload(5).len()));
    }
}
