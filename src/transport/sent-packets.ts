/**
 * The sender's record of ack-eliciting packets in flight, and loss detection over it.
 *
 * A packet is declared lost once a packet sent after it has been acknowledged and either
 * - a packet numbered at least `PACKET_THRESHOLD` (3) above it has been acknowledged: the
 *   packet-number form of SACK's DupThresh and of "three duplicate ACKs" (@see RFC 9002 §6.1.1,
 *   RFC 6675 §5, RFC 5681 §3.2), or
 * - it was sent more than `lossDelay` (9/8 of the RTT) before now: RACK's time threshold,
 *   which also catches losses near the end of a flight and tolerates mild reordering
 *   (@see RFC 8985 §6.2, RFC 9002 §6.1.2).
 * Because retransmissions get new packet numbers, a lost retransmission is found the same way.
 *
 * Packet numbers below `nextPacketNumber` are either in flight or "resolved" (acknowledged or
 * declared lost); the resolved set merges into one range below the oldest packet in flight, so
 * processing an ACK costs the number of packets it newly covers, not the size of its ranges.
 */
import type { PacketRange } from './packet.js';
import { RangeSet } from './range-set.js';

export const PACKET_THRESHOLD = 3;
/** RFC 9002 §6.1.2: kTimeThreshold = 9/8. */
export const TIME_THRESHOLD = 9 / 8;

export interface SentPacket {
  packetNumber: number;
  sentAt: number;
  /** Datagram bytes, as counted against the congestion window. */
  size: number;
  /** Stream bytes carried: [offset, offset + length), plus the FIN position when `fin`. */
  offset: number;
  length: number;
  fin: boolean;
}

export interface AckResult {
  /** Packets this ACK covers for the first time, in ascending packet-number order. */
  acked: SentPacket[];
  /** Ranges reaching packet numbers never sent were cut back; true when that happened. */
  clipped: boolean;
}

export interface LossResult {
  lost: SentPacket[];
  /** When the oldest packet still in flight below the largest acked would cross the time threshold. */
  lossTime: number | undefined;
}

export class SentPackets {
  readonly #inFlight = new Map<number, SentPacket>();
  readonly #resolved = new RangeSet();
  nextPacketNumber = 0;
  bytesInFlight = 0;
  /** Largest packet number acknowledged so far, -1 before the first ACK. */
  largestAcked = -1;
  /** When the most recent packet was sent. */
  lastSentAt = 0;

  get count(): number {
    return this.#inFlight.size;
  }

  get isEmpty(): boolean {
    return this.#inFlight.size === 0;
  }

  /** Newest packet in flight. */
  newest(): SentPacket | undefined {
    let last: SentPacket | undefined;
    for (const packet of this.#inFlight.values()) last = packet;
    return last;
  }

  /** Takes the next packet number for a packet about to be sent. */
  allocate(): number {
    return this.nextPacketNumber++;
  }

  onSent(packet: SentPacket): void {
    this.#inFlight.set(packet.packetNumber, packet);
    this.bytesInFlight += packet.size;
    this.lastSentAt = packet.sentAt;
  }

  /** Applies the ranges of an ACK block (highest first). */
  onAck(ranges: readonly PacketRange[]): AckResult {
    const acked: SentPacket[] = [];
    let clipped = false;
    for (const range of ranges) {
      let end = range.end;
      if (end > this.nextPacketNumber) {
        // Acknowledges packets never sent: forged or corrupt. Keep only the believable part.
        clipped = true;
        end = this.nextPacketNumber;
      }
      if (range.start >= end) continue;
      this.#resolved.forEachGap(range.start, end, (gapStart, gapEnd) => {
        for (let pn = gapStart; pn < gapEnd; pn++) {
          const packet = this.#inFlight.get(pn);
          if (packet === undefined) continue;
          this.#inFlight.delete(pn);
          this.bytesInFlight -= packet.size;
          acked.push(packet);
        }
      });
      this.#resolved.add(range.start, end);
      if (end - 1 > this.largestAcked) this.largestAcked = end - 1;
    }
    acked.sort((a, b) => a.packetNumber - b.packetNumber);
    return { acked, clipped };
  }

  /** Declares lost what the thresholds say is lost at `now` (see the module comment). */
  detectLosses(now: number, lossDelay: number): LossResult {
    const lost: SentPacket[] = [];
    let lossTime: number | undefined;
    // Map order is send order, which is packet-number order: the oldest come first, and the
    // first packet that is not lost ends the scan, as every later one is newer still.
    for (const packet of this.#inFlight.values()) {
      if (packet.packetNumber > this.largestAcked) break;
      if (this.largestAcked - packet.packetNumber >= PACKET_THRESHOLD || packet.sentAt <= now - lossDelay) {
        this.#declareLost(packet);
        lost.push(packet);
        continue;
      }
      lossTime = packet.sentAt + lossDelay;
      break;
    }
    return { lost, lossTime };
  }

  /** Declares every packet in flight lost (retransmission timeout, path change). */
  declareAllLost(): SentPacket[] {
    const lost = [...this.#inFlight.values()];
    for (const packet of lost) this.#declareLost(packet);
    return lost;
  }

  #declareLost(packet: SentPacket): void {
    this.#inFlight.delete(packet.packetNumber);
    this.bytesInFlight -= packet.size;
    this.#resolved.add(packet.packetNumber, packet.packetNumber + 1);
  }
}
