//! Fan-out: who follows which event, and how a committed change reaches
//! them.
//!
//! The promise of a subscription is a catch-up, then every later change of
//! its event once, in seq order, or a close that makes the client resume:
//! never a silent gap and never a change twice. This module keeps that
//! promise with plain data and tokio channels, no store and no socket, so
//! the tests below check it directly. The writer loop owns the
//! [`Registry`] and calls it between commits; the sockets only drain the
//! queues.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Utf8Bytes};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

/// A text frame shared by every subscriber it goes to: a change is
/// serialized once however many screens receive it, and cloning it bumps
/// one reference count.
///
/// One pointer rather than the text's own handle (four words), because it
/// sizes every connection's queue: the queue allocates its first 32 slots
/// when the connection opens, so each word of [`Outbound`] costs 256 bytes
/// per idle screen.
#[derive(Debug, Clone)]
pub struct Frame(Arc<Utf8Bytes>);

impl Frame {
    /// The text to write, sharing the frame's bytes.
    pub fn text(&self) -> Utf8Bytes {
        Utf8Bytes::clone(&self.0)
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The bytes of catch-ups one connection may have waiting to be written,
/// past the first. Live changes are shared by every subscriber and cost a
/// connection one pointer; a catch-up (a snapshot, a replay) is its own. A
/// peer that asks for catch-up after catch-up and reads none of them is cut
/// off (1013) instead of growing the server by each.
pub const MAX_QUEUED_CATCH_UP_BYTES: usize = 4 * 1024 * 1024;

/// The bytes of a catch-up.
pub fn catch_up_bytes(frames: &[Frame]) -> usize {
    frames.iter().map(Frame::len).sum()
}

impl From<String> for Frame {
    fn from(s: String) -> Frame {
        Frame(Arc::new(Utf8Bytes::from(s)))
    }
}

/// What a connection's send queue carries: two words (see [`Frame`]).
#[derive(Debug)]
pub enum Outbound {
    /// One frame, shared by every subscriber it goes to (serialized once).
    Frame(Frame),
    /// The catch-up of a subscription (snapshot or replay, then `subscribed`),
    /// queued as one item so that a long replay cannot overflow the queue.
    Batch(Box<Vec<Frame>>),
    /// Close the socket with this code and reason.
    Close(Box<CloseFrame>),
    /// A WebSocket Ping: the peer's pong (or anything else it sends) proves
    /// the connection is alive.
    Ping,
}

impl Outbound {
    /// A close frame with this code and reason.
    pub fn close(code: u16, reason: &str) -> Outbound {
        Outbound::Close(Box::new(CloseFrame {
            code,
            reason: reason.into(),
        }))
    }
}

/// A connection's registration for one event's changes.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub conn_id: u64,
    pub tx: mpsc::Sender<Outbound>,
    /// Cancelled when this connection can no longer be kept whole (its queue
    /// overflowed, or it would miss a change): the connection closes with
    /// 1013 and the client resumes from the last seq it applied.
    pub kill: CancellationToken,
    /// Bytes of catch-ups queued on this connection and not yet written
    /// (see [`MAX_QUEUED_CATCH_UP_BYTES`]); the connection's sender counts
    /// them down as it writes.
    pub queued: Arc<AtomicUsize>,
}

impl Subscriber {
    fn cut_off(&self, event_id: &str, why: &str) {
        tracing::warn!(conn = self.conn_id, event_id, "{why}; disconnecting it");
        self.kill.cancel();
    }
}

/// A subscriber as the registry holds it, with the last seq it was sent:
/// what lets a broadcast tell the next change from a repeat or a gap.
#[derive(Debug)]
struct Follower {
    sub: Subscriber,
    through: u64,
}

impl Follower {
    /// Offers change `seq` of `event_id`; whether the follower stays.
    fn offer(&mut self, event_id: &str, seq: u64, frame: &Frame) -> bool {
        if seq <= self.through {
            // Its catch-up already held this change.
            return true;
        }
        if seq != self.through + 1 {
            self.sub
                .cut_off(event_id, "a subscriber would miss a change");
            return false;
        }
        match self.sub.tx.try_send(Outbound::Frame(frame.clone())) {
            Ok(()) => {
                self.through = seq;
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.sub.cut_off(event_id, "subscriber too slow");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// Every live subscription, per event.
#[derive(Debug, Default)]
pub struct Registry {
    events: HashMap<String, Vec<Follower>>,
}

impl Registry {
    /// Queues a subscription's catch-up (every frame through `seq`, the
    /// event's seq when it was read) as one item, then registers the
    /// subscriber for the changes after `seq`. Subscribing again replaces
    /// the connection's earlier subscription to that event.
    ///
    /// Called between commits, so no change can fall between the catch-up
    /// and the first live frame. A catch-up that cannot be queued leaves the
    /// connection unregistered: a full queue cuts it off (it resumes), a
    /// closed one is gone anyway.
    pub fn subscribe(
        &mut self,
        event_id: &str,
        sub: Subscriber,
        catch_up: Vec<Frame>,
        seq: u64,
    ) -> Result<(), ApiError> {
        let bytes = catch_up_bytes(&catch_up);
        // One catch-up always goes, however long (a resume after a long
        // outage); more only while what waits stays under the cap.
        let unread = sub.queued.fetch_add(bytes, Ordering::AcqRel);
        let refused = if unread > 0 && unread + bytes > MAX_QUEUED_CATCH_UP_BYTES {
            Some("catch-ups this connection has not read")
        } else {
            match sub.tx.try_send(Outbound::Batch(Box::new(catch_up))) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Full(_)) => Some("connection queue is full"),
                Err(mpsc::error::TrySendError::Closed(_)) => return Ok(()),
            }
        };
        if let Some(why) = refused {
            sub.queued.fetch_sub(bytes, Ordering::AcqRel);
            sub.cut_off(event_id, why);
            return Err(ApiError::unavailable(why));
        }
        let list = self.events.entry(event_id.to_string()).or_default();
        list.retain(|f| f.sub.conn_id != sub.conn_id);
        list.push(Follower { sub, through: seq });
        Ok(())
    }

    /// Stops one connection's changes of one event.
    pub fn unsubscribe(&mut self, event_id: &str, conn_id: u64) {
        if let Some(list) = self.events.get_mut(event_id) {
            list.retain(|f| f.sub.conn_id != conn_id);
            if list.is_empty() {
                self.events.remove(event_id);
            }
        }
    }

    /// Forgets every subscription of a connection that ended.
    pub fn disconnect(&mut self, conn_id: u64) {
        for list in self.events.values_mut() {
            list.retain(|f| f.sub.conn_id != conn_id);
        }
        self.events.retain(|_, list| !list.is_empty());
    }

    /// Queues change `seq` of `event_id` on each of its subscribers, without
    /// ever waiting: a subscriber that already has it is skipped, and one
    /// that cannot take it whole (its queue is full, or it is missing the
    /// change before) is cut off and forgotten, so the writer never slows
    /// for a socket and no screen silently skips a change.
    pub fn broadcast(&mut self, event_id: &str, seq: u64, frame: &Frame) {
        let Some(list) = self.events.get_mut(event_id) else {
            return;
        };
        list.retain_mut(|f| f.offer(event_id, seq, frame));
        if list.is_empty() {
            self.events.remove(event_id);
        }
    }

    /// Each followed event with the oldest seq any of its subscribers was
    /// sent: where a poll of the store has to read from.
    #[cfg(feature = "bench-polling")]
    pub fn oldest_through(&self) -> Vec<(String, u64)> {
        self.events
            .iter()
            .filter_map(|(id, list)| Some((id.clone(), list.iter().map(|f| f.through).min()?)))
            .collect()
    }
}

/// What a batch of writes has to say once its transaction ends: an answer
/// per write, in the order they ran, and the changes they made, in seq
/// order. Held until then because nothing may leave for a change the store
/// could still lose: a failed commit answers every write with the failure
/// and sends no change at all.
#[derive(Debug)]
pub struct Outgoing<A> {
    answers: Vec<A>,
    changes: Vec<(String, u64, Frame)>,
}

impl<A> Outgoing<A> {
    pub fn with_capacity(n: usize) -> Outgoing<A> {
        Outgoing {
            answers: Vec::with_capacity(n),
            changes: Vec::new(),
        }
    }

    /// An answer for the author of the write that just ran.
    pub fn answer(&mut self, a: A) {
        self.answers.push(a);
    }

    /// A change the write that just ran made: the `seq` it took in its event.
    pub fn change(&mut self, event_id: String, seq: u64, frame: Frame) {
        self.changes.push((event_id, seq, frame));
    }

    /// The commit held. Every author gets its answer first, in the order
    /// the writes ran; what is returned are the changes, to broadcast next.
    pub fn release(self, mut send: impl FnMut(A)) -> Committed {
        for a in self.answers {
            send(a);
        }
        Committed {
            changes: self.changes,
        }
    }

    /// The commit failed and nothing of the batch is stored: every author
    /// is told, and the changes are dropped unsent.
    pub fn fail(self, fail: impl FnMut(A)) {
        self.answers.into_iter().for_each(fail);
    }
}

/// The changes of a committed batch, answered already, to be broadcast.
#[must_use = "committed changes must be broadcast"]
#[derive(Debug)]
pub struct Committed {
    changes: Vec<(String, u64, Frame)>,
}

impl Committed {
    /// Queues each change on its event's subscribers, in the order they
    /// were committed, which is seq order within each event.
    pub fn broadcast(self, registry: &mut Registry) {
        for (event_id, seq, frame) in self.changes {
            registry.broadcast(&event_id, seq, &frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One change's frame, recognisable by its seq.
    fn change(seq: u64) -> Frame {
        Frame::from(format!("change {seq}"))
    }

    /// A connection with a send queue of `room` items.
    fn connection(conn_id: u64, room: usize) -> (Subscriber, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(room);
        let kill = CancellationToken::new();
        let queued = Arc::default();
        (
            Subscriber {
                conn_id,
                tx,
                kill,
                queued,
            },
            rx,
        )
    }

    /// Everything queued on a connection so far, as text.
    fn drain(rx: &mut mpsc::Receiver<Outbound>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(item) = rx.try_recv() {
            match item {
                Outbound::Frame(f) => out.push(f.text().to_string()),
                Outbound::Batch(fs) => {
                    out.extend(fs.iter().map(|f| format!("catch-up {}", f.text())))
                }
                Outbound::Close(c) => out.push(format!("close {}", c.code)),
                Outbound::Ping => out.push("ping".into()),
            }
        }
        out
    }

    fn texts(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// A subscriber whose queue is full when a change comes is cut off and
    /// forgotten: once it drains, the changes after the one it missed never
    /// reach it, so it cannot show them over a hole; it resumes instead.
    ///
    /// Fails if a broadcast keeps a subscriber whose queue was full without
    /// cutting it off (the `Full` arm returning `true`).
    #[test]
    fn a_subscriber_that_misses_a_change_is_cut_off_not_fed_past_the_gap() {
        let mut reg = Registry::default();
        let (sub, mut rx) = connection(1, 2);
        let kill = sub.kill.clone();
        reg.subscribe("ev", sub, vec![change(4)], 4)
            .expect("subscribed");
        reg.broadcast("ev", 5, &change(5));
        // The queue holds the catch-up and change 5: change 6 finds it full.
        reg.broadcast("ev", 6, &change(6));
        assert!(kill.is_cancelled(), "the connection is closed to resume");
        assert_eq!(
            drain(&mut rx),
            texts(&["catch-up change 4", "change 5"]),
            "what was queued before the gap still goes out"
        );
        reg.broadcast("ev", 7, &change(7));
        assert!(drain(&mut rx).is_empty(), "nothing after the gap");
    }

    /// A change whose seq is not the next one a subscriber needs means it
    /// missed one (a change some path failed to broadcast): the subscriber
    /// is cut off, never handed the later change as if nothing were missing.
    ///
    /// Fails if the broadcast skips the seq check (`seq != through + 1`).
    #[test]
    fn a_broadcast_past_a_missing_seq_closes_the_subscriber() {
        let mut reg = Registry::default();
        let (sub, mut rx) = connection(1, 8);
        let kill = sub.kill.clone();
        reg.subscribe("ev", sub, vec![change(3)], 3)
            .expect("subscribed");
        reg.broadcast("ev", 5, &change(5));
        assert!(kill.is_cancelled(), "change 4 never came: resume");
        assert_eq!(drain(&mut rx), texts(&["catch-up change 3"]));
        reg.broadcast("ev", 6, &change(6));
        assert!(drain(&mut rx).is_empty(), "forgotten after the gap");
    }

    /// A catch-up that cannot be queued (the connection's queue is full)
    /// refuses the subscription and leaves the connection unregistered:
    /// registered, it would get live changes with no catch-up before them.
    ///
    /// Fails if `subscribe` registers the follower before (or regardless
    /// of) queuing its catch-up.
    #[test]
    fn a_subscription_whose_catch_up_cannot_be_queued_gets_no_live_changes() {
        let mut reg = Registry::default();
        let (sub, mut rx) = connection(1, 1);
        let kill = sub.kill.clone();
        sub.tx.try_send(Outbound::Ping).expect("room for one");
        let refused = reg.subscribe("ev", sub, vec![change(2)], 2);
        assert!(refused.is_err(), "refused: the queue is full");
        assert!(kill.is_cancelled());
        // Even once the queue has room again, no change follows.
        assert_eq!(drain(&mut rx), texts(&["ping"]));
        reg.broadcast("ev", 3, &change(3));
        assert!(drain(&mut rx).is_empty(), "no live change without catch-up");
    }

    /// A change the catch-up already held is not sent again. That happens
    /// whenever changes are read back from the store for subscribers who
    /// joined at different seqs (polling delivery does it on every poll).
    ///
    /// Fails if the broadcast drops the check that skips a seq at or below
    /// what the subscriber was sent (the repeat is then sent, or taken for a
    /// gap and the subscriber closed).
    #[test]
    fn a_change_the_catch_up_held_is_not_delivered_twice() {
        let mut reg = Registry::default();
        let (early, mut early_rx) = connection(1, 8);
        let (late, mut late_rx) = connection(2, 8);
        let late_kill = late.kill.clone();
        reg.subscribe("ev", early, vec![change(1)], 1)
            .expect("early");
        // Change 2 is committed, then a second screen subscribes with a
        // catch-up through 2, before anyone was sent change 2.
        reg.subscribe("ev", late, vec![change(1), change(2)], 2)
            .expect("late");
        for seq in 2..=3 {
            reg.broadcast("ev", seq, &change(seq));
        }
        assert_eq!(
            drain(&mut early_rx),
            texts(&["catch-up change 1", "change 2", "change 3"])
        );
        assert_eq!(
            drain(&mut late_rx),
            texts(&["catch-up change 1", "catch-up change 2", "change 3"])
        );
        assert!(!late_kill.is_cancelled());
    }

    /// Subscribing again to an event the connection follows replaces the
    /// subscription: a new catch-up, and each later change arrives once.
    ///
    /// Fails if `subscribe` stops removing the connection's earlier
    /// registration for the event.
    #[test]
    fn subscribing_again_keeps_one_registration_so_each_change_arrives_once() {
        let mut reg = Registry::default();
        let (sub, mut rx) = connection(1, 8);
        reg.subscribe("ev", sub.clone(), vec![change(1)], 1)
            .expect("first");
        reg.subscribe("ev", sub, vec![change(1)], 1).expect("again");
        reg.broadcast("ev", 2, &change(2));
        assert_eq!(
            drain(&mut rx),
            texts(&["catch-up change 1", "catch-up change 1", "change 2"])
        );
    }

    /// Changes reach only their own event's subscribers, and stop at an
    /// unsubscribe or a disconnect.
    ///
    /// Fails if `unsubscribe` or `disconnect` leaves the connection
    /// registered.
    #[test]
    fn changes_reach_only_current_subscribers_of_their_event() {
        let mut reg = Registry::default();
        let (a, mut a_rx) = connection(1, 8);
        let (b, mut b_rx) = connection(2, 8);
        reg.subscribe("ev", a.clone(), Vec::new(), 0).expect("a ev");
        reg.subscribe("other", a, Vec::new(), 0).expect("a other");
        reg.subscribe("ev", b, Vec::new(), 0).expect("b ev");
        reg.broadcast("other", 1, &Frame::from("other 1".to_string()));
        reg.unsubscribe("ev", 2);
        reg.broadcast("ev", 1, &change(1));
        reg.disconnect(1);
        reg.broadcast("ev", 2, &change(2));
        reg.broadcast("other", 2, &Frame::from("other 2".to_string()));
        assert_eq!(drain(&mut a_rx), texts(&["other 1", "change 1"]));
        assert!(drain(&mut b_rx).is_empty());
    }

    /// The order a committed batch leaves in, as `docs/server-design.md`
    /// states it: the authors' answers first (in the order the ops ran),
    /// then the changes, in seq order. The protocol lets an ack and its own
    /// change reach a socket in either order, since each ack is awaited on
    /// its own; what it relies on is that neither leaves before the commit
    /// and that changes come in seq order.
    ///
    /// Fails if `release` hands out the answers out of order, or if
    /// `Committed::broadcast` sends the batch's changes out of seq order
    /// (the seq check then cuts the author off). A change leaving before
    /// the answers cannot be written: the changes come out of `release`
    /// only once it has answered.
    #[test]
    fn a_committed_batch_answers_its_authors_then_broadcasts_in_seq_order() {
        let mut reg = Registry::default();
        let (author, mut rx) = connection(1, 8);
        let kill = author.kill.clone();
        reg.subscribe("ev", author, Vec::new(), 0)
            .expect("subscribed");
        assert_eq!(drain(&mut rx), Vec::<String>::new());
        let mut out = Outgoing::with_capacity(2);
        for seq in 1..=2 {
            out.answer(format!("ack {seq}"));
            out.change("ev".into(), seq, change(seq));
        }
        let mut answered = Vec::new();
        let committed = out.release(|ack| {
            assert!(rx.is_empty(), "{ack} answered after its change was queued");
            answered.push(ack);
        });
        committed.broadcast(&mut reg);
        assert_eq!(answered, texts(&["ack 1", "ack 2"]));
        assert_eq!(drain(&mut rx), texts(&["change 1", "change 2"]));
        assert!(!kill.is_cancelled());
    }

    /// A batch whose commit failed answers every author, in order; it has
    /// no [`Committed`] to broadcast, so no change of it can leave.
    ///
    /// Fails if `fail` skips an answer: that author would wait for ever.
    #[test]
    fn a_failed_commit_answers_every_author() {
        let mut out = Outgoing::with_capacity(2);
        out.answer(1);
        out.change("ev".into(), 1, change(1));
        out.answer(2);
        let mut failed = Vec::new();
        out.fail(|a| failed.push(a));
        assert_eq!(failed, vec![1, 2]);
    }

    /// Fails if the catch-up bytes are not counted (or the cap not checked):
    /// a peer asking for snapshot after snapshot, reading none, would grow
    /// the server by each.
    #[test]
    fn catch_ups_past_the_byte_cap_cut_the_connection_off() {
        let mut reg = Registry::default();
        // The first may be as long as it is: a resume after an outage.
        let (resuming, _queue) = connection(2, 1024);
        let huge = Frame::from("x".repeat(8 * 1024 * 1024));
        let r = reg.subscribe("ev", resuming.clone(), vec![huge], 1);
        assert!(r.is_ok(), "{r:?}");
        assert!(!resuming.kill.is_cancelled());
        let (sub, mut rx) = connection(1, 1024);
        let big = Frame::from("x".repeat(1024 * 1024));
        for _ in 0..4 {
            let r = reg.subscribe("ev", sub.clone(), vec![big.clone()], 1);
            assert!(r.is_ok(), "{r:?}");
        }
        assert!(!sub.kill.is_cancelled());
        let r = reg.subscribe("ev", sub.clone(), vec![big.clone()], 1);
        assert!(r.is_err(), "a fifth MiB unread is over the cap");
        assert!(sub.kill.is_cancelled(), "and the connection is cut off");
        assert_eq!(drain(&mut rx).len(), 4, "nothing past the cap was queued");
    }
}
