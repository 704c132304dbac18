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

/**
 * What the delays cannot fix, and so what no margin is for. Each side starts at its own
 * arrival time plus its delay, so a margin common to both shifts both starts alike: it does not
 * make them any closer. Nor can it absorb an error in the one-way estimates (a `punch` that takes
 * longer than RTT/2 starts that side late by the difference, margin or not). It would only let
 * the farther side finish processing the punch (verifying it, opening the check session: 5–10
 * ms each side in the lab, bench/README.md) before its start, and both sides do the same
 * processing. A start skew is also cheap: the early side's first checks reach a NAT that has not
 * opened yet and are dropped (RFC 4787 §5 filtering), but its own NAT is open by then, so the
 * late side's checks get through and are answered at once with a triggered check (RFC 8445
 * §7.3.1.4): the connection comes the skew later, not lost. A margin, though, delays every
 * punch. So the default margin is 0 (it used to be a flat 50 ms).
 */
export const DEFAULT_START_MARGIN_MS = 0;

export interface StartTimingOptions {
  /** Added to the larger one-way time (default DEFAULT_START_MARGIN_MS). */
  marginMs?: number;
  /**
   * RTT assumed for a side not yet measured. Default: the other side's (with nothing known, no
   * side is told to wait for the other); 0 when neither is measured (then the delays are equal).
   */
  defaultRttMs?: number;
  /** Upper bound on any delay (default 5000 ms): a wildly wrong RTT must not stall a punch. */
  maxDelayMs?: number;
}

/** Delays (ms) to put in the two `punch` messages, for sides with smoothed RTTs `rttA` and `rttB`. */
export function startDelays(rttA: number | undefined, rttB: number | undefined, options: StartTimingOptions = {}): [number, number] {
  const margin = options.marginMs ?? DEFAULT_START_MARGIN_MS;
  const max = options.maxDelayMs ?? 5000;
  const oneWayA = Math.min((rttA ?? options.defaultRttMs ?? rttB ?? 0) / 2, max);
  const oneWayB = Math.min((rttB ?? options.defaultRttMs ?? rttA ?? 0) / 2, max);
  const at = Math.max(oneWayA, oneWayB) + margin;
  const delay = (oneWay: number): number => Math.max(0, Math.min(max, Math.round(at - oneWay)));
  return [delay(oneWayA), delay(oneWayB)];
}
