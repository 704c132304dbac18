/**
 * The bytes the application has written and the peer has not yet acknowledged, addressed by
 * stream offset. Chunks are kept as written (no copy); a DATA packet reads views of them and
 * the encoder copies those once into the datagram.
 */
export class SendBuffer {
  #chunks: Uint8Array[] = [];
  #chunkStarts: number[] = [];
  #head = 0;
  /** Offset of the first byte still held. */
  #start = 0;
  /** Offset one past the last byte written. */
  #end = 0;

  get start(): number {
    return this.#start;
  }

  get end(): number {
    return this.#end;
  }

  /** Bytes held: written and not yet released by an acknowledgement. */
  get length(): number {
    return this.#end - this.#start;
  }

  append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#chunkStarts.push(this.#end);
    this.#end += chunk.length;
  }

  /** Views of the bytes [offset, offset + length), which must be held. */
  read(offset: number, length: number): Uint8Array[] {
    const pieces: Uint8Array[] = [];
    let i = this.#chunkIndex(offset);
    let at = offset;
    const end = offset + length;
    while (at < end) {
      const chunk = this.#chunks[i]!;
      const chunkStart = this.#chunkStarts[i]!;
      const from = at - chunkStart;
      const to = Math.min(chunk.length, end - chunkStart);
      pieces.push(from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to));
      at = chunkStart + to;
      i++;
    }
    return pieces;
  }

  /** Forget every byte below `offset` (they have been acknowledged). */
  release(offset: number): void {
    if (offset <= this.#start) return;
    this.#start = Math.min(offset, this.#end);
    while (this.#head < this.#chunks.length) {
      const chunkEnd = this.#chunkStarts[this.#head]! + this.#chunks[this.#head]!.length;
      if (chunkEnd > this.#start) break;
      this.#chunks[this.#head] = EMPTY;
      this.#head++;
    }
    // Compact once the dead prefix dominates, so release stays amortised O(1).
    if (this.#head > 64 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#chunkStarts = this.#chunkStarts.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Index of the chunk holding `offset`: binary search over the live chunks. */
  #chunkIndex(offset: number): number {
    let lo = this.#head;
    let hi = this.#chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.#chunkStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

const EMPTY = new Uint8Array(0);
