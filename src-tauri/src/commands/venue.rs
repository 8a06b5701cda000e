//! Hosting, joining and leaving a venue, and its list of events.

use pitboss_core::protocol::EventSummary;
use tauri::State;

use super::Res;
use crate::ipc::AppView;
use crate::shell::Shell;

#[tauri::command]
pub async fn app_state(shell: State<'_, Shell>) -> Res<AppView> {
    // The UI's first command comes right after its first render: how long
    // the window took to be usable is worth one log line.
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Some(t) = crate::STARTED.get() {
            tracing::info!(ms = t.elapsed().as_millis() as u64, "window ready");
        }
    });
    Ok(shell.app_view().await)
}

#[tauri::command]
pub async fn host_venue(shell: State<'_, Shell>) -> Res<AppView> {
    shell.host().await
}

#[tauri::command]
pub async fn join_venue(
    shell: State<'_, Shell>,
    address: String,
    join_code: String,
    new_key: Option<bool>,
) -> Res<AppView> {
    shell
        .join(&address, &join_code, new_key.unwrap_or(false))
        .await
}

#[tauri::command]
pub async fn leave_venue(shell: State<'_, Shell>) -> Res<AppView> {
    Ok(shell.leave().await)
}

#[tauri::command]
pub async fn list_events(shell: State<'_, Shell>) -> Res<Vec<EventSummary>> {
    shell.list_events().await
}
