//! Group commit: a batch of writes in one `BEGIN IMMEDIATE` transaction,
//! each op in its own savepoint so a failing op rolls back alone. What the
//! batch has to say (answers, then changes) leaves only after `COMMIT`
//! returns; if it fails, every write is answered with the error and no
//! change is broadcast, so nothing the store lost is ever reported applied.

use std::collections::HashMap;
use std::sync::RwLock;

use pitboss_core::ops::Actor;
use pitboss_core::protocol::EventSummary;
use rusqlite::TransactionBehavior;
use tokio::sync::oneshot;

use super::{apply, internal, OpCmd, OpOutcome, WriteCmd, Writer};
use crate::auth::Session;
use crate::error::ApiError;
use crate::fanout::Outgoing;
use crate::store;
use crate::time::Horizon;

/// The answer to one write, held until its batch's commit is known.
enum Reply {
    Op(
        oneshot::Sender<Result<OpOutcome, ApiError>>,
        Result<OpOutcome, ApiError>,
    ),
    Event(
        oneshot::Sender<Result<EventSummary, ApiError>>,
        Result<EventSummary, ApiError>,
    ),
    /// With the session to add to the in-memory map once it is stored.
    Session(
        oneshot::Sender<Result<(), ApiError>>,
        Result<(), ApiError>,
        Option<(String, Actor, i64)>,
    ),
    /// With the devices whose sessions to mark revoked once it is stored.
    Revoke(
        oneshot::Sender<Result<i64, ApiError>>,
        Result<i64, ApiError>,
        Vec<String>,
    ),
}

impl Reply {
    /// The commit held: the answer computed in the transaction goes out,
    /// after what it changed in memory.
    fn send(self, sessions: &RwLock<HashMap<String, Session>>) {
        match self {
            Reply::Op(tx, r) => drop(tx.send(r)),
            Reply::Event(tx, r) => drop(tx.send(r)),
            Reply::Session(tx, r, add) => {
                if let Some((hash, actor, since_ms)) = add {
                    if let Ok(mut map) = sessions.write() {
                        map.insert(
                            hash,
                            Session {
                                actor,
                                revoked: false,
                                since_ms,
                            },
                        );
                    }
                }
                drop(tx.send(r));
            }
            Reply::Revoke(tx, r, operator_ids) => {
                // Marked before the answer leaves, so by the time the
                // caller closes the device's sockets no request with its
                // token gets through.
                if r.is_ok() {
                    for id in &operator_ids {
                        crate::auth::mark_revoked(sessions, id);
                    }
                }
                drop(tx.send(r));
            }
        }
    }

    /// The commit failed: whatever was computed is not stored.
    fn fail(self, err: &ApiError) {
        match self {
            Reply::Op(tx, _) => drop(tx.send(Err(err.clone()))),
            Reply::Event(tx, _) => drop(tx.send(Err(err.clone()))),
            Reply::Session(tx, _, _) => drop(tx.send(Err(err.clone()))),
            Reply::Revoke(tx, _, _) => drop(tx.send(Err(err.clone()))),
        }
    }
}

/// Closes the horizon when dropped, on every path out of a commit: by then
/// the batch's frames are queued, or there are none.
struct Closing<'a>(&'a Horizon);

impl Drop for Closing<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl Writer {
    pub(super) fn commit(&mut self, cmds: Vec<WriteCmd>) {
        if cmds.is_empty() {
            return;
        }
        let horizon = self.horizon.clone();
        let now = horizon.open(&self.clock);
        let _closing = Closing(&horizon);
        let mut out = Outgoing::with_capacity(cmds.len());
        let mut tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                let err = internal(e);
                for cmd in cmds {
                    cmd.fail(err.clone());
                }
                return;
            }
        };
        for cmd in cmds {
            match cmd {
                WriteCmd::Op(c) => {
                    let result = run_op(&mut tx, &c, now, self.retention, &mut self.rows);
                    let result = result.map(|(outcome, change)| {
                        if let Some((seq, frame)) = change {
                            out.change(c.event_id.clone(), seq, frame);
                        }
                        outcome
                    });
                    out.answer(Reply::Op(c.reply, result));
                }
                WriteCmd::CreateEvent {
                    details,
                    levels,
                    reply,
                } => {
                    let r = apply::create_event(&tx, details, levels, now);
                    out.answer(Reply::Event(reply, r));
                }
                WriteCmd::Session {
                    token_hash,
                    actor,
                    address,
                    via,
                    reply,
                } => {
                    let new = store::NewSession {
                        token_hash: &token_hash,
                        actor: &actor,
                        address: &address,
                        via: via.as_str(),
                    };
                    let r = store::insert_session(&tx, &new, now).map_err(internal);
                    let add = r.is_ok().then_some((token_hash, actor, now));
                    out.answer(Reply::Session(reply, r, add));
                }
                WriteCmd::Revoke {
                    operator_ids,
                    settings,
                    reply,
                } => {
                    let r = operator_ids
                        .iter()
                        .try_for_each(|id| store::revoke_sessions(&tx, id, now).map(drop))
                        .and_then(|()| {
                            settings
                                .iter()
                                .try_for_each(|(k, v)| store::set_setting(&tx, k, v))
                        })
                        .map(|()| now)
                        .map_err(internal);
                    out.answer(Reply::Revoke(reply, r, operator_ids));
                }
                WriteCmd::Touch { operator_id, at_ms } => {
                    if let Err(e) = store::touch_session(&tx, &operator_id, at_ms) {
                        drop(internal(e));
                    }
                }
            }
        }
        if let Err(e) = tx.commit() {
            // Nothing of this batch is stored: nobody gets an ack for it,
            // and the rows it cached are not what the store holds.
            self.rows.clear();
            let err = internal(e);
            out.fail(|r| r.fail(&err));
            return;
        }
        self.checkpointer.committed();
        let committed = out.release(|r| r.send(&self.sessions));
        #[cfg(feature = "bench-polling")]
        if self.polling {
            // The subscribers get these from the store, at the next poll.
            return;
        }
        committed.broadcast(&mut self.fanout);
    }
}

/// One op inside its own savepoint, so that a failing op rolls back alone.
/// Returns the answer and, when accepted, the change's seq and frame; the
/// event's row as it now is replaces the cached one.
fn run_op(
    tx: &mut rusqlite::Transaction<'_>,
    c: &OpCmd,
    now: i64,
    retention: u64,
    rows: &mut HashMap<String, store::EventRow>,
) -> Result<(OpOutcome, Option<(u64, crate::fanout::Frame)>), ApiError> {
    let mut sp = tx.savepoint().map_err(internal)?;
    let (outcome, applied) = apply::apply_op(&mut sp, c, now, retention, rows)?;
    sp.commit().map_err(internal)?;
    Ok((
        outcome,
        applied.map(|(frame, row)| {
            let seq = row.seq;
            rows.insert(c.event_id.clone(), row);
            (seq, frame)
        }),
    ))
}
