// The first screen: host this venue, or join one with an address and a
// join code. The operator and device names go with the login, so they are
// saved (set_settings) before either.

import { store, call, takeApp } from "../app.js";
import { validateJoin, joinErrorText, settingsFrom, normalizeError } from "../lib/forms.js";
import { h, setText, field, showErrors } from "./dom.js";

class PbConnect extends HTMLElement {
  connectedCallback() {
    if (this.built) return;
    this.built = true;
    this.classList.add("screen", "connect");
    this.operator = h("input", { id: "connect-operator", type: "text", autocomplete: "name", maxlength: "60", placeholder: "e.g. Ana (floor)" });
    this.device = h("input", { id: "connect-device", type: "text", maxlength: "60", placeholder: "e.g. Table 12 laptop" });
    this.hostBtn = h("button", { type: "button", id: "host-venue", class: "choice", onclick: () => this.host() },
      h("span", { class: "choice-title", text: "Host this venue" }),
      h("span", { class: "choice-sub", text: "Run the venue server on this computer. Other devices join it." }));
    this.joinBtn = h("button", { type: "button", id: "join-venue", class: "choice", "aria-expanded": "false", onclick: () => this.showJoin() },
      h("span", { class: "choice-title", text: "Join a venue" }),
      h("span", { class: "choice-sub", text: "Connect to the computer hosting this room, with its join code." }));
    this.hostError = h("p", { id: "host-error", class: "form-error", role: "alert" });
    this.address = h("input", { id: "join-address", type: "text", inputmode: "url", autocomplete: "off", spellcheck: "false", placeholder: "192.168.1.20:7878" });
    this.code = h("input", { id: "join-code", type: "text", autocomplete: "off", spellcheck: "false", autocapitalize: "characters", placeholder: "Join code or 6-digit pairing code" });
    this.newKey = h("input", { id: "join-new-key", type: "checkbox" });
    this.newKeyRow = h("label", { class: "check", id: "join-new-key-row", hidden: true }, this.newKey, h("span", { text: "The host was reinstalled: trust its new key" }));
    this.joinSubmit = h("button", { type: "submit", id: "join-submit", class: "btn-primary", text: "Join" });
    this.joinError = h("p", { id: "join-error", class: "form-error", role: "alert" });
    this.joinForm = h(
      "form",
      { class: "join-form", id: "join-form", hidden: true, novalidate: true, onsubmit: (e) => { e.preventDefault(); this.join(); } },
      h("div", { class: "row" },
        field("Host address", this.address),
        field("Join code", this.code)),
      h("p", { class: "hint", text: "The host shows its address and the join codes at the top of its screen; its coordinator can also give you a 6-digit pairing code (Devices → Pair a device), good once for 5 minutes. The coordinator code runs the clock, the dealer code reports from a table, the display code shows the clock on a wall screen." }),
      this.newKeyRow,
      h("div", { class: "row" }, this.joinSubmit),
      this.joinError,
    );
    for (const input of [this.operator, this.device, this.address]) {
      input.addEventListener("input", () => (input.dataset.touched = "1"));
    }
    this.append(
      h("div", { class: "connect-inner" },
        h("h1", { text: "Welcome to Pitboss" }),
        h("p", { class: "lead", text: "This device shows the tournament clock and the floor's incidents, shared live with every screen in the room." }),
        h("div", { class: "row names" },
          field("Your name", this.operator),
          field("This device", this.device)),
        h("div", { class: "choices" }, this.hostBtn, this.joinBtn),
        this.hostError,
        this.joinForm),
    );
    store.subscribe((m, p) => {
      if (!p || m.app !== p.app) this.fill(m);
    });
    this.fill(store.get());
  }

  fill(m) {
    const s = m.app && m.app.settings;
    if (!s) return;
    for (const [input, v] of [[this.operator, s.operatorName], [this.device, s.deviceName], [this.address, s.serverAddress]]) {
      if (document.activeElement !== input && !input.dataset.touched) input.value = v || "";
    }
  }

  /** Saves the names (they go with the login); returns false when they are invalid. */
  async saveNames() {
    const m = store.get();
    const r = settingsFrom(m.app && m.app.settings, { operatorName: this.operator.value, deviceName: this.device.value });
    showErrors(this, r.errors, { operatorName: "connect-operator", deviceName: "connect-device" });
    if (!r.ok) return false;
    const cur = (m.app && m.app.settings) || {};
    if (cur.operatorName === r.settings.operatorName && cur.deviceName === r.settings.deviceName) return true;
    try {
      await call("set_settings", { settings: r.settings });
    } catch (e) {
      setText(this.hostError, `Could not save your name: ${normalizeError(e).message}`);
      return false;
    }
    return true;
  }

  busy(on, btn, text) {
    this.hostBtn.disabled = on;
    this.joinBtn.disabled = on;
    this.joinSubmit.disabled = on;
    if (btn) {
      if (on) {
        btn.dataset.label = btn.querySelector(".choice-title")?.textContent || btn.textContent;
        setText(btn.querySelector(".choice-title") || btn, text);
      } else if (btn.dataset.label) {
        setText(btn.querySelector(".choice-title") || btn, btn.dataset.label);
      }
    }
  }

  async host() {
    setText(this.hostError, "");
    if (!(await this.saveNames())) return;
    this.busy(true, this.hostBtn, "Starting the venue server…");
    try {
      takeApp(await call("host_venue"));
    } catch (e) {
      setText(this.hostError, `Could not host: ${normalizeError(e).message}`);
    } finally {
      this.busy(false, this.hostBtn);
    }
  }

  showJoin() {
    this.joinForm.hidden = false;
    this.joinBtn.setAttribute("aria-expanded", "true");
    this.joinBtn.classList.add("chosen");
    (this.address.value ? this.code : this.address).focus();
  }

  async join() {
    setText(this.joinError, "");
    const v = validateJoin({ address: this.address.value, code: this.code.value });
    showErrors(this, v.errors, { address: "join-address", code: "join-code" });
    if (!v.ok) return;
    if (!(await this.saveNames())) return;
    this.busy(true, this.joinSubmit, "Joining…");
    try {
      takeApp(await call("join_venue", { ...v.value, newKey: this.newKey.checked }));
      this.code.value = "";
      this.newKey.checked = false;
      this.newKeyRow.hidden = true;
    } catch (e) {
      setText(this.joinError, joinErrorText(e, v.value.address, v.value.joinCode));
      if (normalizeError(e).code === "key_changed") this.newKeyRow.hidden = false;
      if (normalizeError(e).code === "unauthorized") this.code.select();
    } finally {
      this.busy(false, this.joinSubmit);
    }
  }
}

customElements.define("pb-connect", PbConnect);
