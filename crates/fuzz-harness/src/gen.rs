//! Builds plausible domain values out of fuzzer bytes.
//!
//! "Plausible" means: something the server can actually hold. Every stored
//! structure passed `validate_levels`, every stored clock came out of the
//! clock functions (level in range, remaining time within the caps), every
//! server instant is a wall-clock reading. Starting from states that cannot
//! exist would report "bugs" no venue can meet; the ops themselves, on the
//! other hand, are generated without such care, because a client can send
//! anything.

use arbitrary::{Result, Unstructured};
use pitboss_core::event::EventDetails;
use pitboss_core::incident::{Incident, IncidentStatus, Severity};
use pitboss_core::limits::{
    MAX_CHIPS, MAX_LEVELS, MAX_LEVEL_MS, MAX_LEVEL_NOTE_CHARS, MAX_REMAINING_MS, MIN_LEVEL_MS,
};
use pitboss_core::ops::Role;
use pitboss_core::stats::Stats;
use pitboss_core::structure::{Level, Structure};
use pitboss_core::ClockState;

/// Largest server instant the harness uses, either side of the Unix epoch:
/// 2^53 ms, the range in which a JSON number is exact in the webview, and
/// about 285,000 years. Instants outside it are not wall-clock readings.
pub const MAX_INSTANT_MS: i64 = 1 << 53;

/// Largest counter in a plausible event: far above any field, far below
/// where the saturating arithmetic of the stats would start to matter.
pub const MAX_COUNTER: u64 = 1 << 40;

pub fn role(u: &mut Unstructured<'_>) -> Result<Role> {
    Ok(*u.choose(&Role::ALL)?)
}

pub fn severity(u: &mut Unstructured<'_>) -> Result<Severity> {
    Ok(*u.choose(&[Severity::Low, Severity::Medium, Severity::High])?)
}

pub fn status(u: &mut Unstructured<'_>) -> Result<IncidentStatus> {
    Ok(*u.choose(&[
        IncidentStatus::Open,
        IncidentStatus::Acknowledged,
        IncidentStatus::Resolved,
    ])?)
}

/// Free text as a client might send it: arbitrary, or one character
/// repeated up to just past the longest cap, so the length limits are
/// reached without the fuzzer having to type 2,000 characters.
pub fn text(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(1, 4)? {
        let c = *u.choose(&['x', ' ', 'é', '🂡', '\u{0}', '"'])?;
        let n = u.int_in_range(0..=2_100usize)?;
        return Ok(std::iter::repeat_n(c, n).collect());
    }
    u.arbitrary()
}

/// A level a director could have saved.
pub fn valid_level(u: &mut Unstructured<'_>) -> Result<Level> {
    let duration_ms = duration(u)?;
    let note: String = u.arbitrary()?;
    let note: String = note.chars().take(MAX_LEVEL_NOTE_CHARS).collect();
    if u.ratio(1, 5)? {
        return Ok(Level::Break { duration_ms, note });
    }
    let big_blind = u.int_in_range(1..=MAX_CHIPS)?;
    Ok(Level::Play {
        small_blind: u.int_in_range(0..=big_blind)?,
        big_blind,
        ante: u.int_in_range(0..=MAX_CHIPS)?,
        duration_ms,
        note,
    })
}

/// A level duration within the caps, most often a round number of minutes
/// so that level ends fall on instants the fuzzer also picks.
fn duration(u: &mut Unstructured<'_>) -> Result<i64> {
    if u.arbitrary::<bool>()? {
        Ok(u.int_in_range(1..=(MAX_LEVEL_MS / 60_000))? * 60_000)
    } else {
        u.int_in_range(MIN_LEVEL_MS..=MAX_LEVEL_MS)
    }
}

/// A structure that passed validation, with at least one level of play.
pub fn valid_structure(u: &mut Unstructured<'_>) -> Result<Structure> {
    let levels = valid_levels(u)?;
    let lock_version = u.int_in_range(1..=u64::from(u32::MAX))?;
    Ok(Structure {
        levels,
        lock_version,
    })
}

pub fn valid_levels(u: &mut Unstructured<'_>) -> Result<Vec<Level>> {
    // Mostly short; sometimes up to the cap, to reach its boundary.
    let n = if u.ratio(1, 16)? {
        u.int_in_range(1..=MAX_LEVELS)?
    } else {
        u.int_in_range(1..=12usize)?
    };
    let mut levels = Vec::with_capacity(n);
    for _ in 0..n {
        levels.push(valid_level(u)?);
    }
    if levels.iter().all(Level::is_break) {
        levels[0] = Level::play(1, 2, 0, 1);
    }
    Ok(levels)
}

/// Levels as a client may send them in `structure.update`: valid ones,
/// or valid ones with one thing broken (the boundaries of each rule).
pub fn client_levels(u: &mut Unstructured<'_>) -> Result<Vec<Level>> {
    let mut levels = valid_levels(u)?;
    match u.int_in_range(0..=7u8)? {
        0 => levels.clear(),
        1 => {
            let i = u.choose_index(levels.len())?;
            let d = *u.choose(&[
                0,
                MIN_LEVEL_MS - 1,
                MAX_LEVEL_MS + 1,
                -1,
                i64::MIN,
                i64::MAX,
            ])?;
            match &mut levels[i] {
                Level::Play { duration_ms, .. } | Level::Break { duration_ms, .. } => {
                    *duration_ms = d
                }
            }
        }
        2 => {
            let i = u.choose_index(levels.len())?;
            if let Level::Play {
                small_blind,
                big_blind,
                ante,
                ..
            } = &mut levels[i]
            {
                match u.int_in_range(0..=2u8)? {
                    0 => *big_blind = 0,
                    1 => *small_blind = big_blind.saturating_add(1),
                    _ => *ante = MAX_CHIPS + 1,
                }
            }
        }
        3 => {
            for l in &mut levels {
                *l = Level::Break {
                    duration_ms: l.duration_ms(),
                    note: String::new(),
                };
            }
        }
        4 => {
            let l = levels[0].clone();
            levels.resize(MAX_LEVELS + 1, l);
        }
        5 => {
            let i = u.choose_index(levels.len())?;
            let note = "n".repeat(MAX_LEVEL_NOTE_CHARS + 1);
            match &mut levels[i] {
                Level::Play { note: n, .. } | Level::Break { note: n, .. } => *n = note,
            }
        }
        _ => {}
    }
    Ok(levels)
}

/// A server instant.
pub fn instant(u: &mut Unstructured<'_>) -> Result<i64> {
    u.int_in_range(-MAX_INSTANT_MS..=MAX_INSTANT_MS)
}

/// An instant near `base`, before or after it by up to a few days, or
/// exactly on the next level end, where off-by-one errors live.
pub fn instant_near(u: &mut Unstructured<'_>, base: i64, ends: &[i64]) -> Result<i64> {
    let t = match u.int_in_range(0..=3u8)? {
        0 if !ends.is_empty() => {
            let end = *u.choose(ends)?;
            end + u.int_in_range(-1..=1i64)?
        }
        1 => base + u.int_in_range(-3_600_000..=3_600_000i64)?,
        _ => base + u.int_in_range(-86_400_000..=7 * 86_400_000i64)?,
    };
    Ok(t.clamp(-MAX_INSTANT_MS, MAX_INSTANT_MS))
}

/// A clock the server can have stored for `s`: level in range, remaining
/// time within the cap (mostly within the level's length), a sane epoch.
pub fn stored_clock(u: &mut Unstructured<'_>, s: &Structure) -> Result<ClockState> {
    let level_index = u.int_in_range(0..=s.last_index())?;
    let remaining_ms = if u.ratio(3, 4)? {
        u.int_in_range(0..=s.duration_ms(level_index))?
    } else {
        u.int_in_range(0..=MAX_REMAINING_MS)?
    };
    Ok(ClockState {
        running: u.arbitrary()?,
        level_index,
        remaining_ms,
        anchor_ms: instant(u)?,
        epoch: u.int_in_range(0..=u64::from(u32::MAX))?,
    })
}

/// Any clock at all, for the functions that promise to be total.
pub fn any_clock(u: &mut Unstructured<'_>) -> Result<ClockState> {
    Ok(ClockState {
        running: u.arbitrary()?,
        level_index: u.arbitrary()?,
        remaining_ms: u.arbitrary()?,
        anchor_ms: u.arbitrary()?,
        epoch: u.arbitrary()?,
    })
}

pub fn details(u: &mut Unstructured<'_>) -> Result<EventDetails> {
    let mut money = || u.int_in_range(0..=MAX_CHIPS);
    Ok(EventDetails {
        name: "Fuzzed Deepstack".into(),
        starting_stack: money()?,
        buy_in: money()?,
        rebuy_chips: money()?,
        rebuy_price: money()?,
        addon_chips: money()?,
        addon_price: money()?,
    })
}

/// Counters a floor can have reached: never more players left than entered.
pub fn stats(u: &mut Unstructured<'_>, d: &EventDetails) -> Result<Stats> {
    let entries = u.int_in_range(0..=MAX_COUNTER)?;
    let small = u.arbitrary::<bool>()?;
    let players_remaining = if small {
        u.int_in_range(0..=entries.min(20))?
    } else {
        u.int_in_range(0..=entries)?
    };
    Ok(Stats {
        entries,
        players_remaining,
        rebuys: u.int_in_range(0..=MAX_COUNTER)?,
        addons: u.int_in_range(0..=MAX_COUNTER)?,
        ..Stats::default()
    }
    .derive(d))
}

/// An incident as stored, with the id the server gave it.
pub fn incident(u: &mut Unstructured<'_>, id: String, now: i64) -> Result<Incident> {
    let created_at_ms = now - u.int_in_range(0..=86_400_000i64)?;
    Ok(Incident {
        id,
        table: "7".into(),
        kind: "misdeal".into(),
        severity: severity(u)?,
        status: status(u)?,
        note: String::new(),
        created_by: "Ana".into(),
        lock_version: u.int_in_range(1..=u64::from(u32::MAX))?,
        created_at_ms,
        updated_at_ms: created_at_ms,
    })
}
