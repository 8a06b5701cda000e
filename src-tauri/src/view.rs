//! What the clock screens show, computed in Rust from the client engine's
//! replica and its server-time estimate.
//!
//! Level changes are computed here, with the core's clock function, and the
//! webview only renders the numbers it is sent: a hidden or minimised
//! webview's timers are throttled, so it must never be the one that decides
//! where the clock is.

use pitboss_client::Replica;
use pitboss_core::clock::{position, until_next_break_ms};
use pitboss_core::{Level, Stats};
use serde::Serialize;

/// Blinds of a level, for display.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Blinds {
    pub small_blind: u64,
    pub big_blind: u64,
    pub ante: u64,
}

fn blinds(l: &Level) -> Option<Blinds> {
    match l {
        Level::Play {
            small_blind,
            big_blind,
            ante,
            ..
        } => Some(Blinds {
            small_blind: *small_blind,
            big_blind: *big_blind,
            ante: *ante,
        }),
        Level::Break { .. } => None,
    }
}

/// One frame of the clock window. Times are milliseconds; the UI formats.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClockView {
    pub event_id: String,
    pub event_name: String,
    /// "Level 7" or "Break".
    pub title: String,
    /// Index of the current step in the structure (breaks counted), for
    /// "previous / next level".
    pub level_index: usize,
    /// The level's number (breaks are not counted), None on a break.
    pub level_number: Option<usize>,
    pub is_break: bool,
    pub running: bool,
    pub finished: bool,
    pub remaining_ms: i64,
    pub blinds: Option<Blinds>,
    /// The note of the step in play (e.g. the color-up on a break).
    pub note: String,
    pub next_title: Option<String>,
    pub next_blinds: Option<Blinds>,
    pub until_break_ms: Option<i64>,
    pub stats: Stats,
    pub seq: u64,
    /// The server time this frame was computed for.
    pub server_now_ms: i64,
}

/// Whole seconds as the screens show them (rounded up, as `formatClock`).
fn shown_secs(ms: i64) -> i64 {
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) > 0)
}

impl ClockView {
    /// Whether a screen showing `self` would look the same showing `other`:
    /// every field equal, times compared in the whole seconds displayed.
    /// The tick loop sends a frame only when this changes (or once a second),
    /// instead of four identical frames a second for the webview to redraw.
    pub fn same_on_screen(&self, other: &ClockView) -> bool {
        shown_secs(self.remaining_ms) == shown_secs(other.remaining_ms)
            && self.until_break_ms.map(shown_secs) == other.until_break_ms.map(shown_secs)
            && ClockView {
                remaining_ms: 0,
                until_break_ms: None,
                server_now_ms: 0,
                ..self.clone()
            } == ClockView {
                remaining_ms: 0,
                until_break_ms: None,
                server_now_ms: 0,
                ..other.clone()
            }
    }
}

pub fn view(local: &Replica, now_ms: i64) -> ClockView {
    let s = &local.state.structure;
    let p = position(&local.state.clock, s, now_ms);
    let level = s.levels.get(p.level_index);
    let title = match s.level_number(p.level_index) {
        Some(n) => format!("Level {n}"),
        None => "Break".to_string(),
    };
    let next = s.levels.get(p.level_index + 1);
    let next_title = next.map(|n| match s.level_number(p.level_index + 1) {
        Some(k) => format!("Level {k}"),
        None => format!("Break ({} min)", n.duration_ms() / 60_000),
    });
    ClockView {
        event_id: local.event_id.clone(),
        event_name: local.state.event.name.clone(),
        title,
        level_index: p.level_index,
        level_number: s.level_number(p.level_index),
        is_break: p.is_break,
        running: p.running,
        finished: p.finished,
        remaining_ms: p.remaining_ms,
        blinds: level.and_then(blinds),
        note: level.map(|l| l.note().to_string()).unwrap_or_default(),
        next_title,
        next_blinds: next.and_then(blinds),
        until_break_ms: until_next_break_ms(s, &p),
        stats: local.state.stats,
        seq: local.seq,
        server_now_ms: now_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo event with its clock running from 0.
    fn local() -> Replica {
        let mut r = crate::fixtures::replica("ev", 3);
        r.state.clock = r.state.clock.start(&r.state.structure, 0).expect("starts");
        r
    }

    #[test]
    fn frames_within_one_displayed_second_look_the_same() {
        let l = local();
        // 20:00 shows until 19:59.000 is passed: 19:59.999 and 19:59.001
        // show "20:00", 19:59.000 shows "19:59".
        let a = view(&l, 1);
        let b = view(&l, 999);
        let c = view(&l, 1_000);
        assert!(
            a.same_on_screen(&b),
            "{} vs {}",
            a.remaining_ms,
            b.remaining_ms
        );
        assert!(
            !b.same_on_screen(&c),
            "{} vs {}",
            b.remaining_ms,
            c.remaining_ms
        );
        // Anything else that changes is a new frame at once.
        let mut more = l.clone();
        more.state.stats.players_remaining += 1;
        assert!(!view(&more, 1).same_on_screen(&a));
    }

    #[test]
    fn the_view_names_levels_and_counts_down_to_the_break() {
        let l = local();
        let v = view(&l, 21 * 60_000);
        assert_eq!(v.title, "Level 2");
        assert_eq!(v.remaining_ms, 19 * 60_000);
        assert_eq!(
            v.blinds,
            Some(Blinds {
                small_blind: 200,
                big_blind: 300,
                ante: 0
            })
        );
        assert_eq!(v.until_break_ms, Some(19 * 60_000 + 3 * 20 * 60_000));
        let v = view(&l, 101 * 60_000);
        assert_eq!(v.title, "Break");
        assert!(v.is_break && v.note.contains("Color up"));
    }
}
