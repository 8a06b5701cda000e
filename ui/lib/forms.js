// Checks of the small forms (join a venue, create an event, settings) and
// the words for what a command's error means to the person. Pure.

import { isPairingCode, normalizeJoinCode } from "./trust.js";

const chars = (s) => Array.from(String(s ?? "")).length;

/**
 * Join form: an address like 192.168.1.20:7878, pitboss.local:7878 or
 * http://…, and the join code shown on the host. Returns { ok, errors, value }.
 */
export function validateJoin(form) {
  const address = String(form?.address ?? "").trim();
  // A 6-digit pairing code may be typed "123 456"; a long code as shown.
  const code = normalizeJoinCode(form?.code);
  const errors = {};
  if (!address) errors.address = "Enter the host's address, e.g. 192.168.1.20:7878.";
  else if (/\s/.test(address)) errors.address = "An address has no spaces, e.g. 192.168.1.20:7878.";
  else if (chars(address) > 200) errors.address = "That address is too long.";
  else if (!/^(https?:\/\/)?[^/:]+(:\d{1,5})?\/?$/i.test(address)) {
    errors.address = "Use host:port, e.g. 192.168.1.20:7878.";
  } else {
    const port = /:(\d{1,5})\/?$/.exec(address.replace(/^https?:\/\//i, ""));
    if (port && (Number(port[1]) < 1 || Number(port[1]) > 65535)) errors.address = "The port must be between 1 and 65535.";
  }
  if (!code) errors.code = "Enter the join code or the 6-digit pairing code shown on the host.";
  else if (/^[0-9\s-]+$/.test(code) && !isPairingCode(code)) {
    errors.code = "A pairing code has 6 digits.";
  }
  return { ok: Object.keys(errors).length === 0, errors, value: { address, joinCode: code } };
}

/** The one error shape of commands, from whatever the bridge rejected with. */
export function normalizeError(e) {
  if (e && typeof e === "object" && typeof e.code === "string") {
    const out = { code: e.code, message: String(e.message ?? ""), current: e.current ?? null };
    if (Number.isFinite(e.retryAfterMs)) out.retryAfterMs = e.retryAfterMs;
    return out;
  }
  if (e instanceof Error) return { code: "internal", message: e.message, current: null };
  if (typeof e === "string") {
    // A command may reject with the JSON of the error as a string.
    try {
      const parsed = JSON.parse(e);
      if (parsed && typeof parsed.code === "string") return normalizeError(parsed);
    } catch {
      /* a plain message */
    }
    return { code: "internal", message: e, current: null };
  }
  return { code: "internal", message: "Something went wrong.", current: null };
}

/** What a failed join means, in a sentence for the person at the screen. */
export function joinErrorText(e, address, code) {
  const err = normalizeError(e);
  switch (err.code) {
    case "unauthorized":
      if (isPairingCode(code)) {
        return "That pairing code was not accepted — it may have expired or been used already. Ask the coordinator for a new one.";
      }
      return "Wrong join code — check the code shown on the host (coordinator, dealer or display).";
    case "rate_limited": {
      const s = Math.max(1, Math.ceil((Number(err.retryAfterMs) || 0) / 1000));
      return `Too many tries from this device — wait ${s} s and try again.`;
    }
    case "signed_out":
      return err.message || "This device is signed out; join again with a new code.";
    case "pairing_failed":
      return err.message || "The pairing did not check out. Ask the coordinator for a new code.";
    case "key_changed":
      return `The server at ${address || "this address"} is not the host this device joined: its key changed. Nothing was sent to it. If the host was reinstalled, compare the key on its header, tick "The host was reinstalled" and join again.`;
    case "offline":
      return `Cannot reach ${address || "the host"}: is it running and on this network?${err.message ? ` (${err.message})` : ""}`;
    case "invalid":
      return err.message || "Check the address and the code.";
    default:
      return err.message || "Could not join the venue.";
  }
}

export const MAX_EVENT_NAME = 120;
const MAX_CHIPS = 1_000_000_000_000;

function wholeNumber(text) {
  const t = String(text ?? "").replace(/[\s,]/g, "");
  if (!/^\d+$/.test(t)) return NaN;
  return Number(t);
}

/** Create-event form: name, template, starting stack, buy-in. */
export function validateCreateEvent(form, templates) {
  const name = String(form?.name ?? "").trim();
  const templateId = String(form?.templateId ?? "");
  const startingStack = wholeNumber(form?.startingStack);
  const buyIn = wholeNumber(form?.buyIn);
  const errors = {};
  if (!name) errors.name = "Give the event a name.";
  else if (chars(name) > MAX_EVENT_NAME) errors.name = `The name is at most ${MAX_EVENT_NAME} characters.`;
  if (!templateId) errors.templateId = "Choose a structure.";
  else if (Array.isArray(templates) && !templates.some((t) => t.id === templateId)) {
    errors.templateId = "Choose one of the structures listed.";
  }
  if (!Number.isFinite(startingStack) || startingStack <= 0) errors.startingStack = "The starting stack is a whole number of chips above 0.";
  else if (startingStack > MAX_CHIPS) errors.startingStack = "That starting stack is too large.";
  if (!Number.isFinite(buyIn)) errors.buyIn = "The buy-in is a whole number (0 for a freeroll).";
  else if (buyIn > MAX_CHIPS) errors.buyIn = "That buy-in is too large.";
  return {
    ok: Object.keys(errors).length === 0,
    errors,
    value: { name, templateId, startingStack, buyIn },
  };
}

export const DEFAULT_SETTINGS = Object.freeze({
  serverAddress: "",
  operatorName: "",
  deviceName: "",
  soundOn: true,
  volume: 0.8,
  alerts: Object.freeze({ levelChange: true, oneMinute: true, breaks: true }),
  theme: "dark",
});

/**
 * Settings to send: the current ones with the form's changes over them
 * (fields the form does not show, like serverAddress, are kept). Volume
 * comes from a 0–100 slider. Returns { ok, errors, settings }.
 */
export function settingsFrom(current, changes) {
  const base = { ...DEFAULT_SETTINGS, ...(current || {}) };
  const c = changes || {};
  const s = {
    ...base,
    ...c,
    alerts: { ...DEFAULT_SETTINGS.alerts, ...(base.alerts || {}), ...(c.alerts || {}) },
  };
  s.operatorName = String(s.operatorName ?? "").trim();
  s.deviceName = String(s.deviceName ?? "").trim();
  s.serverAddress = String(s.serverAddress ?? "").trim();
  s.soundOn = Boolean(s.soundOn);
  if (c.volumePercent !== undefined) s.volume = Number(c.volumePercent) / 100;
  delete s.volumePercent;
  s.volume = Math.round(Number(s.volume) * 100) / 100;
  const errors = {};
  if (chars(s.operatorName) > 60) errors.operatorName = "The operator name is at most 60 characters.";
  if (chars(s.deviceName) > 60) errors.deviceName = "The device name is at most 60 characters.";
  if (!Number.isFinite(s.volume) || s.volume < 0 || s.volume > 1) errors.volume = "The volume is between 0 and 100.";
  if (s.theme !== "dark" && s.theme !== "light") errors.theme = "Choose dark or light.";
  return { ok: Object.keys(errors).length === 0, errors, settings: s };
}

/** The sound check's answer in words. */
export function soundCheckText(result) {
  if (!result) return "";
  if (result.available === false) return `Sound unavailable: ${result.message || "no audio device"}`;
  return "Sound OK — you should have heard two beeps.";
}
