// The UI's one model and the one function that changes it. Everything the
// shell pushes (app, state, status, clock, notice) and everything a person
// does to the view (navigate, dismiss) is an action reduced here; components
// only render the model. Pure, apart from the tiny Store wrapper at the end
// which holds the current model and tells subscribers (no DOM, no Tauri).

import { rememberIncidents, recall, buildIncidentConflict } from "./conflict.js";
import { sleptThroughText } from "./status.js";
import { screensFor } from "./permissions.js";

export const SCREENS = Object.freeze(["connect", "events", "console", "structure", "incidents", "devices", "audit", "settings"]);

export const MAX_BANNERS = 5;

export function initialModel() {
  return {
    app: null,
    event: null,
    clock: null,
    status: null,
    screen: "console",
    banners: [],
    conflicts: [],
    structureConflict: null,
    history: { map: {}, order: [] },
    alert: null,
    nextId: 1,
  };
}

const OP_WORDS = {
  "clock.start": "Start the clock",
  "clock.pause": "Pause the clock",
  "clock.set_level": "Change the level",
  "stats.bust": "Bust-out",
  "stats.entry": "Entry",
  "stats.rebuy": "Rebuy",
  "stats.addon": "Add-on",
  "incident.create": "New incident",
  "incident.update": "Incident change",
  "structure.update": "Structure change",
};

/** A short name for an op, for messages: "Bust-out", "+1 min". */
export function opLabel(op) {
  if (!op || !op.type) return "Change";
  if (op.type === "clock.adjust") {
    const min = Math.round((op.delta_ms || 0) / 60_000);
    const sign = (op.delta_ms || 0) < 0 ? "−" : "+";
    return min !== 0 ? `${sign}${Math.abs(min)} min` : "Clock adjustment";
  }
  if ((op.count || 1) > 1 && op.type.startsWith("stats.")) return `${OP_WORDS[op.type]} ×${op.count}`;
  return OP_WORDS[op.type] || op.type;
}

/** "Not applied — Bust-out: only 3 players remain; …". */
export function rejectionText(notice) {
  const what = opLabel(notice.op);
  const why = notice.message || notice.error || "refused by the server";
  return `Not applied — ${what}: ${why}`;
}

/** A short summary of pending ops for the console: "1 bust-out, 2 incident changes". */
export function pendingSummary(pending) {
  const counts = new Map();
  for (const p of pending || []) {
    const label = opLabel(p && p.op).replace(/ ×\d+$/, "");
    counts.set(label, (counts.get(label) || 0) + 1);
  }
  return [...counts.entries()].map(([label, n]) => (n > 1 ? `${label} ×${n}` : label)).join(", ");
}

function addBanner(m, banner) {
  const id = m.nextId;
  const banners = [...m.banners, { id, kind: "info", ...banner }].slice(-MAX_BANNERS);
  return { ...m, banners, nextId: id + 1 };
}

function reduceNotice(m, n, nowMs) {
  if (!n || typeof n !== "object") return m;
  switch (n.kind) {
    case "banner":
      return addBanner(m, { kind: "info", message: String(n.message ?? "") });
    case "slept_through":
      return addBanner(m, { kind: "info", message: sleptThroughText(n) });
    case "alert":
      return { ...m, alert: { sound: n.sound, title: n.title, atMs: nowMs } };
    case "throttled": {
      // One line however many ops wait: the host limits this device, and
      // what waits is sent again by itself (never dropped, never refused).
      const s = Math.max(1, Math.ceil((Number(n.retryAfterMs) || 0) / 1000));
      const rest = m.banners.filter((b) => b.tag !== "throttled");
      return addBanner({ ...m, banners: rest }, {
        kind: "warn",
        tag: "throttled",
        message: `The host is limiting changes from this device — waiting changes go again in ${s} s, nothing is lost.`,
      });
    }
    case "rejected": {
      const op = n.op || {};
      if (n.error === "conflict" && op.type === "incident.update" && n.current) {
        const base = recall(m.history, op.incident_id, op.base_version);
        const c = buildIncidentConflict(n, base);
        // One conflict per incident: a newer one replaces an older one.
        const conflicts = [...m.conflicts.filter((x) => x.incidentId !== c.incidentId), c];
        return { ...m, conflicts };
      }
      if (n.error === "conflict" && op.type === "structure.update") {
        const sc = {
          message: "Someone else updated this structure — review and try again",
          detail: n.message || "",
          current: n.current || null,
          op,
        };
        const withSc = { ...m, structureConflict: sc };
        if (m.screen === "structure") return withSc;
        return addBanner(withSc, { kind: "warn", message: sc.message, action: { label: "Review", screen: "structure" } });
      }
      return addBanner(m, { kind: "error", message: rejectionText(n) });
    }
    default:
      return m;
  }
}

/**
 * The model after one action. Actions:
 * {type: "app", app} · {type: "state", state} · {type: "status", status} ·
 * {type: "clock", view} · {type: "notice", notice, nowMs} ·
 * {type: "navigate", screen} · {type: "dismiss-banner", id} ·
 * {type: "error", message} (a local failure, shown as a banner) ·
 * {type: "close-conflict", incidentId} · {type: "clear-structure-conflict"}
 */
export function reduce(m, a) {
  switch (a && a.type) {
    case "app": {
      const app = a.app || null;
      const prevId = m.app ? m.app.eventId : undefined;
      const nextId = app ? app.eventId : null;
      if (m.app && prevId !== nextId) {
        // Another event (or none): nothing of the old one may linger.
        return {
          ...m,
          app,
          event: null,
          clock: null,
          status: null,
          conflicts: [],
          structureConflict: null,
          alert: null,
          screen: nextId || !app || app.mode === "none" ? "console" : m.screen === "settings" ? "settings" : "events",
        };
      }
      return { ...m, app };
    }
    case "state": {
      const s = a.state || null;
      if (s && m.app && m.app.eventId && s.eventId && s.eventId !== m.app.eventId) return m;
      return { ...m, event: s, history: s ? rememberIncidents(m.history, s.incidents) : m.history };
    }
    case "clock": {
      const v = a.view || null;
      if (v && m.app && m.app.eventId && v.eventId && v.eventId !== m.app.eventId) return m;
      return { ...m, clock: v };
    }
    case "status":
      return { ...m, status: a.status || null };
    case "notice":
      return reduceNotice(m, a.notice, a.nowMs ?? 0);
    case "navigate":
      return SCREENS.includes(a.screen) ? { ...m, screen: a.screen } : m;
    case "dismiss-banner":
      return { ...m, banners: m.banners.filter((b) => b.id !== a.id) };
    case "error":
      return addBanner(m, { kind: "error", message: String(a.message ?? "") });
    case "close-conflict":
      return { ...m, conflicts: m.conflicts.filter((c) => c.incidentId !== a.incidentId) };
    case "clear-structure-conflict":
      return { ...m, structureConflict: null, banners: m.banners.filter((b) => !(b.action && b.action.screen === "structure")) };
    default:
      return m;
  }
}

/**
 * The screen to show: the connect screen until a venue is joined or hosted,
 * the event list until an event is open, then whatever the person chose.
 * "loading" before the first AppState arrives.
 */
export function screenFor(m) {
  if (!m.app) return "loading";
  if (m.app.mode === "none") return m.screen === "settings" ? "settings" : "connect";
  // Revoked or a spent pairing code: nothing else works until a new join.
  if (m.app.signedOut) return "signedout";
  if (!m.app.eventId) return m.screen === "settings" ? "settings" : "events";
  if (m.screen === "connect") return "console";
  // A screen this role does not have (a dealer never sees Devices).
  return screensFor(roleOf(m)).includes(m.screen) ? m.screen : "console";
}

/** The role to check buttons against: the app's, else the followed event's. */
export function roleOf(m) {
  return (m.app && m.app.role) || (m.event && m.event.role) || null;
}

/** Holds the model; dispatch reduces and tells every subscriber. */
export class Store {
  constructor(model = initialModel()) {
    this.model = model;
    this.listeners = new Set();
  }

  get() {
    return this.model;
  }

  dispatch(action) {
    const prev = this.model;
    const next = reduce(prev, action);
    if (next === prev) return prev;
    this.model = next;
    for (const l of [...this.listeners]) l(next, prev);
    return next;
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
