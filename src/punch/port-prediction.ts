/**
 * Port prediction for NATs that hand out mappings from a counter (RFC 4787 §4.2.1 calls it
 * port allocation; "sequential" in `natpunch check`). Behind such a NAT with address-and-port-
 * dependent mapping (symmetric-seq), the mapping this peer's socket gets toward the other peer
 * is not the server-reflexive one the server saw, so the other peer cannot aim at it — but it is
 * the counter's next value, give or take the flows other hosts open meanwhile. Guha & Francis
 * (NATBlaster; "Characterization and Measurement of TCP Traversal through NATs and Firewalls",
 * 2005) and the 2005 P2P-NAT paper §5.1 describe it; Takeda et al. (draft-takeda-symmetric-nat-
 * traversal) the window the other side probes.
 *
 * How the window is found, without guessing at what the counter did since start-up: right before
 * signing an intent or accept, one Binding from a fresh socket to the STUN server (`sample`) —
 * a new flow, so it takes the counter's current value p — and the punching socket's first new
 * flows, moments later, take p + delta, p + 2·delta, … The other peer probes that window
 * (PREDICTION_WINDOW values); the candidate carries it as its signed `range`, so no port outside
 * it is ever probed (src/punch/candidate.ts PREDICTION_BUDGET).
 *
 * A counter shared by the whole NAT (the lab's `numgen inc`, most home routers) is what makes a
 * fresh socket's sample say anything about the punching socket's next flow. A NAT with one
 * counter per internal endpoint is not predicted this way; its peer falls back to the relay.
 */
import { classifyPortAllocation } from '../nat/behaviour.js';
import { PREDICTION_BUDGET, type PortRange } from './candidate.js';

/**
 * Counter values the other side probes. The punching socket's own flows come first: one per
 * remote candidate it checks (a host candidate of the other LAN, then its srflx: 2–3) and, under
 * `--transport auto`, the TCP punch's connections from the same NAT (1–2). Sixteen leaves room
 * for a dozen flows of other hosts during one punch, at a quarter of PREDICTION_BUDGET.maxWindow.
 */
export const PREDICTION_WINDOW = 16;

/** Fresh-socket samples at start-up: enough for classifyPortAllocation's 3/4 rule to mean something. */
export const CLASSIFY_SAMPLES = 4;

/** What start-up learned about this NAT's port allocation; only `sequential` is predicted. */
export type AllocationPattern = { kind: 'sequential'; delta: number } | { kind: 'other' };

/**
 * Classifies the NAT from `samples` fresh-socket Bindings (local port, mapped port). Port
 * preservation and random ports are `other`; so is a pattern seen in fewer than 3 samples.
 */
export function patternOf(samples: readonly { local: number; mapped: number }[]): AllocationPattern {
  if (samples.length < 3) return { kind: 'other' };
  const found = classifyPortAllocation([...samples]);
  return found?.allocation === 'sequential' && found.delta !== undefined ? { kind: 'sequential', delta: found.delta } : { kind: 'other' };
}

/**
 * The window the punching socket's next flows will take, given `sampled`: the mapped port a
 * fresh socket just got. The guess is the first value after it; the range covers the next
 * PREDICTION_WINDOW values in the direction the counter moves, clipped to 1–65535.
 */
export function predictWindow(sampled: number, delta: number, window = PREDICTION_WINDOW): { port: number; range: PortRange } | undefined {
  if (!Number.isInteger(delta) || delta === 0 || !Number.isInteger(window) || window < 1) return undefined;
  // The range is contiguous: with a step of several ports, fewer counter values fit the budget.
  window = Math.min(window, Math.floor(PREDICTION_BUDGET.maxWindow / Math.abs(delta)));
  if (window < 1) return undefined;
  const first = sampled + delta;
  const last = sampled + delta * window;
  const low = Math.max(1, Math.min(first, last));
  const high = Math.min(65_535, Math.max(first, last));
  if (first < 1 || first > 65_535 || low > high) return undefined;
  return { port: first, range: { first: low, last: high } };
}
