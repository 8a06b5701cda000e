// How the trust features change what each screen shows: role gating of
// screens, the signed-out state, the throttle banner, the join form with a
// pairing code, and the host line with the display code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { reduce, initialModel, screenFor } from "../lib/store.js";
import { validateJoin, joinErrorText, normalizeError } from "../lib/forms.js";
import { statusText, statusKind, hostText } from "../lib/status.js";

const withApp = (app, screen) => ({ ...reduce(initialModel(), { type: "app", app }), screen });
const app = (role, over) => ({ mode: "join", eventId: "ev-1", role, server: "http://h:7878", ...over });

test("a dealer or a display asking for Devices or Audit gets the clock instead", () => {
  for (const role of ["dealer", "display", null]) {
    assert.equal(screenFor(withApp(app(role), "devices")), "console", String(role));
    assert.equal(screenFor(withApp(app(role), "audit")), "console", String(role));
  }
  assert.equal(screenFor(withApp(app("coordinator"), "devices")), "devices");
  assert.equal(screenFor(withApp(app("coordinator"), "audit")), "audit");
  assert.equal(screenFor(withApp(app("display"), "structure")), "console", "a wall screen has no structure editor");
  assert.equal(screenFor(withApp(app("display"), "incidents")), "incidents", "but shows the board");
});

test("a signed-out device shows only the signed-out screen, and says why", () => {
  const reason = "This device was revoked by the coordinator; join again with a new code";
  const m = withApp(app("dealer", { signedOut: reason }), "incidents");
  assert.equal(screenFor(m), "signedout");
  assert.equal(statusKind({ state: "live" }, m.app), "signed_out");
  assert.equal(statusText({ state: "signed_out", reason }, m.app, 0, 0), "Signed out — join again with a new code");
  assert.equal(statusText({ state: "signed_out", reason }, app("dealer"), 0, 0), "Signed out — join again with a new code");
  // Leaving (Join again) goes back to the join screen.
  assert.equal(screenFor(reduce(m, { type: "app", app: { mode: "none", eventId: null } })), "connect");
});

test("throttled ops show one calm banner, never a refusal, however many wait", () => {
  let m = withApp(app("dealer"), "console");
  for (let i = 0; i < 4; i++) {
    m = reduce(m, { type: "notice", notice: { kind: "throttled", opId: `op-${i}`, retryAfterMs: 1500 }, nowMs: 0 });
  }
  assert.equal(m.banners.length, 1);
  assert.equal(m.banners[0].kind, "warn");
  assert.match(m.banners[0].message, /again in 2 s, nothing is lost/);
  assert.doesNotMatch(m.banners[0].message, /Not applied/);
});

test("the join form takes a 6-digit pairing code as well as a long code", () => {
  const v = validateJoin({ address: "192.168.1.20:7878", code: " 123 456 " });
  assert.equal(v.ok, true);
  assert.equal(v.value.joinCode, "123456");
  assert.equal(validateJoin({ address: "h:1", code: "COORD-4242" }).value.joinCode, "COORD-4242");
  const short = validateJoin({ address: "h:1", code: "12345" });
  assert.equal(short.ok, false);
  assert.match(short.errors.code, /6 digits/);
  assert.match(validateJoin({ address: "h:1", code: "" }).errors.code, /pairing code/);
});

test("a refused pairing code, a throttle and a sign-out are each said plainly", () => {
  assert.match(joinErrorText({ code: "unauthorized", message: "" }, "h", "123456"), /expired or been used/);
  assert.match(joinErrorText({ code: "unauthorized", message: "" }, "h", "COORD-1"), /Wrong join code/);
  assert.equal(joinErrorText({ code: "rate_limited", message: "", retryAfterMs: 20_000 }, "h", "123456"),
    "Too many tries from this device — wait 20 s and try again.");
  assert.equal(normalizeError({ code: "rate_limited", message: "m", retryAfterMs: 5 }).retryAfterMs, 5);
  assert.match(joinErrorText({ code: "signed_out", message: "revoked" }, "h", "x"), /revoked/);
});

test("the host line shows the display code once the server has one", () => {
  const host = { port: 7878, addresses: ["192.168.1.20:7878"], coordinatorCode: "K7QF", dealerCode: "3MPX" };
  assert.equal(hostText({ mode: "host", host }), "Hosting on 192.168.1.20:7878 · Coordinator code K7QF · Dealer code 3MPX");
  assert.equal(hostText({ mode: "host", host: { ...host, displayCode: "W4LL" } }),
    "Hosting on 192.168.1.20:7878 · Coordinator code K7QF · Dealer code 3MPX · Display code W4LL");
});
