//! Server-time estimate from ping/pong, so every screen computes the same
//! clock from the same anchor (rule 6 of docs/architecture.md).
//!
//! Each pong gives `offset = server_time - (sent + received) / 2`, which is
//! wrong by at most half the round trip. Of the recent samples the one with
//! the lowest round trip is trusted: on venue Wi-Fi most samples are delayed
//! by queuing somewhere, and the fastest exchange is the least skewed.

use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub rtt_ms: i64,
    pub offset_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct OffsetEstimator {
    samples: VecDeque<Sample>,
}

/// Samples kept; older ones age out so a changed path is followed. Sixteen
/// (a minute at the app's ping rate): on Wi-Fi with 50–100 ms each way, the
/// fastest of eight still left screens up to 25 ms apart in the chaos test.
const KEEP: usize = 16;

impl OffsetEstimator {
    /// Records a ping sent at local `sent_ms`, answered with `server_ms`,
    /// received at local `received_ms`.
    pub fn add(&mut self, sent_ms: i64, server_ms: i64, received_ms: i64) {
        if received_ms < sent_ms {
            return;
        }
        let rtt = received_ms - sent_ms;
        let offset = server_ms - (sent_ms + rtt / 2);
        if self.samples.len() == KEEP {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            rtt_ms: rtt,
            offset_ms: offset,
        });
    }

    /// The best estimate: the offset of the fastest recent exchange.
    pub fn best(&self) -> Option<Sample> {
        self.samples.iter().min_by_key(|s| s.rtt_ms).copied()
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn clear(&mut self) {
        self.samples.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fastest_exchange_wins() {
        let mut e = OffsetEstimator::default();
        // True offset 1000; the slow sample's reply was delayed on the way back.
        e.add(0, 1000 + 10, 100);
        e.add(200, 1000 + 205, 210);
        e.add(400, 1000 + 460, 480);
        let best = e.best().expect("samples");
        assert_eq!(best.rtt_ms, 10);
        assert_eq!(best.offset_ms, 1000);
    }

    #[test]
    fn old_samples_age_out() {
        let mut e = OffsetEstimator::default();
        e.add(0, 5000, 1);
        for i in 0..KEEP as i64 {
            e.add(i * 100, i * 100 + 20 + 50, i * 100 + 40);
        }
        assert_eq!(e.len(), KEEP);
        assert_eq!(e.best().map(|s| s.offset_ms), Some(50));
    }
}
