import { test } from "node:test";
import assert from "node:assert/strict";
import {
  formatClock,
  formatCount,
  formatChips,
  formatBlinds,
  clockStatus,
  plural,
  formatTimeOfDay,
  formatMinutes,
  formatWhen,
} from "../format.js";

test("clock times round up to the second and grow hours when needed", () => {
  assert.equal(formatClock(754000), "12:34");
  assert.equal(formatClock(753001), "12:34");
  assert.equal(formatClock(999), "0:01");
  assert.equal(formatClock(0), "0:00");
  assert.equal(formatClock(-5), "0:00");
  assert.equal(formatClock(3_900_000), "1:05:00");
  assert.equal(formatClock(NaN), "0:00");
});

test("counts get thousands separators and big chip amounts get short forms", () => {
  assert.equal(formatCount(1234567), "1,234,567");
  assert.equal(formatCount(999), "999");
  assert.equal(formatChips(1500), "1,500");
  assert.equal(formatChips(25000), "25K");
  assert.equal(formatChips(1_500_000), "1.5M");
});

test("blinds show the ante only when there is one", () => {
  assert.equal(formatBlinds({ smallBlind: 100, bigBlind: 200, ante: 0 }), "100 / 200");
  assert.equal(formatBlinds({ smallBlind: 300, bigBlind: 600, ante: 600 }), "300 / 600 · ante 600");
  assert.equal(formatBlinds(null), "");
});

test("the clock state is said in words", () => {
  assert.equal(clockStatus(null), "Waiting for the server");
  assert.equal(clockStatus({ running: true, finished: false }), "Running");
  assert.equal(clockStatus({ running: false, finished: false }), "Paused");
  assert.equal(clockStatus({ running: false, finished: true }), "Structure finished");
});

test("plurals, missing numbers and lengths of steps", () => {
  assert.equal(plural(1, "pending change"), "1 pending change");
  assert.equal(plural(3, "pending change"), "3 pending changes");
  assert.equal(plural(1200, "entry", "entries"), "1,200 entries");
  assert.equal(formatCount(undefined), "–");
  assert.equal(formatChips(NaN), "–");
  assert.equal(formatMinutes(1_200_000), "20 min");
  assert.equal(formatMinutes(90_000), "1.5 min");
  assert.equal(formatMinutes(30_000), "30 s");
  assert.equal(formatMinutes(0), "0 min");
});

test("times of day are 24-hour hh:mm:ss in the given zone", () => {
  const t = Date.UTC(2024, 4, 4, 21, 14, 3);
  assert.equal(formatTimeOfDay(t, 0), "21:14:03");
  assert.equal(formatTimeOfDay(t, -120), "23:14:03"); // UTC+2
  assert.equal(formatTimeOfDay(t, 300), "16:14:03"); // UTC-5
  assert.equal(formatTimeOfDay(Date.UTC(2024, 0, 1, 0, 0, 9), 0), "00:00:09");
  assert.equal(formatTimeOfDay(NaN, 0), "–");
  assert.match(formatTimeOfDay(t), /^\d\d:\d\d:\d\d$/);
});

test("when: the time today, the date and time another day", () => {
  const now = Date.UTC(2024, 4, 4, 22, 0, 0);
  assert.equal(formatWhen(Date.UTC(2024, 4, 4, 21, 14, 3), now, 0), "21:14");
  assert.equal(formatWhen(Date.UTC(2024, 4, 3, 21, 14, 3), now, 0), "2024-05-03 21:14");
  // 23:30 UTC on the 4th is already the 5th at UTC+2, like "now" (00:00 on the 5th there).
  assert.equal(formatWhen(Date.UTC(2024, 4, 4, 23, 30), now, -120), "01:30");
  assert.equal(formatWhen(NaN, now, 0), "–");
});
