import { test } from "node:test";
import assert from "node:assert/strict";
import {
  statusText,
  statusKind,
  retryText,
  pendingCount,
  hostText,
  joinedKeyText,
  soundText,
  secondsUntil,
  sleptThroughText,
} from "../lib/status.js";

const app = { mode: "join", eventId: "ev-1", role: "dealer" };
const now = Date.UTC(2024, 4, 4, 21, 20, 0);

test("live and connecting", () => {
  assert.equal(statusText({ state: "live" }, app, now, 0), "Live");
  assert.equal(statusText({ state: "connecting" }, app, now, 0), "Connecting…");
  assert.equal(statusText(null, app, now, 0), "Connecting…");
  assert.equal(statusKind({ state: "live" }, app), "live");
});

test("reconnecting counts down whole seconds to the next attempt", () => {
  const s = { state: "reconnecting", nextAttemptAtMs: now + 2_100, sinceMs: now - 500 };
  assert.equal(statusText(s, app, now, 0), "Reconnecting in 3 s");
  assert.equal(statusText({ ...s, nextAttemptAtMs: now + 1_000 }, app, now, 0), "Reconnecting in 1 s");
  assert.equal(statusText({ ...s, nextAttemptAtMs: now - 10 }, app, now, 0), "Reconnecting…");
  assert.equal(secondsUntil(undefined, now), 0);
});

test("offline says when it last synced, and when it tries again", () => {
  const s = {
    state: "offline",
    sinceMs: now - 60_000,
    nextAttemptAtMs: now + 12_000,
    lastSyncedMs: Date.UTC(2024, 4, 4, 21, 14, 3),
    pending: 2,
  };
  const host = { ...app, mode: "host" };
  assert.equal(statusText(s, host, now, 0), "Offline — last synced 21:14:03");
  assert.equal(statusText({ ...s, lastSyncedMs: null }, host, now, 0), "Offline — not synced yet");
  // A joined device names what is missing: the host.
  const lost = { ...s, sinceMs: Date.UTC(2024, 4, 4, 21, 14, 5) };
  assert.equal(statusText(lost, app, now, 0), "Host unreachable since 21:14:05 — last synced 21:14:03");
  assert.equal(statusText({ ...lost, lastSyncedMs: null }, app, now, 0), "Host unreachable since 21:14:05");
  assert.equal(retryText(s, now), "next try in 12 s");
  assert.equal(retryText({ ...s, nextAttemptAtMs: now }, now), "trying now");
  assert.equal(retryText({ state: "live" }, now), "");
  assert.equal(retryText(null, now), "");
});

test("without an event there is no connection to report", () => {
  assert.equal(statusKind(null, null), "none");
  assert.equal(statusText(null, { mode: "none" }, now), "Not connected");
  assert.equal(statusText(null, { mode: "host", eventId: null }, now), "Hosting — no event open");
  assert.equal(statusText(null, { mode: "join", eventId: null }, now), "Joined — no event open");
  assert.equal(statusKind({ state: "weird" }, { mode: "none" }), "none");
});

test("pending changes come from the event state, else from the status", () => {
  assert.equal(pendingCount({ pending: [{}, {}] }, { pending: 5 }), 2);
  assert.equal(pendingCount(null, { pending: 5 }), 5);
  assert.equal(pendingCount(null, null), 0);
});

test("host info names the first LAN address and both codes", () => {
  const host = {
    mode: "host",
    host: { port: 7878, addresses: ["192.168.1.20:7878", "127.0.0.1:7878"], coordinatorCode: "K7QF", dealerCode: "3MPX" },
  };
  assert.equal(hostText(host), "Hosting on 192.168.1.20:7878 · Coordinator code K7QF · Dealer code 3MPX");
  assert.equal(
    hostText({ mode: "host", host: { port: 9000, addresses: [], coordinatorCode: "A", dealerCode: "B" } }),
    "Hosting on port 9000 · Coordinator code A · Dealer code B",
  );
  assert.equal(hostText({ mode: "join", host: null }), "");
  assert.equal(hostText(null), "");
  const keyed = { mode: "host", host: { ...host.host, keyFingerprint: "3F2A 91C0 7BE4 D215 0C9E" } };
  assert.equal(
    hostText(keyed),
    "Hosting on 192.168.1.20:7878 · Key 3F2A 91C0 7BE4 D215 0C9E · Coordinator code K7QF · Dealer code 3MPX",
  );
});

test("a joined device shows the host key it pinned, to compare with the host's header", () => {
  assert.equal(
    joinedKeyText({ mode: "join", serverKey: "3F2A 91C0 7BE4 D215 0C9E" }),
    "Host key 3F2A 91C0 7BE4 D215 0C9E — the host's header shows the same",
  );
  assert.equal(joinedKeyText({ mode: "join", serverKey: null }), "");
  assert.equal(joinedKeyText({ mode: "host", serverKey: "X" }), "");
});

test("a server without the pinned key is named as such, not as offline", () => {
  const status = { state: "key_changed", nextAttemptAtMs: 10_000 };
  assert.equal(statusKind(status, { mode: "join", eventId: "ev-1" }), "key_changed");
  assert.match(statusText(status, { mode: "join", eventId: "ev-1" }, 0), /^Not the host you joined — its key changed/);
});

test("sound is reported only when unavailable", () => {
  assert.equal(soundText({ sound: { available: true, message: "ok" } }), "");
  assert.equal(soundText({ sound: { available: false, message: "no audio device" } }), "Sound unavailable: no audio device");
  assert.equal(soundText({ sound: { available: false, message: "" } }), "Sound unavailable");
  assert.equal(soundText(null), "");
});

test("degraded says the WebSocket is blocked and updates are slower", () => {
  const s = { state: "degraded", sinceMs: now - 5_000, lastSyncedMs: now - 1_000, pending: 0 };
  assert.equal(statusKind(s, app), "degraded");
  assert.equal(statusText(s, app, now, 0), "Degraded — updates every few seconds (WebSocket blocked)");
  assert.equal(retryText(s, now), "");
});

test("a level that began during sleep is named, with its start time", () => {
  const at = Date.UTC(2024, 4, 4, 21, 14, 3);
  assert.equal(sleptThroughText({ levelNumber: 7, isBreak: false, startedAtMs: at }, 0), "Level 7 started at 21:14 while this device was asleep");
  assert.equal(sleptThroughText({ levelNumber: 5, isBreak: true, startedAtMs: at }, 0), "A break started at 21:14 while this device was asleep");
  assert.equal(sleptThroughText({ levelNumber: 7, isBreak: false, startedAtMs: null }, 0), "Level 7 began while this device was asleep");
});

test("a level that began while the connection was down says offline, not asleep", () => {
  const at = Date.UTC(2024, 4, 4, 21, 14, 3);
  assert.equal(
    sleptThroughText({ levelNumber: 7, isBreak: false, startedAtMs: at, away: "offline" }, 0),
    "Level 7 started at 21:14 while this device was offline",
  );
  assert.equal(
    sleptThroughText({ levelNumber: 8, isBreak: false, startedAtMs: at, away: "asleep" }, 0),
    "Level 8 started at 21:14 while this device was asleep",
  );
});
