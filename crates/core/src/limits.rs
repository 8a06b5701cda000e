//! Caps on sizes and values. They keep one bad request (a typo, a script gone
//! wrong, a hostile device on the venue Wi-Fi) from storing something that every
//! screen would then have to render.

/// Largest HTTP body or WebSocket message the server reads, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Longest event name, in characters.
pub const MAX_EVENT_NAME_CHARS: usize = 120;
/// Longest table label ("12", "Feature table"), in characters.
pub const MAX_TABLE_CHARS: usize = 40;
/// Longest incident kind ("misdeal", "clock dispute"), in characters.
pub const MAX_KIND_CHARS: usize = 60;
/// Longest incident note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;
/// Longest operator or device name, in characters.
pub const MAX_NAME_CHARS: usize = 60;
/// Longest level note (color-up instructions), in characters.
pub const MAX_LEVEL_NOTE_CHARS: usize = 200;
/// Most levels (including breaks) in one structure.
pub const MAX_LEVELS: usize = 200;
/// Shortest level or break.
pub const MIN_LEVEL_MS: i64 = 1_000;
/// Longest level or break: a day.
pub const MAX_LEVEL_MS: i64 = 24 * 60 * 60 * 1000;
/// Largest single clock adjustment either way: a day.
pub const MAX_ADJUST_MS: i64 = 24 * 60 * 60 * 1000;
/// Largest remaining time a level may hold after adjustments: a week. It keeps
/// the arithmetic far away from overflow whatever the adjustments add up to.
pub const MAX_REMAINING_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Largest count in one stats operation (entries, busts, rebuys, add-ons).
pub const MAX_COUNT: u32 = 10_000;
/// Largest blind, ante or chip amount.
pub const MAX_CHIPS: u64 = 1_000_000_000_000;
/// Longest op id, in bytes.
pub const MAX_OP_ID_BYTES: usize = 100;
