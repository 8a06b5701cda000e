import { test } from "node:test";
import assert from "node:assert/strict";
import { EVENTS, hasTauri, invoke, listen } from "../ipc.js";
import { call } from "../app.js";

test("event names are the shell's pitboss:// names, frozen", () => {
  assert.deepEqual(Object.keys(EVENTS).sort(), ["APP", "CLOCK", "NOTICE", "STATE", "STATUS"]);
  for (const name of Object.values(EVENTS)) assert.match(name, /^pitboss:\/\/[a-z]+$/);
  assert.ok(Object.isFrozen(EVENTS));
});

test("outside the app a command fails in the one error shape, and listening does nothing", async () => {
  assert.equal(hasTauri, false);
  await assert.rejects(invoke("app_state"), (e) => e.code === "internal" && /inside the Pitboss app/.test(e.message));
  await assert.rejects(call("app_state"), (e) => e.code === "internal" && e.current === null);
  const unlisten = await listen(EVENTS.CLOCK, () => assert.fail("no event outside the app"));
  assert.equal(typeof unlisten, "function");
});
