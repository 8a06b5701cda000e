//! The tournament clock as data, and the one pure function that says where it
//! is at any instant.
//!
//! The server never broadcasts ticks (rule 6 of docs/architecture.md). It stores an *anchor*: the level
//! and the time remaining at a server instant, and whether the clock runs from
//! there. Every screen calls [`position`] with its estimate of server time, so
//! the wall, the director and every dealer show the same second without a
//! single extra message. Level changes are therefore a local, deterministic
//! computation, and this module is the only place that does it.

use serde::{Deserialize, Serialize};

use crate::limits::MAX_REMAINING_MS;
use crate::structure::Structure;

/// The stored state of an event's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockState {
    pub running: bool,
    /// Index into the structure's levels (breaks count as levels).
    pub level_index: usize,
    /// Time left in that level at `anchor_ms`.
    pub remaining_ms: i64,
    /// The server instant (ms since the Unix epoch) the two fields above hold at.
    pub anchor_ms: i64,
    /// Changes whenever the clock is started, paused, adjusted or moved to a
    /// level. Alerts are keyed on (event, level, epoch), so a screen that learns
    /// of the same transition twice beeps once.
    pub epoch: u64,
}

/// Where the clock is at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub level_index: usize,
    pub remaining_ms: i64,
    pub is_break: bool,
    pub running: bool,
    /// The clock ran past the end of the last level: it shows 0:00 on the last
    /// level and goes no further until the structure grows or a director
    /// moves it.
    pub finished: bool,
}

impl ClockState {
    /// A paused clock at the start of the first level.
    pub fn initial(structure: &Structure, now_ms: i64) -> ClockState {
        ClockState {
            running: false,
            level_index: 0,
            remaining_ms: structure.duration_ms(0),
            anchor_ms: now_ms,
            epoch: 0,
        }
    }

    /// The same clock re-anchored at `now_ms` without changing what it shows,
    /// so an edit can start from the present rather than the old anchor.
    pub fn materialize(&self, structure: &Structure, now_ms: i64) -> ClockState {
        let p = position(self, structure, now_ms);
        ClockState {
            running: self.running,
            level_index: p.level_index,
            remaining_ms: p.remaining_ms,
            anchor_ms: now_ms.max(self.anchor_ms),
            epoch: self.epoch,
        }
    }

    /// Starts a paused clock; `None` when it already runs.
    pub fn start(&self, structure: &Structure, now_ms: i64) -> Option<ClockState> {
        if self.running {
            return None;
        }
        let mut c = self.materialize(structure, now_ms);
        c.running = true;
        c.epoch += 1;
        Some(c)
    }

    /// Pauses a running clock, keeping the time it shows; `None` when paused.
    pub fn pause(&self, structure: &Structure, now_ms: i64) -> Option<ClockState> {
        if !self.running {
            return None;
        }
        let mut c = self.materialize(structure, now_ms);
        c.running = false;
        c.epoch += 1;
        Some(c)
    }

    /// Adds `delta_ms` (negative to take time away) to the level in play now.
    /// The remaining time never goes below zero; taking it to zero on a
    /// running clock ends the level.
    pub fn adjust(&self, structure: &Structure, now_ms: i64, delta_ms: i64) -> ClockState {
        let mut c = self.materialize(structure, now_ms);
        c.remaining_ms = c
            .remaining_ms
            .saturating_add(delta_ms)
            .clamp(0, MAX_REMAINING_MS);
        c.epoch += 1;
        c
    }

    /// Moves to the start of `level_index` (which the caller has checked),
    /// running or not as before.
    pub fn set_level(&self, structure: &Structure, now_ms: i64, level_index: usize) -> ClockState {
        ClockState {
            running: self.running,
            level_index,
            remaining_ms: structure.duration_ms(level_index),
            anchor_ms: now_ms.max(self.anchor_ms),
            epoch: self.epoch + 1,
        }
    }

    /// The clock after the structure changed under it: same level (or the
    /// last one if the structure got shorter), remaining time capped at the
    /// new duration of that level.
    pub fn rebase(&self, old: &Structure, new: &Structure, now_ms: i64) -> ClockState {
        let mut c = self.materialize(old, now_ms);
        let changed_level = c.level_index > new.last_index();
        c.level_index = c.level_index.min(new.last_index());
        let cap = new.duration_ms(c.level_index);
        if changed_level {
            c.remaining_ms = cap;
        } else {
            c.remaining_ms = c.remaining_ms.min(cap);
        }
        if c != self.materialize(old, now_ms) {
            c.epoch += 1;
        }
        c
    }
}

/// Where `clock` is at `now_ms` in `structure`. Pure and total: any clock and
/// any instant give an answer, and for a running clock a later instant never
/// gives an earlier position.
pub fn position(clock: &ClockState, structure: &Structure, now_ms: i64) -> Position {
    let last = structure.last_index();
    let mut index = clock.level_index.min(last);
    let mut remaining = clock.remaining_ms.clamp(0, MAX_REMAINING_MS);
    let mut finished = false;
    if clock.running {
        // An instant before the anchor (a screen whose offset estimate is a
        // little off) shows the anchor, never a time in the future.
        let elapsed = now_ms.saturating_sub(clock.anchor_ms).max(0);
        remaining = remaining.saturating_sub(elapsed);
        while remaining <= 0 && index < last {
            index += 1;
            remaining = remaining.saturating_add(structure.duration_ms(index));
        }
        if remaining <= 0 {
            remaining = 0;
            finished = true;
        }
    } else {
        finished = index == last && remaining == 0;
    }
    Position {
        level_index: index,
        remaining_ms: remaining,
        is_break: structure.levels.get(index).is_some_and(|l| l.is_break()),
        running: clock.running && !finished,
        finished,
    }
}

/// Time from `pos` to the start of the next break, or `None` when no break
/// is left (or a break is in play).
pub fn until_next_break_ms(structure: &Structure, pos: &Position) -> Option<i64> {
    if pos.is_break {
        return None;
    }
    let next = structure.next_break(pos.level_index)?;
    let between: i64 = (pos.level_index + 1..next)
        .map(|i| structure.duration_ms(i))
        .sum();
    Some(pos.remaining_ms + between)
}

/// The server instant at which the level shown next changes, if the clock
/// runs and a level is left. Clients use it to schedule the level alert.
pub fn next_transition_ms(clock: &ClockState, structure: &Structure, now_ms: i64) -> Option<i64> {
    let p = position(clock, structure, now_ms);
    if !p.running || p.level_index >= structure.last_index() {
        return None;
    }
    Some(now_ms.max(clock.anchor_ms) + p.remaining_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structure::{deepstack_template, Level};
    use proptest::prelude::*;

    fn structure() -> Structure {
        Structure::new(vec![
            Level::play(100, 200, 0, 10),
            Level::play(200, 400, 0, 10),
            Level::pause(5, "Color up"),
            Level::play(300, 600, 600, 10),
        ])
    }

    const MIN: i64 = 60_000;

    #[test]
    fn a_running_clock_walks_through_levels_and_breaks() {
        let s = structure();
        let c = ClockState::initial(&s, 0).start(&s, 0).expect("starts");
        let p = position(&c, &s, 9 * MIN);
        assert_eq!((p.level_index, p.remaining_ms), (0, MIN));
        let p = position(&c, &s, 10 * MIN);
        assert_eq!((p.level_index, p.remaining_ms), (1, 10 * MIN));
        let p = position(&c, &s, 21 * MIN);
        assert_eq!(
            (p.level_index, p.remaining_ms, p.is_break),
            (2, 4 * MIN, true)
        );
        assert_eq!(
            until_next_break_ms(&s, &position(&c, &s, 0)),
            Some(20 * MIN)
        );
        assert_eq!(next_transition_ms(&c, &s, 0), Some(10 * MIN));
    }

    #[test]
    fn the_end_of_the_structure_holds_at_zero() {
        let s = structure();
        let c = ClockState::initial(&s, 0).start(&s, 0).expect("starts");
        let p = position(&c, &s, 1000 * MIN);
        assert_eq!(p.level_index, 3);
        assert_eq!(p.remaining_ms, 0);
        assert!(p.finished && !p.running);
        assert_eq!(next_transition_ms(&c, &s, 1000 * MIN), None);
    }

    #[test]
    fn start_and_pause_refuse_the_state_they_are_already_in() {
        let s = structure();
        let c = ClockState::initial(&s, 0);
        assert!(c.pause(&s, 5).is_none());
        let running = c.start(&s, 5).expect("starts");
        assert!(running.start(&s, 6).is_none());
        assert_eq!(running.epoch, 1);
    }

    #[test]
    fn adjust_never_goes_below_zero_and_ends_the_level() {
        let s = structure();
        let c = ClockState::initial(&s, 0).start(&s, 0).expect("starts");
        let c = c.adjust(&s, MIN, -30 * MIN);
        assert_eq!(c.remaining_ms, 0);
        let p = position(&c, &s, MIN);
        assert_eq!((p.level_index, p.remaining_ms), (1, 10 * MIN));
    }

    #[test]
    fn a_shorter_structure_moves_the_clock_onto_its_last_level() {
        let old = structure();
        let new = Structure::new(vec![Level::play(1, 2, 0, 5)]);
        let c = ClockState::initial(&old, 0).set_level(&old, 0, 3);
        let r = c.rebase(&old, &new, 10);
        assert_eq!((r.level_index, r.remaining_ms), (0, 5 * MIN));
        assert!(r.epoch > c.epoch);
    }

    fn any_structure() -> impl Strategy<Value = Structure> {
        prop::collection::vec(
            (any::<bool>(), 1_000i64..3_600_000).prop_map(|(brk, d)| {
                if brk {
                    Level::Break {
                        duration_ms: d,
                        note: String::new(),
                    }
                } else {
                    Level::Play {
                        small_blind: 1,
                        big_blind: 2,
                        ante: 0,
                        duration_ms: d,
                        note: String::new(),
                    }
                }
            }),
            1..20,
        )
        .prop_map(Structure::new)
    }

    fn any_clock(s: &Structure) -> impl Strategy<Value = ClockState> {
        let last = s.last_index();
        (
            any::<bool>(),
            0..=last,
            0i64..7_200_000,
            0i64..1_000_000_000,
            0u64..1000,
        )
            .prop_map(|(running, level_index, remaining_ms, anchor_ms, epoch)| {
                ClockState {
                    running,
                    level_index,
                    remaining_ms,
                    anchor_ms,
                    epoch,
                }
            })
    }

    fn order(p: &Position) -> (usize, i64) {
        (p.level_index, -p.remaining_ms)
    }

    proptest! {
        #[test]
        fn positions_never_go_backwards_while_running(
            (s, c) in any_structure().prop_flat_map(|s| { let c = any_clock(&s); (Just(s), c) }),
            a in 0i64..200_000_000, b in 0i64..200_000_000,
        ) {
            let c = ClockState { running: true, ..c };
            let (t1, t2) = (c.anchor_ms + a.min(b), c.anchor_ms + a.max(b));
            let p1 = position(&c, &s, t1);
            let p2 = position(&c, &s, t2);
            prop_assert!(order(&p1) <= order(&p2), "{p1:?} then {p2:?}");
            prop_assert!(p2.remaining_ms >= 0 && p2.level_index <= s.last_index());
        }

        #[test]
        fn a_paused_clock_does_not_move(
            (s, c) in any_structure().prop_flat_map(|s| { let c = any_clock(&s); (Just(s), c) }),
            dt in -1_000_000i64..200_000_000,
        ) {
            let c = ClockState { running: false, ..c };
            prop_assert_eq!(position(&c, &s, c.anchor_ms), position(&c, &s, c.anchor_ms + dt));
        }

        #[test]
        fn adjustments_compose(
            (s, c) in any_structure().prop_flat_map(|s| { let c = any_clock(&s); (Just(s), c) }),
            d1 in -600_000i64..600_000, d2 in -600_000i64..600_000,
            gap in 0i64..5_000, look in 0i64..5_000,
        ) {
            // Two adjustments at nearby instants equal one of their sum,
            // as long as neither clamps at zero and no level ends in between.
            let t1 = c.anchor_ms + 1;
            let t2 = t1 + gap;
            let at = t2 + look;
            let base = position(&c, &s, t1);
            let floor = base.remaining_ms - gap - look;
            prop_assume!(floor + d1.min(0) + d2.min(0) > 0 && floor > 0);
            let twice = c.adjust(&s, t1, d1).adjust(&s, t2, d2);
            let once = c.adjust(&s, t1, d1 + d2);
            prop_assert_eq!(position(&twice, &s, at), position(&once, &s, at));
            let expect = position(&c, &s, at).remaining_ms + d1 + d2;
            prop_assert_eq!(position(&once, &s, at).remaining_ms, expect);
        }

        #[test]
        fn pause_and_resume_keep_the_remaining_time(
            (s, c) in any_structure().prop_flat_map(|s| { let c = any_clock(&s); (Just(s), c) }),
            run_for in 0i64..100_000_000, paused_for in 0i64..100_000_000,
        ) {
            let c = ClockState { running: true, ..c };
            let t_pause = c.anchor_ms + run_for;
            let shown = position(&c, &s, t_pause);
            let paused = c.pause(&s, t_pause).expect("running clock pauses");
            let t_resume = t_pause + paused_for;
            prop_assert_eq!(position(&paused, &s, t_resume).remaining_ms, shown.remaining_ms);
            let resumed = paused.start(&s, t_resume).expect("paused clock starts");
            let after = position(&resumed, &s, t_resume);
            prop_assert_eq!((after.level_index, after.remaining_ms), (shown.level_index, shown.remaining_ms));
            prop_assert!(resumed.epoch > c.epoch);
        }

        #[test]
        fn crossing_the_end_of_the_structure_is_handled(
            (s, c) in any_structure().prop_flat_map(|s| { let c = any_clock(&s); (Just(s), c) }),
        ) {
            let c = ClockState { running: true, ..c };
            let total: i64 = s.levels.iter().map(|l| l.duration_ms()).sum();
            let p = position(&c, &s, c.anchor_ms + total + c.remaining_ms + 1);
            prop_assert!(p.finished);
            prop_assert_eq!(p.level_index, s.last_index());
            prop_assert_eq!(p.remaining_ms, 0);
            prop_assert!(next_transition_ms(&c, &s, c.anchor_ms + total + c.remaining_ms + 1).is_none());
        }
    }

    #[test]
    fn the_demo_structure_has_a_break_to_count_down_to() {
        let s = Structure::new(deepstack_template());
        let c = ClockState::initial(&s, 0);
        let p = position(&c, &s, 0);
        assert_eq!(until_next_break_ms(&s, &p), Some(5 * 20 * MIN));
    }
}
