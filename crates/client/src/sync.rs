//! The client side of the sync protocol, without sockets, SQLite or timers.
//!
//! [`SyncState`] owns what the protocol decides on: the replica, the outbox
//! of this event (in memory, written through by the caller), acknowledged
//! ops whose change has not arrived yet, whether the subscription has
//! caught up, the pings in flight, the server-time estimate and a
//! throttle. Each input (connected, a server message, an op to queue, time
//! passing) returns the [`Effect`]s the caller must carry out, in order:
//! send, store, publish, notify. The engine's actor only moves frames and
//! carries effects out; the unit tests below drive this directly with
//! scripted server messages.
//!
//! Rules it keeps: state changes only by applying sequenced changes (a
//! snapshot replaces everything, seq = last + 1 applies, seq <= last is a
//! duplicate, further ahead is a gap that asks to resume); an op's ack and
//! its broadcast are the same change, whichever comes first applies;
//! queued ops go out in outbox order with their original op ids, and a
//! `rate_limited` answer holds them, in order, until the throttle ends.

use std::collections::{HashMap, HashSet};

use pitboss_core::protocol::{ClientMsg, ServerMsg};

use crate::cache::PendingOp;
use crate::engine::{Notice, Status};
use crate::offset::OffsetEstimator;
use crate::replica::{Applied, Replica};

/// What the caller must do after an input, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send this to the server (on the WebSocket; over HTTP in degraded mode
    /// the caller sends the outbox itself).
    Send(ClientMsg),
    /// Changes are missing before one that arrived: subscribe again after
    /// the last applied seq (or, over HTTP, take a snapshot).
    Resume,
    /// Remove this op from the durable outbox: it was answered.
    ForgetOp(String),
    /// Write the replica to the cache now (caught up: a good moment).
    SaveReplica,
    /// The replica changed: show it.
    PublishReplica,
    /// The list of this device's unconfirmed ops changed: show it.
    PublishPending,
    Notice(Notice),
    Status(Status),
    /// The server has sent every change stamped up to this instant.
    HeardThrough(i64),
    /// The estimated offset server − local, in ms.
    Offset(i64),
}

/// Why an op was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error(
        "this screen joined as a display: it shows the clock and the board and changes nothing"
    )]
    Display,
}

/// The protocol state of one client following one event; see the module
/// comment. Times are the caller's steady clock, in ms.
#[derive(Debug)]
pub struct SyncState {
    event_id: String,
    replica: Option<Replica>,
    /// This event's unanswered ops, oldest first: the durable outbox's
    /// mirror, so nothing on the hot path reads SQLite.
    outbox: Vec<PendingOp>,
    /// Ops acknowledged at a seq not applied yet (the ack came before the
    /// changes it follows): still shown as pending until then.
    acked: HashMap<String, (u64, PendingOp)>,
    /// A socket is up and subscribed to (ops may go out on it).
    connected: bool,
    /// The subscription has caught up: changes from here are live.
    caught_up: bool,
    /// Pings sent on this connection, by their `client_time_ms`.
    pings: HashSet<i64>,
    estimator: OffsetEstimator,
    /// No op goes out before this instant (the server throttled us).
    throttle_until_ms: Option<i64>,
    /// Ops held back by the throttle.
    throttled: HashSet<String>,
    /// The session's role is display: nothing is ever queued or sent.
    display: bool,
    /// The replica changed since it was last saved.
    dirty: bool,
}

impl SyncState {
    /// `replica`: the cached state, if any; `outbox`: this event's ops
    /// still in the durable outbox, oldest first.
    pub fn new(event_id: &str, replica: Option<Replica>, outbox: Vec<PendingOp>) -> SyncState {
        SyncState {
            event_id: event_id.to_string(),
            replica,
            outbox,
            acked: HashMap::new(),
            connected: false,
            caught_up: false,
            pings: HashSet::new(),
            estimator: OffsetEstimator::default(),
            throttle_until_ms: None,
            throttled: HashSet::new(),
            display: false,
            dirty: false,
        }
    }

    pub fn replica(&self) -> Option<&Replica> {
        self.replica.as_ref()
    }

    /// This device's unconfirmed ops: queued ones, then acknowledged ones
    /// whose change has not arrived yet, by seq.
    pub fn pending(&self) -> Vec<PendingOp> {
        let mut list = self.outbox.clone();
        let mut acked: Vec<&(u64, PendingOp)> = self.acked.values().collect();
        acked.sort_by_key(|(seq, _)| *seq);
        list.extend(acked.into_iter().map(|(_, p)| p.clone()));
        list
    }

    /// The outbox, oldest first (the HTTP fallback sends it in order).
    pub fn outbox(&self) -> &[PendingOp] {
        &self.outbox
    }

    /// The role of the session, known at login (or from the cache).
    pub fn set_display(&mut self, display: bool) {
        self.display = display;
    }

    pub fn is_display(&self) -> bool {
        self.display
    }

    /// Whether ops may go to the server at `now`: not from a display, not
    /// while the server throttles us.
    pub fn may_send_ops(&self, now: i64) -> bool {
        !self.display && self.throttle_until_ms.is_none_or(|t| t <= now)
    }

    /// Forgets a throttle (signed out: nothing is sent any more).
    pub fn clear_throttle(&mut self) {
        self.throttle_until_ms = None;
        self.throttled.clear();
    }

    /// When the throttle ends, if there is one.
    pub fn throttle_until_ms(&self) -> Option<i64> {
        self.throttle_until_ms
    }

    /// Whether the replica needs saving; clears the mark (the caller sets
    /// it again with [`SyncState::mark_dirty`] if the save failed).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    fn subscribe_msg(&self) -> ClientMsg {
        ClientMsg::Subscribe {
            event_id: self.event_id.clone(),
            after: self.replica.as_ref().map(|r| r.seq),
        }
    }

    fn op_msg(p: &PendingOp) -> ClientMsg {
        ClientMsg::Op {
            op_id: p.op_id.clone(),
            event_id: p.event_id.clone(),
            op: serde_json::to_value(&p.op).unwrap_or_default(),
        }
    }

    /// A socket is open: subscribe after the last applied seq, then replay
    /// the outbox in order with the original op ids (the server answers a
    /// retry of an applied op with its first answer). While throttled, all
    /// of it waits for the throttle to end.
    pub fn on_connected(&mut self, now: i64) -> Vec<Effect> {
        self.connected = true;
        self.caught_up = false;
        self.pings.clear();
        let mut out = vec![Effect::Send(self.subscribe_msg())];
        if self.display {
            // Nothing goes out from a display.
        } else if self.may_send_ops(now) {
            self.throttle_until_ms = None;
            self.throttled.clear();
            out.extend(self.outbox.iter().map(|p| Effect::Send(Self::op_msg(p))));
        } else {
            self.throttled
                .extend(self.outbox.iter().map(|p| p.op_id.clone()));
        }
        out
    }

    /// The socket is gone.
    pub fn on_disconnected(&mut self) {
        self.connected = false;
        self.caught_up = false;
        self.pings.clear();
    }

    /// Refresh while live: subscribe again from what we have.
    pub fn resubscribe(&mut self) -> Vec<Effect> {
        self.caught_up = false;
        vec![Effect::Send(self.subscribe_msg())]
    }

    /// A ping to send now (a server-time sample, and proof of life).
    pub fn ping(&mut self, now: i64) -> Effect {
        self.pings.insert(now);
        Effect::Send(ClientMsg::Ping {
            client_time_ms: now,
        })
    }

    /// A time sample from elsewhere (the HTTP health check): sent at
    /// `sent`, answered with `server`, received at `received`.
    pub fn time_sample(&mut self, sent: i64, server: i64, received: i64) -> Vec<Effect> {
        self.estimator.add(sent, server, received);
        self.estimator
            .best()
            .map(|b| Effect::Offset(b.offset_ms))
            .into_iter()
            .collect()
    }

    /// Puts an op in the outbox (shown as pending) and, when a socket is
    /// up and no throttle holds ops back, sends it. The caller has already
    /// written it to the durable outbox: nothing is sent that a crash
    /// could lose. A display queues nothing: a wall PC left alone must not
    /// collect changes to send later under another role.
    pub fn queue(&mut self, p: PendingOp, now: i64) -> Result<Vec<Effect>, QueueError> {
        if self.display {
            return Err(QueueError::Display);
        }
        let mut out = Vec::new();
        if self.throttle_until_ms.is_some_and(|t| t > now) {
            // Held back with the others, so the outbox order stays.
            self.throttled.insert(p.op_id.clone());
        } else if self.connected {
            out.push(Effect::Send(Self::op_msg(&p)));
        }
        self.outbox.push(p);
        out.push(Effect::PublishPending);
        Ok(out)
    }

    /// Time passed: when a throttle has ended, the ops it held go out, in
    /// outbox order, if a socket is up (over HTTP the next round sends the
    /// whole outbox anyway).
    pub fn on_tick(&mut self, now: i64) -> Vec<Effect> {
        if self.throttle_until_ms.is_none_or(|t| t > now) {
            return Vec::new();
        }
        self.throttle_until_ms = None;
        let held = std::mem::take(&mut self.throttled);
        if !self.connected {
            return Vec::new();
        }
        self.outbox
            .iter()
            .filter(|p| held.contains(&p.op_id))
            .map(|p| Effect::Send(Self::op_msg(p)))
            .collect()
    }

    /// Applies one message from the server (over the socket, or built from
    /// an HTTP answer) at `now`.
    pub fn on_server_msg(&mut self, msg: ServerMsg, now: i64) -> Vec<Effect> {
        let mut out = Vec::new();
        match msg {
            ServerMsg::Snapshot {
                event_id,
                seq,
                state,
                ..
            } => {
                if event_id != self.event_id {
                    return out;
                }
                // The server's word wins over anything local.
                self.replica = Some(Replica {
                    event_id,
                    seq,
                    state: *state,
                });
                self.dirty = true;
                self.after_apply(&mut out, false);
                out.push(Effect::Notice(Notice::Snapshot { seq }));
            }
            ServerMsg::Change(c) => {
                // Changes leave in stamp order: one stamped `at_ms` means
                // every earlier stamp has been sent.
                if self.caught_up {
                    out.push(Effect::HeardThrough(c.at_ms - 1));
                }
                let Some(r) = self.replica.as_mut() else {
                    self.caught_up = false;
                    out.push(Effect::Resume);
                    return out;
                };
                match r.apply(c.seq, &c.records) {
                    Applied::Applied => {
                        self.dirty = true;
                        self.after_apply(&mut out, false);
                        out.push(Effect::Notice(Notice::Change {
                            seq: c.seq,
                            op_id: c.op_id,
                            live: self.caught_up,
                            records: Box::new(c.records),
                            by: Some(c.by),
                        }));
                    }
                    Applied::Duplicate => {}
                    Applied::Gap => {
                        self.caught_up = false;
                        out.push(Effect::Resume);
                    }
                }
            }
            ServerMsg::Subscribed { seq, .. } => {
                self.caught_up = true;
                out.push(Effect::SaveReplica);
                out.push(Effect::Status(Status::Live));
                out.push(Effect::Notice(Notice::CaughtUp { seq }));
            }
            ServerMsg::Ack { op_id, seq, result } => {
                let pending = self.take_op(&op_id);
                out.push(Effect::ForgetOp(op_id.clone()));
                // The ack is the same change as the broadcast: if it is the
                // next seq, it applies here and the broadcast is a
                // duplicate. An ack for an op not in this event's outbox
                // (an answer racing a restart) is not applied: its seq may
                // belong to another event. The broadcast brings it if ours.
                let replica = if pending.is_some() {
                    self.replica.as_mut()
                } else {
                    None
                };
                let applied = match replica {
                    Some(r) => match r.apply(seq, &result) {
                        Applied::Applied => {
                            self.dirty = true;
                            out.push(Effect::Notice(Notice::Change {
                                seq,
                                op_id: op_id.clone(),
                                live: self.caught_up,
                                records: Box::new(result),
                                by: None,
                            }));
                            true
                        }
                        Applied::Duplicate => true,
                        // Earlier changes are still on their way; the
                        // broadcast of this one will follow them.
                        Applied::Gap => false,
                    },
                    None => false,
                };
                if !applied {
                    if let Some(p) = pending {
                        self.acked.insert(op_id.clone(), (seq, p));
                    }
                }
                // The op left the outbox (and may wait in `acked`).
                self.after_apply(&mut out, true);
                out.push(Effect::Notice(Notice::Accepted { op_id, seq }));
            }
            ServerMsg::Rejected {
                op_id,
                error,
                retry_after_ms,
                ..
            } if error == "rate_limited" => {
                // Not applied, not remembered: it stays queued and goes
                // again with the same op id; never shown as refused.
                let retry_after_ms = retry_after_ms.unwrap_or(1_000);
                let until = now + retry_after_ms.max(50) as i64;
                self.throttle_until_ms =
                    Some(self.throttle_until_ms.map_or(until, |t| t.max(until)));
                self.throttled.insert(op_id.clone());
                tracing::info!(op_id, retry_after_ms, "rate limited: resending later");
                out.push(Effect::Notice(Notice::Throttled {
                    op_id,
                    retry_after_ms,
                }));
                out.push(Effect::PublishPending);
            }
            ServerMsg::Rejected {
                op_id,
                error,
                message,
                current,
                ..
            } => {
                let op = self.take_op(&op_id).map(|p| p.op);
                out.push(Effect::ForgetOp(op_id.clone()));
                out.push(Effect::PublishPending);
                out.push(Effect::Notice(Notice::Rejected {
                    op_id,
                    error,
                    message,
                    current,
                    op,
                }));
            }
            ServerMsg::Pong {
                client_time_ms,
                server_time_ms,
                changes_through_ms,
            } => {
                if let Some(t) = changes_through_ms {
                    out.push(Effect::HeardThrough(t));
                }
                if self.pings.remove(&client_time_ms) {
                    out.extend(self.time_sample(client_time_ms, server_time_ms, now));
                }
            }
            ServerMsg::Error { error, message } => {
                tracing::warn!("server error frame: {error}: {message}");
            }
            ServerMsg::Unsubscribed { .. } => {}
        }
        out
    }

    /// Removes an op from the outbox (it was answered), returning it.
    fn take_op(&mut self, op_id: &str) -> Option<PendingOp> {
        self.throttled.remove(op_id);
        let i = self.outbox.iter().position(|p| p.op_id == op_id)?;
        Some(self.outbox.remove(i))
    }

    /// The replica changed: acknowledged ops it now includes are confirmed.
    /// The pending list is published only when it changed (the outbox did,
    /// or this confirmed an acknowledged op): most changes are other
    /// devices', and the list is cloned to publish it.
    fn after_apply(&mut self, out: &mut Vec<Effect>, outbox_changed: bool) {
        let seq = self.replica.as_ref().map_or(0, |r| r.seq);
        let before = self.acked.len();
        self.acked.retain(|_, (s, _)| *s > seq);
        out.push(Effect::PublishReplica);
        if outbox_changed || self.acked.len() != before {
            out.push(Effect::PublishPending);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pitboss_core::clock::ClockState;
    use pitboss_core::ops::{ChangeRecords, Op};
    use pitboss_core::protocol::{By, Change, EventSnapshotState};
    use pitboss_core::stats::Stats;
    use pitboss_core::structure::{Level, Structure};
    use serde_json::json;

    const EV: &str = "ev-1";

    fn stats(players: u64) -> Stats {
        Stats {
            entries: 50,
            players_remaining: players,
            ..Stats::default()
        }
    }

    fn state(players: u64) -> EventSnapshotState {
        EventSnapshotState {
            event: serde_json::from_value(json!({"name": "Deepstack"})).expect("details"),
            clock: ClockState {
                running: false,
                level_index: 0,
                remaining_ms: 60_000,
                anchor_ms: 0,
                epoch: 1,
            },
            structure: Structure::new(vec![Level::Play {
                small_blind: 100,
                big_blind: 200,
                ante: 0,
                duration_ms: 60_000,
                note: String::new(),
            }]),
            stats: stats(players),
            incidents: Vec::new(),
        }
    }

    /// Following `EV` at seq 5 with 40 players.
    fn at_seq_5() -> SyncState {
        SyncState::new(
            EV,
            Some(Replica {
                event_id: EV.into(),
                seq: 5,
                state: state(40),
            }),
            Vec::new(),
        )
    }

    fn live(s: &mut SyncState) {
        s.on_connected(0);
        s.on_server_msg(
            ServerMsg::Subscribed {
                event_id: EV.into(),
                seq: s.replica().map_or(0, |r| r.seq),
            },
            0,
        );
    }

    fn op(id: &str) -> PendingOp {
        PendingOp {
            op_id: id.into(),
            event_id: EV.into(),
            op: Op::StatsBust { count: 1 },
            created_at_ms: 0,
        }
    }

    /// The change that took players to `players` at `seq`.
    fn bust(seq: u64, op_id: &str, players: u64) -> Change {
        Change {
            event_id: EV.into(),
            seq,
            op_id: op_id.into(),
            op: Op::StatsBust { count: 1 },
            by: By {
                operator_id: "op-1".into(),
                name: "Ana".into(),
                device: "laptop-7".into(),
            },
            at_ms: 1_000 + seq as i64,
            records: ChangeRecords {
                stats: Some(stats(players)),
                ..ChangeRecords::default()
            },
        }
    }

    fn chg(c: Change) -> ServerMsg {
        ServerMsg::Change(Box::new(c))
    }

    fn ack(c: &Change) -> ServerMsg {
        ServerMsg::Ack {
            op_id: c.op_id.clone(),
            seq: c.seq,
            result: c.records.clone(),
        }
    }

    /// The server's "not now, again in `ms`" for op `id`.
    fn rate_limited(id: &str, ms: u64) -> ServerMsg {
        ServerMsg::Rejected {
            op_id: id.into(),
            error: "rate_limited".into(),
            message: "slow down".into(),
            current: None,
            retry_after_ms: Some(ms),
        }
    }

    fn players(s: &SyncState) -> u64 {
        s.replica().map_or(0, |r| r.state.stats.players_remaining)
    }

    fn sent_ops(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(ClientMsg::Op { op_id, .. }) => Some(op_id.clone()),
                _ => None,
            })
            .collect()
    }

    fn change_notices(effects: &[Effect]) -> usize {
        effects
            .iter()
            .filter(|e| matches!(e, Effect::Notice(Notice::Change { .. })))
            .count()
    }

    #[test]
    fn a_gap_applies_nothing_and_asks_to_resume_from_the_last_seq() {
        let mut s = at_seq_5();
        live(&mut s);
        let out = s.on_server_msg(chg(bust(7, "x", 38)), 0);
        assert!(out.contains(&Effect::Resume), "{out:?}");
        assert_eq!((s.replica().map(|r| r.seq), players(&s)), (Some(5), 40));
        // The resumed subscription asks after 5 and the missing 6 applies.
        assert_eq!(
            s.resubscribe(),
            vec![Effect::Send(ClientMsg::Subscribe {
                event_id: EV.into(),
                after: Some(5)
            })]
        );
        s.on_server_msg(chg(bust(6, "y", 39)), 0);
        assert_eq!((s.replica().map(|r| r.seq), players(&s)), (Some(6), 39));
    }

    #[test]
    fn the_pending_list_is_published_only_when_it_changes() {
        let mut s = at_seq_5();
        live(&mut s);
        // Another device's change: nothing of ours moved.
        let out = s.on_server_msg(chg(bust(6, "x", 39)), 0);
        assert!(!out.contains(&Effect::PublishPending), "{out:?}");
        s.queue(op("a"), 0).expect("queued");
        let out = s.on_server_msg(ack(&bust(7, "a", 38)), 0);
        assert!(out.contains(&Effect::PublishPending), "{out:?}");
    }

    #[test]
    fn a_duplicate_change_changes_and_announces_nothing() {
        let mut s = at_seq_5();
        live(&mut s);
        let out = s.on_server_msg(chg(bust(5, "x", 12)), 0);
        assert_eq!(change_notices(&out), 0);
        assert!(!out.contains(&Effect::PublishReplica));
        assert_eq!(players(&s), 40);
    }

    #[test]
    fn an_ack_before_its_broadcast_applies_once() {
        let mut s = at_seq_5();
        live(&mut s);
        s.queue(op("a"), 0).expect("queued");
        let c = bust(6, "a", 39);
        let out = s.on_server_msg(ack(&c), 0);
        assert_eq!(change_notices(&out), 1);
        assert!(out.contains(&Effect::ForgetOp("a".into())));
        assert_eq!((players(&s), s.pending().len()), (39, 0));
        let out = s.on_server_msg(chg(c), 0);
        assert_eq!(change_notices(&out), 0, "the broadcast is the same change");
        assert_eq!(players(&s), 39);
    }

    #[test]
    fn a_broadcast_before_its_ack_applies_once_and_the_ack_confirms_it() {
        let mut s = at_seq_5();
        live(&mut s);
        s.queue(op("a"), 0).expect("queued");
        let c = bust(6, "a", 39);
        let out = s.on_server_msg(chg(c.clone()), 0);
        assert_eq!(change_notices(&out), 1);
        assert_eq!(s.pending().len(), 1, "still pending until its answer");
        let out = s.on_server_msg(ack(&c), 0);
        assert_eq!(change_notices(&out), 0);
        assert!(out.contains(&Effect::Notice(Notice::Accepted {
            op_id: "a".into(),
            seq: 6
        })));
        assert_eq!((players(&s), s.pending().len()), (39, 0));
    }

    #[test]
    fn an_ack_ahead_of_missing_changes_stays_pending_until_they_arrive() {
        let mut s = at_seq_5();
        live(&mut s);
        s.queue(op("a"), 0).expect("queued");
        s.on_server_msg(ack(&bust(8, "a", 37)), 0);
        assert_eq!(players(&s), 40, "8 does not apply on 5");
        assert_eq!(s.pending().len(), 1, "shown as pending meanwhile");
        s.on_server_msg(chg(bust(6, "x", 39)), 0);
        s.on_server_msg(chg(bust(7, "y", 38)), 0);
        assert_eq!(s.pending().len(), 1);
        s.on_server_msg(chg(bust(8, "a", 37)), 0);
        assert_eq!((players(&s), s.pending().len()), (37, 0));
    }

    #[test]
    fn a_throttle_holds_ops_and_resends_them_in_outbox_order_with_their_ids() {
        let mut s = at_seq_5();
        live(&mut s);
        for id in ["a", "b", "c"] {
            assert_eq!(sent_ops(&s.queue(op(id), 0).expect("queued")), vec![id]);
        }
        for id in ["a", "b"] {
            s.on_server_msg(rate_limited(id, 500), 1_000);
        }
        s.on_server_msg(ack(&bust(6, "c", 39)), 1_000);
        // Made while throttled: held with the others, not sent.
        assert!(sent_ops(&s.queue(op("d"), 1_100).expect("queued")).is_empty());
        assert!(s.on_tick(1_499).is_empty());
        assert_eq!(sent_ops(&s.on_tick(1_500)), vec!["a", "b", "d"]);
        assert!(s.on_tick(2_000).is_empty(), "once");
        let ids: Vec<String> = s.pending().into_iter().map(|p| p.op_id).collect();
        assert_eq!(ids, vec!["a", "b", "d"], "never shown as refused");
    }

    #[test]
    fn a_reconnect_replays_the_outbox_in_order_unless_throttled() {
        let mut s = at_seq_5();
        for id in ["a", "b"] {
            assert!(sent_ops(&s.queue(op(id), 0).expect("queued")).is_empty());
        }
        let out = s.on_connected(0);
        assert_eq!(
            out.first(),
            Some(&Effect::Send(ClientMsg::Subscribe {
                event_id: EV.into(),
                after: Some(5)
            }))
        );
        assert_eq!(sent_ops(&out), vec!["a", "b"]);
        s.on_server_msg(rate_limited("a", 5_000), 100);
        s.on_disconnected();
        assert!(sent_ops(&s.on_connected(200)).is_empty(), "still throttled");
        assert_eq!(sent_ops(&s.on_tick(5_100)), vec!["a", "b"]);
    }

    #[test]
    fn a_snapshot_replaces_the_local_state_whatever_its_seq() {
        let mut s = at_seq_5();
        s.on_server_msg(chg(bust(6, "x", 39)), 0);
        let out = s.on_server_msg(
            ServerMsg::Snapshot {
                event_id: EV.into(),
                seq: 3,
                server_time_ms: 0,
                state: Box::new(state(44)),
            },
            0,
        );
        assert!(out.contains(&Effect::Notice(Notice::Snapshot { seq: 3 })));
        assert_eq!((s.replica().map(|r| r.seq), players(&s)), (Some(3), 44));
        assert!(s.take_dirty(), "to be saved");
    }

    #[test]
    fn a_display_queues_nothing_and_sends_nothing() {
        let mut s = at_seq_5();
        s.set_display(true);
        assert_eq!(s.queue(op("a"), 0), Err(QueueError::Display));
        assert_eq!(s.on_connected(0).len(), 1, "only the subscription");
        assert!(s.pending().is_empty());
    }

    #[test]
    fn only_the_answer_to_our_own_ping_is_a_time_sample() {
        let mut s = at_seq_5();
        live(&mut s);
        let pong = |t| ServerMsg::Pong {
            client_time_ms: t,
            server_time_ms: 5_100,
            changes_through_ms: Some(5_000),
        };
        let out = s.on_server_msg(pong(77), 200);
        assert_eq!(out, vec![Effect::HeardThrough(5_000)]);
        s.ping(100);
        let out = s.on_server_msg(pong(100), 200);
        assert_eq!(
            out,
            vec![Effect::HeardThrough(5_000), Effect::Offset(4_950)]
        );
    }
}
