// The console: the big clock as the shell computes it (the clock event, four
// times a second), the coordinator's clock controls, the dealers' buttons
// and the figures. It runs no timer of its own: a hidden webview's timers
// are throttled, and the engine's frames are the clock.

import { store, submit, call, reportError } from "../app.js";
import { screenFor, roleOf, pendingSummary } from "../lib/store.js";
import { clockDisplay, currentLevelIndex } from "../lib/clockview.js";
import { permission, controlsFor } from "../lib/permissions.js";
import { shortcutFor, opForShortcut } from "../lib/keys.js";
import { h, setText, setAllowed } from "./dom.js";

const ALERT_MS = 4000;

function tile(label, id, extra) {
  return h("div", { class: `tile ${extra || ""}` }, h("div", { class: "label", text: label }), h("div", { class: "value", id }));
}

class PbConsole extends HTMLElement {
  connectedCallback() {
    if (this.built) return;
    this.built = true;
    this.classList.add("screen", "console");
    const $ = (tag, props, ...c) => h(tag, props, ...c);

    this.t = {
      title: $("h1", { id: "level-title" }),
      state: $("span", { id: "clock-status", class: "state-word" }),
      time: $("div", { id: "time", class: "time", role: "timer", "aria-live": "off" }),
      blinds: $("div", { id: "blinds", class: "blinds" }),
      note: $("div", { id: "note", class: "note" }),
      next: $("span", { id: "next" }),
      breakLabel: $("span", { id: "break-label", class: "label" }),
      breakIn: $("span", { id: "break-in" }),
    };
    this.panel = $(
      "section",
      { class: "clock-panel", "aria-label": "Clock", dataset: { state: "waiting" } },
      $("div", { class: "title-row" }, this.t.title, this.t.state),
      this.t.time,
      this.t.blinds,
      this.t.note,
      $("div", { class: "upcoming" },
        $("div", {}, $("span", { class: "label", text: "Next" }), this.t.next),
        $("div", {}, this.t.breakLabel, this.t.breakIn)),
    );

    const btn = (id, text, op, cls, hint) =>
      $("button", { type: "button", id, class: cls || "", text, dataset: hint ? { hint } : {}, title: hint || null, onclick: () => this.send(op()) });
    this.b = {
      startPause: btn("btn-start-pause", "Start", () => ({ type: this.running ? "clock.pause" : "clock.start" }), "btn-primary wide", "Start or pause the clock (Space)"),
      minus: btn("btn-minus", "−1 min", () => ({ type: "clock.adjust", delta_ms: -60_000 }), "", "Take one minute off this level (−)"),
      plus: btn("btn-plus", "+1 min", () => ({ type: "clock.adjust", delta_ms: 60_000 }), "", "Add one minute to this level (+)"),
      prev: btn("btn-prev-level", "Previous level", () => this.levelOp(-1), "", "Go back to the start of the previous step"),
      next: btn("btn-next-level", "Next level", () => this.levelOp(+1), "", "Jump to the start of the next step"),
      bust: btn("btn-bust", "Bust-out", () => ({ type: "stats.bust", count: 1 }), "btn-bust wide", "A player is out"),
      entry: btn("btn-entry", "Entry", () => ({ type: "stats.entry", count: 1 }), "", "A new entry (or re-entry)"),
      rebuy: btn("btn-rebuy", "Rebuy", () => ({ type: "stats.rebuy", count: 1 })),
      addon: btn("btn-addon", "Add-on", () => ({ type: "stats.addon", count: 1 })),
      display: $("button", { type: "button", id: "btn-open-display", class: "btn-quiet", text: "Open wall display", onclick: () => this.openDisplay() }),
    };
    this.b.startPause.setAttribute("aria-keyshortcuts", "Space");
    this.b.minus.setAttribute("aria-keyshortcuts", "-");
    this.b.plus.setAttribute("aria-keyshortcuts", "+");
    this.why = $("p", { id: "clock-why", class: "why" });
    this.pending = $("p", { id: "console-pending", class: "pending-note" });
    this.clockControls = $(
      "div",
      { class: "controls clock-controls", role: "group", "aria-label": "Clock controls" },
      this.b.startPause,
      $("div", { class: "pair" }, this.b.minus, this.b.plus),
      $("div", { class: "pair" }, this.b.prev, this.b.next),
      this.why,
      $("p", { class: "hint shortcuts", text: "Keys: Space start/pause · + / − one minute" }),
    );
    this.dealerControls = $(
      "div",
      { class: "controls dealer-controls", role: "group", "aria-label": "Report from the table" },
      this.b.bust,
      $("div", { class: "pair" }, this.b.entry, this.b.rebuy, this.b.addon),
      this.pending,
    );
    this.figures = $(
      "section",
      { class: "figures", "aria-label": "Tournament figures" },
      tile("Players", "players", "main"),
      tile("Entries", "entries"),
      tile("Avg. stack", "avg"),
      tile("Prize pool", "pool"),
      tile("Rebuys", "rebuys"),
      tile("Add-ons", "addons"),
    );
    this.append(this.panel, $("aside", { class: "side" }, this.clockControls, this.dealerControls, this.b.display), this.figures);

    this.running = false;
    this.handled = false;
    this.onKeyDown = (e) => this.key(e);
    this.onKeyUp = (e) => {
      if (this.handled && (e.key === " " || e.key === "Spacebar")) e.preventDefault();
      this.handled = false;
    };
    document.addEventListener("keydown", this.onKeyDown);
    document.addEventListener("keyup", this.onKeyUp);
    store.subscribe((m, p) => this.render(m, p));
    this.render(store.get(), null);
  }

  disconnectedCallback() {
    document.removeEventListener("keydown", this.onKeyDown);
    document.removeEventListener("keyup", this.onKeyUp);
    this.built = false;
  }

  levelOp(by) {
    const m = store.get();
    const levels = m.event && m.event.structure ? m.event.structure.levels : [];
    const i = currentLevelIndex(m.clock, levels);
    if (i == null) return null;
    const to = i + by;
    if (to < 0 || to >= levels.length) return null;
    return { type: "clock.set_level", level_index: to };
  }

  async send(op) {
    if (!op) return;
    await submit(op);
  }

  async openDisplay() {
    try {
      await call("open_display");
    } catch (e) {
      reportError("Could not open the wall display", e);
    }
  }

  key(e) {
    const m = store.get();
    if (screenFor(m) !== "console" || !m.clock) return;
    if (document.querySelector(".overlay:not([hidden])")) return;
    const action = shortcutFor(e);
    if (!action) return;
    const op = opForShortcut(action, Boolean(m.clock.running));
    if (!this.perm(m, op.type).allowed) return;
    e.preventDefault();
    this.handled = true;
    this.send(op);
  }

  perm(m, type) {
    return permission(roleOf(m), type, { mode: m.app && m.app.mode, status: m.status });
  }

  render(m, p) {
    const d = clockDisplay(m.clock);
    this.running = Boolean(m.clock && m.clock.running);
    this.panel.dataset.state = d.state;
    this.panel.dataset.break = String(d.isBreak);
    setText(this.t.title, d.title);
    setText(this.t.state, d.stateWord);
    setText(this.t.time, d.time);
    this.t.time.dataset.long = String(d.time.length > 5);
    setText(this.t.blinds, d.blinds);
    setText(this.t.note, d.note);
    setText(this.t.next, d.next);
    setText(this.t.breakLabel, d.breakLabel);
    setText(this.t.breakIn, d.breakIn);
    for (const k of ["players", "entries", "avg", "pool", "rebuys", "addons"]) setText(this.querySelector(`#${k}`), d[k]);
    if (screenFor(m) === "console" && m.clock) document.title = d.documentTitle;

    // Alert flash: a level change is also seen, not only heard.
    if (m.alert && (!p || m.alert !== p.alert)) {
      this.panel.classList.add("alerting");
      clearTimeout(this.alertTimer);
      this.alertTimer = setTimeout(() => this.panel.classList.remove("alerting"), ALERT_MS);
    }

    if (p && m.clock === p.clock && m.app === p.app && m.status === p.status && m.event === p.event) return;
    // A wall screen carries no controls at all, only the clock and figures.
    const shows = controlsFor(roleOf(m));
    this.clockControls.hidden = !shows.clockControls;
    this.dealerControls.hidden = !shows.tableControls;
    this.dataset.controls = String(shows.clockControls || shows.tableControls);
    setText(this.b.startPause, this.running ? "Pause" : "Start");
    this.b.startPause.dataset.running = String(this.running);
    const clockPerm = this.perm(m, "clock.start");
    const noClock = !m.clock;
    for (const b of [this.b.startPause, this.b.minus, this.b.plus]) {
      setAllowed(b, clockPerm.allowed && !noClock, clockPerm.allowed ? "Waiting for the clock" : clockPerm.reason);
    }
    const levels = m.event && m.event.structure ? m.event.structure.levels : [];
    const i = currentLevelIndex(m.clock, levels);
    const canLevel = clockPerm.allowed && i != null;
    setAllowed(this.b.prev, canLevel && i > 0, clockPerm.allowed ? (i === 0 ? "This is the first step" : "The current step is not known yet") : clockPerm.reason);
    setAllowed(this.b.next, canLevel && i < levels.length - 1, clockPerm.allowed ? (i === levels.length - 1 ? "This is the last step" : "The current step is not known yet") : clockPerm.reason);
    setText(this.why, clockPerm.allowed ? "" : clockPerm.reason);
    this.why.hidden = clockPerm.allowed;
    this.clockControls.dataset.allowed = String(clockPerm.allowed);
    this.querySelector(".shortcuts").hidden = !clockPerm.allowed;

    const statsPerm = this.perm(m, "stats.bust");
    const noEvent = !m.event && !m.clock;
    for (const b of [this.b.bust, this.b.entry, this.b.rebuy, this.b.addon]) {
      setAllowed(b, statsPerm.allowed && !noEvent, statsPerm.allowed ? "Waiting for the event" : statsPerm.reason);
    }
    const stats = (m.event && m.event.pending) || [];
    const statOps = stats.filter((x) => x && x.op && String(x.op.type).startsWith("stats."));
    const summary = pendingSummary(statOps);
    setText(this.pending, summary ? `Pending: ${summary}` : "");
    this.pending.hidden = !summary;
    const left = m.clock && m.clock.stats ? m.clock.stats.players_remaining : null;
    if (statsPerm.allowed && left === 0) setAllowed(this.b.bust, false, "No players remain");
  }
}

customElements.define("pb-console", PbConsole);
