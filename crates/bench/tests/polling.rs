//! Polling delivery (`bench-poll-server`, the benchmark's reference): the
//! same changes as push delivery, in order, none lost and none twice, a
//! poll interval later; and its pongs promise no horizon.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const COORD: &str = "COORD-1111";

/// The server process on a loopback port, with the demo event; killed
/// when dropped.
struct Server {
    child: Child,
    base: String,
    event: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

fn start() -> Result<Server> {
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_bench-poll-server"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .args(["--coordinator-code", COORD, "--dealer-code", "DEAL-2222"])
        .args(["--demo", "--poll-interval-ms", "100"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start bench-poll-server")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let (mut base, mut event) = (None, None);
    for line in lines.by_ref() {
        let line = line?;
        if let Some(a) = line.strip_prefix("listening on ") {
            base = Some(a.to_string());
        }
        if let Some(e) = line.strip_prefix("demo event: ") {
            event = Some(e.to_string());
            break;
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok(Server {
        child,
        base: base.context("no address printed")?,
        event: event.context("no demo event printed")?,
        _dir: dir,
    })
}

type Ws = WebSocketStream<pitboss_tls::TlsStream>;

/// The next text frame as JSON, within five seconds.
async fn next(ws: &mut Ws) -> Result<Value> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .context("timed out waiting for a frame")?
            .context("connection closed")??;
        match m {
            Message::Text(t) => return Ok(serde_json::from_str(&t)?),
            Message::Close(c) => bail!("closed by server: {c:?}"),
            _ => continue,
        }
    }
}

async fn next_of(ws: &mut Ws, kind: &str) -> Result<Value> {
    loop {
        let v = next(ws).await?;
        if v["type"] == kind {
            return Ok(v);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_delivery_brings_every_change_in_order_a_poll_later() -> Result<()> {
    let server = start()?;
    let pin = pitboss_tls::Pin::first_use();
    let http = pin.http_client(reqwest::Client::builder())?;
    let session: Value = http
        .post(format!("{}/api/session", server.base))
        .json(&json!({"join_code": COORD, "name": "Ana", "device": "Ana-laptop"}))
        .send()
        .await?
        .json()
        .await?;
    let token = session["token"].as_str().context("token")?.to_string();
    let url = format!(
        "{}/ws?token={token}",
        server.base.replace("https://", "wss://")
    );
    let (mut ws, _) = pin.websocket(url, None).await?;
    let subscribe = json!({"type": "subscribe", "event_id": server.event, "after": null});
    ws.send(Message::Text(subscribe.to_string().into())).await?;
    let start_seq = next_of(&mut ws, "subscribed").await?["seq"]
        .as_u64()
        .context("subscribed seq")?;
    let mut waits = Vec::new();
    for i in 0..20 {
        let sent = Instant::now();
        let r = http
            .post(format!("{}/api/events/{}/ops", server.base, server.event))
            .bearer_auth(&token)
            .json(&json!({"op_id": format!("poll-{i}"), "op": {"type": "stats.entry", "count": 1}}))
            .send()
            .await?;
        ensure!(r.status() == 200, "op {i}: {}", r.status());
        let ack: Value = r.json().await?;
        let m = next_of(&mut ws, "change").await?;
        ensure!(m["seq"] == ack["seq"], "in order: {m} vs {ack}");
        waits.push(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(37)).await;
    }
    let last = waits.iter().max().copied().unwrap_or_default();
    let mean = waits.iter().sum::<Duration>() / waits.len() as u32;
    // A poll or so later, never lost or held back for good; the bound
    // leaves room for a busy 2-core machine, and the mean says it is a
    // poll, not a push.
    ensure!(
        last <= Duration::from_millis(1_000),
        "slowest delivery {last:?}"
    );
    ensure!(
        mean >= Duration::from_millis(20),
        "polling delivers a poll later, not at once: mean {mean:?}"
    );
    // Nothing twice: after three more polls, the next text frame is the
    // answer to a ping.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ping = json!({"type": "ping", "client_time_ms": 1});
    ws.send(Message::Text(ping.to_string().into())).await?;
    let pong = next(&mut ws).await?;
    ensure!(pong["type"] == "pong", "after the changes: {pong}");
    ensure!(
        pong.get("changes_through_ms").is_none(),
        "no horizon promised when polling: {pong}"
    );
    let snapshot: Value = http
        .get(format!(
            "{}/api/events/{}/snapshot",
            server.base, server.event
        ))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    ensure!(
        snapshot["seq"].as_u64() == Some(start_seq + 20),
        "20 changes"
    );
    Ok(())
}
