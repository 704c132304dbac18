/**
 * The simulator's only source of randomness: a small seeded generator (sfc32), so that a run
 * is a function of its seed. Every consumer (each link's loss and jitter, each NAT's port
 * choice, each host's ephemeral ports) draws from its own stream derived from the seed and a
 * name, so adding a host or a packet somewhere does not shift the draws everywhere else.
 */
export class Prng {
  readonly seed: string;
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number | string) {
    this.seed = String(seed);
    const s = hash32(this.seed);
    this.#a = s;
    this.#b = hash32(`${seed}/b`);
    this.#c = hash32(`${seed}/c`);
    this.#d = 1;
    // The first outputs of sfc32 are still close to the seed: stir before use.
    for (let i = 0; i < 12; i++) this.#next32();
  }

  /** An independent stream for `name`: the same for the same seed and name, whatever was drawn before. */
  derive(name: string): Prng {
    return new Prng(`${this.seed}/${name}`);
  }

  /** A float in [0, 1). */
  next(): number {
    return this.#next32() / 0x1_0000_0000;
  }

  /** An integer in [min, max], both inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  #next32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }
}

/** FNV-1a over the UTF-16 code units of `text`. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
