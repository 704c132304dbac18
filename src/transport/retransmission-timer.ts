/**
 * Round-trip time estimation and the retransmission timeout.
 *
 * SRTT/RTTVAR are the smoothed RTT and its mean deviation; RTO = SRTT + max(G, 4·RTTVAR),
 * clamped to [minRto, maxRto]. Each expiry doubles the RTO ("back off the timer"), and the
 * backed-off value stays until a new RTT sample arrives, as Karn's algorithm requires. Samples
 * are never ambiguous here because retransmissions carry new packet numbers (see packet.ts).
 *
 * Deviation, deliberate: RFC 6298 §2.4 says the RTO SHOULD be rounded up to 1 s. Like Linux
 * (200 ms) we default lower, because tail losses are first probed after ~2·SRTT (RFC 8985 §7)
 * and RACK-style loss detection resolves almost every loss before the RTO; the floor is an
 * option (`minRto`) for paths that need the conservative value.
 * @see RFC 6298 §2 (computing the RTO), §5 (managing the timer), RFC 9002 §5.3 (ack delay)
 */

export interface RetransmissionTimerOptions {
  /** RTO before the first sample, ms. RFC 6298 §2.1: 1 s. */
  initialRto?: number;
  /** Floor of the RTO, ms. Default 200 (see the note above; RFC 6298 §2.4 suggests 1000). */
  minRto?: number;
  /** Ceiling of the RTO, ms. RFC 6298 §2.5: at least 60 s. */
  maxRto?: number;
  /** Clock granularity G, ms. */
  granularity?: number;
}

export const DEFAULT_INITIAL_RTO = 1000;
export const DEFAULT_MIN_RTO = 200;
export const DEFAULT_MAX_RTO = 60_000;
export const DEFAULT_GRANULARITY = 1;

// RFC 6298 §2.3: alpha = 1/8, beta = 1/4.
const ALPHA = 1 / 8;
const BETA = 1 / 4;
const K = 4;

export class RetransmissionTimer {
  readonly initialRto: number;
  readonly minRto: number;
  readonly maxRto: number;
  readonly granularity: number;
  /** Smoothed round-trip time, ms; undefined until the first sample. */
  srtt: number | undefined;
  /** Round-trip time variation, ms. */
  rttvar: number | undefined;
  /** Most recent sample, ms. */
  latestRtt: number | undefined;
  /** Smallest sample seen, ms. */
  minRtt = Infinity;
  #rto: number;
  #backoff = 1;

  constructor(options: RetransmissionTimerOptions = {}) {
    this.initialRto = options.initialRto ?? DEFAULT_INITIAL_RTO;
    this.minRto = options.minRto ?? DEFAULT_MIN_RTO;
    this.maxRto = options.maxRto ?? DEFAULT_MAX_RTO;
    this.granularity = options.granularity ?? DEFAULT_GRANULARITY;
    this.#rto = this.initialRto;
  }

  /** The current RTO including back-off, ms. */
  get rto(): number {
    return Math.min(this.maxRto, this.#rto * this.#backoff);
  }

  /** How many times the timer has backed off since the last sample. */
  get backoffCount(): number {
    return Math.log2(this.#backoff);
  }

  /**
   * Feeds one RTT measurement. `ackDelay` (ms) is what the peer says it held the ACK; it is
   * removed when that leaves the sample above the minimum RTT (RFC 9002 §5.3), so delayed ACKs
   * do not inflate SRTT.
   */
  sample(rtt: number, ackDelay = 0): void {
    if (!(rtt >= 0) || !Number.isFinite(rtt)) return;
    this.latestRtt = rtt;
    if (rtt < this.minRtt) this.minRtt = rtt;
    const adjusted = rtt - ackDelay >= this.minRtt ? rtt - ackDelay : rtt;
    if (this.srtt === undefined || this.rttvar === undefined) {
      // RFC 6298 §2.2: first measurement.
      this.srtt = adjusted;
      this.rttvar = adjusted / 2;
    } else {
      // RFC 6298 §2.3: RTTVAR first, with the old SRTT.
      this.rttvar = (1 - BETA) * this.rttvar + BETA * Math.abs(this.srtt - adjusted);
      this.srtt = (1 - ALPHA) * this.srtt + ALPHA * adjusted;
    }
    const rto = this.srtt + Math.max(this.granularity, K * this.rttvar);
    this.#rto = Math.min(this.maxRto, Math.max(this.minRto, rto));
    // Karn: a fresh sample ends the back-off (RFC 6298 §5 note after 5.7).
    this.#backoff = 1;
  }

  /** RFC 6298 §5.5: the timer expired; double the RTO, up to maxRto. */
  backOff(): void {
    if (this.#rto * this.#backoff < this.maxRto) this.#backoff *= 2;
  }

  /** Forget everything, as for a new path (@see RFC 9000 §9.4). */
  reset(): void {
    this.srtt = undefined;
    this.rttvar = undefined;
    this.latestRtt = undefined;
    this.minRtt = Infinity;
    this.#rto = this.initialRto;
    this.#backoff = 1;
  }
}
