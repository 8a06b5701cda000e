//! Noticing that this machine slept (rule 9 of docs/architecture.md).
//!
//! A laptop whose lid closed between levels wakes with a socket that looks
//! open but is dead, a clock offset that may be stale, and a screen that
//! shows the level it fell asleep on. The engine must drop the socket and
//! resync at once, and nothing it learns that way may make a sound.
//!
//! Two ways to notice, both feeding the same [`Wake`]:
//!
//! - the OS: logind's `PrepareForSleep(false)` on the system bus (Linux,
//!   when there is a system bus; `watch_logind`);
//! - everywhere, a [`Heartbeat`]: a beat every second measured on a clock
//!   that keeps counting through suspend (`CLOCK_BOOTTIME` on Linux). Tokio's
//!   timers and `std::time::Instant` run on `CLOCK_MONOTONIC`, which stops
//!   while suspended, so they alone cannot see a sleep: a beat due one
//!   monotonic second later arrives "on time" after an hour asleep. The
//!   growth of BOOTTIME − MONOTONIC is the suspend itself; a beat that came
//!   far later than asked on BOOTTIME alone means the process did not run
//!   (SIGSTOP, a paused VM, a starved machine) and needs the same resync.
//!
//! The wall clock is the third clock it reads, only to say when someone set
//! it: wall − boot changing between two beats, while boot − monotonic did
//! not grow, is a time sync or a person fixing the time. That is not a
//! wake: nothing the engine shows or measures reads the wall clock (see
//! [`crate::time`]), so it is logged and passed over, never a resync.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

/// The clocks the heartbeat compares. Injected in tests to play a suspend,
/// which SIGSTOP cannot (it stops no clock), and a wall-clock step.
pub trait Clocks: Send + Sync + Debug + 'static {
    /// Milliseconds on a clock that keeps counting while suspended.
    fn boottime_ms(&self) -> i64;
    /// Milliseconds on a clock that stops while suspended.
    fn monotonic_ms(&self) -> i64;
    /// The time of day, which a person or a time sync may set.
    fn wall_ms(&self) -> i64;
}

/// The machine's own clocks (see [`crate::time`]).
#[derive(Debug, Default)]
pub struct SystemClocks;

impl Clocks for SystemClocks {
    fn boottime_ms(&self) -> i64 {
        crate::time::boot_ms()
    }
    fn monotonic_ms(&self) -> i64 {
        crate::time::monotonic_ms()
    }
    fn wall_ms(&self) -> i64 {
        crate::time::wall_ms()
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

/// What one beat saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Time passed that this process did not see: resync.
    Woke(Wake),
    /// Someone (a time sync, a person) set the wall clock by `by_ms`. The
    /// boot and monotonic clocks did not move with it, so nothing this
    /// client shows or measures changed: not a wake, not a resync. Said so
    /// only for the log and the venue's IT person.
    WallStepped { by_ms: i64 },
}

/// Beats measured on [`Clocks`]; see the module comment.
#[derive(Debug)]
pub struct Heartbeat {
    clocks: Arc<dyn Clocks>,
    every_ms: i64,
    gap_ms: i64,
    prev_boot: i64,
    prev_suspended: i64,
    /// Wall minus boot at the last beat: constant while nobody sets the
    /// wall clock (a suspend moves both together).
    prev_wall_lead: i64,
}

/// Growth of BOOTTIME − MONOTONIC below this is clock noise, not a suspend.
const SUSPEND_NOISE_MS: i64 = 500;

/// A change of wall − boot below this between two beats is a time sync
/// slewing the clock, or the two readings' own jitter, not a step.
const STEP_NOISE_MS: i64 = 500;

impl Heartbeat {
    /// `every`: how often [`Heartbeat::beat`] is called. `gap`: how late a
    /// beat may be before the process counts as having been away.
    pub fn new(clocks: Arc<dyn Clocks>, every: Duration, gap: Duration) -> Heartbeat {
        let prev_boot = clocks.boottime_ms();
        let prev_suspended = prev_boot - clocks.monotonic_ms();
        let prev_wall_lead = clocks.wall_ms() - prev_boot;
        Heartbeat {
            clocks,
            every_ms: every.as_millis() as i64,
            gap_ms: gap.as_millis() as i64,
            prev_boot,
            prev_suspended,
            prev_wall_lead,
        }
    }

    /// One beat. `Some` when this process was away, or the wall clock was
    /// set. A suspend is BOOTTIME running ahead of MONOTONIC; a stopped
    /// process is a beat far later than asked on BOOTTIME; a wall-clock
    /// step is the wall clock moving while the other two did not. Only the
    /// first two are wakes.
    pub fn beat(&mut self) -> Option<Beat> {
        let boot = self.clocks.boottime_ms();
        let suspended = boot - self.clocks.monotonic_ms();
        let wall_lead = self.clocks.wall_ms() - boot;
        let elapsed = boot - self.prev_boot;
        let slept = suspended - self.prev_suspended;
        let stepped = wall_lead - self.prev_wall_lead;
        self.prev_boot = boot;
        self.prev_suspended = suspended;
        self.prev_wall_lead = wall_lead;
        if slept > SUSPEND_NOISE_MS {
            return Some(Beat::Woke(Wake {
                source: WakeSource::Heartbeat,
                away_ms: slept,
            }));
        }
        let late = elapsed - self.every_ms;
        if late > self.gap_ms {
            return Some(Beat::Woke(Wake {
                source: WakeSource::Heartbeat,
                away_ms: late,
            }));
        }
        (stepped.abs() > STEP_NOISE_MS).then_some(Beat::WallStepped { by_ms: stepped })
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

/// What the OS (or the heartbeat) said about sleep and the clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerEvent {
    GoingToSleep,
    Woke(Wake),
    /// The wall clock was set; see [`Beat::WallStepped`].
    WallStepped {
        by_ms: i64,
    },
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
        let ev = match hb.beat() {
            Some(Beat::Woke(w)) => {
                tracing::info!(away_ms = w.away_ms, "heartbeat: this machine was away");
                Some(PowerEvent::Woke(w))
            }
            Some(Beat::WallStepped { by_ms }) => {
                tracing::info!(
                    by_ms,
                    "this machine's wall clock was set; the tournament clock does not use it"
                );
                Some(PowerEvent::WallStepped { by_ms })
            }
            None => None,
        };
        if let Some(ev) = ev {
            if tx.send(ev).await.is_err() {
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

/// Clocks that stand still until moved by hand: what a test uses to play
/// a suspend, or a time sync, on a machine that can do neither on demand
/// (`SIGSTOP` stops monotonic time too, so it does not look like a sleep).
#[derive(Debug, Default)]
pub struct ManualClocks {
    boot: AtomicI64,
    mono: AtomicI64,
    wall: AtomicI64,
}

impl ManualClocks {
    /// The machine ran for `ms`: every clock advanced.
    pub fn run(&self, ms: i64) {
        self.boot.fetch_add(ms, Ordering::SeqCst);
        self.mono.fetch_add(ms, Ordering::SeqCst);
        self.wall.fetch_add(ms, Ordering::SeqCst);
    }

    /// Suspended for `ms`: monotonic stood still, the others ran.
    pub fn suspend(&self, ms: i64) {
        self.boot.fetch_add(ms, Ordering::SeqCst);
        self.wall.fetch_add(ms, Ordering::SeqCst);
    }

    /// A time sync (or a person) set the wall clock by `ms`.
    pub fn set_wall(&self, ms: i64) {
        self.wall.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clocks for ManualClocks {
    fn boottime_ms(&self) -> i64 {
        self.boot.load(Ordering::SeqCst)
    }
    fn monotonic_ms(&self) -> i64 {
        self.mono.load(Ordering::SeqCst)
    }
    fn wall_ms(&self) -> i64 {
        self.wall.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(c: &Arc<ManualClocks>) -> Heartbeat {
        Heartbeat::new(
            c.clone(),
            Duration::from_secs(1),
            Duration::from_millis(2_500),
        )
    }

    fn woke(b: Option<Beat>) -> Option<i64> {
        match b {
            Some(Beat::Woke(w)) => Some(w.away_ms),
            _ => None,
        }
    }

    #[test]
    fn steady_beats_are_quiet_even_when_a_little_late() {
        let c = Arc::new(ManualClocks::default());
        let mut h = hb(&c);
        for late in [0, 40, 900, 2_000, 10] {
            c.run(1_000 + late);
            assert_eq!(h.beat(), None, "{late} ms late");
        }
    }

    #[test]
    fn a_suspend_is_seen_although_the_beat_is_on_time() {
        // Monotonic stopped for 45 minutes; the tokio timer fired "on time".
        let c = Arc::new(ManualClocks::default());
        let mut h = hb(&c);
        c.run(1_000);
        assert_eq!(h.beat(), None);
        c.suspend(45 * 60_000);
        c.run(1_000);
        assert_eq!(woke(h.beat()), Some(45 * 60_000));
        c.run(1_000);
        assert_eq!(h.beat(), None, "only once");
    }

    #[test]
    fn a_stopped_process_is_seen_by_the_late_beat() {
        // SIGSTOP: every clock ran, the process did not.
        let c = Arc::new(ManualClocks::default());
        let mut h = hb(&c);
        c.run(20_000);
        assert_eq!(woke(h.beat()), Some(19_000));
    }

    #[test]
    fn a_wall_clock_step_either_way_is_a_step_and_never_a_wake() {
        for by in [300_000, -300_000, -2_000, 2_000, 3_600_000] {
            let c = Arc::new(ManualClocks::default());
            let mut h = hb(&c);
            c.run(1_000);
            assert_eq!(h.beat(), None);
            c.set_wall(by);
            c.run(1_000);
            assert_eq!(
                h.beat(),
                Some(Beat::WallStepped { by_ms: by }),
                "wall set by {by} ms"
            );
            // The new wall time holds: nothing more to say.
            for _ in 0..5 {
                c.run(1_000);
                assert_eq!(h.beat(), None, "after a step of {by} ms");
            }
        }
    }

    #[test]
    fn a_suspend_is_not_a_step_although_the_wall_clock_moved_by_as_much() {
        let c = Arc::new(ManualClocks::default());
        let mut h = hb(&c);
        c.run(1_000);
        h.beat();
        c.suspend(300_000);
        c.run(1_000);
        assert_eq!(woke(h.beat()), Some(300_000));
    }

    #[test]
    fn a_slewing_time_sync_is_neither() {
        // NTP slews small corrections at up to 500 ppm: half a millisecond
        // per beat, far under the step threshold, for as long as it takes.
        let c = Arc::new(ManualClocks::default());
        let mut h = hb(&c);
        for _ in 0..1_000 {
            c.run(1_000);
            c.wall.fetch_add(1, Ordering::SeqCst);
            assert_eq!(h.beat(), None);
        }
    }

    #[test]
    fn a_wake_whose_wall_clock_was_also_corrected_is_a_wake() {
        // The RTC drifted while asleep and a sync fixed it on wake: the
        // client resyncs for the suspend; the step adds nothing to that.
        let c = Arc::new(ManualClocks::default());
        let mut h = hb(&c);
        c.run(1_000);
        h.beat();
        c.suspend(600_000);
        c.set_wall(-4_000);
        c.run(1_000);
        assert_eq!(woke(h.beat()), Some(600_000));
        c.run(1_000);
        assert_eq!(h.beat(), None);
    }
}
