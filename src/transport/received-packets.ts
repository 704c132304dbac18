/**
 * The receiver's side of acknowledgement: which packet numbers arrived, and when an ACK is due.
 *
 * ACK policy (delayed ACKs):
 * - every second ack-eliciting packet for the first 100 (RFC 5681 §4.2, RFC 9000 §13.2.2), then
 *   every `ackFrequency` (default 10): ACK decimation as QUIC permits (RFC 9000 §13.2.2 "MAY
 *   process ... less frequently"; draft-ietf-quic-ack-frequency) and as Chromium's QUIC does
 *   (2 for the first 100 packets, then 10). On node:dgram every ACK is a syscall and an event on
 *   each side, so this buys measurable throughput; cwnd growth does not suffer because it counts
 *   bytes (RFC 3465), bursts are paced, and the sender's ACK-NOW flag means it never waits on a
 *   held ACK. Never later than `maxAckDelay` after the first unacknowledged packet (RFC 5681
 *   §4.2: < 500 ms; we default to QUIC's 25 ms, RFC 9000 §18.2);
 * - at once for a packet that arrives out of order, fills a gap, or is a duplicate, so the sender
 *   learns of loss or of a lost ACK quickly (RFC 5681 §4.2 "immediate duplicate ACK",
 *   RFC 9000 §13.2.1).
 * The connection checks "due" at the end of each batch of received datagrams, so a burst
 * that arrives together is acknowledged by one ACK; but a batch is not a bound (with recvmmsg and
 * GRO one event-loop turn can read a thousand datagrams), so once `MAX_PACKETS_PER_ACK` wait
 * unacknowledged the ACK goes out in the middle of the batch (`overdue`). One ACK per ~64
 * datagrams is what TCP sends for one 64 KiB GRO segment; one per thousand left the sender
 * idle for whole batches, probing the tail (measured in bench/connect: ~120 tail-loss probes and
 * ~70 spurious retransmissions in 7 s with no loss at all).
 *
 * Memory is bounded: only the newest `maxTrackedRanges` ranges are remembered. A packet whose
 * range was forgotten before it was reported is, at worst, declared lost by the sender and its
 * bytes sent again, which the reassembly absorbs.
 */
import type { AckBlock, PacketRange } from './packet.js';
import { RangeSet } from './range-set.js';

export interface ReceivedPacketsOptions {
  /** Ack-eliciting packets received before an ACK is due at once, after the first 100. Default 10. */
  ackFrequency?: number;
  /** Ranges remembered; older ones are forgotten. Default 64. */
  maxTrackedRanges?: number;
}

export const DEFAULT_ACK_FREQUENCY = 10;
/** Packets acknowledged every second one before decimation starts. */
const PACKETS_BEFORE_DECIMATION = 100;
const INITIAL_ACK_FREQUENCY = 2;
const DEFAULT_MAX_TRACKED_RANGES = 64;
/** Unacknowledged packets after which an ACK goes out even in the middle of a receive batch. */
export const MAX_PACKETS_PER_ACK = 64;

export class ReceivedPackets {
  readonly #ranges = new RangeSet();
  readonly #ackFrequency: number;
  readonly #maxTrackedRanges: number;
  /** Largest packet number received, -1 before the first. */
  largest = -1;
  #largestReceivedAt = 0;
  #unacknowledged = 0;
  #firstUnacknowledgedAt = 0;
  #immediate = false;
  #received = 0;

  constructor(options: ReceivedPacketsOptions = {}) {
    this.#ackFrequency = options.ackFrequency ?? DEFAULT_ACK_FREQUENCY;
    this.#maxTrackedRanges = options.maxTrackedRanges ?? DEFAULT_MAX_TRACKED_RANGES;
  }

  has(packetNumber: number): boolean {
    return this.#ranges.has(packetNumber);
  }

  /** Records an ack-eliciting packet received at `now`. */
  record(packetNumber: number, now: number): void {
    // Out of order: it leaves a gap above the previous largest, or it fills one below it.
    if (packetNumber !== this.largest + 1) this.#immediate = true;
    this.#ranges.add(packetNumber, packetNumber + 1);
    while (this.#ranges.rangeCount > this.#maxTrackedRanges) this.#ranges.deleteLowestRange();
    if (packetNumber > this.largest) {
      this.largest = packetNumber;
      this.#largestReceivedAt = now;
    }
    if (this.#unacknowledged === 0) this.#firstUnacknowledgedAt = now;
    this.#unacknowledged++;
    this.#received++;
  }

  /** A packet arrived again: our ACK for it was probably lost, so answer at once. */
  recordDuplicate(): void {
    this.#immediate = true;
  }

  /** Ask for an ACK at the next opportunity (window update, FIN received, path change). */
  requestImmediate(): void {
    if (!this.#ranges.isEmpty) this.#immediate = true;
  }

  /** Something is waiting to be acknowledged (it may ride on a DATA packet). */
  get pending(): boolean {
    return this.#unacknowledged > 0 || this.#immediate;
  }

  /** An ACK should go out now rather than wait for the delayed-ACK timer. */
  get due(): boolean {
    const frequency = this.#received <= PACKETS_BEFORE_DECIMATION ? INITIAL_ACK_FREQUENCY : this.#ackFrequency;
    return this.#immediate || this.#unacknowledged >= Math.min(frequency, this.#ackFrequency);
  }

  /** So many wait unacknowledged that the ACK must not wait for the end of the receive batch. */
  get overdue(): boolean {
    return this.#unacknowledged >= MAX_PACKETS_PER_ACK;
  }

  /** When the delayed-ACK timer should fire, given `maxAckDelay`; Infinity when nothing waits. */
  deadline(maxAckDelay: number): number {
    return this.#unacknowledged > 0 ? this.#firstUnacknowledgedAt + maxAckDelay : Infinity;
  }

  /** The ACK block to send at `now`, with at most `maxRanges` ranges, newest first. */
  buildAck(now: number, maxRanges: number): AckBlock | undefined {
    const count = Math.min(maxRanges, this.#ranges.rangeCount);
    if (count === 0) return undefined;
    const ranges: PacketRange[] = [];
    for (let i = this.#ranges.rangeCount - 1; i >= this.#ranges.rangeCount - count; i--) {
      const [start, end] = this.#ranges.range(i);
      ranges.push({ start, end });
    }
    return { ranges, ackDelay: Math.max(0, (now - this.#largestReceivedAt) * 1000) };
  }

  /** An ACK block went out. */
  onAckSent(): void {
    this.#unacknowledged = 0;
    this.#immediate = false;
  }
}
