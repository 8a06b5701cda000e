//! Pitboss desktop app: a thin Tauri 2 shell. [`commands`] are what the
//! webview calls, [`shell::Shell`] drives the client engine (and, in host
//! mode, the in-process server, [`hosting`]), and [`push`] sends what the
//! engine knows to the windows as the events and payloads of [`ipc`]
//! (docs/app-ipc.md). This file only builds the app.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod error;
mod export;
#[cfg(test)]
mod fixtures;
mod hosting;
mod ipc;
mod push;
mod settings;
mod shell;
mod view;

use tauri::Manager;

use shell::Shell;

/// When the process started, to log how long the window took to be ready.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

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
    // chose otherwise.
    #[cfg(target_os = "linux")]
    if std::env::var_os("WEBKIT_DISABLE_DMABUF_RENDERER").is_none() {
        std::env::set_var("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
    }
    // `--host` (what `cargo xtask run` passes) hosts at once with the demo
    // event; otherwise the app returns to the venue of its last run.
    let force_host = std::env::args().any(|a| a == "--host");

    let result = tauri::Builder::default()
        .plugin(tauri_plugin_store::Builder::new().build())
        .invoke_handler(commands::handler())
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
