// Conflicts: an edit based on an old lock_version is
// refused with the record as it is now. Nothing is merged: the person sees
// "Yours" beside "Theirs", with what differs marked, and chooses. Pure.

/** The fields of an incident a person edits or moves, in display order. */
export const CONFLICT_FIELDS = Object.freeze(["table", "kind", "severity", "status", "note"]);

const STATUS_RANK = { open: 0, acknowledged: 1, resolved: 2 };

const key = (id, version) => `${id}@${version}`;

/**
 * Remembers each incident as it was at each version, so that a conflict can
 * show "yours" as your fields applied over the record you based them on.
 * Returns a new { map, order } keeping at most `limit` versions.
 */
export function rememberIncidents(history, incidents, limit = 1000) {
  const h = history && history.map ? history : { map: {}, order: [] };
  let map = h.map;
  let order = h.order;
  let copied = false;
  for (const i of incidents || []) {
    if (!i || i.id == null) continue;
    const k = key(i.id, i.lock_version);
    if (Object.prototype.hasOwnProperty.call(map, k)) continue;
    if (!copied) {
      map = { ...map };
      order = order.slice();
      copied = true;
    }
    map[k] = i;
    order.push(k);
  }
  if (!copied) return h;
  while (order.length > limit) delete map[order.shift()];
  return { map, order };
}

/** The incident `id` as it was at `version`, if remembered. */
export function recall(history, id, version) {
  return (history && history.map && history.map[key(id, version)]) || null;
}

/** The fields an incident.update op sets (without its addressing). */
export function opFields(op) {
  const out = {};
  for (const f of CONFLICT_FIELDS) {
    if (op && op[f] !== undefined && op[f] !== null) out[f] = op[f];
  }
  return out;
}

/** `record` with the fields of `op` applied over it. */
export function applyUpdate(record, op) {
  return { ...(record || {}), ...opFields(op) };
}

/**
 * The conflict view's model for a rejected incident.update.
 * notice: { opId, op, current, message }; base: the record the op was based
 * on (from rememberIncidents), or null when it is no longer known (then
 * "yours" is your fields over theirs, which shows exactly what you asked for).
 */
export function buildIncidentConflict(notice, base) {
  const op = notice.op || {};
  const theirs = notice.current || {};
  const start = base || theirs;
  const mine = applyUpdate(start, op);
  const yourFields = Object.keys(opFields(op));
  const changed = CONFLICT_FIELDS.filter((f) => !same(mine[f], theirs[f]));
  const theirChanges = base ? CONFLICT_FIELDS.filter((f) => !same(base[f], theirs[f])) : [];
  return {
    opId: notice.opId || null,
    incidentId: op.incident_id || theirs.id || null,
    message: notice.message || "",
    baseVersion: op.base_version ?? null,
    baseKnown: Boolean(base),
    op,
    mine,
    theirs,
    changed,
    yourFields,
    theirChanges,
  };
}

function same(a, b) {
  return (a ?? "") === (b ?? "");
}

/**
 * "Apply mine again": the same fields, based on theirs' lock_version.
 * A move back to open needs reopen: true. `problem` says why it would be
 * refused (status cannot go backwards except by a reopen); `noop` is true
 * when theirs already holds every field of yours.
 */
export function reapplyOp(conflict) {
  const fields = opFields(conflict.op);
  const theirs = conflict.theirs || {};
  const op = {
    type: "incident.update",
    incident_id: conflict.incidentId,
    base_version: theirs.lock_version,
    ...fields,
  };
  let problem = "";
  if (fields.status !== undefined) {
    if (fields.status === "open" && theirs.status !== "open") {
      op.reopen = true;
    } else if (
      fields.status !== "open" &&
      (STATUS_RANK[fields.status] ?? 0) < (STATUS_RANK[theirs.status] ?? 0)
    ) {
      problem = `It is ${theirs.status} now; it cannot go back to ${fields.status}. Reopen it instead.`;
    }
  }
  const noop = Object.keys(fields).every((f) => same(fields[f], theirs[f]));
  return { op, problem, noop };
}

const LEVEL_FIELDS = ["kind", "small_blind", "big_blind", "ante", "duration_ms", "note"];

/**
 * Step-by-step differences between two lists of levels, for the structure
 * conflict: [{ index, mine, theirs, fields }] where fields are the ones
 * that differ (a step present on one side only lists every field).
 */
export function diffLevels(mine, theirs) {
  const a = mine || [];
  const b = theirs || [];
  const out = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const m = a[i] || null;
    const t = b[i] || null;
    const fields = LEVEL_FIELDS.filter((f) => {
      if (!m || !t) return true;
      if (m.kind === "break" && t.kind === "break" && ["small_blind", "big_blind", "ante"].includes(f)) return false;
      return !same(m[f], t[f]);
    });
    if (fields.length) out.push({ index: i, mine: m, theirs: t, fields });
  }
  return out;
}
