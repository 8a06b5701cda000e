//! The `op` target: ops, from any sender, applied to an event the way the
//! server's writer does it (`writer.rs`, `apply_op`): read the event's
//! records and the named incident, call [`apply`], and on success store
//! exactly the records it returned; on a refusal store nothing.
//!
//! Two input shapes. A first byte `{` means a hand-written case: the first
//! line is the op as JSON (read as the server reads it, through a
//! [`Value`]), the rest drives the sender's role and the event's state. Any
//! other input is a script: an event built from the bytes, then up to
//! [`MAX_STEPS`] generated ops from either role, each applied to the state
//! the previous ones left, so the fuzzer also reaches states that only a
//! sequence of edits makes (a clock adjusted past a level's length, then a
//! shorter structure).
//!
//! What each step checks is what a director or a dealer relies on, stated
//! here independently of `ops.rs`: the role table; an op the stateless
//! checks refuse is refused by [`apply`] too, with the same code; a refusal
//! stores nothing and a conflict carries the current record; the versions of
//! incidents and structures bump by exactly one; players remaining never
//! exceed entries nor go below zero; the clock stays within its caps and
//! shows, at the instant of the change, exactly what the op asked for; and
//! every accepted change encodes and reads back as what was stored.

use std::collections::BTreeMap;

use arbitrary::{Result, Unstructured};
use pitboss_core::clock::position;
use pitboss_core::incident::{Incident, IncidentStatus};
use pitboss_core::limits::{MAX_ADJUST_MS, MAX_LEVEL_MS, MAX_REMAINING_MS};
use pitboss_core::ops::{apply, ApplyContext, ChangeRecords, EventState, OpError};
use pitboss_core::protocol::{By, Change, ServerMsg};
use pitboss_core::{Actor, Op, Role};
use serde::Serialize;
use serde_json::Value;

use crate::frame::{check_parsed_op, coordinator_only};
use crate::gen;

/// Ops in one generated script: enough to build up state, few enough to
/// keep every execution fast.
pub const MAX_STEPS: usize = 16;

/// An event as the server holds it: the records [`apply`] reads, its
/// incidents, and the number the next incident gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub state: EventState,
    pub incidents: BTreeMap<String, Incident>,
    pub next_incident: u64,
}

impl Event {
    fn arbitrary(u: &mut Unstructured<'_>, now: i64) -> Result<Event> {
        let details = gen::details(u)?;
        let structure = gen::valid_structure(u)?;
        let mut clock = gen::stored_clock(u, &structure)?;
        // The last change was at or before now, give or take a stepped
        // system clock.
        clock.anchor_ms = now - u.int_in_range(-60_000..=3 * 86_400_000i64)?;
        let stats = gen::stats(u, &details)?;
        let mut incidents = BTreeMap::new();
        let existing = u.int_in_range(0..=3u64)?;
        for n in 1..=existing {
            let id = format!("inc-{n}");
            incidents.insert(id.clone(), gen::incident(u, id, now)?);
        }
        Ok(Event {
            state: EventState {
                details,
                clock,
                structure,
                stats,
            },
            incidents,
            next_incident: existing + 1,
        })
    }
}

fn actor(role: Role) -> Actor {
    Actor {
        operator_id: "op-fuzz".into(),
        name: "Ana".into(),
        device: "laptop-7".into(),
        role,
    }
}

/// The fuzz target.
pub fn check(data: &[u8]) {
    if data.first() == Some(&b'{') {
        let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
        let (op_text, rest) = data.split_at(split);
        // An `Err` only says the bytes ran out: the input ends there.
        let _ = check_json(op_text, rest);
    } else {
        let _ = check_script(data);
    }
}

fn check_json(op_text: &[u8], rest: &[u8]) -> Result<()> {
    // As the server reads it: a frame's `op` is a JSON value first.
    let Ok(raw) = serde_json::from_slice::<Value>(op_text) else {
        return Ok(());
    };
    let Ok(op) = serde_json::from_value::<Op>(raw) else {
        return Ok(());
    };
    let mut u = Unstructured::new(rest);
    let role = gen::role(&mut u)?;
    let now = gen::instant(&mut u)?;
    let mut event = Event::arbitrary(&mut u, now)?;
    step(&mut event, role, &op, now);
    Ok(())
}

fn check_script(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let mut now = gen::instant(&mut u)?;
    let mut event = Event::arbitrary(&mut u, now)?;
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let role = gen::role(&mut u)?;
        let op = any_op(&mut u, &event)?;
        now = (now + u.int_in_range(-1_000..=3_600_000i64)?).min(gen::MAX_INSTANT_MS);
        step(&mut event, role, &op, now);
    }
    Ok(())
}

/// An op a client might send about `event`: often about what is there
/// (an incident that exists, the current version, a level in range), as
/// often not, and with values at and past every limit.
fn any_op(u: &mut Unstructured<'_>, event: &Event) -> Result<Op> {
    let s = &event.state.structure;
    let count = |u: &mut Unstructured<'_>| -> Result<u32> {
        Ok(match u.int_in_range(0..=2u8)? {
            0 => u.int_in_range(0..=3)?,
            1 => u32::try_from(event.state.stats.players_remaining)
                .unwrap_or(u32::MAX)
                .saturating_add(u.int_in_range(0..=1)?),
            _ => u.arbitrary()?,
        })
    };
    let version = |u: &mut Unstructured<'_>, current: u64| -> Result<u64> {
        Ok(match u.int_in_range(0..=3u8)? {
            0 | 1 => current,
            2 => current.wrapping_add(*u.choose(&[1, u64::MAX])?),
            _ => u.arbitrary()?,
        })
    };
    Ok(match u.int_in_range(0..=10u8)? {
        0 => Op::ClockStart,
        1 => Op::ClockPause,
        2 => Op::ClockAdjust {
            delta_ms: match u.int_in_range(0..=2u8)? {
                0 => *u.choose(&[
                    0,
                    60_000,
                    -60_000,
                    -300_000,
                    MAX_ADJUST_MS,
                    -MAX_ADJUST_MS,
                    MAX_ADJUST_MS + 1,
                    i64::MIN,
                ])?,
                1 => u.int_in_range(-MAX_ADJUST_MS..=MAX_ADJUST_MS)?,
                _ => u.arbitrary()?,
            },
        },
        3 => Op::ClockSetLevel {
            level_index: if u.ratio(3, 4)? {
                u.int_in_range(0..=s.levels.len())?
            } else {
                u.arbitrary()?
            },
        },
        4 => Op::StatsBust { count: count(u)? },
        5 => Op::StatsEntry { count: count(u)? },
        6 => Op::StatsRebuy { count: count(u)? },
        7 => Op::StatsAddon { count: count(u)? },
        8 => Op::IncidentCreate {
            table: gen::text(u)?,
            kind: gen::text(u)?,
            severity: gen::severity(u)?,
            note: gen::text(u)?,
        },
        9 => {
            let ids: Vec<&String> = event.incidents.keys().collect();
            let (incident_id, current) = if !ids.is_empty() && u.ratio(3, 4)? {
                let id = *u.choose(&ids)?;
                (id.clone(), event.incidents[id].lock_version)
            } else {
                (u.arbitrary()?, 1)
            };
            let maybe = |u: &mut Unstructured<'_>| -> Result<Option<String>> {
                if u.arbitrary()? {
                    Ok(Some(gen::text(u)?))
                } else {
                    Ok(None)
                }
            };
            Op::IncidentUpdate {
                incident_id,
                base_version: version(u, current)?,
                table: maybe(u)?,
                kind: maybe(u)?,
                severity: if u.arbitrary()? {
                    Some(gen::severity(u)?)
                } else {
                    None
                },
                note: maybe(u)?,
                status: if u.arbitrary()? {
                    Some(gen::status(u)?)
                } else {
                    None
                },
                reopen: u.arbitrary()?,
            }
        }
        _ => Op::StructureUpdate {
            base_version: version(u, s.lock_version)?,
            levels: gen::client_levels(u)?,
        },
    })
}

/// Runs the server's `apply` for one op on `event` and checks it, then
/// stores the result as the writer does.
pub fn step(event: &mut Event, role: Role, op: &Op, now: i64) {
    let actor = actor(role);
    let new_incident_id = format!("inc-{}", event.next_incident);
    let incident = op.incident_id().and_then(|id| event.incidents.get(id));
    let ctx = ApplyContext {
        actor: &actor,
        now_ms: now,
        incident,
        new_incident_id: new_incident_id.clone(),
    };
    let before = event.clone();
    let result = apply(op, &event.state, &ctx);
    assert_eq!(
        apply(op, &event.state, &ctx),
        result,
        "apply is not deterministic"
    );

    // The server checks role and limits before queueing, and `apply`
    // promises to check them again: a refusal there is a refusal here.
    match (check_parsed_op(role, op), &result) {
        (Err(pre), Ok(_)) => {
            panic!("{op:?} from a {role:?} passed apply but not the checks: {pre:?}")
        }
        (Err(pre), Err(e)) => assert_eq!(e.code(), pre.code, "{op:?}: {e:?} vs {pre:?}"),
        (Ok(()), Err(OpError::Forbidden(_))) => {
            panic!("{op:?} from a {role:?} passed the checks but apply forbade it")
        }
        (Ok(()), _) => {}
    }
    if role == Role::Dealer && coordinator_only(op) {
        assert!(
            matches!(result, Err(OpError::Forbidden(_))),
            "a dealer got {result:?} for {op:?}"
        );
    }
    if role == Role::Display {
        assert!(
            matches!(result, Err(OpError::Forbidden(_))),
            "a display got {result:?} for {op:?}"
        );
    }

    match result {
        Err(e) => {
            refused(&before, op, &e);
            // Nothing is stored for a refusal.
            assert_eq!(*event, before);
        }
        Ok(records) => {
            accepted(&before, role, op, now, &new_incident_id, &records);
            encodes(op, &actor, now, &records);
            store(event, op, &records);
            holds(event, now);
            stale_retry_conflicts(event, op, now);
        }
    }
}

/// A refusal names a public code, and each code only where it belongs.
fn refused(before: &Event, op: &Op, e: &OpError) {
    assert!(!e.to_string().is_empty(), "a refusal says why");
    let st = &before.state;
    match e {
        OpError::Forbidden(_) => {}
        OpError::NotFound(_) => {
            let Op::IncidentUpdate { incident_id, .. } = op else {
                panic!("not_found for {op:?}")
            };
            assert!(!before.incidents.contains_key(incident_id));
        }
        OpError::Conflict { current, .. } => match op {
            Op::ClockStart => {
                assert!(st.clock.running);
                assert_eq!(*current, json(&st.clock));
            }
            Op::ClockPause => {
                assert!(!st.clock.running);
                assert_eq!(*current, json(&st.clock));
            }
            Op::IncidentUpdate {
                incident_id,
                base_version,
                ..
            } => {
                let inc = &before.incidents[incident_id];
                assert_ne!(inc.lock_version, *base_version);
                assert_eq!(*current, json(inc), "a conflict carries the current record");
            }
            Op::StructureUpdate { base_version, .. } => {
                assert_ne!(st.structure.lock_version, *base_version);
                assert_eq!(*current, json(&st.structure));
            }
            _ => panic!("conflict for {op:?}"),
        },
        OpError::Invalid { current, .. } => {
            // Refused for the state, not the op: the record it clashed with.
            if op.validate().is_ok() {
                match op {
                    Op::StatsBust { count } => {
                        assert!(u64::from(*count) > st.stats.players_remaining);
                        assert_eq!(current.as_ref(), Some(&json(&st.stats)));
                    }
                    Op::ClockSetLevel { level_index } => {
                        assert!(*level_index >= st.structure.levels.len());
                        assert_eq!(current.as_ref(), Some(&json(&st.clock)));
                    }
                    Op::IncidentUpdate {
                        incident_id,
                        status: Some(next),
                        reopen,
                        ..
                    } => {
                        let inc = &before.incidents[incident_id];
                        assert!(goes_back(inc.status, *next, *reopen), "{inc:?} -> {next:?}");
                        assert_eq!(current.as_ref(), Some(&json(inc)));
                    }
                    _ => panic!("{op:?} is valid but was refused as invalid: {e:?}"),
                }
            }
        }
    }
}

/// Whether moving an incident from `from` to `to` undoes the floor's
/// decision without asking: backwards, and not an explicit re-open.
fn goes_back(from: IncidentStatus, to: IncidentStatus, reopen: bool) -> bool {
    let rank = |s| match s {
        IncidentStatus::Open => 0,
        IncidentStatus::Acknowledged => 1,
        IncidentStatus::Resolved => 2,
    };
    rank(to) < rank(from) && !(reopen && to == IncidentStatus::Open)
}

/// An accepted op did what it says and touched only its own records.
fn accepted(before: &Event, role: Role, op: &Op, now: i64, new_id: &str, r: &ChangeRecords) {
    assert!(role == Role::Coordinator || !coordinator_only(op));
    assert!(role != Role::Display, "a display changed {op:?}");
    op.validate().expect("an accepted op is valid");
    let st = &before.state;
    let s = &st.structure;
    let shown = position(&st.clock, s, now);
    let touched = (
        r.clock.is_some(),
        r.stats.is_some(),
        r.structure.is_some(),
        r.incident.is_some(),
    );
    match op {
        Op::ClockStart | Op::ClockPause | Op::ClockAdjust { .. } | Op::ClockSetLevel { .. } => {
            assert_eq!(touched, (true, false, false, false), "{op:?}");
            let c = r.clock.expect("clock");
            assert_eq!(c.epoch, st.clock.epoch + 1, "every clock op is a new epoch");
            assert_eq!(c.anchor_ms, now.max(st.clock.anchor_ms));
            match op {
                Op::ClockStart | Op::ClockPause => {
                    assert_eq!(st.clock.running, matches!(op, Op::ClockPause));
                    assert_eq!(c.running, matches!(op, Op::ClockStart));
                    // It holds what was shown at that instant. (A clock
                    // started at 0:00 then moves on to the next level at
                    // once, as a running clock does.)
                    assert_eq!(
                        (c.level_index, c.remaining_ms),
                        (shown.level_index, shown.remaining_ms),
                        "starting or pausing changed what the clock shows"
                    );
                }
                Op::ClockAdjust { delta_ms } => {
                    assert_eq!(c.running, st.clock.running);
                    assert_eq!(c.level_index, shown.level_index);
                    let want = (i128::from(shown.remaining_ms) + i128::from(*delta_ms))
                        .clamp(0, i128::from(MAX_REMAINING_MS));
                    assert_eq!(i128::from(c.remaining_ms), want, "adjusted by {delta_ms}");
                }
                Op::ClockSetLevel { level_index } => {
                    assert_eq!(c.running, st.clock.running);
                    assert_eq!(c.level_index, *level_index);
                    assert_eq!(c.remaining_ms, s.levels[*level_index].duration_ms());
                }
                _ => unreachable!(),
            }
        }
        Op::StatsBust { count }
        | Op::StatsEntry { count }
        | Op::StatsRebuy { count }
        | Op::StatsAddon { count } => {
            assert_eq!(touched, (false, true, false, false), "{op:?}");
            let (old, new, n) = (st.stats, r.stats.expect("stats"), u64::from(*count));
            let mut want = old;
            match op {
                Op::StatsBust { .. } => {
                    assert!(n <= old.players_remaining, "bust of {n} from {old:?}");
                    want.players_remaining = old.players_remaining - n;
                }
                Op::StatsEntry { .. } => {
                    want.entries = old.entries.saturating_add(n);
                    want.players_remaining = old.players_remaining.saturating_add(n);
                }
                Op::StatsRebuy { .. } => want.rebuys = old.rebuys.saturating_add(n),
                _ => want.addons = old.addons.saturating_add(n),
            }
            assert_eq!(new, want.derive(&st.details), "{op:?} on {old:?}");
        }
        Op::IncidentCreate {
            table,
            kind,
            severity,
            note,
        } => {
            assert_eq!(touched, (false, false, false, true), "{op:?}");
            let i = r.incident.as_ref().expect("incident");
            assert_eq!(i.id, new_id);
            assert!(!before.incidents.contains_key(&i.id), "incident ids repeat");
            assert_eq!(i.lock_version, 1, "a new incident starts at version 1");
            assert_eq!(i.status, IncidentStatus::Open);
            assert_eq!(
                (&i.table, &i.kind, &i.severity, &i.note),
                (table, kind, severity, note),
                "text is stored verbatim"
            );
            assert_eq!((i.created_at_ms, i.updated_at_ms), (now, now));
            assert_eq!(i.created_by, "Ana");
        }
        Op::IncidentUpdate {
            incident_id,
            base_version,
            table,
            kind,
            severity,
            note,
            status,
            reopen,
        } => {
            assert_eq!(touched, (false, false, false, true), "{op:?}");
            let old = &before.incidents[incident_id];
            let i = r.incident.as_ref().expect("incident");
            assert_eq!(old.lock_version, *base_version, "a stale edit was applied");
            assert_eq!(
                i.lock_version,
                old.lock_version + 1,
                "an edit bumps the version by one"
            );
            if let Some(st) = status {
                assert!(!goes_back(old.status, *st, *reopen), "{old:?} -> {st:?}");
            }
            let want = Incident {
                table: table.clone().unwrap_or_else(|| old.table.clone()),
                kind: kind.clone().unwrap_or_else(|| old.kind.clone()),
                severity: severity.unwrap_or(old.severity),
                note: note.clone().unwrap_or_else(|| old.note.clone()),
                status: status.unwrap_or(old.status),
                lock_version: old.lock_version + 1,
                updated_at_ms: now,
                ..old.clone()
            };
            assert_eq!(*i, want);
        }
        Op::StructureUpdate { levels, .. } => {
            assert_eq!(touched, (true, false, true, false), "{op:?}");
            let new = r.structure.as_ref().expect("structure");
            assert_eq!(new.lock_version, s.lock_version + 1);
            assert_eq!(&new.levels, levels);
            let c = r.clock.expect("clock");
            assert!(c.level_index <= new.last_index());
            assert!(c.remaining_ms >= 0);
            assert!(
                c.remaining_ms <= new.duration_ms(c.level_index),
                "after a structure edit the clock holds more than its level: {c:?}"
            );
            assert_eq!(c.running, st.clock.running);
            assert!(c.epoch == st.clock.epoch || c.epoch == st.clock.epoch + 1);
            // Still at the level it was in, when that level still exists.
            if shown.level_index <= new.last_index() {
                assert_eq!(c.level_index, shown.level_index);
            }
        }
    }
}

/// The answer and the broadcast of an accepted op encode, and read back as
/// what is stored: a screen applies exactly these records.
fn encodes(op: &Op, actor: &Actor, now: i64, r: &ChangeRecords) {
    let text = serde_json::to_string(r).expect("records encode");
    let back: ChangeRecords = serde_json::from_str(&text).expect("records read back");
    assert_eq!(back, *r, "{text}");
    let msg = ServerMsg::Change(Box::new(Change {
        event_id: "ev-1".into(),
        seq: 1,
        op_id: "op-1".into(),
        op: op.clone(),
        by: By {
            operator_id: actor.operator_id.clone(),
            name: actor.name.clone(),
            device: actor.device.clone(),
        },
        at_ms: now,
        records: r.clone(),
    }));
    let text = serde_json::to_string(&msg).expect("a change encodes");
    let back: ServerMsg = serde_json::from_str(&text).expect("a change reads back");
    assert_eq!(back, msg, "{text}");
}

/// Stores the records as the writer does: each one it returned replaces
/// the stored one; a new incident takes the next number.
fn store(event: &mut Event, op: &Op, r: &ChangeRecords) {
    if let Some(c) = r.clock {
        event.state.clock = c;
    }
    if let Some(s) = r.stats {
        event.state.stats = s;
    }
    if let Some(s) = &r.structure {
        event.state.structure = s.clone();
    }
    if let Some(i) = &r.incident {
        if !matches!(op, Op::IncidentUpdate { .. }) {
            event.next_incident += 1;
        }
        event.incidents.insert(i.id.clone(), i.clone());
    }
}

/// What holds of every stored event, whatever was done to it.
fn holds(event: &Event, now: i64) {
    let st = &event.state;
    let (s, c) = (&st.structure, &st.clock);
    assert!(
        st.stats.players_remaining <= st.stats.entries,
        "more players left than entered: {:?}",
        st.stats
    );
    assert_eq!(
        st.stats,
        st.stats.derive(&st.details),
        "stale derived figures"
    );
    assert!(st.stats.average_stack <= st.stats.total_chips);
    assert!(c.level_index <= s.last_index(), "{c:?} past the structure");
    assert!(
        (0..=MAX_REMAINING_MS).contains(&c.remaining_ms),
        "stored remaining time out of range: {c:?}"
    );
    for t in [now, now + 1, now + MAX_LEVEL_MS] {
        let p = position(c, s, t);
        assert!(p.remaining_ms >= 0 && p.remaining_ms <= MAX_REMAINING_MS);
        assert!(p.level_index <= s.last_index());
    }
}

/// Rule 4: an edit based on a version is refused once that version is
/// gone, with the record as it is now; sending it again must not apply it
/// a second time on top of itself.
fn stale_retry_conflicts(event: &Event, op: &Op, now: i64) {
    let versioned = matches!(op, Op::IncidentUpdate { .. } | Op::StructureUpdate { .. });
    if !versioned {
        return;
    }
    let actor = actor(Role::Coordinator);
    let incident = op.incident_id().and_then(|id| event.incidents.get(id));
    let ctx = ApplyContext {
        actor: &actor,
        now_ms: now,
        incident,
        new_incident_id: format!("inc-{}", event.next_incident),
    };
    match apply(op, &event.state, &ctx) {
        Err(OpError::Conflict { current, .. }) => {
            let want = match incident {
                Some(i) => json(i),
                None => json(&event.state.structure),
            };
            assert_eq!(current, want);
        }
        other => panic!("{op:?} sent again on its own result gave {other:?}"),
    }
}

/// A record as a refusal's `current` carries it.
fn json<T: Serialize>(record: &T) -> Value {
    serde_json::to_value(record).expect("a record encodes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_ops_run_through_the_checks() {
        for op in [
            r#"{"type":"stats.bust","count":2}"#,
            r#"{"type":"clock.adjust","delta_ms":-300000}"#,
            r#"{"type":"clock.start"}"#,
            r#"{"type":"incident.create","table":"7","kind":"misdeal","severity":"high"}"#,
        ] {
            for tail in [&[][..], &[0u8; 64], &[0xffu8; 64]] {
                let mut input = op.as_bytes().to_vec();
                input.push(b'\n');
                input.extend_from_slice(tail);
                check(&input);
            }
        }
    }

    #[test]
    fn generated_scripts_run() {
        for seed in 0..200u32 {
            let bytes: Vec<u8> = (0..600u32)
                .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed * 97) >> 13) as u8)
                .collect();
            check(&bytes);
        }
    }
}
