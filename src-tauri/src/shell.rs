//! The app's one piece of state: which venue this device is part of (host
//! or joined), the client engine following the open event, and the tasks
//! that push what it knows to the windows.
//!
//! Commands call into here; nothing here decides sync or clock logic, which
//! is the client engine's and the core's, and nothing here checks again what
//! the engine or the server checks.

mod trust;

use std::path::PathBuf;
use std::sync::Arc;

use pitboss_client::alerts::Sound;
use pitboss_client::{Client, Status, Venue, VenueConfig, VenueError};
use pitboss_core::protocol::{CreateEvent, CreateStructure, EventSummary};
use pitboss_core::{Op, Role};
use serde_json::Value;
use tauri::async_runtime::JoinHandle;
use tauri::{AppHandle, Emitter};
use tokio::sync::Mutex;

use crate::error::CmdError;
use crate::hosting::Hosting;
use crate::ipc::{events, AppView, EventView, Mode, NoticeView, SoundState, StatusView};
use crate::settings::{self, SavedVenue, Settings};
use crate::view;

/// The event this device follows, and the tasks pushing it to the windows
/// (stopped with it).
struct Following {
    client: Arc<Client>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Default)]
struct Inner {
    /// The in-process server, once this device hosts.
    hosting: Option<Hosting>,
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

    pub async fn app_view(&self) -> AppView {
        let inner = self.inner.lock().await;
        let mode = match inner.saved {
            Some(SavedVenue::Host { .. }) => Mode::Host,
            Some(SavedVenue::Join { .. }) => Mode::Join,
            None => Mode::None,
        };
        AppView {
            mode,
            server: inner.venue.as_ref().map(|v| v.server().to_string()),
            role: inner.role.clone(),
            event_id: inner
                .following
                .as_ref()
                .map(|f| f.client.event_id().to_string()),
            host: match mode {
                Mode::Host => inner.hosting.as_ref().map(Hosting::info),
                Mode::Join | Mode::None => None,
            },
            signed_out: inner.venue.as_ref().and_then(|v| v.signed_out()),
            server_key: inner
                .venue
                .as_ref()
                .and_then(|v| v.key())
                .map(|k| k.short()),
            settings: self.settings(),
            sound: self.sound_state(),
        }
    }

    /// Tells every window the app view changed.
    pub async fn announce(&self) {
        let s = self.app_view().await;
        drop(self.app.emit(events::APP, s));
    }

    /// `pin`: the server's key when this app knows it (its own server);
    /// else the one pinned when it joined, or the first seen.
    fn venue_config(
        &self,
        server: String,
        join_code: String,
        pin: Option<pitboss_tls::Fingerprint>,
    ) -> VenueConfig {
        let s = self.settings();
        VenueConfig {
            cache_path: self.data_dir.join("cache").join(cache_name(&server)),
            server,
            pin,
            join_code,
            name: s.operator(),
            device: s.device_name.clone(),
        }
    }

    /// Starts hosting (if not yet) and follows the last or the demo event.
    pub async fn host(&self) -> Result<AppView, CmdError> {
        let mut inner = self.inner.lock().await;
        if let Some(h) = inner.hosting.as_mut() {
            h.list_addresses();
        } else {
            let h = Hosting::start(self.data_dir.join("server")).await?;
            inner.hosting = Some(h);
        }
        let (url, code, demo, key) = match &inner.hosting {
            Some(h) => (
                h.local_url(),
                h.coordinator_code(),
                h.demo_event_id().map(str::to_string),
                h.fingerprint(),
            ),
            None => return Err(CmdError::new("internal", "no server")),
        };
        let venue = Venue::new(self.venue_config(url, code, Some(key)))?;
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
            .or(demo)
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
        Ok(self.app_view().await)
    }

    /// Joins a venue by address and join code (checked with the server).
    /// The server's key is pinned at the first contact (then shown to
    /// compare with the host's screen); `new_key`: a person re-pairs a host
    /// that was reinstalled, so the key pinned before is forgotten first.
    pub async fn join(
        &self,
        address: &str,
        join_code: &str,
        new_key: bool,
    ) -> Result<AppView, CmdError> {
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
        let cfg = self.venue_config(server.clone(), code.to_string(), None);
        if new_key {
            Venue::new(cfg.clone())?.forget_key()?;
        }
        let venue = Venue::new(cfg)?;
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
        Ok(self.app_view().await)
    }

    /// Back to the connect screen. A host keeps serving the room.
    pub async fn leave(&self) -> AppView {
        let mut inner = self.inner.lock().await;
        self.unfollow_locked(&mut inner).await;
        inner.venue = None;
        inner.role = None;
        inner.saved = None;
        drop(settings::save_venue(&self.app, None));
        drop(inner);
        self.announce().await;
        self.app_view().await
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
        let venue = match Venue::new(self.venue_config(server.clone(), join_code.clone(), None)) {
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

    /// Creates an event (the server checks the details and the levels, and
    /// the role) and follows it.
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
        let venue = self.venue().await?;
        let id = self.venue_result(venue.create_event(&ev).await).await?;
        self.open_event(&id).await?;
        Ok(id)
    }

    pub async fn open_event(&self, event_id: &str) -> Result<AppView, CmdError> {
        let mut inner = self.inner.lock().await;
        self.follow_locked(&mut inner, event_id).await?;
        self.save_venue_locked(&inner);
        drop(inner);
        self.announce().await;
        Ok(self.app_view().await)
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
        let tasks = crate::push::spawn(
            &self.app,
            &client,
            venue.server().to_string(),
            inner.role.clone(),
        );
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
    pub async fn connection_status(&self) -> Option<StatusView> {
        let c = self.client().await.ok()?;
        let server = self
            .inner
            .lock()
            .await
            .venue
            .as_ref()
            .map(|v| v.server().to_string())?;
        Some(StatusView::of(&c, &server))
    }

    pub async fn event_state(&self) -> Option<EventView> {
        let c = self.client().await.ok()?;
        let role = self.inner.lock().await.role.clone();
        EventView::of(&c, role.as_deref())
    }

    /// Hands an op to the engine's durable outbox. The op itself is checked
    /// by the engine (and again by the server); the shell adds only the two
    /// rules that are about this device rather than the op.
    pub async fn submit(&self, op: Value) -> Result<String, CmdError> {
        let op: Op = serde_json::from_value(op)
            .map_err(|e| CmdError::new("invalid", format!("not an operation: {e}")))?;
        let (client, role, hosting) = {
            let inner = self.inner.lock().await;
            let c = inner
                .following
                .as_ref()
                .map(|f| f.client.clone())
                .ok_or_else(|| CmdError::new("invalid", "open an event first"))?;
            (c, inner.role.clone(), inner.hosting.is_some())
        };
        // An op this device's role may never send is refused here, not
        // queued: the outbox is durable, and it would sit there across
        // restarts until the server refused it.
        let may = role
            .as_deref()
            .and_then(Role::parse)
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

    pub async fn refresh(&self) -> Result<(), CmdError> {
        self.client().await?.refresh().await;
        Ok(())
    }

    pub fn banner(&self, message: &str) {
        let n = NoticeView::Banner {
            message: message.to_string(),
        };
        drop(self.app.emit(events::NOTICE, n));
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
