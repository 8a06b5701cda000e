//! Pitboss desktop app: a thin Tauri 2 shell. Commands validate their
//! arguments and make one call into [`shell::Shell`], which drives the
//! client engine (and, in host mode, the in-process server); state reaches
//! the windows as pushed events (docs/app-ipc.md).

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod export;
mod settings;
mod shell;
mod view;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tauri::{Manager, State, WebviewUrl, WebviewWindowBuilder};

use settings::Settings;
use shell::{AppState, CmdError, Shell, SoundState};

type Res<T> = Result<T, CmdError>;

/// When the process started, to log how long the window took to be ready
/// (the UI's first command comes right after its first render).
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

#[tauri::command]
async fn app_state(shell: State<'_, Shell>) -> Res<AppState> {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Some(t) = STARTED.get() {
            tracing::info!(ms = t.elapsed().as_millis() as u64, "window ready");
        }
    });
    Ok(shell.app_state().await)
}

#[tauri::command]
async fn host_venue(shell: State<'_, Shell>) -> Res<AppState> {
    shell.host().await
}

#[tauri::command]
async fn join_venue(shell: State<'_, Shell>, address: String, join_code: String) -> Res<AppState> {
    shell.join(&address, &join_code).await
}

#[tauri::command]
async fn leave_venue(shell: State<'_, Shell>) -> Res<AppState> {
    Ok(shell.leave().await)
}

#[tauri::command]
async fn list_events(shell: State<'_, Shell>) -> Res<Vec<pitboss_core::protocol::EventSummary>> {
    shell.list_events().await
}

#[derive(Serialize)]
struct Template {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    levels: Vec<pitboss_core::Level>,
}

fn templates() -> Vec<Template> {
    use pitboss_core::structure::{deepstack_template, turbo_template};
    vec![
        Template {
            id: "deepstack",
            name: "Deepstack",
            description: "20-minute levels, big blind ante from level 4, two breaks with color-ups",
            levels: deepstack_template(),
        },
        Template {
            id: "turbo",
            name: "Turbo",
            description: "10-minute levels, one break",
            levels: turbo_template(),
        },
    ]
}

#[tauri::command]
fn structure_templates() -> Vec<Template> {
    templates()
}

#[derive(Serialize)]
struct Created {
    id: String,
}

#[tauri::command]
async fn create_event(
    shell: State<'_, Shell>,
    name: String,
    template_id: String,
    starting_stack: u64,
    buy_in: u64,
) -> Res<Created> {
    let levels = templates()
        .into_iter()
        .find(|t| t.id == template_id)
        .map(|t| t.levels)
        .ok_or_else(|| {
            CmdError::new(
                "invalid",
                format!("no structure template \"{template_id}\""),
            )
        })?;
    let id = shell
        .create_event(name, levels, starting_stack, buy_in)
        .await?;
    Ok(Created { id })
}

#[tauri::command]
async fn open_event(shell: State<'_, Shell>, event_id: String) -> Res<AppState> {
    shell.open_event(&event_id).await
}

#[tauri::command]
async fn event_state(shell: State<'_, Shell>) -> Res<Option<Value>> {
    Ok(shell.event_state().await)
}

#[tauri::command]
async fn connection_status(shell: State<'_, Shell>) -> Res<Option<Value>> {
    Ok(shell.connection_status().await)
}

#[tauri::command]
async fn clock_view(shell: State<'_, Shell>) -> Res<Option<view::ClockView>> {
    Ok(shell.clock_view().await)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Submitted {
    op_id: String,
}

#[tauri::command]
async fn submit_op(shell: State<'_, Shell>, op: Value) -> Res<Submitted> {
    Ok(Submitted {
        op_id: shell.submit(op).await?,
    })
}

#[tauri::command]
async fn refresh(shell: State<'_, Shell>) -> Res<()> {
    shell.refresh().await
}

#[tauri::command]
fn get_settings(shell: State<'_, Shell>) -> Settings {
    shell.settings()
}

#[derive(Deserialize)]
struct SettingsArg(Settings);

#[tauri::command]
fn set_settings(shell: State<'_, Shell>, settings: SettingsArg) -> Res<Settings> {
    shell.set_settings(settings.0)
}

#[tauri::command]
async fn sound_check(shell: State<'_, Shell>) -> Res<SoundState> {
    let s = shell.inner();
    // The check waits for the audio device; keep it off the async workers.
    Ok(tokio::task::block_in_place(|| s.sound_check()))
}

/// A 6-digit pairing code for a device that is to join with `role`.
#[tauri::command]
async fn pairing_create(shell: State<'_, Shell>, role: String) -> Res<shell::PairingView> {
    shell.pairing_create(&role).await
}

#[tauri::command]
async fn pairing_list(shell: State<'_, Shell>) -> Res<shell::PairingListView> {
    shell.pairing_list().await
}

#[tauri::command]
async fn pairing_cancel(shell: State<'_, Shell>, code: String) -> Res<()> {
    shell.pairing_cancel(&code).await
}

#[tauri::command]
async fn devices_list(shell: State<'_, Shell>) -> Res<shell::DevicesView> {
    shell.devices_list().await
}

#[tauri::command]
async fn device_revoke(
    shell: State<'_, Shell>,
    operator_id: String,
) -> Res<pitboss_core::protocol::RevokeResult> {
    shell.device_revoke(&operator_id).await
}

/// The open event's audit trail, newest first; one incident's with
/// `incident_id`.
#[tauri::command]
async fn audit_list(
    shell: State<'_, Shell>,
    incident_id: Option<String>,
    limit: Option<u32>,
) -> Res<shell::AuditView> {
    shell.audit_list(incident_id, limit).await
}

#[tauri::command]
async fn export_audit(shell: State<'_, Shell>) -> Res<shell::ExportedAudit> {
    shell.export_audit().await
}

/// Opens the wall-screen window (or brings it forward).
#[tauri::command]
fn open_display(app: tauri::AppHandle) -> Res<()> {
    if let Some(w) = app.get_webview_window("display") {
        drop(w.show());
        drop(w.set_focus());
        return Ok(());
    }
    let fullscreen = std::env::var_os("PITBOSS_DISPLAY_WINDOWED").is_none();
    WebviewWindowBuilder::new(&app, "display", WebviewUrl::App("display.html".into()))
        .title("Pitboss — Display")
        .inner_size(1280.0, 720.0)
        .fullscreen(fullscreen)
        .build()
        .map_err(|e| CmdError::new("internal", format!("cannot open the display window: {e}")))?;
    Ok(())
}

fn main() {
    STARTED.get_or_init(std::time::Instant::now);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "pitboss=info,pitboss_server=info,pitboss_client=info,pitboss_sound=info".into()
            }),
        )
        .init();
    // WebKitGTK's DMA-BUF renderer leaves the window blank on many Linux
    // laptops (NVIDIA, some Wayland compositors); turn it off unless the user
    // chose otherwise (PLATFORM.md).
    #[cfg(target_os = "linux")]
    if std::env::var_os("WEBKIT_DISABLE_DMABUF_RENDERER").is_none() {
        std::env::set_var("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
    }
    // `--host` (what `cargo xtask run` passes) hosts at once with the demo
    // event; otherwise the app returns to the venue of its last run.
    let force_host = std::env::args().any(|a| a == "--host");

    let result = tauri::Builder::default()
        .plugin(tauri_plugin_store::Builder::new().build())
        .invoke_handler(tauri::generate_handler![
            app_state,
            host_venue,
            join_venue,
            leave_venue,
            list_events,
            structure_templates,
            create_event,
            open_event,
            event_state,
            clock_view,
            connection_status,
            submit_op,
            refresh,
            get_settings,
            set_settings,
            sound_check,
            open_display,
            pairing_create,
            pairing_list,
            pairing_cancel,
            devices_list,
            device_revoke,
            audit_list,
            export_audit,
        ])
        .setup(move |app| {
            let data_dir = app.path().app_data_dir()?;
            app.manage(Shell::new(app.handle().clone(), data_dir));
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                let shell = handle.state::<Shell>();
                shell.restore(force_host).await;
            });
            Ok(())
        })
        .run(tauri::generate_context!("../tauri.conf.json"));
    if let Err(e) = result {
        eprintln!("Pitboss could not start: {e}");
        std::process::exit(1);
    }
}
