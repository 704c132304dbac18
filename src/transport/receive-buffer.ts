/**
 * Reassembly: stream bytes that arrived, possibly out of order and possibly more than once,
 * delivered to the reader strictly in order (@see RFC 9293 §3.10.7.4 "segment text",
 * RFC 9000 §2.2).
 *
 * Only never-seen bytes are stored, so the stored pieces tile the received-but-undelivered
 * region exactly and the piece that continues the stream always starts at `nextOffset`.
 *
 * Stored bytes are **copied** into append-only chunks of its own (an arena): a packet's payload
 * may be a view of a receive batch that the next read overwrites (src/punch/udp-receive.ts), and
 * the buffer keeps it past that. In-order pieces then lie side by side in a chunk, so the reader
 * gets them as one view, without the join that a piece per datagram needed (the copy moved from
 * delivery to arrival; no allocation per datagram). A chunk is never written twice, so views
 * handed to the reader stay valid; a reader that keeps a small view keeps its chunk alive.
 */
import { RangeSet } from './range-set.js';

/** Arena chunk size: ~200 datagrams of stream data; a piece larger than a chunk gets one of its own. */
const CHUNK_BYTES = 256 * 1024;

export class ReceiveBuffer {
  readonly #received = new RangeSet();
  readonly #pieces = new Map<number, Uint8Array>();
  #nextOffset = 0;
  #buffered = 0;
  #chunk: Buffer | undefined;
  #chunkUsed = 0;

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
      this.#pieces.set(start, this.#store(bytes, start - offset, stop - offset));
      fresh += stop - start;
    });
    this.#received.add(offset, end);
    this.#buffered += fresh;
    return fresh;
  }

  /** A copy of bytes[start, stop) in the arena. */
  #store(bytes: Uint8Array, start: number, stop: number): Uint8Array {
    const length = stop - start;
    if (this.#chunk === undefined || this.#chunkUsed + length > this.#chunk.length) {
      this.#chunk = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, length));
      this.#chunkUsed = 0;
    }
    const at = this.#chunkUsed;
    this.#chunk.set(start === 0 && stop === bytes.length ? bytes : bytes.subarray(start, stop), at);
    this.#chunkUsed += length;
    return this.#chunk.subarray(at, at + length);
  }

  /**
   * The in-order bytes from `nextOffset` on, up to `maxBytes` (at least one piece), as one
   * chunk; undefined when the stream has a gap here. Pieces that lie side by side in the arena
   * (the usual case: they arrived in order) become one view; others are joined with one copy.
   * Either way the reader gets one stream event per burst instead of one per datagram.
   */
  takeContiguous(maxBytes: number): Uint8Array | undefined {
    const first = this.take();
    if (first === undefined) return undefined;
    let next = this.#pieces.get(this.#nextOffset);
    if (next === undefined || first.length + next.length > maxBytes) return first;
    const pieces = [first];
    let total = first.length;
    let adjacent = true;
    let end = first.byteOffset + first.length;
    while (next !== undefined && total + next.length <= maxBytes) {
      adjacent &&= next.buffer === first.buffer && next.byteOffset === end;
      end = next.byteOffset + next.length;
      pieces.push(next);
      total += next.length;
      this.take();
      next = this.#pieces.get(this.#nextOffset);
    }
    return adjacent ? Buffer.from(first.buffer, first.byteOffset, total) : Buffer.concat(pieces, total);
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
