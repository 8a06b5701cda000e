//! The writer: one task that owns the store connection and the subscriber
//! registry, and through which every change and every subscription passes.
//!
//! Why one: it makes the order of changes the order of this loop (rule 1),
//! makes each read-modify-write trivially atomic (rule 3), and lets a
//! subscription be registered at an exact point of that order, so a
//! subscriber gets every change after its `after` once, with no gap and no
//! duplicate (rules 2 and 8).
//!
//! Group commit: the loop drains whatever commands queued while it worked
//! and runs the consecutive writes in one `BEGIN IMMEDIATE` transaction,
//! each op in its own savepoint. One fsync then covers many ops, which is
//! what makes `synchronous = FULL` affordable. Acks are sent only after the
//! commit, and broadcasts leave after it, in sequence order, with a
//! non-blocking `try_send` per subscriber: a subscriber whose queue is full
//! is cut off (it will resume) and never slows the writer or anyone else.
//!
//! Where it runs ([`Writer::start`]): with `synchronous = NORMAL`, where a
//! WAL commit is a write into the page cache (checkpoints happen on their
//! own thread, see [`store::Checkpointer`]), it is a task, and a short batch
//! of writes runs right on the runtime thread that woke it; a long batch or
//! a read of many rows (a replay, an audit export) leaves the runtime for
//! its duration. With `synchronous = FULL` every commit waits for an fsync,
//! so the loop is a thread of its own, as it always was before. Why the
//! task: as a thread, each op crossed threads twice (socket task -> writer,
//! writer -> every subscriber's task), each a wake of a sleeping thread, and
//! at 10 subscribers that was most of what Pitboss added to the bare
//! broadcast floor.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::ws::{CloseFrame, Utf8Bytes};
use pitboss_core::audit;
use pitboss_core::ops::{apply, Actor, ApplyContext, ChangeRecords, EventState, Op};
use pitboss_core::protocol::{
    AuditEntry, By, Change, DeviceInfo, ErrorBody, EventSnapshotState, EventSummary, OpAccepted,
    ServerMsg,
};
use pitboss_core::{ClockState, EventDetails, Incident, Level, Stats, Structure};
use rusqlite::{Connection, TransactionBehavior};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use tokio_util::sync::CancellationToken;

use crate::auth::{Session, Via};
use crate::error::ApiError;
use crate::store::{self, EventRow};
use crate::time::{Horizon, ServerClock};

/// A text frame shared by every subscriber it goes to: a change is
/// serialized once however many screens receive it, and cloning it bumps
/// one reference count.
///
/// One pointer rather than the text's own handle (four words), because it
/// sizes every connection's queue: the queue allocates its first 32 slots
/// when the connection opens, so each word of [`Outbound`] costs 256 bytes
/// per idle screen (with the handle inline, 1.3 KiB of the 13 KiB each idle
/// connection cost at 5,000 connections).
#[derive(Debug, Clone)]
pub struct Frame(Arc<Utf8Bytes>);

impl Frame {
    /// The text to write, sharing the frame's bytes.
    pub fn text(&self) -> Utf8Bytes {
        Utf8Bytes::clone(&self.0)
    }
}

impl From<String> for Frame {
    fn from(s: String) -> Frame {
        Frame(Arc::new(Utf8Bytes::from(s)))
    }
}

/// What a connection's send queue carries: two words (see [`Frame`]).
#[derive(Debug)]
pub enum Outbound {
    /// One frame, shared by every subscriber it goes to (serialized once).
    Frame(Frame),
    /// The catch-up of a subscription (snapshot or replay, then `subscribed`),
    /// queued as one item so that a long replay cannot overflow the queue.
    Batch(Box<Vec<Frame>>),
    /// Close the socket with this code and reason.
    Close(Box<CloseFrame>),
    /// A WebSocket Ping: the peer's pong (or anything else it sends) proves
    /// the connection is alive.
    Ping,
}

impl Outbound {
    /// A close frame with this code and reason.
    pub fn close(code: u16, reason: &str) -> Outbound {
        Outbound::Close(Box::new(CloseFrame {
            code,
            reason: reason.into(),
        }))
    }
}

/// A connection's registration for one event's changes.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub conn_id: u64,
    pub tx: mpsc::Sender<Outbound>,
    /// Cancelled by the writer when this connection's queue overflows.
    pub kill: CancellationToken,
}

/// The answer to an op, stored with its op id and returned to every retry.
/// Short-lived (one per op, answered at once): not worth boxing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum OpOutcome {
    Accepted(OpAccepted),
    Rejected {
        status: u16,
        #[serde(flatten)]
        body: ErrorBody,
    },
}

pub struct OpCmd {
    pub event_id: String,
    pub op_id: String,
    pub op: Op,
    pub actor: Actor,
    /// The source address it came from, for the audit trail.
    pub address: String,
    pub reply: oneshot::Sender<Result<OpOutcome, ApiError>>,
}

pub struct Snapshot {
    pub event_id: String,
    pub seq: u64,
    pub server_time_ms: i64,
    pub state: EventSnapshotState,
}

pub enum Cmd {
    Op(OpCmd),
    CreateEvent {
        details: EventDetails,
        levels: Vec<Level>,
        reply: oneshot::Sender<Result<EventSummary, ApiError>>,
    },
    Session {
        token_hash: String,
        actor: Actor,
        address: String,
        via: Via,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    /// Revokes a device: its sessions are marked in the store and, once
    /// that commits, in the in-memory map every request checks.
    Revoke {
        operator_id: String,
        /// A setting to store with the revoke: the long join code that
        /// replaced the one the device knew.
        setting: Option<(String, String)>,
        reply: oneshot::Sender<Result<i64, ApiError>>,
    },
    /// Records when a device was last heard from (throttled by the caller).
    Touch {
        operator_id: String,
        at_ms: i64,
    },
    Devices {
        reply: oneshot::Sender<Result<Vec<DeviceInfo>, ApiError>>,
    },
    Audit {
        event_id: String,
        incident_id: Option<String>,
        limit: u32,
        reply: oneshot::Sender<Result<Vec<AuditEntry>, ApiError>>,
    },
    ListEvents {
        reply: oneshot::Sender<Result<Vec<EventSummary>, ApiError>>,
    },
    Snapshot {
        event_id: String,
        reply: oneshot::Sender<Result<Snapshot, ApiError>>,
    },
    Changes {
        event_id: String,
        after: u64,
        reply: oneshot::Sender<Result<Vec<String>, ApiError>>,
    },
    Subscribe {
        event_id: String,
        after: Option<u64>,
        sub: Subscriber,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    Unsubscribe {
        event_id: String,
        conn_id: u64,
    },
    Disconnect {
        conn_id: u64,
    },
    /// Polling delivery only ([`Delivery::Poll`]): read the changes stored
    /// since the last poll and send them to the subscribers.
    Poll,
}

/// How committed changes reach the subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// At once, from memory, right after the commit (rule 12). What venues run.
    Push,
    /// Read back from the store on a timer, as a database-backed pub/sub
    /// adapter does. Kept only as the benchmark's reference for what polling
    /// costs; pongs then carry no `changes_through_ms`.
    Poll,
}

impl Cmd {
    fn is_write(&self) -> bool {
        matches!(
            self,
            Cmd::Op(_)
                | Cmd::CreateEvent { .. }
                | Cmd::Session { .. }
                | Cmd::Revoke { .. }
                | Cmd::Touch { .. }
        )
    }
}

/// Most commands run in one group commit.
const MAX_BATCH: usize = 512;
/// Most commands a batch may have to run on the runtime thread: at ~0.1 ms
/// an op, a worker is held for a few milliseconds at most. A bigger batch
/// (a storm of ops) goes to the blocking pool, where its length hurts no
/// other task.
const MAX_INLINE_BATCH: usize = 32;

pub struct Writer {
    conn: Connection,
    clock: ServerClock,
    /// Open while a batch is stamped but its frames are not yet queued; read
    /// by pongs (see [`Horizon`]).
    horizon: Arc<Horizon>,
    delivery: Delivery,
    /// Polling delivery: the last seq sent to the subscribers, per event.
    delivered: HashMap<String, u64>,
    /// Changes kept per event for resumes; older ones need a snapshot.
    retention: u64,
    subs: HashMap<String, Vec<Subscriber>>,
    sessions: Arc<RwLock<HashMap<String, Session>>>,
    /// Each event's row as last committed by this thread. The writer is the
    /// store's only writer, so this is exact; it saves reading and parsing
    /// the row (structure and details JSON) on every op, which was the
    /// largest part of the write path at 50 ops/s. Emptied when a commit
    /// fails, since then the store kept the old rows.
    rows: HashMap<String, EventRow>,
    /// Told of each commit, so the WAL is copied back off this loop.
    checkpointer: store::Checkpointer,
}

/// Where the writer loop runs (see [`Writer::start`]).
pub enum WriterTask {
    Task(tokio::task::JoinHandle<()>),
    Thread(std::thread::JoinHandle<()>),
}

impl WriterTask {
    /// Waits for the loop to end (after every sender is gone), off the
    /// runtime's threads.
    pub async fn join(self) {
        match self {
            WriterTask::Task(t) => drop(t.await),
            WriterTask::Thread(t) => drop(tokio::task::spawn_blocking(move || t.join()).await),
        }
    }
}

/// `first` and whatever else is queued now, up to [`MAX_BATCH`].
fn batch(first: Cmd, rx: &mut mpsc::Receiver<Cmd>) -> Vec<Cmd> {
    let mut cmds = vec![first];
    while cmds.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(c) => cmds.push(c),
            Err(_) => break,
        }
    }
    cmds
}

/// Whether a batch is short and cannot block, so it may run on the runtime
/// thread (with `synchronous = NORMAL`, see the module doc). Reads are
/// never: a replay, an audit page or a poll's read-back may be thousands of
/// rows.
fn runs_inline(cmds: &[Cmd]) -> bool {
    cmds.len() <= MAX_INLINE_BATCH
        && cmds
            .iter()
            .all(|c| c.is_write() || matches!(c, Cmd::Unsubscribe { .. } | Cmd::Disconnect { .. }))
}

enum Reply {
    Op(
        oneshot::Sender<Result<OpOutcome, ApiError>>,
        Result<OpOutcome, ApiError>,
    ),
    Event(
        oneshot::Sender<Result<EventSummary, ApiError>>,
        Result<EventSummary, ApiError>,
    ),
    Session(
        oneshot::Sender<Result<(), ApiError>>,
        Result<(), ApiError>,
        Option<(String, Actor)>,
    ),
    Revoke(
        oneshot::Sender<Result<i64, ApiError>>,
        Result<i64, ApiError>,
        String,
    ),
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!("store error: {e}");
    ApiError::internal(format!("store error: {e}"))
}

impl Writer {
    pub fn new(
        conn: Connection,
        clock: ServerClock,
        horizon: Arc<Horizon>,
        delivery: Delivery,
        retention: u64,
        sessions: Arc<RwLock<HashMap<String, Session>>>,
        checkpointer: store::Checkpointer,
    ) -> Writer {
        Writer {
            checkpointer,
            conn,
            clock,
            horizon,
            delivery,
            delivered: HashMap::new(),
            retention: retention.max(1),
            subs: HashMap::new(),
            sessions,
            rows: HashMap::new(),
        }
    }

    /// Starts the loop where the store's setting says it belongs (see the
    /// module doc): on the runtime when commits do not wait for the disk, on
    /// a thread of its own when each one waits for an fsync. It runs until
    /// every sender is dropped, then closes the store.
    pub fn start(self, rx: mpsc::Receiver<Cmd>, on_runtime: bool) -> std::io::Result<WriterTask> {
        if on_runtime {
            return Ok(WriterTask::Task(tokio::spawn(self.run_on_runtime(rx))));
        }
        let t = std::thread::Builder::new()
            .name("pitboss-writer".into())
            .spawn(move || self.run_on_thread(rx))?;
        Ok(WriterTask::Thread(t))
    }

    /// With `synchronous = FULL`: every commit waits for its fsync, which
    /// must not hold a runtime thread, and the loop being a thread of its
    /// own keeps it going at full speed under a storm of ops (one comparison,
    /// 3 runs each, of an earlier runtime variant: FULL's contended ops/s
    /// 29,061 -> 27,542 and ack p99 14.3 -> 18.2 ms; repeated invocations of
    /// the same binary varied by ~2,000 ops/s, so take it as a direction).
    fn run_on_thread(mut self, mut rx: mpsc::Receiver<Cmd>) {
        while let Some(first) = rx.blocking_recv() {
            let cmds = batch(first, &mut rx);
            self.process(cmds);
        }
        tracing::info!("writer stopped; store closed");
    }

    /// With `synchronous = NORMAL`: a short batch of ops and bookkeeping runs
    /// right here, on the runtime thread that woke the loop; a long one, or
    /// one that reads many rows, leaves the runtime with the queue and stays
    /// off it while more is queued.
    async fn run_on_runtime(mut self, mut rx: mpsc::Receiver<Cmd>) {
        while let Some(first) = rx.recv().await {
            let cmds = batch(first, &mut rx);
            if runs_inline(&cmds) {
                self.process(cmds);
                continue;
            }
            // The writer and its queue go to the blocking pool and stay there
            // while more keeps coming (a storm), then come back. Nothing else
            // touches them meanwhile, so the order is kept.
            let (mut writer, mut queue) = (self, rx);
            match tokio::task::spawn_blocking(move || {
                let mut cmds = cmds;
                loop {
                    writer.process(cmds);
                    match queue.try_recv() {
                        Ok(c) => cmds = batch(c, &mut queue),
                        Err(_) => break,
                    }
                }
                (writer, queue)
            })
            .await
            {
                Ok((w, q)) => (self, rx) = (w, q),
                Err(e) => {
                    tracing::error!("the writer failed: {e}; the server stops taking changes");
                    return;
                }
            }
        }
        // Closing the store may checkpoint and sync: not on a runtime thread.
        drop(tokio::task::spawn_blocking(move || drop(self)).await);
        tracing::info!("writer stopped; store closed");
    }

    fn process(&mut self, cmds: Vec<Cmd>) {
        let mut writes = Vec::new();
        for cmd in cmds {
            if cmd.is_write() {
                writes.push(cmd);
            } else {
                // A read or a subscription must see every write queued
                // before it: commit those first.
                self.commit(std::mem::take(&mut writes));
                self.read(cmd);
            }
        }
        self.commit(writes);
    }

    fn commit(&mut self, cmds: Vec<Cmd>) {
        if cmds.is_empty() {
            return;
        }
        let mut replies = Vec::with_capacity(cmds.len());
        let mut broadcasts: Vec<(String, Frame)> = Vec::new();
        // Closed when this function returns, on every path: by then the
        // batch's frames are queued (or there are none).
        struct Closing<'a>(&'a Horizon);
        impl Drop for Closing<'_> {
            fn drop(&mut self) {
                self.0.close();
            }
        }
        let horizon = self.horizon.clone();
        let now = horizon.open(&self.clock);
        let _closing = Closing(&horizon);
        let retention = self.retention;
        let tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                let err = internal(e);
                for cmd in cmds {
                    fail(cmd, err.clone());
                }
                return;
            }
        };
        let mut tx = tx;
        for cmd in cmds {
            match cmd {
                Cmd::Op(c) => {
                    let result = match tx.savepoint() {
                        Ok(mut sp) => {
                            let r = apply_op(&mut sp, &c, now, retention, &self.rows);
                            match r {
                                Ok((outcome, applied)) => match sp.commit() {
                                    Ok(()) => {
                                        if let Some((f, row)) = applied {
                                            broadcasts.push((c.event_id.clone(), f));
                                            self.rows.insert(c.event_id.clone(), row);
                                        }
                                        Ok(outcome)
                                    }
                                    Err(e) => Err(internal(e)),
                                },
                                Err(e) => Err(e),
                            }
                        }
                        Err(e) => Err(internal(e)),
                    };
                    replies.push(Reply::Op(c.reply, result));
                }
                Cmd::CreateEvent {
                    details,
                    levels,
                    reply,
                } => {
                    let id = format!("ev-{}", crate::auth::random_hex(5));
                    let structure = Structure::new(levels);
                    let state = EventState {
                        clock: ClockState::initial(&structure, now),
                        stats: Stats::default().derive(&details),
                        details,
                        structure,
                    };
                    let r = store::insert_event(&tx, &id, &state, now)
                        .map(|()| EventSummary {
                            id: id.clone(),
                            name: state.details.name.clone(),
                            seq: 0,
                            created_at_ms: now,
                        })
                        .map_err(internal);
                    replies.push(Reply::Event(reply, r));
                }
                Cmd::Session {
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
                    let add = r.is_ok().then_some((token_hash, actor));
                    replies.push(Reply::Session(reply, r, add));
                }
                Cmd::Revoke {
                    operator_id,
                    setting,
                    reply,
                } => {
                    let r = store::revoke_sessions(&tx, &operator_id, now)
                        .and_then(|_| match &setting {
                            Some((k, v)) => store::set_setting(&tx, k, v),
                            None => Ok(()),
                        })
                        .map(|()| now)
                        .map_err(internal);
                    replies.push(Reply::Revoke(reply, r, operator_id));
                }
                Cmd::Touch { operator_id, at_ms } => {
                    if let Err(e) = store::touch_session(&tx, &operator_id, at_ms) {
                        drop(internal(e));
                    }
                }
                other => fail(other, ApiError::internal("misrouted read")),
            }
        }
        if let Err(e) = tx.commit() {
            // Nothing of this batch is stored: nobody gets an ack for it,
            // and the rows it cached are not what the store holds.
            self.rows.clear();
            let err = internal(e);
            for r in replies {
                match r {
                    Reply::Op(tx, _) => drop(tx.send(Err(err.clone()))),
                    Reply::Event(tx, _) => drop(tx.send(Err(err.clone()))),
                    Reply::Session(tx, _, _) => drop(tx.send(Err(err.clone()))),
                    Reply::Revoke(tx, _, _) => drop(tx.send(Err(err.clone()))),
                }
            }
            return;
        }
        self.checkpointer.committed();
        for r in replies {
            match r {
                Reply::Op(tx, r) => drop(tx.send(r)),
                Reply::Event(tx, r) => drop(tx.send(r)),
                Reply::Session(tx, r, add) => {
                    if let Some((hash, actor)) = add {
                        if let Ok(mut map) = self.sessions.write() {
                            map.insert(
                                hash,
                                Session {
                                    actor,
                                    revoked: false,
                                },
                            );
                        }
                    }
                    drop(tx.send(r));
                }
                Reply::Revoke(tx, r, operator_id) => {
                    // Marked before the answer leaves, so by the time the
                    // caller closes the device's sockets no request with its
                    // token gets through.
                    if r.is_ok() {
                        crate::auth::mark_revoked(&self.sessions, &operator_id);
                    }
                    drop(tx.send(r));
                }
            }
        }
        if self.delivery == Delivery::Push {
            for (event_id, frame) in broadcasts {
                self.broadcast(&event_id, frame);
            }
        }
    }

    /// Polling delivery: what each followed event stored since the last poll.
    fn poll(&mut self) {
        let events: Vec<String> = self.subs.keys().cloned().collect();
        for event_id in events {
            let Ok(Some((seq, _))) = store::event_seq(&self.conn, &event_id) else {
                continue;
            };
            let from = *self.delivered.get(&event_id).unwrap_or(&seq);
            if seq <= from {
                continue;
            }
            match store::changes_after(&self.conn, &event_id, from) {
                Ok(frames) => {
                    for f in frames {
                        self.broadcast(&event_id, Frame::from(f));
                    }
                    self.delivered.insert(event_id, seq);
                }
                Err(e) => drop(internal(e)),
            }
        }
    }

    fn broadcast(&mut self, event_id: &str, frame: Frame) {
        let Some(subs) = self.subs.get_mut(event_id) else {
            return;
        };
        subs.retain(|s| match s.tx.try_send(Outbound::Frame(frame.clone())) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    conn = s.conn_id,
                    event_id,
                    "subscriber too slow; disconnecting it"
                );
                s.kill.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    fn read(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::ListEvents { reply } => {
                drop(reply.send(store::list_events(&self.conn).map_err(internal)));
            }
            Cmd::Snapshot { event_id, reply } => {
                drop(reply.send(self.snapshot(&event_id)));
            }
            Cmd::Changes {
                event_id,
                after,
                reply,
            } => {
                let r = match store::event_seq(&self.conn, &event_id) {
                    Ok(None) => Err(ApiError::not_found(format!("no event {event_id}"))),
                    Ok(Some((seq, pruned))) => {
                        if after < pruned || after > seq {
                            Err(ApiError::gone(format!(
                                "changes after {after} are not available (kept: {} to {seq}); take a snapshot",
                                pruned + 1
                            )))
                        } else {
                            store::changes_after(&self.conn, &event_id, after).map_err(internal)
                        }
                    }
                    Err(e) => Err(internal(e)),
                };
                drop(reply.send(r));
            }
            Cmd::Subscribe {
                event_id,
                after,
                sub,
                reply,
            } => {
                let r = self.subscribe(&event_id, after, sub);
                drop(reply.send(r));
            }
            Cmd::Unsubscribe { event_id, conn_id } => {
                if let Some(v) = self.subs.get_mut(&event_id) {
                    v.retain(|s| s.conn_id != conn_id);
                }
            }
            Cmd::Disconnect { conn_id } => {
                for v in self.subs.values_mut() {
                    v.retain(|s| s.conn_id != conn_id);
                }
                self.subs.retain(|_, v| !v.is_empty());
            }
            Cmd::Poll => self.poll(),
            // Writes are never routed here by `run`; keep the compiler honest.
            Cmd::Op(c) => drop(c.reply.send(Err(ApiError::internal("misrouted op")))),
            Cmd::CreateEvent { reply, .. } => {
                drop(reply.send(Err(ApiError::internal("misrouted create"))))
            }
            Cmd::Session { reply, .. } => {
                drop(reply.send(Err(ApiError::internal("misrouted session"))))
            }
            Cmd::Revoke { reply, .. } => {
                drop(reply.send(Err(ApiError::internal("misrouted revoke"))))
            }
            Cmd::Touch { .. } => {}
            Cmd::Devices { reply } => {
                drop(reply.send(store::list_devices(&self.conn).map_err(internal)));
            }
            Cmd::Audit {
                event_id,
                incident_id,
                limit,
                reply,
            } => {
                let r = match store::event_seq(&self.conn, &event_id) {
                    Ok(None) => Err(ApiError::not_found(format!("no event {event_id}"))),
                    Ok(Some(_)) => {
                        store::list_audit(&self.conn, &event_id, incident_id.as_deref(), limit)
                            .map_err(internal)
                    }
                    Err(e) => Err(internal(e)),
                };
                drop(reply.send(r));
            }
        }
    }

    fn snapshot(&self, event_id: &str) -> Result<Snapshot, ApiError> {
        let row = store::load_event(&self.conn, event_id)
            .map_err(internal)?
            .ok_or_else(|| ApiError::not_found(format!("no event {event_id}")))?;
        let incidents = store::load_incidents(&self.conn, event_id).map_err(internal)?;
        Ok(Snapshot {
            event_id: event_id.to_string(),
            seq: row.seq,
            server_time_ms: self.clock.now_ms(),
            state: EventSnapshotState {
                event: row.state.details,
                clock: row.state.clock,
                structure: row.state.structure,
                stats: row.state.stats,
                incidents,
            },
        })
    }

    fn subscribe(
        &mut self,
        event_id: &str,
        after: Option<u64>,
        sub: Subscriber,
    ) -> Result<(), ApiError> {
        let (seq, pruned) = store::event_seq(&self.conn, event_id)
            .map_err(internal)?
            .ok_or_else(|| ApiError::not_found(format!("no event {event_id}")))?;
        let mut frames: Vec<Frame> = Vec::new();
        match after {
            Some(n) if n >= pruned && n <= seq => {
                for f in store::changes_after(&self.conn, event_id, n).map_err(internal)? {
                    frames.push(f.into());
                }
            }
            _ => {
                let s = self.snapshot(event_id)?;
                let msg = ServerMsg::Snapshot {
                    event_id: s.event_id,
                    seq: s.seq,
                    server_time_ms: s.server_time_ms,
                    state: Box::new(s.state),
                };
                frames.push(serde_json::to_string(&msg).map_err(internal)?.into());
            }
        }
        let done = ServerMsg::Subscribed {
            event_id: event_id.to_string(),
            seq,
        };
        frames.push(serde_json::to_string(&done).map_err(internal)?.into());
        match sub.tx.try_send(Outbound::Batch(Box::new(frames))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                sub.kill.cancel();
                return Err(ApiError::unavailable("connection queue is full"));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Ok(()),
        }
        // Polling: a subscriber joining an event nobody follows starts the
        // watermark at what its catch-up held (an old watermark would send
        // it those changes a second time); later polls send what came after.
        if self.delivery == Delivery::Poll && self.subs.get(event_id).is_none_or(Vec::is_empty) {
            self.delivered.insert(event_id.to_string(), seq);
        }
        let list = self.subs.entry(event_id.to_string()).or_default();
        list.retain(|s| s.conn_id != sub.conn_id);
        list.push(sub);
        Ok(())
    }
}

fn fail(cmd: Cmd, err: ApiError) {
    match cmd {
        Cmd::Op(c) => drop(c.reply.send(Err(err))),
        Cmd::CreateEvent { reply, .. } => drop(reply.send(Err(err))),
        Cmd::Session { reply, .. } => drop(reply.send(Err(err))),
        Cmd::Revoke { reply, .. } => drop(reply.send(Err(err))),
        Cmd::Devices { reply } => drop(reply.send(Err(err))),
        Cmd::Audit { reply, .. } => drop(reply.send(Err(err))),
        Cmd::Touch { .. } => {}
        Cmd::ListEvents { reply } => drop(reply.send(Err(err))),
        Cmd::Snapshot { reply, .. } => drop(reply.send(Err(err))),
        Cmd::Changes { reply, .. } => drop(reply.send(Err(err))),
        Cmd::Subscribe { reply, .. } => drop(reply.send(Err(err))),
        Cmd::Unsubscribe { .. } | Cmd::Disconnect { .. } | Cmd::Poll => {}
    }
}

/// The canonical text of an op, to tell a retry from a reuse of its op id.
fn op_request(event_id: &str, op: &Op) -> String {
    let op = serde_json::to_string(op).unwrap_or_default();
    format!("{event_id} {op}")
}

/// One op inside its savepoint. Returns the answer and, when accepted, the
/// frame to broadcast after the commit and the event's row as it now is.
fn apply_op(
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

/// The async side's handle to the writer thread.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Cmd>,
}

impl WriterHandle {
    pub fn new(tx: mpsc::Sender<Cmd>) -> WriterHandle {
        WriterHandle { tx }
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ApiError>>) -> Cmd,
    ) -> Result<T, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        rx.await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?
    }

    /// Queues an op and returns a receiver for its answer. Queuing is done
    /// before returning, so ops queued one after another apply in that order
    /// even if their answers are awaited concurrently.
    pub async fn queue_op(
        &self,
        event_id: String,
        op_id: String,
        op: Op,
        actor: Actor,
        address: String,
    ) -> Result<oneshot::Receiver<Result<OpOutcome, ApiError>>, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Op(OpCmd {
                event_id,
                op_id,
                op,
                actor,
                address,
                reply,
            }))
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        Ok(rx)
    }

    pub async fn op(
        &self,
        event_id: String,
        op_id: String,
        op: Op,
        actor: Actor,
        address: String,
    ) -> Result<OpOutcome, ApiError> {
        let rx = self.queue_op(event_id, op_id, op, actor, address).await?;
        rx.await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?
    }

    pub async fn create_event(
        &self,
        details: EventDetails,
        levels: Vec<Level>,
    ) -> Result<EventSummary, ApiError> {
        self.call(|reply| Cmd::CreateEvent {
            details,
            levels,
            reply,
        })
        .await
    }

    pub async fn add_session(
        &self,
        token_hash: String,
        actor: Actor,
        address: String,
        via: Via,
    ) -> Result<(), ApiError> {
        self.call(|reply| Cmd::Session {
            token_hash,
            actor,
            address,
            via,
            reply,
        })
        .await
    }

    /// Revokes a device; the server time the revoke was stored at.
    pub async fn revoke(
        &self,
        operator_id: String,
        setting: Option<(String, String)>,
    ) -> Result<i64, ApiError> {
        self.call(|reply| Cmd::Revoke {
            operator_id,
            setting,
            reply,
        })
        .await
    }

    /// Records a last-seen time if the queue has room; false if not.
    pub fn try_touch(&self, operator_id: String, at_ms: i64) -> bool {
        self.tx.try_send(Cmd::Touch { operator_id, at_ms }).is_ok()
    }

    pub async fn devices(&self) -> Result<Vec<DeviceInfo>, ApiError> {
        self.call(|reply| Cmd::Devices { reply }).await
    }

    pub async fn audit(
        &self,
        event_id: String,
        incident_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, ApiError> {
        self.call(|reply| Cmd::Audit {
            event_id,
            incident_id,
            limit,
            reply,
        })
        .await
    }

    pub async fn list_events(&self) -> Result<Vec<EventSummary>, ApiError> {
        self.call(|reply| Cmd::ListEvents { reply }).await
    }

    pub async fn snapshot(&self, event_id: String) -> Result<Snapshot, ApiError> {
        self.call(|reply| Cmd::Snapshot { event_id, reply }).await
    }

    pub async fn changes(&self, event_id: String, after: u64) -> Result<Vec<String>, ApiError> {
        self.call(|reply| Cmd::Changes {
            event_id,
            after,
            reply,
        })
        .await
    }

    pub async fn subscribe(
        &self,
        event_id: String,
        after: Option<u64>,
        sub: Subscriber,
    ) -> Result<(), ApiError> {
        self.call(|reply| Cmd::Subscribe {
            event_id,
            after,
            sub,
            reply,
        })
        .await
    }

    /// Polling delivery: read and send what was stored since the last poll.
    pub async fn poll(&self) {
        drop(self.tx.send(Cmd::Poll).await);
    }

    pub async fn unsubscribe(&self, event_id: String, conn_id: u64) {
        drop(self.tx.send(Cmd::Unsubscribe { event_id, conn_id }).await);
    }

    pub async fn disconnect(&self, conn_id: u64) {
        drop(self.tx.send(Cmd::Disconnect { conn_id }).await);
    }
}
