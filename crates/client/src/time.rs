//! The two clocks of a client, and which one answers which question.
//!
//! A laptop's wall clock is set from outside: an NTP or Windows time sync
//! when the laptop first reaches a network with internet, someone fixing the
//! time by hand, the RTC correcting itself after a wake. Each of those steps
//! it by seconds or minutes in one go. An estimate of server time taken as
//! "wall clock + offset" moves by the whole step, and every sample taken
//! before it stays "good", so a dealer's table shows the next level's blinds
//! minutes early (issue 18 measured 300 s off for as long as it watched).
//!
//! So every interval and every offset is measured on [`steady_ms`], a clock
//! that is never set and that keeps counting through a suspend (Linux
//! `CLOCK_BOOTTIME`; macOS `CLOCK_MONOTONIC`, which counts through sleep
//! there). It is expressed in Unix milliseconds (the wall clock read once,
//! the first time it is asked, plus the steady clock since) only so that an
//! estimate made before the first server sample is a sensible instant.
//! [`wall_ms`] is for what a person reads as a time of day ("last synced
//! 21:14:03", an export's file name, when an op was queued) and for nothing
//! that is subtracted from something else.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// This machine's time of day in Unix milliseconds, as its owner set it.
/// For display and records only: it can jump either way at any moment.
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Milliseconds on the boot clock: never set, counts through suspend. The
/// same reading in every process of one machine, so tests and logs can line
/// up what two processes saw.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn boot_ms() -> i64 {
    clock_ms(libc::CLOCK_BOOTTIME)
}

/// Milliseconds on the boot clock: never set, counts through suspend
/// (`CLOCK_MONOTONIC` does on Apple systems).
#[cfg(any(target_os = "macos", target_os = "ios"))]
pub fn boot_ms() -> i64 {
    clock_ms(libc::CLOCK_MONOTONIC)
}

/// Milliseconds since this process first asked: never set. Whether it
/// counts through a suspend depends on the platform; a wake is noticed by
/// the heartbeat either way (see `sleep`).
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios"
)))]
pub fn boot_ms() -> i64 {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    i64::try_from(
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

/// Milliseconds on a clock that stops while the machine is suspended (and
/// is never set either): the difference to [`boot_ms`] grows by exactly the
/// time spent suspended.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn monotonic_ms() -> i64 {
    clock_ms(libc::CLOCK_MONOTONIC)
}

/// Milliseconds on a clock that stops while the machine sleeps.
#[cfg(any(target_os = "macos", target_os = "ios"))]
pub fn monotonic_ms() -> i64 {
    clock_ms(libc::CLOCK_UPTIME_RAW)
}

/// No clock that tells a suspend apart on this platform: the same as
/// [`boot_ms`], so a suspend shows as a late heartbeat, never as a step.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios"
)))]
pub fn monotonic_ms() -> i64 {
    boot_ms()
}

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios"
))]
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

/// Where the steady clock starts: the wall clock and the boot clock read
/// together, once.
fn base() -> &'static (i64, i64) {
    static BASE: OnceLock<(i64, i64)> = OnceLock::new();
    BASE.get_or_init(|| (wall_ms(), boot_ms()))
}

/// This machine's steady time, in Unix milliseconds: the wall clock as it
/// read the first time this was asked, advanced by the boot clock since.
/// Never jumps when the wall clock is set, keeps counting through a
/// suspend; every server-time estimate, interval and timeout is reckoned
/// on it (see the module comment).
pub fn steady_ms() -> i64 {
    let (wall0, boot0) = *base();
    wall0.saturating_add(boot_ms() - boot0)
}

/// The boot-clock reading at which [`steady_ms`] read `steady`: for
/// placing an instant this process reckoned on the timeline every process
/// of the machine shares (tests and logs).
pub fn boot_of_steady(steady: i64) -> i64 {
    let (wall0, boot0) = *base();
    steady - wall0 + boot0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steady_clock_starts_at_the_wall_clock_and_advances_with_the_boot_clock() {
        let (s0, b0, w0) = (steady_ms(), boot_ms(), wall_ms());
        assert!(
            (s0 - w0).abs() < 5_000,
            "steady {s0} starts near the wall clock {w0}"
        );
        std::thread::sleep(std::time::Duration::from_millis(30));
        let (s1, b1) = (steady_ms(), boot_ms());
        assert!(s1 >= s0, "never backwards");
        // Both advanced by the same amount, give or take the two readings.
        assert!(
            ((s1 - s0) - (b1 - b0)).abs() <= 2,
            "{s0}->{s1} vs {b0}->{b1}"
        );
        assert!(s1 - s0 >= 29);
    }
}
