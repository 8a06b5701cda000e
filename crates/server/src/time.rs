//! Server time: wall-clock milliseconds that never step backwards while the
//! process runs.
//!
//! Every clock anchor is a server instant, and every screen derives the
//! clock from it. If an NTP correction stepped the wall clock back by a few
//! seconds in the middle of a level, anchors taken after it would move every
//! clock in the room. So the server reads the wall clock once at start and
//! advances it with the monotonic clock from then on.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct ServerClock {
    base_ms: i64,
    start: Instant,
}

impl ServerClock {
    pub fn new() -> ServerClock {
        let base_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        ServerClock {
            base_ms,
            start: Instant::now(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.base_ms.saturating_add(elapsed)
    }
}

impl Default for ServerClock {
    fn default() -> Self {
        ServerClock::new()
    }
}
