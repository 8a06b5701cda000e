import { test } from "node:test";
import assert from "node:assert/strict";
import { permission, roleLabel, isCoordinatorOnly, COORDINATOR_OPS } from "../lib/permissions.js";

const live = { mode: "join", status: { state: "live" } };

test("a coordinator may use everything", () => {
  for (const op of [...COORDINATOR_OPS, "stats.bust", "incident.create", "event.create"]) {
    assert.deepEqual(permission("coordinator", op, live), { allowed: true, reason: "" });
  }
});

test("a dealer reports but does not run the clock or edit the structure, and is told why", () => {
  for (const op of ["stats.bust", "stats.entry", "stats.rebuy", "stats.addon", "incident.create", "incident.update"]) {
    assert.equal(permission("dealer", op, live).allowed, true, op);
  }
  const clock = permission("dealer", "clock.start", live);
  assert.equal(clock.allowed, false);
  assert.match(clock.reason, /Only a coordinator can run the clock/);
  assert.match(permission("dealer", "structure.update").reason, /edit the structure/);
  assert.match(permission("dealer", "event.create").reason, /create events/);
});

test("an unknown role gets no coordinator buttons but may still report", () => {
  assert.equal(permission(null, "clock.adjust").allowed, false);
  assert.match(permission(null, "clock.adjust").reason, /role is not known/);
  assert.equal(permission(null, "stats.bust").allowed, true);
});

test("a joined device needs a live connection for clock controls; the host never does", () => {
  const off = permission("coordinator", "clock.pause", { mode: "join", status: { state: "offline" } });
  assert.equal(off.allowed, false);
  assert.match(off.reason, /live connection/);
  assert.equal(permission("coordinator", "clock.pause", { mode: "host", status: { state: "offline" } }).allowed, true);
  assert.equal(permission("coordinator", "structure.update", { mode: "join", status: { state: "offline" } }).allowed, true);
  assert.equal(permission("coordinator", "stats.bust", { mode: "join", status: null }).allowed, true);
});

test("roles are named for people", () => {
  assert.equal(roleLabel("coordinator"), "Coordinator");
  assert.equal(roleLabel("dealer"), "Dealer");
  assert.equal(roleLabel(null), "Unknown role");
  assert.equal(isCoordinatorOnly("stats.bust"), false);
});

test("a display may do nothing, and says why", async () => {
  const { screensFor, controlsFor, DISPLAY_REASON } = await import("../lib/permissions.js");
  for (const op of [...COORDINATOR_OPS, "stats.bust", "stats.entry", "incident.create", "incident.update", "event.create"]) {
    const p = permission("display", op, live);
    assert.equal(p.allowed, false, op);
    assert.equal(p.reason, DISPLAY_REASON);
  }
  assert.equal(roleLabel("display"), "Display");
  assert.deepEqual(controlsFor("display"), {
    clockControls: false,
    tableControls: false,
    incidentForm: false,
    incidentActions: false,
    history: false,
  });
  assert.deepEqual(screensFor("display").sort(), ["console", "events", "incidents", "settings"]);
});

test("Devices and Audit are the coordinator's only", async () => {
  const { screensFor, controlsFor } = await import("../lib/permissions.js");
  assert.ok(screensFor("coordinator").includes("devices"));
  assert.ok(screensFor("coordinator").includes("audit"));
  for (const r of ["dealer", "display", null]) {
    assert.ok(!screensFor(r).includes("devices"), String(r));
    assert.ok(!screensFor(r).includes("audit"), String(r));
  }
  assert.equal(permission("dealer", "devices.manage", live).allowed, false);
  assert.equal(controlsFor("dealer").history, false);
  assert.equal(controlsFor("dealer").tableControls, true);
  assert.equal(controlsFor("coordinator").history, true);
});
