import { test } from "node:test";
import assert from "node:assert/strict";
import { shortcutFor, opForShortcut, isTyping } from "../lib/keys.js";

const body = { tagName: "BODY" };
const key = (k, over = {}) => ({ key: k, target: body, ...over });

test("space, plus and minus are the console's shortcuts", () => {
  assert.equal(shortcutFor(key(" ")), "toggle");
  assert.equal(shortcutFor(key("+")), "plus");
  assert.equal(shortcutFor(key("=")), "plus");
  assert.equal(shortcutFor(key("Add")), "plus");
  assert.equal(shortcutFor(key("-")), "minus");
  assert.equal(shortcutFor(key("Subtract")), "minus");
  assert.equal(shortcutFor(key("a")), null);
  assert.equal(shortcutFor(null), null);
});

test("no shortcut while typing in a field", () => {
  for (const target of [
    { tagName: "INPUT", type: "text" },
    { tagName: "INPUT", type: "number" },
    { tagName: "INPUT" },
    { tagName: "TEXTAREA" },
    { tagName: "SELECT" },
    { tagName: "DIV", isContentEditable: true },
  ]) {
    assert.equal(shortcutFor(key(" ", { target })), null, JSON.stringify(target));
    assert.equal(shortcutFor(key("+", { target })), null);
  }
  assert.equal(isTyping({ tagName: "INPUT", type: "checkbox" }), false);
  assert.equal(isTyping({ tagName: "BUTTON" }), false);
  assert.equal(isTyping(null), false);
  assert.equal(shortcutFor(key(" ", { target: { tagName: "BUTTON" } })), "toggle");
});

test("modifier keys and auto-repeat are left alone", () => {
  assert.equal(shortcutFor(key("+", { ctrlKey: true })), null);
  assert.equal(shortcutFor(key("-", { metaKey: true })), null);
  assert.equal(shortcutFor(key(" ", { altKey: true })), null);
  assert.equal(shortcutFor(key("+", { repeat: true })), null);
});

test("each shortcut sends the API's op", () => {
  assert.deepEqual(opForShortcut("toggle", true), { type: "clock.pause" });
  assert.deepEqual(opForShortcut("toggle", false), { type: "clock.start" });
  assert.deepEqual(opForShortcut("plus", true), { type: "clock.adjust", delta_ms: 60000 });
  assert.deepEqual(opForShortcut("minus", false), { type: "clock.adjust", delta_ms: -60000 });
  assert.equal(opForShortcut("nope", false), null);
});
