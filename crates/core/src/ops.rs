//! The operations of the public API, who may send them, and what each does.
//!
//! [`apply`] is the whole of the business logic of a change: given the
//! current records (read by the server inside its write transaction) it
//! returns the new records or a rejection. It does no I/O, so the server's
//! transaction stays short and the rules are tested here without a database.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::ClockState;
use crate::event::EventDetails;
use crate::incident::{Incident, IncidentStatus, Severity};
use crate::limits::{
    MAX_ADJUST_MS, MAX_COUNT, MAX_KIND_CHARS, MAX_NOTE_CHARS, MAX_OP_ID_BYTES, MAX_TABLE_CHARS,
};
use crate::stats::Stats;
use crate::structure::{validate_levels, Level, Structure};

fn one() -> u32 {
    1
}

/// A change a client asks for. The `type` names are part of the public API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Op {
    #[serde(rename = "clock.start")]
    ClockStart,
    #[serde(rename = "clock.pause")]
    ClockPause,
    #[serde(rename = "clock.adjust")]
    ClockAdjust { delta_ms: i64 },
    #[serde(rename = "clock.set_level")]
    ClockSetLevel { level_index: usize },
    #[serde(rename = "stats.bust")]
    StatsBust {
        #[serde(default = "one")]
        count: u32,
    },
    #[serde(rename = "stats.entry")]
    StatsEntry {
        #[serde(default = "one")]
        count: u32,
    },
    #[serde(rename = "stats.rebuy")]
    StatsRebuy {
        #[serde(default = "one")]
        count: u32,
    },
    #[serde(rename = "stats.addon")]
    StatsAddon {
        #[serde(default = "one")]
        count: u32,
    },
    #[serde(rename = "incident.create")]
    IncidentCreate {
        table: String,
        kind: String,
        severity: Severity,
        #[serde(default)]
        note: String,
    },
    #[serde(rename = "incident.update")]
    IncidentUpdate {
        incident_id: String,
        base_version: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        table: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        severity: Option<Severity>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<IncidentStatus>,
        /// Must be true to move a resolved or acknowledged incident back to open.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reopen: bool,
    },
    #[serde(rename = "structure.update")]
    StructureUpdate {
        base_version: u64,
        levels: Vec<Level>,
    },
}

impl Op {
    pub fn type_name(&self) -> &'static str {
        match self {
            Op::ClockStart => "clock.start",
            Op::ClockPause => "clock.pause",
            Op::ClockAdjust { .. } => "clock.adjust",
            Op::ClockSetLevel { .. } => "clock.set_level",
            Op::StatsBust { .. } => "stats.bust",
            Op::StatsEntry { .. } => "stats.entry",
            Op::StatsRebuy { .. } => "stats.rebuy",
            Op::StatsAddon { .. } => "stats.addon",
            Op::IncidentCreate { .. } => "incident.create",
            Op::IncidentUpdate { .. } => "incident.update",
            Op::StructureUpdate { .. } => "structure.update",
        }
    }

    /// The incident this op edits, which the server reads before [`apply`].
    pub fn incident_id(&self) -> Option<&str> {
        match self {
            Op::IncidentUpdate { incident_id, .. } => Some(incident_id),
            _ => None,
        }
    }

    /// Checks that need no stored state: counts, lengths, ranges. Run before
    /// the op is queued for the writer, so garbage never takes the write lock.
    pub fn validate(&self) -> Result<(), OpError> {
        match self {
            Op::ClockStart | Op::ClockPause | Op::ClockSetLevel { .. } => Ok(()),
            Op::ClockAdjust { delta_ms } => {
                if *delta_ms == 0 {
                    return Err(OpError::invalid("delta_ms must not be 0"));
                }
                if delta_ms.unsigned_abs() > MAX_ADJUST_MS.unsigned_abs() {
                    return Err(OpError::invalid(format!(
                        "delta_ms must be between -{MAX_ADJUST_MS} and {MAX_ADJUST_MS}"
                    )));
                }
                Ok(())
            }
            Op::StatsBust { count }
            | Op::StatsEntry { count }
            | Op::StatsRebuy { count }
            | Op::StatsAddon { count } => {
                if *count == 0 || *count > MAX_COUNT {
                    return Err(OpError::invalid(format!(
                        "count must be between 1 and {MAX_COUNT}"
                    )));
                }
                Ok(())
            }
            Op::IncidentCreate {
                table, kind, note, ..
            } => {
                check_text("table", table, MAX_TABLE_CHARS, true)?;
                check_text("kind", kind, MAX_KIND_CHARS, true)?;
                check_text("note", note, MAX_NOTE_CHARS, false)
            }
            Op::IncidentUpdate {
                incident_id,
                table,
                kind,
                severity,
                note,
                status,
                ..
            } => {
                if incident_id.is_empty() {
                    return Err(OpError::invalid("incident_id must not be empty"));
                }
                if table.is_none()
                    && kind.is_none()
                    && severity.is_none()
                    && note.is_none()
                    && status.is_none()
                {
                    return Err(OpError::invalid(
                        "incident.update needs at least one of table, kind, severity, note, status",
                    ));
                }
                if let Some(t) = table {
                    check_text("table", t, MAX_TABLE_CHARS, true)?;
                }
                if let Some(k) = kind {
                    check_text("kind", k, MAX_KIND_CHARS, true)?;
                }
                if let Some(n) = note {
                    check_text("note", n, MAX_NOTE_CHARS, false)?;
                }
                Ok(())
            }
            Op::StructureUpdate { levels, .. } => validate_levels(levels).map_err(OpError::invalid),
        }
    }
}

fn check_text(field: &str, value: &str, max: usize, required: bool) -> Result<(), OpError> {
    if required && value.trim().is_empty() {
        return Err(OpError::invalid(format!("{field} must not be empty")));
    }
    if value.chars().count() > max {
        return Err(OpError::invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(())
}

/// Checks a client-generated op id: any printable ASCII, bounded.
pub fn validate_op_id(op_id: &str) -> Result<(), OpError> {
    if op_id.is_empty() || op_id.len() > MAX_OP_ID_BYTES {
        return Err(OpError::invalid(format!(
            "op_id must be 1 to {MAX_OP_ID_BYTES} characters"
        )));
    }
    if !op_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(OpError::invalid(
            "op_id must be printable ASCII without spaces",
        ));
    }
    Ok(())
}

/// What a session may do. The `display` role (wall screens) reads only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Coordinator,
    Dealer,
    /// A wall screen or a signage script: reads everything, sends no op.
    Display,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Dealer => "dealer",
            Role::Display => "display",
        }
    }

    /// Every role, in the order the role table in `docs/protocol/auth.md` lists them.
    pub const ALL: [Role; 3] = [Role::Coordinator, Role::Dealer, Role::Display];

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "coordinator" => Some(Role::Coordinator),
            "dealer" => Some(Role::Dealer),
            "display" => Some(Role::Display),
            _ => None,
        }
    }

    /// Dealers report from the table (stats and incidents); only a
    /// coordinator runs the clock and edits the structure; a display changes
    /// nothing, so a wall PC left unattended cannot be used to pause the clock.
    pub fn may(self, op: &Op) -> bool {
        match self {
            Role::Coordinator => true,
            Role::Display => false,
            Role::Dealer => matches!(
                op,
                Op::StatsBust { .. }
                    | Op::StatsEntry { .. }
                    | Op::StatsRebuy { .. }
                    | Op::StatsAddon { .. }
                    | Op::IncidentCreate { .. }
                    | Op::IncidentUpdate { .. }
            ),
        }
    }

    pub fn may_create_events(self) -> bool {
        self == Role::Coordinator
    }

    /// Pairing codes, the device list, revocation and the audit trail: the
    /// floor's record of who did what is for the people who run the floor.
    pub fn may_manage(self) -> bool {
        self == Role::Coordinator
    }
}

/// Who made a change, as recorded with it and shown to the floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub operator_id: String,
    pub name: String,
    pub device: String,
    pub role: Role,
}

/// Why an op was not applied. The `code()` strings are the public error codes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpError {
    /// Malformed or impossible; `current` holds the record that made it
    /// impossible, when there is one (e.g. the stats for a bust of too many).
    #[error("{message}")]
    Invalid {
        message: String,
        current: Option<Value>,
    },
    /// Based on a version that is no longer current, or on a clock state that
    /// changed (start of a running clock): `current` is the record as it is.
    #[error("{message}")]
    Conflict { message: String, current: Value },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
}

impl OpError {
    pub fn invalid(message: impl Into<String>) -> OpError {
        OpError::Invalid {
            message: message.into(),
            current: None,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            OpError::Invalid { .. } => "invalid",
            OpError::Conflict { .. } => "conflict",
            OpError::NotFound(_) => "not_found",
            OpError::Forbidden(_) => "forbidden",
        }
    }

    pub fn current(&self) -> Option<&Value> {
        match self {
            OpError::Invalid { current, .. } => current.as_ref(),
            OpError::Conflict { current, .. } => Some(current),
            _ => None,
        }
    }
}

/// The records of an event an op may read, as stored now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventState {
    pub details: EventDetails,
    pub clock: ClockState,
    pub structure: Structure,
    pub stats: Stats,
}

/// The records a change touched, in their new state. A client applies a
/// change by replacing exactly these, never by re-running the op.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecords {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structure: Option<Structure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<Incident>,
}

impl ChangeRecords {
    /// Replaces the event-level records this change carries (clock, stats,
    /// structure) in `state`. The one rule for applying a change, shared by
    /// the server's in-memory row and every client's replica: replace what
    /// the change touched, never re-run the op. Incidents live in their own
    /// list or table, so each side upserts [`ChangeRecords::incident`] itself.
    pub fn replace_in(&self, clock: &mut ClockState, stats: &mut Stats, structure: &mut Structure) {
        if let Some(c) = self.clock {
            *clock = c;
        }
        if let Some(s) = self.stats {
            *stats = s;
        }
        if let Some(s) = &self.structure {
            *structure = s.clone();
        }
    }
}

/// Everything [`apply`] needs besides the op and the event's records.
pub struct ApplyContext<'a> {
    pub actor: &'a Actor,
    /// Server time of the change.
    pub now_ms: i64,
    /// The incident named by `incident.update`, read in the same transaction.
    pub incident: Option<&'a Incident>,
    /// The id a new incident gets.
    pub new_incident_id: String,
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Applies `op` to the current records, returning what changed or why not.
/// Role checks and [`Op::validate`] come first; this re-checks nothing the
/// caller may have skipped, so it is safe to call on any op.
pub fn apply(
    op: &Op,
    state: &EventState,
    ctx: &ApplyContext<'_>,
) -> Result<ChangeRecords, OpError> {
    if !ctx.actor.role.may(op) {
        return Err(OpError::Forbidden(format!(
            "a {} may not send {}",
            ctx.actor.role.as_str(),
            op.type_name()
        )));
    }
    op.validate()?;
    let now = ctx.now_ms;
    let s = &state.structure;
    let mut out = ChangeRecords::default();
    match op {
        Op::ClockStart => {
            let c = state.clock.start(s, now).ok_or_else(|| OpError::Conflict {
                message: "the clock is already running".into(),
                current: json(&state.clock),
            })?;
            out.clock = Some(c);
        }
        Op::ClockPause => {
            let c = state.clock.pause(s, now).ok_or_else(|| OpError::Conflict {
                message: "the clock is already paused".into(),
                current: json(&state.clock),
            })?;
            out.clock = Some(c);
        }
        Op::ClockAdjust { delta_ms } => {
            out.clock = Some(state.clock.adjust(s, now, *delta_ms));
        }
        Op::ClockSetLevel { level_index } => {
            if *level_index >= s.levels.len() {
                return Err(OpError::Invalid {
                    message: format!(
                        "level_index {level_index} is out of range: the structure has steps 0 to {}",
                        s.last_index()
                    ),
                    current: Some(json(&state.clock)),
                });
            }
            out.clock = Some(state.clock.set_level(s, now, *level_index));
        }
        Op::StatsBust { count } => {
            let n = u64::from(*count);
            if n > state.stats.players_remaining {
                return Err(OpError::Invalid {
                    message: format!(
                        "only {} players remain; cannot record {n} bust-outs",
                        state.stats.players_remaining
                    ),
                    current: Some(json(&state.stats)),
                });
            }
            let mut st = state.stats;
            st.players_remaining -= n;
            out.stats = Some(st.derive(&state.details));
        }
        Op::StatsEntry { count } => {
            let mut st = state.stats;
            st.entries = st.entries.saturating_add(u64::from(*count));
            st.players_remaining = st.players_remaining.saturating_add(u64::from(*count));
            out.stats = Some(st.derive(&state.details));
        }
        Op::StatsRebuy { count } => {
            let mut st = state.stats;
            st.rebuys = st.rebuys.saturating_add(u64::from(*count));
            out.stats = Some(st.derive(&state.details));
        }
        Op::StatsAddon { count } => {
            let mut st = state.stats;
            st.addons = st.addons.saturating_add(u64::from(*count));
            out.stats = Some(st.derive(&state.details));
        }
        Op::IncidentCreate {
            table,
            kind,
            severity,
            note,
        } => {
            out.incident = Some(Incident {
                id: ctx.new_incident_id.clone(),
                table: table.clone(),
                kind: kind.clone(),
                severity: *severity,
                status: IncidentStatus::Open,
                note: note.clone(),
                created_by: ctx.actor.name.clone(),
                lock_version: 1,
                created_at_ms: now,
                updated_at_ms: now,
            });
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
            let current = ctx.incident.ok_or_else(|| {
                OpError::NotFound(format!("no incident {incident_id} in this event"))
            })?;
            if current.lock_version != *base_version {
                return Err(OpError::Conflict {
                    message: format!(
                        "someone else updated this incident (version {} is current, the edit was based on {base_version}); review and try again",
                        current.lock_version
                    ),
                    current: json(current),
                });
            }
            let mut next = current.clone();
            if let Some(st) = status {
                current
                    .status
                    .may_become(*st, *reopen)
                    .map_err(|message| OpError::Invalid {
                        message,
                        current: Some(json(current)),
                    })?;
                next.status = *st;
            }
            if let Some(t) = table {
                next.table = t.clone();
            }
            if let Some(k) = kind {
                next.kind = k.clone();
            }
            if let Some(sv) = severity {
                next.severity = *sv;
            }
            if let Some(n) = note {
                next.note = n.clone();
            }
            next.lock_version += 1;
            next.updated_at_ms = now;
            out.incident = Some(next);
        }
        Op::StructureUpdate {
            base_version,
            levels,
        } => {
            if s.lock_version != *base_version {
                return Err(OpError::Conflict {
                    message: format!(
                        "someone else updated the structure (version {} is current, the edit was based on {base_version}); review and try again",
                        s.lock_version
                    ),
                    current: json(s),
                });
            }
            let new = Structure {
                levels: levels.clone(),
                lock_version: s.lock_version + 1,
            };
            out.clock = Some(state.clock.rebase(s, &new, now));
            out.structure = Some(new);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structure::deepstack_template;

    fn state() -> EventState {
        let structure = Structure::new(deepstack_template());
        EventState {
            details: EventDetails {
                name: "Test".into(),
                starting_stack: 10_000,
                buy_in: 50,
                rebuy_chips: 0,
                rebuy_price: 0,
                addon_chips: 0,
                addon_price: 0,
            },
            clock: ClockState::initial(&structure, 0),
            structure,
            stats: Stats {
                entries: 3,
                players_remaining: 3,
                ..Stats::default()
            },
        }
    }

    fn actor(role: Role) -> Actor {
        Actor {
            operator_id: "op-1".into(),
            name: "Ana".into(),
            device: "laptop-7".into(),
            role,
        }
    }

    fn run(
        op: Op,
        role: Role,
        st: &EventState,
        inc: Option<&Incident>,
    ) -> Result<ChangeRecords, OpError> {
        let a = actor(role);
        apply(
            &op,
            st,
            &ApplyContext {
                actor: &a,
                now_ms: 1_000,
                incident: inc,
                new_incident_id: "inc-1".into(),
            },
        )
    }

    #[test]
    fn op_names_are_the_public_ones() {
        let op: Op =
            serde_json::from_str(r#"{"type":"clock.adjust","delta_ms":-300000}"#).expect("parses");
        assert_eq!(op, Op::ClockAdjust { delta_ms: -300_000 });
        let op: Op = serde_json::from_str(r#"{"type":"stats.bust"}"#).expect("parses");
        assert_eq!(op, Op::StatsBust { count: 1 });
        let err = serde_json::from_str::<Op>(r#"{"type":"clock.explode"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
        assert!(serde_json::from_str::<Op>(r#"{"type":"stats.bust","count":-2}"#).is_err());
    }

    #[test]
    fn dealers_report_but_do_not_run_the_clock() {
        let st = state();
        let err = run(
            Op::ClockAdjust { delta_ms: 60_000 },
            Role::Dealer,
            &st,
            None,
        )
        .unwrap_err();
        assert_eq!(err.code(), "forbidden");
        assert!(run(Op::StatsBust { count: 1 }, Role::Dealer, &st, None).is_ok());
    }

    #[test]
    fn busts_never_take_players_below_zero() {
        let st = state();
        let err = run(Op::StatsBust { count: 4 }, Role::Dealer, &st, None).unwrap_err();
        assert_eq!(err.code(), "invalid");
        assert!(err.current().is_some());
        let ok = run(Op::StatsBust { count: 3 }, Role::Dealer, &st, None).expect("applies");
        assert_eq!(ok.stats.map(|s| s.players_remaining), Some(0));
    }

    #[test]
    fn a_stale_incident_edit_gets_the_current_record() {
        let st = state();
        let created = run(
            Op::IncidentCreate {
                table: "12".into(),
                kind: "misdeal".into(),
                severity: Severity::Low,
                note: "'; DROP TABLE incidents; --".into(),
            },
            Role::Dealer,
            &st,
            None,
        )
        .expect("creates")
        .incident
        .expect("incident");
        assert_eq!(created.lock_version, 1);
        let edit = |base| Op::IncidentUpdate {
            incident_id: "inc-1".into(),
            base_version: base,
            table: None,
            kind: None,
            severity: None,
            note: Some("seen".into()),
            status: Some(IncidentStatus::Acknowledged),
            reopen: false,
        };
        let next = run(edit(1), Role::Dealer, &st, Some(&created))
            .expect("applies")
            .incident
            .expect("incident");
        assert_eq!(next.lock_version, 2);
        let err = run(edit(1), Role::Dealer, &st, Some(&next)).unwrap_err();
        assert_eq!(err.code(), "conflict");
        assert_eq!(
            err.current().and_then(|c| c["lock_version"].as_u64()),
            Some(2)
        );
        let err = run(edit(1), Role::Dealer, &st, None).unwrap_err();
        assert_eq!(err.code(), "not_found");
    }

    #[test]
    fn structure_edits_are_optimistic_and_validated() {
        let st = state();
        let ok = run(
            Op::StructureUpdate {
                base_version: 1,
                levels: vec![Level::play(5, 10, 0, 15)],
            },
            Role::Coordinator,
            &st,
            None,
        )
        .expect("applies");
        assert_eq!(ok.structure.map(|s| s.lock_version), Some(2));
        assert_eq!(ok.clock.map(|c| c.remaining_ms), Some(15 * 60_000));
        let stale = run(
            Op::StructureUpdate {
                base_version: 0,
                levels: vec![Level::play(5, 10, 0, 15)],
            },
            Role::Coordinator,
            &st,
            None,
        );
        assert_eq!(stale.unwrap_err().code(), "conflict");
        let bad = run(
            Op::StructureUpdate {
                base_version: 1,
                levels: vec![],
            },
            Role::Coordinator,
            &st,
            None,
        );
        assert_eq!(bad.unwrap_err().code(), "invalid");
    }

    #[test]
    fn op_ids_are_bounded_printable_ascii() {
        assert!(validate_op_id("0b6f3c2e-1f2a-4d9b-9a57-3e1f6a8e9d10").is_ok());
        assert!(validate_op_id("").is_err());
        assert!(validate_op_id("has space").is_err());
        assert!(validate_op_id(&"x".repeat(101)).is_err());
    }
}
