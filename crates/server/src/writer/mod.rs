//! The writer: one loop that owns the store connection and the subscriber
//! registry, and through which every change and every subscription passes.
//!
//! Why one: the order of changes is then the order of this loop (one
//! authority, one order), each read-modify-write is trivially atomic (it
//! reads the state it changes inside its own transaction), and a
//! subscription is registered at an exact point of that order, so a
//! subscriber gets every change after its catch-up once, with no gap and no
//! duplicate.
//!
//! Writes, reads and registry bookkeeping are separate commands
//! ([`WriteCmd`], [`ReadCmd`], [`FanoutCmd`]). The loop drains whatever queued while it worked and runs consecutive writes
//! in one `BEGIN IMMEDIATE` transaction, each op in its own savepoint
//! (`commit.rs`, `apply.rs`): one fsync then covers many ops, which is what
//! makes `synchronous = FULL` affordable. A read (`reads.rs`) first commits
//! the writes queued before it. Answers and broadcasts leave only after the
//! commit (`crate::fanout`).
//!
//! Where it runs ([`Writer::start`]): with `synchronous = NORMAL`, where a
//! WAL commit is a write into the page cache (checkpoints happen on their
//! own thread, see [`store::Checkpointer`]), it is a task, and a short batch
//! of writes runs right on the runtime thread that woke it, sparing each op
//! two wake-ups of sleeping threads (socket task to writer, writer to each
//! subscriber's task); a long batch or a read of many rows (a replay, an
//! audit export) leaves the runtime for its duration. With
//! `synchronous = FULL` every commit waits for an fsync, so the loop is a
//! thread of its own.

mod apply;
mod commit;
mod handle;
#[cfg(feature = "bench-polling")]
mod poll;
mod reads;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use pitboss_core::ops::{Actor, Op};
use pitboss_core::protocol::{
    AuditEntry, DeviceInfo, ErrorBody, EventSnapshotState, EventSummary, OpAccepted,
};
use pitboss_core::{EventDetails, Level};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::auth::{Session, Via};
use crate::error::ApiError;
use crate::fanout::{Registry, Subscriber};
use crate::store::{self, EventRow};
use crate::time::{Horizon, ServerClock};

pub use handle::WriterHandle;

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

/// One event's state as a reader sees it: what a snapshot sends.
pub struct EventSnapshot {
    pub event_id: String,
    pub seq: u64,
    pub server_time_ms: i64,
    pub state: EventSnapshotState,
}

/// What the writer loop is asked to do, in the order it was asked.
pub enum WriterCmd {
    Write(WriteCmd),
    Read(ReadCmd),
    /// Registry bookkeeping: it reads nothing from the store and writes
    /// nothing to it.
    Fanout(FanoutCmd),
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

/// A command that changes the store: consecutive ones share a transaction.
pub enum WriteCmd {
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
    /// Revokes devices: their sessions are marked in the store and, once
    /// that commits, in the in-memory map every request checks.
    Revoke {
        operator_ids: Vec<String>,
        /// Settings to store with the revoke: the long join codes that
        /// replaced the ones the devices knew.
        settings: Vec<(String, String)>,
        reply: oneshot::Sender<Result<i64, ApiError>>,
    },
    /// Records when a device was last heard from (throttled by the caller).
    Touch {
        operator_id: String,
        at_ms: i64,
    },
}

impl WriteCmd {
    /// Answers the command with an error without running it.
    fn fail(self, err: ApiError) {
        match self {
            WriteCmd::Op(c) => drop(c.reply.send(Err(err))),
            WriteCmd::CreateEvent { reply, .. } => drop(reply.send(Err(err))),
            WriteCmd::Session { reply, .. } => drop(reply.send(Err(err))),
            WriteCmd::Revoke { reply, .. } => drop(reply.send(Err(err))),
            WriteCmd::Touch { .. } => {}
        }
    }
}

/// A command that reads the store and changes nothing in it.
pub enum ReadCmd {
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
        reply: oneshot::Sender<Result<EventSnapshot, ApiError>>,
    },
    Changes {
        event_id: String,
        after: u64,
        reply: oneshot::Sender<Result<Vec<String>, ApiError>>,
    },
    /// Reads the catch-up, then registers the subscriber.
    Subscribe {
        event_id: String,
        after: Option<u64>,
        sub: Subscriber,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    /// Polling delivery only: reads the changes stored since the
    /// subscribers were last sent any, and sends them.
    #[cfg(feature = "bench-polling")]
    Poll,
}

pub enum FanoutCmd {
    Unsubscribe { event_id: String, conn_id: u64 },
    Disconnect { conn_id: u64 },
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
    /// Changes kept per event for resumes; older ones need a snapshot.
    retention: u64,
    fanout: Registry,
    sessions: Arc<RwLock<HashMap<String, Session>>>,
    /// Each event's row as last committed by this loop. The writer is the
    /// store's only writer, so this is exact; it saves reading and parsing
    /// the row (structure and details JSON) on every op. Emptied when a
    /// commit fails, since then the store kept the old rows.
    rows: HashMap<String, EventRow>,
    /// Told of each commit, so the WAL is copied back off this loop.
    checkpointer: store::Checkpointer,
    /// Changes reach subscribers by a poll of the store rather than at once
    /// after their commit: the benchmark's reference, never a venue's.
    #[cfg(feature = "bench-polling")]
    polling: bool,
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
fn batch(first: WriterCmd, rx: &mut mpsc::Receiver<WriterCmd>) -> Vec<WriterCmd> {
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
/// thread (with `synchronous = NORMAL`, see the module doc). A read never
/// is: a replay, an audit page or a poll's read-back may be thousands of
/// rows.
fn runs_inline(cmds: &[WriterCmd]) -> bool {
    cmds.len() <= MAX_INLINE_BATCH && !cmds.iter().any(|c| matches!(c, WriterCmd::Read(_)))
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
        retention: u64,
        sessions: Arc<RwLock<HashMap<String, Session>>>,
        checkpointer: store::Checkpointer,
    ) -> Writer {
        Writer {
            checkpointer,
            conn,
            clock,
            horizon,
            retention: retention.max(1),
            fanout: Registry::default(),
            sessions,
            rows: HashMap::new(),
            #[cfg(feature = "bench-polling")]
            polling: false,
        }
    }

    /// Starts the loop where the store's setting says it belongs (see the
    /// module doc): on the runtime when commits do not wait for the disk, on
    /// a thread of its own when each one waits for an fsync. It runs until
    /// every sender is dropped, then closes the store.
    pub fn start(
        self,
        rx: mpsc::Receiver<WriterCmd>,
        on_runtime: bool,
    ) -> std::io::Result<WriterTask> {
        if on_runtime {
            return Ok(WriterTask::Task(tokio::spawn(self.run_on_runtime(rx))));
        }
        let t = std::thread::Builder::new()
            .name("pitboss-writer".into())
            .spawn(move || self.run_on_thread(rx))?;
        Ok(WriterTask::Thread(t))
    }

    /// With `synchronous = FULL`: every commit waits for its fsync, which
    /// must not hold a runtime thread; a thread of its own also keeps the
    /// loop at full speed under a storm of ops.
    fn run_on_thread(mut self, mut rx: mpsc::Receiver<WriterCmd>) {
        while let Some(first) = rx.blocking_recv() {
            let cmds = batch(first, &mut rx);
            self.process(cmds);
        }
        tracing::info!("writer stopped; store closed");
    }

    /// With `synchronous = NORMAL`: a short batch of writes and bookkeeping
    /// runs right here, on the runtime thread that woke the loop; a long
    /// one, or one that reads, leaves the runtime with the queue and stays
    /// off it while more is queued.
    async fn run_on_runtime(mut self, mut rx: mpsc::Receiver<WriterCmd>) {
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

    /// Runs a batch in its order: consecutive writes in one transaction,
    /// and whatever is not a write only after the writes queued before it
    /// are committed and broadcast, so that a read or a subscription sees
    /// them and an unsubscribe does not cut them off.
    fn process(&mut self, cmds: Vec<WriterCmd>) {
        let mut writes = Vec::new();
        for cmd in cmds {
            match cmd {
                WriterCmd::Write(w) => writes.push(w),
                WriterCmd::Read(r) => {
                    self.commit(std::mem::take(&mut writes));
                    self.read(r);
                }
                WriterCmd::Fanout(f) => {
                    self.commit(std::mem::take(&mut writes));
                    match f {
                        FanoutCmd::Unsubscribe { event_id, conn_id } => {
                            self.fanout.unsubscribe(&event_id, conn_id)
                        }
                        FanoutCmd::Disconnect { conn_id } => self.fanout.disconnect(conn_id),
                    }
                }
            }
        }
        self.commit(writes);
    }
}
