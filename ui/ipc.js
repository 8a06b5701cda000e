// The one place the UI talks to Tauri: commands (`invoke`), the events the
// shell pushes (`listen`) and their names. Every other module goes through
// here, so a renamed command or event is changed in one file, and a page
// opened outside the app fails in one known way (docs/app-ipc.md).

const T = globalThis.window ? globalThis.window.__TAURI__ : undefined;

/**
 * The events the shell pushes. src-tauri/src/ipc.rs names the same ones; a
 * Rust test (`ui_ipc_js_names_the_same_events`) keeps the two equal.
 */
export const EVENTS = Object.freeze({
  CLOCK: "pitboss://clock",
  STATE: "pitboss://state",
  STATUS: "pitboss://status",
  NOTICE: "pitboss://notice",
  APP: "pitboss://app",
});

/** False when the page is opened in a plain browser (no shell to talk to). */
export const hasTauri = Boolean(T && T.core && T.event);

const NO_SHELL = { code: "internal", message: "This page runs inside the Pitboss app.", current: null };

/** Invokes a command; resolves with its value, rejects with what the shell rejected with. */
export function invoke(cmd, args) {
  if (!hasTauri) return Promise.reject(NO_SHELL);
  return T.core.invoke(cmd, args);
}

/** Listens to a pushed event; the callback gets the payload. Resolves with an unlisten function. */
export function listen(name, cb) {
  if (!hasTauri) return Promise.resolve(() => {});
  return T.event.listen(name, (e) => cb(e.payload));
}
