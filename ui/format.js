// Pure formatting for the clock screens: no DOM, no Tauri, tested under
// Node's built-in runner (ui/tests). The numbers come from the Rust engine;
// this module only turns them into text a room can read.

/** 754000 → "12:34"; 3_900_000 → "1:05:00". Rounds up, so 0:01 shows until the level really ends. */
export function formatClock(ms) {
  if (!Number.isFinite(ms) || ms <= 0) return "0:00";
  const total = Math.ceil(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, "0");
  if (h > 0) return `${h}:${String(m).padStart(2, "0")}:${ss}`;
  return `${m}:${ss}`;
}

/** 1234567 → "1,234,567"; chips and money are whole numbers. */
export function formatCount(n) {
  if (!Number.isFinite(n)) return "–";
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Chip amounts for blinds: 1500 → "1,500", 25000 → "25K", 1500000 → "1.5M". */
export function formatChips(n) {
  if (!Number.isFinite(n)) return "–";
  if (n >= 1_000_000) return `${trim(n / 1_000_000)}M`;
  if (n >= 10_000) return `${trim(n / 1_000)}K`;
  return formatCount(n);
}

function trim(x) {
  return (Math.round(x * 10) / 10).toString();
}

/** "200 / 400" with "ante 400" when there is one. */
export function formatBlinds(b) {
  if (!b) return "";
  const base = `${formatChips(b.smallBlind)} / ${formatChips(b.bigBlind)}`;
  return b.ante > 0 ? `${base} · ante ${formatChips(b.ante)}` : base;
}

/** The word for the clock's state; never colour alone. */
export function clockStatus(view) {
  if (!view) return "Waiting for the server";
  if (view.finished) return "Structure finished";
  return view.running ? "Running" : "Paused";
}

/** "1 pending change" / "3 pending changes". */
export function plural(n, one, many = `${one}s`) {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/**
 * A wall-clock time of day, "21:14:03". `offsetMinutes` is what
 * Date#getTimezoneOffset returns (minutes to add to local time to get UTC);
 * it defaults to this machine's, and tests pass it to be independent of TZ.
 */
export function formatTimeOfDay(ms, offsetMinutes) {
  if (!Number.isFinite(ms)) return "–";
  const off = Number.isFinite(offsetMinutes) ? offsetMinutes : new Date(ms).getTimezoneOffset();
  const d = new Date(ms - off * 60_000);
  const p = (n) => String(n).padStart(2, "0");
  return `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

/** A step's length for people: 1_200_000 → "20 min", 90_000 → "1.5 min", 30_000 → "30 s". */
export function formatMinutes(ms) {
  if (!Number.isFinite(ms) || ms <= 0) return "0 min";
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  return `${trim(ms / 60_000)} min`;
}

/**
 * When something happened, short: "21:14" today, "2024-05-04 21:14" another
 * day. Offsets as for formatTimeOfDay.
 */
export function formatWhen(ms, nowMs = Date.now(), offsetMinutes) {
  if (!Number.isFinite(ms)) return "–";
  const off = Number.isFinite(offsetMinutes) ? offsetMinutes : new Date(ms).getTimezoneOffset();
  const day = (t) => new Date(t - off * 60_000).toISOString().slice(0, 10);
  const time = formatTimeOfDay(ms, off).slice(0, 5);
  return day(ms) === day(nowMs) ? time : `${day(ms)} ${time}`;
}
