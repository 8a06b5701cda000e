// Tiny DOM helpers. Text always goes in as text (textContent or text
// nodes), never as markup: incident notes are user text and may hold
// <script>, quotes or SQL, and they must show exactly as typed.

const PROPS = new Set(["value", "checked", "disabled", "hidden", "readOnly", "selected", "min", "max", "step"]);

/**
 * h("button", {id: "x", class: "big", text: "Start", onclick: f}, ...children)
 * Strings among the children become text nodes.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = String(v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Sets text only when it differs, so a 250 ms clock does not churn the DOM. */
export function setText(el, text) {
  const t = String(text ?? "");
  if (el && el.textContent !== t) el.textContent = t;
}

/** Sets an attribute only when it differs (null removes it). */
export function setAttr(el, name, value) {
  if (!el) return;
  if (value == null || value === false) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else {
    const v = value === true ? "" : String(value);
    if (el.getAttribute(name) !== v) el.setAttribute(name, v);
  }
}

/** Enables or disables a control, with the reason as its tooltip. */
export function setAllowed(el, allowed, reason) {
  if (!el) return;
  el.disabled = !allowed;
  setAttr(el, "title", allowed ? el.dataset.hint || null : reason);
  setAttr(el, "aria-disabled", allowed ? null : "true");
}

/** Replaces all children. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A labelled field: <label><span>Label</span>control<small error></label>. */
export function field(label, control, errorId) {
  return h(
    "label",
    { class: "field" },
    h("span", { class: "field-label", text: label }),
    control,
    h("small", { class: "field-error", id: errorId || null, role: "alert" }),
  );
}

/** Shows per-field errors under their controls; clears the rest. */
export function showErrors(root, errors, map) {
  for (const [key, inputId] of Object.entries(map)) {
    const input = root.querySelector(`#${inputId}`);
    if (!input) continue;
    const small = input.closest(".field")?.querySelector(".field-error");
    const msg = (errors && errors[key]) || "";
    if (small) setText(small, msg);
    setAttr(input, "aria-invalid", msg ? "true" : null);
  }
}

/** A select's options from [value, label] pairs, keeping the chosen value if it still exists. */
export function setOptions(select, pairs) {
  const keep = select.value;
  select.replaceChildren(...pairs.map(([v, l]) => h("option", { value: v, text: l })));
  if (pairs.some(([v]) => v === keep)) select.value = keep;
}
