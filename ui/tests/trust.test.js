import { test } from "node:test";
import assert from "node:assert/strict";
import {
  pairingDigits,
  isPairingCode,
  normalizeJoinCode,
  groupedCode,
  countdown,
  countdownText,
  serverNow,
  agoText,
  who,
  deviceRow,
  sortDevices,
  revokeQuestion,
  revokedMessage,
  auditSentence,
  newestFirst,
  incidentChoices,
  exportText,
} from "../lib/trust.js";

const UTC = 0;

test("a pairing code is six digits however it is typed; a long code is left as typed", () => {
  for (const c of ["123456", " 123 456 ", "123-456", "000001"]) {
    assert.equal(isPairingCode(c), true, c);
    assert.equal(normalizeJoinCode(c).length, 6, c);
  }
  for (const c of ["12345", "1234567", "COORD-4242", "12a456", "", null]) assert.equal(isPairingCode(c), false, String(c));
  assert.equal(normalizeJoinCode("  COORD-4242 "), "COORD-4242");
  assert.equal(pairingDigits("123 456"), "123456");
  assert.equal(groupedCode("123456"), "123 456");
  assert.equal(groupedCode("COORD"), "COORD");
});

test("the countdown to expiry counts whole seconds down to expired", () => {
  const exp = 1_000_000 + 5 * 60_000;
  assert.deepEqual(countdown(exp, 1_000_000), { seconds: 300, text: "5:00", expired: false, urgent: false });
  assert.equal(countdown(exp, exp - 61_500).text, "1:02");
  assert.equal(countdown(exp, exp - 29_000).urgent, true);
  assert.equal(countdown(exp, exp - 1).text, "0:01", "never shows 0:00 while still valid");
  assert.equal(countdown(exp, exp).expired, true);
  assert.equal(countdown(exp, exp + 10_000).seconds, 0);
  assert.equal(countdown(NaN, 0).expired, true);
  assert.equal(countdownText(exp, 1_000_000), "expires in 5:00");
  assert.match(countdownText(exp, exp + 1), /^expired/);
});

test("server time is carried forward by the local clock, whatever the local clock is set to", () => {
  // The laptop is 10 minutes behind; the server said 1,000,000 at local 400,000.
  assert.equal(serverNow(1_000_000, 400_000, 403_000), 1_003_000);
  assert.equal(serverNow(NaN, NaN, 5), 5);
});

test("last seen reads like the floor says it", () => {
  const now = 1_764_700_000_000;
  assert.equal(agoText(now - 3_000, now), "just now");
  assert.equal(agoText(now - 45_000, now), "45 s ago");
  assert.equal(agoText(now - 2 * 60_000 - 5_000, now), "2 min ago");
  assert.equal(agoText(now - 3 * 3_600_000, now), "3 h ago");
  assert.equal(agoText(now - 26 * 3_600_000, now), "1 day ago");
  assert.equal(agoText(now - 50 * 3_600_000, now), "2 days ago");
  assert.equal(agoText(0, now), "never");
  assert.equal(agoText(now + 5_000, now), "just now", "a clock slightly ahead is not 'in the future'");
});

const dev = (over) => ({
  operator_id: "op-2",
  name: "Dan",
  device: "table-4",
  role: "dealer",
  address: "192.168.1.34",
  via: "pairing",
  created_at_ms: 0,
  last_seen_ms: 1_000_000 - 120_000,
  connections: 2,
  revoked: false,
  ...over,
});

test("a device row says who, where, when last seen, how connected, and whether it can be revoked", () => {
  const r = deviceRow(dev(), 1_000_000, "op-1", UTC);
  assert.equal(r.name, "Dan");
  assert.equal(r.device, "table-4");
  assert.equal(r.role, "Dealer");
  assert.equal(r.address, "192.168.1.34");
  assert.equal(r.lastSeen, "2 min ago");
  assert.equal(r.connections, "2 open");
  assert.equal(r.state, "Connected");
  assert.equal(r.connection, "Connected · 2 open");
  assert.equal(r.via, "pairing code");
  assert.equal(r.canRevoke, true);
  const idle = deviceRow(dev({ connections: 0 }), 1_000_000, "op-1", UTC);
  assert.equal(idle.connections, "none");
  assert.equal(idle.state, "Not connected");
  const gone = deviceRow(dev({ revoked: true, revoked_at_ms: Date.UTC(2026, 0, 1, 21, 14, 3), connections: 0 }), 1_000_000, "op-1", UTC);
  assert.equal(gone.state, "Revoked 21:14");
  assert.equal(gone.canRevoke, false, "not twice");
  assert.equal(gone.connections, "—");
  assert.equal(gone.connection, "Revoked 21:14");
  assert.equal(idle.connection, "Not connected");
  const me = deviceRow(dev({ operator_id: "op-1", role: "coordinator" }), 1_000_000, "op-1", UTC);
  assert.equal(me.self, true);
  assert.equal(me.canRevoke, false, "a coordinator cannot cut itself off");
  assert.equal(deviceRow(dev({ role: "display" }), 1_000_000, null, UTC).role, "Display");
});

test("connected devices come first, revoked ones last", () => {
  const list = sortDevices([
    dev({ operator_id: "a", connections: 0, last_seen_ms: 50 }),
    dev({ operator_id: "b", revoked: true, last_seen_ms: 99 }),
    dev({ operator_id: "c", connections: 1, last_seen_ms: 10 }),
    dev({ operator_id: "d", connections: 0, last_seen_ms: 70 }),
  ]);
  assert.deepEqual(list.map((d) => d.operator_id), ["c", "d", "a", "b"]);
});

test("the revoke question names the device, its role and address", () => {
  assert.equal(revokeQuestion(dev()), "Revoke Dan on table-4 (Dealer, 192.168.1.34)?");
  assert.equal(who({ name: "", device: "" }), "Someone");
});

test("an audit entry reads as the floor says it, with the time of day", () => {
  const e = {
    seq: 7,
    name: "Ana",
    device: "laptop-7",
    summary: "added 5:00 to level 2 (12:31 → 17:31 left)",
    at_ms: Date.UTC(2026, 11, 2, 21, 14, 3),
  };
  assert.equal(auditSentence(e, UTC), "Ana on laptop-7 added 5:00 to level 2 (12:31 → 17:31 left) · 21:14:03");
  // Text is the server's verbatim: markup stays text (the DOM gets it as text).
  assert.equal(auditSentence({ ...e, name: "<b>x</b>" }, UTC).startsWith("<b>x</b> on laptop-7"), true);
  assert.equal(auditSentence({ ...e, summary: "" }, UTC), "Ana on laptop-7 made a change · 21:14:03");
  assert.deepEqual(newestFirst([{ seq: 1 }, { seq: 3 }, { seq: 2 }]).map((x) => x.seq), [3, 2, 1]);
});

test("the incident filter lists the event's incidents in the order they were raised", () => {
  const choices = incidentChoices([
    { id: "inc-2", table: "9", kind: "Ruling", created_at_ms: 20 },
    { id: "inc-1", table: "4", kind: "Misdeal", created_at_ms: 10 },
  ]);
  assert.deepEqual(choices, [["", "All changes"], ["inc-1", "Table 4 · Misdeal"], ["inc-2", "Table 9 · Ruling"]]);
});

test("the export says how many changes went where", () => {
  assert.equal(exportText({ path: "/home/ana/Downloads/pitboss-audit-ev-1-20261202-2114.csv", rows: 12 }),
    "Saved 12 changes to /home/ana/Downloads/pitboss-audit-ev-1-20261202-2114.csv");
  assert.equal(exportText({ path: "/x.csv", rows: 1 }), "Saved 1 change to /x.csv");
  assert.equal(exportText(null), "");
});

test("after a revoke the coordinator is told which join code replaced the one the device knew", () => {
  const d = { name: "Dan", device: "table-4", role: "dealer" };
  assert.equal(revokedMessage(d, null), "Revoked Dan on table-4.");
  assert.equal(
    revokedMessage(d, { role: "dealer", code: "QRST-UVWX" }),
    "Revoked Dan on table-4. It had joined with the dealer code, so that code is now QRST-UVWX; devices already joined keep working.",
  );
});
