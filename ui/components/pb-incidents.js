// The floor's incident board: Open / Acknowledged / Resolved, a filter by
// table, the form to raise one, and each card's transitions and edit, all
// sent with the card's lock_version (a stale one comes back as a conflict,
// shown by <pb-conflict>). Notes are the floor's own words: text only.

import { store, submit } from "../app.js";
import { roleOf } from "../lib/store.js";
import { permission, controlsFor } from "../lib/permissions.js";
import { loadTrail } from "./pb-audit.js";
import { normalizeError } from "../lib/forms.js";
import {
  KINDS,
  SEVERITIES,
  STATUSES,
  createOp,
  editOp,
  actionsFor,
  ACTION_WORDS,
  transitionOp,
  tablesPresent,
  filterByTable,
  groupByStatus,
  pendingByIncident,
  pendingCreates,
  pendingTag,
  statusWord,
  severityWord,
  tableLabel,
} from "../lib/incidents.js";
import { formatTimeOfDay } from "../format.js";
import { h, setText, field, showErrors, setOptions, replaceChildren } from "./dom.js";

const kindOptions = (extra) => {
  const list = [...KINDS];
  if (extra && !list.includes(extra)) list.push(extra);
  return list.map((k) => [k, k]);
};
const severityOptions = () => SEVERITIES.map((s) => [s, severityWord(s)]);

function meta(i) {
  const when = formatTimeOfDay(i.created_at_ms).slice(0, 5);
  const upd = i.updated_at_ms > i.created_at_ms ? ` · updated ${formatTimeOfDay(i.updated_at_ms).slice(0, 5)}` : "";
  return `${when} · ${i.created_by || "someone"}${upd} · v${i.lock_version}`;
}

class PbIncidents extends HTMLElement {
  connectedCallback() {
    if (this.built) return;
    this.built = true;
    this.classList.add("screen", "incidents");

    // Create form.
    this.table = h("input", { id: "incident-table", type: "text", maxlength: "40", list: "incident-tables", autocomplete: "off", placeholder: "e.g. 12" });
    this.kind = h("select", { id: "incident-kind" });
    setOptions(this.kind, kindOptions());
    this.severity = h("select", { id: "incident-severity" });
    setOptions(this.severity, severityOptions());
    this.severity.value = "medium";
    this.note = h("textarea", { id: "incident-note", rows: "3", maxlength: "2000", placeholder: "What happened (optional)" });
    this.createBtn = h("button", { type: "submit", id: "incident-create", class: "btn-primary", text: "Raise incident" });
    this.formMsg = h("p", { id: "incident-form-msg", class: "hint", role: "status" });
    this.tables = h("datalist", { id: "incident-tables" });
    const kindField = field("Kind", this.kind);
    kindField.classList.add("field-kind");
    this.form = h(
      "form",
      { id: "incident-form", class: "panel incident-form", novalidate: true, onsubmit: (e) => { e.preventDefault(); this.create(); } },
      h("h2", { text: "New incident" }),
      h("div", { class: "row fields" }, field("Table", this.table), field("Severity", this.severity), kindField),
      field("Note", this.note),
      h("div", { class: "row" }, this.createBtn),
      this.formMsg,
      this.tables,
    );

    // Filter.
    this.filter = h("select", { id: "incident-filter", "aria-label": "Show the incidents of", onchange: () => this.renderBoard(store.get()) });
    setOptions(this.filter, [["", "All tables"]]);
    this.filterCount = h("span", { id: "incident-filter-count", class: "muted" });

    // Columns.
    this.columns = {};
    const cols = STATUSES.map((s) => {
      const count = h("span", { class: "count" });
      const list = h("div", { class: "cards", id: `incidents-${s}` });
      this.columns[s] = { count, list };
      return h("section", { class: "column", dataset: { status: s }, "aria-label": statusWord(s) },
        h("h2", {}, h("span", { text: statusWord(s) }), " ", count),
        list);
    });

    // Edit dialog.
    this.eTable = h("input", { id: "edit-table", type: "text", maxlength: "40", list: "incident-tables", autocomplete: "off" });
    this.eKind = h("select", { id: "edit-kind" });
    this.eSeverity = h("select", { id: "edit-severity" });
    setOptions(this.eSeverity, severityOptions());
    this.eNote = h("textarea", { id: "edit-note", rows: "4", maxlength: "2000" });
    this.eSave = h("button", { type: "submit", id: "edit-save", class: "btn-primary", text: "Save" });
    this.eCancel = h("button", { type: "button", id: "edit-cancel", text: "Cancel", onclick: () => this.closeEditor() });
    this.eTitle = h("h2", { id: "edit-title" });
    this.eStale = h("p", { id: "edit-stale", class: "warn-text", hidden: true });
    this.eMsg = h("p", { class: "hint", role: "status" });
    this.editor = h(
      "div",
      { class: "overlay", id: "incident-editor", hidden: true, onkeydown: (e) => { if (e.key === "Escape") this.closeEditor(); } },
      h("form", { class: "dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": "edit-title", novalidate: true, onsubmit: (e) => { e.preventDefault(); this.saveEdit(); } },
        this.eTitle,
        this.eStale,
        h("div", { class: "row" }, field("Table", this.eTable), field("Severity", this.eSeverity)),
        field("Kind", this.eKind),
        field("Note", this.eNote),
        this.eMsg,
        h("div", { class: "row end" }, this.eCancel, this.eSave)),
    );

    // Detail dialog with the incident's history (the audit trail filtered
    // to it), for coordinators.
    this.dTitle = h("h2", { id: "detail-title" });
    this.dBody = h("div", { class: "detail-body" });
    this.dHistory = h("ol", { id: "incident-history", class: "audit-list" });
    this.dMsg = h("p", { class: "hint", role: "status" });
    this.dClose = h("button", { type: "button", id: "detail-close", text: "Close", onclick: () => this.closeDetail() });
    this.detail = h(
      "div",
      { class: "overlay", id: "incident-detail", hidden: true, onkeydown: (e) => { if (e.key === "Escape") this.closeDetail(); } },
      h("div", { class: "dialog wide", role: "dialog", "aria-modal": "true", "aria-labelledby": "detail-title" },
        this.dTitle,
        this.dBody,
        h("h3", { text: "History" }),
        this.dMsg,
        this.dHistory,
        h("div", { class: "row end" }, this.dClose)),
    );

    this.layout = h("div", { class: "incidents-layout" },
        this.form,
        h("div", { class: "board-wrap" },
          h("div", { class: "toolbar" }, h("label", { class: "inline" }, h("span", { text: "Table" }), this.filter), this.filterCount),
          h("div", { class: "board" }, ...cols)));
    this.append(this.layout, this.editor, this.detail);
    this.editing = null;
    store.subscribe((m, p) => {
      if (!p || m.event !== p.event || m.app !== p.app) this.renderBoard(m);
    });
    this.renderBoard(store.get());
  }

  renderBoard(m) {
    const incidents = (m.event && m.event.incidents) || [];
    const pending = (m.event && m.event.pending) || [];
    const tables = tablesPresent(incidents);
    setOptions(this.filter, [["", "All tables"], ...tables.map((t) => [t, tableLabel(t)])]);
    replaceChildren(this.tables, tables.map((t) => h("option", { value: t })));
    const shown = filterByTable(incidents, this.filter.value);
    setText(this.filterCount, this.filter.value ? `${shown.length} of ${incidents.length}` : "");
    const groups = groupByStatus(shown);
    const byIncident = pendingByIncident(pending);
    const role = roleOf(m);
    const may = permission(role, "incident.update").allowed;
    const shows = controlsFor(role);
    // A wall screen shows the board only: no form, no buttons on cards.
    this.form.hidden = !shows.incidentForm;
    this.layout.dataset.form = String(shows.incidentForm);
    this.shows = shows;
    for (const s of STATUSES) {
      const cards = groups[s].map((i) => this.card(i, byIncident.get(i.id), may));
      if (s === "open") {
        for (const p of pendingCreates(pending)) {
          if (!this.filter.value || String(p.op.table).trim().toLowerCase() === this.filter.value.toLowerCase()) cards.unshift(this.pendingCard(p));
        }
      }
      setText(this.columns[s].count, `(${groups[s].length})`);
      replaceChildren(this.columns[s].list, cards.length ? cards : [h("p", { class: "empty muted", text: "None" })]);
    }
    this.createBtn.disabled = !permission(role, "incident.create").allowed || !m.event;
    if (this.editing) this.checkStale(incidents);
    // An open History follows the incident's changes as they are made.
    const seq = m.event ? m.event.seq : null;
    if (this.detailId && seq !== this.detailSeq) {
      this.detailSeq = seq;
      clearTimeout(this.detailTimer);
      this.detailTimer = setTimeout(() => this.reloadDetail(), 400);
    }
  }

  card(i, pending, may) {
    const tag = pendingTag(pending);
    const busy = Boolean(tag);
    return h(
      "article",
      { class: "incident-card", dataset: { incidentId: i.id, severity: i.severity, status: i.status }, "aria-label": `${tableLabel(i.table)}: ${i.kind}` },
      h("header", {},
        h("span", { class: "inc-table", text: tableLabel(i.table) }),
        h("span", { class: `sev sev-${i.severity}`, text: severityWord(i.severity) }),
        busy ? h("span", { class: "tag tag-pending", text: tag }) : null),
      h("div", { class: "inc-kind", text: i.kind }),
      i.note ? h("p", { class: "inc-note", text: i.note }) : null,
      h("p", { class: "inc-meta", text: meta(i) }),
      !this.shows || this.shows.incidentActions ? h("div", { class: "inc-actions" },
        actionsFor(i).map((a) =>
          h("button", {
            type: "button",
            class: a === "edit" ? "btn-small btn-quiet" : "btn-small",
            dataset: { action: a },
            text: ACTION_WORDS[a],
            disabled: !may || busy,
            title: busy ? "Waiting for the server to confirm your last change to this incident" : null,
            onclick: () => (a === "edit" ? this.openEditor(i) : submit(transitionOp(i, a))),
          }),
        ),
        this.shows && this.shows.history
          ? h("button", { type: "button", class: "btn-small btn-quiet", dataset: { action: "history" }, text: "History", title: "Who changed this incident, and when", onclick: () => this.openDetail(i) })
          : null) : null,
    );
  }

  async openDetail(i) {
    this.detailId = i.id;
    this.detailSeq = store.get().event ? store.get().event.seq : null;
    this.renderDetailBody(i);
    replaceChildren(this.dHistory);
    setText(this.dMsg, "Reading the audit trail…");
    this.detail.hidden = false;
    this.dClose.focus();
    try {
      await loadTrail(this.dHistory, i.id);
      setText(this.dMsg, "");
    } catch (e) {
      setText(this.dMsg, `Could not read the history: ${normalizeError(e).message}`);
    }
  }

  renderDetailBody(i) {
    setText(this.dTitle, `${tableLabel(i.table)} — ${i.kind}`);
    replaceChildren(this.dBody,
      h("p", {}, h("span", { class: `sev sev-${i.severity}`, text: severityWord(i.severity) }), " ", h("strong", { text: statusWord(i.status) })),
      i.note ? h("p", { class: "inc-note", text: i.note }) : null,
      h("p", { class: "inc-meta", text: meta(i) }));
  }

  async reloadDetail() {
    if (!this.detailId) return;
    const m = store.get();
    const now = m.event && (m.event.incidents || []).find((x) => x.id === this.detailId);
    if (now) this.renderDetailBody(now);
    try {
      await loadTrail(this.dHistory, this.detailId);
    } catch {
      /* the first load said what went wrong; a refresh failing keeps the last list */
    }
  }

  closeDetail() {
    this.detailId = null;
    this.detail.hidden = true;
  }

  pendingCard(p) {
    const op = p.op;
    return h(
      "article",
      { class: "pending-card", dataset: { opId: p.opId, severity: op.severity } },
      h("header", {},
        h("span", { class: "inc-table", text: tableLabel(op.table) }),
        h("span", { class: `sev sev-${op.severity}`, text: severityWord(op.severity) }),
        h("span", { class: "tag tag-pending", text: "pending" })),
      h("div", { class: "inc-kind", text: op.kind }),
      op.note ? h("p", { class: "inc-note", text: op.note }) : null,
      h("p", { class: "inc-meta", text: "Waiting for the server" }),
    );
  }

  async create() {
    setText(this.formMsg, "");
    const { op, errors } = createOp({ table: this.table.value, kind: this.kind.value, severity: this.severity.value, note: this.note.value });
    showErrors(this.form, errors, { table: "incident-table", kind: "incident-kind", severity: "incident-severity", note: "incident-note" });
    if (!op) return;
    this.createBtn.disabled = true;
    const id = await submit(op);
    this.createBtn.disabled = false;
    if (id) {
      this.note.value = "";
      setText(this.formMsg, `Raised for table ${op.table}.`);
    }
  }

  openEditor(i) {
    this.editing = i;
    setText(this.eTitle, `Edit incident — ${tableLabel(i.table)}`);
    this.eTable.value = i.table;
    setOptions(this.eKind, kindOptions(i.kind));
    this.eKind.value = i.kind;
    this.eSeverity.value = i.severity;
    this.eNote.value = i.note;
    setText(this.eMsg, "");
    showErrors(this.editor, {}, { table: "edit-table", kind: "edit-kind", severity: "edit-severity", note: "edit-note" });
    this.eStale.hidden = true;
    this.editor.hidden = false;
    this.eTable.focus();
  }

  checkStale(incidents) {
    const now = incidents.find((x) => x.id === this.editing.id);
    const stale = !now || now.lock_version !== this.editing.lock_version;
    this.eStale.hidden = !stale;
    setText(this.eStale, !now ? "This incident is no longer on the board." : stale ? "Someone else changed this incident while you were editing. Saving will show you both versions." : "");
  }

  closeEditor() {
    const id = this.editing && this.editing.id;
    this.editing = null;
    this.editor.hidden = true;
    const card = id && this.querySelector(`.incident-card[data-incident-id="${CSS.escape(id)}"] [data-action="edit"]`);
    if (card) card.focus();
  }

  async saveEdit() {
    const base = this.editing;
    if (!base) return;
    const r = editOp(base, { table: this.eTable.value, kind: this.eKind.value, severity: this.eSeverity.value, note: this.eNote.value });
    showErrors(this.editor, r.errors, { table: "edit-table", kind: "edit-kind", severity: "edit-severity", note: "edit-note" });
    if (r.unchanged) return this.closeEditor();
    if (!r.op) return;
    this.eSave.disabled = true;
    const id = await submit(r.op);
    this.eSave.disabled = false;
    if (id) this.closeEditor();
    else setText(this.eMsg, "Not sent; see the message at the top.");
  }
}

customElements.define("pb-incidents", PbIncidents);
