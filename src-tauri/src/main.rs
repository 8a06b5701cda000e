//! Pitboss desktop app (foundation stage): hosts the venue server in-process
//! with the demo event and shows its clock, read-only.
//!
//! This shell only wires things together: the server library does the
//! work, `view.rs` computes what is shown, the webview renders it.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod view;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pitboss_core::protocol::ServerMsg;
use pitboss_server::writer::Outbound;
use serde::Serialize;
use tauri::{Emitter, Manager};

use view::{ClockView, Local};

/// Event names the UI listens to; one place, so both sides agree.
pub mod events {
    pub const CLOCK_VIEW: &str = "clock://view";
}

/// How often the clock view is pushed to the window. Four times a second
/// keeps the seconds digit crisp without burning CPU on an idle screen.
const TICK: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct HostInfo {
    address: String,
    coordinator_code: String,
    dealer_code: String,
}

struct AppState {
    server: Arc<pitboss_server::Server>,
    local: Arc<Mutex<Option<Local>>>,
    host: HostInfo,
}

#[derive(Debug, Serialize)]
struct CmdError {
    code: &'static str,
    message: String,
}

#[tauri::command]
fn clock_view(state: tauri::State<'_, AppState>) -> Result<Option<ClockView>, CmdError> {
    let guard = state.local.lock().map_err(|_| CmdError {
        code: "internal",
        message: "state lock poisoned".into(),
    })?;
    Ok(guard.as_ref().map(|l| view::view(l, state.server.now_ms())))
}

#[tauri::command]
fn host_info(state: tauri::State<'_, AppState>) -> HostInfo {
    state.host.clone()
}

/// The address to host on: `PITBOSS_LISTEN`, else port 7878 on every
/// interface so the venue's other devices can reach it; a free port if 7878
/// is taken.
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

async fn start_host(data_dir: std::path::PathBuf) -> anyhow::Result<pitboss_server::Server> {
    let mut last = None;
    for addr in listen_addrs() {
        let mut config = pitboss_server::Config::new(addr, data_dir.clone());
        config.demo = true;
        match pitboss_server::start(config).await {
            Ok(s) => return Ok(s),
            Err(e) => {
                tracing::warn!("cannot host on {addr}: {e:#}");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no address to listen on")))
}

/// Keeps `local` equal to the server's state of `event_id`, pushed
/// in-process; resubscribes from the last seq if the feed breaks.
async fn follow(
    server: Arc<pitboss_server::Server>,
    event_id: String,
    local: Arc<Mutex<Option<Local>>>,
) {
    loop {
        let after = local.lock().ok().and_then(|l| l.as_ref().map(|l| l.seq));
        let mut rx = match server.subscribe_local(&event_id, after).await {
            Ok(rx) => rx,
            Err(e) => {
                tracing::error!("cannot follow event {event_id}: {}", e.body.message);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        'feed: while let Some(out) = rx.recv().await {
            let frames = match out {
                Outbound::Frame(f) => vec![f],
                Outbound::Batch(fs) => fs,
                Outbound::Close(..) => break,
            };
            for f in frames {
                let Ok(msg) = serde_json::from_str::<ServerMsg>(&f) else {
                    continue;
                };
                let Ok(mut guard) = local.lock() else { return };
                if !Local::apply(&mut guard, msg) {
                    break 'feed;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "pitboss=info,pitboss_server=info".into()),
        )
        .init();
    // WebKitGTK's DMA-BUF renderer leaves the window blank on many Linux
    // laptops (NVIDIA, some Wayland compositors); turn it off unless the user
    // chose otherwise (PLATFORM.md).
    #[cfg(target_os = "linux")]
    if std::env::var_os("WEBKIT_DISABLE_DMABUF_RENDERER").is_none() {
        std::env::set_var("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
    }

    let result = tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![clock_view, host_info])
        .setup(|app| {
            let data_dir = app.path().app_data_dir()?.join("server");
            let server = tauri::async_runtime::block_on(start_host(data_dir))?;
            let event_id = server
                .demo_event_id()
                .map(str::to_string)
                .ok_or_else(|| anyhow::anyhow!("the host has no event to show"))?;
            let host = HostInfo {
                address: server.local_addr().to_string(),
                coordinator_code: server.join_codes().coordinator.clone(),
                dealer_code: server.join_codes().dealer.clone(),
            };
            tracing::info!(address = host.address, "hosting the venue");
            let server = Arc::new(server);
            let local = Arc::new(Mutex::new(None));
            tauri::async_runtime::spawn(follow(server.clone(), event_id, local.clone()));
            let handle = app.handle().clone();
            let (srv, loc) = (server.clone(), local.clone());
            tauri::async_runtime::spawn(async move {
                let mut tick = tokio::time::interval(TICK);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tick.tick().await;
                    let v = loc
                        .lock()
                        .ok()
                        .and_then(|l| l.as_ref().map(|l| view::view(l, srv.now_ms())));
                    if let Some(v) = v {
                        drop(handle.emit(events::CLOCK_VIEW, v));
                    }
                }
            });
            app.manage(AppState {
                server,
                local,
                host,
            });
            Ok(())
        })
        .run(tauri::generate_context!("../tauri.conf.json"));
    if let Err(e) = result {
        eprintln!("Pitboss could not start: {e}");
        std::process::exit(1);
    }
}
