// The venue's events: open one to follow it, or (coordinators) create one
// from a structure template.

import { store, call, takeApp, reportError } from "../app.js";
import { screenFor, roleOf } from "../lib/store.js";
import { permission } from "../lib/permissions.js";
import { validateCreateEvent, normalizeError } from "../lib/forms.js";
import { formatWhen, formatCount } from "../format.js";
import { h, setText, field, showErrors, setOptions, replaceChildren } from "./dom.js";

class PbEvents extends HTMLElement {
  connectedCallback() {
    if (this.built) return;
    this.built = true;
    this.classList.add("screen", "events");
    this.events = null;
    this.templates = [];
    this.list = h("ul", { id: "event-list", class: "event-list", "aria-label": "Events" });
    this.listState = h("p", { id: "event-list-state", class: "muted" });
    this.refreshBtn = h("button", { type: "button", id: "events-refresh", class: "btn-small", text: "Reload list", onclick: () => this.load() });

    this.name = h("input", { id: "create-name", type: "text", maxlength: "120", placeholder: "Saturday Deepstack" });
    this.template = h("select", { id: "create-template", onchange: () => this.describe() });
    this.templateDesc = h("p", { id: "create-template-desc", class: "hint" });
    this.stack = h("input", { id: "create-stack", type: "text", inputmode: "numeric", value: "20000" });
    this.buyIn = h("input", { id: "create-buyin", type: "text", inputmode: "numeric", value: "100" });
    this.createBtn = h("button", { type: "submit", id: "create-submit", class: "btn-primary", text: "Create event" });
    this.createError = h("p", { id: "create-error", class: "form-error", role: "alert" });
    this.createWhy = h("p", { id: "create-why", class: "why" });
    this.form = h(
      "form",
      { id: "create-form", class: "panel create-form", novalidate: true, onsubmit: (e) => { e.preventDefault(); this.create(); } },
      h("h2", { text: "Create event" }),
      field("Name", this.name),
      field("Structure", this.template),
      this.templateDesc,
      h("div", { class: "row" }, field("Starting stack (chips)", this.stack), field("Buy-in", this.buyIn)),
      h("div", { class: "row" }, this.createBtn),
      this.createError,
    );
    this.append(
      h("div", { class: "events-inner" },
        h("section", { class: "panel" },
          h("div", { class: "panel-head" }, h("h2", { text: "Events" }), this.refreshBtn),
          this.listState,
          this.list),
        h("section", {}, this.form, this.createWhy)),
    );
    store.subscribe((m, p) => this.render(m, p));
    this.render(store.get(), null);
  }

  render(m, p) {
    const visible = screenFor(m) === "events";
    const wasVisible = p ? screenFor(p) === "events" : false;
    const venueChanged = !p || !p.app || !m.app || p.app.server !== m.app.server || p.app.mode !== m.app.mode;
    if (visible && (!wasVisible || venueChanged)) this.load();
    const perm = permission(roleOf(m), "event.create");
    this.form.hidden = !perm.allowed;
    setText(this.createWhy, perm.allowed ? "" : perm.reason);
    this.createWhy.hidden = perm.allowed;
    if (!p || m.app?.eventId !== p.app?.eventId) this.renderList(m);
  }

  async load() {
    setText(this.listState, "Loading…");
    try {
      const [events, templates] = await Promise.all([
        call("list_events"),
        this.templates.length ? Promise.resolve(this.templates) : call("structure_templates"),
      ]);
      this.events = Array.isArray(events) ? events : [];
      this.templates = Array.isArray(templates) ? templates : [];
      setOptions(this.template, this.templates.map((t) => [t.id, t.name]));
      this.describe();
      setText(this.listState, this.events.length ? "" : "No events yet.");
    } catch (e) {
      const err = normalizeError(e);
      setText(this.listState, err.code === "offline" ? `The host cannot be reached (${err.message}). Try again when it is back.` : `Could not load the events: ${err.message}`);
    }
    this.renderList(store.get());
  }

  describe() {
    const t = this.templates.find((x) => x.id === this.template.value);
    if (!t) return setText(this.templateDesc, "");
    const plays = (t.levels || []).filter((l) => l.kind !== "break").length;
    const breaks = (t.levels || []).length - plays;
    setText(this.templateDesc, `${t.description} — ${plays} levels, ${breaks} breaks.`);
  }

  renderList(m) {
    if (!this.events) return;
    const openId = m.app && m.app.eventId;
    replaceChildren(
      this.list,
      this.events.map((ev) => {
        const current = ev.id === openId;
        const btn = h(
          "button",
          { type: "button", class: "event-item", dataset: { eventId: ev.id }, "aria-current": current ? "true" : null, onclick: () => this.open(ev.id, btn) },
          h("span", { class: "event-item-name", text: ev.name }),
          h("span", { class: "event-item-meta", text: `${current ? "Open on this device · " : ""}created ${formatWhen(ev.created_at_ms)} · ${formatCount(ev.seq)} changes` }),
        );
        return h("li", {}, btn);
      }),
    );
  }

  async open(id, btn) {
    btn.disabled = true;
    try {
      takeApp(await call("open_event", { eventId: id }));
      store.dispatch({ type: "navigate", screen: "console" });
    } catch (e) {
      reportError("Could not open the event", e);
    } finally {
      btn.disabled = false;
    }
  }

  async create() {
    setText(this.createError, "");
    const v = validateCreateEvent(
      { name: this.name.value, templateId: this.template.value, startingStack: this.stack.value, buyIn: this.buyIn.value },
      this.templates,
    );
    showErrors(this, v.errors, { name: "create-name", templateId: "create-template", startingStack: "create-stack", buyIn: "create-buyin" });
    if (!v.ok) return;
    this.createBtn.disabled = true;
    try {
      await call("create_event", v.value);
      this.name.value = "";
      takeApp(await call("app_state"));
      store.dispatch({ type: "navigate", screen: "console" });
    } catch (e) {
      setText(this.createError, `Could not create the event: ${normalizeError(e).message}`);
    } finally {
      this.createBtn.disabled = false;
    }
  }
}

customElements.define("pb-events", PbEvents);
