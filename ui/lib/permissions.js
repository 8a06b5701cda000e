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
export const COORDINATOR_ACTIONS = Object.freeze(["event.create"]);

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
  return "Only a coordinator can run the clock. This device joined with the dealer code.";
}

/** "Coordinator", "Dealer" or "Unknown role". */
export function roleLabel(role) {
  if (role === "coordinator") return "Coordinator";
  if (role === "dealer") return "Dealer";
  return "Unknown role";
}
