//! The app's one piece of state: which venue this device is part of (host
//! or joined), the client engine following the open event, and the tasks
//! that push what it knows to the windows.
//!
//! Commands call into here; nothing here decides sync or clock logic, which
//! is the client engine's and the core's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pitboss_client::alerts::{Sound, Watcher};
use pitboss_client::{Client, Notice, Status, Venue, VenueConfig, VenueError};
use pitboss_core::protocol::{
    AuditEntry, CreateEvent, CreateStructure, DeviceInfo, EventSummary, PairingCode, RevokeResult,
};
use pitboss_core::{Op, Role};
use serde::Serialize;
use serde_json::{json, Value};
use tauri::async_runtime::JoinHandle;
use tauri::{AppHandle, Emitter};
use tokio::sync::Mutex;

use crate::settings::{self, SavedVenue, Settings};
use crate::view;

/// Event names the UI listens to (docs/app-ipc.md).
pub mod events {
    pub const CLOCK: &str = "pitboss://clock";
    pub const STATE: &str = "pitboss://state";
    pub const STATUS: &str = "pitboss://status";
    pub const NOTICE: &str = "pitboss://notice";
    pub const APP: &str = "pitboss://app";
}

/// How often the clock is pushed. Four times a second keeps the seconds
/// digit crisp; the numbers are computed here, in Rust, so a throttled
/// webview can never fall behind the real clock (rule 6).
const TICK: Duration = Duration::from_millis(250);

/// The one error shape every command rejects with.
#[derive(Debug, Clone, Serialize)]
pub struct CmdError {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<Value>,
    /// With `rate_limited`: how long the host asks to wait, so the UI can
    /// say "try again in 20 s" instead of a bare refusal.
    #[serde(rename = "retryAfterMs", skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl CmdError {
    pub fn new(code: &str, message: impl Into<String>) -> CmdError {
        CmdError {
            code: code.into(),
            message: message.into(),
            current: None,
            retry_after_ms: None,
        }
    }
}

impl From<VenueError> for CmdError {
    fn from(e: VenueError) -> CmdError {
        match e {
            VenueError::Unreachable { .. } => CmdError::new("offline", e.to_string()),
            VenueError::Unauthorized(m) => CmdError::new(
                "unauthorized",
                if m.is_empty() {
                    "the join code was not accepted".to_string()
                } else {
                    m
                },
            ),
            VenueError::SignedOut(m) => CmdError::new("signed_out", m),
            VenueError::Refused {
                code,
                message,
                current,
                retry_after_ms,
                ..
            } => CmdError {
                code,
                message,
                current,
                retry_after_ms,
            },
            VenueError::Local(e) => CmdError::new("internal", format!("{e:#}")),
        }
    }
}

impl From<anyhow::Error> for CmdError {
    fn from(e: anyhow::Error) -> CmdError {
        CmdError::new("internal", format!("{e:#}"))
    }
}

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
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoundState {
    pub available: bool,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppState {
    pub mode: &'static str,
    pub server: Option<String>,
    pub role: Option<String>,
    pub event_id: Option<String>,
    pub host: Option<HostInfo>,
    /// Why this device is signed out of its venue (revoked, or its pairing
    /// code spent); the UI then offers to join again and nothing else.
    pub signed_out: Option<String>,
    pub settings: Settings,
    pub sound: SoundState,
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

struct Following {
    client: Arc<Client>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Default)]
struct Inner {
    /// The in-process server, once this device hosts. It keeps running
    /// until the app quits, even if the director looks at another venue:
    /// stopping it would cut every other screen in the room.
    server: Option<Arc<pitboss_server::Server>>,
    host: Option<HostInfo>,
    venue: Option<Arc<Venue>>,
    saved: Option<SavedVenue>,
    role: Option<String>,
    following: Option<Following>,
}

pub struct Shell {
    app: AppHandle,
    data_dir: PathBuf,
    inner: Mutex<Inner>,
    settings: std::sync::Mutex<Settings>,
    sound: pitboss_sound::Player,
}

fn lock_settings(s: &std::sync::Mutex<Settings>) -> Settings {
    s.lock()
        .map(|g| g.clone())
        .unwrap_or_else(|e| e.into_inner().clone())
}

/// Where to host: `PITBOSS_LISTEN`, else port 7878 on every interface so
/// the venue's devices can reach it, else any free port.
fn listen_addrs() -> Vec<SocketAddr> {
    if let Some(a) = std::env::var("PITBOSS_LISTEN")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return vec![a];
    }
    vec![
        SocketAddr::from(([0, 0, 0, 0], 7878)),
        SocketAddr::from(([0, 0, 0, 0], 0)),
    ]
}

fn lan_addresses(bound: SocketAddr) -> Vec<String> {
    if !bound.ip().is_unspecified() {
        return vec![bound.to_string()];
    }
    let mut out: Vec<String> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback() && i.ip().is_ipv4())
        .map(|i| format!("{}:{}", i.ip(), bound.port()))
        .collect();
    out.sort();
    out.dedup();
    out.push(format!("127.0.0.1:{}", bound.port()));
    out
}

/// A file name for one server's cache: replicas are keyed by event id, and
/// two venues may both have an "ev-1".
fn cache_name(server: &str) -> String {
    let clean: String = server
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{clean}.db")
}

impl Shell {
    pub fn new(app: AppHandle, data_dir: PathBuf) -> Shell {
        let settings = settings::load(&app);
        Shell {
            app,
            data_dir,
            inner: Mutex::new(Inner::default()),
            settings: std::sync::Mutex::new(settings),
            sound: pitboss_sound::Player::start(),
        }
    }

    pub fn settings(&self) -> Settings {
        lock_settings(&self.settings)
    }

    pub fn set_settings(&self, s: Settings) -> Result<Settings, CmdError> {
        let s = s.validated().map_err(|m| CmdError::new("invalid", m))?;
        settings::save(&self.app, &s)?;
        if let Ok(mut g) = self.settings.lock() {
            *g = s.clone();
        }
        Ok(s)
    }

    pub fn sound_state(&self) -> SoundState {
        let a = self.sound.availability();
        SoundState {
            available: a.available,
            message: a.message,
        }
    }

    pub fn sound_check(&self) -> SoundState {
        let volume = self.settings().volume;
        let a = self
            .sound
            .check(pitboss_sound::Tone::LevelChange, volume.max(0.05));
        SoundState {
            available: a.available,
            message: a.message,
        }
    }

    pub async fn app_state(&self) -> AppState {
        let inner = self.inner.lock().await;
        let mode = match inner.saved {
            Some(SavedVenue::Host { .. }) => "host",
            Some(SavedVenue::Join { .. }) => "join",
            None => "none",
        };
        AppState {
            mode,
            server: inner.venue.as_ref().map(|v| v.server().to_string()),
            role: inner.role.clone(),
            event_id: inner
                .following
                .as_ref()
                .map(|f| f.client.event_id().to_string()),
            host: if mode == "host" {
                // The codes as they are now: a revoke replaces the one the
                // revoked device joined with.
                inner.host.clone().map(|mut h| {
                    if let Some(server) = &inner.server {
                        let c = server.join_codes();
                        h.coordinator_code = c.coordinator;
                        h.dealer_code = c.dealer;
                        h.display_code = Some(c.display);
                    }
                    h
                })
            } else {
                None
            },
            signed_out: inner.venue.as_ref().and_then(|v| v.signed_out()),
            settings: self.settings(),
            sound: self.sound_state(),
        }
    }

    async fn announce(&self) {
        let s = self.app_state().await;
        drop(self.app.emit(events::APP, s));
    }

    fn venue_config(&self, server: String, join_code: String) -> VenueConfig {
        let s = self.settings();
        VenueConfig {
            cache_path: self.data_dir.join("cache").join(cache_name(&server)),
            server,
            join_code,
            name: s.operator(),
            device: s.device_name.clone(),
        }
    }

    /// Starts hosting (if not yet) and follows the last or the demo event.
    pub async fn host(&self) -> Result<AppState, CmdError> {
        let mut inner = self.inner.lock().await;
        if inner.server.is_none() {
            let dir = self.data_dir.join("server");
            let mut last = None;
            for addr in listen_addrs() {
                let mut config = pitboss_server::Config::new(addr, dir.clone());
                config.demo = true;
                match pitboss_server::start(config).await {
                    Ok(s) => {
                        last = None;
                        inner.server = Some(Arc::new(s));
                        break;
                    }
                    Err(e) => {
                        tracing::warn!("cannot host on {addr}: {e:#}");
                        last = Some(e);
                    }
                }
            }
            if let Some(e) = last {
                return Err(CmdError::new(
                    "internal",
                    format!("cannot start the venue server: {e:#}"),
                ));
            }
        }
        let server = inner
            .server
            .clone()
            .ok_or_else(|| CmdError::new("internal", "no server"))?;
        let bound = server.local_addr();
        let codes = server.join_codes();
        inner.host = Some(HostInfo {
            port: bound.port(),
            addresses: lan_addresses(bound),
            coordinator_code: codes.coordinator.clone(),
            dealer_code: codes.dealer.clone(),
            display_code: Some(codes.display.clone()),
        });
        tracing::info!(address = %bound, "hosting the venue");
        let local = if bound.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], bound.port()))
        } else {
            bound
        };
        let venue =
            Venue::new(self.venue_config(format!("http://{local}"), codes.coordinator.clone()))?;
        let session = venue.login().await?;
        let previous = match &inner.saved {
            Some(SavedVenue::Host { event_id }) => event_id.clone(),
            _ => settings::load_venue(&self.app).and_then(|v| match v {
                SavedVenue::Host { event_id } => event_id,
                SavedVenue::Join { .. } => None,
            }),
        };
        let events = venue.events().await?;
        let event = previous
            .filter(|id| events.iter().any(|e| &e.id == id))
            .or_else(|| server.demo_event_id().map(str::to_string))
            .or_else(|| events.first().map(|e| e.id.clone()));
        inner.role = Some(session.role);
        inner.venue = Some(Arc::new(venue));
        inner.saved = Some(SavedVenue::Host { event_id: None });
        if let Some(id) = event {
            self.follow_locked(&mut inner, &id).await?;
        }
        self.save_venue_locked(&inner);
        drop(inner);
        self.announce().await;
        Ok(self.app_state().await)
    }

    /// Joins a venue by address and join code (checked with the server).
    pub async fn join(&self, address: &str, join_code: &str) -> Result<AppState, CmdError> {
        let server =
            pitboss_client::server_url(address).map_err(|m| CmdError::new("invalid", m))?;
        let code = pitboss_client::venue::normalize_code(join_code);
        let code = code.as_str();
        if code.is_empty() {
            return Err(CmdError::new(
                "invalid",
                "enter the join code shown on the host",
            ));
        }
        let venue = Venue::new(self.venue_config(server.clone(), code.to_string()))?;
        let session = venue.login().await?;
        let mut s = self.settings();
        s.server_address = address.trim().to_string();
        drop(self.set_settings(s));
        let mut inner = self.inner.lock().await;
        self.unfollow_locked(&mut inner).await;
        inner.role = Some(session.role);
        inner.venue = Some(Arc::new(venue));
        inner.saved = Some(SavedVenue::Join {
            server,
            join_code: code.to_string(),
            event_id: None,
        });
        self.save_venue_locked(&inner);
        drop(inner);
        self.announce().await;
        Ok(self.app_state().await)
    }

    /// Back to the connect screen. A host keeps serving the room.
    pub async fn leave(&self) -> AppState {
        let mut inner = self.inner.lock().await;
        self.unfollow_locked(&mut inner).await;
        inner.venue = None;
        inner.role = None;
        inner.saved = None;
        drop(settings::save_venue(&self.app, None));
        drop(inner);
        self.announce().await;
        self.app_state().await
    }

    /// At start-up: back to the venue and event of the last run, from the
    /// cache, without waiting for the network (the host may be down).
    pub async fn restore(&self, force_host: bool) {
        let saved = settings::load_venue(&self.app);
        if force_host || matches!(saved, Some(SavedVenue::Host { .. })) {
            if let Err(e) = self.host().await {
                tracing::error!("cannot host: {}", e.message);
                self.banner(&format!("Could not host this venue: {}", e.message));
            }
            return;
        }
        let Some(SavedVenue::Join {
            server,
            join_code,
            event_id,
        }) = saved
        else {
            return;
        };
        let venue = match Venue::new(self.venue_config(server.clone(), join_code.clone())) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!("cannot open the cache: {e:#}");
                return;
            }
        };
        let mut inner = self.inner.lock().await;
        inner.role = venue.stored_session().map(|s| s.role);
        inner.venue = Some(Arc::new(venue));
        inner.saved = Some(SavedVenue::Join {
            server,
            join_code,
            event_id: None,
        });
        if let Some(id) = event_id {
            if let Err(e) = self.follow_locked(&mut inner, &id).await {
                tracing::error!("cannot follow {id}: {}", e.message);
            }
        }
        self.save_venue_locked(&inner);
        drop(inner);
        self.announce().await;
    }

    fn save_venue_locked(&self, inner: &Inner) {
        let event_id = inner
            .following
            .as_ref()
            .map(|f| f.client.event_id().to_string());
        let saved = inner.saved.clone().map(|s| match s {
            SavedVenue::Host { .. } => SavedVenue::Host { event_id },
            SavedVenue::Join {
                server, join_code, ..
            } => SavedVenue::Join {
                server,
                join_code,
                event_id,
            },
        });
        if let Err(e) = settings::save_venue(&self.app, saved.as_ref()) {
            tracing::warn!("cannot save the venue: {e:#}");
        }
    }

    async fn venue(&self) -> Result<Arc<Venue>, CmdError> {
        self.inner
            .lock()
            .await
            .venue
            .clone()
            .ok_or_else(|| CmdError::new("invalid", "host or join a venue first"))
    }

    pub async fn list_events(&self) -> Result<Vec<EventSummary>, CmdError> {
        let venue = self.venue().await?;
        self.venue_result(venue.events().await).await
    }

    pub async fn create_event(
        &self,
        name: String,
        levels: Vec<pitboss_core::Level>,
        starting_stack: u64,
        buy_in: u64,
    ) -> Result<String, CmdError> {
        let ev = CreateEvent {
            name,
            structure: CreateStructure { levels },
            starting_stack,
            buy_in,
            rebuy_chips: starting_stack,
            rebuy_price: buy_in,
            addon_chips: starting_stack,
            addon_price: buy_in,
        };
        ev.details()
            .validate()
            .map_err(|m| CmdError::new("invalid", m))?;
        pitboss_core::structure::validate_levels(&ev.structure.levels)
            .map_err(|m| CmdError::new("invalid", m))?;
        let venue = self.venue().await?;
        let id = self.venue_result(venue.create_event(&ev).await).await?;
        self.open_event(&id).await?;
        Ok(id)
    }

    pub async fn open_event(&self, event_id: &str) -> Result<AppState, CmdError> {
        let mut inner = self.inner.lock().await;
        self.follow_locked(&mut inner, event_id).await?;
        self.save_venue_locked(&inner);
        drop(inner);
        self.announce().await;
        Ok(self.app_state().await)
    }

    async fn unfollow_locked(&self, inner: &mut Inner) {
        if let Some(f) = inner.following.take() {
            for t in f.tasks {
                t.abort();
            }
            f.client.stop().await;
        }
    }

    async fn follow_locked(&self, inner: &mut Inner, event_id: &str) -> Result<(), CmdError> {
        let venue = inner
            .venue
            .clone()
            .ok_or_else(|| CmdError::new("invalid", "host or join a venue first"))?;
        if inner
            .following
            .as_ref()
            .is_some_and(|f| f.client.event_id() == event_id)
        {
            return Ok(());
        }
        self.unfollow_locked(inner).await;
        let client = Arc::new(venue.follow(event_id)?);
        let tasks = vec![
            tauri::async_runtime::spawn(tick_loop(self.app.clone(), client.clone())),
            tauri::async_runtime::spawn(push_state(
                self.app.clone(),
                client.clone(),
                venue.server().to_string(),
                inner.role.clone(),
            )),
            tauri::async_runtime::spawn(push_notices(self.app.clone(), client.clone())),
        ];
        inner.following = Some(Following { client, tasks });
        Ok(())
    }

    async fn client(&self) -> Result<Arc<Client>, CmdError> {
        self.inner
            .lock()
            .await
            .following
            .as_ref()
            .map(|f| f.client.clone())
            .ok_or_else(|| CmdError::new("invalid", "open an event first"))
    }

    pub async fn clock_view(&self) -> Option<view::ClockView> {
        let c = self.client().await.ok()?;
        let r = c.replica().borrow().clone()?;
        Some(view::view(&r, c.server_now_ms()))
    }

    /// The connection status now (the UI asks once at load; later ones are
    /// pushed).
    pub async fn connection_status(&self) -> Option<Value> {
        let c = self.client().await.ok()?;
        let server = self
            .inner
            .lock()
            .await
            .venue
            .as_ref()
            .map(|v| v.server().to_string())?;
        Some(status_json(&c, &server))
    }

    pub async fn event_state(&self) -> Option<Value> {
        let c = self.client().await.ok()?;
        let role = self.inner.lock().await.role.clone();
        event_state(&c, role.as_deref())
    }

    /// Validates an op and hands it to the engine's durable outbox.
    pub async fn submit(&self, op: Value) -> Result<String, CmdError> {
        let op: Op = serde_json::from_value(op)
            .map_err(|e| CmdError::new("invalid", format!("not an operation: {e}")))?;
        op.validate()
            .map_err(|e| CmdError::new("invalid", e.to_string()))?;
        let (client, role, hosting) = {
            let inner = self.inner.lock().await;
            let c = inner
                .following
                .as_ref()
                .map(|f| f.client.clone())
                .ok_or_else(|| CmdError::new("invalid", "open an event first"))?;
            (c, inner.role.clone(), inner.server.is_some())
        };
        let may = role
            .as_deref()
            .and_then(pitboss_core::Role::parse)
            .is_none_or(|r| r.may(&op));
        if !may {
            let display = role.as_deref() == Some(Role::Display.as_str());
            return Err(CmdError::new(
                "forbidden",
                if display {
                    "this screen joined as a display: it shows the clock and the board and changes nothing"
                } else {
                    "only a coordinator can do this; dealers report bust-outs, entries, rebuys, add-ons and incidents"
                },
            ));
        }
        // The clock must never be moved from a stale picture of it: clock
        // controls wait for a live connection (incidents and stats queue).
        let is_clock = matches!(
            op,
            Op::ClockStart | Op::ClockPause | Op::ClockAdjust { .. } | Op::ClockSetLevel { .. }
        );
        if is_clock && !hosting && *client.status().borrow() != Status::Live {
            return Err(CmdError::new(
                "offline",
                "clock controls need a live connection to the host; reconnecting…",
            ));
        }
        Ok(client.submit(op).await?)
    }

    /// A Venue answer as a command's: a sign-out found on the way is
    /// announced at once, so every screen shows it, not only this call's.
    async fn venue_result<T>(&self, r: Result<T, VenueError>) -> Result<T, CmdError> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => {
                let signed_out = matches!(e, VenueError::SignedOut(_));
                let e = CmdError::from(e);
                if signed_out {
                    self.announce().await;
                }
                Err(e)
            }
        }
    }

    /// The venue, for the coordinator's tools: pairing, devices, audit. The
    /// server checks the role too; this only says so before a round trip.
    async fn manager_venue(&self, what: &str) -> Result<Arc<Venue>, CmdError> {
        let (venue, role) = {
            let inner = self.inner.lock().await;
            (inner.venue.clone(), inner.role.clone())
        };
        let venue = venue.ok_or_else(|| CmdError::new("invalid", "host or join a venue first"))?;
        if let Some(reason) = venue.signed_out() {
            return Err(CmdError::new("signed_out", reason));
        }
        match role.as_deref().and_then(Role::parse) {
            Some(r) if !r.may_manage() => Err(CmdError::new(
                "forbidden",
                format!("only a coordinator can {what}"),
            )),
            _ => Ok(venue),
        }
    }

    /// The server's time now: the followed event's estimate, else this
    /// machine's clock (the host's own, or close enough on a LAN).
    async fn server_now_ms(&self) -> i64 {
        match self.client().await {
            Ok(c) => c.server_now_ms(),
            Err(_) => pitboss_client::time::steady_ms(),
        }
    }

    fn pairing_view(p: PairingCode, server_now_ms: i64) -> PairingView {
        PairingView {
            code: p.code,
            role: p.role,
            expires_at_ms: p.expires_at_ms,
            server_now_ms,
        }
    }

    pub async fn pairing_create(&self, role: &str) -> Result<PairingView, CmdError> {
        let role = Role::parse(role).ok_or_else(|| {
            CmdError::new(
                "invalid",
                format!("\"{role}\" is not a role: coordinator, dealer or display"),
            )
        })?;
        let venue = self.manager_venue("pair devices").await?;
        let p = self.venue_result(venue.create_pairing(role).await).await?;
        Ok(Self::pairing_view(p, self.server_now_ms().await))
    }

    pub async fn pairing_list(&self) -> Result<PairingListView, CmdError> {
        let venue = self.manager_venue("see pairing codes").await?;
        let codes = self.venue_result(venue.pairings().await).await?;
        let now = self.server_now_ms().await;
        Ok(PairingListView {
            codes: codes
                .into_iter()
                .map(|p| Self::pairing_view(p, now))
                .collect(),
            server_now_ms: now,
        })
    }

    pub async fn pairing_cancel(&self, code: &str) -> Result<(), CmdError> {
        if !pitboss_client::venue::is_pairing_code(code) {
            return Err(CmdError::new("invalid", "a pairing code has 6 digits"));
        }
        let venue = self.manager_venue("cancel pairing codes").await?;
        self.venue_result(venue.cancel_pairing(code).await).await
    }

    pub async fn devices_list(&self) -> Result<DevicesView, CmdError> {
        let venue = self.manager_venue("see the devices").await?;
        let devices = self.venue_result(venue.devices().await).await?;
        Ok(DevicesView {
            devices,
            server_now_ms: self.server_now_ms().await,
            self_operator_id: venue.stored_session().map(|s| s.operator_id),
        })
    }

    pub async fn device_revoke(&self, operator_id: &str) -> Result<RevokeResult, CmdError> {
        let venue = self.manager_venue("revoke devices").await?;
        if venue
            .stored_session()
            .is_some_and(|s| s.operator_id == operator_id)
        {
            return Err(CmdError::new(
                "invalid",
                "this is your own device; revoke it from another coordinator's screen",
            ));
        }
        let r = self.venue_result(venue.revoke(operator_id).await).await;
        // A replaced join code changes what the host's header shows.
        self.announce().await;
        r
    }

    async fn open_event_id(&self) -> Result<String, CmdError> {
        Ok(self.client().await?.event_id().to_string())
    }

    pub async fn audit_list(
        &self,
        incident_id: Option<String>,
        limit: Option<u32>,
    ) -> Result<AuditView, CmdError> {
        let venue = self.manager_venue("see the audit trail").await?;
        let event_id = self.open_event_id().await?;
        let entries = self
            .venue_result(venue.audit(&event_id, incident_id.as_deref(), limit).await)
            .await?;
        Ok(AuditView {
            event_id,
            incident_id,
            entries,
        })
    }

    /// Writes the open event's audit trail, as the server's CSV, to the
    /// download folder, and says where.
    pub async fn export_audit(&self) -> Result<ExportedAudit, CmdError> {
        let venue = self.manager_venue("export the audit trail").await?;
        let event_id = self.open_event_id().await?;
        let csv = self.venue_result(venue.audit_csv(&event_id).await).await?;
        let dir = crate::export::download_dir(&self.app);
        let path = crate::export::write_csv(&dir, &event_id, &csv)
            .map_err(|e| CmdError::new("internal", format!("{e:#}")))?;
        Ok(ExportedAudit {
            path: path.display().to_string(),
            rows: crate::export::data_rows(&csv),
        })
    }

    pub async fn refresh(&self) -> Result<(), CmdError> {
        self.client().await?.refresh().await;
        Ok(())
    }

    pub fn banner(&self, message: &str) {
        drop(self.app.emit(
            events::NOTICE,
            json!({"kind": "banner", "message": message}),
        ));
    }

    pub fn play(&self, sound: Sound) {
        let s = self.settings();
        let (wanted, tone) = match sound {
            Sound::Level => (s.alerts.level_change, pitboss_sound::Tone::LevelChange),
            Sound::Minute => (s.alerts.one_minute, pitboss_sound::Tone::OneMinute),
            Sound::BreakStart => (s.alerts.breaks, pitboss_sound::Tone::BreakStart),
            Sound::BreakEnd => (s.alerts.breaks, pitboss_sound::Tone::BreakEnd),
        };
        if s.sound_on && wanted {
            self.sound.play(tone, s.volume);
        }
    }
}

fn status_json(c: &Client, server: &str) -> Value {
    let status = c.status().borrow().clone();
    let (state, since, next) = match &status {
        Status::Connecting => ("connecting", None, None),
        Status::Live => ("live", None, None),
        Status::Reconnecting {
            next_attempt_at_ms,
            since_ms,
        } => ("reconnecting", Some(*since_ms), Some(*next_attempt_at_ms)),
        Status::Offline {
            since_ms,
            next_attempt_at_ms,
        } => ("offline", Some(*since_ms), Some(*next_attempt_at_ms)),
        Status::Degraded { since_ms } => ("degraded", Some(*since_ms), None),
        Status::SignedOut { .. } => ("signed_out", None, None),
    };
    let reason = match status {
        Status::SignedOut { reason } => Some(reason),
        _ => None,
    };
    json!({
        "state": state,
        "reason": reason,
        "sinceMs": since,
        "nextAttemptAtMs": next,
        "lastSyncedMs": c.last_synced_ms(),
        "pending": c.pending().borrow().len(),
        "server": server,
    })
}

fn event_state(c: &Client, role: Option<&str>) -> Option<Value> {
    let r = c.replica().borrow().clone()?;
    let pending: Vec<Value> = c
        .pending()
        .borrow()
        .iter()
        .map(|p| json!({"opId": p.op_id, "op": p.op, "createdAtMs": p.created_at_ms}))
        .collect();
    Some(json!({
        "eventId": r.event_id,
        "seq": r.seq,
        "details": r.state.event,
        "clock": r.state.clock,
        "structure": r.state.structure,
        "stats": r.state.stats,
        "incidents": r.state.incidents,
        "pending": pending,
        "lastSyncedMs": c.last_synced_ms(),
        "role": role,
    }))
}

/// Pushes the clock four times a second and plays the alerts the watcher
/// allows (rule 7). Runs on the async runtime, not in the webview.
async fn tick_loop(app: AppHandle, client: Arc<Client>) {
    use tauri::Manager;
    let mut watcher = Watcher::new(&client);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The last frame sent, and when: a frame goes out when what the screens
    // show changes, and at least once a second (for a window opened since).
    let mut sent: Option<(view::ClockView, std::time::Instant)> = None;
    loop {
        // The render tick, or at once when the server confirms a level
        // crossing that a tick saw (the sound then comes a round trip after
        // the boundary, not a round trip plus a tick).
        tokio::select! {
            _ = tick.tick() => {}
            () = watcher.confirmed() => {}
        }
        let (_, alert) = watcher.tick(&client);
        let Some(r) = client.replica().borrow().clone() else {
            continue;
        };
        if let Some(st) = watcher.take_slept_through() {
            // Heard nothing (rule 7), but say what changed (rule 9).
            drop(app.emit(
                events::NOTICE,
                json!({"kind": "slept_through", "levelNumber": r.state.structure.level_number(st.level_index),
                       "isBreak": st.is_break, "startedAtMs": st.started_at_ms, "awayMs": st.away_ms,
                       "away": st.away}),
            ));
        }
        let v = view::view(&r, client.server_now_ms());
        if let Some(a) = &alert {
            if let Some(shell) = app.try_state::<Shell>() {
                shell.play(a.sound);
            }
            drop(app.emit(
                events::NOTICE,
                json!({"kind": "alert", "sound": a.sound, "title": v.title}),
            ));
        }
        let due = match &sent {
            None => true,
            Some((last, at)) => {
                alert.is_some()
                    || at.elapsed() >= Duration::from_secs(1)
                    || !last.same_on_screen(&v)
            }
        };
        if due {
            drop(app.emit(events::CLOCK, &v));
            sent = Some((v, std::time::Instant::now()));
        }
    }
}

/// Pushes the event state and the connection status whenever they change.
async fn push_state(app: AppHandle, client: Arc<Client>, server: String, role: Option<String>) {
    let mut replica = client.replica();
    let mut pending = client.pending();
    let mut status = client.status();
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        let state_changed = tokio::select! {
            r = replica.changed() => { if r.is_err() { return; } true }
            r = pending.changed() => { if r.is_err() { return; } true }
            r = status.changed() => { if r.is_err() { return; } false }
            // Keeps "last synced" and the retry countdown current.
            _ = every.tick() => false,
        };
        if state_changed {
            if let Some(s) = event_state(&client, role.as_deref()) {
                drop(app.emit(events::STATE, s));
            }
        }
        drop(app.emit(events::STATUS, status_json(&client, &server)));
    }
}

/// Forwards the answers to this device's ops.
async fn push_notices(app: AppHandle, client: Arc<Client>) {
    let mut rx = client.notices();
    loop {
        let n = match rx.recv().await {
            Ok(n) => n,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        let payload = match n {
            Notice::Accepted { op_id, seq } => {
                json!({"kind": "accepted", "opId": op_id, "seq": seq})
            }
            Notice::Rejected {
                op_id,
                error,
                message,
                current,
                op,
            } => json!({"kind": "rejected", "opId": op_id, "error": error,
                        "message": message, "current": current, "op": op}),
            Notice::Throttled {
                op_id,
                retry_after_ms,
            } => json!({"kind": "throttled", "opId": op_id, "retryAfterMs": retry_after_ms}),
            Notice::SignedOut { reason } => {
                // Every screen must switch to "signed out", not only the
                // status bar: the app state says so.
                if let Some(shell) = tauri::Manager::try_state::<Shell>(&app) {
                    shell.announce().await;
                }
                json!({"kind": "signed_out", "reason": reason})
            }
            _ => continue,
        };
        drop(app.emit(events::NOTICE, payload));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The UI reads these shapes (ui/lib/forms.js normalizeError,
    /// ui/lib/status.js); a rename here would silently break it.
    #[test]
    fn trust_errors_keep_the_shape_the_ui_reads() {
        let e = CmdError::from(VenueError::SignedOut(pitboss_client::venue::REVOKED.into()));
        assert_eq!(
            serde_json::to_value(&e).ok(),
            Some(json!({"code": "signed_out", "message": pitboss_client::venue::REVOKED}))
        );
        let e = CmdError::from(VenueError::Refused {
            status: 429,
            code: "rate_limited".into(),
            message: "too many attempts".into(),
            current: None,
            retry_after_ms: Some(20_000),
        });
        assert_eq!(
            serde_json::to_value(&e).ok(),
            Some(
                json!({"code": "rate_limited", "message": "too many attempts", "retryAfterMs": 20_000})
            )
        );
        let v = serde_json::to_value(PairingView {
            code: "123456".into(),
            role: Role::Display,
            expires_at_ms: 5,
            server_now_ms: 1,
        })
        .ok();
        assert_eq!(
            v,
            Some(json!({"code": "123456", "role": "display", "expiresAtMs": 5, "serverNowMs": 1}))
        );
    }
}
