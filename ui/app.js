// The main window's commands and the one store every component renders
// from. Commands go through `call` (over ipc.js), ops through `submit`;
// whatever the shell pushes is dispatched to the store by main.js. Nothing
// here decides sync or the clock: the engine does, in Rust, so every screen
// agrees and a hidden window cannot fall behind.

import { Store, opLabel } from "./lib/store.js";
import { normalizeError } from "./lib/forms.js";
import { invoke } from "./ipc.js";

export const store = new Store();

/** Invokes a command; rejects with the normalised {code, message, current}. */
export async function call(cmd, args) {
  try {
    return await invoke(cmd, args);
  } catch (e) {
    throw normalizeError(e);
  }
}

/**
 * Sends an op exactly as the API has it. Resolves with the op id once it is
 * queued durably (its answer comes later as a notice), or null
 * when the shell refused it at once (the reason is shown as a banner).
 */
export async function submit(op) {
  try {
    const r = await call("submit_op", { op });
    return (r && r.opId) || null;
  } catch (e) {
    store.dispatch({ type: "error", message: `Not sent — ${opLabel(op)}: ${e.message || e.code}` });
    return null;
  }
}

/** Loads the open event's state and clock (after opening it, or at start). */
export async function loadEvent() {
  const [state, view, status] = await Promise.all([
    call("event_state").catch(() => null),
    call("clock_view").catch(() => null),
    call("connection_status").catch(() => null),
  ]);
  if (state) store.dispatch({ type: "state", state });
  if (view) store.dispatch({ type: "clock", view });
  if (status) store.dispatch({ type: "status", status });
}

/** Takes a new AppState (from a command or the app push). */
export function takeApp(app) {
  if (!app || typeof app !== "object") return;
  const before = store.get();
  store.dispatch({ type: "app", app });
  const after = store.get();
  if (app.eventId && (!before.app || before.app.eventId !== app.eventId || !after.event)) {
    loadEvent();
  }
}

/** Reports a local failure as a dismissible banner. */
export function reportError(prefix, e) {
  const err = normalizeError(e);
  store.dispatch({ type: "error", message: `${prefix}: ${err.message || err.code}` });
}
