/**
 * Anti-replay sliding window for datagrams that arrive out of order or not at all.
 *
 * The RFC 6479 layout: the bitmap is a ring of 32-bit blocks, and advancing the window clears
 * whole blocks instead of shifting bits, so both checking and advancing cost O(1) however far
 * the window jumps. One block more than the window size is kept so that the block holding the
 * newest counter can be partly filled while a full window of older counters stays intact.
 * WireGuard's receive path and DTLS (RFC 9147 §4.5.1) use the same idea.
 * @see RFC 6479 §2
 */

const BLOCK_BITS = 32;
/** Counters within this many of the newest one seen are tracked; older ones are refused. */
export const DEFAULT_REPLAY_WINDOW = 2048;

export class ReplayWindow {
  /** How far behind the newest counter a packet may be and still be accepted. */
  readonly size: number;
  readonly #blocks: Uint32Array;
  /** Newest counter accepted so far, -1 before the first. */
  #top = -1;

  constructor(size: number = DEFAULT_REPLAY_WINDOW) {
    if (!Number.isInteger(size) || size < BLOCK_BITS || size % BLOCK_BITS !== 0) {
      throw new RangeError(`replay window: size ${size}, expected a positive multiple of ${BLOCK_BITS}`);
    }
    this.size = size;
    this.#blocks = new Uint32Array(size / BLOCK_BITS + 1);
  }

  /** Newest counter accepted, or -1. */
  get newest(): number {
    return this.#top;
  }

  /** Whether `counter` would be accepted now; records nothing. Check before decrypting. */
  check(counter: number): boolean {
    if (counter > this.#top) return true;
    if (this.#top - counter >= this.size) return false;
    return (this.#blocks[this.#blockIndex(counter)]! & bitOf(counter)) === 0;
  }

  /**
   * Records `counter` as received. Call only once its packet has authenticated: a forged
   * packet must never move the window. Returns false (and records nothing) for a replay.
   */
  accept(counter: number): boolean {
    if (!this.check(counter)) return false;
    if (counter > this.#top) {
      const oldBlock = this.#top < 0 ? -1 : Math.floor(this.#top / BLOCK_BITS);
      const newBlock = Math.floor(counter / BLOCK_BITS);
      const toClear = Math.min(newBlock - oldBlock, this.#blocks.length);
      for (let step = 1; step <= toClear; step++) this.#blocks[(oldBlock + step) % this.#blocks.length] = 0;
      this.#top = counter;
    }
    this.#blocks[this.#blockIndex(counter)]! |= bitOf(counter);
    return true;
  }

  #blockIndex(counter: number): number {
    return Math.floor(counter / BLOCK_BITS) % this.#blocks.length;
  }
}

function bitOf(counter: number): number {
  return 1 << (counter % BLOCK_BITS);
}
