//! A subscriber that stops reading (a laptop whose Wi-Fi froze) must not
//! hold back the writer or the other screens: its queue is bounded, it is
//! cut off, and it catches up by resuming.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

const OPS: usize = 4000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_is_cut_off_and_resumes_while_others_get_everything() -> Result<()> {
    // No rate limits: 4,000 ops in a few seconds from one address are what
    // fills the stalled subscriber's queue; the limits would spread them
    // over minutes.
    let server = TestServer::start(&["--synchronous", "normal", "--no-limits"])?;
    let http = server.login(COORD, "Ana").await?;
    let event = server.long_event(&http, "Slow").await?;

    let mut slow = http.ws().await?;
    slow.subscribe(&event, Some(0)).await?;
    // From here on nobody reads `slow`.

    let mut fast = http.ws().await?;
    fast.subscribe(&event, Some(0)).await?;
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::with_capacity(OPS);
        while seqs.len() < OPS {
            let f = fast.next_of("change").await?;
            seqs.push(f["seq"].as_u64().unwrap_or(0));
        }
        anyhow::Ok(seqs)
    });

    // ~2.2 KB per change: enough to fill the socket buffers and the queue.
    let note = "n".repeat(2000);
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut ws = http.ws().await?;
        let event = event.clone();
        let note = note.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..OPS / 4 {
                let op = json!({"type": "incident.create", "table": format!("{w}-{i}"), "kind": "load", "severity": "low", "note": note});
                ws.send(json!({"type": "op", "op_id": new_op_id(), "event_id": event, "op": op})).await?;
            }
            let mut acks = 0;
            while acks < OPS / 4 {
                if ws.next_of("ack").await.is_ok() {
                    acks += 1;
                }
            }
            anyhow::Ok(())
        }));
    }
    for w in writers {
        w.await??;
    }
    let write_time = started.elapsed();
    let seqs = tokio::time::timeout(Duration::from_secs(60), reader).await???;
    ensure!(
        seqs == (1..=OPS as u64).collect::<Vec<_>>(),
        "the reading subscriber missed or reordered changes"
    );
    eprintln!(
        "{OPS} ops of ~2.2 KB acknowledged in {write_time:?} with a stalled subscriber attached"
    );

    // The stalled one now reads what it had buffered, then finds itself cut off.
    let mut got: Vec<u64> = Vec::new();
    let mut close_code = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.stream.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: serde_json::Value = serde_json::from_str(&t)?;
                if v["type"] == "change" {
                    got.push(v["seq"].as_u64().unwrap_or(0));
                }
            }
            Ok(Some(Ok(Message::Close(c)))) => {
                close_code = c.map(|c| u16::from(c.code));
                break;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_))) | Ok(None) => break,
            Err(_) => anyhow::bail!(
                "the stalled subscriber was never cut off ({} changes buffered)",
                got.len()
            ),
        }
    }
    ensure!(got.len() < OPS, "the stalled subscriber was never dropped");
    ensure!(
        close_code.is_none() || close_code == Some(1013),
        "close code {close_code:?}"
    );
    ensure!(
        got == (1..=got.len() as u64).collect::<Vec<_>>(),
        "what it did get is in order"
    );
    eprintln!(
        "stalled subscriber cut off after {} of {OPS} changes (close {close_code:?})",
        got.len()
    );

    // It resumes from the last seq it applied and ends up with everything.
    let mut again = http.ws().await?;
    let frames = again.subscribe(&event, Some(got.len() as u64)).await?;
    let rest: Vec<u64> = frames
        .iter()
        .filter(|f| f["type"] == "change")
        .filter_map(|f| f["seq"].as_u64())
        .collect();
    ensure!(
        rest == (got.len() as u64 + 1..=OPS as u64).collect::<Vec<_>>(),
        "resume gap or duplicate"
    );
    Ok(())
}
