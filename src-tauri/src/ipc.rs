//! Everything the webview sees of the shell: the names of the pushed events
//! and the payloads of events and commands, each one typed with one
//! `Serialize`. The UI (`ui/`) reads these camelCase fields by name, so the
//! tests (`ipc/tests.rs`) pin the JSON exactly (docs/app-ipc.md); the
//! engine's own types stay snake_case for the protocol and `pitboss-follow`.

use pitboss_client::alerts::{Away, SleptThrough, Sound};
use pitboss_client::{Client, PendingOp, Replica, Status};
use pitboss_core::protocol::{AuditEntry, DeviceInfo};
use pitboss_core::{ClockState, EventDetails, Incident, Op, Role, Stats, Structure};
use serde::Serialize;
use serde_json::Value;

use crate::settings::Settings;

/// Event names the UI listens to. `ui/ipc.js` holds the same names, and
/// `ipc/tests.rs` keeps the two equal: a typo would be a silent window.
pub mod events {
    pub const CLOCK: &str = "pitboss://clock";
    pub const STATE: &str = "pitboss://state";
    pub const STATUS: &str = "pitboss://status";
    pub const NOTICE: &str = "pitboss://notice";
    pub const APP: &str = "pitboss://app";
}

/// Whether this device hosts the venue, joined one, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    None,
    Host,
    Join,
}

/// What a host shows so that other devices can join it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostInfo {
    pub port: u16,
    /// Addresses other devices type to join, LAN ones first.
    pub addresses: Vec<String>,
    pub coordinator_code: String,
    pub dealer_code: String,
    /// The wall screens' code (read only), once the server makes one.
    pub display_code: Option<String>,
    /// The server's key, short form: a joining device shows the key it
    /// pinned, and a person compares the two.
    pub key_fingerprint: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoundState {
    pub available: bool,
    pub message: String,
}

/// The app as a whole (`pitboss://app`, and what venue commands answer):
/// which screen the UI may show follows from it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppView {
    pub mode: Mode,
    pub server: Option<String>,
    pub role: Option<String>,
    pub event_id: Option<String>,
    pub host: Option<HostInfo>,
    /// Why this device is signed out of its venue (revoked, or its pairing
    /// code spent); the UI then offers to join again and nothing else.
    pub signed_out: Option<String>,
    /// The key this device pinned for its venue's server (short form), to
    /// compare with the host's screen.
    pub server_key: Option<String>,
    pub settings: Settings,
    pub sound: SoundState,
}

/// The connection's state word; the status bar words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnState {
    Connecting,
    Live,
    Reconnecting,
    Offline,
    Degraded,
    SignedOut,
    /// The server at the host's address does not hold the pinned key.
    KeyChanged,
}

/// `pitboss://status`: the engine's [`Status`] flattened into one object,
/// with what the status bar shows beside it (last sync, pending count).
/// Every field is always present, `null` when it does not apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    pub state: ConnState,
    pub reason: Option<String>,
    pub since_ms: Option<i64>,
    pub next_attempt_at_ms: Option<i64>,
    pub last_synced_ms: Option<i64>,
    pub pending: usize,
    pub server: String,
}

impl StatusView {
    pub fn new(
        status: &Status,
        last_synced_ms: Option<i64>,
        pending: usize,
        server: &str,
    ) -> StatusView {
        let (state, since_ms, next_attempt_at_ms) = match status {
            Status::Connecting => (ConnState::Connecting, None, None),
            Status::Live => (ConnState::Live, None, None),
            Status::Reconnecting {
                next_attempt_at_ms,
                since_ms,
            } => (
                ConnState::Reconnecting,
                Some(*since_ms),
                Some(*next_attempt_at_ms),
            ),
            Status::Offline {
                since_ms,
                next_attempt_at_ms,
            } => (
                ConnState::Offline,
                Some(*since_ms),
                Some(*next_attempt_at_ms),
            ),
            Status::Degraded { since_ms } => (ConnState::Degraded, Some(*since_ms), None),
            Status::SignedOut { .. } => (ConnState::SignedOut, None, None),
            Status::KeyChanged {
                next_attempt_at_ms, ..
            } => (ConnState::KeyChanged, None, Some(*next_attempt_at_ms)),
        };
        let reason = match status {
            Status::SignedOut { reason } => Some(reason.clone()),
            Status::KeyChanged {
                pinned, offered, ..
            } => Some(format!(
                "{}. This device joined the host with key {pinned}; the server now at that address has key {offered}. Nothing was sent to it.",
                pitboss_client::venue::KEY_CHANGED
            )),
            _ => None,
        };
        StatusView {
            state,
            reason,
            since_ms,
            next_attempt_at_ms,
            last_synced_ms,
            pending,
            server: server.to_string(),
        }
    }

    /// The followed event's connection now.
    pub fn of(client: &Client, server: &str) -> StatusView {
        let status = client.status().borrow().clone();
        let pending = client.pending().borrow().len();
        StatusView::new(&status, client.last_synced_ms(), pending, server)
    }
}

/// One of this device's ops not yet confirmed, shown as pending.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingView {
    pub op_id: String,
    pub op: Op,
    pub created_at_ms: i64,
}

/// `pitboss://state`: the followed event's records as the engine holds
/// them. The records themselves are the server's (snake_case) verbatim.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub event_id: String,
    pub seq: u64,
    pub details: EventDetails,
    pub clock: ClockState,
    pub structure: Structure,
    pub stats: Stats,
    pub incidents: Vec<Incident>,
    pub pending: Vec<PendingView>,
    pub last_synced_ms: Option<i64>,
    pub role: Option<String>,
}

impl EventView {
    pub fn new(
        r: &Replica,
        pending: &[PendingOp],
        last_synced_ms: Option<i64>,
        role: Option<&str>,
    ) -> EventView {
        EventView {
            event_id: r.event_id.clone(),
            seq: r.seq,
            details: r.state.event.clone(),
            clock: r.state.clock,
            structure: r.state.structure.clone(),
            stats: r.state.stats,
            incidents: r.state.incidents.clone(),
            pending: pending
                .iter()
                .map(|p| PendingView {
                    op_id: p.op_id.clone(),
                    op: p.op.clone(),
                    created_at_ms: p.created_at_ms,
                })
                .collect(),
            last_synced_ms,
            role: role.map(str::to_string),
        }
    }

    /// The followed event now; `None` until the engine has a replica.
    pub fn of(client: &Client, role: Option<&str>) -> Option<EventView> {
        let r = client.replica().borrow().clone()?;
        let pending = client.pending().borrow().clone();
        Some(EventView::new(&r, &pending, client.last_synced_ms(), role))
    }
}

/// `pitboss://notice`: something to tell the person once — an answer to
/// one of their ops, an alert played, a banner.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum NoticeView {
    Accepted {
        op_id: String,
        seq: u64,
    },
    /// `op` is what was sent, so a conflict view can show it beside
    /// `current`.
    Rejected {
        op_id: String,
        error: String,
        message: String,
        current: Option<Value>,
        op: Option<Op>,
    },
    /// The host rate-limited an op: it stays pending and goes again.
    Throttled {
        op_id: String,
        retry_after_ms: u64,
    },
    SignedOut {
        reason: String,
    },
    Alert {
        sound: Sound,
        title: String,
    },
    Banner {
        message: String,
    },
    /// A level began while this device was asleep or offline: said, never
    /// heard.
    SleptThrough {
        level_number: Option<usize>,
        is_break: bool,
        started_at_ms: Option<i64>,
        away_ms: i64,
        away: Away,
    },
}

impl NoticeView {
    /// The engine's notices the person is told of; the rest (snapshots,
    /// catching up, wakes) only move what the screens show.
    pub fn from_engine(n: &pitboss_client::Notice) -> Option<NoticeView> {
        use pitboss_client::Notice;
        Some(match n {
            Notice::Accepted { op_id, seq } => NoticeView::Accepted {
                op_id: op_id.clone(),
                seq: *seq,
            },
            Notice::Rejected {
                op_id,
                error,
                message,
                current,
                op,
            } => NoticeView::Rejected {
                op_id: op_id.clone(),
                error: error.clone(),
                message: message.clone(),
                current: current.clone(),
                op: op.clone(),
            },
            Notice::Throttled {
                op_id,
                retry_after_ms,
            } => NoticeView::Throttled {
                op_id: op_id.clone(),
                retry_after_ms: *retry_after_ms,
            },
            Notice::SignedOut { reason } => NoticeView::SignedOut {
                reason: reason.clone(),
            },
            _ => return None,
        })
    }

    /// The banner for a level slept through, numbered as the structure
    /// numbers it (breaks not counted).
    pub fn slept_through(st: &SleptThrough, structure: &Structure) -> NoticeView {
        NoticeView::SleptThrough {
            level_number: structure.level_number(st.level_index),
            is_break: st.is_break,
            started_at_ms: st.started_at_ms,
            away_ms: st.away_ms,
            away: st.away,
        }
    }
}

/// A pairing code as the Devices screen shows it: with the server's "now",
/// so the countdown to `expires_at_ms` does not depend on this machine's
/// clock being right.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingView {
    pub code: String,
    pub role: Role,
    pub expires_at_ms: i64,
    pub server_now_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingListView {
    pub codes: Vec<PairingView>,
    pub server_now_ms: i64,
}

/// The device list, with the server's "now" for "last seen 2 min ago" and
/// this device's own operator id (a coordinator cannot revoke itself).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DevicesView {
    /// The server's records verbatim (snake_case).
    pub devices: Vec<DeviceInfo>,
    pub server_now_ms: i64,
    pub self_operator_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    pub event_id: String,
    pub incident_id: Option<String>,
    /// Newest first, the server's records verbatim (snake_case).
    pub entries: Vec<AuditEntry>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedAudit {
    pub path: String,
    /// Data rows written (the header not counted).
    pub rows: usize,
}

/// A blind structure the create-event form offers.
#[derive(Debug, Clone, Serialize)]
pub struct Template {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub levels: Vec<pitboss_core::Level>,
}

/// The id of an event just created.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    pub id: String,
}

/// The op id of an op queued durably; its answer comes as a notice.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Submitted {
    pub op_id: String,
}

#[cfg(test)]
mod tests;
