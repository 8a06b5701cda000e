// The conflict view: an incident edit based on an old version was refused.
// Yours (your fields over the record you started from) beside Theirs (the
// record now), what differs marked in words as well as colour, and the
// choice: keep theirs, or apply yours again on top of theirs knowingly.

import { store, submit } from "../app.js";
import { reapplyOp, CONFLICT_FIELDS } from "../lib/conflict.js";
import { statusWord, severityWord, tableLabel } from "../lib/incidents.js";
import { formatTimeOfDay } from "../format.js";
import { h, setText, replaceChildren } from "./dom.js";

const LABELS = { table: "Table", kind: "Kind", severity: "Severity", status: "Status", note: "Note" };

function shown(field, value) {
  if (field === "status") return statusWord(value);
  if (field === "severity") return severityWord(value);
  return value == null || value === "" ? "—" : String(value);
}

class PbConflict extends HTMLElement {
  connectedCallback() {
    if (this.built) return;
    this.built = true;
    this.heading = h("h2", { id: "conflict-title", text: "Someone else updated this incident — review and try again" });
    this.detail = h("p", { id: "conflict-detail", class: "muted" });
    this.mine = h("section", { id: "conflict-mine", class: "side-mine", "aria-label": "Yours" });
    this.theirs = h("section", { id: "conflict-theirs", class: "side-theirs", "aria-label": "Theirs" });
    this.server = h("p", { id: "conflict-server", class: "muted small" });
    this.applyNote = h("p", { id: "conflict-apply-note", class: "hint" });
    this.problem = h("p", { id: "conflict-problem", class: "warn-text", hidden: true });
    this.more = h("p", { id: "conflict-more", class: "muted", hidden: true });
    this.reload = h("button", { type: "button", id: "conflict-reload", class: "btn-primary", text: "Reload theirs", onclick: () => this.close() });
    this.apply = h("button", { type: "button", id: "conflict-apply-mine", text: "Apply mine again", onclick: () => this.applyMine() });
    this.view = h(
      "div",
      { class: "overlay", id: "conflict-view", hidden: true, onkeydown: (e) => { if (e.key === "Escape") this.close(); } },
      h("div", { class: "dialog wide", role: "alertdialog", "aria-modal": "true", "aria-labelledby": "conflict-title", "aria-describedby": "conflict-detail" },
        this.heading,
        this.detail,
        h("div", { class: "sides" }, this.mine, this.theirs),
        this.applyNote,
        this.problem,
        this.server,
        this.more,
        h("div", { class: "row end" }, this.reload, this.apply)),
    );
    this.append(this.view);
    store.subscribe((m, p) => {
      if (!p || m.conflicts !== p.conflicts) this.render(m);
    });
    this.render(store.get());
  }

  current() {
    return store.get().conflicts[0] || null;
  }

  side(el, heading, record, c, mark, touched, word) {
    const rows = CONFLICT_FIELDS.map((f) => {
      const differs = c.changed.includes(f);
      return h("div", { class: differs ? "diff-row changed" : "diff-row", dataset: { field: f } },
        h("dt", {}, LABELS[f], differs ? h("span", { class: "differs", text: " ≠" }) : null,
          touched.includes(f) ? h("small", { class: "touched", text: ` ${word}` }) : null),
        h("dd", { class: f === "note" ? "inc-note" : "", text: shown(f, record[f]) }));
    });
    replaceChildren(el, h("h3", { text: heading }), h("p", { class: "muted side-meta", text: mark }), h("dl", {}, rows));
  }

  render(m) {
    const c = m.conflicts[0];
    const wasHidden = this.view.hidden;
    this.view.hidden = !c;
    if (!c) return;
    const t = c.theirs;
    setText(this.detail, `${tableLabel(t.table) || "Incident"} · ${c.changed.length ? `${c.changed.length} field${c.changed.length === 1 ? "" : "s"} differ (marked ≠)` : "no field differs"}.`);
    setText(this.server, c.message ? `Server: ${c.message}` : "");
    this.side(this.mine, "Yours", c.mine, c, c.baseKnown ? `your change to version ${c.baseVersion}` : "your change (as sent)", c.yourFields, "(your edit)");
    this.side(this.theirs, "Theirs", t, c, `version ${t.lock_version}${t.updated_at_ms ? `, updated ${formatTimeOfDay(t.updated_at_ms)}` : ""}`, c.theirChanges, "(changed)");
    const r = reapplyOp(c);
    const names = c.yourFields.map((f) => LABELS[f].toLowerCase());
    setText(this.applyNote, names.length ? `Apply mine again sends only your ${names.join(", ")} on top of their version ${t.lock_version}.` : "");
    this.problem.hidden = !r.problem;
    setText(this.problem, r.problem);
    this.apply.disabled = Boolean(r.problem);
    this.apply.title = r.problem || (r.noop ? "Theirs already has your values" : "Send your fields again, based on their version");
    const more = m.conflicts.length - 1;
    this.more.hidden = more <= 0;
    setText(this.more, more > 0 ? `${more} more conflict${more === 1 ? "" : "s"} after this one.` : "");
    if (wasHidden) this.reload.focus();
  }

  close() {
    const c = this.current();
    if (c) store.dispatch({ type: "close-conflict", incidentId: c.incidentId });
  }

  async applyMine() {
    const c = this.current();
    if (!c) return;
    const { op, problem } = reapplyOp(c);
    if (problem) return;
    this.apply.disabled = true;
    await submit(op);
    this.apply.disabled = false;
    store.dispatch({ type: "close-conflict", incidentId: c.incidentId });
  }
}

customElements.define("pb-conflict", PbConflict);
