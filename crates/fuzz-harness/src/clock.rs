//! The `clock` target: the clock math of `pitboss-core` (`clock.rs`), which
//! every screen runs on its own to show the same second as the wall.
//!
//! Two domains. [`position`] and [`ClockState::materialize`] promise to be
//! total, so they get any clock at all (any level, any remaining time, any
//! anchor) at any instant, and must never panic nor show a time outside
//! `[0, MAX_REMAINING_MS]` or a level past the structure. The rest (start,
//! pause, adjust, set_level, rebase, next transition, next break) is
//! checked on clocks the server can have stored (see [`gen`]), at instants
//! around the anchor and on level ends, where off-by-one errors live, and
//! must do exactly what a director expects: time runs at one millisecond
//! per millisecond and never backwards, a paused clock stands still, a
//! level entered by running into it starts at its full length, and an edit
//! shows, at its instant, exactly what was asked.

use arbitrary::{Result, Unstructured};
use pitboss_core::clock::{next_transition_ms, position, until_next_break_ms};
use pitboss_core::limits::MAX_REMAINING_MS;
use pitboss_core::structure::Structure;
use pitboss_core::{ClockState, Position};

use crate::gen;

/// The fuzz target.
pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    // An `Err` only says the bytes ran out: the input ends there.
    let _ = check_any(&mut u);
    let _ = check_stored(&mut u);
}

/// Later in this order means further on in the tournament.
fn order(p: &Position) -> (usize, i64) {
    (p.level_index, -p.remaining_ms)
}

/// Position invariants that hold for any clock at any instant.
fn sane(c: &ClockState, s: &Structure, t: i64) -> Position {
    let p = position(c, s, t);
    let last = s.last_index();
    let start = c.level_index.min(last);
    assert!(p.level_index <= last, "{p:?} past the structure");
    assert!(
        (0..=MAX_REMAINING_MS).contains(&p.remaining_ms),
        "remaining time out of range: {c:?} at {t} shows {p:?}"
    );
    if p.finished {
        assert_eq!((p.level_index, p.remaining_ms), (last, 0), "{p:?}");
    }
    assert_eq!(p.running, c.running && !p.finished, "{c:?} at {t}: {p:?}");
    assert_eq!(p.is_break, s.levels[p.level_index].is_break());
    if c.running {
        assert!(p.level_index >= start, "{c:?} at {t} went back to {p:?}");
        if p.level_index > start {
            assert!(
                p.remaining_ms <= s.duration_ms(p.level_index),
                "a level entered by running into it holds more than its length: {p:?}"
            );
        } else {
            assert!(p.remaining_ms <= c.remaining_ms.clamp(0, MAX_REMAINING_MS));
        }
    } else {
        assert_eq!(
            (p.level_index, p.remaining_ms),
            (start, c.remaining_ms.clamp(0, MAX_REMAINING_MS)),
            "a paused clock shows its anchor"
        );
    }
    p
}

fn check_any(u: &mut Unstructured<'_>) -> Result<()> {
    let s = gen::valid_structure(u)?;
    let c = gen::any_clock(u)?;
    let (a, b): (i64, i64) = (u.arbitrary()?, u.arbitrary()?);
    let (t1, t2) = (a.min(b), a.max(b));
    let (p1, p2) = (sane(&c, &s, t1), sane(&c, &s, t2));
    if c.running {
        assert!(
            order(&p1) <= order(&p2),
            "{c:?}: {p1:?} at {t1}, {p2:?} at {t2}"
        );
        // Before its anchor a clock shows the anchor, never the future.
        if t1 <= c.anchor_ms {
            assert_eq!(p1, position(&c, &s, c.anchor_ms));
        }
    } else {
        assert_eq!(p1, p2, "a paused clock moved");
    }
    let m = c.materialize(&s, t1);
    assert_eq!((m.running, m.epoch), (c.running, c.epoch));
    assert_eq!(m.anchor_ms, t1.max(c.anchor_ms));
    sane(&m, &s, t2);
    Ok(())
}

/// Instants where the running clock `c` ends a level (the first few).
fn level_ends(c: &ClockState, s: &Structure) -> Vec<i64> {
    let mut ends = Vec::new();
    let mut t = c.anchor_ms.saturating_add(c.remaining_ms);
    ends.push(t);
    for i in c.level_index + 1..s.levels.len().min(c.level_index + 6) {
        t = t.saturating_add(s.duration_ms(i));
        ends.push(t);
    }
    ends
}

fn check_stored(u: &mut Unstructured<'_>) -> Result<()> {
    let s = gen::valid_structure(u)?;
    let c = gen::stored_clock(u, &s)?;
    let ends = level_ends(&c, &s);
    let now = gen::instant_near(u, c.anchor_ms, &ends)?;
    let later = gen::instant_near(u, now, &ends)?.max(now);
    let shown = sane(&c, &s, now);
    let then = sane(&c, &s, later);

    if c.running {
        assert!(order(&shown) <= order(&then), "{shown:?} then {then:?}");
        runs_at_one_ms_per_ms(&c, &s, now, later, &shown, &then);
    } else {
        assert_eq!(shown, then, "a paused clock moved");
    }

    // Re-anchoring changes nothing a screen shows, from then on.
    let m = c.materialize(&s, now);
    for t in [now, later, now.max(c.anchor_ms)] {
        if t >= m.anchor_ms {
            assert_eq!(
                position(&m, &s, t),
                position(&c, &s, t),
                "materialize at {now}"
            );
        }
    }

    // start and pause: only from the other state, keeping what is shown.
    match (c.start(&s, now), c.pause(&s, now)) {
        (Some(started), None) => {
            assert!(!c.running && started.running);
            edited(&c, &started, now);
            assert_eq!(
                held(&started),
                at(&shown),
                "starting changed the time shown"
            );
        }
        (None, Some(paused)) => {
            assert!(c.running && !paused.running);
            edited(&c, &paused, now);
            assert_eq!(held(&paused), at(&shown), "pausing changed the time shown");
            let p = position(&paused, &s, later);
            assert_eq!(at(&p), at(&shown), "a paused clock moved");
        }
        other => panic!("{c:?}: start and pause gave {other:?}"),
    }

    // adjust: any delta, the level in play now, clamped to the caps.
    let delta: i64 = if u.arbitrary()? {
        u.arbitrary()?
    } else {
        u.int_in_range(-shown.remaining_ms - 1..=1)?
    };
    let adjusted = c.adjust(&s, now, delta);
    edited(&c, &adjusted, now);
    assert_eq!(adjusted.running, c.running);
    assert_eq!(adjusted.level_index, shown.level_index);
    let want =
        (i128::from(shown.remaining_ms) + i128::from(delta)).clamp(0, i128::from(MAX_REMAINING_MS));
    assert_eq!(i128::from(adjusted.remaining_ms), want, "adjust by {delta}");
    sane(&adjusted, &s, later);

    // set_level: the start of the level asked for.
    let level = u.int_in_range(0..=s.last_index())?;
    let moved = c.set_level(&s, now, level);
    edited(&c, &moved, now);
    assert_eq!(moved.running, c.running);
    assert_eq!(held(&moved), (level, s.duration_ms(level)));
    sane(&moved, &s, later);

    // rebase onto another structure: same level if it still exists, never
    // more time than the level now lasts, a new epoch only if it shows.
    let s2 = gen::valid_structure(u)?;
    for new in [&s2, &s] {
        let r = c.rebase(&s, new, now);
        assert_eq!(r.running, c.running);
        assert!(r.level_index <= new.last_index());
        assert!(
            (0..=new.duration_ms(r.level_index)).contains(&r.remaining_ms),
            "rebased clock holds more than its level: {r:?}"
        );
        if shown.level_index <= new.last_index() {
            assert_eq!(r.level_index, shown.level_index);
        }
        let changed = held(&r) != at(&shown);
        assert_eq!(r.epoch, c.epoch + u64::from(changed), "{c:?} -> {r:?}");
        sane(&r, new, later);
    }

    // The next level alert is due exactly when the level shown changes.
    match next_transition_ms(&c, &s, now) {
        Some(tn) => {
            assert!(shown.running && shown.level_index < s.last_index());
            assert!(tn > now);
            let before = position(&c, &s, tn - 1);
            assert_eq!(
                before.level_index, shown.level_index,
                "alert at {tn} is late"
            );
            let after = position(&c, &s, tn);
            let next = shown.level_index + 1;
            assert_eq!(
                at(&after),
                (next, s.duration_ms(next)),
                "the alert at {tn} is not at the level change"
            );
        }
        None => assert!(!shown.running || shown.level_index == s.last_index()),
    }

    // The countdown to the next break ends when that break begins.
    match until_next_break_ms(&s, &shown) {
        Some(d) => {
            assert!(!shown.is_break);
            assert!(d >= shown.remaining_ms);
            let b = s.next_break(shown.level_index).expect("a break is left");
            if shown.running && now >= c.anchor_ms {
                let p = position(&c, &s, now + d);
                assert_eq!(
                    at(&p),
                    (b, s.duration_ms(b)),
                    "the break countdown from {shown:?} is off"
                );
            }
        }
        None => assert!(shown.is_break || s.next_break(shown.level_index).is_none()),
    }
    Ok(())
}

/// The level and remaining time a stored clock holds at its anchor.
fn held(c: &ClockState) -> (usize, i64) {
    (c.level_index, c.remaining_ms)
}

/// The level and remaining time a position shows.
fn at(p: &Position) -> (usize, i64) {
    (p.level_index, p.remaining_ms)
}

/// Every edit is a new epoch (alerts key on it) anchored at the edit, or
/// at the old anchor if the edit came from an instant before it.
fn edited(old: &ClockState, new: &ClockState, now: i64) {
    assert_eq!(new.epoch, old.epoch + 1, "an edit is a new epoch");
    assert_eq!(new.anchor_ms, now.max(old.anchor_ms));
    assert!(
        (0..=MAX_REMAINING_MS).contains(&new.remaining_ms),
        "{new:?}"
    );
}

/// Between two instants after its anchor, a running clock uses up exactly
/// the time that passed: what was left of the first level, the levels run
/// through, less what is left of the last. Unless it ran out of levels.
fn runs_at_one_ms_per_ms(
    c: &ClockState,
    s: &Structure,
    t1: i64,
    t2: i64,
    p1: &Position,
    p2: &Position,
) {
    if t1 < c.anchor_ms {
        return;
    }
    let through = |to: usize| -> i128 {
        (p1.level_index + 1..=to)
            .map(|i| i128::from(s.duration_ms(i)))
            .sum()
    };
    let passed = i128::from(t2) - i128::from(t1);
    if p2.finished {
        let left = i128::from(p1.remaining_ms) + through(s.last_index());
        assert!(
            left <= passed,
            "finished early: {p1:?} at {t1}, {p2:?} at {t2}"
        );
    } else {
        let used =
            i128::from(p1.remaining_ms) + through(p2.level_index) - i128::from(p2.remaining_ms);
        assert_eq!(used, passed, "{c:?}: {p1:?} at {t1}, {p2:?} at {t2}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_inputs_run() {
        for seed in 0..300u32 {
            let bytes: Vec<u8> = (0..400u32)
                .map(|i| (i.wrapping_mul(2_246_822_519).wrapping_add(seed * 131) >> 11) as u8)
                .collect();
            check(&bytes);
        }
        check(&[]);
        check(&[0xff; 300]);
    }
}
