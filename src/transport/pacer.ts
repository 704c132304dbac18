/**
 * Pacing: spread a window's worth of packets over an RTT instead of sending it as one burst,
 * so a burst does not overflow a queue on the path and turn into correlated losses.
 *
 * A token bucket refilled at 1.25·cwnd/SRTT (the factor lets the sender fill the window even
 * with timer slack). The bucket holds at least ten datagrams (an initial window may go at once)
 * and at least what two timer ticks earn, so the ~1 ms granularity of Node timers never caps
 * the rate below what cwnd allows.
 * @see RFC 9002 §7.7
 */

const RATE_FACTOR = 1.25;
const BURST_PACKETS = 10;
const TIMER_TICK_MS = 1;

export class Pacer {
  #tokens: number;
  #lastRefill: number | undefined;
  #maxDatagramSize: number;

  constructor(maxDatagramSize: number) {
    this.#maxDatagramSize = maxDatagramSize;
    this.#tokens = BURST_PACKETS * maxDatagramSize;
  }

  setMaxDatagramSize(size: number): void {
    this.#maxDatagramSize = size;
  }

  /**
   * Milliseconds to wait before `bytes` may go out at time `now`; 0 when they may go now.
   * Without an RTT estimate there is no rate to pace at.
   */
  delay(now: number, bytes: number, cwnd: number, srtt: number | undefined): number {
    if (srtt === undefined || srtt <= 0) return 0;
    const rate = (RATE_FACTOR * cwnd) / srtt; // bytes per ms
    const capacity = Math.max(BURST_PACKETS * this.#maxDatagramSize, 2 * TIMER_TICK_MS * rate);
    if (this.#lastRefill !== undefined) {
      this.#tokens = Math.min(capacity, this.#tokens + (now - this.#lastRefill) * rate);
    } else {
      this.#tokens = capacity;
    }
    this.#lastRefill = now;
    if (this.#tokens >= bytes) return 0;
    return (bytes - this.#tokens) / rate;
  }

  /** `bytes` went out now. */
  onSend(bytes: number): void {
    this.#tokens -= bytes;
  }
}
