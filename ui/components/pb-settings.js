// Settings: names, sound and alerts, theme, the sound check, and leaving the
// venue. Each change is saved at once with set_settings (the shell keeps
// them in its store, so they survive a restart).

import { store, call, takeApp, reportError } from "../app.js";
import { settingsFrom, soundCheckText, normalizeError } from "../lib/forms.js";
import { h, setText, field, showErrors } from "./dom.js";

class PbSettings extends HTMLElement {
  connectedCallback() {
    if (this.built) return;
    this.built = true;
    this.classList.add("screen", "settings");
    const save = () => this.save();
    this.operator = h("input", { id: "settings-operator", type: "text", maxlength: "60", onchange: save });
    this.device = h("input", { id: "settings-device", type: "text", maxlength: "60", onchange: save });
    this.soundOn = h("input", { id: "settings-sound-on", type: "checkbox", onchange: save });
    this.volume = h("input", { id: "settings-volume", type: "range", min: "0", max: "100", step: "5", onchange: save, oninput: () => this.showVolume() });
    this.volumeText = h("output", { id: "settings-volume-value", for: "settings-volume" });
    this.alertLevel = h("input", { id: "settings-alert-level", type: "checkbox", onchange: save });
    this.alertMinute = h("input", { id: "settings-alert-minute", type: "checkbox", onchange: save });
    this.alertBreaks = h("input", { id: "settings-alert-breaks", type: "checkbox", onchange: save });
    this.themeDark = h("input", { id: "settings-theme-dark", type: "radio", name: "theme", value: "dark", onchange: save });
    this.themeLight = h("input", { id: "settings-theme-light", type: "radio", name: "theme", value: "light", onchange: save });
    this.saved = h("p", { id: "settings-saved", class: "hint", role: "status" });
    this.checkBtn = h("button", { type: "button", id: "sound-check", text: "Sound check", onclick: () => this.soundCheck() });
    this.checkResult = h("p", { id: "sound-check-result", role: "status" });
    this.leaveBtn = h("button", { type: "button", id: "leave-venue", class: "btn-danger", text: "Leave this venue", onclick: () => this.leave() });
    this.leaveText = h("p", { id: "leave-text", class: "hint" });
    const check = (input, label) => h("label", { class: "check" }, input, h("span", { text: label }));
    this.venue = h("section", { class: "panel" },
      h("h2", { text: "Venue" }),
      this.leaveText,
      this.leaveBtn);
    this.append(
      h("div", { class: "settings-grid" },
        h("section", { class: "panel" },
          h("h2", { text: "This device" }),
          field("Your name", this.operator),
          field("Device name", this.device),
          h("fieldset", { class: "theme" },
            h("legend", { text: "Theme" }),
            check(this.themeDark, "Dark"),
            check(this.themeLight, "Light"))),
        h("section", { class: "panel" },
          h("h2", { text: "Sound" }),
          check(this.soundOn, "Play alerts on this device"),
          h("label", { class: "field" }, h("span", { class: "field-label" }, "Volume ", this.volumeText), this.volume, h("small", { class: "field-error" })),
          h("fieldset", {},
            h("legend", { text: "Alerts" }),
            check(this.alertLevel, "Level change"),
            check(this.alertMinute, "One minute left"),
            check(this.alertBreaks, "Breaks (start and end)")),
          h("div", { class: "row" }, this.checkBtn),
          this.checkResult),
        this.venue),
      this.saved,
    );
    this.confirmLeave = false;
    store.subscribe((m, p) => {
      if (!p || m.app !== p.app) this.fill(m);
    });
    this.fill(store.get());
  }

  fill(m) {
    const s = m.app && m.app.settings;
    this.venue.hidden = !(m.app && m.app.mode !== "none");
    setText(
      this.leaveText,
      m.app && m.app.mode === "host"
        ? "This device hosts the venue. Leaving goes back to the first screen; the server keeps running for the other devices until the app quits."
        : "Back to the first screen, to join another venue or host one.",
    );
    if (!s) return;
    const set = (input, prop, v) => {
      if (document.activeElement !== input) input[prop] = v;
    };
    set(this.operator, "value", s.operatorName || "");
    set(this.device, "value", s.deviceName || "");
    set(this.soundOn, "checked", Boolean(s.soundOn));
    set(this.volume, "value", String(Math.round((s.volume ?? 0.8) * 100)));
    const a = s.alerts || {};
    set(this.alertLevel, "checked", a.levelChange !== false);
    set(this.alertMinute, "checked", a.oneMinute !== false);
    set(this.alertBreaks, "checked", a.breaks !== false);
    this.themeDark.checked = s.theme !== "light";
    this.themeLight.checked = s.theme === "light";
    this.showVolume();
    const sound = m.app.sound;
    if (sound && sound.available === false && !this.checkResult.textContent) setText(this.checkResult, soundCheckText(sound));
  }

  showVolume() {
    setText(this.volumeText, `${this.volume.value}%`);
  }

  async save() {
    const m = store.get();
    const r = settingsFrom(m.app && m.app.settings, {
      operatorName: this.operator.value,
      deviceName: this.device.value,
      soundOn: this.soundOn.checked,
      volumePercent: this.volume.value,
      alerts: { levelChange: this.alertLevel.checked, oneMinute: this.alertMinute.checked, breaks: this.alertBreaks.checked },
      theme: this.themeLight.checked ? "light" : "dark",
    });
    showErrors(this, r.errors, { operatorName: "settings-operator", deviceName: "settings-device", volume: "settings-volume" });
    if (!r.ok) return;
    // The theme shows at once, before the shell answers.
    document.documentElement.dataset.theme = r.settings.theme;
    try {
      const saved = await call("set_settings", { settings: r.settings });
      if (m.app) takeApp({ ...store.get().app, settings: saved || r.settings });
      setText(this.saved, "Saved.");
    } catch (e) {
      setText(this.saved, `Not saved: ${normalizeError(e).message}`);
    }
  }

  async soundCheck() {
    this.checkBtn.disabled = true;
    setText(this.checkResult, "Playing…");
    try {
      const r = await call("sound_check");
      setText(this.checkResult, soundCheckText(r));
      const app = store.get().app;
      if (app && r) takeApp({ ...app, sound: r });
    } catch (e) {
      setText(this.checkResult, `Sound unavailable: ${normalizeError(e).message}`);
    } finally {
      this.checkBtn.disabled = false;
    }
  }

  async leave() {
    if (!this.confirmLeave) {
      this.confirmLeave = true;
      setText(this.leaveBtn, "Click again to leave");
      setTimeout(() => {
        this.confirmLeave = false;
        setText(this.leaveBtn, "Leave this venue");
      }, 4000);
      return;
    }
    this.confirmLeave = false;
    setText(this.leaveBtn, "Leave this venue");
    try {
      takeApp(await call("leave_venue"));
    } catch (e) {
      reportError("Could not leave the venue", e);
    }
  }
}

customElements.define("pb-settings", PbSettings);
