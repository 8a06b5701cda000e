// The coordinator's Devices screen: the long join codes (on the host), a
// short pairing code for one new device (six large digits, a countdown to
// expiry, Cancel), and every device that joined, with Revoke behind a
// confirm step that names the device. The list is read again every few
// seconds while the screen is open, so "last seen" and connections stay true.

import { store, call } from "../app.js";
import { screenFor } from "../lib/store.js";
import { normalizeError } from "../lib/forms.js";
import {
  ROLES,
  roleWord,
  roleDuty,
  groupedCode,
  countdown,
  countdownText,
  serverNow,
  deviceRow,
  sortDevices,
  revokeQuestion,
  revokedMessage,
  REVOKE_CONSEQUENCE,
} from "../lib/trust.js";
import { h, setText, replaceChildren } from "./dom.js";

const LIST_EVERY_MS = 4000;

class PbDevices extends HTMLElement {
  connectedCallback() {
    if (this.built) return;
    this.built = true;
    this.classList.add("screen", "devices");

    // Long codes.
    this.codes = h("dl", { class: "join-codes", id: "join-codes" });
    this.codesNote = h("p", { class: "hint", id: "join-codes-note" });

    // Pairing.
    // A row of three choices and one line saying what the chosen role may
    // do: the code box below must fit the panel without scrolling.
    this.roleInputs = ROLES.map((r) =>
      h("input", { type: "radio", name: "pair-role", value: r, id: `pair-role-${r}`, checked: r === "dealer", onchange: () => this.describeRole() }),
    );
    this.roleDuty = h("p", { id: "pair-role-duty", class: "hint" });
    const roleChoices = h(
      "fieldset",
      { class: "role-choice" },
      h("legend", { text: "Role of the new device" }),
      h("div", { class: "role-seg" },
        ...ROLES.map((r, i) => h("label", { class: "role-option", for: `pair-role-${r}` }, this.roleInputs[i], h("span", { text: roleWord(r) })))),
      this.roleDuty,
    );
    this.pairBtn = h("button", { type: "button", id: "pair-create", class: "btn-primary", text: "Pair a device", onclick: () => this.createCode() });
    this.pairMsg = h("p", { id: "pair-msg", class: "form-error", role: "alert" });
    this.codeDigits = h("div", { id: "pair-code", class: "pair-code", "aria-live": "polite" });
    this.codeRole = h("p", { id: "pair-code-role", class: "pair-code-role" });
    this.codeExpiry = h("p", { id: "pair-code-expiry", class: "pair-code-expiry", role: "timer" });
    this.cancelBtn = h("button", { type: "button", id: "pair-cancel", class: "btn-danger", text: "Cancel this code", onclick: () => this.cancelCode(this.current && this.current.code) });
    this.codeBox = h("div", { class: "pair-box", id: "pair-box", hidden: true },
      h("p", { class: "hint", text: "On the new device: Join a venue, this host's address, and this code." }),
      this.codeDigits, this.codeRole, this.codeExpiry, h("div", { class: "row" }, this.cancelBtn));
    this.others = h("ul", { class: "pair-others", id: "pair-others" });

    // Devices.
    this.tbody = h("tbody", { id: "device-rows" });
    this.listMsg = h("p", { id: "devices-msg", class: "hint", role: "status" });
    const table = h(
      "table",
      { class: "device-table", id: "device-table" },
      h("thead", {}, h("tr", {}, ...["Who", "Role", "Address", "Last seen", "Connection", ""].map((t) => h("th", { scope: "col", text: t })))),
      this.tbody,
    );

    // Lock the venue.
    this.lockBtn = h("button", { type: "button", id: "lock-venue", class: "btn-danger", text: "Lock the venue", onclick: () => this.askLock() });
    this.lockMsg = h("p", { id: "lock-msg", class: "hint", role: "status" });
    this.lockErr = h("p", { class: "form-error", role: "alert" });
    this.lockYes = h("button", { type: "button", id: "lock-confirm", class: "btn-danger-solid", text: "Lock the venue", onclick: () => this.lock() });
    this.lockNo = h("button", { type: "button", id: "lock-cancel", text: "Keep things as they are", onclick: () => this.closeLock() });
    this.lockDialog = h(
      "div",
      { class: "overlay", id: "lock-dialog", hidden: true, onkeydown: (e) => { if (e.key === "Escape") this.closeLock(); } },
      h("div", { class: "dialog", role: "alertdialog", "aria-modal": "true", "aria-labelledby": "lock-title" },
        h("h2", { id: "lock-title", text: "Lock the venue?" }),
        h("p", { text: "For a code that leaked. All three join codes are replaced, every pairing code is withdrawn, and every device except the host is signed out: each must join again with a new code from the host's screen. The host keeps running the clock." }),
        this.lockErr,
        h("div", { class: "row end" }, this.lockNo, this.lockYes)),
    );

    // Confirm dialog.
    this.confirmTitle = h("h2", { id: "revoke-title" });
    this.confirmMsg = h("p", { class: "form-error", role: "alert" });
    this.confirmYes = h("button", { type: "button", id: "revoke-confirm", class: "btn-danger-solid", text: "Revoke", onclick: () => this.revoke() });
    this.confirmNo = h("button", { type: "button", id: "revoke-cancel", text: "Keep it", onclick: () => this.closeConfirm() });
    this.confirm = h(
      "div",
      { class: "overlay", id: "revoke-dialog", hidden: true, onkeydown: (e) => { if (e.key === "Escape") this.closeConfirm(); } },
      h("div", { class: "dialog", role: "alertdialog", "aria-modal": "true", "aria-labelledby": "revoke-title" },
        this.confirmTitle,
        h("p", { text: REVOKE_CONSEQUENCE }),
        this.confirmMsg,
        h("div", { class: "row end" }, this.confirmNo, this.confirmYes)),
    );

    this.append(
      h("div", { class: "devices-layout" },
        h("section", { class: "panel pair-panel", "aria-labelledby": "pair-h" },
          h("h2", { id: "pair-h", text: "Pair a device" }),
          h("p", { class: "hint", text: "A 6-digit code joins one device, once, within 5 minutes." }),
          roleChoices,
          h("div", { class: "row" }, this.pairBtn),
          this.pairMsg,
          this.codeBox,
          this.others),
        h("div", { class: "devices-main" },
          h("section", { class: "panel", "aria-labelledby": "codes-h" },
            h("h2", { id: "codes-h", text: "Join codes" }),
            this.codes,
            this.codesNote,
            h("div", { class: "row" }, this.lockBtn),
            this.lockMsg),
          h("section", { class: "panel", "aria-labelledby": "devices-h" },
            h("div", { class: "panel-head" },
              h("h2", { id: "devices-h", text: "Devices" }),
              h("button", { type: "button", id: "devices-refresh", class: "btn-small", text: "Refresh", onclick: () => this.loadList() })),
            h("div", { class: "table-wrap" }, table),
            this.listMsg))),
      this.confirm,
      this.lockDialog,
    );

    this.current = null;
    this.pairings = [];
    this.devices = [];
    this.clock = { serverNowMs: NaN, localAtMs: NaN };
    this.selfId = null;
    this.revoking = null;
    this.describeRole();
    store.subscribe((m, p) => this.onModel(m, p));
    this.onModel(store.get(), null);
  }

  describeRole() {
    const r = this.selectedRole();
    setText(this.roleDuty, `${roleWord(r)}: ${roleDuty(r)}.`);
  }

  disconnectedCallback() {
    this.stopTimers();
    this.built = false;
  }

  onModel(m, p) {
    const shown = screenFor(m) === "devices";
    const was = p ? screenFor(p) === "devices" : false;
    if (!p || m.app !== p.app) this.renderCodes(m);
    if (shown && !was) this.start();
    if (!shown && was) this.stopTimers();
  }

  start() {
    this.stopTimers();
    this.loadList();
    this.listTimer = setInterval(() => this.loadList(), LIST_EVERY_MS);
    this.tickTimer = setInterval(() => this.tick(), 1000);
  }

  stopTimers() {
    clearInterval(this.listTimer);
    clearInterval(this.tickTimer);
  }

  // The server's time, carried forward on the page's steady clock
  // (performance.now), never the wall clock: a time sync stepping this
  // machine's clock must not move a pairing code's countdown.
  now() {
    if (!Number.isFinite(this.clock.serverNowMs)) return Date.now();
    return serverNow(this.clock.serverNowMs, this.clock.localAtMs, performance.now());
  }

  noteClock(serverNowMs) {
    if (Number.isFinite(serverNowMs)) this.clock = { serverNowMs, localAtMs: performance.now() };
  }

  renderCodes(m) {
    const host = m.app && m.app.mode === "host" ? m.app.host : null;
    const rows = [];
    if (host) {
      rows.push(["coordinator", host.coordinatorCode], ["dealer", host.dealerCode]);
      if (host.displayCode) rows.push(["display", host.displayCode]);
    }
    replaceChildren(
      this.codes,
      rows.map(([role, code]) =>
        h("div", { class: "join-code", dataset: { role } },
          h("dt", { text: roleWord(role) }),
          h("dd", { class: "code", id: `join-code-${role}`, text: code || "—" }))),
    );
    setText(
      this.codesNote,
      host
        ? `Address: ${(host.addresses || []).join(", ")}.${host.keyFingerprint ? ` Key: ${host.keyFingerprint} (a device that joins shows the same at its top).` : ""} Long codes work until the host changes them; prefer a pairing code for a new device.`
        : "The long join codes are shown on the host's screen. Pair a device with a 6-digit code instead.",
    );
  }

  selectedRole() {
    const r = this.roleInputs.find((i) => i.checked);
    return r ? r.value : "dealer";
  }

  async createCode() {
    setText(this.pairMsg, "");
    this.pairBtn.disabled = true;
    try {
      const p = await call("pairing_create", { role: this.selectedRole() });
      this.noteClock(p.serverNowMs);
      this.current = p;
      this.renderCurrent();
      this.loadPairings();
    } catch (e) {
      const err = normalizeError(e);
      setText(this.pairMsg, `No code made: ${err.message || err.code}`);
    } finally {
      this.pairBtn.disabled = false;
    }
  }

  async cancelCode(code) {
    if (!code) return;
    try {
      await call("pairing_cancel", { code });
      if (this.current && this.current.code === code) this.current = null;
      this.renderCurrent();
      this.loadPairings();
    } catch (e) {
      setText(this.pairMsg, `Could not cancel: ${normalizeError(e).message}`);
    }
  }

  renderCurrent() {
    const c = this.current;
    this.codeBox.hidden = !c;
    if (!c) return;
    setText(this.codeDigits, groupedCode(c.code));
    this.codeDigits.dataset.code = c.code;
    setText(this.codeRole, `joins as ${roleWord(c.role)}`);
    this.tick();
  }

  tick() {
    const now = this.now();
    if (this.current) {
      const cd = countdown(this.current.expiresAtMs, now);
      const used = Boolean(this.current.used) && !cd.expired;
      setText(this.codeExpiry, used ? "no longer open — used or cancelled" : countdownText(this.current.expiresAtMs, now));
      this.codeBox.dataset.expired = String(cd.expired || used);
      this.codeBox.dataset.urgent = String(cd.urgent);
      this.cancelBtn.hidden = cd.expired || used;
    }
    for (const li of this.others.querySelectorAll("[data-expires]")) {
      setText(li.querySelector(".expiry"), countdownText(Number(li.dataset.expires), now));
    }
    for (const tr of this.tbody.querySelectorAll("tr[data-operator-id]")) {
      const d = this.devices.find((x) => x.operator_id === tr.dataset.operatorId);
      if (d) setText(tr.querySelector(".c-seen"), deviceRow(d, now, this.selfId).lastSeen);
    }
  }

  async loadPairings() {
    try {
      const list = await call("pairing_list");
      this.noteClock(list.serverNowMs);
      this.pairings = list.codes || [];
      if (this.current && !this.pairings.some((p) => p.code === this.current.code)) {
        // Gone from the server's list before expiring: used (the device
        // shows up in the list below).
        this.current = { ...this.current, used: true };
      }
      const others = this.pairings.filter((p) => !this.current || p.code !== this.current.code);
      replaceChildren(
        this.others,
        others.length ? h("li", { class: "muted small", text: "Other codes still open:" }) : null,
        others.map((p) =>
          h("li", { class: "pair-other", dataset: { code: p.code, expires: String(p.expiresAtMs) } },
            h("span", { class: "code", text: groupedCode(p.code) }),
            h("span", { text: roleWord(p.role) }),
            h("span", { class: "expiry muted" }),
            h("button", { type: "button", class: "btn-small btn-quiet", text: "Cancel", onclick: () => this.cancelCode(p.code) }))),
      );
      this.tick();
    } catch {
      /* the device list reports trouble; this part is secondary */
    }
  }

  async loadList() {
    try {
      const v = await call("devices_list");
      this.noteClock(v.serverNowMs);
      this.devices = sortDevices(v.devices || []);
      this.selfId = v.selfOperatorId || null;
      this.renderList();
      setText(this.listMsg, "");
    } catch (e) {
      const err = normalizeError(e);
      setText(this.listMsg, `Could not read the device list: ${err.message || err.code}`);
    }
    if (this.current && !this.current.used) this.loadPairings();
  }

  renderList() {
    const now = this.now();
    const rows = this.devices.map((d) => {
      const r = deviceRow(d, now, this.selfId);
      return h(
        "tr",
        { dataset: { operatorId: r.id, revoked: String(r.revoked) } },
        h("td", { class: "c-who" },
          h("span", { class: "c-name", text: r.name }),
          h("span", { class: "c-device", text: r.self ? `${r.device} · this device` : r.device })),
        h("td", { class: "c-role", text: r.role }),
        h("td", { class: "c-address num", text: r.address }),
        h("td", { class: "c-seen", text: r.lastSeen }),
        h("td", { class: "c-state", title: r.connection },
          h("span", { class: `state-tag ${r.revoked ? "is-revoked" : r.connections === "none" ? "" : "is-on"}`, text: r.state }),
          !r.revoked && r.connections !== "none" ? h("span", { class: "conn-count", text: r.connections }) : null),
        h("td", { class: "c-action" },
          r.canRevoke
            ? h("button", { type: "button", class: "btn-small btn-danger", dataset: { revoke: r.id }, text: "Revoke", onclick: () => this.askRevoke(d) })
            : null),
      );
    });
    replaceChildren(this.tbody, rows.length ? rows : h("tr", {}, h("td", { colspan: "6", class: "muted", text: "No device has joined yet." })));
  }

  askLock() {
    setText(this.lockErr, "");
    this.lockYes.disabled = false;
    this.lockDialog.hidden = false;
    this.lockNo.focus();
  }

  closeLock() {
    this.lockDialog.hidden = true;
  }

  async lock() {
    this.lockYes.disabled = true;
    try {
      const r = await call("lock_venue");
      this.closeLock();
      const n = (r && r.revoked) || 0;
      setText(this.lockMsg, `Venue locked: new join codes on the host's screen; ${n} ${n === 1 ? "device" : "devices"} signed out.`);
      await this.loadList();
    } catch (e) {
      const err = normalizeError(e);
      setText(this.lockErr, `Not locked: ${err.message || err.code}`);
      this.lockYes.disabled = false;
    }
  }

  askRevoke(d) {
    this.revoking = d;
    setText(this.confirmTitle, revokeQuestion(d));
    setText(this.confirmMsg, "");
    this.confirmYes.disabled = false;
    this.confirm.hidden = false;
    this.confirmNo.focus();
  }

  closeConfirm() {
    this.revoking = null;
    this.confirm.hidden = true;
  }

  async revoke() {
    const d = this.revoking;
    if (!d) return;
    this.confirmYes.disabled = true;
    try {
      const r = await call("device_revoke", { operatorId: d.operator_id });
      this.closeConfirm();
      const msg = revokedMessage(d, r && r.rotated_code);
      setText(this.listMsg, msg);
      await this.loadList();
      setText(this.listMsg, msg);
    } catch (e) {
      const err = normalizeError(e);
      setText(this.confirmMsg, `Not revoked: ${err.message || err.code}`);
      this.confirmYes.disabled = false;
    }
  }
}

customElements.define("pb-devices", PbDevices);
