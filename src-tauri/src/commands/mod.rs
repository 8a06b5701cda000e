//! The `#[tauri::command]`s, grouped as the screens use them. Each one
//! checks its arguments, makes one call into the [`Shell`](crate::shell::Shell)
//! and answers with a typed payload of [`ipc`](crate::ipc) or a
//! [`CmdError`]. Command names are the UI's contract (docs/app-ipc.md).

pub mod event;
pub mod settings;
pub mod trust;
pub mod venue;

use crate::error::CmdError;

type Res<T> = Result<T, CmdError>;

/// Every command, for `tauri::Builder::invoke_handler`.
pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        venue::app_state,
        venue::host_venue,
        venue::join_venue,
        venue::leave_venue,
        venue::list_events,
        event::structure_templates,
        event::create_event,
        event::open_event,
        event::event_state,
        event::clock_view,
        event::connection_status,
        event::submit_op,
        event::refresh,
        event::open_display,
        settings::get_settings,
        settings::set_settings,
        settings::sound_check,
        trust::pairing_create,
        trust::pairing_list,
        trust::pairing_cancel,
        trust::devices_list,
        trust::device_revoke,
        trust::lock_venue,
        trust::audit_list,
        trust::export_audit,
    ]
}
