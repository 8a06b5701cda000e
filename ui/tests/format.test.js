import { test } from "node:test";
import assert from "node:assert/strict";
import { formatClock, formatCount, formatChips, formatBlinds, clockStatus } from "../format.js";

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
