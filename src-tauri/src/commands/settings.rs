//! What a person sets on this device: names, sound, alerts, theme.

use tauri::State;

use super::Res;
use crate::ipc::SoundState;
use crate::settings::Settings;
use crate::shell::Shell;

#[tauri::command]
pub fn get_settings(shell: State<'_, Shell>) -> Settings {
    shell.settings()
}

#[tauri::command]
pub fn set_settings(shell: State<'_, Shell>, settings: Settings) -> Res<Settings> {
    shell.set_settings(settings)
}

#[tauri::command]
pub async fn sound_check(shell: State<'_, Shell>) -> Res<SoundState> {
    let s = shell.inner();
    // The check waits for the audio device; keep it off the async workers.
    Ok(tokio::task::block_in_place(|| s.sound_check()))
}
