// The status bar at the bottom of every screen: connection state in words,
// pending changes, sound trouble, and Refresh: offline is a mode the floor
// works in, so it is said in words, with what is waiting.

import { store, call, reportError } from "../app.js";
import { statusText, statusKind, retryText, pendingCount, soundText } from "../lib/status.js";
import { h, setText, setAttr } from "./dom.js";

class PbStatusBar extends HTMLElement {
  connectedCallback() {
    if (this.built) return;
    this.built = true;
    this.dot = h("span", { class: "dot", "aria-hidden": "true" });
    this.state = h("span", { id: "status-state", class: "status-state" });
    this.retry = h("span", { id: "status-retry", class: "status-retry" });
    this.pending = h("span", { id: "status-pending", class: "num" });
    this.pendingLabel = h("span", { class: "pending-label", text: "pending" });
    this.pendingBox = h("span", { class: "status-pending-box", title: "Changes of this device not yet confirmed by the server" }, this.pending, " ", this.pendingLabel);
    this.sound = h("span", { id: "status-sound", class: "status-sound" });
    this.refresh = h("button", {
      type: "button",
      id: "status-refresh",
      class: "btn-small",
      text: "Refresh",
      title: "Reconnect now",
      onclick: () => this.doRefresh(),
    });
    this.append(h("span", { class: "status-main" }, this.dot, this.state, this.retry), this.pendingBox, this.sound, this.refresh);
    store.subscribe((m, p) => {
      if (!p || m.status !== p.status || m.app !== p.app || m.event !== p.event) this.render(m);
    });
    this.render(store.get());
  }

  async doRefresh() {
    this.refresh.disabled = true;
    try {
      await call("refresh");
    } catch (e) {
      reportError("Refresh failed", e);
    } finally {
      this.refresh.disabled = false;
    }
  }

  render(m) {
    const now = Date.now();
    const kind = statusKind(m.status, m.app);
    this.dataset.state = kind;
    setText(this.state, statusText(m.status, m.app, now));
    setText(this.retry, retryText(m.status, now));
    this.pendingBox.hidden = kind === "none";
    const n = pendingCount(m.event, m.status);
    setText(this.pending, String(n));
    this.pendingBox.dataset.some = n > 0 ? "true" : "false";
    const sound = soundText(m.app);
    setText(this.sound, sound ? "Sound unavailable" : "");
    setAttr(this.sound, "title", sound || null);
    this.sound.hidden = !sound;
    this.refresh.hidden = !(m.app && m.app.eventId) || kind === "signed_out";
  }
}

customElements.define("pb-status-bar", PbStatusBar);
