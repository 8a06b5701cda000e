// The words and numbers of the coordinator's trust tools: pairing codes and
// their countdown, the device list, the revoke confirmation, and the audit
// trail's sentences. Pure: records in (the server's, snake_case), text out;
// the caller passes "now" (server time) and the time zone.

import { formatTimeOfDay } from "../format.js";

/** A pairing code is six digits, however it is typed ("123 456", "123-456"). */
export function pairingDigits(code) {
  const d = String(code ?? "").replace(/[\s-]/g, "");
  return /^[0-9]{6}$/.test(d) ? d : null;
}

export const isPairingCode = (code) => pairingDigits(code) !== null;

/** What the join form sends: a pairing code's six digits, a long code trimmed. */
export function normalizeJoinCode(code) {
  return pairingDigits(code) ?? String(code ?? "").trim();
}

/** "123456" → "123 456": two groups read aloud across a room. */
export function groupedCode(code) {
  const d = pairingDigits(code);
  return d ? `${d.slice(0, 3)} ${d.slice(3)}` : String(code ?? "");
}

export const ROLES = Object.freeze(["dealer", "coordinator", "display"]);

const ROLE_WORDS = { coordinator: "Coordinator", dealer: "Dealer", display: "Display" };
const ROLE_DUTIES = {
  dealer: "reports bust-outs, entries and incidents",
  coordinator: "runs the clock, edits the structure, manages devices",
  display: "shows the clock and the board, changes nothing",
};

export const roleWord = (r) => ROLE_WORDS[r] || "Unknown role";
export const roleDuty = (r) => ROLE_DUTIES[r] || "";

/**
 * The countdown to a pairing code's expiry, from server instants.
 * { seconds, text: "4:59", expired, urgent (under 30 s) }.
 */
export function countdown(expiresAtMs, serverNowMs) {
  if (!Number.isFinite(expiresAtMs) || !Number.isFinite(serverNowMs)) {
    return { seconds: 0, text: "0:00", expired: true, urgent: true };
  }
  const seconds = Math.max(0, Math.ceil((expiresAtMs - serverNowMs) / 1000));
  const text = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  return { seconds, text, expired: seconds === 0, urgent: seconds < 30 };
}

/** "expires in 4:59" / "expired". */
export function countdownText(expiresAtMs, serverNowMs) {
  const c = countdown(expiresAtMs, serverNowMs);
  return c.expired ? "expired — make a new one" : `expires in ${c.text}`;
}

/**
 * The server's "now" as this machine sees it: a reading `serverNowMs` taken
 * at local `localAtMs`, carried forward by the local clock since. Lets a
 * countdown tick locally without trusting the local clock's setting.
 */
export function serverNow(serverNowMs, localAtMs, localNowMs) {
  if (!Number.isFinite(serverNowMs) || !Number.isFinite(localAtMs)) return localNowMs;
  return serverNowMs + (localNowMs - localAtMs);
}

/** "just now", "45 s ago", "2 min ago", "3 h ago", "2 days ago", "never". */
export function agoText(ms, nowMs) {
  if (!Number.isFinite(ms) || ms <= 0) return "never";
  const s = Math.max(0, Math.floor((nowMs - ms) / 1000));
  if (s < 10) return "just now";
  if (s < 60) return `${s} s ago`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min ago`;
  const h = Math.floor(min / 60);
  if (h < 24) return `${h} h ago`;
  const d = Math.floor(h / 24);
  return d === 1 ? "1 day ago" : `${d} days ago`;
}

/** "Ana on laptop-7": who, as the floor names them. */
export function who(rec) {
  const name = String(rec?.name ?? "").trim() || "Someone";
  const device = String(rec?.device ?? "").trim();
  return device ? `${name} on ${device}` : name;
}

/**
 * One device as a row of the list: every cell as text, and whether this
 * screen may revoke it (not itself, not twice).
 */
export function deviceRow(d, nowMs, selfOperatorId, offsetMinutes) {
  const connections = Number(d.connections) || 0;
  const self = Boolean(selfOperatorId) && d.operator_id === selfOperatorId;
  let state;
  if (d.revoked) {
    state = Number.isFinite(d.revoked_at_ms) ? `Revoked ${formatTimeOfDay(d.revoked_at_ms, offsetMinutes).slice(0, 5)}` : "Revoked";
  } else {
    state = connections > 0 ? "Connected" : "Not connected";
  }
  return {
    id: d.operator_id,
    name: String(d.name ?? "") || "—",
    device: String(d.device ?? "") || "—",
    role: roleWord(d.role),
    address: String(d.address ?? "") || "—",
    via: d.via === "pairing" ? "pairing code" : "join code",
    lastSeen: agoText(d.last_seen_ms, nowMs),
    connections: d.revoked ? "—" : connections === 0 ? "none" : `${connections} open`,
    state,
    // One cell for a narrow list: "Connected · 2 open", "Not connected", "Revoked 21:14".
    connection: !d.revoked && connections > 0 ? `${state} · ${connections} open` : state,
    revoked: Boolean(d.revoked),
    self,
    canRevoke: !d.revoked && !self,
  };
}

/**
 * The device list in the order a coordinator scans it: connected first,
 * then by last seen (latest first); revoked devices last.
 */
export function sortDevices(devices) {
  return [...(devices || [])].sort((a, b) => {
    if (Boolean(a.revoked) !== Boolean(b.revoked)) return a.revoked ? 1 : -1;
    const ca = (Number(a.connections) || 0) > 0;
    const cb = (Number(b.connections) || 0) > 0;
    if (ca !== cb) return ca ? -1 : 1;
    return (b.last_seen_ms || 0) - (a.last_seen_ms || 0);
  });
}

/** The confirm step's words, naming the device so the wrong one is not cut off. */
export function revokeQuestion(d) {
  return `Revoke ${who(d)} (${roleWord(d.role)}, ${d.address || "unknown address"})?`;
}

/**
 * What the coordinator reads after a revoke. A device that joined with a
 * long code knew it, so the server replaced that code: say the new one, since
 * every device that joins that role from now on needs it.
 */
export function revokedMessage(d, rotated) {
  const base = `Revoked ${who(d)}.`;
  if (!rotated || !rotated.code) return base;
  return `${base} It had joined with the ${roleWord(rotated.role).toLowerCase()} code, so that code is now ${rotated.code}; devices already joined keep working.`;
}

export const REVOKE_CONSEQUENCE =
  "Its connections close at once and its token stops working. It can only come back by joining again with a new code.";

/**
 * One audit entry as the floor says it:
 * "Ana on laptop-7 added 5:00 to level 2 (12:31 → 17:31 left) · 21:14:03".
 */
export function auditSentence(e, offsetMinutes) {
  const summary = String(e?.summary ?? "").trim() || "made a change";
  return `${who(e)} ${summary} · ${formatTimeOfDay(e?.at_ms, offsetMinutes)}`;
}

/** Entries newest first (the server sends them so; kept so if merged). */
export function newestFirst(entries) {
  return [...(entries || [])].sort((a, b) => (b.seq || 0) - (a.seq || 0));
}

/** The incident filter's choices: [value, label], the whole event first. */
export function incidentChoices(incidents) {
  const list = [...(incidents || [])].sort((a, b) => (a.created_at_ms || 0) - (b.created_at_ms || 0));
  return [["", "All changes"], ...list.map((i) => [i.id, `Table ${i.table} · ${i.kind}`])];
}

/** "Saved 12 changes to /home/ana/Downloads/pitboss-audit-ev-1-20261202-2114.csv". */
export function exportText(result) {
  if (!result || !result.path) return "";
  const n = Number(result.rows) || 0;
  return `Saved ${n} ${n === 1 ? "change" : "changes"} to ${result.path}`;
}
