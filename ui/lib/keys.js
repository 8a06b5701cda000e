// Keyboard shortcuts of the console: Space starts or pauses, + and − move
// the clock by one minute. Never while the person is typing in a field.

const TYPING_TAGS = new Set(["INPUT", "TEXTAREA", "SELECT"]);
// Input types that are buttons rather than text fields.
const NON_TEXT_INPUTS = new Set(["button", "submit", "reset", "checkbox", "radio", "range", "color", "file", "image"]);

/** True when keystrokes on `target` are someone typing (or choosing) a value. */
export function isTyping(target) {
  if (!target) return false;
  if (target.isContentEditable) return true;
  const tag = String(target.tagName || "").toUpperCase();
  if (tag === "INPUT") {
    return !NON_TEXT_INPUTS.has(String(target.type || "text").toLowerCase());
  }
  return TYPING_TAGS.has(tag);
}

/**
 * The console action for a keydown, or null: "toggle" (Space), "plus" (+ or
 * =, the unshifted key), "minus" (- or the numeric keypad's). Keys with
 * Ctrl, Alt or Meta are left alone (browser and system shortcuts), and so is
 * auto-repeat, so holding a key never fires twenty adjustments.
 */
export function shortcutFor(e) {
  if (!e || e.ctrlKey || e.altKey || e.metaKey || e.repeat) return null;
  if (isTyping(e.target)) return null;
  switch (e.key) {
    case " ":
    case "Spacebar":
      return "toggle";
    case "+":
    case "=":
    case "Add":
      return "plus";
    case "-":
    case "−":
    case "Subtract":
      return "minus";
    default:
      return null;
  }
}

/** The op a shortcut sends, given whether the clock runs now. */
export function opForShortcut(action, running) {
  switch (action) {
    case "toggle":
      return { type: running ? "clock.pause" : "clock.start" };
    case "plus":
      return { type: "clock.adjust", delta_ms: 60_000 };
    case "minus":
      return { type: "clock.adjust", delta_ms: -60_000 };
    default:
      return null;
  }
}
