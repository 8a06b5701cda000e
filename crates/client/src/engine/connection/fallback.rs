//! The HTTP fallback phase: the WebSocket is refused (a proxy that blocks
//! upgrades) but HTTP works. Ops go over HTTP, changes are polled slowly
//! (and at once on Refresh, or when a screen waits to confirm a level),
//! and the WebSocket is tried again every `ws_retry_every`.

use std::sync::atomic::Ordering;

use tokio::time::{Instant, Interval};

use super::{Connection, Event, Fail, Phase};
use crate::engine::Status;
use crate::time::wall_ms;
use crate::transport::http::Changes;
use crate::venue::VenueError;

/// How much an HTTP answer's completeness is discounted for the error of the
/// server-time estimate it is reckoned with.
const HTTP_THROUGH_MARGIN_MS: i64 = 100;

/// A screen's ask for news polls at most this often.
pub(super) const POLL_NOW_SPACING: std::time::Duration = std::time::Duration::from_secs(1);

pub(super) struct Degraded {
    pub(super) since_ms: i64,
    pub(super) poll: Interval,
    pub(super) ws_retry_at: Instant,
    pub(super) last_round: Instant,
}

impl Connection {
    pub(super) async fn on_degraded(&mut self, d: Box<Degraded>, event: Event) -> Phase {
        match event {
            Event::PollDue => self.round(d).await,
            Event::TryWs => {
                self.retry.failures = 0;
                Phase::Connecting
            }
            // The next round sends the whole outbox.
            Event::ThrottleOver => {
                let held = self.sync.on_tick(self.now());
                self.carry(held);
                self.round(d).await
            }
            _ => Phase::Degraded(d),
        }
    }

    /// One HTTP round    /// One HTTP round, then Degraded again, or the fallback failed too.
    pub(super) async fn round(&mut self, mut d: Box<Degraded>) -> Phase {
        d.last_round = Instant::now();
        match self.http_round().await {
            Ok(()) => {
                self.flush();
                self.set_status(Status::Degraded {
                    since_ms: d.since_ms,
                });
                Phase::Degraded(d)
            }
            Err(Fail::SignedOut(reason)) => self.signed_out(reason),
            Err(Fail::KeyChanged(m)) => {
                self.flush();
                self.lost_since = wall_ms();
                self.key_changed(m)
            }
            Err(e) => {
                tracing::info!("the HTTP fallback failed too: {e}");
                self.flush();
                self.lost_since = wall_ms();
                self.retry_later()
            }
        }
    }

    /// One exchange over HTTP: a time sample, the outbox in order, then the
    /// changes since the last applied seq (or a snapshot).
    async fn http_round(&mut self) -> Result<(), Fail> {
        let token = self.session().await?.token;
        let sent = self.now();
        if let Some(server) = self.fallback.server_time_ms().await? {
            let sample = self.sync.time_sample(sent, server, self.now());
            self.carry(sample);
        }
        let outbox = if self.sync.may_send_ops(self.now()) {
            self.sync.outbox().to_vec()
        } else {
            Vec::new()
        };
        for p in outbox {
            let answer = self.fallback.op(&token, &p).await;
            let msg = answer.map_err(|e| self.authorised(e))?;
            let effects = self.sync.on_server_msg(msg, self.now());
            self.carry(effects);
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
            let changes = self.fallback.changes(&token, after).await;
            match changes.map_err(|e| self.authorised(e))? {
                Changes::Gone => snapshot = true,
                Changes::After(msgs) => {
                    for msg in msgs {
                        let effects = self.sync.on_server_msg(msg, self.now());
                        if self.carry(effects).resume {
                            snapshot = true;
                            break;
                        }
                    }
                }
            }
        }
        if snapshot {
            let answer = self.fallback.snapshot(&token).await;
            let msg = answer.map_err(|e| self.authorised(e))?;
            let effects = self.sync.on_server_msg(msg, self.now());
            self.carry(effects);
        }
        self.synced_ms.store(wall_ms(), Ordering::Relaxed);
        self.heard_through(asked_at - HTTP_THROUGH_MARGIN_MS);
        Ok(())
    }

    /// A refusal of an authorised call: a revoked token signs out, a
    /// forgotten one is dropped so the next round logs in again.
    fn authorised(&self, e: VenueError) -> Fail {
        self.creds.unauthorized(&self.cache, e).into()
    }
}
