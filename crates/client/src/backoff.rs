//! Reconnect delays: exponential, capped, with full jitter, so that forty
//! laptops that lost the same access point do not all knock on the host at
//! the same millisecond when it comes back.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The delay before the next attempt: uniform in [min, min·2^n], capped.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 1u32 << self.attempt.min(16);
        self.attempt = self.attempt.saturating_add(1);
        let ceiling = self.min.saturating_mul(factor).min(self.max);
        let lo = self.min.as_millis() as u64;
        let hi = (ceiling.as_millis() as u64).max(lo);
        Duration::from_millis(rand::rng().random_range(lo..=hi))
    }

    /// After a successful connection.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_are_capped_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(100));
        for _ in 0..30 {
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(100) && d <= Duration::from_secs(5),
                "{d:?}"
            );
        }
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }
}
