//! What every client test sets up: a real server on a free port with the
//! demo event and known join codes, a client config that reconnects
//! quickly, and waits on what a screen would show. The venue's network in
//! between is the project's fault proxy (latency, stalls, resets, blocked
//! upgrades).

#![allow(dead_code, unused_imports)] // each test file uses its own part of the fixture

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pitboss_client::{Client, Config, Outcome};
use pitboss_core::Op;
pub use pitboss_faultproxy::Proxy;

pub const COORD: &str = "COORD-1111";
pub const DEALER: &str = "DEAL-2222";

/// A server on a free local port with the demo event.
pub async fn server(dir: &Path) -> Result<pitboss_server::Server> {
    server_with(dir, |_| {}).await
}

/// [`server`], with `tune` changing its config first (limits, address).
pub async fn server_with(
    dir: &Path,
    tune: impl FnOnce(&mut pitboss_server::Config),
) -> Result<pitboss_server::Server> {
    let mut c = pitboss_server::Config::new("127.0.0.1:0".parse()?, dir.to_path_buf());
    c.coordinator_code = Some(COORD.into());
    c.dealer_code = Some(DEALER.into());
    c.demo = true;
    c.synchronous = pitboss_server::Synchronous::Normal;
    tune(&mut c);
    pitboss_server::start(c).await
}

/// A fault proxy that reads the HTTP inside the server's TLS (it holds the
/// server's key, from its data folder `dir`), so it can block upgrades.
pub async fn terminating_proxy(srv: &pitboss_server::Server, dir: &Path) -> Result<Proxy> {
    let identity = pitboss_tls::Identity::load_or_create(dir)?;
    anyhow::ensure!(identity.fingerprint() == srv.fingerprint());
    let pin = pitboss_tls::Pin::to(srv.fingerprint());
    Ok(Proxy::start_terminating(srv.local_addr(), &identity, pin).await?)
}

/// A client of `event` at `addr` that retries within a few hundred ms, so
/// a test sees a reconnect in its own time, not a venue's.
pub fn config(addr: SocketAddr, code: &str, event: &str, cache: &Path) -> Config {
    config_at(&format!("https://{addr}"), code, event, cache)
}

/// [`config`] for a server base URL.
pub fn config_at(base: &str, code: &str, event: &str, cache: &Path) -> Config {
    let mut cfg = Config::new(base, code, event, cache.to_path_buf());
    cfg.backoff_min = Duration::from_millis(50);
    cfg.backoff_max = Duration::from_millis(300);
    cfg
}

/// The last seq the client shows.
pub fn seq_of(c: &Client) -> u64 {
    c.replica().borrow().as_ref().map_or(0, |r| r.seq)
}

/// Waits until the client shows `seq`; how long it took.
pub async fn wait_seq(c: &Client, seq: u64, within: Duration) -> Result<Duration> {
    let t = Instant::now();
    let mut r = c.replica();
    tokio::time::timeout(within, async {
        while r.borrow_and_update().as_ref().map_or(0, |r| r.seq) < seq {
            if r.changed().await.is_err() {
                break;
            }
        }
    })
    .await
    .with_context(|| format!("still at seq {} (want {seq})", seq_of(c)))?;
    Ok(t.elapsed())
}

/// Submits and waits for the server to take the op; its seq.
pub async fn accepted(c: &Client, op: Op) -> Result<u64> {
    match c.submit_and_wait(op, Duration::from_secs(10)).await? {
        Outcome::Accepted { seq } => Ok(seq),
        o => bail!("refused: {o:?}"),
    }
}
