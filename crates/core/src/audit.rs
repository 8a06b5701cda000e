//! The audit trail's words: one sentence per accepted change, as the floor
//! would say it when a dispute comes up ("who added five minutes?"), and the
//! CSV cells the trail exports to.
//!
//! The sentence is computed once, when the change is applied, from the
//! records before and after it, so it states what the clock showed at that
//! instant and never depends on a later structure edit.

use crate::clock::{position, ClockState};
use crate::incident::Incident;
use crate::ops::{ChangeRecords, Op};
use crate::stats::Stats;
use crate::structure::Structure;

/// `m:ss`, or `h:mm:ss` from an hour, as a clock face shows it; negative
/// amounts get a minus sign.
pub fn duration_text(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let total = ms.unsigned_abs() / 1000;
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    if h > 0 {
        format!("{sign}{h}:{m:02}:{s:02}")
    } else {
        format!("{sign}{m}:{s:02}")
    }
}

/// "level 3" or "the break after level 2" / "break 1" for a break.
fn step_name(structure: &Structure, index: usize) -> String {
    match structure.level_number(index) {
        Some(n) => format!("level {n}"),
        None => {
            let breaks = structure
                .levels
                .iter()
                .take(index + 1)
                .filter(|l| l.is_break())
                .count();
            format!("break {breaks}")
        }
    }
}

fn plural(n: u32, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// What the clock showed at `at_ms`: the step and the time left in it.
fn clock_text(clock: &ClockState, structure: &Structure, at_ms: i64) -> (String, String) {
    let p = position(clock, structure, at_ms);
    (
        step_name(structure, p.level_index),
        duration_text(p.remaining_ms),
    )
}

/// The before/after of a stats counter change.
fn players(before: &Stats, after: Option<&Stats>) -> String {
    let a = after.map_or(before.players_remaining, |s| s.players_remaining);
    format!("({} → {a} players)", before.players_remaining)
}

/// One sentence for an accepted op, from the records before it (`structure`,
/// `clock`, `stats`, and the edited incident) and the records it produced.
pub fn describe(
    op: &Op,
    clock: &ClockState,
    structure: &Structure,
    stats: &Stats,
    incident_before: Option<&Incident>,
    after: &ChangeRecords,
    at_ms: i64,
) -> String {
    let after_clock = after.clock.as_ref().unwrap_or(clock);
    let after_structure = after.structure.as_ref().unwrap_or(structure);
    match op {
        Op::ClockStart => {
            let (step, left) = clock_text(clock, structure, at_ms);
            format!("started the clock ({step}, {left} left)")
        }
        Op::ClockPause => {
            let (step, left) = clock_text(after_clock, structure, at_ms);
            format!("paused the clock ({step}, {left} left)")
        }
        Op::ClockAdjust { delta_ms } => {
            let (step, was) = clock_text(clock, structure, at_ms);
            let (_, now) = clock_text(after_clock, structure, at_ms);
            if *delta_ms >= 0 {
                format!(
                    "added {} to {step} ({was} → {now} left)",
                    duration_text(*delta_ms)
                )
            } else {
                format!(
                    "took {} off {step} ({was} → {now} left)",
                    duration_text(-*delta_ms)
                )
            }
        }
        Op::ClockSetLevel { level_index } => {
            let (from, _) = clock_text(clock, structure, at_ms);
            let to = step_name(structure, *level_index);
            let (_, left) = clock_text(after_clock, structure, at_ms);
            format!("moved the clock from {from} to {to} ({left} left)")
        }
        Op::StatsBust { count } => format!(
            "reported {} {}",
            plural(*count, "bust-out", "bust-outs"),
            players(stats, after.stats.as_ref())
        ),
        Op::StatsEntry { count } => format!(
            "added {} {}",
            plural(*count, "entry", "entries"),
            players(stats, after.stats.as_ref())
        ),
        Op::StatsRebuy { count } => {
            let a = after.stats.map_or(stats.rebuys, |s| s.rebuys);
            format!(
                "added {} ({} → {a} rebuys)",
                plural(*count, "rebuy", "rebuys"),
                stats.rebuys
            )
        }
        Op::StatsAddon { count } => {
            let a = after.stats.map_or(stats.addons, |s| s.addons);
            format!(
                "added {} ({} → {a} add-ons)",
                plural(*count, "add-on", "add-ons"),
                stats.addons
            )
        }
        Op::IncidentCreate {
            table,
            kind,
            severity,
            ..
        } => {
            let id = after.incident.as_ref().map_or("", |i| i.id.as_str());
            format!(
                "raised incident {id}: {kind} at table {table} ({} severity)",
                severity.as_str()
            )
        }
        Op::IncidentUpdate { incident_id, .. } => {
            let mut parts = Vec::new();
            if let (Some(b), Some(a)) = (incident_before, after.incident.as_ref()) {
                if b.status != a.status {
                    parts.push(format!(
                        "status {} → {}",
                        b.status.as_str(),
                        a.status.as_str()
                    ));
                }
                if b.severity != a.severity {
                    parts.push(format!(
                        "severity {} → {}",
                        b.severity.as_str(),
                        a.severity.as_str()
                    ));
                }
                if b.table != a.table {
                    parts.push(format!("table {} → {}", b.table, a.table));
                }
                if b.kind != a.kind {
                    parts.push(format!("kind {} → {}", b.kind, a.kind));
                }
                if b.note != a.note {
                    parts.push("note edited".to_string());
                }
            }
            if parts.is_empty() {
                format!("updated incident {incident_id} (no visible change)")
            } else {
                format!("updated incident {incident_id}: {}", parts.join(", "))
            }
        }
        Op::StructureUpdate { levels, .. } => {
            let (step, left) = clock_text(after_clock, after_structure, at_ms);
            format!(
                "edited the structure: {} steps, version {} → {} (clock at {step}, {left} left)",
                levels.len(),
                structure.lock_version,
                after_structure.lock_version
            )
        }
    }
}

/// One CSV cell: quoted when it holds a comma, quote or line break, and
/// defused when a spreadsheet would read it as a formula (a note typed as
/// `=HYPERLINK(...)` by someone on the venue Wi-Fi must not run when the
/// director opens the export).
pub fn csv_field(value: &str) -> String {
    let risky = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let mut v = String::with_capacity(value.len() + 3);
    if risky {
        v.push('\'');
    }
    v.push_str(value);
    if risky || v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::{IncidentStatus, Severity};
    use crate::structure::Level;

    fn structure() -> Structure {
        Structure::new(vec![
            Level::play(100, 200, 0, 20),
            Level::play(200, 400, 50, 20),
            Level::pause(10, "color up"),
            Level::play(300, 600, 75, 20),
        ])
    }

    fn paused_at(level_index: usize, remaining_ms: i64) -> ClockState {
        ClockState {
            running: false,
            level_index,
            remaining_ms,
            anchor_ms: 0,
            epoch: 1,
        }
    }

    #[test]
    fn durations_read_like_a_clock_face() {
        assert_eq!(duration_text(0), "0:00");
        assert_eq!(duration_text(300_000), "5:00");
        assert_eq!(duration_text(751_999), "12:31");
        assert_eq!(duration_text(3_723_000), "1:02:03");
        assert_eq!(duration_text(-60_000), "-1:00");
    }

    #[test]
    fn an_adjust_names_the_level_and_the_time_before_and_after() {
        let s = structure();
        let before = paused_at(1, 751_000);
        let after = ChangeRecords {
            clock: Some(before.adjust(&s, 10, 300_000)),
            ..ChangeRecords::default()
        };
        let text = describe(
            &Op::ClockAdjust { delta_ms: 300_000 },
            &before,
            &s,
            &Stats::default(),
            None,
            &after,
            10,
        );
        assert_eq!(text, "added 5:00 to level 2 (12:31 → 17:31 left)");
        let after = ChangeRecords {
            clock: Some(before.adjust(&s, 10, -60_000)),
            ..ChangeRecords::default()
        };
        let text = describe(
            &Op::ClockAdjust { delta_ms: -60_000 },
            &before,
            &s,
            &Stats::default(),
            None,
            &after,
            10,
        );
        assert_eq!(text, "took 1:00 off level 2 (12:31 → 11:31 left)");
    }

    #[test]
    fn a_break_is_named_as_a_break_and_busts_show_the_field() {
        let s = structure();
        let before = paused_at(0, 1000);
        let after = ChangeRecords {
            clock: Some(before.set_level(&s, 5, 2)),
            ..ChangeRecords::default()
        };
        let text = describe(
            &Op::ClockSetLevel { level_index: 2 },
            &before,
            &s,
            &Stats::default(),
            None,
            &after,
            5,
        );
        assert_eq!(text, "moved the clock from level 1 to break 1 (10:00 left)");
        let stats = Stats {
            entries: 46,
            players_remaining: 46,
            ..Stats::default()
        };
        let after = ChangeRecords {
            stats: Some(Stats {
                players_remaining: 44,
                ..stats
            }),
            ..ChangeRecords::default()
        };
        let text = describe(
            &Op::StatsBust { count: 2 },
            &before,
            &s,
            &stats,
            None,
            &after,
            5,
        );
        assert_eq!(text, "reported 2 bust-outs (46 → 44 players)");
    }

    #[test]
    fn an_incident_update_lists_what_changed() {
        let s = structure();
        let b = Incident {
            id: "inc-3".into(),
            table: "7".into(),
            kind: "misdeal".into(),
            severity: Severity::Low,
            status: IncidentStatus::Open,
            note: String::new(),
            created_by: "Ana".into(),
            lock_version: 1,
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        let a = Incident {
            status: IncidentStatus::Resolved,
            note: "rule 34".into(),
            lock_version: 2,
            ..b.clone()
        };
        let op = Op::IncidentUpdate {
            incident_id: "inc-3".into(),
            base_version: 1,
            table: None,
            kind: None,
            severity: None,
            note: Some("rule 34".into()),
            status: Some(IncidentStatus::Resolved),
            reopen: false,
        };
        let after = ChangeRecords {
            incident: Some(a),
            ..ChangeRecords::default()
        };
        let text = describe(
            &op,
            &paused_at(0, 1000),
            &s,
            &Stats::default(),
            Some(&b),
            &after,
            0,
        );
        assert_eq!(
            text,
            "updated incident inc-3: status open → resolved, note edited"
        );
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("=1+1"), "\"'=1+1\"");
        assert_eq!(csv_field("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_field("-5:00"), "\"'-5:00\"");
    }
}
