/**
 * When NAT-PMP and PCP requests are sent again. Both run over UDP to the gateway with no
 * transport-level retry; the client repeats the request until an answer or its budget runs out.
 * A budget option bounds both, so a peer can spend at most so long asking at start-up.
 * @see RFC 6886 §3.1, RFC 6887 §8.1.1
 */

export interface Schedule {
  /** Offsets in ms from the first transmission at which the request is (re)sent; sends[0] === 0. */
  sends: number[];
  /** Offset in ms at which the exchange gives up. */
  deadline: number;
}

/** NAT-PMP: first wait 250 ms, then double, 9 transmissions in all (~64 s for the last wait). @see RFC 6886 §3.1 */
export const NAT_PMP_INITIAL_MS = 250;
export const NAT_PMP_TRIES = 9;

/** PCP: IRT 3 s, MRT 1024 s, MRC and MRD 0 (unbounded: the budget bounds them), RAND ±0.1. @see RFC 6887 §8.1.1 */
export const PCP_IRT_MS = 3_000;
export const PCP_MRT_MS = 1_024_000;

export interface ScheduleOptions {
  /** Give up this many ms after the first transmission, even mid-schedule. */
  budgetMs?: number;
}

/**
 * "The client ... waits 250 ms for a response. If no NAT-PMP response is received from the
 * gateway after 250 ms, the client retransmits its request and waits 500 ms. The client SHOULD
 * repeat this process with the interval between attempts doubling each time. If, after sending
 * its ninth attempt (and then waiting for 64 seconds), the client has still not received a
 * response, then it SHOULD conclude that this gateway does not support NAT Port Mapping."
 * @see RFC 6886 §3.1
 */
export function natPmpSchedule(options: ScheduleOptions & { initialMs?: number; tries?: number } = {}): Schedule {
  const initial = options.initialMs ?? NAT_PMP_INITIAL_MS;
  const tries = options.tries ?? NAT_PMP_TRIES;
  if (!(initial > 0) || !Number.isInteger(tries) || tries < 1) throw new RangeError(`NAT-PMP schedule: initialMs ${initial}, tries ${tries}; expected initialMs > 0 and an integer tries >= 1`);
  const sends: number[] = [];
  let at = 0;
  for (let i = 0, wait = initial; i < tries; i++, wait *= 2) {
    sends.push(at);
    at += wait;
  }
  return bounded({ sends, deadline: at }, options.budgetMs);
}

/**
 * RT = (1 + RAND) × IRT, then RT = (1 + RAND) × MIN(2 × RTprev, MRT), RAND uniform in
 * [-0.1, +0.1]; MRC = MRD = 0 means no limit of its own, so `budgetMs` (default 60 s) ends it.
 * @see RFC 6887 §8.1.1 (and RFC 3315 §14, whose algorithm it borrows)
 */
export function pcpSchedule(options: ScheduleOptions & { irtMs?: number; random?: () => number } = {}): Schedule {
  const irt = options.irtMs ?? PCP_IRT_MS;
  const budget = options.budgetMs ?? 60_000;
  const random = options.random ?? Math.random;
  if (!(irt > 0) || !(budget > 0)) throw new RangeError(`PCP schedule: irtMs ${irt}, budgetMs ${budget}; expected both > 0`);
  const rand = (): number => random() * 0.2 - 0.1;
  const sends: number[] = [];
  let at = 0;
  let rt = (1 + rand()) * irt;
  while (at < budget) {
    sends.push(at);
    at += rt;
    rt = (1 + rand()) * Math.min(2 * rt, PCP_MRT_MS);
  }
  return { sends, deadline: budget };
}

function bounded(schedule: Schedule, budgetMs: number | undefined): Schedule {
  if (budgetMs === undefined) return schedule;
  if (!(budgetMs > 0)) throw new RangeError(`retransmission budget ${budgetMs} ms; expected > 0`);
  return { sends: schedule.sends.filter((at) => at < budgetMs), deadline: Math.min(schedule.deadline, budgetMs) };
}
