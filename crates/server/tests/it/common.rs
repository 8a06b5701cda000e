//! Test harness: the real `pitboss-server` binary on a loopback port, with
//! real HTTP and WebSocket clients. Each server gets its own temp folder.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use pitboss_tls::{Pin, TlsStream};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub const COORD: &str = "COORD-1111";
pub const DEALER: &str = "DEAL-2222";
pub const DISPLAY: &str = "WALL-3333";

pub struct TestServer {
    pub child: Child,
    pub addr: String,
    pub demo_event: Option<String>,
    /// Trusts this server's key (the one it printed) and no other.
    pub pin: Pin,
    pub data: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    extra: Vec<String>,
}

impl TestServer {
    pub fn start(extra: &[&str]) -> Result<TestServer> {
        let tmp = tempfile::tempdir()?;
        let data = tmp.path().join("data");
        let mut s = Self::spawn(&data, extra)?;
        s._tmp = Some(tmp);
        Ok(s)
    }

    fn spawn(data: &Path, extra: &[&str]) -> Result<TestServer> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pitboss-server"))
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(["--coordinator-code", COORD, "--dealer-code", DEALER])
            .args(["--display-code", DISPLAY])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start pitboss-server")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut addr = None;
        let mut demo_event = None;
        let mut key = None;
        for line in lines.by_ref() {
            let line = line?;
            if let Some(a) = line.strip_prefix("listening on https://") {
                addr = Some(a.to_string());
            }
            if let Some(k) = line.strip_prefix("key fingerprint: ") {
                key = Some(k.parse().map_err(|e: String| anyhow!(e))?);
            }
            if let Some(e) = line.strip_prefix("demo event: ") {
                demo_event = Some(e.to_string());
            }
            if line.starts_with("dealer code:") && (!extra.contains(&"--demo")) {
                break;
            }
            if demo_event.is_some() {
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let addr = addr.ok_or_else(|| anyhow!("server printed no address"))?;
        let key = key.ok_or_else(|| anyhow!("server printed no key fingerprint"))?;
        Ok(TestServer {
            child,
            addr,
            demo_event,
            pin: Pin::to(key),
            data: data.to_path_buf(),
            _tmp: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// `kill -9`: no chance to flush or close anything.
    pub fn kill9(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// A new server process on the same store.
    pub fn restart(&mut self) -> Result<()> {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let mut next = Self::spawn(&self.data, &extra)?;
        std::mem::swap(&mut self.child, &mut next.child);
        self.addr = next.addr.clone();
        self.demo_event = next.demo_event.clone();
        self.pin = next.pin.clone();
        Ok(())
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{}", self.addr, path)
    }

    /// An HTTP client that trusts this server's key.
    pub fn http_client(&self) -> Result<reqwest::Client> {
        Ok(self.pin.http_client(reqwest::Client::builder())?)
    }

    pub async fn login(&self, code: &str, name: &str) -> Result<Http> {
        self.login_from(code, name, None).await
    }

    /// Logs in from a given loopback source address (127.0.0.2, …), so a
    /// test can be several devices, as the server's per-address limits see
    /// them.
    pub async fn login_from(&self, code: &str, name: &str, local: Option<IpAddr>) -> Result<Http> {
        let (status, v, client) = self.try_login(code, name, local).await?;
        anyhow::ensure!(status == 200, "login failed: {status} {v}");
        Ok(Http {
            client,
            pin: self.pin.clone(),
            base: format!("https://{}", self.addr),
            token: v["token"].as_str().context("token")?.to_string(),
            role: v["role"].as_str().context("role")?.to_string(),
            local,
        })
    }

    /// One `POST /api/session`: its status and body, whatever they are.
    pub async fn try_login(
        &self,
        code: &str,
        name: &str,
        local: Option<IpAddr>,
    ) -> Result<(u16, Value, reqwest::Client)> {
        let client = self
            .pin
            .http_client(reqwest::Client::builder().local_address(local))?;
        let r = client
            .post(self.url("/api/session"))
            .json(&json!({"join_code": code, "name": name, "device": format!("{name}-laptop")}))
            .send()
            .await?;
        let status = r.status().as_u16();
        let v: Value = r.json().await?;
        Ok((status, v, client))
    }

    /// A coordinator creates an event with one very long level (so that
    /// adjustments never cross a boundary) and returns its id.
    pub async fn long_event(&self, http: &Http, name: &str) -> Result<String> {
        let (status, v) = http
            .post(
                "/api/events",
                &json!({
                    "name": name,
                    "starting_stack": 10000,
                    "structure": {"levels": [
                        {"kind": "level", "small_blind": 100, "big_blind": 200, "ante": 0, "duration_ms": 20 * 3_600_000},
                        {"kind": "level", "small_blind": 200, "big_blind": 400, "ante": 400, "duration_ms": 1_200_000}
                    ]}
                }),
            )
            .await?;
        anyhow::ensure!(status == 201, "create event: {status} {v}");
        Ok(v["id"].as_str().context("id")?.to_string())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

#[derive(Clone)]
pub struct Http {
    pub client: reqwest::Client,
    pub pin: Pin,
    pub base: String,
    pub token: String,
    pub role: String,
    /// Source address of this device's connections (None: 127.0.0.1).
    pub local: Option<IpAddr>,
}

impl Http {
    pub async fn get(&self, path: &str) -> Result<(u16, Value)> {
        let r = self
            .client
            .get(format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = r.status().as_u16();
        let text = r.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?,
        ))
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        self.post_raw(path, body.to_string()).await
    }

    pub async fn post_raw(&self, path: &str, body: String) -> Result<(u16, Value)> {
        let r = self
            .client
            .post(format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = r.status().as_u16();
        let text = r.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).with_context(|| format!("not JSON ({status}): {text}"))?,
        ))
    }

    pub async fn op(&self, event: &str, op_id: &str, op: Value) -> Result<(u16, Value)> {
        self.post(
            &format!("/api/events/{event}/ops"),
            &json!({"op_id": op_id, "op": op}),
        )
        .await
    }

    pub async fn snapshot(&self, event: &str) -> Result<Value> {
        let (status, v) = self.get(&format!("/api/events/{event}/snapshot")).await?;
        anyhow::ensure!(status == 200, "snapshot: {status} {v}");
        Ok(v)
    }

    /// The stored state of an event, without the instant it was read at.
    pub async fn state(&self, event: &str) -> Result<Value> {
        let v = self.snapshot(event).await?;
        Ok(json!({"seq": v["seq"], "state": v["state"]}))
    }

    pub async fn ws(&self) -> Result<Ws> {
        let url = format!(
            "{}/ws?token={}",
            self.base.replace("https://", "wss://"),
            self.token
        );
        let Some(local) = self.local else {
            let (stream, _) = self.pin.websocket(url, None).await?;
            return Ok(Ws { stream });
        };
        let server: std::net::SocketAddr = self.base.trim_start_matches("https://").parse()?;
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(std::net::SocketAddr::new(local, 0))?;
        let tcp = socket.connect(server).await?;
        let (stream, _) = self.pin.websocket_over(tcp, url, None).await?;
        Ok(Ws { stream })
    }
}

pub struct Ws {
    pub stream: WebSocketStream<TlsStream>,
}

impl Ws {
    pub async fn send(&mut self, v: Value) -> Result<()> {
        self.stream
            .send(Message::Text(v.to_string().into()))
            .await?;
        Ok(())
    }

    pub async fn send_text(&mut self, t: String) -> Result<()> {
        self.stream.send(Message::Text(t.into())).await?;
        Ok(())
    }

    /// Next JSON frame, within `secs`.
    pub async fn next_timeout(&mut self, secs: u64) -> Result<Value> {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(secs), self.stream.next())
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

    pub async fn next(&mut self) -> Result<Value> {
        self.next_timeout(10).await
    }

    /// Next frame of `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Result<Value> {
        loop {
            let v = self.next().await?;
            if v["type"] == kind {
                return Ok(v);
            }
        }
    }

    /// Whether any text frame arrives within `ms` (the server's pings, which
    /// reading answers, do not count).
    pub async fn quiet_for(&mut self, ms: u64) -> Result<Option<Value>> {
        let until = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            match tokio::time::timeout_at(until, self.stream.next()).await {
                Err(_) => return Ok(None),
                Ok(Some(Ok(Message::Text(t)))) => return Ok(Some(serde_json::from_str(&t)?)),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => bail!("unexpected: {other:?}"),
            }
        }
    }

    /// Subscribes and returns every frame up to and including `subscribed`.
    pub async fn subscribe(&mut self, event: &str, after: Option<u64>) -> Result<Vec<Value>> {
        self.send(json!({"type": "subscribe", "event_id": event, "after": after}))
            .await?;
        let mut out = Vec::new();
        loop {
            let v = self.next().await?;
            let done = v["type"] == "subscribed";
            if v["type"] == "error" {
                bail!("subscribe failed: {v}");
            }
            out.push(v);
            if done {
                return Ok(out);
            }
        }
    }

    /// A ping round trip: proves the connection is still up and served.
    pub async fn ping(&mut self) -> Result<()> {
        self.send(json!({"type": "ping", "client_time_ms": 42}))
            .await?;
        let v = self.next_of("pong").await?;
        anyhow::ensure!(v["client_time_ms"] == 42 && v["server_time_ms"].as_i64().is_some());
        Ok(())
    }
}

pub fn new_op_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(
        "t-{}-{}-{n}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}
