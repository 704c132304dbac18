/**
 * Token buckets by key (a peer id, an initiator→target pair) in one bounded table: `burst`
 * tokens per key, refilled at `rate` per second. A key's entry exists only while its bucket is
 * below full: a full bucket is the same as no entry, so idle keys cost nothing and `sweep()`
 * (or a take on a full table) drops them. When the table is full of keys still refilling, a new
 * key is refused (fail closed): forgetting a key early would hand a fresh burst to whoever
 * filled the table.
 */
import { performance } from 'node:perf_hooks';

interface Entry {
  tokens: number;
  at: number;
}

export class RateTable {
  readonly rate: number;
  readonly burst: number;
  readonly maxEntries: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();

  constructor(options: { rate: number; burst: number; maxEntries: number; now?: () => number }) {
    const { rate, burst, maxEntries } = options;
    if (!(rate > 0) || !(burst >= 1) || !(maxEntries >= 1)) {
      throw new RangeError(`rate table: rate ${rate}, burst ${burst}, maxEntries ${maxEntries}; expected rate > 0, burst >= 1, maxEntries >= 1`);
    }
    this.rate = rate;
    this.burst = burst;
    this.maxEntries = maxEntries;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Takes one token of `key`: 'ok', 'limited' (its bucket is empty) or 'full' (no room for a new key). */
  take(key: string): 'ok' | 'limited' | 'full' {
    const now = this.#now();
    let entry = this.#entries.get(key);
    if (entry) {
      entry.tokens = Math.min(this.burst, entry.tokens + ((now - entry.at) / 1000) * this.rate);
      entry.at = now;
    } else {
      if (this.#entries.size >= this.maxEntries) this.sweep();
      if (this.#entries.size >= this.maxEntries) return 'full';
      entry = { tokens: this.burst, at: now };
      this.#entries.set(key, entry);
    }
    if (entry.tokens < 1) return 'limited';
    entry.tokens -= 1;
    return 'ok';
  }

  /** The tokens `key` has now (burst for a key not in the table). */
  tokens(key: string): number {
    const entry = this.#entries.get(key);
    if (!entry) return this.burst;
    return Math.min(this.burst, entry.tokens + ((this.#now() - entry.at) / 1000) * this.rate);
  }

  /** Milliseconds until `key` has a token again (0: it has one now). */
  waitMs(key: string): number {
    const entry = this.#entries.get(key);
    if (!entry) return 0;
    const tokens = entry.tokens + ((this.#now() - entry.at) / 1000) * this.rate;
    return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) / this.rate) * 1000);
  }

  /** Drops every key whose bucket has refilled (it is as good as new). */
  sweep(): void {
    const now = this.#now();
    for (const [key, entry] of this.#entries) {
      if (entry.tokens + ((now - entry.at) / 1000) * this.rate >= this.burst) this.#entries.delete(key);
    }
  }

  get size(): number {
    return this.#entries.size;
  }

  clear(): void {
    this.#entries.clear();
  }
}
