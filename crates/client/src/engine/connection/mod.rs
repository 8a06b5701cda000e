//! The connection actor: the one task per client that owns the link, the
//! protocol state ([`SyncState`]) and the cache. It is one loop over a
//! [`Phase`]: each turn waits for whichever comes first, a command or
//! sleep event ([`Inputs`]) or what the phase itself waits on (a frame, a
//! ping or poll timer, the end of a backoff), and [`Connection::step`] turns
//! that into the next phase. Dialing and an HTTP round are actions, not
//! waits, so nothing cancels them halfway.

use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use pitboss_core::protocol::ClientMsg;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use super::{Config, Notice, Request, Status};
use crate::backoff::Backoff;
use crate::cache::{Cache, PendingOp};
use crate::replica::Replica;
use crate::sleep::{PowerEvent, Wake};
use crate::sync::{Effect, QueueError, SyncState};
use crate::time::{steady_ms, wall_ms};
use crate::transport::http::HttpLink;
use crate::transport::ws::Incoming;
use crate::transport::Credentials;
use crate::venue::VenueError;
use fallback::{Degraded, POLL_NOW_SPACING};
use live::Live;

mod fallback;
mod live;

/// Failed attempts after which "Reconnecting" becomes "Offline".
const QUICK_RETRIES: u32 = 3;

/// Pings right after connecting, 200 ms apart, so the first screen has a
/// good server-time offset; then one every `ping_every`.
const QUICK_PINGS: u32 = 3;

/// However often screens ask for a ping, at most one extra per this long.
const PING_NOW_SPACING: Duration = Duration::from_millis(100);

pub(super) struct Connection {
    pub(super) cfg: Config,
    pub(super) cache: Cache,
    /// The protocol state: replica, outbox, acks, pings, throttle.
    pub(super) sync: SyncState,
    pub(super) status_tx: watch::Sender<Status>,
    pub(super) replica_tx: watch::Sender<Option<Arc<Replica>>>,
    pub(super) pending_tx: watch::Sender<Arc<Vec<PendingOp>>>,
    pub(super) notices: broadcast::Sender<Notice>,
    pub(super) offset: Arc<Mutex<Option<i64>>>,
    pub(super) synced_ms: Arc<AtomicI64>,
    /// See [`super::Client::heard_through_watch`].
    pub(super) heard_through: watch::Sender<Option<i64>>,
    pub(super) inputs: Inputs,
    pub(super) creds: Credentials,
    pub(super) http: reqwest::Client,
    pub(super) fallback: HttpLink,
    /// When the connection was last lost (or the cache last synced).
    pub(super) lost_since: i64,
    pub(super) retry: Retry,
}

/// What the actor hears from outside the link: the app's commands and the
/// sleep detector.
pub(super) struct Inputs {
    pub(super) cmd_rx: mpsc::Receiver<Request>,
    pub(super) power_rx: mpsc::Receiver<PowerEvent>,
    pub(super) notices: broadcast::Sender<Notice>,
}

enum Input {
    /// `None`: every handle is gone.
    Request(Option<Request>),
    GoingToSleep,
    Woke(Wake),
}

impl Inputs {
    /// The next command or sleep event. A wall-clock step is said and then
    /// passed over here, so no phase ever reacts to it: the engine reckons
    /// on the steady clock, which did not move. Cancel-safe.
    async fn next(&mut self) -> Input {
        loop {
            let p = tokio::select! {
                c = self.cmd_rx.recv() => return Input::Request(c),
                Some(p) = self.power_rx.recv() => p,
            };
            match p {
                PowerEvent::GoingToSleep => return Input::GoingToSleep,
                PowerEvent::Woke(w) => return Input::Woke(w),
                PowerEvent::WallStepped { by_ms } => {
                    drop(self.notices.send(Notice::WallClockSet { by_ms }));
                }
            }
        }
    }
}

/// Reconnect bookkeeping across phases.
pub(super) struct Retry {
    backoff: Backoff,
    /// Failed attempts since the last connection (or Refresh, or wake).
    failures: u32,
    /// Until the first connection of this run a failure is not "moments
    /// ago": an app started while the host is away shows the cached state
    /// as offline since its last sync, not "Reconnecting" for a while.
    ever_connected: bool,
    /// A login the server throttled: wait at least this long before the next.
    login_wait: Option<Duration>,
}

impl Retry {
    pub(super) fn new(cfg: &Config) -> Retry {
        Retry {
            backoff: Backoff::new(cfg.backoff_min, cfg.backoff_max),
            failures: 0,
            ever_connected: false,
            login_wait: None,
        }
    }

    /// Straight back at the next dial, no backoff: a person asked, or the
    /// machine woke and everything shown is stale.
    fn start_over(&mut self) {
        self.backoff.reset();
        self.failures = 0;
    }
}

/// Where the connection is.
enum Phase {
    /// About to dial (log in if needed, then open the WebSocket).
    Connecting,
    /// On the WebSocket.
    Live(Box<Live>),
    /// The WebSocket is refused but HTTP works: ops go over HTTP, changes
    /// are polled, the WebSocket is tried again now and then.
    Degraded(Box<Degraded>),
    /// Backing off after a failure.
    Waiting {
        until: Instant,
    },
    /// Revoked or a spent code: nothing is retried until a person joins
    /// again (a Refresh looks whether they did).
    SignedOut,
    Stopped,
}

/// What ended a wait.
enum Event {
    Input(Input),
    Frame(Incoming),
    /// Live: no word from the server for `dead_after`.
    Silent,
    /// The server's throttle ended: held ops may go.
    ThrottleOver,
    PingDue,
    SaveDue,
    /// Waiting: the backoff is over.
    RetryDue,
    /// Degraded: time to poll.
    PollDue,
    /// Degraded: time to try the WebSocket again.
    TryWs,
}

impl Phase {
    /// What this phase waits on besides the inputs. Cancel-safe: it loses
    /// nothing when an input comes first.
    async fn next(&mut self, dead_after: Duration, throttle: Option<Instant>) -> Event {
        match self {
            Phase::Live(l) => tokio::select! {
                () = tokio::time::sleep_until(l.last_heard + dead_after) => Event::Silent,
                () = sleep_until_some(throttle) => Event::ThrottleOver,
                f = l.link.recv() => Event::Frame(f),
                () = tokio::time::sleep_until(l.next_ping) => Event::PingDue,
                _ = l.save.tick() => Event::SaveDue,
            },
            Phase::Degraded(d) => tokio::select! {
                _ = d.poll.tick() => Event::PollDue,
                () = tokio::time::sleep_until(d.ws_retry_at) => Event::TryWs,
                () = sleep_until_some(throttle) => Event::ThrottleOver,
            },
            Phase::Waiting { until } => {
                tokio::time::sleep_until(*until).await;
                Event::RetryDue
            }
            Phase::Connecting | Phase::SignedOut | Phase::Stopped => std::future::pending().await,
        }
    }
}

/// Why reaching the server failed, as the actor acts on it.
#[derive(Debug, thiserror::Error)]
enum Fail {
    #[error("signed out: {0}")]
    SignedOut(String),
    /// The server throttles logins: wait this long.
    #[error("logins throttled for {0:?}")]
    LoginThrottled(Duration),
    /// The WebSocket upgrade was answered with plain HTTP.
    #[error("the WebSocket upgrade was refused with HTTP {0}")]
    WsRefused(u16),
    /// Something without the pinned key answered at the host's address.
    #[error(transparent)]
    KeyChanged(pitboss_tls::KeyMismatch),
    #[error("{0:#}")]
    Other(anyhow::Error),
}

impl From<VenueError> for Fail {
    fn from(e: VenueError) -> Fail {
        match e {
            VenueError::SignedOut(reason) => Fail::SignedOut(reason),
            VenueError::KeyChanged { mismatch, .. } => Fail::KeyChanged(mismatch),
            VenueError::Refused {
                status: 429,
                retry_after_ms,
                ..
            } => Fail::LoginThrottled(Duration::from_millis(retry_after_ms.unwrap_or(5_000))),
            e => Fail::Other(e.into()),
        }
    }
}

impl From<anyhow::Error> for Fail {
    fn from(e: anyhow::Error) -> Fail {
        Fail::Other(e)
    }
}

/// What the effects of one input ask of the connection.
#[derive(Default)]
struct Outgoing {
    /// Messages for the server, in order.
    send: Vec<ClientMsg>,
    /// A gap: subscribe again (or, over HTTP, take a snapshot).
    resume: bool,
}

impl Connection {
    pub(super) async fn run(mut self) {
        let mut phase = Phase::Connecting;
        loop {
            phase = match phase {
                Phase::Stopped => return,
                Phase::Connecting => self.dial().await,
                mut phase => {
                    let throttle = self.throttle_deadline();
                    let event = tokio::select! {
                        i = self.inputs.next() => Event::Input(i),
                        e = phase.next(self.cfg.dead_after, throttle) => e,
                    };
                    self.step(phase, event).await
                }
            };
        }
    }

    /// The one place the status changes.
    fn set_status(&self, s: Status) {
        self.status_tx.send_if_modified(|cur| {
            let changed = *cur != s;
            *cur = s;
            changed
        });
    }

    async fn step(&mut self, phase: Phase, event: Event) -> Phase {
        match (phase, event) {
            (phase, Event::Input(i)) => self.on_input(phase, i).await,
            (Phase::Live(l), e) => self.on_live(l, e).await,
            (Phase::Degraded(d), e) => self.on_degraded(d, e).await,
            (Phase::Waiting { .. }, Event::RetryDue) => Phase::Connecting,
            (phase, _) => phase,
        }
    }

    async fn on_input(&mut self, phase: Phase, input: Input) -> Phase {
        match (input, phase) {
            (Input::Request(None | Some(Request::Shutdown)), phase) => {
                if let Phase::Live(l) = phase {
                    self.sync.on_disconnected();
                    l.link.close().await;
                }
                self.flush();
                Phase::Stopped
            }
            (Input::GoingToSleep, phase) => {
                self.flush();
                phase
            }
            (Input::Woke(_), Phase::SignedOut) => Phase::SignedOut,
            (Input::Woke(w), phase) => {
                // The socket may look open but is likely dead, and
                // everything shown is stale: start over at once.
                if let Phase::Live(_) = phase {
                    self.leave_link();
                }
                self.woke(w)
            }
            (Input::Request(Some(Request::Op(_, reply))), Phase::SignedOut) => {
                drop(reply.send(Err(anyhow!(
                    "this device is signed out of the host; join again with a new code"
                ))));
                Phase::SignedOut
            }
            (Input::Request(Some(Request::Op(p, reply))), phase) => {
                let queued = self.queue(p);
                let out = match queued {
                    Ok(out) => {
                        drop(reply.send(Ok(())));
                        out
                    }
                    Err(e) => {
                        drop(reply.send(Err(e)));
                        return phase;
                    }
                };
                match phase {
                    Phase::Live(mut l) => match l.link.send(out.send).await {
                        Ok(()) => Phase::Live(l),
                        Err(_) => self.disconnected(),
                    },
                    // Over HTTP an op goes at once, with a round.
                    Phase::Degraded(d) => self.round(d).await,
                    // Kept in the outbox; sent once connected.
                    phase => phase,
                }
            }
            (Input::Request(Some(Request::Refresh)), phase) => match phase {
                Phase::Live(l) => {
                    let again = self.sync.resubscribe();
                    self.carry_live(l, again).await
                }
                Phase::Degraded(d) => self.round(d).await,
                Phase::Waiting { .. } => {
                    self.retry.failures = 0;
                    Phase::Connecting
                }
                // In case a person joined again with this cache meanwhile.
                Phase::SignedOut => {
                    if matches!(self.cache.signed_out(&self.cfg.server), Ok(None)) {
                        self.retry.failures = 0;
                        Phase::Connecting
                    } else {
                        Phase::SignedOut
                    }
                }
                phase => phase,
            },
            (Input::Request(Some(Request::PingNow)), phase) => match phase {
                Phase::Live(mut l) => {
                    // One asked for just after a ping goes a little after
                    // it: that ping's answer may predate what the screen
                    // waits for.
                    let soonest = l.last_ping + PING_NOW_SPACING;
                    l.next_ping = l.next_ping.min(soonest.max(Instant::now()));
                    Phase::Live(l)
                }
                Phase::Degraded(d) if d.last_round.elapsed() >= POLL_NOW_SPACING => {
                    self.round(d).await
                }
                phase => phase,
            },
        }
    }

    /// The link is gone: forget what was in flight on it and save.
    fn leave_link(&mut self) {
        self.sync.on_disconnected();
        self.flush();
        self.lost_since = wall_ms();
    }

    fn disconnected(&mut self) -> Phase {
        self.leave_link();
        self.retry_later()
    }

    /// Backs off before the next dial, saying for how long.
    fn retry_later(&mut self) -> Phase {
        let (until, next_attempt_at_ms) = self.back_off();
        let since_ms = self.lost_since;
        let quick = self.retry.ever_connected && self.retry.failures <= QUICK_RETRIES;
        self.set_status(if quick {
            Status::Reconnecting {
                next_attempt_at_ms,
                since_ms,
            }
        } else {
            Status::Offline {
                since_ms,
                next_attempt_at_ms,
            }
        });
        Phase::Waiting { until }
    }

    /// Counts a failure and draws the next backoff: when to dial again,
    /// as a timer instant and as a wall time to show.
    fn back_off(&mut self) -> (Instant, i64) {
        let r = &mut self.retry;
        r.failures += 1;
        let delay = r
            .backoff
            .next_delay()
            .max(r.login_wait.take().unwrap_or_default());
        (Instant::now() + delay, wall_ms() + delay.as_millis() as i64)
    }

    /// Something answered at the host's address without the host's key.
    /// Nothing was sent to it (the handshake failed first). The screen
    /// says so plainly and stays until the real host answers again (its
    /// key is still the pinned one) or a person re-pairs; the address is
    /// tried again at the usual backoff, never with a new pin.
    fn key_changed(&mut self, m: pitboss_tls::KeyMismatch) -> Phase {
        tracing::warn!("{m}");
        let (until, next_attempt_at_ms) = self.back_off();
        self.set_status(Status::KeyChanged {
            pinned: m.pinned.short(),
            offered: m.offered.short(),
            next_attempt_at_ms,
        });
        Phase::Waiting { until }
    }

    /// Signed out: says so and keeps showing the cached state. Ops are
    /// refused from here (the outbox keeps what it has).
    fn signed_out(&mut self, reason: String) -> Phase {
        tracing::warn!("signed out: {reason}");
        if let Err(e) = self
            .cache
            .mark_signed_out(&self.cfg.server, &reason, wall_ms())
        {
            tracing::warn!("cannot remember the sign-out: {e:#}");
        }
        self.flush();
        self.sync.clear_throttle();
        self.set_status(Status::SignedOut {
            reason: reason.clone(),
        });
        drop(self.notices.send(Notice::SignedOut { reason }));
        Phase::SignedOut
    }

    fn woke(&mut self, w: Wake) -> Phase {
        tracing::info!(?w.source, w.away_ms, "woke: resyncing now");
        self.flush();
        self.lost_since = wall_ms();
        self.retry.start_over();
        self.set_status(Status::Connecting);
        drop(self.notices.send(Notice::Woke {
            source: w.source,
            away_ms: w.away_ms,
        }));
        Phase::Connecting
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
                Effect::Status(st) => self.set_status(st),
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
            return Err(QueueError::Display.into());
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
    fn throttle_deadline(&self) -> Option<Instant> {
        let now = self.now();
        self.sync
            .throttle_until_ms()
            .map(|t| Instant::now() + Duration::from_millis((t - now).max(0) as u64))
    }

    /// This client's time for the protocol state: the steady clock (plus
    /// the skew a test plays).
    fn now(&self) -> i64 {
        steady_ms() + self.cfg.local_clock_skew_ms
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
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
