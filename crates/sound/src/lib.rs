//! Alert sounds (rule 7 of docs/architecture.md): synthesised tones, played by rodio on a thread of
//! their own so a slow or missing audio device never blocks the clock.
//!
//! No audio device is a normal state on a venue laptop with its speakers
//! off or a wall PC without a card: [`Player`] reports it as "sound
//! unavailable" (shown in the UI and logged) and tries the device again
//! later, never panics.

pub mod tones;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use tones::Tone;

/// Whether sound can be played, in words for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    pub available: bool,
    pub message: String,
}

enum Cmd {
    Play(Tone, f32, Option<mpsc::Sender<Availability>>),
    Close(mpsc::Sender<()>),
}

/// Handle to the sound thread. Cheap to clone; the thread ends when the
/// last handle is dropped.
#[derive(Clone)]
pub struct Player {
    tx: mpsc::Sender<Cmd>,
    status: Arc<Mutex<Availability>>,
}

/// After a failed open, wait this long before trying the device again (a
/// USB speaker plugged in mid-event starts working without a restart).
const RETRY_AFTER: Duration = Duration::from_secs(10);

impl Player {
    /// Starts the sound thread and tries to open the default output.
    pub fn start() -> Player {
        let status = Arc::new(Mutex::new(Availability {
            available: false,
            message: "checking the audio device…".into(),
        }));
        let (tx, rx) = mpsc::channel();
        let st = status.clone();
        let spawned = std::thread::Builder::new()
            .name("pitboss-sound".into())
            .spawn(move || run(rx, st));
        if let Err(e) = spawned {
            set(&status, false, format!("sound unavailable: {e}"));
        }
        Player { tx, status }
    }

    pub fn availability(&self) -> Availability {
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Plays `tone` at `volume` (0–1) without waiting.
    pub fn play(&self, tone: Tone, volume: f32) {
        drop(self.tx.send(Cmd::Play(tone, volume, None)));
    }

    /// Plays `tone` and reports whether it could (after the device was
    /// tried, not after the tone ended). For the "Sound check" button.
    pub fn check(&self, tone: Tone, volume: f32) -> Availability {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Cmd::Play(tone, volume, Some(tx))).is_err() {
            return self.availability();
        }
        rx.recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| self.availability())
    }

    /// Plays `tone` and blocks until it has been handed to the device in
    /// full. Tests and the CLI use it; the app never waits on sound.
    pub fn play_and_wait(&self, tone: Tone, volume: f32) -> Availability {
        let a = self.check(tone, volume);
        if a.available {
            std::thread::sleep(tone.duration() + Duration::from_millis(200));
        }
        a
    }
}

impl Player {
    /// Lets queued sound finish reaching the device, then closes it. Only
    /// needed by whoever must know the device is released (a test reading
    /// what was captured); dropping the last handle also ends the thread.
    pub fn close(&self) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Cmd::Close(tx)).is_ok() {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        }
    }
}

fn set(status: &Mutex<Availability>, available: bool, message: String) -> Availability {
    let a = Availability { available, message };
    match status.lock() {
        Ok(mut s) => *s = a.clone(),
        Err(e) => *e.into_inner() = a.clone(),
    }
    a
}

fn open(status: &Mutex<Availability>) -> Option<rodio::MixerDeviceSink> {
    match rodio::DeviceSinkBuilder::open_default_sink() {
        Ok(mut sink) => {
            sink.log_on_drop(false);
            set(status, true, "sound ready".into());
            Some(sink)
        }
        Err(e) => {
            let msg = format!("sound unavailable: {e}");
            tracing::warn!("{msg}");
            set(status, false, msg);
            None
        }
    }
}

fn run(rx: mpsc::Receiver<Cmd>, status: Arc<Mutex<Availability>>) {
    let mut sink = open(&status);
    let mut tried_at = Instant::now();
    loop {
        let (tone, volume, reply) = match rx.recv() {
            Ok(Cmd::Play(t, v, r)) => (t, v, r),
            Ok(Cmd::Close(done)) => {
                drop(sink.take());
                set(&status, false, "sound closed".into());
                let _ = done.send(());
                return;
            }
            Err(_) => return,
        };
        if sink.is_none() && tried_at.elapsed() >= RETRY_AFTER {
            sink = open(&status);
            tried_at = Instant::now();
        }
        let a = match &sink {
            Some(s) => {
                let cfg = s.config();
                let buf = tones::buffer(tone, volume, cfg.sample_rate(), cfg.channel_count());
                s.mixer().add(buf);
                set(&status, true, "sound ready".into())
            }
            None => {
                let a = status
                    .lock()
                    .map(|s| s.clone())
                    .unwrap_or_else(|e| e.into_inner().clone());
                tracing::info!("{tone:?} alert not played: {}", a.message);
                a
            }
        };
        if let Some(r) = reply {
            drop(r.send(a));
        }
    }
}
