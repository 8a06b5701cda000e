//! What a pong promises about the changes on its socket: every pong says
//! through which instant the changes are complete there, never an instant
//! whose change is still to come. (Polling delivery, the benchmark's
//! reference, is tested in `crates/bench/tests/polling.rs`.)

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::json;

use crate::common::{new_op_id, TestServer, COORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pong_never_claims_an_instant_whose_change_is_still_to_come() -> Result<()> {
    let server = TestServer::start(&["--demo", "--synchronous", "normal"])?;
    let td = server.login(COORD, "Ana").await?;
    let event = server.demo_event.clone().context("demo event")?;
    let mut watcher = td.ws().await?;
    watcher.subscribe(&event, None).await?;
    let mut writer = td.ws().await?;
    // Ops and pings interleaved on one socket, read on another: every change
    // that arrives after a pong must be stamped after that pong's horizon.
    let mut horizon = i64::MIN;
    let (mut pongs, mut changes) = (0, 0);
    for i in 0..200 {
        writer
            .send(
                json!({"type": "op", "op_id": new_op_id(), "event_id": event,
                         "op": {"type": "stats.entry", "count": 1}}),
            )
            .await?;
        if i % 3 == 0 {
            watcher
                .send(json!({"type": "ping", "client_time_ms": i}))
                .await?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while changes < 200 && Instant::now() < deadline {
        let m = watcher.next_timeout(5).await?;
        match m["type"].as_str() {
            Some("pong") => {
                let t = m["changes_through_ms"]
                    .as_i64()
                    .context("pong without horizon")?;
                ensure!(t <= m["server_time_ms"].as_i64().unwrap_or(0), "{m}");
                horizon = horizon.max(t);
                pongs += 1;
            }
            Some("change") => {
                let at = m["at_ms"].as_i64().context("at_ms")?;
                ensure!(
                    at > horizon,
                    "change stamped {at} came after a pong through {horizon}"
                );
                changes += 1;
            }
            _ => {}
        }
    }
    ensure!(
        changes == 200 && pongs > 0,
        "{changes} changes, {pongs} pongs"
    );
    Ok(())
}
