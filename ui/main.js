// The read-only clock window: renders what the Rust side computes and
// pushes; decides nothing about where the clock is (ARCHITECTURE rule 6).
import { formatClock, formatCount, formatBlinds, clockStatus } from "./format.js";

const tauri = window.__TAURI__;
const $ = (id) => document.getElementById(id);

function render(view) {
  const root = $("clock");
  const status = clockStatus(view);
  $("status").textContent = status;
  if (!view) {
    root.dataset.state = "waiting";
    return;
  }
  root.dataset.state = view.finished ? "finished" : view.running ? "running" : "paused";
  root.dataset.break = String(view.isBreak);
  $("event-name").textContent = view.eventName;
  $("level-title").textContent = view.title;
  $("time").textContent = formatClock(view.remainingMs);
  $("blinds").textContent = view.isBreak ? "" : formatBlinds(view.blinds);
  $("note").textContent = view.note || "";
  $("next").textContent = view.nextTitle
    ? `${view.nextTitle}${view.nextBlinds ? " · " + formatBlinds(view.nextBlinds) : ""}`
    : "Last level";
  if (view.isBreak) {
    $("break-label").textContent = "Play resumes in";
    $("break-in").textContent = formatClock(view.remainingMs);
  } else {
    $("break-label").textContent = "Break in";
    $("break-in").textContent = view.untilBreakMs == null ? "No break left" : formatClock(view.untilBreakMs);
  }
  const s = view.stats;
  $("players").textContent = `${formatCount(s.players_remaining)} / ${formatCount(s.entries)}`;
  $("entries").textContent = formatCount(s.entries);
  $("avg").textContent = formatCount(s.average_stack);
  $("pool").textContent = formatCount(s.prize_pool);
  document.title = `${formatClock(view.remainingMs)} · ${view.title} — Pitboss`;
}

function renderHost(h) {
  const port = h.address.split(":").pop();
  $("host").innerHTML = "";
  const parts = [
    ["Port", port],
    ["Coordinator", h.coordinatorCode],
    ["Dealer", h.dealerCode],
  ];
  parts.forEach(([label, value], i) => {
    if (i) $("host").append(" · ");
    $("host").append(`${label} `);
    const b = document.createElement("strong");
    b.textContent = value;
    $("host").append(b);
  });
}

async function boot() {
  if (!tauri) {
    $("event-name").textContent = "This page runs inside the Pitboss app.";
    return;
  }
  await tauri.event.listen("clock://view", (e) => render(e.payload));
  renderHost(await tauri.core.invoke("host_info"));
  render(await tauri.core.invoke("clock_view"));
}

boot().catch((e) => {
  $("status").textContent = `Error: ${e}`;
});
