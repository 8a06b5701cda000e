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
