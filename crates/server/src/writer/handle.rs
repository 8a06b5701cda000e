//! The async side's handle to the writer loop: one bounded queue, and a
//! oneshot answer per command.

use pitboss_core::ops::{Actor, Op};
use pitboss_core::protocol::{AuditEntry, DeviceInfo, EventSummary};
use pitboss_core::{EventDetails, Level};
use tokio::sync::{mpsc, oneshot};

use super::{EventSnapshot, FanoutCmd, OpCmd, OpOutcome, ReadCmd, WriteCmd, WriterCmd};
use crate::auth::Via;
use crate::error::ApiError;
use crate::fanout::Subscriber;

/// A clone per request handler and connection; the loop ends when the
/// last one is dropped.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<WriterCmd>,
}

impl WriterHandle {
    pub fn new(tx: mpsc::Sender<WriterCmd>) -> WriterHandle {
        WriterHandle { tx }
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ApiError>>) -> WriterCmd,
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
            .send(WriterCmd::Write(WriteCmd::Op(OpCmd {
                event_id,
                op_id,
                op,
                actor,
                address,
                reply,
            })))
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
        self.call(|reply| {
            WriterCmd::Write(WriteCmd::CreateEvent {
                details,
                levels,
                reply,
            })
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
        self.call(|reply| {
            WriterCmd::Write(WriteCmd::Session {
                token_hash,
                actor,
                address,
                via,
                reply,
            })
        })
        .await
    }

    /// Revokes devices and stores settings (replaced join codes) in one
    /// transaction; the server time the revoke was stored at.
    pub async fn revoke(
        &self,
        operator_ids: Vec<String>,
        settings: Vec<(String, String)>,
    ) -> Result<i64, ApiError> {
        self.call(|reply| {
            WriterCmd::Write(WriteCmd::Revoke {
                operator_ids,
                settings,
                reply,
            })
        })
        .await
    }

    /// Records a last-seen time if the queue has room; false if not.
    pub fn try_touch(&self, operator_id: String, at_ms: i64) -> bool {
        self.tx
            .try_send(WriterCmd::Write(WriteCmd::Touch { operator_id, at_ms }))
            .is_ok()
    }

    pub async fn devices(&self) -> Result<Vec<DeviceInfo>, ApiError> {
        self.call(|reply| WriterCmd::Read(ReadCmd::Devices { reply }))
            .await
    }

    pub async fn audit(
        &self,
        event_id: String,
        incident_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, ApiError> {
        self.call(|reply| {
            WriterCmd::Read(ReadCmd::Audit {
                event_id,
                incident_id,
                limit,
                reply,
            })
        })
        .await
    }

    pub async fn list_events(&self) -> Result<Vec<EventSummary>, ApiError> {
        self.call(|reply| WriterCmd::Read(ReadCmd::ListEvents { reply }))
            .await
    }

    pub async fn snapshot(&self, event_id: String) -> Result<EventSnapshot, ApiError> {
        self.call(|reply| WriterCmd::Read(ReadCmd::Snapshot { event_id, reply }))
            .await
    }

    pub async fn changes(&self, event_id: String, after: u64) -> Result<Vec<String>, ApiError> {
        self.call(|reply| {
            WriterCmd::Read(ReadCmd::Changes {
                event_id,
                after,
                reply,
            })
        })
        .await
    }

    pub async fn subscribe(
        &self,
        event_id: String,
        after: Option<u64>,
        sub: Subscriber,
    ) -> Result<(), ApiError> {
        self.call(|reply| {
            WriterCmd::Read(ReadCmd::Subscribe {
                event_id,
                after,
                sub,
                reply,
            })
        })
        .await
    }

    /// Polling delivery: read and send what was stored since the last poll.
    #[cfg(feature = "bench-polling")]
    pub async fn poll(&self) {
        drop(self.tx.send(WriterCmd::Read(ReadCmd::Poll)).await);
    }

    pub async fn unsubscribe(&self, event_id: String, conn_id: u64) {
        drop(
            self.tx
                .send(WriterCmd::Fanout(FanoutCmd::Unsubscribe {
                    event_id,
                    conn_id,
                }))
                .await,
        );
    }

    pub async fn disconnect(&self, conn_id: u64) {
        drop(
            self.tx
                .send(WriterCmd::Fanout(FanoutCmd::Disconnect { conn_id }))
                .await,
        );
    }
}
