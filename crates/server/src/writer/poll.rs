//! Polling delivery ([`Delivery::Poll`]), the benchmark's reference for
//! what reading changes back from the store costs: no change is broadcast
//! at its commit; a timer asks the loop to read what each followed event
//! stored since the last poll.

#[cfg(doc)]
use super::Delivery;
use super::{internal, Writer};
use crate::fanout::Frame;
use crate::store;

impl Writer {
    /// What each followed event stored since the last poll, to its
    /// subscribers.
    pub(super) fn poll(&mut self) {
        for event_id in self.fanout.followed() {
            let Ok(Some((seq, _))) = store::event_seq(&self.conn, &event_id) else {
                continue;
            };
            let from = *self.delivered.get(&event_id).unwrap_or(&seq);
            if seq <= from {
                continue;
            }
            match store::changes_after(&self.conn, &event_id, from) {
                Ok(frames) => {
                    for f in frames {
                        self.fanout.broadcast(&event_id, &Frame::from(f));
                    }
                    self.delivered.insert(event_id, seq);
                }
                Err(e) => drop(internal(e)),
            }
        }
    }
}
