//! The open event: creating and opening one, its state, clock and
//! connection, the ops a person sends, and the wall-screen window.

use serde_json::Value;
use tauri::{Manager, State, WebviewUrl, WebviewWindowBuilder};

use super::Res;
use crate::error::CmdError;
use crate::ipc::{AppView, Created, EventView, StatusView, Submitted, Template};
use crate::shell::Shell;
use crate::view::ClockView;

/// The structures the create-event form offers. Their ids belong to the
/// app, not the server, so `create_event` turns one into levels here.
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
pub fn structure_templates() -> Vec<Template> {
    templates()
}

#[tauri::command]
pub async fn create_event(
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
pub async fn open_event(shell: State<'_, Shell>, event_id: String) -> Res<AppView> {
    shell.open_event(&event_id).await
}

#[tauri::command]
pub async fn event_state(shell: State<'_, Shell>) -> Res<Option<EventView>> {
    Ok(shell.event_state().await)
}

#[tauri::command]
pub async fn connection_status(shell: State<'_, Shell>) -> Res<Option<StatusView>> {
    Ok(shell.connection_status().await)
}

#[tauri::command]
pub async fn clock_view(shell: State<'_, Shell>) -> Res<Option<ClockView>> {
    Ok(shell.clock_view().await)
}

/// Takes the op as JSON so that a malformed one is answered `invalid` in
/// the usual error shape, not as Tauri's own argument error.
#[tauri::command]
pub async fn submit_op(shell: State<'_, Shell>, op: Value) -> Res<Submitted> {
    Ok(Submitted {
        op_id: shell.submit(op).await?,
    })
}

#[tauri::command]
pub async fn refresh(shell: State<'_, Shell>) -> Res<()> {
    shell.refresh().await
}

/// Opens the wall-screen window (or brings it forward).
#[tauri::command]
pub fn open_display(app: tauri::AppHandle) -> Res<()> {
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
