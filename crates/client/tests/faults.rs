//! A venue's network between the client and a real server (rules 5, 8 and 10 of docs/architecture.md):
//! half-open sockets, a lost acknowledgement, and a proxy that refuses
//! WebSocket upgrades. All through the fault proxy, with Wi-Fi latency.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use common::{accepted, seq_of, server, wait_seq, COORD, DEALER};
use pitboss_client::{Client, Config, Notice, Status};
use pitboss_core::Op;
use pitboss_faultproxy::Link;

fn config(addr: std::net::SocketAddr, code: &str, event: &str, cache: &Path) -> Config {
    let mut cfg = common::config(addr, code, event, cache);
    cfg.backoff_max = Duration::from_millis(500);
    cfg
}

/// The access point hands the laptop off and the old path stops: the socket
/// stays open, nothing passes. The client's own deadline (set here to 2 s;
/// the app's default is 12 s) must notice, reconnect and catch up with what
/// happened meanwhile, without anyone pressing Refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_socket_is_noticed_within_the_deadline_and_caught_up() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = server(&dir.path().join("srv")).await?;
    let event = srv.demo_event_id().context("demo")?.to_string();
    let proxy = common::Proxy::start(srv.local_addr()).await?;
    proxy.set_links(Link::wifi(50, 50));
    let mut cfg = config(proxy.addr(), DEALER, &event, &dir.path().join("d.db"));
    cfg.ping_every = Duration::from_millis(500);
    cfg.dead_after = Duration::from_secs(2);
    let dealer = Client::start(cfg)?;
    dealer
        .wait_status(Duration::from_secs(10), |s| *s == Status::Live)
        .await?;
    let coord = Client::start(config(
        srv.local_addr(),
        COORD,
        &event,
        &dir.path().join("c.db"),
    ))?;
    coord
        .wait_status(Duration::from_secs(10), |s| *s == Status::Live)
        .await?;

    proxy.stall_current();
    let stalled_at = Instant::now();
    let mut last = 0;
    for _ in 0..5 {
        last = accepted(&coord, Op::StatsBust { count: 1 }).await?;
    }
    let mut status = dealer.status();
    tokio::time::timeout(Duration::from_secs(6), async {
        while *status.borrow_and_update() == Status::Live {
            if status.changed().await.is_err() {
                break;
            }
        }
    })
    .await
    .context("the dealer still says Live on a dead socket after 6 s")?;
    let noticed = stalled_at.elapsed();
    ensure!(
        noticed >= Duration::from_millis(1_500) && noticed < Duration::from_millis(4_000),
        "noticed after {noticed:?} with a 2 s deadline"
    );
    wait_seq(&dealer, last, Duration::from_secs(5)).await?;
    let caught_up = stalled_at.elapsed();
    dealer
        .wait_status(Duration::from_secs(5), |s| *s == Status::Live)
        .await?;
    let snap = srv
        .snapshot(&event)
        .await
        .map_err(|e| anyhow::anyhow!(e.body.message))?;
    let mine = dealer.replica().borrow().clone().context("replica")?;
    ensure!(mine.seq == snap.seq && mine.state == snap.state);
    println!(
        "half-open: noticed after {} ms, caught up after {} ms (deadline 2 s, 50–100 ms each way)",
        noticed.as_millis(),
        caught_up.as_millis()
    );
    dealer.shutdown().await;
    coord.shutdown().await;
    srv.shutdown().await;
    Ok(())
}

/// The server commits a bust-out and its ack is lost with the connection
/// (the proxy resets as the ack passes). The client cannot know whether it
/// applied; it sends the same op id again, and the server answers with the
/// original result: one bust-out, the same seq, nothing shown twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ack_is_retried_with_the_same_op_id_and_applies_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = server(&dir.path().join("srv")).await?;
    let event = srv.demo_event_id().context("demo")?.to_string();
    let proxy = common::terminating_proxy(&srv, &dir.path().join("srv")).await?;
    proxy.set_links(Link::wifi(30, 30));
    let dealer = Client::start(config(
        proxy.addr(),
        DEALER,
        &event,
        &dir.path().join("d.db"),
    ))?;
    dealer
        .wait_status(Duration::from_secs(10), |s| *s == Status::Live)
        .await?;
    let before = srv
        .snapshot(&event)
        .await
        .map_err(|e| anyhow::anyhow!(e.body.message))?;

    let mut notices = dealer.notices();
    proxy.reset_when_downstream_contains(b"\"type\":\"ack\"");
    let op_id = dealer.submit(Op::StatsBust { count: 1 }).await?;
    let seq = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match notices.recv().await {
                Ok(Notice::Accepted { op_id: id, seq }) if id == op_id => return Ok(seq),
                Ok(Notice::Rejected {
                    op_id: id, message, ..
                }) if id == op_id => {
                    bail!("rejected on retry: {message}")
                }
                Ok(_) => {}
                Err(e) => bail!("notices: {e}"),
            }
        }
    })
    .await
    .context("no answer after the lost ack")??;
    ensure!(
        !proxy.reset_trigger_armed(),
        "the ack never passed the proxy: the test did not lose it"
    );
    ensure!(proxy.stats().resets >= 1);

    let after = srv
        .snapshot(&event)
        .await
        .map_err(|e| anyhow::anyhow!(e.body.message))?;
    ensure!(
        after.state.stats.players_remaining + 1 == before.state.stats.players_remaining,
        "one bust-out: {} → {}",
        before.state.stats.players_remaining,
        after.state.stats.players_remaining
    );
    ensure!(after.seq == before.seq + 1, "one change: {}", after.seq);
    ensure!(seq == after.seq, "the retry answered with the original seq");
    dealer
        .wait_status(Duration::from_secs(5), |s| *s == Status::Live)
        .await?;
    wait_seq(&dealer, after.seq, Duration::from_secs(5)).await?;
    ensure!(dealer.pending().borrow().is_empty());
    ensure!(dealer.replica().borrow().as_ref().unwrap().state == after.state);

    // The retry, sent by hand over HTTP with the same op id, gets the same
    // answer again and changes nothing.
    let http = pitboss_tls::Pin::to(srv.fingerprint()).http_client(reqwest::Client::builder())?;
    let login: serde_json::Value = http
        .post(format!("https://{}/api/session", srv.local_addr()))
        .json(&serde_json::json!({"join_code": DEALER, "name": "x", "device": "x"}))
        .send()
        .await?
        .json()
        .await?;
    let again: serde_json::Value = http
        .post(format!(
            "https://{}/api/events/{event}/ops",
            srv.local_addr()
        ))
        .bearer_auth(login["token"].as_str().unwrap())
        .json(&serde_json::json!({"op_id": op_id, "op": {"type": "stats.bust", "count": 1}}))
        .send()
        .await?
        .json()
        .await?;
    ensure!(again["seq"] == seq, "HTTP retry: {again}");
    let last = srv
        .snapshot(&event)
        .await
        .map_err(|e| anyhow::anyhow!(e.body.message))?;
    ensure!(last.seq == after.seq && last.state == after.state);
    dealer.shutdown().await;
    srv.shutdown().await;
    Ok(())
}

/// A venue proxy that answers WebSocket upgrades with 403 while plain HTTP
/// passes: the client says Degraded, sends its ops over HTTP, polls, and
/// Refresh brings a change at once; when upgrades pass again it goes Live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_websockets_blocked_the_client_is_degraded_but_works_over_http() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = server(&dir.path().join("srv")).await?;
    let event = srv.demo_event_id().context("demo")?.to_string();
    let proxy = common::terminating_proxy(&srv, &dir.path().join("srv")).await?;
    proxy.set_links(Link::wifi(50, 50));
    proxy.block_websocket_upgrades(true);
    let mut cfg = config(proxy.addr(), DEALER, &event, &dir.path().join("d.db"));
    cfg.http_poll_every = Duration::from_millis(1_500);
    cfg.ws_retry_every = Duration::from_secs(4);
    let dealer = Client::start(cfg)?;
    let s = dealer
        .wait_status(Duration::from_secs(10), |s| {
            matches!(s, Status::Degraded { .. })
        })
        .await?;
    ensure!(matches!(s, Status::Degraded { .. }));
    ensure!(proxy.stats().upgrades_blocked >= 1);
    ensure!(seq_of(&dealer) > 0, "a snapshot came over HTTP");

    // The dealer's op goes over HTTP and is answered.
    let seq = accepted(&dealer, Op::StatsBust { count: 1 }).await?;
    ensure!(seq_of(&dealer) >= seq);

    // Another device's change arrives by the slow poll...
    let coord = Client::start(config(
        srv.local_addr(),
        COORD,
        &event,
        &dir.path().join("c.db"),
    ))?;
    coord
        .wait_status(Duration::from_secs(10), |s| *s == Status::Live)
        .await?;
    let s1 = accepted(&coord, Op::ClockAdjust { delta_ms: 60_000 }).await?;
    let polled = wait_seq(&dealer, s1, Duration::from_secs(5)).await?;
    // ...and Refresh fetches at once.
    let s2 = accepted(&coord, Op::ClockAdjust { delta_ms: 60_000 }).await?;
    let t = Instant::now();
    dealer.refresh().await;
    wait_seq(&dealer, s2, Duration::from_secs(2)).await?;
    let refreshed = t.elapsed();
    ensure!(
        matches!(*dealer.status().borrow(), Status::Degraded { .. }),
        "still degraded while upgrades are blocked"
    );
    ensure!(
        refreshed < Duration::from_millis(1_000),
        "Refresh took {refreshed:?}"
    );

    // Upgrades pass again: the next WebSocket attempt makes it Live.
    proxy.block_websocket_upgrades(false);
    dealer
        .wait_status(Duration::from_secs(10), |s| *s == Status::Live)
        .await?;
    let snap = srv
        .snapshot(&event)
        .await
        .map_err(|e| anyhow::anyhow!(e.body.message))?;
    wait_seq(&dealer, snap.seq, Duration::from_secs(5)).await?;
    ensure!(dealer.replica().borrow().as_ref().unwrap().state == snap.state);
    println!(
        "degraded: poll brought a change in {} ms, Refresh in {} ms",
        polled.as_millis(),
        refreshed.as_millis()
    );
    dealer.shutdown().await;
    coord.shutdown().await;
    srv.shutdown().await;
    Ok(())
}
