//! When a screen may make a sound (rule 7).
//!
//! A sound means "the level on this screen just changed while you were
//! watching": the local clock crossed a boundary, or a coordinator moved the
//! level while this screen was live. It plays once per (event, level, epoch)
//! and never for what a screen learns by catching up: a snapshot, a replay
//! after a reconnect, a wake from sleep, a reload, or a stall of the app
//! itself (a gap between two ticks longer than [`AlertGate::MAX_TICK_GAP_MS`]).
//!
//! [`AlertGate`] is pure and decides from what is shown; [`Watcher`] feeds it
//! from a [`Client`]'s notices and status.

use std::collections::VecDeque;

use pitboss_core::clock::position;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::engine::{Client, Notice, Status};

/// Which sound to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sound {
    /// A new level of play: the double beep.
    Level,
    /// One minute left in the current level or break.
    Minute,
    BreakStart,
    BreakEnd,
}

/// What one screen shows at one tick, as far as alerts care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub event_id: String,
    pub level_index: usize,
    pub epoch: u64,
    pub is_break: bool,
    pub running: bool,
    pub remaining_ms: i64,
    /// Estimated server time of this tick.
    pub now_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub sound: Sound,
    pub event_id: String,
    pub level_index: usize,
    pub epoch: u64,
}

#[derive(Debug, Default)]
pub struct AlertGate {
    last: Option<Shown>,
    /// Recently fired (event, level, epoch, sound), oldest first.
    fired: VecDeque<(String, usize, u64, Sound)>,
}

const ONE_MINUTE_MS: i64 = 60_000;
const FIRED_KEPT: usize = 256;

impl AlertGate {
    /// Ticks further apart than this mean the app did not watch in between
    /// (stopped, asleep, starved): whatever changed is caught up, not heard.
    pub const MAX_TICK_GAP_MS: i64 = 2_000;

    pub fn new() -> AlertGate {
        AlertGate::default()
    }

    /// Called for every rendered tick. `live`: the connection is live (or
    /// this is the host itself). `resynced`: since the previous tick the
    /// state was replaced or caught up (snapshot, replay, reconnect, wake).
    pub fn tick(&mut self, now: Shown, live: bool, resynced: bool) -> Option<Alert> {
        let prev = self.last.replace(now.clone());
        let prev = prev?;
        let gap = now.now_ms - prev.now_ms;
        if prev.event_id != now.event_id
            || !live
            || resynced
            || !(0..=Self::MAX_TICK_GAP_MS).contains(&gap)
        {
            return None;
        }
        let sound = if now.level_index != prev.level_index {
            if now.is_break {
                Sound::BreakStart
            } else if prev.is_break {
                Sound::BreakEnd
            } else {
                Sound::Level
            }
        } else if now.running
            && prev.remaining_ms > ONE_MINUTE_MS
            && (1..=ONE_MINUTE_MS).contains(&now.remaining_ms)
        {
            Sound::Minute
        } else {
            return None;
        };
        let key = (now.event_id.clone(), now.level_index, now.epoch, sound);
        if self.fired.contains(&key) {
            return None;
        }
        if self.fired.len() == FIRED_KEPT {
            self.fired.pop_front();
        }
        self.fired.push_back(key);
        Some(Alert {
            sound,
            event_id: now.event_id,
            level_index: now.level_index,
            epoch: now.epoch,
        })
    }
}

/// A level that began while this device was asleep, for a banner such as
/// "Level 7 started at 21:14 while this device was asleep" (no sound).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SleptThrough {
    pub level_index: usize,
    pub is_break: bool,
    /// Server time the level began, when the clock is running.
    pub started_at_ms: Option<i64>,
    /// How long the device was away, as far as it knows.
    pub away_ms: i64,
}

/// Feeds an [`AlertGate`] from a live [`Client`]: call [`Watcher::tick`]
/// at the screen's render rate (4 Hz in the app).
pub struct Watcher {
    gate: AlertGate,
    notices: broadcast::Receiver<Notice>,
    was_live: bool,
    last: Option<Shown>,
    /// Set on a wake: what was shown before it, and how long it was away.
    asleep: Option<(Option<Shown>, i64)>,
    slept_through: Option<SleptThrough>,
}

/// Statuses in which the screen follows the server closely enough that the
/// local clock crossing a boundary is heard (Degraded polls every few
/// seconds; what a poll brings is a replay, never heard).
fn follows(status: &Status) -> bool {
    matches!(status, Status::Live | Status::Degraded { .. })
}

impl Watcher {
    pub fn new(client: &Client) -> Watcher {
        Watcher {
            gate: AlertGate::new(),
            notices: client.notices(),
            was_live: false,
            last: None,
            asleep: None,
            slept_through: None,
        }
    }

    /// The level that began while this device slept, once after each wake
    /// that slept through one.
    pub fn take_slept_through(&mut self) -> Option<SleptThrough> {
        self.slept_through.take()
    }

    /// What the screen shows now, and the alert to play, if any.
    pub fn tick(&mut self, client: &Client) -> (Option<Shown>, Option<Alert>) {
        let mut resynced = false;
        loop {
            match self.notices.try_recv() {
                Ok(Notice::Snapshot { .. } | Notice::CaughtUp { .. }) => resynced = true,
                Ok(Notice::Change { live: false, .. }) => resynced = true,
                Ok(Notice::Woke { away_ms, .. }) => {
                    resynced = true;
                    // A second wake before the resync keeps the first view.
                    let before = match self.asleep.take() {
                        Some((before, _)) => before,
                        None => self.last.clone(),
                    };
                    self.asleep = Some((before, away_ms));
                }
                Ok(_) => {}
                // Missed notices: we cannot know what they were; be quiet.
                Err(broadcast::error::TryRecvError::Lagged(_)) => resynced = true,
                Err(_) => break,
            }
        }
        let live = follows(&client.status().borrow());
        if live && !self.was_live {
            resynced = true;
        }
        self.was_live = live;
        let Some(r) = client.replica().borrow().clone() else {
            return (None, None);
        };
        let now_ms = client.server_now_ms();
        let p = position(&r.state.clock, &r.state.structure, now_ms);
        let shown = Shown {
            event_id: r.event_id.clone(),
            level_index: p.level_index,
            epoch: r.state.clock.epoch,
            is_break: p.is_break,
            running: p.running,
            remaining_ms: p.remaining_ms,
            now_ms,
        };
        let alert = self.gate.tick(shown.clone(), live, resynced);
        if live && !resynced {
            // The first quiet, live tick after a wake: the state is the
            // server's again. Say what changed while away.
            if let Some((before, away_ms)) = self.asleep.take() {
                let moved = before.as_ref().is_none_or(|b| {
                    b.event_id != shown.event_id || b.level_index != shown.level_index
                });
                if moved {
                    let duration = r
                        .state
                        .structure
                        .levels
                        .get(shown.level_index)
                        .map(|l| l.duration_ms());
                    self.slept_through = Some(SleptThrough {
                        level_index: shown.level_index,
                        is_break: shown.is_break,
                        started_at_ms: duration
                            .filter(|_| shown.running)
                            .map(|d| now_ms - (d - shown.remaining_ms)),
                        away_ms,
                    });
                }
            }
        }
        self.last = Some(shown.clone());
        (Some(shown), alert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shown(level: usize, epoch: u64, remaining_ms: i64, now_ms: i64) -> Shown {
        Shown {
            event_id: "ev".into(),
            level_index: level,
            epoch,
            is_break: level == 4,
            running: true,
            remaining_ms,
            now_ms,
        }
    }

    #[test]
    fn the_first_tick_after_start_is_silent() {
        let mut g = AlertGate::new();
        assert_eq!(g.tick(shown(3, 1, 1_000, 0), true, false), None);
    }

    #[test]
    fn crossing_a_boundary_while_live_alerts_once() {
        let mut g = AlertGate::new();
        g.tick(shown(0, 1, 200, 0), true, false);
        let a = g.tick(shown(1, 1, 1_199_950, 250), true, false);
        assert_eq!(a.map(|a| a.sound), Some(Sound::Level));
        assert_eq!(g.tick(shown(1, 1, 1_199_700, 500), true, false), None);
        // Flicker back and forth (an offset correction) does not repeat it.
        g.tick(shown(0, 1, 100, 750), true, false);
        assert_eq!(g.tick(shown(1, 1, 1_199_900, 1_000), true, false), None);
    }

    #[test]
    fn breaks_have_their_own_sounds() {
        let mut g = AlertGate::new();
        g.tick(shown(3, 1, 100, 0), true, false);
        let a = g.tick(shown(4, 1, 899_900, 250), true, false);
        assert_eq!(a.map(|a| a.sound), Some(Sound::BreakStart));
        g.tick(shown(4, 1, 100, 1_000), true, false);
        let a = g.tick(shown(5, 1, 1_199_900, 1_250), true, false);
        assert_eq!(a.map(|a| a.sound), Some(Sound::BreakEnd));
    }

    #[test]
    fn one_minute_warning_once() {
        let mut g = AlertGate::new();
        g.tick(shown(2, 1, 60_100, 0), true, false);
        let a = g.tick(shown(2, 1, 59_850, 250), true, false);
        assert_eq!(a.map(|a| a.sound), Some(Sound::Minute));
        assert_eq!(g.tick(shown(2, 1, 59_600, 500), true, false), None);
    }

    #[test]
    fn a_coordinator_moving_the_level_while_live_alerts() {
        let mut g = AlertGate::new();
        g.tick(shown(2, 1, 500_000, 0), true, false);
        let a = g.tick(shown(3, 2, 1_200_000, 250), true, false);
        assert_eq!(a.map(|a| (a.sound, a.epoch)), Some((Sound::Level, 2)));
        // Moved back and forward again: a new epoch, a real change again.
        g.tick(shown(2, 3, 1_200_000, 500), true, false);
        let a = g.tick(shown(3, 4, 1_200_000, 750), true, false);
        assert!(a.is_some());
    }

    #[test]
    fn catching_up_is_never_heard() {
        let mut g = AlertGate::new();
        g.tick(shown(2, 1, 100, 0), true, false);
        assert_eq!(g.tick(shown(5, 1, 1_000, 250), true, true), None, "resync");
        assert_eq!(
            g.tick(shown(6, 2, 1_000, 500), false, false),
            None,
            "offline"
        );
        g.tick(shown(6, 2, 100, 750), true, false);
        assert_eq!(
            g.tick(shown(7, 2, 1_000, 750 + 20_000), true, false),
            None,
            "the app was stopped for 20 s"
        );
    }

    proptest! {
        /// Whatever the screens show, no (event, level, epoch, sound) is ever
        /// heard twice, and nothing is heard on a resync or offline tick.
        #[test]
        fn never_twice_never_on_resync(
            ticks in proptest::collection::vec(
                (0usize..6, 0u64..3, 0i64..130_000, 0i64..400, any::<bool>(), any::<bool>()),
                1..200,
            )
        ) {
            let mut g = AlertGate::new();
            let mut heard = std::collections::HashSet::new();
            let mut now = 0;
            for (level, epoch, remaining, step, live, resync) in ticks {
                now += step;
                let a = g.tick(shown(level, epoch, remaining, now), live, resync);
                if let Some(a) = a {
                    prop_assert!(live && !resync);
                    prop_assert!(heard.insert((a.level_index, a.epoch, a.sound)));
                }
            }
        }
    }
}
