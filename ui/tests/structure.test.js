import { test } from "node:test";
import assert from "node:assert/strict";
import {
  levelsToRows,
  stepLabels,
  validateRows,
  structureOp,
  suggestLevel,
  addLevel,
  addBreak,
  removeRow,
  moveRow,
  setField,
  isDirty,
  parseChips,
  parseMinutes,
} from "../lib/structure.js";

const L = (sb, bb, ante = 0, min = 20, note = "") => ({ kind: "level", small_blind: sb, big_blind: bb, ante, duration_ms: min * 60_000, note });
const B = (min = 15, note = "") => ({ kind: "break", duration_ms: min * 60_000, note });
const levels = [L(100, 200), L(200, 400, 400, 20, "Big blind ante starts"), B(15, "Color up the 100 chips"), L(300, 600, 600)];

test("levels become rows and come back unchanged", () => {
  const rows = levelsToRows(levels);
  assert.equal(rows.length, 4);
  assert.equal(rows[1].small, "200");
  assert.equal(rows[1].ante, "400");
  assert.equal(rows[1].minutes, "20");
  assert.equal(rows[2].kind, "break");
  assert.equal(rows[2].small, "");
  assert.equal(new Set(rows.map((r) => r.key)).size, 4, "each row has its own key");
  const v = validateRows(rows);
  assert.equal(v.ok, true);
  assert.deepEqual(v.levels, levels);
  assert.equal(isDirty(rows, levels), false);
  assert.deepEqual(levelsToRows([{ ...B(), duration_ms: 90_000 }])[0].minutes, "1.5");
});

test("steps are named as a floor names them", () => {
  assert.deepEqual(stepLabels(levelsToRows(levels)), ["Level 1", "Level 2", "Break", "Level 3"]);
});

test("blinds must be above zero and the big blind at least the small blind", () => {
  let rows = levelsToRows(levels);
  rows = setField(rows, 0, "small", "0");
  rows = setField(rows, 1, "big", "100");
  rows = setField(rows, 3, "ante", "-5");
  const v = validateRows(rows);
  assert.equal(v.ok, false);
  assert.equal(v.levels, null);
  const msgs = v.errors.map((e) => `${e.index}:${e.field}:${e.message}`);
  assert.ok(msgs.some((m) => m.startsWith("0:small:Level 1: the small blind")), msgs.join("\n"));
  assert.ok(msgs.some((m) => m.startsWith("1:big:Level 2: the big blind (100) must be at least the small blind (200)")), msgs.join("\n"));
  assert.ok(msgs.some((m) => m.startsWith("3:ante:Level 3")), msgs.join("\n"));
});

test("durations are 1 to 240 minutes, for levels and breaks alike", () => {
  const rows = levelsToRows([L(100, 200, 0, 1), B(240), L(200, 400)]);
  assert.equal(validateRows(rows).ok, true);
  for (const bad of ["0", "0.5", "241", "", "ten", "-3"]) {
    const v = validateRows(setField(rows, 1, "minutes", bad));
    assert.equal(v.ok, false, bad);
    assert.equal(v.errors[0].field, "minutes");
    assert.match(v.errors[0].message, /^Break after level 1: /);
  }
  assert.equal(validateRows(setField(rows, 0, "minutes", "2,5")).levels[0].duration_ms, 150_000);
});

test("at least one level of play; notes and amounts are bounded", () => {
  const v = validateRows(levelsToRows([B(), B()]));
  assert.deepEqual(v.general, ["The structure needs at least one level of play."]);
  assert.equal(validateRows([]).ok, false);
  const long = validateRows(setField(levelsToRows(levels), 0, "note", "x".repeat(201)));
  assert.equal(long.errors[0].field, "note");
  const huge = validateRows(setField(levelsToRows(levels), 0, "big", "2000000000000"));
  assert.equal(huge.errors[0].field, "big");
  const many = validateRows(levelsToRows(Array.from({ length: 201 }, () => L(1, 2))));
  assert.match(many.general[0], /at most 200/);
  assert.equal(validateRows(setField(levelsToRows(levels), 0, "ante", "")).levels[0].ante, 0);
  assert.equal(parseChips("1,000"), 1000);
  assert.ok(Number.isNaN(parseChips("1.5")));
  assert.ok(Number.isNaN(parseMinutes("1e3")));
  assert.match(validateRows(levelsToRows([B()]).concat(levelsToRows([L(0, 2)]))).errors[0].message, /^Level 1: /);
  assert.match(validateRows(setField(levelsToRows([B(), L(1, 2)]), 0, "minutes", "")).errors[0].message, /^Break before level 1: /);
});

test("save sends structure.update based on the draft's version", () => {
  const { op } = structureOp(levelsToRows(levels), 7);
  assert.deepEqual(op, { type: "structure.update", base_version: 7, levels });
  const bad = structureOp(setField(levelsToRows(levels), 0, "big", "x"), 7);
  assert.equal(bad.op, null);
  assert.equal(bad.validation.ok, false);
});

test("adding, removing and moving steps", () => {
  let rows = levelsToRows(levels);
  rows = addLevel(rows);
  assert.deepEqual(
    (({ kind, small, big, ante, minutes }) => ({ kind, small, big, ante, minutes }))(rows[4]),
    { kind: "level", small: "600", big: "1200", ante: "1200", minutes: "20" },
  );
  rows = addBreak(rows, 10);
  assert.equal(rows[5].kind, "break");
  assert.equal(rows[5].minutes, "10");
  rows = moveRow(rows, 5, -1);
  assert.deepEqual(rows.map((r) => r.kind), ["level", "level", "break", "level", "break", "level"]);
  assert.deepEqual(moveRow(rows, 0, -1), rows);
  assert.deepEqual(moveRow(rows, 5, 1), rows);
  const moved = moveRow(rows, 0, 1);
  assert.equal(moved[1].key, rows[0].key, "a row keeps its key when it moves");
  rows = removeRow(rows, 2);
  assert.equal(rows.length, 5);
  assert.equal(isDirty(rows, levels), true);
  assert.deepEqual(
    (({ small, big, ante }) => ({ small, big, ante }))(suggestLevel([])),
    { small: "100", big: "200", ante: "0" },
  );
  assert.equal(suggestLevel(levelsToRows([L(100, 200)])).ante, "0");
  assert.equal(isDirty(setField(levelsToRows(levels), 0, "big", "x"), levels), true);
});

test("steps are described in one line for the conflict list", async () => {
  const { describeStep, levelLabels } = await import("../lib/structure.js");
  assert.equal(describeStep(L(200, 400, 400)), "200 / 400 · ante 400 · 20 min");
  assert.equal(describeStep(L(100, 200, 0, 15, "Last hand")), "100 / 200 · 15 min · Last hand");
  assert.equal(describeStep(B(10, "Color up")), "Break · 10 min · Color up");
  assert.equal(describeStep(null), "(none)");
  assert.deepEqual(levelLabels(levels), ["Level 1", "Level 2", "Break", "Level 3"]);
});
