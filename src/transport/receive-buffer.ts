/**
 * Reassembly: stream bytes that arrived, possibly out of order and possibly more than once,
 * delivered to the reader strictly in order (@see RFC 9293 §3.10.7.4 "segment text",
 * RFC 9000 §2.2).
 *
 * Only never-seen bytes are stored, so the stored pieces tile the received-but-undelivered
 * region exactly and the piece that continues the stream always starts at `nextOffset`.
 */
import { RangeSet } from './range-set.js';

export class ReceiveBuffer {
  readonly #received = new RangeSet();
  readonly #pieces = new Map<number, Uint8Array>();
  #nextOffset = 0;
  #buffered = 0;

  /** The next offset the reader gets; every byte below it has been delivered. */
  get nextOffset(): number {
    return this.#nextOffset;
  }

  /** Bytes held, waiting for a gap to fill or for the reader. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** One past the highest byte received, 0 when none. */
  get highestReceived(): number {
    return this.#received.max ?? 0;
  }

  /** Stores the part of `bytes` (at stream `offset`) not seen before; returns how many bytes that was. */
  insert(offset: number, bytes: Uint8Array): number {
    const end = offset + bytes.length;
    if (end <= this.#nextOffset || bytes.length === 0) return 0;
    let fresh = 0;
    this.#received.forEachGap(offset, end, (start, stop) => {
      this.#pieces.set(start, start === offset && stop === end ? bytes : bytes.subarray(start - offset, stop - offset));
      fresh += stop - start;
    });
    this.#received.add(offset, end);
    this.#buffered += fresh;
    return fresh;
  }

  /**
   * The in-order bytes from `nextOffset` on, up to `maxBytes` (at least one piece), as one
   * chunk; undefined when the stream has a gap here. Joining the pieces of a burst costs one
   * copy and saves the reader a stream event per datagram.
   */
  takeContiguous(maxBytes: number): Uint8Array | undefined {
    const first = this.take();
    if (first === undefined) return undefined;
    let next = this.#pieces.get(this.#nextOffset);
    if (next === undefined || first.length + next.length > maxBytes) return first;
    const pieces = [first];
    let total = first.length;
    while (next !== undefined && total + next.length <= maxBytes) {
      pieces.push(next);
      total += next.length;
      this.take();
      next = this.#pieces.get(this.#nextOffset);
    }
    return Buffer.concat(pieces, total);
  }

  /** The next in-order piece, removed from the buffer; undefined when the stream has a gap here. */
  take(): Uint8Array | undefined {
    const piece = this.#pieces.get(this.#nextOffset);
    if (piece === undefined) return undefined;
    this.#pieces.delete(this.#nextOffset);
    this.#nextOffset += piece.length;
    this.#buffered -= piece.length;
    return piece;
  }
}
