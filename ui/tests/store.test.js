import { test } from "node:test";
import assert from "node:assert/strict";
import {
  initialModel,
  reduce,
  screenFor,
  roleOf,
  opLabel,
  rejectionText,
  pendingSummary,
  Store,
  MAX_BANNERS,
} from "../lib/store.js";

const hostApp = { mode: "host", role: "coordinator", eventId: "ev-1", host: null, settings: {}, sound: { available: true, message: "" } };
const incident = {
  id: "inc-1",
  table: "12",
  kind: "Misdeal",
  severity: "medium",
  status: "open",
  note: "n",
  created_by: "Ana",
  lock_version: 3,
  created_at_ms: 1,
  updated_at_ms: 1,
};
const state = (over = {}) => ({ eventId: "ev-1", seq: 4, incidents: [incident], pending: [], structure: { levels: [], lock_version: 2 }, role: "coordinator", ...over });

test("the screen follows the venue and the open event", () => {
  let m = initialModel();
  assert.equal(screenFor(m), "loading");
  m = reduce(m, { type: "app", app: { mode: "none", eventId: null } });
  assert.equal(screenFor(m), "connect");
  m = reduce(m, { type: "navigate", screen: "settings" });
  assert.equal(screenFor(m), "settings");
  m = reduce(m, { type: "navigate", screen: "connect" });
  m = reduce(m, { type: "app", app: { mode: "join", role: "dealer", eventId: null } });
  assert.equal(screenFor(m), "events");
  m = reduce(m, { type: "app", app: { mode: "join", role: "dealer", eventId: "ev-2" } });
  assert.equal(screenFor(m), "console");
  m = reduce(m, { type: "navigate", screen: "incidents" });
  assert.equal(screenFor(m), "incidents");
  m = reduce(m, { type: "navigate", screen: "events" });
  assert.equal(screenFor(m), "events", "the event list is reachable while an event is open");
  assert.equal(reduce(m, { type: "navigate", screen: "nowhere" }), m);
});

test("switching events drops everything of the old one", () => {
  let m = reduce(initialModel(), { type: "app", app: hostApp });
  m = reduce(m, { type: "state", state: state() });
  m = reduce(m, { type: "clock", view: { eventId: "ev-1", title: "Level 1" } });
  m = reduce(m, { type: "status", status: { state: "live" } });
  m = reduce(m, { type: "navigate", screen: "incidents" });
  const same = reduce(m, { type: "app", app: { ...hostApp, settings: { theme: "light" } } });
  assert.equal(same.event, m.event, "a settings change keeps the event");
  m = reduce(m, { type: "app", app: { ...hostApp, eventId: "ev-2" } });
  assert.equal(m.event, null);
  assert.equal(m.clock, null);
  assert.equal(m.status, null);
  assert.equal(m.screen, "console");
  // A late push from the old event is ignored.
  assert.equal(reduce(m, { type: "state", state: state() }).event, null);
  assert.equal(reduce(m, { type: "clock", view: { eventId: "ev-1" } }).clock, null);
  assert.notEqual(reduce(m, { type: "clock", view: { eventId: "ev-2" } }).clock, null);
});

test("state updates remember incident versions for conflicts", () => {
  let m = reduce(initialModel(), { type: "app", app: hostApp });
  m = reduce(m, { type: "state", state: state() });
  m = reduce(m, { type: "state", state: state({ incidents: [{ ...incident, lock_version: 4, kind: "Ruling" }] }) });
  assert.ok(m.history.map["inc-1@3"]);
  assert.ok(m.history.map["inc-1@4"]);
  assert.equal(roleOf(m), "coordinator");
  assert.equal(roleOf(initialModel()), null);
  assert.equal(roleOf({ app: { role: null }, event: { role: "dealer" } }), "dealer");
});

test("a conflict on an incident opens the conflict view with the version I based it on", () => {
  let m = reduce(initialModel(), { type: "app", app: hostApp });
  m = reduce(m, { type: "state", state: state() });
  const current = { ...incident, severity: "high", lock_version: 4 };
  const notice = {
    kind: "rejected",
    opId: "o1",
    error: "conflict",
    message: "someone else updated this incident",
    current,
    op: { type: "incident.update", incident_id: "inc-1", base_version: 3, note: "mine" },
  };
  m = reduce(m, { type: "notice", notice });
  assert.equal(m.conflicts.length, 1);
  const c = m.conflicts[0];
  assert.equal(c.baseKnown, true);
  assert.equal(c.mine.note, "mine");
  assert.equal(c.mine.severity, "medium");
  assert.deepEqual(c.changed, ["severity", "note"]);
  assert.equal(m.banners.length, 0);
  // A second conflict on the same incident replaces the first.
  m = reduce(m, { type: "notice", notice: { ...notice, opId: "o2" } });
  assert.equal(m.conflicts.length, 1);
  assert.equal(m.conflicts[0].opId, "o2");
  m = reduce(m, { type: "close-conflict", incidentId: "inc-1" });
  assert.equal(m.conflicts.length, 0);
});

test("a structure conflict is kept for the editor and announced elsewhere", () => {
  let m = reduce(initialModel(), { type: "app", app: hostApp });
  const notice = {
    kind: "rejected",
    opId: "o1",
    error: "conflict",
    message: "someone else updated the structure",
    current: { levels: [], lock_version: 5 },
    op: { type: "structure.update", base_version: 4, levels: [] },
  };
  const there = reduce(reduce(m, { type: "navigate", screen: "structure" }), { type: "notice", notice });
  assert.equal(there.structureConflict.message, "Someone else updated this structure — review and try again");
  assert.equal(there.banners.length, 0);
  m = reduce(m, { type: "notice", notice });
  assert.equal(m.structureConflict.current.lock_version, 5);
  assert.equal(m.banners.length, 1);
  assert.deepEqual(m.banners[0].action, { label: "Review", screen: "structure" });
  m = reduce(m, { type: "clear-structure-conflict" });
  assert.equal(m.structureConflict, null);
  assert.equal(m.banners.length, 0);
});

test("other rejections, banners and local errors are dismissible banners", () => {
  let m = initialModel();
  m = reduce(m, {
    type: "notice",
    notice: { kind: "rejected", opId: "o", error: "invalid", message: "only 3 players remain; cannot record 5 bust-outs", op: { type: "stats.bust", count: 5 } },
  });
  assert.equal(m.banners[0].kind, "error");
  assert.equal(m.banners[0].message, "Not applied — Bust-out ×5: only 3 players remain; cannot record 5 bust-outs");
  m = reduce(m, { type: "notice", notice: { kind: "banner", message: "Level 7 started at 21:14 while this device was asleep" } });
  assert.equal(m.banners[1].kind, "info");
  m = reduce(m, { type: "error", message: "cannot open the display" });
  assert.equal(m.banners.length, 3);
  const ids = new Set(m.banners.map((b) => b.id));
  assert.equal(ids.size, 3);
  m = reduce(m, { type: "dismiss-banner", id: m.banners[0].id });
  assert.equal(m.banners.length, 2);
  for (let i = 0; i < 10; i++) m = reduce(m, { type: "error", message: `e${i}` });
  assert.equal(m.banners.length, MAX_BANNERS);
  assert.equal(m.banners.at(-1).message, "e9");
  // A conflict without the record falls back to a banner rather than an empty view.
  m = reduce(initialModel(), { type: "notice", notice: { kind: "rejected", error: "conflict", message: "already running", op: { type: "clock.start" } } });
  assert.equal(m.banners[0].message, "Not applied — Start the clock: already running");
});

test("accepted notices change nothing; alerts are remembered with their time", () => {
  const m = initialModel();
  assert.equal(reduce(m, { type: "notice", notice: { kind: "accepted", opId: "o", seq: 3 } }), m);
  assert.equal(reduce(m, { type: "notice", notice: null }), m);
  assert.equal(reduce(m, { type: "bogus" }), m);
  const a = reduce(m, { type: "notice", notice: { kind: "alert", sound: "level", title: "Level 7" }, nowMs: 42 });
  assert.deepEqual(a.alert, { sound: "level", title: "Level 7", atMs: 42 });
});

test("ops are named for people", () => {
  assert.equal(opLabel({ type: "clock.adjust", delta_ms: 60000 }), "+1 min");
  assert.equal(opLabel({ type: "clock.adjust", delta_ms: -120000 }), "−2 min");
  assert.equal(opLabel({ type: "clock.adjust", delta_ms: 1000 }), "Clock adjustment");
  assert.equal(opLabel({ type: "stats.entry", count: 1 }), "Entry");
  assert.equal(opLabel({ type: "x.y" }), "x.y");
  assert.equal(opLabel(null), "Change");
  assert.equal(rejectionText({ op: { type: "stats.addon" }, error: "forbidden" }), "Not applied — Add-on: forbidden");
  assert.equal(
    pendingSummary([{ op: { type: "stats.bust", count: 1 } }, { op: { type: "stats.bust", count: 2 } }, { op: { type: "incident.create" } }]),
    "Bust-out ×2, New incident",
  );
  assert.equal(pendingSummary([]), "");
});

test("the store tells subscribers about real changes only", () => {
  const s = new Store();
  const seen = [];
  const off = s.subscribe((next, prev) => seen.push([next.screen, prev.screen]));
  s.dispatch({ type: "navigate", screen: "settings" });
  s.dispatch({ type: "bogus" });
  assert.deepEqual(seen, [["settings", "console"]]);
  off();
  s.dispatch({ type: "navigate", screen: "console" });
  assert.equal(seen.length, 1);
  assert.equal(s.get().screen, "console");
});

test("leaving the venue goes back to the connect screen, whatever was shown", () => {
  let m = reduce(initialModel(), { type: "app", app: hostApp });
  m = reduce(m, { type: "navigate", screen: "settings" });
  m = reduce(m, { type: "app", app: { mode: "none", role: null, eventId: null } });
  assert.equal(screenFor(m), "connect");
  let j = reduce(initialModel(), { type: "app", app: hostApp });
  j = reduce(j, { type: "navigate", screen: "settings" });
  j = reduce(j, { type: "app", app: { ...hostApp, eventId: null } });
  assert.equal(screenFor(j), "settings", "closing the event keeps settings open");
});
