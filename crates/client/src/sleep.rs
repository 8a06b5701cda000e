//! Noticing that this machine slept (rule 9).
//!
//! A laptop whose lid closed between levels wakes with a socket that looks
//! open but is dead, a clock offset that may be stale, and a screen that
//! shows the level it fell asleep on. The engine must drop the socket and
//! resync at once, and nothing it learns that way may make a sound.
//!
//! Two ways to notice, both feeding the same [`Wake`]:
//!
//! - the OS: logind's `PrepareForSleep(false)` on the system bus (Linux,
//!   when there is a system bus; [`watch_logind`]);
//! - everywhere, a [`Heartbeat`]: a beat every second measured on a clock
//!   that keeps counting through suspend (`CLOCK_BOOTTIME` on Linux). Tokio's
//!   timers and `std::time::Instant` run on `CLOCK_MONOTONIC`, which stops
//!   while suspended, so they alone cannot see a sleep: a beat due one
//!   monotonic second later arrives "on time" after an hour asleep. The
//!   growth of BOOTTIME − MONOTONIC is the suspend itself; a beat that came
//!   far later than asked on BOOTTIME alone means the process did not run
//!   (SIGSTOP, a paused VM, a starved machine) and needs the same resync.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

/// The two clocks the heartbeat compares. Injected in tests to play a
/// suspend, which SIGSTOP cannot (it stops no clock).
pub trait Clocks: Send + Sync + Debug + 'static {
    /// Milliseconds on a clock that keeps counting while suspended.
    fn boottime_ms(&self) -> i64;
    /// Milliseconds on a clock that stops while suspended.
    fn monotonic_ms(&self) -> i64;
}

/// The machine's own clocks.
#[derive(Debug, Default)]
pub struct SystemClocks;

#[cfg(any(target_os = "linux", target_os = "android"))]
fn clock_ms(id: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes it.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl Clocks for SystemClocks {
    fn boottime_ms(&self) -> i64 {
        clock_ms(libc::CLOCK_BOOTTIME)
    }
    fn monotonic_ms(&self) -> i64 {
        clock_ms(libc::CLOCK_MONOTONIC)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
impl Clocks for SystemClocks {
    /// The wall clock keeps counting through sleep on every platform; it can
    /// also be set, which at worst causes one needless resync.
    fn boottime_ms(&self) -> i64 {
        crate::engine::local_now_ms()
    }
    fn monotonic_ms(&self) -> i64 {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis() as i64
    }
}

/// Where a wake was noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WakeSource {
    /// The OS said so (logind `PrepareForSleep(false)`).
    Os,
    /// The heartbeat saw time pass that this process did not see.
    Heartbeat,
}

/// The machine (or this process) was away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wake {
    pub source: WakeSource,
    /// How long it was away, as far as is known (0 when the OS did not say).
    pub away_ms: i64,
}

/// Beats measured on [`Clocks`]; see the module comment.
#[derive(Debug)]
pub struct Heartbeat {
    clocks: Arc<dyn Clocks>,
    every_ms: i64,
    gap_ms: i64,
    prev_boot: i64,
    prev_suspended: i64,
}

/// Growth of BOOTTIME − MONOTONIC below this is clock noise, not a suspend.
const SUSPEND_NOISE_MS: i64 = 500;

impl Heartbeat {
    /// `every`: how often [`Heartbeat::beat`] is called. `gap`: how late a
    /// beat may be before the process counts as having been away.
    pub fn new(clocks: Arc<dyn Clocks>, every: Duration, gap: Duration) -> Heartbeat {
        let prev_boot = clocks.boottime_ms();
        let prev_suspended = prev_boot - clocks.monotonic_ms();
        Heartbeat {
            clocks,
            every_ms: every.as_millis() as i64,
            gap_ms: gap.as_millis() as i64,
            prev_boot,
            prev_suspended,
        }
    }

    /// One beat. `Some` when time passed that this process did not see.
    pub fn beat(&mut self) -> Option<Wake> {
        let boot = self.clocks.boottime_ms();
        let suspended = boot - self.clocks.monotonic_ms();
        let elapsed = boot - self.prev_boot;
        let slept = suspended - self.prev_suspended;
        self.prev_boot = boot;
        self.prev_suspended = suspended;
        if slept > SUSPEND_NOISE_MS {
            return Some(Wake {
                source: WakeSource::Heartbeat,
                away_ms: slept,
            });
        }
        let late = elapsed - self.every_ms;
        (late > self.gap_ms).then_some(Wake {
            source: WakeSource::Heartbeat,
            away_ms: late,
        })
    }
}

/// How the engine watches for sleep.
#[derive(Debug, Clone)]
pub struct SleepConfig {
    pub clocks: Arc<dyn Clocks>,
    pub heartbeat_every: Duration,
    /// A beat later than this (beyond `heartbeat_every`) is a wake.
    pub heartbeat_gap: Duration,
    pub logind: LogindBus,
}

/// Which bus to hear logind on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogindBus {
    /// Do not listen (tests that want the heartbeat alone).
    Off,
    /// The system bus (`DBUS_SYSTEM_BUS_ADDRESS` or the default socket).
    System,
    /// A bus at this address (a private bus with a mocked logind in tests).
    Address(String),
}

impl Default for SleepConfig {
    fn default() -> SleepConfig {
        SleepConfig {
            clocks: Arc::new(SystemClocks),
            heartbeat_every: Duration::from_secs(1),
            heartbeat_gap: Duration::from_millis(2_500),
            logind: LogindBus::System,
        }
    }
}

/// What the OS said about sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerEvent {
    GoingToSleep,
    Woke(Wake),
}

/// Runs the heartbeat (and logind where there is one) until `tx` closes.
pub async fn watch(config: SleepConfig, tx: mpsc::Sender<PowerEvent>) {
    let os = {
        let tx = tx.clone();
        let bus = config.logind.clone();
        tokio::spawn(async move {
            if let Err(e) = watch_logind(bus, tx).await {
                // No system bus (containers, minimal systems): the heartbeat
                // still notices every wake, a second or two later.
                tracing::info!("not listening to logind: {e:#}");
            }
        })
    };
    let mut hb = Heartbeat::new(
        config.clocks.clone(),
        config.heartbeat_every,
        config.heartbeat_gap,
    );
    let mut tick = tokio::time::interval(config.heartbeat_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(w) = hb.beat() {
            tracing::info!(away_ms = w.away_ms, "heartbeat: this machine was away");
            if tx.send(PowerEvent::Woke(w)).await.is_err() {
                break;
            }
        }
        if tx.is_closed() {
            break;
        }
    }
    os.abort();
}

#[cfg(target_os = "linux")]
async fn watch_logind(bus: LogindBus, tx: mpsc::Sender<PowerEvent>) -> anyhow::Result<()> {
    use futures_util::StreamExt as _;
    let conn = match &bus {
        LogindBus::Off => return Ok(()),
        LogindBus::System => zbus::Connection::system().await?,
        LogindBus::Address(a) => {
            zbus::connection::Builder::address(a.as_str())?
                .build()
                .await?
        }
    };
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender("org.freedesktop.login1")?
        .interface("org.freedesktop.login1.Manager")?
        .member("PrepareForSleep")?
        .build();
    let mut stream = zbus::MessageStream::for_match_rule(rule, &conn, None).await?;
    tracing::info!("listening to logind for sleep and wake");
    while let Some(msg) = stream.next().await {
        let start: bool = match msg.and_then(|m| m.body().deserialize()) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("unreadable PrepareForSleep: {e}");
                continue;
            }
        };
        let ev = if start {
            PowerEvent::GoingToSleep
        } else {
            PowerEvent::Woke(Wake {
                source: WakeSource::Os,
                away_ms: 0,
            })
        };
        if tx.send(ev).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// macOS (NSWorkspace did-wake) and Windows (WM_POWERBROADCAST) are not
/// wired yet: there the heartbeat alone notices a wake.
#[cfg(not(target_os = "linux"))]
async fn watch_logind(bus: LogindBus, _tx: mpsc::Sender<PowerEvent>) -> anyhow::Result<()> {
    if bus != LogindBus::Off {
        anyhow::bail!("no OS sleep notifications on this platform yet; using the heartbeat");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    #[derive(Debug, Default)]
    struct Manual {
        boot: AtomicI64,
        mono: AtomicI64,
    }
    impl Manual {
        fn run(&self, ms: i64) {
            self.boot.fetch_add(ms, Ordering::SeqCst);
            self.mono.fetch_add(ms, Ordering::SeqCst);
        }
    }
    impl Clocks for Manual {
        fn boottime_ms(&self) -> i64 {
            self.boot.load(Ordering::SeqCst)
        }
        fn monotonic_ms(&self) -> i64 {
            self.mono.load(Ordering::SeqCst)
        }
    }

    fn hb(c: &Arc<Manual>) -> Heartbeat {
        Heartbeat::new(
            c.clone(),
            Duration::from_secs(1),
            Duration::from_millis(2_500),
        )
    }

    #[test]
    fn steady_beats_are_quiet_even_when_a_little_late() {
        let c = Arc::new(Manual::default());
        let mut h = hb(&c);
        for late in [0, 40, 900, 2_000, 10] {
            c.run(1_000 + late);
            assert_eq!(h.beat(), None, "{late} ms late");
        }
    }

    #[test]
    fn a_suspend_is_seen_although_the_beat_is_on_time() {
        // Monotonic stopped for 45 minutes; the tokio timer fired "on time".
        let c = Arc::new(Manual::default());
        let mut h = hb(&c);
        c.run(1_000);
        assert_eq!(h.beat(), None);
        c.boot.fetch_add(45 * 60_000, Ordering::SeqCst);
        c.run(1_000);
        let w = h.beat().expect("a wake");
        assert_eq!(w.away_ms, 45 * 60_000);
        c.run(1_000);
        assert_eq!(h.beat(), None, "only once");
    }

    #[test]
    fn a_stopped_process_is_seen_by_the_late_beat() {
        // SIGSTOP: every clock ran, the process did not.
        let c = Arc::new(Manual::default());
        let mut h = hb(&c);
        c.run(20_000);
        assert_eq!(h.beat().map(|w| w.away_ms), Some(19_000));
    }
}
