//! Fan-out: who follows which event, and how a committed change reaches
//! them.
//!
//! The promise of a subscription is a catch-up, then every later change of
//! its event once, in seq order, or a close that makes the client resume:
//! never a silent gap and never a change twice. This module keeps that
//! promise with plain data and tokio channels, no store and no socket, so
//! it can be tested without either. The writer loop owns the
//! [`Registry`] and calls it between commits; the sockets only drain the
//! queues.

use std::collections::HashMap;
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
    /// Cancelled when this connection's queue overflows: the connection
    /// closes with 1013 and the client resumes from the last seq it applied.
    pub kill: CancellationToken,
}

/// Every live subscription, per event.
#[derive(Debug, Default)]
pub struct Registry {
    events: HashMap<String, Vec<Subscriber>>,
}

impl Registry {
    /// Queues a subscription's catch-up (every frame through the event's
    /// seq when it was read) as one item, then registers the subscriber for
    /// the changes after it. Subscribing again replaces the connection's
    /// earlier subscription to that event.
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
    ) -> Result<(), ApiError> {
        match sub.tx.try_send(Outbound::Batch(Box::new(catch_up))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                sub.kill.cancel();
                return Err(ApiError::unavailable("connection queue is full"));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Ok(()),
        }
        let list = self.events.entry(event_id.to_string()).or_default();
        list.retain(|s| s.conn_id != sub.conn_id);
        list.push(sub);
        Ok(())
    }

    /// Stops one connection's changes of one event.
    pub fn unsubscribe(&mut self, event_id: &str, conn_id: u64) {
        if let Some(list) = self.events.get_mut(event_id) {
            list.retain(|s| s.conn_id != conn_id);
            if list.is_empty() {
                self.events.remove(event_id);
            }
        }
    }

    /// Forgets every subscription of a connection that ended.
    pub fn disconnect(&mut self, conn_id: u64) {
        for list in self.events.values_mut() {
            list.retain(|s| s.conn_id != conn_id);
        }
        self.events.retain(|_, list| !list.is_empty());
    }

    /// Whether any connection follows this event.
    pub fn is_followed(&self, event_id: &str) -> bool {
        self.events.contains_key(event_id)
    }

    /// The events someone follows.
    pub fn followed(&self) -> Vec<String> {
        self.events.keys().cloned().collect()
    }

    /// Queues a change on each subscriber of its event, without ever
    /// waiting: a subscriber whose queue is full is cut off (it will
    /// resume), so the writer never slows for a socket.
    pub fn broadcast(&mut self, event_id: &str, frame: &Frame) {
        let Some(list) = self.events.get_mut(event_id) else {
            return;
        };
        list.retain(|s| match s.tx.try_send(Outbound::Frame(frame.clone())) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    conn = s.conn_id,
                    event_id,
                    "subscriber too slow; disconnecting it"
                );
                s.kill.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
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
    changes: Vec<(String, Frame)>,
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

    /// A change the write that just ran made.
    pub fn change(&mut self, event_id: String, frame: Frame) {
        self.changes.push((event_id, frame));
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
    changes: Vec<(String, Frame)>,
}

impl Committed {
    /// Queues each change on its event's subscribers, in the order they
    /// were committed, which is seq order within each event.
    pub fn broadcast(self, registry: &mut Registry) {
        for (event_id, frame) in self.changes {
            registry.broadcast(&event_id, &frame);
        }
    }
}
