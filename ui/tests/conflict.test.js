import { test } from "node:test";
import assert from "node:assert/strict";
import {
  rememberIncidents,
  recall,
  applyUpdate,
  opFields,
  buildIncidentConflict,
  reapplyOp,
  diffLevels,
} from "../lib/conflict.js";

const base = {
  id: "inc-1",
  table: "12",
  kind: "Misdeal",
  severity: "medium",
  status: "open",
  note: "exposed card",
  created_by: "Ana",
  lock_version: 3,
  created_at_ms: 1,
  updated_at_ms: 1,
};
const theirs = { ...base, severity: "high", status: "acknowledged", note: "exposed card, player upset", lock_version: 5, updated_at_ms: 9 };

test("incident versions are remembered, bounded, and recalled by id and version", () => {
  let h = rememberIncidents(null, [base]);
  assert.equal(recall(h, "inc-1", 3), base);
  const same = rememberIncidents(h, [base]);
  assert.equal(same, h, "nothing new: the same history");
  h = rememberIncidents(h, [theirs]);
  assert.equal(recall(h, "inc-1", 5), theirs);
  assert.equal(recall(h, "inc-1", 3), base);
  assert.equal(recall(h, "inc-1", 4), null);
  let small = rememberIncidents(null, [base], 2);
  small = rememberIncidents(small, [theirs, { ...base, lock_version: 6 }], 2);
  assert.equal(recall(small, "inc-1", 3), null, "the oldest went");
  assert.equal(small.order.length, 2);
  assert.equal(recall(null, "x", 1), null);
});

test("yours is your fields over the record you based them on", () => {
  const op = { type: "incident.update", incident_id: "inc-1", base_version: 3, kind: "Ruling", note: "my words" };
  assert.deepEqual(opFields(op), { kind: "Ruling", note: "my words" });
  const mine = applyUpdate(base, op);
  assert.equal(mine.kind, "Ruling");
  assert.equal(mine.severity, "medium");
  assert.equal(mine.lock_version, 3);
});

test("a conflict shows both versions and marks what differs", () => {
  const op = { type: "incident.update", incident_id: "inc-1", base_version: 3, kind: "Ruling", note: "my words" };
  const c = buildIncidentConflict({ opId: "o1", op, current: theirs, message: "someone else updated this incident" }, base);
  assert.equal(c.incidentId, "inc-1");
  assert.equal(c.baseKnown, true);
  assert.equal(c.mine.kind, "Ruling");
  assert.equal(c.mine.severity, "medium");
  assert.equal(c.theirs, theirs);
  assert.deepEqual(c.changed, ["kind", "severity", "status", "note"]);
  assert.deepEqual(c.yourFields, ["kind", "note"]);
  assert.deepEqual(c.theirChanges, ["severity", "status", "note"]);
});

test("without the base record, yours is your fields over theirs", () => {
  const op = { type: "incident.update", incident_id: "inc-1", base_version: 3, table: "14" };
  const c = buildIncidentConflict({ op, current: theirs }, null);
  assert.equal(c.baseKnown, false);
  assert.equal(c.mine.table, "14");
  assert.equal(c.mine.severity, "high");
  assert.deepEqual(c.changed, ["table"]);
  assert.deepEqual(c.theirChanges, []);
});

test("apply mine again re-sends my fields on their version", () => {
  const op = { type: "incident.update", incident_id: "inc-1", base_version: 3, kind: "Ruling", note: "my words" };
  const r = reapplyOp(buildIncidentConflict({ op, current: theirs }, base));
  assert.deepEqual(r.op, { type: "incident.update", incident_id: "inc-1", base_version: 5, kind: "Ruling", note: "my words" });
  assert.equal(r.problem, "");
  assert.equal(r.noop, false);
});

test("a reopen again asks for reopen; going backwards is named as a problem", () => {
  const reopen = { type: "incident.update", incident_id: "inc-1", base_version: 3, status: "open", reopen: true };
  const r = reapplyOp(buildIncidentConflict({ op: reopen, current: { ...theirs, status: "resolved" } }, base));
  assert.equal(r.op.reopen, true);
  assert.equal(r.op.status, "open");
  const ack = { type: "incident.update", incident_id: "inc-1", base_version: 3, status: "acknowledged" };
  const back = reapplyOp(buildIncidentConflict({ op: ack, current: { ...theirs, status: "resolved" } }, base));
  assert.match(back.problem, /cannot go back to acknowledged/);
  const noop = reapplyOp(buildIncidentConflict({ op: ack, current: theirs }, base));
  assert.equal(noop.noop, true);
  assert.equal(noop.op.reopen, undefined);
});

const L = (sb, bb, ante = 0, min = 20, note = "") => ({ kind: "level", small_blind: sb, big_blind: bb, ante, duration_ms: min * 60_000, note });
const B = (min = 15, note = "") => ({ kind: "break", duration_ms: min * 60_000, note });

test("structure differences are listed step by step", () => {
  const mine = [L(100, 200), L(200, 400, 0, 30), B(15, "Color up")];
  const theirs = [L(100, 200), L(200, 400, 400), B(10, "Color up"), L(300, 600)];
  const d = diffLevels(mine, theirs);
  assert.deepEqual(d.map((x) => x.index), [1, 2, 3]);
  assert.deepEqual(d[0].fields, ["ante", "duration_ms"]);
  assert.deepEqual(d[1].fields, ["duration_ms"]);
  assert.equal(d[2].mine, null);
  assert.equal(d[2].fields.length, 6);
  assert.deepEqual(diffLevels(mine, mine), []);
  assert.deepEqual(diffLevels([L(1, 2)], [B()])[0].fields.includes("kind"), true);
  assert.deepEqual(diffLevels(null, null), []);
});
