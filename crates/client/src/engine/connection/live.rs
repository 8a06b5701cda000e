//! The live phase: on the WebSocket. Dialing (with a login when needed),
//! the subscribe and outbox replay, pings, and each frame from the server.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::anyhow;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::{Connection, Degraded, Event, Fail, Phase, QUICK_PINGS};
use crate::cache::StoredSession;
use crate::engine::Status;
use crate::sync::Effect;
use crate::time::wall_ms;
use crate::transport::ws::{DialError, Incoming, WsLink};
use crate::venue::{VenueError, REVOKED};

pub(super) struct Live {
    pub(super) link: WsLink,
    /// Any frame proves the server alive; silence past `dead_after` is a
    /// half-open socket.
    pub(super) last_heard: Instant,
    pub(super) quick_pings: u32,
    pub(super) next_ping: Instant,
    pub(super) last_ping: Instant,
    /// Saving the replica is batched, not done per change.
    pub(super) save: Interval,
}

impl Connection {
    pub(super) async fn on_live(&mut self, mut l: Box<Live>, event: Event) -> Phase {
        match event {
            Event::Silent => {
                tracing::info!(
                    "no word from the server for {:?}: reconnecting",
                    self.cfg.dead_after
                );
                self.disconnected()
            }
            Event::ThrottleOver => {
                let held = self.sync.on_tick(self.now());
                self.carry_live(l, held).await
            }
            Event::PingDue => {
                let every = if l.quick_pings > 0 {
                    l.quick_pings -= 1;
                    Duration::from_millis(200)
                } else {
                    self.cfg.ping_every
                };
                l.last_ping = Instant::now();
                l.next_ping = l.last_ping + every;
                let ping = self.sync.ping(self.now());
                self.carry_live(l, vec![ping]).await
            }
            Event::SaveDue => {
                self.flush();
                Phase::Live(l)
            }
            Event::Frame(Incoming::Msg(m)) => {
                l.last_heard = Instant::now();
                self.synced_ms.store(wall_ms(), Ordering::Relaxed);
                let effects = self.sync.on_server_msg(m, self.now());
                self.carry_live(l, effects).await
            }
            Event::Frame(Incoming::Heard) => {
                l.last_heard = Instant::now();
                Phase::Live(l)
            }
            Event::Frame(Incoming::Revoked) => {
                self.leave_link();
                self.signed_out(REVOKED.into())
            }
            Event::Frame(Incoming::Gone) => self.disconnected(),
            _ => Phase::Live(l),
        }
    }

    /// Logs in if needed and opens the WebSocket; then subscribes and
    /// replays the outbox (see [`SyncState::on_connected`]).
    pub(super) async fn dial(&mut self) -> Phase {
        if self.retry.failures == 0 {
            self.set_status(Status::Connecting);
        }
        match self.open_socket().await {
            Ok(link) => {
                self.retry.start_over();
                self.retry.ever_connected = true;
                let now = Instant::now();
                let mut save = tokio::time::interval(Duration::from_millis(250));
                save.set_missed_tick_behavior(MissedTickBehavior::Delay);
                let live = Box::new(Live {
                    link,
                    last_heard: now,
                    quick_pings: QUICK_PINGS,
                    next_ping: now,
                    last_ping: now,
                    save,
                });
                let setup = self.sync.on_connected(self.now());
                self.carry_live(live, setup).await
            }
            Err(Fail::SignedOut(reason)) => self.signed_out(reason),
            Err(Fail::KeyChanged(m)) => self.key_changed(m),
            Err(Fail::WsRefused(status)) if self.fallback.reachable().await => {
                tracing::info!("WebSocket refused (HTTP {status}) but HTTP works: degraded mode");
                let mut poll = tokio::time::interval(self.cfg.http_poll_every);
                poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
                Phase::Degraded(Box::new(Degraded {
                    since_ms: wall_ms(),
                    poll,
                    ws_retry_at: Instant::now() + self.cfg.ws_retry_every,
                    last_round: Instant::now(),
                }))
            }
            Err(e) => {
                tracing::debug!("connect failed: {e}");
                if let Fail::LoginThrottled(wait) = e {
                    self.retry.login_wait = Some(wait);
                }
                self.retry_later()
            }
        }
    }

    /// The remembered session, or a new one by logging in. Its role is
    /// the one the protocol state goes by from here: a person may have
    /// joined again with another code meanwhile.
    pub(super) async fn session(&mut self) -> Result<StoredSession, Fail> {
        let session = self.creds.session(&self.http, &self.cache).await?;
        self.sync.set_display(session.role == "display");
        Ok(session)
    }

    pub(super) async fn open_socket(&mut self) -> Result<WsLink, Fail> {
        for _ in 0..2 {
            let session = self.session().await?;
            match WsLink::dial(&self.cfg.server, &session.token, &self.creds.pin).await {
                Ok(link) => return Ok(link),
                // A forgotten token (a new store) is dropped: log in again
                // if the code allows it. A revoked one signs out.
                Err(DialError::Unauthorized(e)) => match self.creds.unauthorized(&self.cache, e) {
                    VenueError::Unauthorized(_) => {}
                    e => return Err(e.into()),
                },
                Err(DialError::Refused(status)) => return Err(Fail::WsRefused(status)),
                Err(DialError::KeyChanged(m)) => return Err(Fail::KeyChanged(m)),
                Err(DialError::Other(e)) => return Err(e.into()),
            }
        }
        Err(anyhow!("the server refused the session token twice").into())
    }

    /// Carries out `effects` on the WebSocket; a gap subscribes again from
    /// the last applied seq. A failed send ends the link.
    pub(super) async fn carry_live(&mut self, mut l: Box<Live>, effects: Vec<Effect>) -> Phase {
        let mut out = self.carry(effects);
        if out.resume {
            let again = self.sync.resubscribe();
            out.send.extend(self.carry(again).send);
        }
        match l.link.send(out.send).await {
            Ok(()) => Phase::Live(l),
            Err(e) => {
                tracing::debug!("send failed: {e:#}");
                self.disconnected()
            }
        }
    }
}
