import { StunDecodeError } from '../errors.js';

/**
 * Splits a byte stream (STUN over TCP) into messages.
 *
 * STUN messages carry their own length (RFC 8489 §6.2.2), so TCP needs no extra framing.
 * TURN's ChannelData messages share the stream (first two bits 0b01) and are padded to a
 * multiple of four bytes over stream transports (RFC 8656 §12.5), so the framer knows them too.
 */
export class StreamFramer {
  #buffered: Buffer[] = [];
  #length = 0;
  readonly maxFrame: number;

  constructor(options: { maxFrame?: number } = {}) {
    this.maxFrame = options.maxFrame ?? 65_536;
  }

  /** Bytes held of a frame not yet complete (0 between frames). */
  get buffered(): number {
    return this.#length;
  }

  /** Append bytes; returns every complete frame. Throws StunDecodeError on bytes that cannot start a frame. */
  push(chunk: Uint8Array): Uint8Array[] {
    this.#buffered.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.#length += chunk.byteLength;
    const frames: Uint8Array[] = [];
    for (;;) {
      if (this.#length < 4) break;
      const head = this.#peek(4);
      const kind = head[0]! >> 6;
      const length = (head[2]! << 8) | head[3]!;
      let total: number;
      if (kind === 0b00) total = 20 + length;
      else if (kind === 0b01) total = 4 + ((length + 3) & ~3);
      else throw new StunDecodeError(`stream: first byte 0x${head[0]!.toString(16)} starts neither a STUN message nor ChannelData`, 0);
      if (kind === 0b00 && length % 4 !== 0) throw new StunDecodeError(`stream: STUN message length ${length} is not a multiple of 4`, 2);
      if (total > this.maxFrame) throw new StunDecodeError(`stream: frame of ${total} bytes exceeds the ${this.maxFrame}-byte limit`, 2);
      if (this.#length < total) break;
      frames.push(this.#take(total));
    }
    return frames;
  }

  #peek(n: number): Buffer {
    if (this.#buffered[0]!.length >= n) return this.#buffered[0]!;
    const joined = Buffer.concat(this.#buffered);
    this.#buffered = [joined];
    return joined;
  }

  #take(n: number): Uint8Array {
    const joined = this.#peek(n);
    const frame = Uint8Array.prototype.slice.call(joined, 0, n);
    const rest = joined.subarray(n);
    this.#buffered = rest.length ? [rest] : [];
    this.#length -= n;
    return frame;
  }
}
