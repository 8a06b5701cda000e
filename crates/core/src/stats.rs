//! The counters dealers report and the figures derived from them.

use serde::{Deserialize, Serialize};

use crate::event::EventDetails;

/// Counters of an event. The derived figures (`total_chips`, `average_stack`,
/// `prize_pool`) are computed by [`Stats::derive`] and sent with the counters
/// so that a script reading the API needs no formula of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub entries: u64,
    pub players_remaining: u64,
    pub rebuys: u64,
    pub addons: u64,
    #[serde(default)]
    pub total_chips: u64,
    #[serde(default)]
    pub average_stack: u64,
    #[serde(default)]
    pub prize_pool: u64,
}

impl Stats {
    /// Fills in the derived figures from the counters and the event's money.
    pub fn derive(mut self, d: &EventDetails) -> Stats {
        self.total_chips = self
            .entries
            .saturating_mul(d.starting_stack)
            .saturating_add(self.rebuys.saturating_mul(d.rebuy_chips))
            .saturating_add(self.addons.saturating_mul(d.addon_chips));
        self.average_stack = self
            .total_chips
            .checked_div(self.players_remaining)
            .unwrap_or(0);
        self.prize_pool = self
            .entries
            .saturating_mul(d.buy_in)
            .saturating_add(self.rebuys.saturating_mul(d.rebuy_price))
            .saturating_add(self.addons.saturating_mul(d.addon_price));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_stack_and_prize_pool_follow_the_counters() {
        let d = EventDetails {
            name: "x".into(),
            starting_stack: 20_000,
            buy_in: 100,
            rebuy_chips: 20_000,
            rebuy_price: 100,
            addon_chips: 10_000,
            addon_price: 50,
        };
        let s = Stats {
            entries: 10,
            players_remaining: 5,
            rebuys: 2,
            addons: 4,
            ..Stats::default()
        }
        .derive(&d);
        assert_eq!(s.total_chips, 200_000 + 40_000 + 40_000);
        assert_eq!(s.average_stack, 56_000);
        assert_eq!(s.prize_pool, 1_000 + 200 + 200);
        let empty = Stats::default().derive(&d);
        assert_eq!(empty.average_stack, 0);
    }
}
