//! A half-open WebSocket (a laptop that slept, a phone that left the Wi-Fi)
//! must not be fed forever: the server pings, and a peer that answers
//! nothing within the deadline is dropped with its subscriptions, while a
//! peer that reads normally (and so answers pings) stays.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::json;

use crate::common::{TestServer, DEALER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_dropped_and_a_reading_one_stays() -> Result<()> {
    let server = TestServer::start(&[
        "--demo",
        "--ws-ping-every-ms",
        "300",
        // Long enough that the reading peer, which answers pings only
        // while this test reads it, is not dropped when the test itself is
        // starved for a moment on a busy CI machine (1.5 s was: a broken
        // pipe on the reader once in a full run).
        "--ws-dead-after-ms",
        "3000",
    ])?;
    let dealer = server.login(DEALER, "Ben").await?;
    let event = server.demo_event.clone().context("demo event")?;
    let mut silent = dealer.ws().await?;
    silent.subscribe(&event, None).await?;
    let mut alive = dealer.ws().await?;
    alive.subscribe(&event, None).await?;
    let open = || async {
        let (_, h) = dealer.get("/api/health").await?;
        anyhow::Ok(h["websockets"].as_u64().unwrap_or(u64::MAX))
    };
    ensure!(open().await? == 2, "both sockets open");

    // `silent` is never read again from here: its pongs are never sent.
    // `alive` keeps reading (tungstenite answers pings while reading).
    let started = Instant::now();
    let mut dropped_after = None;
    while started.elapsed() < Duration::from_secs(9) {
        ensure!(
            alive.quiet_for(100).await?.is_none(),
            "nothing else is sent to the reader"
        );
        if dropped_after.is_none() && open().await? == 1 {
            dropped_after = Some(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(5) && dropped_after.is_some() {
            break;
        }
    }
    let Some(t) = dropped_after else {
        anyhow::bail!("the silent peer was never dropped");
    };
    ensure!(
        t >= Duration::from_millis(2_500),
        "dropped after {t:?}, before its deadline"
    );
    ensure!(open().await? == 1, "the reading peer stays connected");
    // And it is still served: a change reaches it.
    let (status, _) = dealer
        .op(
            &event,
            &crate::common::new_op_id(),
            json!({"type": "stats.entry"}),
        )
        .await?;
    ensure!(status == 200);
    let change = alive.next_of("change").await?;
    ensure!(change["op"]["type"] == "stats.entry", "{change}");
    eprintln!("silent peer dropped {t:?} after it stopped reading (deadline 3 s)");
    Ok(())
}
