// The wall screen: renders the ClockView frames the shell pushes (and asks
// for one at load), and a small status word when the connection is not
// live. Read-only, with no timers of its own: a fullscreen window behind
// another one is throttled, and the engine computes the clock anyway.

import { clockDisplay } from "./lib/clockview.js";
import { statusText, statusKind } from "./lib/status.js";
import { EVENTS, hasTauri, invoke, listen } from "./ipc.js";
const $ = (id) => document.getElementById(id);

function set(id, text) {
  const el = $(id);
  const t = String(text ?? "");
  if (el && el.textContent !== t) el.textContent = t;
}

function render(view) {
  const d = clockDisplay(view);
  const wall = $("wall");
  wall.dataset.state = d.state;
  wall.dataset.break = String(d.isBreak);
  set("d-event", d.eventName || "Pitboss");
  set("d-title", d.title);
  set("d-state", d.stateWord);
  set("d-time", d.time);
  $("d-time").dataset.long = String(d.time.length > 5);
  set("d-blinds", d.blinds);
  set("d-note", d.note);
  set("d-next", d.next);
  set("d-break-label", d.breakLabel);
  set("d-break", d.breakIn);
  set("d-players", d.players);
  set("d-avg", d.avg);
  set("d-pool", d.pool);
  document.title = view ? `${d.time} · ${d.title} — Pitboss Display` : "Pitboss — Display";
}

function renderStatus(status) {
  const el = $("d-status");
  const kind = statusKind(status, { mode: "join", eventId: "shown" });
  el.hidden = kind === "live";
  el.dataset.state = kind;
  set("d-status", kind === "live" ? "" : statusText(status, { mode: "join", eventId: "shown" }, Date.now()));
}

async function boot() {
  render(null);
  if (!hasTauri) {
    set("d-title", "This page runs inside the Pitboss app.");
    return;
  }
  await listen(EVENTS.CLOCK, render);
  await listen(EVENTS.STATUS, renderStatus);
  const [view, status] = await Promise.all([invoke("clock_view"), invoke("connection_status")]);
  if (view) render(view);
  if (status) renderStatus(status);
}

boot().catch((e) => {
  set("d-note", `Display error: ${e && e.message ? e.message : JSON.stringify(e)}`);
});
