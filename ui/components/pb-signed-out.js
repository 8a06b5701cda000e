// Shown when this device is signed out of its venue: a coordinator revoked
// it, or it lost its session and its one-time pairing code cannot be used
// again. Says so in words and offers the one way back, joining again with a
// new code; the app never logs in again by itself.

import { store, call, takeApp } from "../app.js";
import { normalizeError } from "../lib/forms.js";
import { h, setText } from "./dom.js";

class PbSignedOut extends HTMLElement {
  connectedCallback() {
    if (this.built) return;
    this.built = true;
    this.classList.add("screen", "signed-out");
    this.reason = h("p", { id: "signed-out-reason", class: "signed-out-reason", role: "alert" });
    this.server = h("p", { id: "signed-out-server", class: "muted" });
    this.msg = h("p", { class: "form-error", role: "alert" });
    this.again = h("button", { type: "button", id: "signed-out-join", class: "btn-primary", text: "Join again with a new code", onclick: () => this.joinAgain() });
    this.append(
      h("div", { class: "signed-out-inner panel" },
        h("h1", { text: "Signed out" }),
        this.reason,
        this.server,
        h("p", { class: "hint", text: "Changes made on this device before it was signed out that the host never confirmed stay on this device and are sent after you join again." }),
        h("div", { class: "row" }, this.again),
        this.msg),
    );
    store.subscribe((m, p) => {
      if (!p || m.app !== p.app) this.render(m);
    });
    this.render(store.get());
  }

  render(m) {
    const app = m.app || {};
    setText(this.reason, app.signedOut || "");
    setText(this.server, app.server ? `Host: ${app.server.replace(/^https?:\/\//, "")}` : "");
  }

  async joinAgain() {
    this.again.disabled = true;
    try {
      // Back to the join screen; the host's address is remembered.
      takeApp(await call("leave_venue"));
      store.dispatch({ type: "navigate", screen: "connect" });
    } catch (e) {
      setText(this.msg, normalizeError(e).message);
    } finally {
      this.again.disabled = false;
    }
  }
}

customElements.define("pb-signed-out", PbSignedOut);
