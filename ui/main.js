// The main window: wires what the shell pushes into the store, shows one
// screen at a time, and applies the theme. Components render the store;
// the UI decides nothing about sync or the clock, which the engine owns.

import { store, call, takeApp } from "./app.js";
import { EVENTS, hasTauri, listen } from "./ipc.js";
import { screenFor } from "./lib/store.js";
import "./components/pb-header.js";
import "./components/pb-banners.js";
import "./components/pb-status-bar.js";
import "./components/pb-connect.js";
import "./components/pb-events.js";
import "./components/pb-console.js";
import "./components/pb-structure.js";
import "./components/pb-incidents.js";
import "./components/pb-settings.js";
import "./components/pb-devices.js";
import "./components/pb-audit.js";
import "./components/pb-signed-out.js";
import "./components/pb-conflict.js";

const SCREEN_IDS = {
  loading: "screen-loading",
  connect: "screen-connect",
  events: "screen-events",
  console: "screen-console",
  structure: "screen-structure",
  incidents: "screen-incidents",
  settings: "screen-settings",
  devices: "screen-devices",
  audit: "screen-audit",
  signedout: "screen-signedout",
};

function showScreen(m, p) {
  const screen = screenFor(m);
  if (p && screenFor(p) === screen && document.body.dataset.screen === screen) return;
  document.body.dataset.screen = screen;
  for (const [s, id] of Object.entries(SCREEN_IDS)) {
    const el = document.getElementById(id);
    if (el) el.hidden = s !== screen;
  }
  if (screen !== "console") document.title = "Pitboss";
}

function applyTheme(m) {
  const theme = m.app && m.app.settings && m.app.settings.theme === "light" ? "light" : "dark";
  if (document.documentElement.dataset.theme !== theme) document.documentElement.dataset.theme = theme;
}

store.subscribe((m, p) => {
  showScreen(m, p);
  if (!p || m.app !== p.app) applyTheme(m);
});
showScreen(store.get(), null);

async function boot() {
  if (!hasTauri) {
    document.getElementById("loading-text").textContent = "This page runs inside the Pitboss app.";
    return;
  }
  await Promise.all([
    listen(EVENTS.APP, (app) => takeApp(app)),
    listen(EVENTS.STATE, (state) => store.dispatch({ type: "state", state })),
    listen(EVENTS.STATUS, (status) => store.dispatch({ type: "status", status })),
    listen(EVENTS.CLOCK, (view) => store.dispatch({ type: "clock", view })),
    listen(EVENTS.NOTICE, (notice) => store.dispatch({ type: "notice", notice, nowMs: Date.now() })),
  ]);
  takeApp(await call("app_state"));
}

boot().catch((e) => {
  document.getElementById("loading-text").textContent = `Pitboss could not start: ${e && e.message ? e.message : e}`;
});
