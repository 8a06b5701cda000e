import { test } from "node:test";
import assert from "node:assert/strict";
import {
  validateIncident,
  createOp,
  editOp,
  actionsFor,
  transitionOp,
  tablesPresent,
  filterByTable,
  groupByStatus,
  pendingByIncident,
  pendingCreates,
  pendingTag,
  describeUpdate,
  openCount,
  compareTables,
  statusWord,
  severityWord,
  KINDS,
} from "../lib/incidents.js";

function inc(over = {}) {
  return {
    id: "inc-1",
    table: "12",
    kind: "Misdeal",
    severity: "medium",
    status: "open",
    note: "Dealer exposed the first card",
    created_by: "Ana",
    lock_version: 3,
    created_at_ms: 1000,
    updated_at_ms: 1000,
    ...over,
  };
}

test("the form needs a table, a kind and a severity; the note is kept verbatim", () => {
  const bad = validateIncident({ table: "  ", kind: "", severity: "urgent", note: "" });
  assert.equal(bad.ok, false);
  assert.deepEqual(Object.keys(bad.errors).sort(), ["kind", "severity", "table"]);
  const note = `  <script>alert("x")</script>'; DROP TABLE incidents; --  `;
  const ok = validateIncident({ table: " 7 ", kind: " Ruling ", severity: "high", note });
  assert.equal(ok.ok, true);
  assert.deepEqual(ok.value, { table: "7", kind: "Ruling", severity: "high", note });
  assert.ok(KINDS.includes("Chip count"));
});

test("lengths are checked in characters, as the server counts them", () => {
  assert.equal(validateIncident({ table: "x".repeat(40), kind: "k", severity: "low" }).ok, true);
  assert.match(validateIncident({ table: "x".repeat(41), kind: "k", severity: "low" }).errors.table, /40/);
  assert.match(validateIncident({ table: "1", kind: "k".repeat(61), severity: "low" }).errors.kind, /60/);
  const emoji = "🂡".repeat(2000);
  assert.equal(validateIncident({ table: "1", kind: "k", severity: "low", note: emoji }).ok, true);
  assert.match(validateIncident({ table: "1", kind: "k", severity: "low", note: emoji + "!" }).errors.note, /2000/);
});

test("create sends exactly the API's incident.create", () => {
  assert.deepEqual(createOp({ table: "12", kind: "Misdeal", severity: "medium", note: "n" }).op, {
    type: "incident.create",
    table: "12",
    kind: "Misdeal",
    severity: "medium",
    note: "n",
  });
  const r = createOp({ table: "", kind: "Misdeal", severity: "medium" });
  assert.equal(r.op, null);
  assert.ok(r.errors.table);
});

test("an edit sends only the changed fields, based on the card's version", () => {
  const i = inc();
  const r = editOp(i, { table: "12", kind: "Ruling", severity: "high", note: i.note });
  assert.deepEqual(r.op, {
    type: "incident.update",
    incident_id: "inc-1",
    base_version: 3,
    kind: "Ruling",
    severity: "high",
  });
  const same = editOp(i, { table: " 12 ", kind: "Misdeal", severity: "medium", note: i.note });
  assert.equal(same.op, null);
  assert.equal(same.unchanged, true);
  const invalid = editOp(i, { table: "", kind: "Misdeal", severity: "medium", note: "" });
  assert.equal(invalid.op, null);
  assert.equal(invalid.unchanged, false);
  assert.ok(invalid.errors.table);
});

test("transitions follow the life cycle; reopen says so explicitly", () => {
  assert.deepEqual(actionsFor(inc({ status: "open" })), ["acknowledge", "resolve", "edit"]);
  assert.deepEqual(actionsFor(inc({ status: "acknowledged" })), ["resolve", "reopen", "edit"]);
  assert.deepEqual(actionsFor(inc({ status: "resolved" })), ["reopen", "edit"]);
  assert.deepEqual(actionsFor(null), ["edit"]);
  const i = inc({ lock_version: 9 });
  assert.deepEqual(transitionOp(i, "acknowledge"), { type: "incident.update", incident_id: "inc-1", base_version: 9, status: "acknowledged" });
  assert.deepEqual(transitionOp(i, "resolve"), { type: "incident.update", incident_id: "inc-1", base_version: 9, status: "resolved" });
  assert.deepEqual(transitionOp(i, "reopen"), { type: "incident.update", incident_id: "inc-1", base_version: 9, status: "open", reopen: true });
  assert.equal(transitionOp(i, "edit"), null);
});

test("tables are listed once in the order a floor counts them, and filtered exactly", () => {
  const list = [inc({ id: "a", table: "10" }), inc({ id: "b", table: "2" }), inc({ id: "c", table: "Feature" }), inc({ id: "d", table: "2 " }), inc({ id: "e", table: "1" })];
  assert.deepEqual(tablesPresent(list), ["1", "2", "10", "Feature"]);
  assert.deepEqual(filterByTable(list, "2").map((i) => i.id), ["b", "d"]);
  assert.deepEqual(filterByTable(list, " feature ").map((i) => i.id), ["c"]);
  assert.equal(filterByTable(list, "").length, 5);
  assert.equal(filterByTable(null, "1").length, 0);
  assert.ok(compareTables("9", "10") < 0);
});

test("columns: most severe and longest waiting first; resolved newest first", () => {
  const list = [
    inc({ id: "low-old", severity: "low", created_at_ms: 1 }),
    inc({ id: "high-new", severity: "high", created_at_ms: 50 }),
    inc({ id: "high-old", severity: "high", created_at_ms: 10 }),
    inc({ id: "ack", status: "acknowledged" }),
    inc({ id: "res-1", status: "resolved", updated_at_ms: 5 }),
    inc({ id: "res-2", status: "resolved", updated_at_ms: 9 }),
  ];
  const g = groupByStatus(list);
  assert.deepEqual(g.open.map((i) => i.id), ["high-old", "high-new", "low-old"]);
  assert.deepEqual(g.acknowledged.map((i) => i.id), ["ack"]);
  assert.deepEqual(g.resolved.map((i) => i.id), ["res-2", "res-1"]);
  assert.equal(openCount(list), 3);
});

test("pending ops tag their cards and pending creates are listed", () => {
  const pending = [
    { opId: "o1", op: { type: "incident.update", incident_id: "inc-1", base_version: 3, status: "acknowledged" }, createdAtMs: 1 },
    { opId: "o2", op: { type: "stats.bust", count: 1 }, createdAtMs: 2 },
    { opId: "o3", op: { type: "incident.create", table: "4", kind: "Other", severity: "low", note: "" }, createdAtMs: 3 },
    { opId: "o4", op: { type: "incident.update", incident_id: "inc-1", base_version: 4, note: "x" }, createdAtMs: 4 },
  ];
  const m = pendingByIncident(pending);
  assert.deepEqual(m.get("inc-1").map((p) => p.opId), ["o1", "o4"]);
  assert.equal(pendingTag(m.get("inc-1")), "pending: acknowledge, edit");
  assert.equal(pendingTag(undefined), "");
  assert.deepEqual(pendingCreates(pending).map((p) => p.opId), ["o3"]);
  assert.equal(describeUpdate({ status: "open", reopen: true }), "reopen");
  assert.equal(describeUpdate({ status: "resolved" }), "resolve");
  assert.equal(describeUpdate(null), "change");
});

test("statuses and severities are words", () => {
  assert.equal(statusWord("acknowledged"), "Acknowledged");
  assert.equal(severityWord("high"), "High");
  assert.equal(statusWord("x"), "x");
});

test("tables are named as the floor says them", async () => {
  const { tableLabel } = await import("../lib/incidents.js");
  assert.equal(tableLabel("12"), "Table 12");
  assert.equal(tableLabel(" 7b "), "Table 7b");
  assert.equal(tableLabel("Feature table"), "Feature table");
  assert.equal(tableLabel(null), "");
});
