// The coordinator's Audit screen: every accepted change of the open event
// as the floor would say it, newest first, filtered to one incident if
// asked, and exported to CSV. It reads the server's trail again when the
// event changes while the screen is open (the trail is the server's record,
// never rebuilt here).

import { store, call } from "../app.js";
import { screenFor } from "../lib/store.js";
import { normalizeError } from "../lib/forms.js";
import { auditSentence, newestFirst, incidentChoices, exportText } from "../lib/trust.js";
import { h, setText, setOptions, replaceChildren } from "./dom.js";

/** How long after a change the trail is read again (changes come in bursts). */
const SETTLE_MS = 400;

/** Reads one incident's (or the event's) trail and renders it into `list`. */
export async function loadTrail(list, incidentId) {
  const v = await call("audit_list", { incidentId: incidentId || null, limit: null });
  const entries = newestFirst(v.entries || []);
  replaceChildren(
    list,
    entries.length
      ? entries.map((e) =>
          h("li", { class: "audit-line", dataset: { seq: String(e.seq), opId: e.op_id } }, auditSentence(e)))
      : h("li", { class: "muted", text: incidentId ? "No recorded change to this incident yet." : "No change recorded yet." }),
  );
  return entries;
}

class PbAudit extends HTMLElement {
  connectedCallback() {
    if (this.built) return;
    this.built = true;
    this.classList.add("screen", "audit");
    this.filter = h("select", { id: "audit-filter", "aria-label": "Show the changes of", onchange: () => this.load() });
    setOptions(this.filter, [["", "All changes"]]);
    this.exportBtn = h("button", { type: "button", id: "audit-export", class: "btn-primary", text: "Export CSV", onclick: () => this.exportCsv() });
    this.exportMsg = h("p", { id: "audit-export-msg", class: "export-msg", role: "status" });
    this.msg = h("p", { id: "audit-msg", class: "hint", role: "status" });
    this.count = h("span", { id: "audit-count", class: "muted" });
    this.list = h("ol", { id: "audit-list", class: "audit-list" });
    this.append(
      h("section", { class: "panel audit-panel" },
        h("div", { class: "panel-head" },
          h("h2", { text: "Audit trail" }),
          h("label", { class: "inline" }, h("span", { text: "Show" }), this.filter),
          this.count,
          h("button", { type: "button", id: "audit-refresh", class: "btn-small", text: "Refresh", onclick: () => this.load() }),
          this.exportBtn),
        h("p", { class: "hint", text: "Who changed what, from which device, at what time — newest first. Times are this computer's." }),
        this.exportMsg,
        this.msg,
        this.list),
    );
    store.subscribe((m, p) => this.onModel(m, p));
    this.onModel(store.get(), null);
  }

  onModel(m, p) {
    const shown = screenFor(m) === "audit";
    const was = p ? screenFor(p) === "audit" : false;
    if (!p || !m.event || !p.event || m.event.incidents !== p.event.incidents) {
      setOptions(this.filter, incidentChoices(m.event && m.event.incidents));
    }
    if (shown && !was) {
      setText(this.exportMsg, "");
      this.load();
    } else if (shown && m.event && p && p.event && m.event.seq !== p.event.seq) {
      clearTimeout(this.settle);
      this.settle = setTimeout(() => this.load(), SETTLE_MS);
    }
  }

  async load() {
    try {
      const entries = await loadTrail(this.list, this.filter.value);
      setText(this.count, `${entries.length} ${entries.length === 1 ? "change" : "changes"}`);
      setText(this.msg, "");
    } catch (e) {
      const err = normalizeError(e);
      setText(this.msg, `Could not read the audit trail: ${err.message || err.code}`);
    }
  }

  async exportCsv() {
    this.exportBtn.disabled = true;
    setText(this.exportMsg, "Exporting…");
    try {
      setText(this.exportMsg, exportText(await call("export_audit")));
    } catch (e) {
      const err = normalizeError(e);
      setText(this.exportMsg, `Not exported: ${err.message || err.code}`);
    } finally {
      this.exportBtn.disabled = false;
    }
  }
}

customElements.define("pb-audit", PbAudit);
