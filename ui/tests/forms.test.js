import { test } from "node:test";
import assert from "node:assert/strict";
import {
  validateJoin,
  normalizeError,
  joinErrorText,
  validateCreateEvent,
  settingsFrom,
  soundCheckText,
  DEFAULT_SETTINGS,
} from "../lib/forms.js";

test("join needs an address and a code", () => {
  const ok = validateJoin({ address: " 192.168.1.20:7878 ", code: " K7QF " });
  assert.equal(ok.ok, true);
  assert.deepEqual(ok.value, { address: "192.168.1.20:7878", joinCode: "K7QF" });
  for (const address of ["http://pitboss.local:7878", "https://10.0.0.2", "pitboss.local", "192.168.1.20:7878/"]) {
    assert.equal(validateJoin({ address, code: "x" }).ok, true, address);
  }
  const bad = validateJoin({ address: "", code: "" });
  assert.deepEqual(Object.keys(bad.errors).sort(), ["address", "code"]);
  assert.ok(validateJoin({ address: "192.168.1.20 7878", code: "x" }).errors.address);
  assert.ok(validateJoin({ address: "ftp://x/y", code: "x" }).errors.address);
  assert.match(validateJoin({ address: "host:99999", code: "x" }).errors.address, /port/);
  assert.ok(validateJoin({ address: "h".repeat(201), code: "x" }).errors.address);
  assert.equal(validateJoin(null).ok, false);
});

test("command errors come in one shape whatever the bridge gave", () => {
  assert.deepEqual(normalizeError({ code: "conflict", message: "m", current: { a: 1 } }), { code: "conflict", message: "m", current: { a: 1 } });
  assert.deepEqual(normalizeError({ code: "offline" }), { code: "offline", message: "", current: null });
  assert.equal(normalizeError(new Error("boom")).message, "boom");
  assert.deepEqual(normalizeError('{"code":"forbidden","message":"no"}'), { code: "forbidden", message: "no", current: null });
  assert.deepEqual(normalizeError("plain"), { code: "internal", message: "plain", current: null });
  assert.equal(normalizeError(undefined).code, "internal");
});

test("a failed join says what to do", () => {
  assert.match(joinErrorText({ code: "unauthorized", message: "the join code was not accepted" }), /^Wrong join code/);
  assert.match(joinErrorText({ code: "offline", message: "connection refused" }, "10.0.0.2:7878"), /Cannot reach 10\.0\.0\.2:7878.*connection refused/);
  assert.equal(joinErrorText({ code: "invalid", message: "enter the join code shown on the host" }), "enter the join code shown on the host");
  assert.equal(joinErrorText({ code: "internal", message: "" }), "Could not join the venue.");
});

test("creating an event checks name, template, stack and buy-in", () => {
  const templates = [{ id: "deepstack" }, { id: "turbo" }];
  const ok = validateCreateEvent({ name: " Friday Turbo ", templateId: "turbo", startingStack: "20,000", buyIn: "0" }, templates);
  assert.equal(ok.ok, true);
  assert.deepEqual(ok.value, { name: "Friday Turbo", templateId: "turbo", startingStack: 20000, buyIn: 0 });
  const bad = validateCreateEvent({ name: "", templateId: "nope", startingStack: "0", buyIn: "-1" }, templates);
  assert.deepEqual(Object.keys(bad.errors).sort(), ["buyIn", "name", "startingStack", "templateId"]);
  assert.ok(validateCreateEvent({ name: "x".repeat(121), templateId: "turbo", startingStack: "1", buyIn: "1" }, templates).errors.name);
  assert.ok(validateCreateEvent({ name: "x", templateId: "", startingStack: "1", buyIn: "1" }).errors.templateId);
  assert.ok(validateCreateEvent({ name: "x", templateId: "a", startingStack: "2000000000000", buyIn: "2000000000000" }).errors.startingStack);
});

test("settings keep what the form does not show and check the rest", () => {
  const current = { ...DEFAULT_SETTINGS, serverAddress: "10.0.0.2:7878", operatorName: "Ana" };
  const r = settingsFrom(current, { operatorName: " Bea ", volumePercent: "35", alerts: { oneMinute: false }, theme: "light" });
  assert.equal(r.ok, true);
  assert.equal(r.settings.serverAddress, "10.0.0.2:7878");
  assert.equal(r.settings.operatorName, "Bea");
  assert.equal(r.settings.volume, 0.35);
  assert.deepEqual(r.settings.alerts, { levelChange: true, oneMinute: false, breaks: true });
  assert.equal(r.settings.theme, "light");
  assert.equal("volumePercent" in r.settings, false);
  assert.ok(settingsFrom(current, { volumePercent: 120 }).errors.volume);
  assert.ok(settingsFrom(current, { theme: "neon" }).errors.theme);
  assert.ok(settingsFrom(current, { deviceName: "d".repeat(61) }).errors.deviceName);
  assert.equal(settingsFrom(null, {}).settings.volume, 0.8);
});

test("the sound check is said in words", () => {
  assert.equal(soundCheckText({ available: false, message: "no output device" }), "Sound unavailable: no output device");
  assert.match(soundCheckText({ available: true, message: "" }), /^Sound OK/);
  assert.equal(soundCheckText(null), "");
});
