import { test } from "node:test";
import assert from "node:assert/strict";
import { clockDisplay, clockState, formatNext, currentLevelIndex, STATE_WORDS } from "../lib/clockview.js";

const stats = {
  entries: 48,
  players_remaining: 45,
  rebuys: 3,
  addons: 0,
  total_chips: 1_020_000,
  average_stack: 22_666,
  prize_pool: 5_100,
};

function view(over = {}) {
  return {
    eventId: "ev-1",
    eventName: "Saturday Deepstack",
    title: "Level 7",
    levelNumber: 7,
    isBreak: false,
    running: true,
    finished: false,
    remainingMs: 754_000,
    blinds: { smallBlind: 500, bigBlind: 1000, ante: 1000 },
    note: "",
    nextTitle: "Level 8",
    nextBlinds: { smallBlind: 600, bigBlind: 1200, ante: 1200 },
    untilBreakMs: 2_554_000,
    stats,
    seq: 12,
    serverNowMs: 1,
    ...over,
  };
}

test("a running level shows its time, blinds, next level and time to the break", () => {
  const d = clockDisplay(view());
  assert.equal(d.state, "running");
  assert.equal(d.stateWord, "Running");
  assert.equal(d.title, "Level 7");
  assert.equal(d.time, "12:34");
  assert.equal(d.blinds, "500 / 1,000 · ante 1,000");
  assert.equal(d.next, "Level 8 · 600 / 1,200 · ante 1,200");
  assert.equal(d.breakLabel, "Break in");
  assert.equal(d.breakIn, "42:34");
  assert.equal(d.players, "45 / 48");
  assert.equal(d.entries, "48");
  assert.equal(d.avg, "22,666");
  assert.equal(d.pool, "5,100");
  assert.equal(d.rebuys, "3");
  assert.equal(d.addons, "0");
  assert.equal(d.eventName, "Saturday Deepstack");
  assert.equal(d.documentTitle, "12:34 · Level 7 — Pitboss");
});

test("a break shows no blinds and counts down to play", () => {
  const d = clockDisplay(
    view({ title: "Break", levelNumber: null, isBreak: true, blinds: null, remainingMs: 900_000, note: "Color up the 100 chips", untilBreakMs: null }),
  );
  assert.equal(d.state, "break");
  assert.equal(d.stateWord, "Break");
  assert.equal(d.blinds, "");
  assert.equal(d.note, "Color up the 100 chips");
  assert.equal(d.breakLabel, "Play resumes in");
  assert.equal(d.breakIn, "15:00");
  assert.equal(d.isBreak, true);
});

test("paused, finished and waiting are said in words, never by colour alone", () => {
  assert.equal(clockState(view({ running: false })), "paused");
  assert.equal(clockDisplay(view({ running: false, isBreak: true })).stateWord, "Paused");
  assert.equal(clockDisplay(view({ finished: true, running: true })).stateWord, "Finished");
  const w = clockDisplay(null);
  assert.equal(w.state, "waiting");
  assert.equal(w.stateWord, "Waiting");
  assert.equal(w.time, "--:--");
  assert.equal(w.players, "–");
  for (const k of Object.keys(STATE_WORDS)) assert.ok(STATE_WORDS[k].length > 0);
});

test("the next step reads well for breaks, the last level and missing stats", () => {
  assert.equal(formatNext(view({ nextTitle: "Break (15 min)", nextBlinds: null })), "Break (15 min)");
  assert.equal(formatNext(view({ nextTitle: null, nextBlinds: null })), "Last level");
  assert.equal(formatNext(null), "Last level");
  const d = clockDisplay(view({ untilBreakMs: null, stats: undefined }));
  assert.equal(d.breakIn, "No break left");
  assert.equal(d.players, "– / –");
});

const L = (sb, bb) => ({ kind: "level", small_blind: sb, big_blind: bb, ante: 0, duration_ms: 1_200_000, note: "" });
const B = { kind: "break", duration_ms: 900_000, note: "" };
const levels = [L(100, 200), L(200, 400), B, L(300, 600), B, B, L(400, 800)];

test("the current step's index comes from the frame, or from the level number", () => {
  assert.equal(currentLevelIndex(view({ levelIndex: 4 }), levels), 4);
  assert.equal(currentLevelIndex(view({ levelNumber: 1 }), levels), 0);
  assert.equal(currentLevelIndex(view({ levelNumber: 3 }), levels), 3);
  assert.equal(currentLevelIndex(view({ levelNumber: 4 }), levels), 6);
  assert.equal(currentLevelIndex(view({ levelNumber: 9 }), levels), null);
  assert.equal(currentLevelIndex(null, levels), null);
  assert.equal(currentLevelIndex(view(), []), null);
});

test("on a break the index is found from the level that follows it", () => {
  const brk = (nextTitle) => view({ isBreak: true, levelNumber: null, title: "Break", nextTitle });
  assert.equal(currentLevelIndex(brk("Level 3"), levels), 2);
  // Two breaks in a row: the one just before level 4 is known, the first is not.
  assert.equal(currentLevelIndex(brk("Level 4"), levels), 5);
  assert.equal(currentLevelIndex(brk("Break (15 min)"), levels), null);
  assert.equal(currentLevelIndex(brk(null), [...levels, B]), 7);
  assert.equal(currentLevelIndex(brk(null), levels), null);
});
