// The incident board's logic: the form's checks, the ops it sends, which
// transitions a card offers, grouping, filtering and the pending overlay.
// Pure: records in, values and ops out. Records are the server's incidents
// verbatim (snake_case).

export const KINDS = Object.freeze(["Misdeal", "Ruling", "Chip count", "Seat change", "Other"]);
export const SEVERITIES = Object.freeze(["low", "medium", "high"]);
export const STATUSES = Object.freeze(["open", "acknowledged", "resolved"]);
export const FIELDS = Object.freeze(["table", "kind", "severity", "note"]);

/** Limits of pitboss_core::limits, checked here first so a mistake is said at once. */
export const LIMITS = Object.freeze({ table: 40, kind: 60, note: 2000 });

const STATUS_WORDS = { open: "Open", acknowledged: "Acknowledged", resolved: "Resolved" };
const SEVERITY_WORDS = { low: "Low", medium: "Medium", high: "High" };

export const statusWord = (s) => STATUS_WORDS[s] || String(s);
export const severityWord = (s) => SEVERITY_WORDS[s] || String(s);

const chars = (s) => Array.from(s).length;

/**
 * Checks the create or edit form. Returns { ok, errors: {field: message},
 * value } where value holds the trimmed table and kind (the note is kept
 * verbatim: it is the floor's own words).
 */
export function validateIncident(form) {
  const f = form || {};
  const value = {
    table: String(f.table ?? "").trim(),
    kind: String(f.kind ?? "").trim(),
    severity: String(f.severity ?? ""),
    note: String(f.note ?? ""),
  };
  const errors = {};
  if (!value.table) errors.table = "Enter the table (a number or a name).";
  else if (chars(value.table) > LIMITS.table) errors.table = `The table is at most ${LIMITS.table} characters.`;
  if (!value.kind) errors.kind = "Choose what happened.";
  else if (chars(value.kind) > LIMITS.kind) errors.kind = `The kind is at most ${LIMITS.kind} characters.`;
  if (!SEVERITIES.includes(value.severity)) errors.severity = "Choose low, medium or high.";
  if (chars(value.note) > LIMITS.note) {
    errors.note = `The note is at most ${LIMITS.note} characters (it has ${chars(value.note)}).`;
  }
  return { ok: Object.keys(errors).length === 0, errors, value };
}

/** The incident.create op for a valid form, or null with the errors. */
export function createOp(form) {
  const v = validateIncident(form);
  if (!v.ok) return { op: null, errors: v.errors };
  return {
    op: { type: "incident.create", table: v.value.table, kind: v.value.kind, severity: v.value.severity, note: v.value.note },
    errors: {},
  };
}

/**
 * The incident.update op for an edit of `incident`: only the fields that
 * changed, based on the card's lock_version. op is null when the form is
 * invalid (errors) or nothing changed (unchanged: true).
 */
export function editOp(incident, form) {
  const v = validateIncident(form);
  if (!v.ok) return { op: null, errors: v.errors, unchanged: false };
  const op = { type: "incident.update", incident_id: incident.id, base_version: incident.lock_version };
  let changed = 0;
  for (const f of FIELDS) {
    if (v.value[f] !== incident[f]) {
      op[f] = v.value[f];
      changed += 1;
    }
  }
  if (changed === 0) return { op: null, errors: {}, unchanged: true };
  return { op, errors: {}, unchanged: false };
}

/** The buttons a card offers, in order, for its status. */
export function actionsFor(incident) {
  switch (incident && incident.status) {
    case "open":
      return ["acknowledge", "resolve", "edit"];
    case "acknowledged":
      return ["resolve", "reopen", "edit"];
    case "resolved":
      return ["reopen", "edit"];
    default:
      return ["edit"];
  }
}

export const ACTION_WORDS = Object.freeze({
  acknowledge: "Acknowledge",
  resolve: "Resolve",
  reopen: "Reopen",
  edit: "Edit",
});

/** The op of a transition button, based on the card's lock_version. */
export function transitionOp(incident, action) {
  const base = { type: "incident.update", incident_id: incident.id, base_version: incident.lock_version };
  switch (action) {
    case "acknowledge":
      return { ...base, status: "acknowledged" };
    case "resolve":
      return { ...base, status: "resolved" };
    case "reopen":
      return { ...base, status: "open", reopen: true };
    default:
      return null;
  }
}

/** Compares table labels as people do: "2" before "10", then by name. */
export function compareTables(a, b) {
  return String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: "base" });
}

/** The tables that have incidents, each once, in table order. */
export function tablesPresent(incidents) {
  const seen = new Map();
  for (const i of incidents || []) {
    const t = String(i.table).trim();
    const key = t.toLowerCase();
    if (t && !seen.has(key)) seen.set(key, t);
  }
  return [...seen.values()].sort(compareTables);
}

/** The incidents of one table (exact, ignoring case and spaces); all when the filter is empty. */
export function filterByTable(incidents, filter) {
  const f = String(filter ?? "").trim().toLowerCase();
  const list = incidents || [];
  if (!f) return list.slice();
  return list.filter((i) => String(i.table).trim().toLowerCase() === f);
}

const SEVERITY_RANK = { high: 0, medium: 1, low: 2 };

/**
 * The three columns. Open and acknowledged: most severe first, then oldest
 * first (the longest wait at the top). Resolved: most recently resolved first.
 */
export function groupByStatus(incidents) {
  const out = { open: [], acknowledged: [], resolved: [] };
  for (const i of incidents || []) {
    (out[i.status] || out.open).push(i);
  }
  const waiting = (a, b) =>
    (SEVERITY_RANK[a.severity] ?? 3) - (SEVERITY_RANK[b.severity] ?? 3) ||
    a.created_at_ms - b.created_at_ms ||
    String(a.id).localeCompare(String(b.id));
  out.open.sort(waiting);
  out.acknowledged.sort(waiting);
  out.resolved.sort((a, b) => b.updated_at_ms - a.updated_at_ms || String(a.id).localeCompare(String(b.id)));
  return out;
}

/** Pending incident.update ops by incident id: the cards to tag "pending". */
export function pendingByIncident(pending) {
  const m = new Map();
  for (const p of pending || []) {
    const op = p && p.op;
    if (op && op.type === "incident.update" && op.incident_id) {
      if (!m.has(op.incident_id)) m.set(op.incident_id, []);
      m.get(op.incident_id).push(p);
    }
  }
  return m;
}

/** Pending incident.create ops: shown as cards waiting for the server. */
export function pendingCreates(pending) {
  return (pending || []).filter((p) => p && p.op && p.op.type === "incident.create");
}

/** "pending: acknowledge", "pending: edit"… for the tag on a card. */
export function describeUpdate(op) {
  if (!op) return "change";
  if (op.reopen) return "reopen";
  if (op.status === "acknowledged") return "acknowledge";
  if (op.status === "resolved") return "resolve";
  if (op.status === "open") return "reopen";
  return "edit";
}

export function pendingTag(ops) {
  if (!ops || ops.length === 0) return "";
  return `pending: ${ops.map((p) => describeUpdate(p.op)).join(", ")}`;
}

/** Open incidents count, for the nav badge. */
export function openCount(incidents) {
  return (incidents || []).filter((i) => i.status === "open").length;
}

/** "Table 12" for a number, the name itself otherwise ("Feature table"). */
export function tableLabel(table) {
  const t = String(table ?? "").trim();
  return /^\d+[a-z]?$/i.test(t) ? `Table ${t}` : t;
}
