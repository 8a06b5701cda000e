//! The three tasks that push what the engine knows to every window while an
//! event is followed: the clock frames (and the alerts), the event state and
//! connection status, and the answers to this device's ops. They run on the
//! async runtime, never in the webview, whose timers stop when it is hidden.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pitboss_client::alerts::Watcher;
use pitboss_client::Client;
use tauri::async_runtime::JoinHandle;
use tauri::{AppHandle, Emitter, Manager};

use crate::ipc::{events, EventView, NoticeView, StatusView};
use crate::shell::Shell;
use crate::view::{self, ClockView};

/// How often the clock is computed. Four times a second keeps the seconds
/// digit crisp; the numbers are computed here, in Rust, so a throttled
/// webview can never fall behind the real clock.
const TICK: Duration = Duration::from_millis(250);

/// Starts the pumps for `client`; aborting the handles stops them.
pub fn spawn(
    app: &AppHandle,
    client: &Arc<Client>,
    server: String,
    role: Option<String>,
) -> Vec<JoinHandle<()>> {
    vec![
        tauri::async_runtime::spawn(tick_loop(app.clone(), client.clone())),
        tauri::async_runtime::spawn(push_state(app.clone(), client.clone(), server, role)),
        tauri::async_runtime::spawn(push_notices(app.clone(), client.clone())),
    ]
}

/// Pushes the clock and plays the alerts the watcher allows: one sound
/// per real level change, never for a resync or a catch-up.
async fn tick_loop(app: AppHandle, client: Arc<Client>) {
    let mut watcher = Watcher::new(&client);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The last frame sent, and when: a frame goes out when what the screens
    // show changes, and at least once a second (for a window opened since).
    let mut sent: Option<(ClockView, Instant)> = None;
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
            // Nothing was heard for it (it was not live), but say what
            // changed while the device was away.
            let n = NoticeView::slept_through(&st, &r.state.structure);
            drop(app.emit(events::NOTICE, n));
        }
        let v = view::view(&r, client.server_now_ms());
        if let Some(a) = &alert {
            if let Some(shell) = app.try_state::<Shell>() {
                shell.play(a.sound);
            }
            let n = NoticeView::Alert {
                sound: a.sound,
                title: v.title.clone(),
            };
            drop(app.emit(events::NOTICE, n));
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
            sent = Some((v, Instant::now()));
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
            if let Some(s) = EventView::of(&client, role.as_deref()) {
                drop(app.emit(events::STATE, s));
            }
        }
        drop(app.emit(events::STATUS, StatusView::of(&client, &server)));
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
        let Some(payload) = NoticeView::from_engine(&n) else {
            continue;
        };
        if let NoticeView::SignedOut { .. } = payload {
            // Every screen must switch to "signed out", not only the
            // status bar: the app view says so.
            if let Some(shell) = app.try_state::<Shell>() {
                shell.announce().await;
            }
        }
        drop(app.emit(events::NOTICE, payload));
    }
}
