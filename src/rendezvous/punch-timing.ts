/**
 * When each side of a punch starts. Both peers should send their first packets at about the
 * same moment, so that each one's outgoing packet opens its own NAT's mapping before the other
 * side's packet arrives there (RFC 5128 §3.3: simultaneous transmission). The server knows its
 * RTT to each peer; a `punch` message takes about RTT/2 to arrive. Sending both at time T and
 * telling each side to wait `D - RTT/2` (D = the larger one-way time plus a margin) makes both
 * start at about T + D: the farther peer gets the smaller delay.
 *
 * Same idea as libp2p DCUtR, which measures RTT over the relay and has the near side wait RTT/2
 * before dialling (@see https://github.com/libp2p/specs/blob/master/relay/DCUtR.md), here done
 * by the server for both sides at once. Measurements (libp2p's 2022 hole-punching campaign)
 * found success not very sensitive to timing, so estimates need not be exact.
 */

/** A smoothed RTT: first sample as is, then SRTT = 7/8 SRTT + 1/8 R. @see RFC 6298 §2.2–2.3 */
export class RttEstimator {
  #srtt: number | undefined;

  sample(rttMs: number): void {
    if (!(rttMs >= 0) || !Number.isFinite(rttMs)) return;
    this.#srtt = this.#srtt === undefined ? rttMs : (7 * this.#srtt + rttMs) / 8;
  }

  /** The smoothed RTT in ms, or undefined before the first sample. */
  get srtt(): number | undefined {
    return this.#srtt;
  }
}

export interface StartTimingOptions {
  /** Added to the larger one-way time: slack for jitter and for processing (default 50 ms). */
  marginMs?: number;
  /** RTT assumed for a side not yet measured (default 200 ms). */
  defaultRttMs?: number;
  /** Upper bound on any delay (default 5000 ms): a wildly wrong RTT must not stall a punch. */
  maxDelayMs?: number;
}

/** Delays (ms) to put in the two `punch` messages, for sides with smoothed RTTs `rttA` and `rttB`. */
export function startDelays(rttA: number | undefined, rttB: number | undefined, options: StartTimingOptions = {}): [number, number] {
  const margin = options.marginMs ?? 50;
  const fallback = options.defaultRttMs ?? 200;
  const max = options.maxDelayMs ?? 5000;
  const oneWayA = Math.min((rttA ?? fallback) / 2, max);
  const oneWayB = Math.min((rttB ?? fallback) / 2, max);
  const at = Math.max(oneWayA, oneWayB) + margin;
  const delay = (oneWay: number): number => Math.max(0, Math.min(max, Math.round(at - oneWay)));
  return [delay(oneWayA), delay(oneWayB)];
}
