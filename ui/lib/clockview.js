// What the clock screens (console and wall display) show, as text, from one
// ClockView frame pushed by the shell. Pure: no DOM, no Tauri, no timers.
// The frame already says where the clock is (the engine computes it, so
// every screen agrees); this module only words it.

import { formatClock, formatCount, formatBlinds } from "../format.js";

/** running | paused | break | finished | waiting: drives styling, never shown alone. */
export function clockState(view) {
  if (!view) return "waiting";
  if (view.finished) return "finished";
  if (!view.running) return "paused";
  return view.isBreak ? "break" : "running";
}

/** The word shown beside the colour: Running, Paused, Break, Finished. */
export const STATE_WORDS = Object.freeze({
  waiting: "Waiting",
  running: "Running",
  paused: "Paused",
  break: "Break",
  finished: "Finished",
});

/** "Level 8 · 600 / 1,200 · ante 1,200", "Break (15 min)", or "Last level". */
export function formatNext(view) {
  if (!view || !view.nextTitle) return "Last level";
  return view.nextBlinds ? `${view.nextTitle} · ${formatBlinds(view.nextBlinds)}` : view.nextTitle;
}

const EMPTY_STATS = {
  entries: NaN,
  players_remaining: NaN,
  rebuys: NaN,
  addons: NaN,
  average_stack: NaN,
  prize_pool: NaN,
};

/**
 * Every text the clock screens show for one frame (or for no frame yet).
 * Players are "remaining / entries", as a floor announces them.
 */
export function clockDisplay(view) {
  const state = clockState(view);
  if (!view) {
    return {
      state,
      stateWord: STATE_WORDS.waiting,
      isBreak: false,
      eventName: "",
      title: "—",
      time: "--:--",
      blinds: "",
      note: "",
      next: "–",
      breakLabel: "Break in",
      breakIn: "–",
      players: "–",
      entries: "–",
      avg: "–",
      pool: "–",
      rebuys: "–",
      addons: "–",
      documentTitle: "Pitboss",
    };
  }
  const s = view.stats || EMPTY_STATS;
  const time = formatClock(view.remainingMs);
  let breakLabel;
  let breakIn;
  if (view.isBreak) {
    breakLabel = "Play resumes in";
    breakIn = formatClock(view.remainingMs);
  } else {
    breakLabel = "Break in";
    breakIn = view.untilBreakMs == null ? "No break left" : formatClock(view.untilBreakMs);
  }
  return {
    state,
    stateWord: STATE_WORDS[state],
    isBreak: Boolean(view.isBreak),
    eventName: view.eventName || "",
    title: view.title || "—",
    time,
    blinds: view.isBreak ? "" : formatBlinds(view.blinds),
    note: view.note || "",
    next: formatNext(view),
    breakLabel,
    breakIn,
    players: `${formatCount(s.players_remaining)} / ${formatCount(s.entries)}`,
    entries: formatCount(s.entries),
    avg: formatCount(s.average_stack),
    pool: formatCount(s.prize_pool),
    rebuys: formatCount(s.rebuys),
    addons: formatCount(s.addons),
    documentTitle: `${time} · ${view.title} — Pitboss`,
  };
}

/**
 * The index (breaks counted) of the step the frame shows, for Previous /
 * Next level. Uses `view.levelIndex` when the shell sends it; otherwise it
 * is recovered from the frame's level number (a play level) or, on a break,
 * from the level that follows it, with the structure's levels.
 * Returns null when it cannot be told.
 */
export function currentLevelIndex(view, levels) {
  if (!view) return null;
  if (Number.isInteger(view.levelIndex)) return view.levelIndex;
  if (!Array.isArray(levels) || levels.length === 0) return null;
  const playIndex = (n) => {
    let seen = 0;
    for (let i = 0; i < levels.length; i++) {
      if (levels[i].kind !== "break") {
        seen += 1;
        if (seen === n) return i;
      }
    }
    return null;
  };
  if (!view.isBreak && Number.isInteger(view.levelNumber)) return playIndex(view.levelNumber);
  if (view.isBreak) {
    if (!view.nextTitle) {
      const last = levels.length - 1;
      return levels[last].kind === "break" ? last : null;
    }
    const m = /^Level (\d+)$/.exec(view.nextTitle);
    if (m) {
      const next = playIndex(Number(m[1]));
      if (next != null && next > 0 && levels[next - 1].kind === "break") return next - 1;
    }
  }
  return null;
}
