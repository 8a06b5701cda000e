// The structure editor: levels and breaks as a table. Coordinators edit and
// save (structure.update based on the version the draft started from);
// dealers read. A save based on an old version is refused by the server and
// shown here, with what differs, to reload theirs or keep editing mine
// (never merged silently).

import { store, submit } from "../app.js";
import { roleOf } from "../lib/store.js";
import { permission } from "../lib/permissions.js";
import { currentLevelIndex } from "../lib/clockview.js";
import { diffLevels } from "../lib/conflict.js";
import {
  levelsToRows,
  stepLabels,
  validateRows,
  structureOp,
  addLevel,
  addBreak,
  removeRow,
  moveRow,
  setField,
  isDirty,
  levelLabels,
  describeStep,
} from "../lib/structure.js";
import { h, setText, setAttr, replaceChildren } from "./dom.js";

const COLS = [
  ["small", "Small blind"],
  ["big", "Big blind"],
  ["ante", "Ante"],
  ["minutes", "Minutes"],
  ["note", "Note"],
];

class PbStructure extends HTMLElement {
  connectedCallback() {
    if (this.built) return;
    this.built = true;
    this.classList.add("screen", "structure");
    this.rows = null;
    this.baseVersion = null;
    this.baseLevels = null;
    this.showValidation = false;
    this.editable = false;

    this.version = h("span", { id: "structure-version", class: "muted" });
    this.pendingTag = h("span", { id: "structure-pending", class: "tag tag-pending", hidden: true, text: "Saving — pending" });
    this.addLevelBtn = h("button", { type: "button", id: "structure-add-level", text: "Add level", onclick: () => this.change(addLevel(this.rows), "add") });
    this.addBreakBtn = h("button", { type: "button", id: "structure-add-break", text: "Add break", onclick: () => this.change(addBreak(this.rows), "add") });
    this.resetBtn = h("button", { type: "button", id: "structure-reset", class: "btn-quiet", text: "Discard changes", onclick: () => this.load(this.server()) });
    this.saveBtn = h("button", { type: "button", id: "structure-save", class: "btn-primary", text: "Save structure", onclick: () => this.save() });
    this.why = h("p", { id: "structure-why", class: "why" });
    this.stale = h("p", { id: "structure-stale", class: "warn-text", hidden: true });
    this.errors = h("ul", { id: "structure-errors", class: "form-errors", role: "alert" });
    this.conflictMsg = h("strong", { id: "structure-conflict-message" });
    this.conflictList = h("ul", { id: "structure-conflict-diff", class: "diff-list" });
    this.conflict = h(
      "div",
      { id: "structure-conflict", class: "conflict-box", role: "alert", hidden: true },
      h("p", {}, this.conflictMsg),
      this.conflictList,
      h("div", { class: "row" },
        h("button", { type: "button", id: "structure-reload", class: "btn-primary", text: "Reload theirs", onclick: () => this.reloadTheirs() }),
        h("button", { type: "button", id: "structure-keep-mine", text: "Keep mine and review", title: "Keep your draft; Save again replaces theirs", onclick: () => this.keepMine() })),
    );
    this.tbody = h("tbody", {});
    this.table = h(
      "table",
      { class: "structure-table", id: "structure-table" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col", text: "Step" }),
        ...COLS.map(([, l]) => h("th", { scope: "col", text: l })),
        h("th", { scope: "col", class: "actions-col" }, h("span", { class: "visually-hidden", text: "Actions" })))),
      this.tbody,
    );
    this.tools = h("div", { class: "toolbar" }, this.addLevelBtn, this.addBreakBtn, h("span", { class: "spacer" }), this.resetBtn, this.saveBtn);
    this.empty = h("p", { class: "muted", text: "Waiting for the event…" });
    this.append(
      h("div", { class: "panel-head" }, h("h2", { text: "Blind structure" }), this.version, this.pendingTag),
      this.why,
      this.conflict,
      this.stale,
      this.errors,
      this.empty,
      h("div", { class: "table-wrap" }, this.table),
      this.tools,
    );
    store.subscribe((m, p) => this.render(m, p));
    this.render(store.get(), null);
  }

  server() {
    const m = store.get();
    return m.event && m.event.structure ? m.event.structure : null;
  }

  load(s) {
    if (!s) return;
    this.rows = levelsToRows(s.levels);
    this.baseVersion = s.lock_version;
    this.baseLevels = s.levels;
    this.showValidation = false;
    this.errors.replaceChildren();
    this.renderRows();
    this.renderState(store.get());
  }

  change(rows, focus) {
    this.rows = rows;
    this.renderRows(focus);
    this.renderState(store.get());
  }


  render(m, p) {
    const s = m.event && m.event.structure;
    const roleChanged = !p || roleOf(p) !== roleOf(m);
    this.editable = permission(roleOf(m), "structure.update").allowed;
    if (!s) {
      this.empty.hidden = false;
      this.table.hidden = true;
      this.tools.hidden = true;
      this.rows = null;
      this.baseVersion = null;
      return;
    }
    this.empty.hidden = true;
    this.table.hidden = false;
    if (this.rows === null) {
      this.load(s);
    } else if (s.lock_version !== this.baseVersion) {
      if (!isDirty(this.rows, s.levels)) {
        // The server now holds exactly the draft (our save landed).
        this.baseVersion = s.lock_version;
        this.baseLevels = s.levels;
      } else if (!isDirty(this.rows, this.baseLevels)) {
        this.load(s); // untouched draft: follow the server
        return;
      }
    } else if (roleChanged) {
      this.renderRows();
    }
    if (!p || m.structureConflict !== p.structureConflict) this.renderConflict(m);
    if (!p || m.event !== p.event || m.clock !== p.clock || roleChanged) this.renderState(m);
  }

  renderState(m) {
    const s = m.event && m.event.structure;
    if (!s || !this.rows) return;
    const dirty = isDirty(this.rows, this.baseLevels);
    const perm = permission(roleOf(m), "structure.update");
    setText(this.version, `version ${s.lock_version}${dirty ? " · unsaved changes" : ""}`);
    setText(this.why, perm.allowed ? "" : `${perm.reason} You can read it here.`);
    this.why.hidden = perm.allowed;
    this.tools.hidden = !perm.allowed;
    this.saveBtn.disabled = !dirty;
    this.resetBtn.disabled = !dirty;
    const pending = (m.event.pending || []).some((x) => x.op && x.op.type === "structure.update");
    this.pendingTag.hidden = !pending;
    const stale = dirty && s.lock_version !== this.baseVersion && !m.structureConflict;
    this.stale.hidden = !stale;
    setText(this.stale, stale ? `Someone else changed the structure (now version ${s.lock_version}) since you started editing version ${this.baseVersion}. Saving will show you both.` : "");
    // The step in play, when the draft still matches the server.
    const current = dirty ? null : currentLevelIndex(m.clock, s.levels);
    if (current !== this.current) {
      this.current = current;
      this.tbody.querySelectorAll("tr").forEach((tr, i) => {
        tr.classList.toggle("current", i === current);
        setAttr(tr, "aria-current", i === current ? "step" : null);
      });
    }
    this.tbody.querySelectorAll('button[data-action="goto"]').forEach((b) => {
      b.disabled = dirty || !perm.allowed;
    });
  }

  renderRows(focus) {
    const labels = stepLabels(this.rows);
    const editable = this.editable;
    const n = this.rows.length;
    const v = this.showValidation ? validateRows(this.rows) : null;
    replaceChildren(
      this.tbody,
      this.rows.map((r, i) => {
        const cells = COLS.map(([f, label]) => {
          if (r.kind === "break" && ["small", "big", "ante"].includes(f)) return h("td", { class: "na", text: "—" });
          const input = h("input", {
            type: "text",
            inputmode: f === "note" ? null : f === "minutes" ? "decimal" : "numeric",
            class: `cell-${f}`,
            value: r[f],
            readOnly: !editable,
            "aria-label": `${labels[i]} ${label.toLowerCase()}`,
            placeholder: f === "note" ? (r.kind === "break" ? "e.g. Color up the 100 chips" : "") : null,
            dataset: { field: f, index: String(i) },
          });
          input.addEventListener("input", () => {
            this.rows = setField(this.rows, i, f, input.value);
            this.renderState(store.get());
            if (this.showValidation) this.renderErrors(validateRows(this.rows));
          });
          return h("td", { class: `c-${f}` }, input);
        });
        const act = (action, text, label, enabled, fn) =>
          h("button", { type: "button", class: "btn-icon", text, title: label, "aria-label": `${label}: ${labels[i]}`, disabled: !enabled, dataset: { action, key: r.key }, onclick: fn });
        const actions = editable
          ? h("td", {}, h("div", { class: "row-actions" },
              act("up", "↑", "Move up", i > 0, () => this.change(moveRow(this.rows, i, -1), { key: r.key, action: "up" })),
              act("down", "↓", "Move down", i < n - 1, () => this.change(moveRow(this.rows, i, 1), { key: r.key, action: "down" })),
              act("remove", "✕", "Remove", n > 1, () => this.change(removeRow(this.rows, i))),
              act("goto", "Go to", "Move the clock to the start of this step", !isDirty(this.rows, this.baseLevels), () => submit({ type: "clock.set_level", level_index: i }))))
          : h("td", {});
        return h("tr", { class: r.kind === "break" ? "is-break" : "", dataset: { key: r.key } },
          h("th", { scope: "row", class: "step", text: labels[i] }),
          ...cells,
          actions);
      }),
    );
    this.current = undefined;
    if (v) this.renderErrors(v);
    if (focus === "add") {
      const last = this.tbody.querySelector("tr:last-child input");
      if (last) last.focus();
    } else if (focus && focus.key) {
      const b = this.tbody.querySelector(`button[data-key="${focus.key}"][data-action="${focus.action}"]`);
      if (b && !b.disabled) b.focus();
    }
  }

  renderErrors(v) {
    replaceChildren(this.errors, [...v.general, ...v.errors.map((e) => e.message)].map((t) => h("li", { text: t })));
    const bad = new Set(v.errors.map((e) => `${e.index}:${e.field}`));
    this.tbody.querySelectorAll("input[data-field]").forEach((input) => {
      setAttr(input, "aria-invalid", bad.has(`${input.dataset.index}:${input.dataset.field}`) ? "true" : null);
    });
  }

  async save() {
    const { op, validation } = structureOp(this.rows, this.baseVersion);
    this.showValidation = true;
    this.renderErrors(validation);
    if (!op) return;
    this.saveBtn.disabled = true;
    await submit(op);
    this.renderState(store.get());
  }

  renderConflict(m) {
    const c = m.structureConflict;
    this.conflict.hidden = !c;
    if (!c) return;
    setText(this.conflictMsg, c.message);
    const mine = (c.op && c.op.levels) || [];
    const theirs = (c.current && c.current.levels) || [];
    const ml = levelLabels(mine);
    const tl = levelLabels(theirs);
    const diff = diffLevels(mine, theirs);
    replaceChildren(
      this.conflictList,
      diff.length
        ? diff.map((d) =>
            h("li", {},
              h("span", { class: "diff-step", text: `Step ${d.index + 1}` }),
              h("span", { class: "diff-mine" }, h("span", { class: "label", text: "Yours" }), d.mine ? `${ml[d.index]}: ${describeStep(d.mine)}` : "(no step)"),
              h("span", { class: "diff-theirs" }, h("span", { class: "label", text: "Theirs" }), d.theirs ? `${tl[d.index]}: ${describeStep(d.theirs)}` : "(no step)")))
        : [h("li", { text: "Your levels and theirs are the same; only the version moved on." })],
    );
  }

  reloadTheirs() {
    const c = store.get().structureConflict;
    const s = (c && c.current && Array.isArray(c.current.levels) ? c.current : null) || this.server();
    store.dispatch({ type: "clear-structure-conflict" });
    this.load(s);
  }

  keepMine() {
    const c = store.get().structureConflict;
    if (c && c.current) {
      // Reviewed: the next save is based on theirs and replaces it, knowingly.
      this.baseVersion = c.current.lock_version;
      this.baseLevels = c.current.levels;
    }
    store.dispatch({ type: "clear-structure-conflict" });
    this.renderRows();
    this.renderState(store.get());
  }
}

customElements.define("pb-structure", PbStructure);
