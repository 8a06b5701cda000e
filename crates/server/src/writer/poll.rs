//! Polling delivery, the benchmark's reference for what reading changes
//! back from the store costs (as a database-backed pub/sub adapter does):
//! no change is broadcast at its commit; a timer asks the loop to read what
//! each followed event stored since its subscribers were last sent any.
//! Built only with the `bench-polling` feature, which only the benchmark's
//! `bench-poll-server` turns on.

use super::{internal, Writer};
use crate::fanout::Frame;
use crate::store;

impl Writer {
    /// From now on, changes reach subscribers by [`Writer::poll`] only.
    pub fn polling(mut self) -> Writer {
        self.polling = true;
        self
    }

    /// Reads each followed event's changes after the oldest seq one of its
    /// subscribers was sent, and broadcasts them; the registry skips what a
    /// subscriber already has.
    pub(super) fn poll(&mut self) {
        for (event_id, from) in self.fanout.oldest_through() {
            match store::changes_with_seq_after(&self.conn, &event_id, from) {
                Ok(changes) => {
                    for (seq, frame) in changes {
                        self.fanout.broadcast(&event_id, seq, &Frame::from(frame));
                    }
                }
                Err(e) => drop(internal(e)),
            }
        }
    }
}
