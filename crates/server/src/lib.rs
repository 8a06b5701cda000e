//! The Pitboss server: the one authority of a venue.
//!
//! It accepts or rejects every change, numbers the accepted ones per event,
//! stores them (SQLite, WAL) and pushes them to that event's subscribers
//! over WebSocket, with an HTTP API beside it on the same port. It runs on
//! its own (`pitboss-server`) or inside the director's app ([`start`]).
//!
//! Threads: the HTTP/WebSocket side runs on tokio; the store and the
//! subscriber registry (`fanout.rs`) belong to one writer loop (`writer/`)
//! that every change goes through: a task with `synchronous = NORMAL`, a
//! thread of its own with FULL, where each commit waits for an fsync. A
//! second thread checkpoints the store's log.

pub mod auth;
pub mod demo;
pub mod error;
pub mod fanout;
pub mod guard;
pub mod http;
pub mod limits;
pub mod listener;
pub mod store;
pub mod time;
pub mod writer;
pub mod ws;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context as _;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;
use pitboss_core::limits::MAX_MESSAGE_BYTES;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use auth::JoinCodes;
pub use limits::LimitConfig;
pub use store::Synchronous;
pub use writer::EventSnapshot;

use auth::Auth;
use writer::{Writer, WriterHandle};

/// A venue's default for [`Config::session_idle`]: a week.
pub const DEFAULT_SESSION_IDLE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// How to run a server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Folder of the store (`pitboss.db`).
    pub data_dir: PathBuf,
    /// Join codes; when absent, the ones stored from the last run, or new
    /// random ones.
    pub coordinator_code: Option<String>,
    pub dealer_code: Option<String>,
    pub display_code: Option<String>,
    /// Names devices may reach this host by besides its addresses,
    /// `localhost` and its own host name (see [`guard`]).
    pub host_names: Vec<String>,
    /// Rate limits and connection caps (see `limits.rs`).
    pub limits: LimitConfig,
    /// Create the demo event when the store has no event yet.
    pub demo: bool,
    /// Changes kept per event for resumes (at least 10,000 by default).
    pub retention: u64,
    pub synchronous: Synchronous,
    /// How often the server pings each WebSocket (a WebSocket Ping frame).
    pub ws_ping_every: std::time::Duration,
    /// A WebSocket that has sent nothing (not even a pong) for this long is
    /// dead: a laptop that slept or walked out of Wi-Fi leaves a half-open
    /// socket behind, and its subscriptions would otherwise be fed forever.
    pub ws_dead_after: std::time::Duration,
    /// Deliver changes by reading them back from the store this often,
    /// not at once after their commit: the benchmark's reference for what
    /// polling costs. Pongs then carry no `changes_through_ms`.
    #[cfg(feature = "bench-polling")]
    pub poll_every: Option<std::time::Duration>,
    /// A session unused this long expires: a laptop lost or lent at the
    /// last event no longer gets in with its token.
    pub session_idle: std::time::Duration,
}

impl Config {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Config {
        Config {
            listen,
            data_dir,
            coordinator_code: None,
            dealer_code: None,
            display_code: None,
            host_names: Vec::new(),
            limits: LimitConfig::default(),
            demo: false,
            retention: 10_000,
            synchronous: Synchronous::Full,
            ws_ping_every: std::time::Duration::from_secs(10),
            ws_dead_after: std::time::Duration::from_secs(30),
            session_idle: DEFAULT_SESSION_IDLE,
            #[cfg(feature = "bench-polling")]
            poll_every: None,
        }
    }
}

/// What every request handler shares.
pub struct AppState {
    pub writer: WriterHandle,
    pub auth: Arc<Auth>,
    pub clock: time::ServerClock,
    /// Up to when every change is queued on the sockets, for pongs. None
    /// with polling delivery, where no such promise holds.
    pub horizon: Option<Arc<time::Horizon>>,
    /// Cancelled on shutdown: open WebSockets close with 1001.
    pub shutdown: CancellationToken,
    /// WebSocket connection tasks, awaited (briefly) on shutdown.
    pub tracker: TaskTracker,
    pub next_conn: AtomicU64,
    pub ws_ping_every: std::time::Duration,
    pub ws_dead_after: std::time::Duration,
    /// WebSockets open now, shown by `/api/health` for a venue's IT person.
    pub open_websockets: AtomicU64,
    pub limits: limits::Limits,
    /// The names a `Host` header may carry (see [`guard`]).
    pub host_names: Vec<String>,
    /// This server's TLS key, which pairing exchanges prove over.
    pub key: pitboss_tls::Fingerprint,
    /// A session unused this long expires (its device joins again).
    pub session_idle_ms: i64,
    /// Open WebSockets per device (operator id): what a revoke closes.
    live: Mutex<HashMap<String, Vec<LiveConn>>>,
    /// When each device was last heard from, and when that was last stored.
    seen: Mutex<HashMap<String, (i64, i64)>>,
}

/// How often "last seen" is written to the store per device: every
/// request updates it in memory; the store needs it only to survive a
/// restart, not to the second.
const TOUCH_EVERY_MS: i64 = 30_000;

impl AppState {
    /// Notes that a device was heard from now.
    pub fn touch(&self, operator_id: &str) {
        let now = self.clock.now_ms();
        let store = {
            let Ok(mut seen) = self.seen.lock() else {
                return;
            };
            match seen.get_mut(operator_id) {
                Some((last, stored)) => {
                    *last = now;
                    if now - *stored >= TOUCH_EVERY_MS {
                        *stored = now;
                        true
                    } else {
                        false
                    }
                }
                None => {
                    seen.insert(operator_id.to_string(), (now, now));
                    true
                }
            }
        };
        if store {
            // try_send: a full writer queue is busy with real work; a
            // last-seen time can wait for the next request.
            let _queued = self.writer.try_touch(operator_id.to_string(), now);
        }
    }

    /// When a device was last heard from since this server started, or 0.
    pub fn last_seen(&self, operator_id: &str) -> i64 {
        self.seen
            .lock()
            .ok()
            .and_then(|m| m.get(operator_id).map(|(last, _)| *last))
            .unwrap_or(0)
    }

    pub fn live_connections(&self, operator_id: &str) -> u32 {
        self.live
            .lock()
            .ok()
            .and_then(|m| m.get(operator_id).map(|v| v.len() as u32))
            .unwrap_or(0)
    }

    /// Registers an open WebSocket of a device, so that a revoke can close it.
    pub fn register_live(&self, operator_id: &str, conn: LiveConn) {
        if let Ok(mut m) = self.live.lock() {
            m.entry(operator_id.to_string()).or_default().push(conn);
        }
    }

    pub fn unregister_live(&self, operator_id: &str, conn_id: u64) {
        if let Ok(mut m) = self.live.lock() {
            if let Some(v) = m.get_mut(operator_id) {
                v.retain(|c| c.conn_id != conn_id);
                if v.is_empty() {
                    m.remove(operator_id);
                }
            }
        }
    }

    /// Closes every open WebSocket of a device (after its revoke
    /// committed); how many there were.
    pub fn close_device(&self, operator_id: &str) -> usize {
        let conns = self
            .live
            .lock()
            .ok()
            .and_then(|mut m| m.remove(operator_id))
            .unwrap_or_default();
        for c in &conns {
            c.close_revoked();
        }
        conns.len()
    }
}

/// An open WebSocket as the revoke registry holds it: clones of its queue
/// and kill switch, which the connection has anyway (no allocation per
/// idle screen).
pub struct LiveConn {
    pub conn_id: u64,
    /// Cancelled on revoke: the connection stops reading at once, tries
    /// the 1008 close for a moment and drops the socket, whether or not
    /// its peer reads (a close queued behind frames a stalled peer never
    /// takes would never leave).
    pub revoke: CancellationToken,
}

impl LiveConn {
    pub fn close_revoked(&self) {
        self.revoke.cancel();
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    fingerprint: pitboss_tls::Fingerprint,
    demo_event_id: Option<String>,
    state: Arc<AppState>,
    serve: tokio::task::JoinHandle<()>,
    writer_task: writer::WriterTask,
}

fn normalize_code(code: &str) -> anyhow::Result<String> {
    let c = code.trim().to_ascii_uppercase();
    anyhow::ensure!(
        (4..=64).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_graphic()),
        "a join code must be 4 to 64 printable characters without spaces"
    );
    Ok(c)
}

/// Opens the store, starts the writer, binds the port and serves.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    let conn = store::open(&config.data_dir, config.synchronous)?;
    let mut codes = JoinCodes {
        coordinator: store::get_setting(&conn, "coordinator_code")?
            .unwrap_or_else(auth::random_join_code),
        dealer: store::get_setting(&conn, "dealer_code")?.unwrap_or_else(auth::random_join_code),
        display: store::get_setting(&conn, "display_code")?.unwrap_or_else(auth::random_join_code),
    };
    if let Some(c) = &config.coordinator_code {
        codes.coordinator = normalize_code(c)?;
    }
    if let Some(c) = &config.dealer_code {
        codes.dealer = normalize_code(c)?;
    }
    if let Some(c) = &config.display_code {
        codes.display = normalize_code(c)?;
    }
    // A stored random display code may collide with a code given on the
    // command line: draw a new one rather than refuse to start.
    while config.display_code.is_none()
        && (codes.display == codes.coordinator || codes.display == codes.dealer)
    {
        codes.display = auth::random_join_code();
    }
    anyhow::ensure!(
        codes.coordinator != codes.dealer
            && codes.display != codes.coordinator
            && codes.display != codes.dealer,
        "the coordinator, dealer and display join codes must all differ"
    );
    store::set_setting(&conn, "coordinator_code", &codes.coordinator)?;
    store::set_setting(&conn, "dealer_code", &codes.dealer)?;
    store::set_setting(&conn, "display_code", &codes.display)?;
    let sessions: Arc<RwLock<_>> = Arc::new(RwLock::new(
        store::load_sessions(&conn)?.into_iter().collect(),
    ));

    let clock = time::ServerClock::new();
    let (tx, rx) = mpsc::channel(4096);
    let horizon = Arc::new(time::Horizon::default());
    let checkpointer = store::Checkpointer::start(&config.data_dir)?;
    #[cfg(feature = "bench-polling")]
    let poll_every = config.poll_every;
    #[cfg(not(feature = "bench-polling"))]
    let poll_every: Option<std::time::Duration> = None;
    let writer = Writer::new(
        conn,
        clock,
        horizon.clone(),
        config.retention,
        sessions.clone(),
        checkpointer,
    );
    #[cfg(feature = "bench-polling")]
    let writer = match poll_every {
        Some(_) => writer.polling(),
        None => writer,
    };
    let writer_task = writer
        .start(rx, config.synchronous == Synchronous::Normal)
        .context("cannot start the writer")?;
    let handle = WriterHandle::new(tx);

    let demo_event_id = if config.demo {
        Some(demo::ensure_demo_event(&handle).await?)
    } else {
        None
    };

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // Caps TCP connections per address and closes silent ones before any
    // request is read; also sets TCP_NODELAY; then TLS with the server's
    // kept key, which devices pin (see `listener.rs`). Tapped
    // (with nothing) so that handlers get the peer's address as ConnectInfo.
    let cap = config
        .limits
        .enabled
        .then_some(config.limits.max_tcp_connections_per_address);
    let identity = pitboss_tls::Identity::load_or_create(&config.data_dir)
        .context("cannot load or make the server's TLS key")?;
    let listener = axum::serve::ListenerExt::tap_io(
        listener::TlsListener::new(
            listener::CappedListener::new(listener, cap),
            identity.server_config(),
        )?,
        |_| {},
    );
    let state = Arc::new(AppState {
        writer: handle,
        auth: Arc::new(Auth::new(codes, sessions)),
        clock,
        horizon: poll_every.is_none().then_some(horizon),
        shutdown: CancellationToken::new(),
        tracker: TaskTracker::new(),
        next_conn: AtomicU64::new(1),
        ws_ping_every: config.ws_ping_every,
        ws_dead_after: config.ws_dead_after,
        open_websockets: AtomicU64::new(0),
        limits: limits::Limits::new(config.limits.clone()),
        host_names: guard::own_names(&config.host_names),
        key: identity.fingerprint(),
        session_idle_ms: i64::try_from(config.session_idle.as_millis()).unwrap_or(i64::MAX),
        live: Mutex::default(),
        seen: Mutex::default(),
    });
    {
        let (st, stop) = (state.clone(), state.shutdown.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => st.limits.forget_quiet(std::time::Instant::now()),
                }
            }
        });
    }
    #[cfg(feature = "bench-polling")]
    if let Some(every) = poll_every {
        let (writer, stop) = (state.writer.clone(), state.shutdown.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => writer.poll().await,
                }
            }
        });
    }
    let app = router(state.clone());
    let shutdown = state.shutdown.clone();
    let serve = tokio::spawn(async move {
        let r = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
        if let Err(e) = r {
            tracing::error!("server stopped: {e}");
        }
    });
    tracing::info!(%addr, "pitboss server listening");
    Ok(Server {
        addr,
        fingerprint: identity.fingerprint(),
        demo_event_id,
        state,
        serve,
        writer_task,
    })
}

/// Every route of the public API.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/health", get(http::health))
        .route("/api/session", post(http::create_session))
        .route(
            "/api/events",
            get(http::list_events).post(http::create_event),
        )
        .route("/api/events/{id}/snapshot", get(http::snapshot))
        .route("/api/events/{id}/ops", post(http::post_op))
        .route("/api/events/{id}/changes", get(http::changes))
        .route("/api/events/{id}/audit", get(http::audit))
        .route("/api/events/{id}/audit.csv", get(http::audit_csv))
        .route(
            "/api/pairing",
            get(http::list_pairing).post(http::create_pairing),
        )
        .route("/api/pairing/{code}", delete(http::cancel_pairing))
        .route("/api/pairing/exchange", post(http::pairing_exchange))
        .route("/api/pairing/confirm", post(http::pairing_confirm))
        .route("/api/devices", get(http::list_devices))
        .route("/api/join-codes", get(http::join_codes))
        .route("/api/devices/{id}/revoke", post(http::revoke_device))
        .route("/api/lock", post(http::lock_venue))
        .route("/ws", get(ws::upgrade))
        .fallback(http::not_found)
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::check,
        ))
        .with_state(state)
}

impl Server {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://address:port`, for a client on this machine.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The fingerprint of this server's TLS key: what devices pin and a
    /// person compares.
    pub fn fingerprint(&self) -> pitboss_tls::Fingerprint {
        self.fingerprint
    }

    /// The long join codes as they are now (a revoke changes the code the
    /// revoked device joined with).
    pub fn join_codes(&self) -> JoinCodes {
        self.state.auth.codes()
    }

    /// The demo event, when started with `demo`.
    pub fn demo_event_id(&self) -> Option<&str> {
        self.demo_event_id.as_deref()
    }

    /// Server time now, in ms since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.state.clock.now_ms()
    }

    /// An event's state as a snapshot, for an in-process host.
    pub async fn snapshot(&self, event_id: &str) -> Result<EventSnapshot, error::ApiError> {
        self.state.writer.snapshot(event_id.to_string()).await
    }

    /// Resolves when the server stops serving (after [`Server::shutdown`] or a
    /// fatal error).
    pub async fn stopped(&mut self) {
        drop((&mut self.serve).await);
    }

    /// Prints the lines scripts (and the tests) read from a server binary's
    /// standard output: keep their shape.
    pub fn announce(&self) {
        use std::io::Write as _;
        let codes = self.join_codes();
        println!("listening on https://{}", self.local_addr());
        println!("key fingerprint: {}", self.fingerprint.hex());
        println!("key fingerprint (short): {}", self.fingerprint.short());
        println!("coordinator code: {}", codes.coordinator);
        println!("dealer code: {}", codes.dealer);
        println!("display code: {}", codes.display);
        if let Some(id) = self.demo_event_id() {
            println!("demo event: {id}");
        }
        drop(std::io::stdout().flush());
    }

    /// Serves until SIGINT or SIGTERM, then shuts down cleanly: what a
    /// server binary does with its life.
    pub async fn run_until_signal(mut self) -> anyhow::Result<()> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            () = self.stopped() => anyhow::bail!("the server stopped unexpectedly"),
        }
        self.shutdown().await;
        tracing::info!("stopped cleanly");
        Ok(())
    }

    /// Stops accepting, closes WebSockets with 1001, lets the writer commit
    /// what it has queued, and closes the store.
    pub async fn shutdown(self) {
        self.state.shutdown.cancel();
        drop(self.serve.await);
        self.state.tracker.close();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.state.tracker.wait())
            .await;
        drop(self.state);
        // The writer exits when the last handle is gone, closing the store.
        self.writer_task.join().await;
    }
}
