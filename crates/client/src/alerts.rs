//! When a screen may make a sound (rule 7 of docs/architecture.md).
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

use pitboss_core::clock::{position, ClockState};
use pitboss_core::structure::Structure;
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
    /// Earlier transitions confirmed in the same tick, which this one
    /// sound announces too (two beeps a quarter second apart would be
    /// noise): (sound, level, epoch), oldest first. Usually empty.
    pub also: Vec<(Sound, usize, u64)>,
}

/// A transition of the server's clock this screen may announce.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    sound: Sound,
    level_index: usize,
    epoch: u64,
    /// Server instant it happened.
    at_ms: i64,
    /// Known to be real: a change from the server said so, or the server
    /// confirmed that no change stamped before `at_ms` is missing.
    confirmed: bool,
}

/// Decides which sounds a screen plays, from the server's clock history as
/// this screen learns it, never from what happens to be on screen.
///
/// Why not compare one rendered tick with the next: a coordinator's "+1 min"
/// stamped 50 ms before the level ends reaches a Wi-Fi laptop 100 ms later.
/// Tick by tick, that laptop showed the next level for a moment, then the old
/// one again: two "level changes", neither of which happened. Instead:
///
/// - a change applied live that moves the level (or takes the time left
///   under a minute) is a transition at its anchor, compared with the clock
///   as it was at that instant: a real one, known from the server;
/// - the running clock crossing a boundary is a transition of the epoch in
///   force, but only sounds once the server confirmed it has sent every
///   change stamped up to that instant ([`Client::heard_through_watch`]); one
///   that arrives first and moves the clock discards the crossing;
/// - a transition older than [`AlertGate::STALE_MS`] by the time it is
///   confirmed is not announced: a late beep is worse than none;
/// - nothing learned by catching up (a resync) is ever heard, and each
///   (event, level, epoch, sound) at most once.
#[derive(Debug, Default)]
pub struct AlertGate {
    /// The clock and structure as the server has them (as far as known).
    clock: Option<(String, ClockState, Structure)>,
    /// Crossings are looked for after this server instant.
    scanned_to: i64,
    /// Nothing at or before this server instant is heard (the last resync).
    quiet_through: i64,
    candidates: Vec<Candidate>,
    /// Recently fired (event, level, epoch, sound), oldest first.
    fired: VecDeque<(String, usize, u64, Sound)>,
}

const ONE_MINUTE_MS: i64 = 60_000;
const FIRED_KEPT: usize = 256;
/// At most this many boundaries are looked at per tick (a tick gap is at
/// most two seconds; levels are at least one second long).
const MAX_CROSSINGS_PER_SCAN: usize = 64;

fn level_sound(structure: &Structure, from: usize, to: usize) -> Sound {
    let is_break = |i: usize| structure.levels.get(i).is_some_and(|l| l.is_break());
    if is_break(to) {
        Sound::BreakStart
    } else if is_break(from) {
        Sound::BreakEnd
    } else {
        Sound::Level
    }
}

impl AlertGate {
    /// Ticks further apart than this mean the app did not watch in between
    /// (stopped, asleep, starved): whatever changed is caught up, not heard.
    pub const MAX_TICK_GAP_MS: i64 = 2_000;
    /// A transition not confirmed within this long is not announced.
    pub const STALE_MS: i64 = 2_000;

    pub fn new() -> AlertGate {
        AlertGate::default()
    }

    /// The state was replaced or caught up (snapshot, replay, reconnect,
    /// wake, a stalled app): adopt it, and hear nothing up to `now_ms`.
    pub fn resync(
        &mut self,
        event_id: &str,
        clock: ClockState,
        structure: &Structure,
        now_ms: i64,
    ) {
        self.clock = Some((event_id.to_string(), clock, structure.clone()));
        self.candidates.clear();
        self.quiet_through = now_ms;
        self.scanned_to = now_ms;
    }

    /// Whether [`AlertGate::resync`] is needed before [`AlertGate::changed`].
    pub fn follows(&self, event_id: &str) -> bool {
        self.clock.as_ref().is_some_and(|(e, _, _)| e == event_id)
    }

    /// A change applied live, in seq order, that set the clock and/or the
    /// structure.
    pub fn changed(&mut self, clock: Option<&ClockState>, structure: Option<&Structure>) {
        if let Some(at) = clock.map(|c| c.anchor_ms) {
            // The clock in force until this change made its crossings up to
            // the change's instant for real, even those no tick has looked
            // at yet: a level that ended 4 ms before a "+1 min" was stamped
            // reaches this screen with it, before the next tick.
            self.scan(at);
        }
        let Some((event_id, old_clock, old_structure)) = self.clock.take() else {
            return;
        };
        let new_clock = clock.copied().unwrap_or(old_clock);
        let new_structure = structure.cloned().unwrap_or_else(|| old_structure.clone());
        let at = new_clock.anchor_ms;
        // Crossings the old clock would have made from this instant on did
        // not happen: the server changed the clock first.
        self.candidates.retain(|c| c.confirmed || c.at_ms < at);
        let was = position(&old_clock, &old_structure, at);
        let now = position(&new_clock, &new_structure, at);
        let sound = if now.level_index != was.level_index {
            Some(level_sound(
                &new_structure,
                was.level_index,
                now.level_index,
            ))
        } else if now.running
            && was.remaining_ms > ONE_MINUTE_MS
            && (1..=ONE_MINUTE_MS).contains(&now.remaining_ms)
        {
            Some(Sound::Minute)
        } else {
            None
        };
        if let Some(sound) = sound {
            self.candidates.push(Candidate {
                sound,
                level_index: now.level_index,
                epoch: new_clock.epoch,
                at_ms: at,
                confirmed: true,
            });
        }
        // Crossings of the new clock are looked for from its anchor on.
        self.scanned_to = self.scanned_to.min(at).max(self.quiet_through);
        self.clock = Some((event_id, new_clock, new_structure));
    }

    /// The running clock's boundaries in (`scanned_to`, `now_ms`].
    fn scan(&mut self, now_ms: i64) {
        let Some((_, clock, structure)) = &self.clock else {
            return;
        };
        let from = self.scanned_to.max(clock.anchor_ms);
        if now_ms <= from || !clock.running {
            self.scanned_to = self.scanned_to.max(now_ms);
            return;
        }
        let p = position(clock, structure, from);
        let mut level = p.level_index;
        let mut level_ends = from + p.remaining_ms;
        for _ in 0..MAX_CROSSINGS_PER_SCAN {
            if p.finished {
                break;
            }
            let minute = level_ends - ONE_MINUTE_MS;
            if minute > from && minute <= now_ms {
                self.candidates.push(Candidate {
                    sound: Sound::Minute,
                    level_index: level,
                    epoch: clock.epoch,
                    at_ms: minute,
                    confirmed: false,
                });
            }
            if level_ends > now_ms || level >= structure.last_index() {
                break;
            }
            self.candidates.push(Candidate {
                sound: level_sound(structure, level, level + 1),
                level_index: level + 1,
                epoch: clock.epoch,
                at_ms: level_ends,
                confirmed: false,
            });
            level += 1;
            level_ends += structure.duration_ms(level);
        }
        self.scanned_to = now_ms;
    }

    /// Called for every rendered tick with the estimated server time, how
    /// far the server confirmed its changes (see the type's doc), and
    /// whether the screen follows the server live. Returns the sound to
    /// play, if any, and whether a confirmation is awaited (ask the server).
    pub fn tick(
        &mut self,
        now_ms: i64,
        heard_through_ms: Option<i64>,
        live: bool,
    ) -> (Option<Alert>, bool) {
        if !live {
            self.quiet_through = self.quiet_through.max(now_ms);
            self.candidates.clear();
            self.scanned_to = self.scanned_to.max(now_ms);
            return (None, false);
        }
        self.scan(now_ms);
        let heard = heard_through_ms.unwrap_or(i64::MIN);
        let quiet = self.quiet_through;
        self.candidates
            .retain(|c| c.at_ms > quiet && now_ms - c.at_ms <= Self::STALE_MS);
        for c in &mut self.candidates {
            if c.at_ms <= heard {
                c.confirmed = true;
            }
        }
        // Of what is confirmed, only the latest is worth a sound.
        let mut ready: Vec<Candidate> = Vec::new();
        self.candidates.retain(|c| {
            if c.confirmed {
                ready.push(c.clone());
            }
            !c.confirmed
        });
        let waiting = !self.candidates.is_empty();
        let Some(event_id) = self.clock.as_ref().map(|(e, _, _)| e.clone()) else {
            return (None, waiting);
        };
        let mut alert: Option<Alert> = None;
        ready.sort_by_key(|c| c.at_ms);
        for c in ready {
            let key = (event_id.clone(), c.level_index, c.epoch, c.sound);
            if self.fired.contains(&key) {
                continue;
            }
            if self.fired.len() == FIRED_KEPT {
                self.fired.pop_front();
            }
            self.fired.push_back(key);
            let mut also = Vec::new();
            if let Some(a) = alert.take() {
                also = a.also;
                also.push((a.sound, a.level_index, a.epoch));
            }
            alert = Some(Alert {
                sound: c.sound,
                event_id: event_id.clone(),
                level_index: c.level_index,
                epoch: c.epoch,
                also,
            });
        }
        (alert, waiting)
    }
}

/// Why a screen did not follow the clock for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Away {
    /// The machine slept, or this process did not run.
    Asleep,
    /// The process ran but had no live connection (reconnecting, offline,
    /// signed out): the clock ran on locally, unconfirmed, and was quiet.
    Offline,
}

/// A level that began while this device was asleep or offline, for a
/// banner such as "Level 7 started at 21:14 while this device was asleep"
/// (no sound: it is caught up, not heard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SleptThrough {
    pub level_index: usize,
    pub is_break: bool,
    /// Server time the level began, when the clock is running.
    pub started_at_ms: Option<i64>,
    /// How long the device was away, as far as it knows.
    pub away_ms: i64,
    pub away: Away,
}

/// Feeds an [`AlertGate`] from a live [`Client`]: call [`Watcher::tick`]
/// at the screen's render rate (4 Hz in the app).
pub struct Watcher {
    gate: AlertGate,
    notices: broadcast::Receiver<Notice>,
    was_live: bool,
    last: Option<Shown>,
    /// Set on a wake, a stall or a lost connection: what was shown before
    /// it, how long it was away (0 while unknown), and why.
    absent: Option<(Option<Shown>, i64, Away)>,
    slept_through: Option<SleptThrough>,
    /// How far the server confirmed its changes, to tick again as soon as
    /// it moves while a crossing waits for it.
    heard: tokio::sync::watch::Receiver<Option<i64>>,
    /// The last tick left a crossing waiting for the server's confirmation.
    waiting: bool,
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
            absent: None,
            slept_through: None,
            heard: client.heard_through_watch(),
            waiting: false,
        }
    }

    /// Resolves when a tick now could sound a crossing that waits for the
    /// server's word: that word just came. Never resolves while nothing
    /// waits. Select on it beside the render tick, so the sound comes a
    /// round trip after the boundary, not a round trip plus a tick.
    pub async fn confirmed(&mut self) {
        if !self.waiting {
            return std::future::pending().await;
        }
        if self.heard.changed().await.is_err() {
            std::future::pending::<()>().await;
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
        // Live changes, in order, as the gate must see them.
        let mut changes: Vec<(Option<ClockState>, Option<Structure>)> = Vec::new();
        loop {
            match self.notices.try_recv() {
                Ok(Notice::Snapshot { .. } | Notice::CaughtUp { .. }) => resynced = true,
                Ok(Notice::Change { live: false, .. }) => resynced = true,
                Ok(Notice::Change {
                    live: true,
                    records,
                    ..
                }) => {
                    if records.clock.is_some() || records.structure.is_some() {
                        changes.push((records.clock, records.structure.clone()));
                    }
                }
                Ok(Notice::Woke { away_ms, .. }) => {
                    resynced = true;
                    // A second wake before the resync keeps the first view.
                    let before = match self.absent.take() {
                        Some((before, _, _)) => before,
                        None => self.last.clone(),
                    };
                    self.absent = Some((before, away_ms, Away::Asleep));
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
        if !live && self.was_live && self.absent.is_none() {
            // The connection went: what happens from here is not heard. If
            // the level moves meanwhile, say so when live again.
            self.absent = Some((self.last.clone(), 0, Away::Offline));
        }
        self.was_live = live;
        let Some(r) = client.replica().borrow().clone() else {
            return (None, None);
        };
        let now_ms = client.server_now_ms();
        let stalled = self
            .last
            .as_ref()
            .is_some_and(|l| !(0..=AlertGate::MAX_TICK_GAP_MS).contains(&(now_ms - l.now_ms)));
        if stalled && self.absent.is_none() {
            // This process did not run for a while (stopped, starved, or a
            // suspend the OS has not told us of yet): what it shows now was
            // not watched. Remember what it showed before, for the banner.
            let away = self.last.as_ref().map_or(0, |l| now_ms - l.now_ms);
            self.absent = Some((self.last.clone(), away, Away::Asleep));
        }
        let resynced = resynced || stalled;
        let clock = r.state.clock;
        if resynced || !self.gate.follows(&r.event_id) {
            self.gate
                .resync(&r.event_id, clock, &r.state.structure, now_ms);
        } else {
            for (c, st) in &changes {
                self.gate.changed(c.as_ref(), st.as_ref());
            }
            if self.gate.clock.as_ref().is_none_or(|(_, c, s)| {
                *c != clock || s.lock_version != r.state.structure.lock_version
            }) {
                // The notices and the replica disagree (should not happen):
                // trust the replica, quietly.
                self.gate
                    .resync(&r.event_id, clock, &r.state.structure, now_ms);
            }
        }
        let p = position(&clock, &r.state.structure, now_ms);
        let shown = Shown {
            event_id: r.event_id.clone(),
            level_index: p.level_index,
            epoch: clock.epoch,
            is_break: p.is_break,
            running: p.running,
            remaining_ms: p.remaining_ms,
            now_ms,
        };
        let heard = *self.heard.borrow_and_update();
        let (alert, waiting) = self.gate.tick(now_ms, heard, live);
        self.waiting = waiting;
        if waiting {
            client.ping_now();
        }
        if live && !resynced {
            // The first quiet, live tick after a wake: the state is the
            // server's again. Say what changed while away.
            if let Some((before, away_ms, away)) = self.absent.take() {
                let away_ms = match (away, &before) {
                    // Offline since the last live tick: that long.
                    (Away::Offline, Some(b)) => now_ms - b.now_ms,
                    _ => away_ms,
                };
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
                        away,
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
    use pitboss_core::structure::Level;
    use proptest::prelude::*;

    /// Levels of 100 s; the third (index 2) is a break.
    fn structure() -> Structure {
        let mut levels: Vec<Level> = (0..6u64)
            .map(|i| Level::Play {
                small_blind: 100 * (i + 1),
                big_blind: 200 * (i + 1),
                ante: 0,
                duration_ms: 100_000,
                note: String::new(),
            })
            .collect();
        levels[2] = Level::Break {
            duration_ms: 100_000,
            note: String::new(),
        };
        Structure::new(levels)
    }

    fn clock(level: usize, remaining_ms: i64, anchor_ms: i64, epoch: u64) -> ClockState {
        ClockState {
            running: true,
            level_index: level,
            remaining_ms,
            anchor_ms,
            epoch,
        }
    }

    fn gate_at(c: ClockState, now: i64) -> AlertGate {
        let mut g = AlertGate::new();
        g.resync("ev", c, &structure(), now);
        g
    }

    #[test]
    fn a_crossing_sounds_once_and_only_when_the_server_confirms_it() {
        // Level 0 ends at 10_000.
        let mut g = gate_at(clock(0, 10_000, 0, 1), 0);
        assert_eq!(g.tick(9_900, Some(9_900), true), (None, false));
        // Crossed locally; the server has confirmed only up to 9_950.
        assert_eq!(g.tick(10_050, Some(9_950), true), (None, true));
        let (a, waiting) = g.tick(10_100, Some(10_020), true);
        assert_eq!(
            a.map(|a| (a.sound, a.level_index, a.epoch)),
            Some((Sound::Level, 1, 1))
        );
        assert!(!waiting);
        assert_eq!(g.tick(10_350, Some(10_300), true), (None, false));
    }

    #[test]
    fn an_adjustment_stamped_before_the_boundary_cancels_the_crossing_silently() {
        let mut g = gate_at(clock(0, 10_000, 0, 1), 0);
        g.tick(9_900, Some(9_900), true);
        // The screen crossed at 10_000, but "+1 min" was stamped at 9_960.
        assert_eq!(g.tick(10_050, Some(9_950), true).0, None);
        let plus = clock(0, 40 + 90_000, 9_960, 2);
        g.changed(Some(&plus), None);
        for t in [10_100, 10_350, 10_600, 11_000] {
            assert_eq!(g.tick(t, Some(t - 50), true), (None, false), "at {t}");
        }
    }

    #[test]
    fn a_crossing_confirmed_too_late_is_not_announced() {
        let mut g = gate_at(clock(0, 10_000, 0, 1), 0);
        g.tick(9_900, Some(9_900), true);
        assert_eq!(g.tick(11_000, Some(9_950), true), (None, true));
        assert_eq!(g.tick(12_100, Some(12_000), true), (None, false));
    }

    #[test]
    fn a_coordinator_moving_the_level_is_heard_at_once() {
        let mut g = gate_at(clock(1, 50_000, 0, 1), 0);
        g.tick(1_000, Some(900), true);
        g.changed(Some(&clock(3, 100_000, 1_100, 2)), None);
        let (a, _) = g.tick(1_200, Some(900), true);
        assert_eq!(
            a.map(|a| (a.sound, a.level_index, a.epoch)),
            Some((Sound::Level, 3, 2))
        );
        // Moved back: a new epoch, a real change again.
        g.changed(Some(&clock(2, 100_000, 1_300, 3)), None);
        let (a, _) = g.tick(1_450, Some(1_000), true);
        assert_eq!(a.map(|a| a.sound), Some(Sound::BreakStart));
    }

    #[test]
    fn two_transitions_confirmed_in_one_tick_are_one_sound_that_names_both() {
        // Level 0 ends at 10_000; a coordinator moved to the break (index
        // 2) at 10_080, before the crossing was confirmed.
        let mut g = gate_at(clock(0, 10_000, 0, 1), 0);
        g.tick(9_900, Some(9_900), true);
        assert_eq!(g.tick(10_100, Some(9_950), true), (None, true));
        g.changed(Some(&clock(2, 100_000, 10_080, 2)), None);
        let (a, _) = g.tick(10_200, Some(10_150), true);
        let a = a.expect("one sound");
        assert_eq!((a.sound, a.level_index, a.epoch), (Sound::BreakStart, 2, 2));
        assert_eq!(a.also, vec![(Sound::Level, 1, 1)]);
        assert_eq!(g.tick(10_450, Some(10_400), true), (None, false));
    }

    #[test]
    fn a_level_that_ended_just_before_a_change_stamped_after_it_is_still_heard() {
        // Level 0 ends at 10_000. A "+1 min" stamped at 10_004 (on level 1
        // by then) arrives before any tick has looked past 10_000.
        let mut g = gate_at(clock(0, 10_000, 0, 1), 0);
        assert_eq!(g.tick(9_900, Some(9_900), true), (None, false));
        g.changed(Some(&clock(1, 99_996 + 60_000, 10_004, 2)), None);
        let (a, _) = g.tick(10_150, Some(10_003), true);
        assert_eq!(
            a.map(|a| (a.sound, a.level_index, a.epoch)),
            Some((Sound::Level, 1, 1)),
            "the boundary at 10_000 was crossed for real"
        );
        assert_eq!(g.tick(10_400, Some(10_350), true), (None, false));
    }

    #[test]
    fn an_adjustment_that_does_not_move_the_level_is_silent() {
        let mut g = gate_at(clock(1, 50_000, 0, 1), 0);
        g.tick(1_000, Some(900), true);
        g.changed(Some(&clock(1, 110_000, 1_100, 2)), None);
        assert_eq!(g.tick(1_200, Some(1_150), true).0, None);
        // Taking it under a minute is the one-minute warning.
        g.changed(Some(&clock(1, 50_000, 1_300, 3)), None);
        assert_eq!(
            g.tick(1_400, Some(1_350), true).0.map(|a| a.sound),
            Some(Sound::Minute)
        );
    }

    #[test]
    fn breaks_and_the_last_minute_have_their_own_sounds() {
        let mut g = gate_at(clock(1, 61_000, 0, 1), 0);
        let (a, _) = g.tick(1_100, Some(1_050), true);
        assert_eq!(
            a.map(|a| (a.sound, a.level_index)),
            Some((Sound::Minute, 1))
        );
        g.tick(60_900, Some(60_900), true);
        let (a, _) = g.tick(61_100, Some(61_050), true);
        assert_eq!(
            a.map(|a| (a.sound, a.level_index)),
            Some((Sound::BreakStart, 2))
        );
        // The break's own minute warning, then its end.
        for t in (61_350..=161_100).step_by(250) {
            let (a, _) = g.tick(t, Some(t - 10), true);
            if let Some(a) = a {
                assert!(
                    (a.sound == Sound::Minute
                        && a.level_index == 2
                        && (101_000..101_300).contains(&t))
                        || (a.sound == Sound::BreakEnd
                            && a.level_index == 3
                            && (161_000..161_300).contains(&t)),
                    "{a:?} at {t}"
                );
            }
        }
    }

    #[test]
    fn catching_up_is_never_heard() {
        let s = structure();
        let mut g = gate_at(clock(0, 10_000, 0, 1), 0);
        g.tick(9_900, Some(9_900), true);
        // A resync that jumps two levels ahead: nothing.
        g.resync("ev", clock(3, 50_000, 10_000, 4), &s, 10_050);
        assert_eq!(g.tick(10_100, Some(10_100), true), (None, false));
        // Offline while the level ends: nothing then, nothing after.
        assert_eq!(g.tick(60_100, Some(10_100), false), (None, false));
        assert_eq!(g.tick(60_350, Some(60_300), true), (None, false));
    }

    proptest! {
        /// Whatever happens, no (level, epoch, sound) is heard twice, and
        /// nothing that happened at or before a resync is heard.
        #[test]
        fn never_twice_never_for_what_was_caught_up(
            steps in proptest::collection::vec(
                (0u8..4, 0usize..6, 1i64..100_000, 0i64..400, any::<bool>()),
                1..200,
            )
        ) {
            let s = structure();
            let mut g = gate_at(clock(0, 50_000, 0, 0), 0);
            let mut heard = std::collections::HashSet::new();
            let mut now = 0i64;
            let mut epoch = 0u64;
            let mut last_resync = 0i64;
            for (kind, level, remaining, step, live) in steps {
                now += step;
                match kind {
                    0 => {
                        epoch += 1;
                        g.changed(Some(&clock(level, remaining, now - step / 2, epoch)), None);
                    }
                    1 => {
                        epoch += 1;
                        g.resync("ev", clock(level, remaining, now, epoch), &s, now);
                        last_resync = now;
                    }
                    _ => {}
                }
                let (a, _) = g.tick(now, Some(now - step), live);
                if let Some(a) = a {
                    prop_assert!(live);
                    prop_assert!(heard.insert((a.level_index, a.epoch, a.sound)));
                    prop_assert!(now > last_resync);
                }
            }
        }
    }
}
