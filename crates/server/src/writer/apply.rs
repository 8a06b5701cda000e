//! One op applied inside its savepoint: the exactly-once check, the state
//! it reads and writes inside the transaction, the change frame stored and
//! later broadcast byte for byte, and its audit row. Also the new event,
//! the other write that computes a state.

use std::collections::HashMap;

use pitboss_core::audit;
use pitboss_core::ops::{apply, ApplyContext, ChangeRecords, EventState, Op};
use pitboss_core::protocol::{AuditEntry, By, Change, EventSummary, OpAccepted, ServerMsg};
use pitboss_core::{ClockState, EventDetails, Incident, Level, Stats, Structure};
use rusqlite::Connection;

use super::{internal, OpCmd, OpOutcome};
use crate::error::ApiError;
use crate::fanout::Frame;
use crate::store::{self, EventRow};

/// A new event at seq 0, its clock at the first level, not running.
pub(super) fn create_event(
    tx: &rusqlite::Transaction<'_>,
    details: EventDetails,
    levels: Vec<Level>,
    now: i64,
) -> Result<EventSummary, ApiError> {
    let id = format!("ev-{}", crate::auth::random_hex(5));
    let structure = Structure::new(levels);
    let state = EventState {
        clock: ClockState::initial(&structure, now),
        stats: Stats::default().derive(&details),
        details,
        structure,
    };
    store::insert_event(tx, &id, &state, now)
        .map(|()| EventSummary {
            id: id.clone(),
            name: state.details.name.clone(),
            seq: 0,
            created_at_ms: now,
        })
        .map_err(internal)
}

/// The canonical text of an op, to tell a retry from a reuse of its op id.
fn op_request(event_id: &str, op: &Op) -> String {
    let op = serde_json::to_string(op).unwrap_or_default();
    format!("{event_id} {op}")
}

/// One op inside its savepoint. Returns the answer and, when accepted, the
/// frame to broadcast after the commit and the event's row as it now is.
pub(super) fn apply_op(
    tx: &mut rusqlite::Savepoint<'_>,
    c: &OpCmd,
    now: i64,
    retention: u64,
    rows: &HashMap<String, EventRow>,
) -> Result<(OpOutcome, Option<(Frame, EventRow)>), ApiError> {
    let request = op_request(&c.event_id, &c.op);
    if let Some(stored) = store::find_op(tx, &c.op_id).map_err(internal)? {
        if stored.request != request || stored.event_id != c.event_id {
            return Err(ApiError::invalid(format!(
                "op_id {} was already used for a different operation; generate a new op_id for each operation",
                c.op_id
            )));
        }
        let outcome: OpOutcome = serde_json::from_str(&stored.outcome).map_err(internal)?;
        return Ok((outcome, None));
    }
    let row = match rows.get(&c.event_id) {
        Some(row) => row.clone(),
        None => store::load_event(tx, &c.event_id)
            .map_err(internal)?
            .ok_or_else(|| ApiError::not_found(format!("no event {}", c.event_id)))?,
    };
    let incident = match c.op.incident_id() {
        Some(id) => store::load_incident(tx, &c.event_id, id).map_err(internal)?,
        None => None,
    };
    let ctx = ApplyContext {
        actor: &c.actor,
        now_ms: now,
        incident: incident.as_ref(),
        new_incident_id: format!("inc-{}", row.next_incident),
    };
    let (outcome, frame) = match apply(&c.op, &row.state, &ctx) {
        Ok(records) => {
            let seq = row.seq + 1;
            let mut next_incident = row.next_incident;
            write_records(tx, &c.event_id, &c.op, &records, &mut next_incident)?;
            let change = Change {
                event_id: c.event_id.clone(),
                seq,
                op_id: c.op_id.clone(),
                op: c.op.clone(),
                by: By {
                    operator_id: c.actor.operator_id.clone(),
                    name: c.actor.name.clone(),
                    device: c.actor.device.clone(),
                },
                at_ms: now,
                records: records.clone(),
            };
            let frame =
                serde_json::to_string(&ServerMsg::Change(Box::new(change))).map_err(internal)?;
            store::insert_change(tx, &c.event_id, seq, &c.op_id, &frame).map_err(internal)?;
            let entry = audit_entry(c, seq, now, &row.state, incident.as_ref(), &records);
            store::insert_audit(tx, &c.event_id, &entry).map_err(internal)?;
            store::bump_seq(tx, &c.event_id, seq, next_incident).map_err(internal)?;
            // Prune in steps of a tenth of the retention, not on every op.
            let slack = (retention / 10).max(1);
            let mut pruned_through = row.pruned_through;
            if seq > row.pruned_through + retention + slack {
                pruned_through = seq - retention;
                store::prune_changes(tx, &c.event_id, pruned_through).map_err(internal)?;
            }
            let mut state = row.state;
            records.replace_in(&mut state.clock, &mut state.stats, &mut state.structure);
            let row = EventRow {
                state,
                seq,
                pruned_through,
                next_incident,
            };
            let outcome = OpOutcome::Accepted(OpAccepted {
                op_id: c.op_id.clone(),
                seq,
                result: records,
            });
            (outcome, Some((Frame::from(frame), row)))
        }
        Err(e) => {
            let api = ApiError::from(e);
            let outcome = OpOutcome::Rejected {
                status: api.status.as_u16(),
                body: api.body,
            };
            (outcome, None)
        }
    };
    let text = serde_json::to_string(&outcome).map_err(internal)?;
    store::insert_op(tx, &c.op_id, &c.event_id, &request, &text, now).map_err(internal)?;
    Ok((outcome, frame))
}

/// The audit row of an accepted op: the records it touched before and
/// after, and the sentence the floor reads.
fn audit_entry(
    c: &OpCmd,
    seq: u64,
    now: i64,
    before: &EventState,
    incident: Option<&Incident>,
    after: &ChangeRecords,
) -> AuditEntry {
    let was = ChangeRecords {
        clock: after.clock.map(|_| before.clock),
        stats: after.stats.map(|_| before.stats),
        structure: after.structure.as_ref().map(|_| before.structure.clone()),
        incident: incident.cloned(),
    };
    let summary = audit::describe(
        &c.op,
        &before.clock,
        &before.structure,
        &before.stats,
        incident,
        after,
        now,
    );
    AuditEntry {
        seq,
        op_id: c.op_id.clone(),
        at_ms: now,
        operator_id: c.actor.operator_id.clone(),
        name: c.actor.name.clone(),
        device: c.actor.device.clone(),
        role: c.actor.role,
        address: c.address.clone(),
        op: c.op.clone(),
        before: serde_json::to_value(&was).unwrap_or(serde_json::Value::Null),
        after: serde_json::to_value(after).unwrap_or(serde_json::Value::Null),
        summary,
        incident_id: after.incident.as_ref().map(|i| i.id.clone()),
    }
}

fn write_records(
    tx: &Connection,
    event_id: &str,
    op: &Op,
    r: &ChangeRecords,
    next_incident: &mut u64,
) -> Result<(), ApiError> {
    if let Some(c) = &r.clock {
        store::save_clock(tx, event_id, c).map_err(internal)?;
    }
    if let Some(s) = &r.stats {
        store::save_stats(tx, event_id, s).map_err(internal)?;
    }
    if let Some(s) = &r.structure {
        store::save_structure(tx, event_id, s).map_err(internal)?;
    }
    if let Some(i) = &r.incident {
        match op {
            Op::IncidentUpdate { base_version, .. } => {
                if !store::update_incident(tx, event_id, i, *base_version).map_err(internal)? {
                    return Err(ApiError::internal("incident changed under the write lock"));
                }
            }
            _ => {
                store::insert_incident(tx, event_id, i).map_err(internal)?;
                *next_incident += 1;
            }
        }
    }
    Ok(())
}
