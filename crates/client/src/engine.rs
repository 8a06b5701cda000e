//! The connection actor: one task per client that owns the socket, the
//! replica and the cache, and that every other part talks to through
//! channels (a handle with a bounded sender, state in `watch` channels).
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

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use futures_util::{SinkExt, StreamExt};
use pitboss_core::ops::ChangeRecords;
use pitboss_core::protocol::{By, ClientMsg, ServerMsg, SessionResponse};
use pitboss_core::Op;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::backoff::Backoff;
use crate::cache::{Cache, PendingOp, StoredSession};
use crate::replica::Replica;
use crate::sleep::{PowerEvent, SleepConfig, Wake, WakeSource};
use crate::sync::{Effect, QueueError, SyncState};
use crate::time::{steady_ms, wall_ms};
use crate::venue::{
    error_body, is_pairing_code, normalize_code, CODE_REFUSED, PAIRING_SPENT, REVOKED,
};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a client connects.
#[derive(Debug, Clone)]
pub struct Config {
    /// `http://host:port` of the Pitboss server.
    pub server: String,
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
    /// How sleep and wake are noticed (rule 9).
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
}

/// What happened, for the app (alerts, conflict dialogs, pending marks).
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The state was replaced by a snapshot: a resync, never an alert.
    Snapshot { seq: u64 },
    /// A change was applied. `live` is false while catching up after a
    /// (re)subscribe: replays must not sound alerts (rule 7).
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

enum Cmd {
    Op(PendingOp, oneshot::Sender<anyhow::Result<()>>),
    Refresh,
    /// Ask the server now how far its changes are complete (a ping), for an
    /// alert waiting to be confirmed.
    PingNow,
    Shutdown,
}

/// The sleep events the actor acts on (a wall-clock step is not one).
enum Power {
    GoingToSleep,
    Woke(Wake),
}

/// What the actor waits on besides the socket.
enum Input {
    Cmd(Option<Cmd>),
    Power(Power),
}

/// The handle the app and tests hold.
pub struct Client {
    cmd: mpsc::Sender<Cmd>,
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
        let actor = Actor {
            sync,
            cfg: config,
            cache,
            status_tx,
            replica_tx,
            pending_tx,
            notices: notices.clone(),
            offset: offset.clone(),
            synced_ms: synced_ms.clone(),
            heard_through,
            cmd_rx,
            power_rx,
            lost_since: since,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        };
        let task = tokio::spawn(actor.run());
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
        drop(self.cmd.try_send(Cmd::PingNow));
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
        op.validate().map_err(|e| anyhow!("{e}"))?;
        let p = PendingOp {
            op_id: new_op_id(),
            event_id: self.event_id.clone(),
            op,
            created_at_ms: wall_ms(),
        };
        let id = p.op_id.clone();
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::Op(p, tx))
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
        drop(self.cmd.send(Cmd::Refresh).await);
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
        drop(self.cmd.send(Cmd::Shutdown).await);
    }

    /// Stops the actor, flushing the cache.
    pub async fn shutdown(mut self) {
        drop(self.cmd.send(Cmd::Shutdown).await);
        drop((&mut self.task).await);
    }
}

struct Actor {
    cfg: Config,
    cache: Cache,
    /// The protocol state: replica, outbox, acks, pings, throttle.
    sync: SyncState,
    status_tx: watch::Sender<Status>,
    replica_tx: watch::Sender<Option<Arc<Replica>>>,
    pending_tx: watch::Sender<Arc<Vec<PendingOp>>>,
    notices: broadcast::Sender<Notice>,
    offset: Arc<Mutex<Option<i64>>>,
    synced_ms: Arc<std::sync::atomic::AtomicI64>,
    /// See [`Client::heard_through_watch`].
    heard_through: watch::Sender<Option<i64>>,
    cmd_rx: mpsc::Receiver<Cmd>,
    power_rx: mpsc::Receiver<PowerEvent>,
    /// When the connection was last lost (or the cache last synced).
    lost_since: i64,
    http: reqwest::Client,
}

enum End {
    Disconnected,
    Shutdown,
    /// The machine woke: reconnect at once, no backoff.
    Woke,
    /// The WebSocket is refused but HTTP works.
    WsBlocked,
    /// Revoked or a spent pairing code: stop until a person joins again.
    SignedOut(String),
}

/// The server will not take this device any more (see [`Status::SignedOut`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SignedOutErr(String);

/// The server refused a login attempt for now; try again after this long.
#[derive(Debug, thiserror::Error)]
#[error("too many login attempts; the server asks to wait {0} ms")]
struct LoginThrottled(u64);

/// The WebSocket upgrade was answered with plain HTTP (this status).
#[derive(Debug, thiserror::Error)]
#[error("the WebSocket upgrade was refused with HTTP {0}")]
struct WsRefused(u16);

/// What the effects of one input ask of the connection.
#[derive(Default)]
struct Outgoing {
    /// Messages for the server, in order.
    send: Vec<ClientMsg>,
    /// A gap: subscribe again (or, over HTTP, take a snapshot).
    resume: bool,
}

/// A frame that cannot be written within this long goes to a dead socket.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// How much an HTTP answer's completeness is discounted for the error of the
/// server-time estimate it is reckoned with.
const HTTP_THROUGH_MARGIN_MS: i64 = 100;

/// Failed attempts after which "Reconnecting" becomes "Offline".
const QUICK_RETRIES: u32 = 3;

impl Actor {
    async fn run(mut self) {
        let mut backoff = Backoff::new(self.cfg.backoff_min, self.cfg.backoff_max);
        let mut failures = 0u32;
        // Until the first connection of this run, a failure is not "moments
        // ago": an app started while the host is away shows the cached state
        // as offline since its last sync, not "Reconnecting" for a while.
        let mut ever_connected = false;
        // A login the server throttled: wait at least this long before the next.
        let mut login_wait: Option<Duration> = None;
        loop {
            if failures == 0 {
                self.status_tx.send_replace(Status::Connecting);
            }
            let end = match self.connect().await {
                Ok(ws) => {
                    backoff.reset();
                    failures = 0;
                    ever_connected = true;
                    let end = self.session(ws).await;
                    self.flush();
                    self.lost_since = wall_ms();
                    end
                }
                Err(e) => {
                    tracing::debug!("connect failed: {e:#}");
                    if let Some(SignedOutErr(reason)) = e.downcast_ref::<SignedOutErr>() {
                        End::SignedOut(reason.clone())
                    } else if e.downcast_ref::<WsRefused>().is_some() && self.http_reachable().await
                    {
                        End::WsBlocked
                    } else {
                        if let Some(LoginThrottled(ms)) = e.downcast_ref::<LoginThrottled>() {
                            login_wait = Some(Duration::from_millis(*ms));
                        }
                        End::Disconnected
                    }
                }
            };
            match end {
                End::Shutdown => return,
                End::SignedOut(reason) => {
                    if self.signed_out(reason).await {
                        return;
                    }
                    failures = 0;
                    continue;
                }
                End::Woke => {
                    // Straight back: the socket was dead, the state is stale.
                    backoff.reset();
                    failures = 0;
                    continue;
                }
                End::WsBlocked => {
                    match self.degraded().await {
                        End::Shutdown => return,
                        End::SignedOut(reason) => {
                            if self.signed_out(reason).await {
                                return;
                            }
                            failures = 0;
                            continue;
                        }
                        // Time to try the WebSocket again, or a wake.
                        End::Woke | End::WsBlocked => {
                            failures = 0;
                            continue;
                        }
                        End::Disconnected => {}
                    }
                }
                End::Disconnected => {}
            }
            failures += 1;
            let delay = backoff
                .next_delay()
                .max(login_wait.take().unwrap_or_default());
            let next = wall_ms() + delay.as_millis() as i64;
            self.status_tx
                .send_replace(if ever_connected && failures <= QUICK_RETRIES {
                    Status::Reconnecting {
                        next_attempt_at_ms: next,
                        since_ms: self.lost_since,
                    }
                } else {
                    Status::Offline {
                        since_ms: self.lost_since,
                        next_attempt_at_ms: next,
                    }
                });
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                let input = tokio::select! {
                    () = &mut sleep => break,
                    i = self.next_input() => i,
                };
                match input {
                    Input::Cmd(None | Some(Cmd::Shutdown)) => return,
                    Input::Cmd(Some(Cmd::Refresh)) => {
                        failures = 0;
                        break;
                    }
                    Input::Cmd(Some(Cmd::PingNow)) => {}
                    Input::Cmd(Some(Cmd::Op(p, reply))) => {
                        drop(reply.send(self.queue(p).map(drop)));
                    }
                    Input::Power(Power::GoingToSleep) => self.flush(),
                    Input::Power(Power::Woke(w)) => {
                        self.woke(w);
                        failures = 0;
                        break;
                    }
                }
            }
        }
    }

    /// Signed out: says so, keeps showing the cached state and waits. Ops
    /// are refused (the outbox keeps what it has). A Refresh looks again,
    /// in case a person joined again with this cache meanwhile. Returns
    /// true on shutdown.
    async fn signed_out(&mut self, reason: String) -> bool {
        tracing::warn!("signed out: {reason}");
        if let Err(e) = self
            .cache
            .mark_signed_out(&self.cfg.server, &reason, wall_ms())
        {
            tracing::warn!("cannot remember the sign-out: {e:#}");
        }
        self.flush();
        self.sync.clear_throttle();
        self.status_tx.send_replace(Status::SignedOut {
            reason: reason.clone(),
        });
        drop(self.notices.send(Notice::SignedOut { reason }));
        loop {
            match self.next_input().await {
                Input::Cmd(None | Some(Cmd::Shutdown)) => return true,
                Input::Cmd(Some(Cmd::Op(_, reply))) => drop(reply.send(Err(anyhow!(
                    "this device is signed out of the host; join again with a new code"
                )))),
                Input::Cmd(Some(Cmd::Refresh)) => {
                    if matches!(self.cache.signed_out(&self.cfg.server), Ok(None)) {
                        return false;
                    }
                }
                Input::Cmd(Some(Cmd::PingNow)) => {}
                Input::Power(Power::GoingToSleep | Power::Woke(_)) => {}
            }
        }
    }

    /// Carries out the local effects of the protocol state (store,
    /// publish, notify) in order, and returns what must go to the server.
    fn carry(&mut self, effects: Vec<Effect>) -> Outgoing {
        let mut out = Outgoing::default();
        for e in effects {
            match e {
                Effect::Send(m) => out.send.push(m),
                Effect::Resume => out.resume = true,
                Effect::ForgetOp(id) => {
                    // Left in the outbox, it is sent again after a restart
                    // and the server answers it as the first time.
                    if let Err(e) = self.cache.remove_op(&id) {
                        tracing::warn!("cannot remove the answered op {id} from the outbox: {e:#}");
                    }
                }
                Effect::SaveReplica => self.flush(),
                Effect::PublishReplica => {
                    self.replica_tx
                        .send_replace(self.sync.replica().cloned().map(Arc::new));
                }
                Effect::PublishPending => {
                    self.pending_tx.send_replace(Arc::new(self.sync.pending()));
                }
                Effect::Notice(n) => drop(self.notices.send(n)),
                Effect::Status(st) => {
                    self.status_tx.send_replace(st);
                }
                Effect::HeardThrough(t) => self.heard_through(t),
                Effect::Offset(o) => {
                    if let Ok(mut g) = self.offset.lock() {
                        *g = Some(o);
                    }
                }
            }
        }
        out
    }

    /// Puts an op in the durable outbox first, then in the protocol state
    /// (which sends it when it may). A display queues nothing.
    fn queue(&mut self, p: PendingOp) -> anyhow::Result<Outgoing> {
        if self.sync.is_display() {
            bail!(QueueError::Display);
        }
        self.cache.push_op(&p)?;
        let effects = self.sync.queue(p, self.now())?;
        Ok(self.carry(effects))
    }

    /// Writes the replica to the cache if it changed.
    fn flush(&mut self) {
        if !self.sync.take_dirty() {
            return;
        }
        if let Some(r) = self.sync.replica() {
            if let Err(e) = self.cache.save_replica(r, wall_ms()) {
                tracing::warn!("cannot write the cache: {e:#}");
                self.sync.mark_dirty();
            }
        }
    }

    /// When the server's throttle ends, as a timer instant.
    fn throttle_deadline(&self) -> Option<tokio::time::Instant> {
        let now = self.now();
        self.sync
            .throttle_until_ms()
            .map(|t| tokio::time::Instant::now() + Duration::from_millis((t - now).max(0) as u64))
    }

    fn ws_url(&self, token: &str) -> String {
        let base = self
            .cfg
            .server
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1);
        format!("{base}/ws?token={token}")
    }

    /// Logs in with the configured code when there is no session (the first
    /// time, or after the server forgot the token). A code the server
    /// refuses will not work on the next try either — a pairing code is
    /// single use — so a 401 signs the device out instead of retrying.
    async fn login(&self) -> anyhow::Result<StoredSession> {
        if let Some(reason) = self.cache.signed_out(&self.cfg.server)? {
            return Err(SignedOutErr(reason).into());
        }
        let r = self
            .http
            .post(format!("{}/api/session", self.cfg.server))
            .json(&json!({"join_code": normalize_code(&self.cfg.join_code), "name": self.cfg.name, "device": self.cfg.device}))
            .send()
            .await?;
        if !r.status().is_success() {
            let status = r.status();
            let body = error_body(&r.bytes().await.unwrap_or_default());
            if status == reqwest::StatusCode::UNAUTHORIZED {
                let reason = if body.as_ref().is_some_and(|b| b.revoked) {
                    REVOKED
                } else if is_pairing_code(&self.cfg.join_code) {
                    PAIRING_SPENT
                } else {
                    CODE_REFUSED
                };
                return Err(SignedOutErr(reason.into()).into());
            }
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                let ms = body
                    .as_ref()
                    .and_then(|b| b.retry_after_ms)
                    .unwrap_or(5_000);
                return Err(LoginThrottled(ms).into());
            }
            bail!(
                "login refused ({status}): {}",
                body.map(|b| b.message)
                    .unwrap_or_else(|| "no reason given".into())
            );
        }
        let s: SessionResponse = r.json().await?;
        let stored = StoredSession {
            token: s.token,
            role: s.role.as_str().to_string(),
            operator_id: s.operator_id,
        };
        self.cache.save_session(&self.cfg.server, &stored)?;
        Ok(stored)
    }

    /// The remembered session, or a new one by logging in. Its role is
    /// the one the protocol state goes by from here: a person may have
    /// joined again with another code meanwhile (see `signed_out`).
    async fn session_to_use(&mut self) -> anyhow::Result<StoredSession> {
        let session = match self.cache.session(&self.cfg.server)? {
            Some(s) => s,
            None => self.login().await?,
        };
        self.sync.set_display(session.role == "display");
        Ok(session)
    }

    async fn connect(&mut self) -> anyhow::Result<Socket> {
        if let Some(reason) = self.cache.signed_out(&self.cfg.server)? {
            return Err(SignedOutErr(reason).into());
        }
        for _ in 0..2 {
            let session = self.session_to_use().await?;
            let url = self.ws_url(&session.token);
            let attempt = tokio::time::timeout(
                Duration::from_secs(10),
                tokio_tungstenite::connect_async(url.as_str()),
            )
            .await
            .context("WebSocket handshake timed out")?;
            match attempt {
                Ok((ws, _)) => return Ok(ws),
                Err(tokio_tungstenite::tungstenite::Error::Http(resp)) if resp.status() == 401 => {
                    let revoked = resp
                        .body()
                        .as_deref()
                        .and_then(error_body)
                        .is_some_and(|b| b.revoked);
                    if revoked {
                        return Err(SignedOutErr(REVOKED.into()).into());
                    }
                    // The server forgot this token (a new store): log in
                    // again if the code allows it.
                    self.cache.forget_session(&self.cfg.server)?;
                }
                Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                    // Something answered the upgrade with plain HTTP: a
                    // proxy that blocks WebSockets, most likely.
                    return Err(WsRefused(resp.status().as_u16()).into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        bail!("the server refused the session token twice")
    }

    async fn send_all(ws: &mut Socket, msgs: Vec<ClientMsg>) -> anyhow::Result<()> {
        for m in msgs {
            let text = serde_json::to_string(&m)?;
            // A stalled peer stops reading; once the kernel's buffer is full
            // a write would wait forever. Past the timeout the socket is dead.
            tokio::time::timeout(SEND_TIMEOUT, ws.send(Message::Text(text.into())))
                .await
                .context("the server stopped reading")??;
        }
        Ok(())
    }

    /// The next command or sleep event. A wall-clock step is said and then
    /// passed over here, so no state of the actor ever reacts to it: the
    /// engine reckons on the steady clock, which did not move.
    async fn next_input(&mut self) -> Input {
        loop {
            let p = tokio::select! {
                c = self.cmd_rx.recv() => return Input::Cmd(c),
                Some(p) = self.power_rx.recv() => p,
            };
            match p {
                PowerEvent::GoingToSleep => return Input::Power(Power::GoingToSleep),
                PowerEvent::Woke(w) => return Input::Power(Power::Woke(w)),
                PowerEvent::WallStepped { by_ms } => {
                    drop(self.notices.send(Notice::WallClockSet { by_ms }));
                }
            }
        }
    }

    fn woke(&mut self, w: Wake) {
        tracing::info!(?w.source, w.away_ms, "woke: resyncing now");
        self.flush();
        self.lost_since = wall_ms();
        self.status_tx.send_replace(Status::Connecting);
        drop(self.notices.send(Notice::Woke {
            source: w.source,
            away_ms: w.away_ms,
        }));
    }

    /// This client's time for the protocol state: the steady clock (plus
    /// the skew a test plays).
    fn now(&self) -> i64 {
        steady_ms() + self.cfg.local_clock_skew_ms
    }

    /// Carries out `effects` and sends what they ask for; a gap asks to
    /// subscribe again from the last applied seq.
    async fn carry_on(&mut self, ws: &mut Socket, effects: Vec<Effect>) -> anyhow::Result<()> {
        let out = self.carry(effects);
        Self::send_all(ws, out.send).await?;
        if out.resume {
            let again = self.sync.resubscribe();
            let out = self.carry(again);
            Self::send_all(ws, out.send).await?;
        }
        Ok(())
    }

    async fn session(&mut self, mut ws: Socket) -> End {
        let end = self.session_on(&mut ws).await;
        self.sync.on_disconnected();
        end
    }

    async fn session_on(&mut self, ws: &mut Socket) -> End {
        // Any frame from the server (pong, change, ping) proves it alive;
        // silence past `dead_after` is a half-open socket (rule 8).
        let mut last_heard = tokio::time::Instant::now();
        // A few quick pings right after connecting give a good offset before
        // the first screen renders; then one every `ping_every`.
        let mut quick_pings = 3u32;
        let mut next_ping = tokio::time::Instant::now();
        let mut last_ping = tokio::time::Instant::now();
        let mut flush = tokio::time::interval(Duration::from_millis(250));
        // Subscribe, then the outbox in order (see SyncState::on_connected).
        let setup = self.sync.on_connected(self.now());
        if let Err(e) = self.carry_on(ws, setup).await {
            tracing::debug!("session setup failed: {e:#}");
            return End::Disconnected;
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(last_heard + self.cfg.dead_after) => {
                    tracing::info!("no word from the server for {:?}: reconnecting", self.cfg.dead_after);
                    return End::Disconnected;
                }
                () = sleep_until_some(self.throttle_deadline()) => {
                    let held = self.sync.on_tick(self.now());
                    if self.carry_on(ws, held).await.is_err() { return End::Disconnected; }
                }
                msg = ws.next() => {
                    let text = match msg {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(Some(c)))) if c.code == CloseCode::Policy => {
                            // 1008: a coordinator revoked this device.
                            tracing::info!("the server closed the connection: {}", c.reason);
                            return End::SignedOut(REVOKED.into());
                        }
                        Some(Ok(Message::Close(c))) => {
                            tracing::info!("server closed the connection: {c:?}");
                            return End::Disconnected;
                        }
                        Some(Ok(_)) => { last_heard = tokio::time::Instant::now(); continue; }
                        Some(Err(e)) => { tracing::debug!("socket error: {e}"); return End::Disconnected; }
                        None => return End::Disconnected,
                    };
                    last_heard = tokio::time::Instant::now();
                    self.synced_ms.store(wall_ms(), std::sync::atomic::Ordering::Relaxed);
                    let msg: ServerMsg = match serde_json::from_str(&text) {
                        Ok(m) => m,
                        Err(e) => { tracing::warn!("unreadable frame from server: {e}"); continue; }
                    };
                    let effects = self.sync.on_server_msg(msg, self.now());
                    if self.carry_on(ws, effects).await.is_err() { return End::Disconnected; }
                }
                input = self.next_input() => match input {
                    Input::Cmd(None | Some(Cmd::Shutdown)) => {
                        drop(tokio::time::timeout(SEND_TIMEOUT, ws.close(None)).await);
                        return End::Shutdown;
                    }
                    Input::Cmd(Some(Cmd::Refresh)) => {
                        let again = self.sync.resubscribe();
                        if self.carry_on(ws, again).await.is_err() { return End::Disconnected; }
                    }
                    Input::Cmd(Some(Cmd::PingNow)) => {
                        // At most one extra ping per 100 ms, however often
                        // the screens ask; one asked for just after a ping
                        // goes 100 ms after it (that ping's answer may be
                        // from before what the screen waits for).
                        let soonest = last_ping + Duration::from_millis(100);
                        next_ping = next_ping.min(soonest.max(tokio::time::Instant::now()));
                    }
                    Input::Cmd(Some(Cmd::Op(p, reply))) => match self.queue(p) {
                        Ok(out) => {
                            drop(reply.send(Ok(())));
                            if Self::send_all(ws, out.send).await.is_err() { return End::Disconnected; }
                        }
                        Err(e) => drop(reply.send(Err(e))),
                    },
                    Input::Power(Power::GoingToSleep) => self.flush(),
                    Input::Power(Power::Woke(w)) => {
                        // The socket may look open but is likely dead, and
                        // everything shown is stale: start over at once.
                        self.woke(w);
                        return End::Woke;
                    }
                },
                () = tokio::time::sleep_until(next_ping) => {
                    next_ping = tokio::time::Instant::now() + if quick_pings > 0 {
                        quick_pings -= 1;
                        Duration::from_millis(200)
                    } else {
                        self.cfg.ping_every
                    };
                    last_ping = tokio::time::Instant::now();
                    let ping = self.sync.ping(self.now());
                    if self.carry_on(ws, vec![ping]).await.is_err() {
                        return End::Disconnected;
                    }
                }
                _ = flush.tick() => self.flush(),
            }
        }
    }

    /// Is the server there over plain HTTP?
    async fn http_reachable(&self) -> bool {
        let r = self
            .http
            .get(format!("{}/api/health", self.cfg.server))
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        matches!(r, Ok(r) if r.status().is_success())
    }

    /// The HTTP fallback: the WebSocket is blocked but HTTP works. Ops go
    /// over HTTP, changes are polled slowly (and at once on Refresh), and
    /// the WebSocket is tried again every `ws_retry_every`. Returns
    /// `WsBlocked` when it is time to try the WebSocket again.
    async fn degraded(&mut self) -> End {
        let since = wall_ms();
        tracing::info!("WebSocket refused but HTTP works: degraded mode");
        let mut poll = tokio::time::interval(self.cfg.http_poll_every);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let retry = tokio::time::sleep(self.cfg.ws_retry_every);
        tokio::pin!(retry);
        let mut last_round = tokio::time::Instant::now();
        loop {
            let input = tokio::select! {
                _ = poll.tick() => None,
                () = &mut retry => return End::WsBlocked,
                // A throttle ended: the next round sends the whole outbox.
                () = sleep_until_some(self.throttle_deadline()) => {
                    let held = self.sync.on_tick(self.now());
                    self.carry(held);
                    None
                }
                i = self.next_input() => Some(i),
            };
            match input {
                None | Some(Input::Cmd(Some(Cmd::Refresh))) => {}
                // A screen waits to confirm a level it crossed: poll now,
                // but not more than once a second.
                Some(Input::Cmd(Some(Cmd::PingNow))) => {
                    if last_round.elapsed() < Duration::from_secs(1) {
                        continue;
                    }
                }
                Some(Input::Cmd(None | Some(Cmd::Shutdown))) => return End::Shutdown,
                Some(Input::Cmd(Some(Cmd::Op(p, reply)))) => {
                    drop(reply.send(self.queue(p).map(drop)));
                }
                Some(Input::Power(Power::GoingToSleep)) => {
                    self.flush();
                    continue;
                }
                Some(Input::Power(Power::Woke(w))) => {
                    self.woke(w);
                    return End::Woke;
                }
            }
            last_round = tokio::time::Instant::now();
            if let Err(e) = self.http_round().await {
                if let Some(SignedOutErr(reason)) = e.downcast_ref::<SignedOutErr>() {
                    return End::SignedOut(reason.clone());
                }
                tracing::info!("the HTTP fallback failed too: {e:#}");
                self.flush();
                self.lost_since = wall_ms();
                return End::Disconnected;
            }
            self.flush();
            self.status_tx
                .send_replace(Status::Degraded { since_ms: since });
        }
    }

    /// One exchange over HTTP: a time sample, the outbox in order, then the
    /// changes since the last applied seq (or a snapshot).
    async fn http_round(&mut self) -> anyhow::Result<()> {
        let session = self.session_to_use().await?;
        let base = format!("{}/api/events/{}", self.cfg.server, self.cfg.event_id);
        let sent = self.now();
        let health: Value = self
            .http
            .get(format!("{}/api/health", self.cfg.server))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if let Some(server) = health["server_time_ms"].as_i64() {
            let sample = self.sync.time_sample(sent, server, self.now());
            self.carry(sample);
        }
        let outbox = if self.sync.may_send_ops(self.now()) {
            self.sync.outbox().to_vec()
        } else {
            Vec::new()
        };
        for p in outbox {
            let r = self
                .http
                .post(format!("{base}/ops"))
                .bearer_auth(&session.token)
                .json(&json!({"op_id": p.op_id, "op": p.op}))
                .send()
                .await?;
            let r = self.authorised(r).await?;
            let status = r.status();
            if status.is_server_error() {
                bail!("the server could not take op {} ({status})", p.op_id);
            }
            let mut body: Value = r.json().await?;
            body["type"] = json!(if status.is_success() {
                "ack"
            } else {
                "rejected"
            });
            body["op_id"] = json!(p.op_id);
            let msg: ServerMsg = serde_json::from_value(body)?;
            let answer = self.sync.on_server_msg(msg, self.now());
            self.carry(answer);
            if self.sync.throttle_until_ms().is_some() {
                // The rest waits, in order, for the throttle to end.
                break;
            }
        }
        // The server reads the changes after every write stamped before the
        // request arrived; what this answer holds is complete at least
        // through the estimated server time of sending it (less a margin for
        // the estimate's error).
        let asked_at = self.now() + self.offset.lock().ok().and_then(|o| *o).unwrap_or(0);
        let seq = self.sync.replica().map(|r| r.seq);
        let mut snapshot = seq.is_none();
        if let Some(after) = seq {
            let r = self
                .http
                .get(format!("{base}/changes?after={after}"))
                .bearer_auth(&session.token)
                .send()
                .await?;
            let r = self.authorised(r).await?;
            if r.status() == reqwest::StatusCode::GONE {
                snapshot = true;
            } else {
                let body: Value = r.error_for_status()?.json().await?;
                for mut c in body["changes"].as_array().cloned().unwrap_or_default() {
                    c["type"] = json!("change");
                    let msg: ServerMsg = serde_json::from_value(c)?;
                    let effects = self.sync.on_server_msg(msg, self.now());
                    if self.carry(effects).resume {
                        snapshot = true;
                        break;
                    }
                }
            }
        }
        if snapshot {
            let r = self
                .http
                .get(format!("{base}/snapshot"))
                .bearer_auth(&session.token)
                .send()
                .await?;
            let mut body: Value = self.authorised(r).await?.error_for_status()?.json().await?;
            body["type"] = json!("snapshot");
            let msg: ServerMsg = serde_json::from_value(body)?;
            let effects = self.sync.on_server_msg(msg, self.now());
            self.carry(effects);
        }
        self.synced_ms
            .store(wall_ms(), std::sync::atomic::Ordering::Relaxed);
        self.heard_through(asked_at - HTTP_THROUGH_MARGIN_MS);
        Ok(())
    }

    /// Passes an answer through unless it is a 401: a revoked token signs
    /// the device out; an unknown one is forgotten so the next round logs
    /// in again (if the join code allows it).
    async fn authorised(&self, r: reqwest::Response) -> anyhow::Result<reqwest::Response> {
        if r.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(r);
        }
        let body = error_body(&r.bytes().await.unwrap_or_default());
        if body.is_some_and(|b| b.revoked) {
            return Err(SignedOutErr(REVOKED.into()).into());
        }
        self.cache.forget_session(&self.cfg.server)?;
        bail!("the server no longer knows this session")
    }

    fn heard_through(&self, t: i64) {
        self.heard_through.send_if_modified(|v| {
            let later = v.is_none_or(|v| t > v);
            if later {
                *v = Some(t);
            }
            later
        });
    }
}

/// Sleeps until `at`, or forever when there is nothing to wait for (a
/// `select!` branch that never fires).
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
