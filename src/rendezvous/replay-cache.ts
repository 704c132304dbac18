/**
 * Remembers intent nonces until their intents expire, so that a server (or anyone who saw an
 * intent) cannot replay it to make a peer punch again. An intent is only accepted before its
 * expiry, so forgetting a nonce after that is safe. Bounded: when full of unexpired entries it
 * refuses new ones (fail closed) instead of forgetting old ones early.
 */
export class ReplayCache {
  readonly #max: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, number>();

  constructor(options: { maxEntries?: number; now?: () => number } = {}) {
    this.#max = options.maxEntries ?? 4096;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Records `key` until `expires` (ms epoch). Returns 'added', 'replayed' when it is already
   * recorded and unexpired, or 'full'.
   */
  add(key: string, expires: number): 'added' | 'replayed' | 'full' {
    const now = this.#now();
    const seen = this.#entries.get(key);
    if (seen !== undefined && seen > now) return 'replayed';
    if (this.#entries.size >= this.#max) this.#sweep(now);
    if (this.#entries.size >= this.#max) return 'full';
    this.#entries.set(key, expires);
    return 'added';
  }

  get size(): number {
    return this.#entries.size;
  }

  clear(): void {
    this.#entries.clear();
  }

  #sweep(now: number): void {
    for (const [key, expires] of this.#entries) if (expires <= now) this.#entries.delete(key);
  }
}
