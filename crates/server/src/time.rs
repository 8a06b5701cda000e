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

/// How far in server time every change has been handed to the sockets.
///
/// A screen that sees its clock cross into a new level cannot know, from
/// the crossing alone, whether a coordinator's "+1 min" stamped just before
/// the boundary is still on its way; beeping then would announce a level
/// that never started. Each pong therefore says up to which instant the
/// changes are complete on that socket, and screens sound a crossing only
/// once they have heard that far (see `pitboss_client::alerts`).
///
/// The writer stamps a batch of changes with one instant, commits, then
/// queues the frames on each subscriber's socket. While a batch is open,
/// the horizon is just before its stamp; otherwise it is now. Stamping and
/// reading take the same lock, so a pong never claims an instant whose
/// change could still be queued after it.
#[derive(Debug, Default)]
pub struct Horizon {
    open: std::sync::Mutex<Option<i64>>,
}

impl Horizon {
    /// Stamps a new batch: changes from now on carry the returned instant.
    pub fn open(&self, clock: &ServerClock) -> i64 {
        let mut g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let now = clock.now_ms();
        *g = Some(now);
        now
    }

    /// The batch's frames are queued on every socket (or it failed).
    pub fn close(&self) {
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Every change stamped at or before this instant is already queued.
    /// Idle, that is the millisecond before now: a batch opened later in
    /// this same millisecond is stamped with it.
    pub fn through_ms(&self, clock: &ServerClock) -> i64 {
        let g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match *g {
            Some(stamp) => stamp - 1,
            None => clock.now_ms() - 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_horizon_stays_below_any_batch_that_can_still_open() {
        let clock = ServerClock::new();
        let h = Horizon::default();
        let before = h.through_ms(&clock);
        assert!(before <= clock.now_ms());
        let stamp = h.open(&clock);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(
            h.through_ms(&clock),
            stamp - 1,
            "a change stamped {stamp} may still be queued"
        );
        h.close();
        assert!(h.through_ms(&clock) >= stamp + 4);
        // Idle, never the current millisecond: a batch may still open in it.
        for _ in 0..1000 {
            let through = h.through_ms(&clock);
            let next = h.open(&clock);
            h.close();
            assert!(
                next > through,
                "a batch stamped {next} after a horizon of {through}"
            );
        }
    }
}

/// A span as a person says it: "7 days", "1 hour", "90 s".
pub fn spoken_duration(ms: i64) -> String {
    let s = ms / 1000;
    let (n, unit) = if s >= 86_400 && s % 86_400 == 0 {
        (s / 86_400, "day")
    } else if s >= 3_600 && s % 3_600 == 0 {
        (s / 3_600, "hour")
    } else {
        return format!("{s} s");
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod spoken {
    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(super::spoken_duration(7 * 86_400_000), "7 days");
        assert_eq!(super::spoken_duration(3_600_000), "1 hour");
        assert_eq!(super::spoken_duration(90_000), "90 s");
    }
}
