// The status bar's words, from the pushed Status (and the AppState when no
// event is followed yet). Pure: the caller passes "now" and the time zone.

import { formatTimeOfDay } from "../format.js";

/** Whole seconds from now until `atMs`, never negative. */
export function secondsUntil(atMs, nowMs) {
  if (!Number.isFinite(atMs) || !Number.isFinite(nowMs)) return 0;
  return Math.max(0, Math.ceil((atMs - nowMs) / 1000));
}

/**
 * live | degraded | connecting | reconnecting | offline | none (no venue) |
 * idle (a venue but no event followed, so no connection to report).
 */
export function statusKind(status, app) {
  if (app && app.signedOut) return "signed_out";
  if (status && ["live", "degraded", "connecting", "reconnecting", "offline", "signed_out", "key_changed"].includes(status.state)) {
    return status.state;
  }
  if (!app || app.mode === "none") return "none";
  if (!app.eventId) return "idle";
  return "connecting";
}

/**
 * "Live", "Connecting…", "Reconnecting in 3 s", "Offline — last synced 21:14:03".
 * `offsetMinutes` as for formatTimeOfDay (defaults to this machine's zone).
 */
export function statusText(status, app, nowMs, offsetMinutes) {
  const kind = statusKind(status, app);
  switch (kind) {
    case "live":
      return "Live";
    case "signed_out":
      // The screen says why; the bar says what to do.
      return "Signed out — join again with a new code";
    case "key_changed":
      // Something answers at the host's address without the host's key:
      // an impostor on the Wi-Fi, or a reinstalled host. Nothing is sent
      // to it; only a person re-pairs (Leave, then join with a new code).
      return "Not the host you joined — its key changed. Nothing was sent to it; check with the coordinator";
    case "degraded":
      // The WebSocket is blocked on this network; HTTP works.
      return "Degraded — updates every few seconds (WebSocket blocked)";
    case "connecting":
      return "Connecting…";
    case "reconnecting": {
      const s = secondsUntil(status.nextAttemptAtMs, nowMs);
      return s > 0 ? `Reconnecting in ${s} s` : "Reconnecting…";
    }
    case "offline":
      // A joined device lost its host: say since when, in those words.
      if (app && app.mode === "join" && Number.isFinite(status.sinceMs)) {
        const synced = status.lastSyncedMs ? ` — last synced ${formatTimeOfDay(status.lastSyncedMs, offsetMinutes)}` : "";
        return `Host unreachable since ${formatTimeOfDay(status.sinceMs, offsetMinutes)}${synced}`;
      }
      return status.lastSyncedMs
        ? `Offline — last synced ${formatTimeOfDay(status.lastSyncedMs, offsetMinutes)}`
        : "Offline — not synced yet";
    case "idle":
      return app.mode === "host" ? "Hosting — no event open" : "Joined — no event open";
    default:
      return "Not connected";
  }
}

/** The small line beside an offline status: when the next try is. */
export function retryText(status, nowMs) {
  if (!status || status.state !== "offline" || !Number.isFinite(status.nextAttemptAtMs)) return "";
  const s = secondsUntil(status.nextAttemptAtMs, nowMs);
  return s > 0 ? `next try in ${s} s` : "trying now";
}

/**
 * The banner after a wake or a lost connection: "Level 7 started at 21:14
 * while this device was asleep" (or "offline"). No sound was played for it.
 * `n`: {levelNumber, isBreak, startedAtMs, away: "asleep"|"offline"}.
 */
export function sleptThroughText(n, offsetMinutes) {
  const what = n.isBreak ? "A break" : `Level ${n.levelNumber}`;
  const away = n.away === "offline" ? "offline" : "asleep";
  if (!Number.isFinite(n.startedAtMs)) return `${what} began while this device was ${away}`;
  return `${what} started at ${formatTimeOfDay(n.startedAtMs, offsetMinutes).slice(0, 5)} while this device was ${away}`;
}

/** How many of this device's changes are not yet confirmed by the server. */
export function pendingCount(event, status) {
  if (event && Array.isArray(event.pending)) return event.pending.length;
  if (status && Number.isFinite(status.pending)) return status.pending;
  return 0;
}

/** "Hosting on 192.168.1.20:7878 · Coordinator code K7QF · Dealer code 3MPX". */
export function hostText(app) {
  if (!app || app.mode !== "host" || !app.host) return "";
  const h = app.host;
  const addr = (h.addresses && h.addresses[0]) || `port ${h.port}`;
  const display = h.displayCode ? ` · Display code ${h.displayCode}` : "";
  // The key right after the address: a narrow window cuts the end of the
  // line, and the key is what a joining device compares.
  const key = h.keyFingerprint ? ` · Key ${h.keyFingerprint}` : "";
  return `Hosting on ${addr}${key} · Coordinator code ${h.coordinatorCode} · Dealer code ${h.dealerCode}${display}`;
}

/** A joined device's pinned host key, to compare with the host's header. */
export function joinedKeyText(app) {
  if (!app || app.mode !== "join" || !app.serverKey) return "";
  return `Host key ${app.serverKey} — the host's header shows the same`;
}

/** "Sound unavailable: no audio device" or "" when sound works. */
export function soundText(app) {
  const s = app && app.sound;
  if (!s || s.available !== false) return "";
  return s.message ? `Sound unavailable: ${s.message}` : "Sound unavailable";
}
