// Which buttons a role may use, and why not. Mirrors pitboss_core::Role::may
// so a dealer never gets a button the server would refuse; the server still
// decides (a role the UI does not know is sent through and checked there).

/** Ops only a coordinator may send; everything else is for every role. */
export const COORDINATOR_OPS = Object.freeze([
  "clock.start",
  "clock.pause",
  "clock.adjust",
  "clock.set_level",
  "structure.update",
]);

/** UI actions that are not ops but are coordinator-only too. */
export const COORDINATOR_ACTIONS = Object.freeze(["event.create", "devices.manage", "audit.read"]);

/** What a wall screen is told when it would change something. */
export const DISPLAY_REASON = "This screen joined as a display: it shows the clock and the board and changes nothing.";

const CLOCK_OPS = ["clock.start", "clock.pause", "clock.adjust", "clock.set_level"];

export function isCoordinatorOnly(action) {
  return COORDINATOR_OPS.includes(action) || COORDINATOR_ACTIONS.includes(action);
}

/**
 * Whether `role` may use `action` (an op type or a UI action), and if not,
 * a sentence saying why, for the button's title and the small text by it.
 * `ctx` may carry { mode, status } so clock controls on a joined device say
 * they need a live connection (the shell refuses them otherwise).
 */
export function permission(role, action, ctx = {}) {
  // A display sends nothing at all (pitboss_core::Role::Display.may is false).
  if (role === "display") return { allowed: false, reason: DISPLAY_REASON };
  if (isCoordinatorOnly(action) && role !== "coordinator") {
    if (role === "dealer") {
      return {
        allowed: false,
        reason: reasonForDealer(action),
      };
    }
    return {
      allowed: false,
      reason: "Your role is not known yet: reconnect to the host to use coordinator controls.",
    };
  }
  if (
    CLOCK_OPS.includes(action) &&
    ctx.mode === "join" &&
    !(ctx.status && ctx.status.state === "live")
  ) {
    return {
      allowed: false,
      reason: "Clock controls need a live connection to the host; reconnecting…",
    };
  }
  return { allowed: true, reason: "" };
}

function reasonForDealer(action) {
  if (action === "structure.update") {
    return "Only a coordinator can edit the structure. This device joined with the dealer code.";
  }
  if (action === "event.create") {
    return "Only a coordinator can create events. This device joined with the dealer code.";
  }
  if (action === "devices.manage" || action === "audit.read") {
    return "Only a coordinator can pair devices and read the audit trail.";
  }
  return "Only a coordinator can run the clock. This device joined with the dealer code.";
}

/** "Coordinator", "Dealer", "Display" or "Unknown role". */
export function roleLabel(role) {
  if (role === "coordinator") return "Coordinator";
  if (role === "dealer") return "Dealer";
  if (role === "display") return "Display";
  return "Unknown role";
}

/**
 * The screens a role gets in the navigation. A display sees the clock and
 * the board only (and its settings); Devices and Audit are the
 * coordinator's; an unknown role (not yet told by the server) sees what a
 * dealer sees, and the server decides the rest.
 */
export function screensFor(role) {
  if (role === "display") return ["console", "incidents", "events", "settings"];
  const base = ["console", "structure", "incidents", "events", "settings"];
  if (role === "coordinator") return ["console", "structure", "incidents", "devices", "audit", "events", "settings"];
  return base;
}

/**
 * Which groups of controls a role's screens carry at all (hidden, not
 * merely disabled: a wall screen has no buttons to read from across a room).
 * { clockControls, tableControls, incidentForm, incidentActions, history }.
 */
export function controlsFor(role) {
  const display = role === "display";
  return {
    clockControls: !display,
    tableControls: !display,
    incidentForm: !display,
    incidentActions: !display,
    history: role === "coordinator",
  };
}
