//! A client of one event: the [`Client`] handle the app and tests hold,
//! and the connection actor behind it (`connection`), one task that owns the
//! link, the replica and the cache. Every other part talks to it through
//! channels (a bounded sender of requests, state in `watch` channels).
//!
//! It logs in, subscribes with `after` = the last applied seq, applies what
//! arrives through [`Replica::apply`] only, pings to estimate server time and
//! to notice a dead socket, and reconnects with capped, jittered backoff,
//! replaying the outbox in order with the original op ids.
//!
//! Two answers are not failures to retry blindly: a revoked token (a 401
//! with `revoked`, or the socket closed with 1008) and a spent pairing code
//! end in [`Status::SignedOut`], which stays until a person joins again;
//! `rate_limited` keeps the op in the outbox and sends it again, with the
//! same op id, once the server's `retry_after_ms` has passed.

mod connection;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail};
use pitboss_core::ops::ChangeRecords;
use pitboss_core::protocol::By;
use pitboss_core::Op;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::cache::{Cache, PendingOp};
use crate::replica::Replica;
use crate::sleep::{SleepConfig, WakeSource};
use crate::sync::SyncState;
use crate::time::{steady_ms, wall_ms};
use crate::transport::http::HttpLink;
use crate::transport::Credentials;
use connection::{Connection, Inputs, Retry};

/// How a client connects.
#[derive(Debug, Clone)]
pub struct Config {
    /// `https://host:port` of the Pitboss server.
    pub server: String,
    /// The server's key, when the host or a person gave it. Without it,
    /// the key pinned in the cache when this device joined; without that,
    /// the first key seen (pinned at the first login).
    pub pin: Option<pitboss_tls::Fingerprint>,
    pub join_code: String,
    pub name: String,
    pub device: String,
    /// The event this client follows.
    pub event_id: String,
    /// The SQLite cache file.
    pub cache_path: PathBuf,
    /// How often to ping (server-time samples and liveness).
    pub ping_every: Duration,
    /// Silence after which the socket counts as dead.
    pub dead_after: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Added to this machine's clock. Zero in the app; tests use it to play
    /// a laptop whose clock is minutes off, which the server-time offset
    /// must cancel.
    pub local_clock_skew_ms: i64,
    /// How sleep and wake are noticed (rule 9 of docs/architecture.md).
    pub sleep: SleepConfig,
    /// With the WebSocket blocked (Degraded), how often to poll over HTTP.
    pub http_poll_every: Duration,
    /// With the WebSocket blocked, how often to try it again.
    pub ws_retry_every: Duration,
}

impl Config {
    pub fn new(server: &str, join_code: &str, event_id: &str, cache_path: PathBuf) -> Config {
        Config {
            server: server.trim_end_matches('/').to_string(),
            pin: None,
            join_code: join_code.to_string(),
            name: "Unnamed".into(),
            device: "unknown device".into(),
            event_id: event_id.to_string(),
            cache_path,
            ping_every: Duration::from_secs(4),
            dead_after: Duration::from_secs(12),
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
            local_clock_skew_ms: 0,
            sleep: SleepConfig::default(),
            http_poll_every: Duration::from_secs(5),
            ws_retry_every: Duration::from_secs(30),
        }
    }
}

/// Connection status, for the status bar on every screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    /// Trying to connect (first attempt, or one asked for by Refresh).
    Connecting,
    /// Subscribed and caught up: what is shown is the server's state.
    Live,
    /// Lost the connection moments ago; retrying.
    Reconnecting {
        next_attempt_at_ms: i64,
        since_ms: i64,
    },
    /// No connection for a while (or none yet): showing the cached state.
    Offline {
        since_ms: i64,
        next_attempt_at_ms: i64,
    },
    /// The server answers HTTP but the WebSocket is blocked (a proxy that
    /// refuses upgrades): changes are polled and ops sent over HTTP, so the
    /// screen is roughly current, not live.
    Degraded { since_ms: i64 },
    /// This device may not use the server until a person joins again: a
    /// coordinator revoked it, or its one-time pairing code is spent. The
    /// cached state is still shown; nothing is retried.
    SignedOut { reason: String },
    /// Something answers at the host's address without the key this device
    /// joined (short fingerprints of both): an impostor, or a reinstalled
    /// host. No code or token is sent to it; the address is tried again
    /// for the real host, and only a person can re-pair.
    KeyChanged {
        pinned: String,
        offered: String,
        next_attempt_at_ms: i64,
    },
}

/// What happened, for the app (alerts, conflict dialogs, pending marks).
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The state was replaced by a snapshot: a resync, never an alert.
    Snapshot { seq: u64 },
    /// A change was applied. `live` is false while catching up after a
    /// (re)subscribe: replays must not sound alerts (rule 7 of docs/architecture.md).
    Change {
        seq: u64,
        op_id: String,
        live: bool,
        records: Box<ChangeRecords>,
        by: Option<By>,
    },
    /// Subscription caught up at `seq`; later changes are live.
    CaughtUp { seq: u64 },
    /// An op of this client was applied at `seq`.
    Accepted { op_id: String, seq: u64 },
    /// The machine (or this process) was away: asleep, stopped. The engine
    /// drops its socket and resyncs at once; what it learns is not heard.
    Woke { source: WakeSource, away_ms: i64 },
    /// This machine's wall clock was set by `by_ms` (a time sync, a person).
    /// Nothing shown moves: the engine does not reckon on the wall clock.
    /// Neither a wake nor a resync; for the log only.
    WallClockSet { by_ms: i64 },
    /// The server is throttling this device: the op stays queued and is
    /// sent again, with the same op id, after `retry_after_ms`.
    Throttled { op_id: String, retry_after_ms: u64 },
    /// Signed out for good (see [`Status::SignedOut`]).
    SignedOut { reason: String },
    /// An op of this client was refused, with the record as it is now.
    Rejected {
        op_id: String,
        error: String,
        message: String,
        current: Option<Value>,
        /// What was sent, so a conflict view can show it beside `current`.
        op: Option<Op>,
    },
}

/// An op that breaks its own rules (a count of zero, an empty table): it is
/// refused before it reaches the outbox, and callers can tell this from a
/// failure of the device (`downcast_ref` on the error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidOp(pub String);

/// The answer to one op, for callers that wait for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Accepted {
        seq: u64,
    },
    Rejected {
        error: String,
        message: String,
        current: Option<Value>,
    },
}

/// What the handle asks of the actor.
pub(crate) enum Request {
    Op(PendingOp, oneshot::Sender<anyhow::Result<()>>),
    Refresh,
    /// Ask the server now how far its changes are complete (a ping), for an
    /// alert waiting to be confirmed.
    PingNow,
    Shutdown,
}

/// The handle the app and tests hold.
pub struct Client {
    cmd: mpsc::Sender<Request>,
    status: watch::Receiver<Status>,
    replica: watch::Receiver<Option<Arc<Replica>>>,
    pending: watch::Receiver<Arc<Vec<PendingOp>>>,
    notices: broadcast::Sender<Notice>,
    offset: Arc<Mutex<Option<i64>>>,
    synced_ms: Arc<std::sync::atomic::AtomicI64>,
    heard_through: watch::Receiver<Option<i64>>,
    skew_ms: i64,
    event_id: String,
    task: tokio::task::JoinHandle<()>,
    sleep_task: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.sleep_task.abort();
    }
}

fn new_op_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Client {
    /// Opens the cache (so the last known state is available at once) and
    /// starts connecting in the background.
    pub fn start(config: Config) -> anyhow::Result<Client> {
        let cache = Cache::open(&config.cache_path)?;
        let cached = cache.load_replica(&config.event_id)?;
        let pending = cache.pending_for(&config.event_id)?;
        let since = cached.as_ref().map_or_else(wall_ms, |(_, t)| *t);
        let synced_at = cached.as_ref().map_or(0, |(_, t)| *t);
        let (status_tx, status) = watch::channel(Status::Connecting);
        let (replica_tx, replica) = watch::channel(cached.map(|(r, _)| Arc::new(r)));
        let (pending_tx, pending_rx) = watch::channel(Arc::new(pending));
        let (notices, _) = broadcast::channel(1024);
        let (cmd, cmd_rx) = mpsc::channel(256);
        let offset = Arc::new(Mutex::new(None));
        let synced_ms = Arc::new(std::sync::atomic::AtomicI64::new(synced_at));
        let (heard_through, heard_rx) = watch::channel(None);
        let event_id = config.event_id.clone();
        let skew_ms = config.local_clock_skew_ms;
        let (power_tx, power_rx) = mpsc::channel(16);
        let sleep_task = tokio::spawn(crate::sleep::watch(config.sleep.clone(), power_tx));
        let mut sync = SyncState::new(
            &config.event_id,
            replica.borrow().as_deref().cloned(),
            pending_rx.borrow().as_ref().clone(),
        );
        // The role is read once: from the remembered session here, from
        // the answer of each login after.
        sync.set_display(
            cache
                .session(&config.server)
                .ok()
                .flatten()
                .is_some_and(|s| s.role == "display"),
        );
        let creds = Credentials::new(
            &config.server,
            &config.join_code,
            &config.name,
            &config.device,
            config.pin,
            &cache,
        )?;
        let http = creds.http_client(Duration::from_secs(10))?;
        let connection = Connection {
            sync,
            creds,
            fallback: HttpLink::new(http.clone(), &config.server, &config.event_id),
            http,
            retry: Retry::new(&config),
            cfg: config,
            cache,
            status_tx,
            replica_tx,
            pending_tx,
            notices: notices.clone(),
            offset: offset.clone(),
            synced_ms: synced_ms.clone(),
            heard_through,
            inputs: Inputs {
                cmd_rx,
                power_rx,
                notices: notices.clone(),
            },
            lost_since: since,
        };
        let task = tokio::spawn(connection.run());
        Ok(Client {
            cmd,
            status,
            replica,
            pending: pending_rx,
            notices,
            offset,
            synced_ms,
            heard_through: heard_rx,
            skew_ms,
            event_id,
            task,
            sleep_task,
        })
    }

    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    pub fn replica(&self) -> watch::Receiver<Option<Arc<Replica>>> {
        self.replica.clone()
    }

    pub fn pending(&self) -> watch::Receiver<Arc<Vec<PendingOp>>> {
        self.pending.clone()
    }

    pub fn notices(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Estimated server time now, reckoned on the steady clock (never on
    /// the wall clock, which a time sync may step). Before the first
    /// server sample, this machine's own time as it read at start.
    pub fn server_now_ms(&self) -> i64 {
        let off = self.offset.lock().ok().and_then(|o| *o).unwrap_or(0);
        steady_ms() + self.skew_ms + off
    }

    /// Local wall time of the last message from the server (or of the
    /// cached state), for "Offline — last synced hh:mm:ss". None if never.
    pub fn last_synced_ms(&self) -> Option<i64> {
        match self.synced_ms.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    /// The server instant through which this client has every change of
    /// its event (`None` before the first word): the server said so in a
    /// pong, or a later change arrived. A level crossed on the local clock
    /// at or before it really began (no adjustment was on its way); see
    /// [`crate::alerts`]. A watch, so a screen waiting to confirm a level
    /// it crossed sounds it the moment this moves on, not at its next tick.
    pub fn heard_through_watch(&self) -> watch::Receiver<Option<i64>> {
        self.heard_through.clone()
    }

    /// Asks the server at once how far its changes are complete, instead of
    /// at the next periodic ping. Never waits; a full queue drops the ask.
    pub fn ping_now(&self) {
        drop(self.cmd.try_send(Request::PingNow));
    }

    /// The event this client follows.
    pub fn event_id(&self) -> &str {
        &self.event_id
    }

    /// Estimated difference server − local, once known.
    pub fn offset_ms(&self) -> Option<i64> {
        self.offset.lock().ok().and_then(|o| *o)
    }

    /// Queues an op durably (outbox) and sends it when connected. Returns its
    /// op id; the outcome arrives as a [`Notice`].
    pub async fn submit(&self, op: Op) -> anyhow::Result<String> {
        op.validate().map_err(|e| InvalidOp(e.to_string()))?;
        let p = PendingOp {
            op_id: new_op_id(),
            event_id: self.event_id.clone(),
            op,
            created_at_ms: wall_ms(),
        };
        let id = p.op_id.clone();
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Request::Op(p, tx))
            .await
            .map_err(|_| anyhow!("the client has stopped"))?;
        rx.await.map_err(|_| anyhow!("the client has stopped"))??;
        Ok(id)
    }

    /// Submits and waits for the server's answer.
    pub async fn submit_and_wait(&self, op: Op, within: Duration) -> anyhow::Result<Outcome> {
        let mut notices = self.notices();
        let id = self.submit(op).await?;
        tokio::time::timeout(within, async {
            loop {
                match notices.recv().await {
                    Ok(Notice::Accepted { op_id, seq }) if op_id == id => {
                        return Ok(Outcome::Accepted { seq })
                    }
                    Ok(Notice::Rejected {
                        op_id,
                        error,
                        message,
                        current,
                        ..
                    }) if op_id == id => {
                        return Ok(Outcome::Rejected {
                            error,
                            message,
                            current,
                        })
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => bail!("the client has stopped"),
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no answer for op {id} within {within:?} (it stays queued)"))?
    }

    /// Refresh: reconnect now if offline, resync if live.
    pub async fn refresh(&self) {
        drop(self.cmd.send(Request::Refresh).await);
    }

    /// Waits until the status satisfies `ok`.
    pub async fn wait_status(
        &self,
        within: Duration,
        ok: impl Fn(&Status) -> bool,
    ) -> anyhow::Result<Status> {
        let mut rx = self.status();
        tokio::time::timeout(within, async {
            loop {
                let s = rx.borrow_and_update().clone();
                if ok(&s) {
                    return Ok(s);
                }
                rx.changed().await.map_err(|_| anyhow!("client stopped"))?;
            }
        })
        .await
        .map_err(|_| anyhow!("status still {:?} after {within:?}", *self.status.borrow()))?
    }

    /// Asks the actor to stop (flushing the cache) without waiting; for
    /// holders that share the client behind an `Arc`.
    pub async fn stop(&self) {
        drop(self.cmd.send(Request::Shutdown).await);
    }

    /// Stops the actor, flushing the cache.
    pub async fn shutdown(mut self) {
        drop(self.cmd.send(Request::Shutdown).await);
        drop((&mut self.task).await);
    }
}
