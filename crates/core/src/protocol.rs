//! Wire types shared by the server and every client. Names and fields here
//! are a public contract (`docs/protocol/`) that outside scripts rely on:
//! fields may be added, never renamed or removed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::ClockState;
use crate::event::EventDetails;
use crate::incident::Incident;
use crate::ops::{ChangeRecords, Op, Role};
use crate::stats::Stats;
use crate::structure::Structure;

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct By {
    pub operator_id: String,
    pub name: String,
    pub device: String,
}

/// The full state of an event, as in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSnapshotState {
    pub event: EventDetails,
    pub clock: ClockState,
    pub structure: Structure,
    pub stats: Stats,
    pub incidents: Vec<Incident>,
}

/// An accepted change, as broadcast, replayed and returned by `/changes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub event_id: String,
    pub seq: u64,
    pub op_id: String,
    pub op: Op,
    pub by: By,
    pub at_ms: i64,
    #[serde(flatten)]
    pub records: ChangeRecords,
}

/// A message from a client on the WebSocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// Start receiving an event's changes after `after` (its last applied
    /// seq), or a snapshot first when `after` is null or too old.
    Subscribe {
        event_id: String,
        #[serde(default)]
        after: Option<u64>,
    },
    /// Stop receiving an event's changes.
    Unsubscribe {
        event_id: String,
    },
    /// The op is kept as raw JSON here so that a malformed op still gets a
    /// `rejected` naming its `op_id`, not an anonymous error.
    Op {
        op_id: String,
        event_id: String,
        op: Value,
    },
    Ping {
        client_time_ms: i64,
    },
}

/// A message from the server on the WebSocket.
///
/// Messages are built once and serialized at once, never stored in bulk, so
/// the size of the larger variants costs nothing worth boxing them all for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Snapshot {
        event_id: String,
        seq: u64,
        server_time_ms: i64,
        /// Boxed: a snapshot is far larger than every other message.
        state: Box<EventSnapshotState>,
    },
    /// Boxed for the same reason as the snapshot's state.
    Change(Box<Change>),
    /// Sent once a subscription has caught up: everything up to `seq` has been
    /// sent (by snapshot or replay) and what follows is live.
    Subscribed {
        event_id: String,
        seq: u64,
    },
    Unsubscribed {
        event_id: String,
    },
    Ack {
        op_id: String,
        seq: u64,
        result: ChangeRecords,
    },
    Rejected {
        op_id: String,
        error: String,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        current: Option<Value>,
        /// With `rate_limited`: how long to wait before sending it again. The
        /// op was neither applied nor remembered, so the same op id may be resent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Pong {
        client_time_ms: i64,
        server_time_ms: i64,
        /// Every change stamped at or before this server instant was sent on
        /// this socket before this pong. A screen sounds a level it crossed
        /// locally only once it has heard this far, so a "+1 min" in flight
        /// cannot make it announce a level that never started.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        changes_through_ms: Option<i64>,
    },
    Error {
        error: String,
        message: String,
    },
}

/// `POST /api/session` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRequest {
    pub join_code: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub device: String,
}

/// `POST /api/session` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionResponse {
    pub token: String,
    pub role: Role,
    pub operator_id: String,
}

/// `POST /api/lock` answer: how many devices were signed out, and how
/// many sessions of the host itself were kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockResult {
    pub revoked: u32,
    pub kept: u32,
}

/// `POST /api/pairing/exchange` body: the first step of joining with a
/// pairing code without sending it (SPAKE2; see `pitboss_tls::pairing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingExchange {
    /// The code's first digit: which outstanding code the exchange is for.
    pub slot: u8,
    /// The device's SPAKE2 message, hex.
    pub message: String,
}

/// `POST /api/pairing/exchange` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingAnswer {
    /// Names the exchange in the confirmation; valid for a minute.
    pub exchange: String,
    /// The host's SPAKE2 message, hex.
    pub message: String,
    /// The host's proof of the shared key over its TLS key, hex.
    pub proof: String,
}

/// `POST /api/pairing/confirm` body; answered like `POST /api/session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingConfirm {
    pub exchange: String,
    /// The device's proof of the shared key over the TLS key it saw, hex.
    pub proof: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub device: String,
}

/// `POST /api/events/{id}/ops` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpRequest {
    pub op_id: String,
    pub op: Value,
}

/// `200` answer to an op, also the body of a WebSocket `ack`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpAccepted {
    pub op_id: String,
    pub seq: u64,
    pub result: ChangeRecords,
}

/// Error body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Value>,
    /// With `rate_limited` (429): how long to wait before trying again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// With a 401: true when the token was revoked by a coordinator, so a
    /// client must not quietly log in again with a stored join code.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revoked: bool,
}

/// `POST /api/events` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateEvent {
    pub name: String,
    pub structure: CreateStructure,
    #[serde(default)]
    pub starting_stack: u64,
    #[serde(default)]
    pub buy_in: u64,
    #[serde(default)]
    pub rebuy_chips: u64,
    #[serde(default)]
    pub rebuy_price: u64,
    #[serde(default)]
    pub addon_chips: u64,
    #[serde(default)]
    pub addon_price: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateStructure {
    pub levels: Vec<crate::structure::Level>,
}

impl CreateEvent {
    pub fn details(&self) -> EventDetails {
        EventDetails {
            name: self.name.trim().to_string(),
            starting_stack: self.starting_stack,
            buy_in: self.buy_in,
            rebuy_chips: self.rebuy_chips,
            rebuy_price: self.rebuy_price,
            addon_chips: self.addon_chips,
            addon_price: self.addon_price,
        }
    }
}

/// One row of `GET /api/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSummary {
    pub id: String,
    pub name: String,
    pub seq: u64,
    pub created_at_ms: i64,
}

/// `POST /api/pairing` body: the role the paired device will get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingRequest {
    pub role: Role,
}

/// A short pairing code, as made by `POST /api/pairing` and listed by
/// `GET /api/pairing`. It is redeemed once through `POST /api/session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingCode {
    pub code: String,
    pub role: Role,
    pub expires_at_ms: i64,
}

/// `GET /api/pairing` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingList {
    pub codes: Vec<PairingCode>,
}

/// One joined device, as in `GET /api/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub operator_id: String,
    pub name: String,
    pub device: String,
    pub role: Role,
    /// The source address it joined from.
    pub address: String,
    /// `join_code` or `pairing`.
    pub via: String,
    pub created_at_ms: i64,
    /// Last request or WebSocket frame seen from it (kept to ~30 s).
    pub last_seen_ms: i64,
    /// WebSockets open now.
    pub connections: u32,
    pub revoked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<i64>,
}

/// The long join code a revoke replaced: the revoked device knew the old one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotatedCode {
    pub role: Role,
    pub code: String,
}

/// `POST /api/devices/{id}/revoke` answer: the device as now listed, and the
/// join code that replaced the one it joined with, if it joined with one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeResult {
    #[serde(flatten)]
    pub device: DeviceInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_code: Option<RotatedCode>,
}

/// `GET /api/devices` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceList {
    pub devices: Vec<DeviceInfo>,
}

/// One accepted change in an event's audit trail: who, from where, when,
/// what, and the records before and after. Never pruned with the change log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub op_id: String,
    /// Server time the change was applied.
    pub at_ms: i64,
    pub operator_id: String,
    pub name: String,
    pub device: String,
    pub role: Role,
    pub address: String,
    pub op: Op,
    /// The records the op touched as they were before it…
    pub before: Value,
    /// …and after it.
    pub after: Value,
    /// One line for the floor, e.g. "added 5:00 to level 2 (12:31 → 17:31 left)".
    pub summary: String,
    /// The incident it created or edited, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
}

/// `GET /api/events/{id}/audit` answer, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditList {
    pub entries: Vec<AuditEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::ChangeRecords;

    #[test]
    fn a_change_carries_its_records_at_the_top_level() {
        let msg = ServerMsg::Change(Box::new(Change {
            event_id: "ev-1".into(),
            seq: 7,
            op_id: "a".into(),
            op: Op::StatsBust { count: 1 },
            by: By {
                operator_id: "o".into(),
                name: "Ana".into(),
                device: "laptop-7".into(),
            },
            at_ms: 5,
            records: ChangeRecords {
                stats: Some(Stats::default()),
                ..ChangeRecords::default()
            },
        }));
        let v = serde_json::to_value(&msg).expect("json");
        assert_eq!(v["type"], "change");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["op"]["type"], "stats.bust");
        assert!(v["stats"].is_object());
        assert!(v.get("clock").is_none());
        let back: ServerMsg = serde_json::from_value(v).expect("round trip");
        assert_eq!(back, msg);
    }

    #[test]
    fn client_messages_parse_from_their_public_shape() {
        let m: ClientMsg =
            serde_json::from_str(r#"{"type":"subscribe","event_id":"e","after":null}"#)
                .expect("parses");
        assert_eq!(
            m,
            ClientMsg::Subscribe {
                event_id: "e".into(),
                after: None
            }
        );
        let m: ClientMsg =
            serde_json::from_str(r#"{"type":"ping","client_time_ms":12}"#).expect("parses");
        assert_eq!(m, ClientMsg::Ping { client_time_ms: 12 });
    }
}
