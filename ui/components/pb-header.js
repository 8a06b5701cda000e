// The top bar: event name, who this device is, the navigation, and, when
// this device hosts, the address and codes other devices join with.

import { store } from "../app.js";
import { screenFor, roleOf } from "../lib/store.js";
import { roleLabel, screensFor } from "../lib/permissions.js";
import { hostText, joinedKeyText } from "../lib/status.js";
import { openCount } from "../lib/incidents.js";
import { h, setText, setAttr } from "./dom.js";

const NAV = [
  ["console", "nav-console", "Clock"],
  ["structure", "nav-structure", "Structure"],
  ["incidents", "nav-incidents", "Incidents"],
  ["devices", "nav-devices", "Devices"],
  ["audit", "nav-audit", "Audit"],
  ["events", "nav-events", "Events"],
  ["settings", "nav-settings", "Settings"],
];

class PbHeader extends HTMLElement {
  connectedCallback() {
    if (this.built) return;
    this.built = true;
    this.eventName = h("div", { class: "event", id: "event-name" });
    this.roleEl = h("div", { class: "role", id: "role-badge" });
    this.buttons = {};
    this.badge = h("span", { class: "badge", id: "nav-incidents-count", hidden: true });
    const nav = h("nav", { class: "nav", "aria-label": "Screens" });
    for (const [screen, id, label] of NAV) {
      const b = h("button", {
        type: "button",
        id,
        class: "nav-btn",
        dataset: { screen },
        onclick: () => store.dispatch({ type: "navigate", screen }),
      });
      b.append(h("span", { class: "nav-label", text: label }));
      if (screen === "incidents") b.append(this.badge);
      this.buttons[screen] = b;
      nav.append(b);
    }
    this.nav = nav;
    this.host = h("div", { class: "host", id: "host" });
    this.append(
      h(
        "div",
        { class: "bar" },
        h("div", { class: "brand", title: "Pitboss" }, h("span", { class: "mark", "aria-hidden": "true", text: "♠" }), h("span", { class: "brand-word", text: " Pitboss" })),
        this.eventName,
        this.roleEl,
        nav,
      ),
      this.host,
    );
    store.subscribe((m, p) => this.render(m, p));
    this.render(store.get(), null);
  }

  render(m) {
    const screen = screenFor(m);
    const connected = m.app && m.app.mode !== "none";
    const name = (m.clock && m.clock.eventName) || (m.event && m.event.details && m.event.details.name) || "";
    let title = name;
    if (!m.app) title = "Starting…";
    else if (m.app.mode === "none") title = "Not connected to a venue";
    else if (!m.app.eventId) title = "Choose an event";
    setText(this.eventName, title);
    const op = m.app && m.app.settings && m.app.settings.operatorName;
    setText(this.roleEl, connected ? `${roleLabel(roleOf(m))}${op ? ` · ${op}` : ""}` : "");
    this.nav.hidden = !connected || Boolean(m.app && m.app.signedOut);
    const hasEvent = Boolean(m.app && m.app.eventId);
    const mine = screensFor(roleOf(m));
    for (const [s, b] of Object.entries(this.buttons)) {
      const current = s === screen;
      setAttr(b, "aria-current", current ? "page" : null);
      b.hidden = !mine.includes(s) || (!hasEvent && ["console", "structure", "incidents", "audit"].includes(s));
    }
    const open = m.event ? openCount(m.event.incidents) : 0;
    this.badge.hidden = open === 0;
    setText(this.badge, open ? String(open) : "");
    setAttr(this.badge, "aria-label", open ? `${open} open` : null);
    const host = hostText(m.app) || joinedKeyText(m.app);
    setText(this.host, host);
    this.host.hidden = !host;
    if (m.app && m.app.host) setAttr(this.host, "title", `Addresses: ${(m.app.host.addresses || []).join(", ")}`);
  }
}

customElements.define("pb-header", PbHeader);
