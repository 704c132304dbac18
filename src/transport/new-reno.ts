/**
 * NewReno congestion control, counted in bytes, over packet numbers.
 *
 * - Slow start grows cwnd by the bytes each ACK newly covers; congestion avoidance grows it by
 *   one datagram per cwnd of acked bytes (appropriate byte counting).
 *   @see RFC 5681 §3.1, RFC 3465 §2
 * - A loss halves: ssthresh = max(FlightSize / 2, 2·SMSS) and cwnd = ssthresh. Because losses are
 *   found from SACK-style ranges (RFC 6675 accounting: what is in flight is known exactly) the
 *   window is not inflated by 3·SMSS and deflated later.
 *   @see RFC 5681 §3.2 eq. 4, RFC 6675 §5
 * - NewReno's "recover": losses of packets sent before the reduction belong to the same
 *   congestion event and do not reduce again; recovery ends when a packet sent after it is acked.
 *   Packet numbers make "sent after" exact. @see RFC 6582 §3.2, RFC 9002 §7.3.2
 * - A retransmission timeout collapses cwnd to the loss window of one datagram.
 *   @see RFC 5681 §3.1 ("LW")
 * - cwnd grows only while the sender is limited by it, not by the application or the peer's
 *   window. @see RFC 7661, RFC 9002 §7.8
 */

export interface NewRenoOptions {
  /** Bytes in the largest datagram the path carries (SMSS). */
  maxDatagramSize: number;
  /** Initial window in datagrams; RFC 6928 §2: 10. */
  initialWindowPackets?: number;
}

export const DEFAULT_INITIAL_WINDOW_PACKETS = 10;
const MINIMUM_WINDOW_PACKETS = 2;

export class NewReno {
  #maxDatagramSize: number;
  readonly #initialWindowPackets: number;
  /** Congestion window, bytes. */
  cwnd: number;
  /** Slow-start threshold, bytes. */
  ssthresh = Infinity;
  /** Largest packet number sent when the current recovery period began; -1 when none. */
  #recover = -1;
  #ackedInAvoidance = 0;
  /** Congestion events (loss detections that reduced the window, plus RTOs). */
  congestionEvents = 0;

  constructor(options: NewRenoOptions) {
    this.#maxDatagramSize = options.maxDatagramSize;
    this.#initialWindowPackets = options.initialWindowPackets ?? DEFAULT_INITIAL_WINDOW_PACKETS;
    this.cwnd = this.#initialWindow();
  }

  get inSlowStart(): boolean {
    return this.cwnd < this.ssthresh;
  }

  /** True while packets numbered <= `packetNumber` belong to the recovery period. */
  inRecovery(packetNumber: number): boolean {
    return packetNumber <= this.#recover;
  }

  /** A packet of `bytes` was acknowledged. `cwndLimited`: the sender had filled cwnd recently. */
  onPacketAcked(packetNumber: number, bytes: number, cwndLimited: boolean): void {
    if (this.inRecovery(packetNumber) || !cwndLimited) return;
    if (this.inSlowStart) {
      this.cwnd += bytes;
      return;
    }
    this.#ackedInAvoidance += bytes;
    if (this.#ackedInAvoidance >= this.cwnd) {
      this.#ackedInAvoidance -= this.cwnd;
      this.cwnd += this.#maxDatagramSize;
    }
  }

  /**
   * Packets were declared lost. `largestLost` is the newest of them, `flightSize` the bytes in
   * flight before they were removed, `largestSent` the newest packet number sent so far.
   */
  onPacketsLost(largestLost: number, flightSize: number, largestSent: number): void {
    if (this.inRecovery(largestLost)) return;
    this.congestionEvents++;
    this.#recover = largestSent;
    this.ssthresh = Math.max(flightSize / 2, MINIMUM_WINDOW_PACKETS * this.#maxDatagramSize);
    this.cwnd = this.ssthresh;
    this.#ackedInAvoidance = 0;
  }

  /** The retransmission timer expired (RFC 5681 §3.1: cwnd = LW, one datagram). */
  onRetransmissionTimeout(flightSize: number, largestSent: number): void {
    this.congestionEvents++;
    this.#recover = largestSent;
    this.ssthresh = Math.max(flightSize / 2, MINIMUM_WINDOW_PACKETS * this.#maxDatagramSize);
    this.cwnd = this.#maxDatagramSize;
    this.#ackedInAvoidance = 0;
  }

  /** Start over for a new path (@see RFC 9000 §9.4): its capacity is unknown. */
  reset(maxDatagramSize: number, largestSent: number): void {
    this.#maxDatagramSize = maxDatagramSize;
    this.cwnd = this.#initialWindow();
    this.ssthresh = Infinity;
    this.#recover = largestSent;
    this.#ackedInAvoidance = 0;
  }

  #initialWindow(): number {
    // RFC 6928 §2 bounds the initial window by bytes as well: min(10·MSS, max(2·MSS, 14600)).
    const packets = this.#initialWindowPackets * this.#maxDatagramSize;
    return this.#initialWindowPackets === DEFAULT_INITIAL_WINDOW_PACKETS
      ? Math.min(packets, Math.max(2 * this.#maxDatagramSize, 14_600))
      : packets;
  }
}
