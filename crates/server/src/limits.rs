//! Abuse limits for a server on a venue's shared Wi-Fi, where a player's
//! phone sits on the same network as the director's desk.
//!
//! Each limit refuses with `429 rate_limited` (or a `rejected` frame) and
//! says when to try again, and each is checked before the writer is asked
//! anything, so a flooding device costs the room a parse per frame and
//! nothing in the write path: other screens keep their latency.
//!
//! - ops, per connection and per source address (token buckets, governor);
//! - session attempts per address (a join code guesser);
//! - wrong codes per address in a sliding window, then a cool-down in which
//!   even a right code is refused (a 6-digit pairing code is guessable only
//!   if tries are unbounded);
//! - wrong codes venue-wide: past a threshold every outstanding pairing code
//!   is withdrawn, since many addresses guessing at once is an attack;
//! - WebSockets open per address.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The limits a server enforces. Every figure is documented in
/// `docs/protocol/errors-and-limits.md` ("Limits").
#[derive(Debug, Clone)]
pub struct LimitConfig {
    /// Off only for load tests that drive one server from one address on
    /// purpose (the benchmark's thousands of connections).
    pub enabled: bool,
    pub ops_per_second_per_connection: u32,
    pub ops_burst_per_connection: u32,
    pub ops_per_second_per_address: u32,
    pub ops_burst_per_address: u32,
    pub session_attempts_per_minute: u32,
    pub wrong_codes_per_window: u32,
    pub wrong_code_window: Duration,
    pub cool_down: Duration,
    /// Wrong codes from all addresses within `wrong_code_window` that
    /// withdraw every pairing code.
    pub venue_wrong_codes: u32,
    pub max_connections_per_address: u32,
    /// TCP connections one address may hold open, HTTP and WebSocket
    /// together, counted before any request is read (see `listener.rs`).
    pub max_tcp_connections_per_address: u32,
}

impl Default for LimitConfig {
    /// Far above what a table does (a busy table reports a few ops a
    /// minute; a director's "+1 min" key held down sends ~30/s), far below
    /// what a script flooding the server sends.
    fn default() -> LimitConfig {
        LimitConfig {
            enabled: true,
            ops_per_second_per_connection: 20,
            ops_burst_per_connection: 200,
            ops_per_second_per_address: 40,
            ops_burst_per_address: 400,
            session_attempts_per_minute: 30,
            wrong_codes_per_window: 5,
            wrong_code_window: Duration::from_secs(5 * 60),
            cool_down: Duration::from_secs(5 * 60),
            venue_wrong_codes: 50,
            max_connections_per_address: 32,
            max_tcp_connections_per_address: 128,
        }
    }
}

impl LimitConfig {
    pub fn unlimited() -> LimitConfig {
        LimitConfig {
            enabled: false,
            ..LimitConfig::default()
        }
    }
}

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
    pub what: &'static str,
}

impl Throttled {
    pub fn retry_after_ms(&self) -> u64 {
        u64::try_from(self.retry_after.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

fn quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

#[derive(Default)]
struct WrongCodes {
    /// Wrong codes per address, oldest first, within the window.
    by_address: HashMap<IpAddr, (VecDeque<Instant>, Option<Instant>)>,
    /// Every wrong code venue-wide, within the window.
    venue: VecDeque<Instant>,
}

/// A per-connection op limiter, made on a connection's first op: an idle
/// screen never sends one, and thousands of idle screens should cost as
/// little memory as they can.
pub struct ConnLimiter(Option<Box<DefaultDirectRateLimiter>>);

pub struct Limits {
    cfg: LimitConfig,
    ops_by_address: DefaultKeyedRateLimiter<IpAddr>,
    sessions_by_address: DefaultKeyedRateLimiter<IpAddr>,
    wrong: Mutex<WrongCodes>,
    connections: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

/// A WebSocket's place in its address's count, given back on drop.
pub struct ConnSlot {
    addr: IpAddr,
    connections: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.connections.lock() {
            if let Some(n) = map.get_mut(&self.addr) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&self.addr);
                }
            }
        }
    }
}

/// What a wrong code led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongCode {
    /// This address is now cooling down.
    pub cool_down: Option<Duration>,
    /// Venue-wide guessing: withdraw every pairing code now.
    pub withdraw_pairing: bool,
}

impl Limits {
    pub fn new(cfg: LimitConfig) -> Limits {
        let per_minute =
            NonZeroU32::new(cfg.session_attempts_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Limits {
            ops_by_address: RateLimiter::keyed(quota(
                cfg.ops_per_second_per_address,
                cfg.ops_burst_per_address,
            )),
            sessions_by_address: RateLimiter::keyed(Quota::per_minute(per_minute)),
            wrong: Mutex::default(),
            connections: Arc::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &LimitConfig {
        &self.cfg
    }

    fn wait(&self, not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> Duration {
        not_until.wait_time_from(DefaultClock::default().now())
    }

    pub fn conn_limiter(&self) -> ConnLimiter {
        ConnLimiter(None)
    }

    /// One op from `addr` on a connection: per connection first (a flooding
    /// connection is stopped at its own bucket), then per address (many
    /// connections from one device share one budget).
    pub fn op(&self, conn: &mut ConnLimiter, addr: IpAddr) -> Result<(), Throttled> {
        if !self.cfg.enabled {
            return Ok(());
        }
        let cfg = &self.cfg;
        let lim = conn.0.get_or_insert_with(|| {
            Box::new(RateLimiter::direct(quota(
                cfg.ops_per_second_per_connection,
                cfg.ops_burst_per_connection,
            )))
        });
        lim.check().map_err(|n| Throttled {
            retry_after: self.wait(&n),
            what: "ops on this connection",
        })?;
        self.address_op(addr)
    }

    /// One op over HTTP, which has no connection of its own to count.
    pub fn address_op(&self, addr: IpAddr) -> Result<(), Throttled> {
        if !self.cfg.enabled {
            return Ok(());
        }
        self.ops_by_address.check_key(&addr).map_err(|n| Throttled {
            retry_after: self.wait(&n),
            what: "ops from this address",
        })
    }

    /// A `POST /api/session` from `addr`: refused while the address cools
    /// down after wrong codes, or past the attempts per minute.
    pub fn session_attempt(&self, addr: IpAddr, now: Instant) -> Result<(), Throttled> {
        if !self.cfg.enabled {
            return Ok(());
        }
        if let Ok(mut w) = self.wrong.lock() {
            if let Some((_, cool)) = w.by_address.get_mut(&addr) {
                match *cool {
                    Some(until) if until > now => {
                        return Err(Throttled {
                            retry_after: until - now,
                            what: "join attempts after wrong codes from this address",
                        })
                    }
                    Some(_) => *cool = None,
                    None => {}
                }
            }
        }
        self.sessions_by_address
            .check_key(&addr)
            .map_err(|n| Throttled {
                retry_after: self.wait(&n),
                what: "join attempts from this address",
            })
    }

    /// Counts a wrong join or pairing code from `addr`.
    pub fn wrong_code(&self, addr: IpAddr, now: Instant) -> WrongCode {
        let mut out = WrongCode {
            cool_down: None,
            withdraw_pairing: false,
        };
        if !self.cfg.enabled {
            return out;
        }
        let window = self.cfg.wrong_code_window;
        let Ok(mut w) = self.wrong.lock() else {
            return out;
        };
        let fresh = |t: &Instant| now.saturating_duration_since(*t) < window;
        w.venue.retain(fresh);
        w.venue.push_back(now);
        if w.venue.len() >= self.cfg.venue_wrong_codes as usize {
            out.withdraw_pairing = true;
            w.venue.clear();
        }
        let entry = w.by_address.entry(addr).or_default();
        entry.0.retain(fresh);
        entry.0.push_back(now);
        if entry.0.len() >= self.cfg.wrong_codes_per_window as usize {
            entry.0.clear();
            entry.1 = Some(now + self.cfg.cool_down);
            out.cool_down = Some(self.cfg.cool_down);
        }
        out
    }

    /// Takes back the wrong-code strike counted at `at` for `addr`: a
    /// pairing exchange is counted when it starts (its answer alone tells a
    /// guesser whether the guess was right) and forgiven once proven.
    pub fn forgive_wrong_code(&self, addr: IpAddr, at: Instant) {
        let Ok(mut w) = self.wrong.lock() else {
            return;
        };
        if let Some(i) = w.venue.iter().position(|t| *t == at) {
            w.venue.remove(i);
        }
        if let Some(entry) = w.by_address.get_mut(&addr) {
            if let Some(i) = entry.0.iter().position(|t| *t == at) {
                entry.0.remove(i);
            }
        }
    }

    /// A place for one more WebSocket from `addr`, or why not.
    pub fn connect(&self, addr: IpAddr) -> Result<Option<ConnSlot>, Throttled> {
        if !self.cfg.enabled {
            return Ok(None);
        }
        let mut map = self.connections.lock().map_err(|_| Throttled {
            retry_after: Duration::from_secs(1),
            what: "connections",
        })?;
        let n = map.entry(addr).or_insert(0);
        if *n >= self.cfg.max_connections_per_address {
            return Err(Throttled {
                retry_after: Duration::from_secs(5),
                what: "WebSockets open from this address",
            });
        }
        *n += 1;
        Ok(Some(ConnSlot {
            addr,
            connections: self.connections.clone(),
        }))
    }

    /// Forgets addresses that have been quiet, so the maps do not grow with
    /// every phone that ever tried. Called every minute.
    pub fn forget_quiet(&self, now: Instant) {
        self.ops_by_address.retain_recent();
        self.sessions_by_address.retain_recent();
        if let Ok(mut w) = self.wrong.lock() {
            let window = self.cfg.wrong_code_window;
            w.by_address.retain(|_, (times, cool)| {
                times.retain(|t| now.saturating_duration_since(*t) < window);
                !times.is_empty() || cool.is_some_and(|c| c > now)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> IpAddr {
        IpAddr::from([192, 168, 1, n])
    }

    #[test]
    fn five_wrong_codes_cool_an_address_down_and_only_that_address() {
        let l = Limits::new(LimitConfig::default());
        let t0 = Instant::now();
        for i in 0..4 {
            assert_eq!(l.wrong_code(addr(9), t0).cool_down, None, "try {i}");
            assert!(l.session_attempt(addr(9), t0).is_ok());
        }
        assert_eq!(
            l.wrong_code(addr(9), t0).cool_down,
            Some(Duration::from_secs(300))
        );
        let err = l.session_attempt(addr(9), t0).unwrap_err();
        assert_eq!(err.retry_after, Duration::from_secs(300));
        assert!(l.session_attempt(addr(10), t0).is_ok(), "another device");
        let later = t0 + Duration::from_secs(301);
        assert!(
            l.session_attempt(addr(9), later).is_ok(),
            "after the cool-down"
        );
    }

    #[test]
    fn wrong_codes_outside_the_window_do_not_count() {
        let l = Limits::new(LimitConfig::default());
        let t0 = Instant::now();
        for i in 0..4u64 {
            l.wrong_code(addr(3), t0 + Duration::from_secs(i * 100));
        }
        // The first two are now older than five minutes.
        let out = l.wrong_code(addr(3), t0 + Duration::from_secs(400));
        assert_eq!(out.cool_down, None);
    }

    #[test]
    fn many_addresses_guessing_withdraw_the_pairing_codes() {
        let l = Limits::new(LimitConfig::default());
        let t0 = Instant::now();
        let mut withdrawn = 0;
        for i in 0..50u8 {
            if l.wrong_code(addr(i), t0).withdraw_pairing {
                withdrawn += 1;
            }
        }
        assert_eq!(withdrawn, 1, "the 50th wrong code venue-wide");
    }

    #[test]
    fn a_connection_burst_is_allowed_then_throttled_with_a_wait() {
        let l = Limits::new(LimitConfig {
            ops_per_second_per_connection: 10,
            ops_burst_per_connection: 5,
            ..LimitConfig::default()
        });
        let mut c = l.conn_limiter();
        for _ in 0..5 {
            assert!(l.op(&mut c, addr(1)).is_ok());
        }
        let t = l.op(&mut c, addr(1)).unwrap_err();
        assert!(t.retry_after <= Duration::from_millis(100), "{t:?}");
        assert!(t.retry_after_ms() >= 1);
        let mut other = l.conn_limiter();
        assert!(l.op(&mut other, addr(1)).is_ok(), "its own bucket");
    }

    #[test]
    fn connection_slots_are_counted_per_address_and_given_back() {
        let l = Limits::new(LimitConfig {
            max_connections_per_address: 2,
            ..LimitConfig::default()
        });
        let a = l.connect(addr(1)).expect("first");
        let _b = l.connect(addr(1)).expect("second");
        assert!(l.connect(addr(1)).is_err());
        assert!(l.connect(addr(2)).is_ok(), "another address");
        drop(a);
        assert!(l.connect(addr(1)).is_ok(), "a slot came back");
    }

    #[test]
    fn unlimited_refuses_nothing() {
        let l = Limits::new(LimitConfig::unlimited());
        let mut c = l.conn_limiter();
        for _ in 0..10_000 {
            assert!(l.op(&mut c, addr(1)).is_ok());
        }
        for _ in 0..100 {
            assert!(l.wrong_code(addr(1), Instant::now()).cool_down.is_none());
            assert!(l.session_attempt(addr(1), Instant::now()).is_ok());
        }
    }
}
