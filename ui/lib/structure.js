// The structure editor's model: rows as the form holds them (strings), the
// edits (add, remove, move), the checks before sending, and the op. Pure.
// Levels are the server's shape: {kind: "level", small_blind, big_blind,
// ante, duration_ms, note} or {kind: "break", duration_ms, note}.

export const MIN_MINUTES = 1;
export const MAX_MINUTES = 240;
export const MAX_STEPS = 200;
export const MAX_NOTE = 200;
export const MAX_CHIPS = 1_000_000_000_000;

let nextKey = 1;
/** A key that stays with a row while it moves, so the form keeps focus. */
function newKey() {
  nextKey += 1;
  return `r${nextKey}`;
}

function minutesText(ms) {
  const m = Number(ms) / 60_000;
  if (!Number.isFinite(m)) return "";
  return String(Math.round(m * 100) / 100);
}

/** Server levels → editable rows. */
export function levelsToRows(levels) {
  return (levels || []).map((l) =>
    l.kind === "break"
      ? { key: newKey(), kind: "break", small: "", big: "", ante: "", minutes: minutesText(l.duration_ms), note: l.note || "" }
      : {
          key: newKey(),
          kind: "level",
          small: String(l.small_blind),
          big: String(l.big_blind),
          ante: String(l.ante ?? 0),
          minutes: minutesText(l.duration_ms),
          note: l.note || "",
        },
  );
}

/** "Level 3" for play levels (breaks not counted), "Break" for breaks. */
export function stepLabels(rows) {
  let n = 0;
  return (rows || []).map((r) => {
    if (r.kind === "break") return "Break";
    n += 1;
    return `Level ${n}`;
  });
}

/** Where a row's problem is named: "Level 3", or "Break after level 5". */
function stepNames(rows) {
  let n = 0;
  return rows.map((r) => {
    if (r.kind === "break") return n === 0 ? "Break before level 1" : `Break after level ${n}`;
    n += 1;
    return `Level ${n}`;
  });
}

/** A whole number of chips from a field, or NaN. Allows "1,000" and spaces. */
export function parseChips(text) {
  const t = String(text ?? "").replace(/[\s,]/g, "");
  if (!/^\d+$/.test(t)) return NaN;
  return Number(t);
}

/** Minutes from a field ("20", "1.5", "2,5"), or NaN. */
export function parseMinutes(text) {
  const t = String(text ?? "").trim().replace(",", ".");
  if (!/^\d+(\.\d+)?$/.test(t)) return NaN;
  return Number(t);
}

/**
 * Checks the rows and builds the levels. Returns { ok, levels, errors,
 * general } where errors are [{ index, field, message }] (field: small, big,
 * ante, minutes, note) and general lists problems of the whole structure.
 */
export function validateRows(rows) {
  const list = rows || [];
  const names = stepNames(list);
  const errors = [];
  const general = [];
  const levels = [];
  const err = (index, field, message) => errors.push({ index, field, message: `${names[index]}: ${message}` });
  list.forEach((r, i) => {
    const minutes = parseMinutes(r.minutes);
    if (!Number.isFinite(minutes)) err(i, "minutes", "enter the length in minutes.");
    else if (minutes < MIN_MINUTES || minutes > MAX_MINUTES) {
      err(i, "minutes", `the length must be between ${MIN_MINUTES} and ${MAX_MINUTES} minutes.`);
    }
    const note = String(r.note ?? "");
    if (Array.from(note).length > MAX_NOTE) err(i, "note", `the note is at most ${MAX_NOTE} characters.`);
    const duration_ms = Math.round(minutes * 60_000);
    if (r.kind === "break") {
      levels.push({ kind: "break", duration_ms, note });
      return;
    }
    const small = parseChips(r.small);
    const big = parseChips(r.big);
    const anteText = String(r.ante ?? "").trim();
    const ante = anteText === "" ? 0 : parseChips(anteText);
    if (!Number.isFinite(small) || small <= 0) err(i, "small", "the small blind must be a whole number above 0.");
    if (!Number.isFinite(big) || big <= 0) err(i, "big", "the big blind must be a whole number above 0.");
    else if (Number.isFinite(small) && small > 0 && big < small) {
      err(i, "big", `the big blind (${big}) must be at least the small blind (${small}).`);
    }
    if (!Number.isFinite(ante) || ante < 0) err(i, "ante", "the ante must be a whole number (0 for none).");
    for (const [field, v] of [["small", small], ["big", big], ["ante", ante]]) {
      if (Number.isFinite(v) && v > MAX_CHIPS) err(i, field, "amounts must be at most 1,000,000,000,000.");
    }
    levels.push({ kind: "level", small_blind: small, big_blind: big, ante, duration_ms, note });
  });
  if (!list.some((r) => r.kind !== "break")) general.push("The structure needs at least one level of play.");
  if (list.length > MAX_STEPS) general.push(`A structure has at most ${MAX_STEPS} levels and breaks.`);
  const ok = errors.length === 0 && general.length === 0;
  return { ok, levels: ok ? levels : null, errors, general };
}

/** The structure.update op, based on the version the draft was loaded from. */
export function structureOp(rows, baseVersion) {
  const v = validateRows(rows);
  if (!v.ok) return { op: null, validation: v };
  return { op: { type: "structure.update", base_version: baseVersion, levels: v.levels }, validation: v };
}

/** A sensible next level after the last one: its big blind becomes the small blind. */
export function suggestLevel(rows) {
  const plays = (rows || []).filter((r) => r.kind !== "break");
  const last = plays[plays.length - 1];
  if (!last) return { key: newKey(), kind: "level", small: "100", big: "200", ante: "0", minutes: "20", note: "" };
  const big = parseChips(last.big);
  const ante = parseChips(last.ante);
  const minutes = parseMinutes(last.minutes);
  const ok = Number.isFinite(big) && big > 0;
  return {
    key: newKey(),
    kind: "level",
    small: ok ? String(big) : "",
    big: ok ? String(big * 2) : "",
    ante: ok && Number.isFinite(ante) && ante > 0 ? String(big * 2) : "0",
    minutes: Number.isFinite(minutes) ? String(minutes) : "20",
    note: "",
  };
}

export function addLevel(rows) {
  return [...(rows || []), suggestLevel(rows)];
}

export function addBreak(rows, minutes = 15) {
  return [...(rows || []), { key: newKey(), kind: "break", small: "", big: "", ante: "", minutes: String(minutes), note: "" }];
}

export function removeRow(rows, index) {
  return (rows || []).filter((_, i) => i !== index);
}

/** Moves a row up (by -1) or down (by +1); out of range leaves the rows as they are. */
export function moveRow(rows, index, by) {
  const list = (rows || []).slice();
  const to = index + by;
  if (index < 0 || index >= list.length || to < 0 || to >= list.length) return list;
  const [r] = list.splice(index, 1);
  list.splice(to, 0, r);
  return list;
}

/** A row with one field set to a new value. */
export function setField(rows, index, field, value) {
  return (rows || []).map((r, i) => (i === index ? { ...r, [field]: value } : r));
}

/** True when the rows say something other than `levels` (the draft has edits). */
export function isDirty(rows, levels) {
  const v = validateRows(rows);
  if (!v.ok) return true;
  return JSON.stringify(v.levels.map(canon)) !== JSON.stringify((levels || []).map(canon));
}

function canon(l) {
  return l.kind === "break"
    ? { kind: "break", duration_ms: l.duration_ms, note: l.note || "" }
    : { kind: "level", small_blind: l.small_blind, big_blind: l.big_blind, ante: l.ante || 0, duration_ms: l.duration_ms, note: l.note || "" };
}

/** "Level 3" / "Break" names for server levels (as stepLabels for rows). */
export function levelLabels(levels) {
  return stepLabels((levels || []).map((l) => ({ kind: l.kind })));
}

/** One step in a line: "200 / 400 · ante 400 · 20 min" or "Break · 15 min · Color up". */
export function describeStep(level) {
  if (!level) return "(none)";
  const min = Math.round((level.duration_ms / 60_000) * 100) / 100;
  const note = level.note ? ` · ${level.note}` : "";
  if (level.kind === "break") return `Break · ${min} min${note}`;
  const ante = level.ante > 0 ? ` · ante ${level.ante}` : "";
  return `${level.small_blind} / ${level.big_blind}${ante} · ${min} min${note}`;
}
