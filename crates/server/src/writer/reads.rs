//! The reads: snapshots, the change log, the event list, devices, the
//! audit trail, and a subscription's catch-up. Each runs in the writer's
//! order, after the writes queued before it are committed, so it sees them.

use pitboss_core::protocol::{EventSnapshotState, ServerMsg};

use super::{internal, EventSnapshot, ReadCmd, Writer};
use crate::error::ApiError;
use crate::fanout::{Frame, Subscriber};
use crate::store;

impl Writer {
    pub(super) fn read(&mut self, cmd: ReadCmd) {
        match cmd {
            ReadCmd::ListEvents { reply } => {
                drop(reply.send(store::list_events(&self.conn).map_err(internal)));
            }
            ReadCmd::Snapshot { event_id, reply } => {
                drop(reply.send(self.snapshot(&event_id)));
            }
            ReadCmd::Changes {
                event_id,
                after,
                reply,
            } => {
                drop(reply.send(self.changes(&event_id, after)));
            }
            ReadCmd::Subscribe {
                event_id,
                after,
                sub,
                reply,
            } => {
                drop(reply.send(self.subscribe(&event_id, after, sub)));
            }
            ReadCmd::Devices { reply } => {
                drop(reply.send(store::list_devices(&self.conn).map_err(internal)));
            }
            ReadCmd::Audit {
                event_id,
                incident_id,
                limit,
                reply,
            } => {
                let r = match store::event_seq(&self.conn, &event_id) {
                    Ok(None) => Err(ApiError::not_found(format!("no event {event_id}"))),
                    Ok(Some(_)) => {
                        store::list_audit(&self.conn, &event_id, incident_id.as_deref(), limit)
                            .map_err(internal)
                    }
                    Err(e) => Err(internal(e)),
                };
                drop(reply.send(r));
            }
            #[cfg(feature = "bench-polling")]
            ReadCmd::Poll => self.poll(),
        }
    }

    /// The stored frames of the changes after `after`, or `gone` when some
    /// of them are no longer kept (or `after` is beyond the event's seq).
    fn changes(&self, event_id: &str, after: u64) -> Result<Vec<String>, ApiError> {
        let (seq, pruned) = store::event_seq(&self.conn, event_id)
            .map_err(internal)?
            .ok_or_else(|| ApiError::not_found(format!("no event {event_id}")))?;
        if after < pruned || after > seq {
            return Err(ApiError::gone(format!(
                "changes after {after} are not available (kept: {} to {seq}); take a snapshot",
                pruned + 1
            )));
        }
        store::changes_after(&self.conn, event_id, after).map_err(internal)
    }

    fn snapshot(&self, event_id: &str) -> Result<EventSnapshot, ApiError> {
        let row = store::load_event(&self.conn, event_id)
            .map_err(internal)?
            .ok_or_else(|| ApiError::not_found(format!("no event {event_id}")))?;
        let incidents = store::load_incidents(&self.conn, event_id).map_err(internal)?;
        Ok(EventSnapshot {
            event_id: event_id.to_string(),
            seq: row.seq,
            server_time_ms: self.clock.now_ms(),
            state: EventSnapshotState {
                event: row.state.details,
                clock: row.state.clock,
                structure: row.state.structure,
                stats: row.state.stats,
                incidents,
            },
        })
    }

    /// Reads the catch-up (the changes after `after` when they are all
    /// kept, a snapshot otherwise, then `subscribed`) and hands it to the
    /// registry with the subscriber.
    fn subscribe(
        &mut self,
        event_id: &str,
        after: Option<u64>,
        sub: Subscriber,
    ) -> Result<(), ApiError> {
        let (seq, pruned) = store::event_seq(&self.conn, event_id)
            .map_err(internal)?
            .ok_or_else(|| ApiError::not_found(format!("no event {event_id}")))?;
        let mut frames: Vec<Frame> = Vec::new();
        match after {
            Some(n) if n >= pruned && n <= seq => {
                for f in store::changes_after(&self.conn, event_id, n).map_err(internal)? {
                    frames.push(f.into());
                }
            }
            _ => {
                let s = self.snapshot(event_id)?;
                let msg = ServerMsg::Snapshot {
                    event_id: s.event_id,
                    seq: s.seq,
                    server_time_ms: s.server_time_ms,
                    state: Box::new(s.state),
                };
                frames.push(serde_json::to_string(&msg).map_err(internal)?.into());
            }
        }
        let done = ServerMsg::Subscribed {
            event_id: event_id.to_string(),
            seq,
        };
        frames.push(serde_json::to_string(&done).map_err(internal)?.into());
        self.fanout.subscribe(event_id, sub, frames, seq)
    }
}
