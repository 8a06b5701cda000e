//! Blind structures: the ordered list of levels and breaks a tournament plays.

use serde::{Deserialize, Serialize};

use crate::limits::{MAX_CHIPS, MAX_LEVELS, MAX_LEVEL_MS, MAX_LEVEL_NOTE_CHARS, MIN_LEVEL_MS};

/// One step of a structure: a level of play or a break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Level {
    /// A level of play with its blinds and ante (0 for none).
    #[serde(rename = "level")]
    Play {
        small_blind: u64,
        big_blind: u64,
        #[serde(default)]
        ante: u64,
        duration_ms: i64,
        /// Free text shown with the level, e.g. "Big blind ante starts".
        #[serde(default)]
        note: String,
    },
    /// A break; its note usually says which chips are colored up.
    Break {
        duration_ms: i64,
        #[serde(default)]
        note: String,
    },
}

impl Level {
    pub fn duration_ms(&self) -> i64 {
        match self {
            Level::Play { duration_ms, .. } | Level::Break { duration_ms, .. } => *duration_ms,
        }
    }

    pub fn is_break(&self) -> bool {
        matches!(self, Level::Break { .. })
    }

    pub fn note(&self) -> &str {
        match self {
            Level::Play { note, .. } | Level::Break { note, .. } => note,
        }
    }

    /// A play level of `minutes` minutes: the shorthand templates and tests use.
    pub fn play(small_blind: u64, big_blind: u64, ante: u64, minutes: i64) -> Level {
        Level::Play {
            small_blind,
            big_blind,
            ante,
            duration_ms: minutes * 60_000,
            note: String::new(),
        }
    }

    /// A break of `minutes` minutes with a note.
    pub fn pause(minutes: i64, note: &str) -> Level {
        Level::Break {
            duration_ms: minutes * 60_000,
            note: note.to_string(),
        }
    }
}

/// The blind structure of an event, with its optimistic lock version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Structure {
    pub levels: Vec<Level>,
    /// Bumped by every accepted `structure.update`; an update names the version
    /// it was based on, so two directors editing at once cannot overwrite each
    /// other without seeing it.
    #[serde(default)]
    pub lock_version: u64,
}

impl Structure {
    pub fn new(levels: Vec<Level>) -> Structure {
        Structure {
            levels,
            lock_version: 1,
        }
    }

    pub fn duration_ms(&self, index: usize) -> i64 {
        self.levels.get(index).map_or(0, Level::duration_ms)
    }

    pub fn last_index(&self) -> usize {
        self.levels.len().saturating_sub(1)
    }

    /// The 1-based number a floor calls a play level by ("Level 7"), which
    /// skips breaks; `None` for a break.
    pub fn level_number(&self, index: usize) -> Option<usize> {
        let level = self.levels.get(index)?;
        if level.is_break() {
            return None;
        }
        Some(
            self.levels[..index]
                .iter()
                .filter(|l| !l.is_break())
                .count()
                + 1,
        )
    }

    /// The next play level after `index`, skipping breaks.
    pub fn next_play_level(&self, index: usize) -> Option<(usize, &Level)> {
        self.levels
            .iter()
            .enumerate()
            .skip(index + 1)
            .find(|(_, l)| !l.is_break())
    }

    /// Index of the first break after `index`, if any.
    pub fn next_break(&self, index: usize) -> Option<usize> {
        self.levels
            .iter()
            .enumerate()
            .skip(index + 1)
            .find(|(_, l)| l.is_break())
            .map(|(i, _)| i)
    }
}

/// Checks a list of levels a director submitted; the message says which level
/// is wrong and why, in the words a director uses.
pub fn validate_levels(levels: &[Level]) -> Result<(), String> {
    if levels.is_empty() {
        return Err("a structure needs at least one level".into());
    }
    if levels.len() > MAX_LEVELS {
        return Err(format!("a structure has at most {MAX_LEVELS} levels"));
    }
    if levels.iter().all(Level::is_break) {
        return Err("a structure needs at least one level of play".into());
    }
    for (i, level) in levels.iter().enumerate() {
        let n = i + 1;
        let d = level.duration_ms();
        if !(MIN_LEVEL_MS..=MAX_LEVEL_MS).contains(&d) {
            return Err(format!(
                "step {n}: duration_ms must be between {MIN_LEVEL_MS} and {MAX_LEVEL_MS}"
            ));
        }
        if level.note().chars().count() > MAX_LEVEL_NOTE_CHARS {
            return Err(format!(
                "step {n}: note is longer than {MAX_LEVEL_NOTE_CHARS} characters"
            ));
        }
        if let Level::Play {
            small_blind,
            big_blind,
            ante,
            ..
        } = level
        {
            if *big_blind == 0 {
                return Err(format!("step {n}: big blind must be more than 0"));
            }
            if small_blind > big_blind {
                return Err(format!(
                    "step {n}: small blind {small_blind} is larger than big blind {big_blind}"
                ));
            }
            if *big_blind > MAX_CHIPS || *ante > MAX_CHIPS {
                return Err(format!("step {n}: amounts must be at most {MAX_CHIPS}"));
            }
        }
    }
    Ok(())
}

/// A realistic no-limit hold'em deepstack: 20-minute levels, big blind ante
/// from level 4, two breaks with color-ups. Used by `--demo` and offered as
/// a template by the app's "create event" (the API itself always takes an
/// explicit structure).
pub fn deepstack_template() -> Vec<Level> {
    let mut levels = vec![
        Level::play(100, 200, 0, 20),
        Level::play(200, 300, 0, 20),
        Level::play(200, 400, 0, 20),
        Level::Play {
            small_blind: 300,
            big_blind: 600,
            ante: 600,
            duration_ms: 20 * 60_000,
            note: "Big blind ante starts".into(),
        },
        Level::play(400, 800, 800, 20),
        Level::pause(15, "Color up the 100 chips"),
        Level::play(500, 1_000, 1_000, 20),
        Level::play(600, 1_200, 1_200, 20),
        Level::play(800, 1_600, 1_600, 20),
        Level::play(1_000, 2_000, 2_000, 20),
        Level::pause(15, "Color up the 500 chips"),
        Level::play(1_500, 3_000, 3_000, 20),
        Level::play(2_000, 4_000, 4_000, 20),
        Level::play(2_500, 5_000, 5_000, 20),
        Level::play(3_000, 6_000, 6_000, 20),
        Level::play(4_000, 8_000, 8_000, 20),
    ];
    levels.shrink_to_fit();
    levels
}

/// A turbo: 10-minute levels, one break.
pub fn turbo_template() -> Vec<Level> {
    vec![
        Level::play(100, 200, 200, 10),
        Level::play(200, 400, 400, 10),
        Level::play(300, 600, 600, 10),
        Level::play(400, 800, 800, 10),
        Level::pause(10, "Color up the 100 chips"),
        Level::play(600, 1_200, 1_200, 10),
        Level::play(800, 1_600, 1_600, 10),
        Level::play(1_000, 2_000, 2_000, 10),
        Level::play(1_500, 3_000, 3_000, 10),
        Level::play(2_000, 4_000, 4_000, 10),
        Level::play(3_000, 6_000, 6_000, 10),
        Level::play(4_000, 8_000, 8_000, 10),
        Level::play(5_000, 10_000, 10_000, 10),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_valid_and_have_antes_and_breaks() {
        for t in [deepstack_template(), turbo_template()] {
            validate_levels(&t).expect("template is valid");
            assert!(t.iter().filter(|l| !l.is_break()).count() >= 12);
            assert!(t.iter().any(Level::is_break));
            assert!(t
                .iter()
                .any(|l| matches!(l, Level::Play { ante, .. } if *ante > 0)));
        }
    }

    #[test]
    fn level_numbers_skip_breaks() {
        let s = Structure::new(deepstack_template());
        assert_eq!(s.level_number(0), Some(1));
        assert_eq!(s.level_number(5), None);
        assert_eq!(s.level_number(6), Some(6));
        assert_eq!(s.next_break(0), Some(5));
        assert_eq!(s.next_play_level(4).map(|(i, _)| i), Some(6));
    }

    #[test]
    fn validation_names_the_wrong_step() {
        let mut levels = deepstack_template();
        levels[2] = Level::play(500, 400, 0, 20);
        let err = validate_levels(&levels).unwrap_err();
        assert!(err.contains("step 3"), "{err}");
        assert!(validate_levels(&[]).is_err());
        assert!(validate_levels(&[Level::pause(10, "")]).is_err());
        assert!(validate_levels(&[Level::play(1, 2, 0, 0)]).is_err());
    }

    #[test]
    fn levels_round_trip_as_tagged_json() {
        let json = serde_json::to_value(Level::pause(15, "Color up")).expect("json");
        assert_eq!(json["kind"], "break");
        let back: Level = serde_json::from_value(
            serde_json::json!({"kind":"level","small_blind":1,"big_blind":2,"duration_ms":60000}),
        )
        .expect("parses");
        assert_eq!(back, Level::play(1, 2, 0, 1));
    }
}
