import { performance } from 'node:perf_hooks';
import { TokenBucket } from '../token-bucket.js';

/**
 * Requests answered per second per source IP address: a token bucket for each source, in a
 * table of bounded size. Over UDP the source can be spoofed, so this is no defence against a
 * distributed flood; what it bounds is how hard one address can make the server work, and how
 * many answers (each up to decision 001's bound) it can have aimed at one victim.
 *
 * The table forgets the source it met first when it is full. A source that comes back starts
 * with a full burst, which it would have after `burst / rate` seconds of silence anyway; a
 * flood of spoofed sources churns the table but never grows it.
 * See docs/decisions/014-server-limits.md.
 */
export interface SourceRateLimitOptions {
  /** Requests per second per source; 0 turns the limit off. */
  rate: number;
  /** Requests one source may send at once (default 2 × rate). */
  burst?: number;
  /** Sources remembered at once (default 65 536). */
  maxSources?: number;
  /** Monotonic ms (default performance.now). */
  now?: () => number;
}

export class SourceRateLimit {
  readonly rate: number;
  readonly burst: number;
  readonly maxSources: number;
  readonly #now: () => number;
  /** Buckets by source, in the order the sources were first met (Map keeps insertion order). */
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(options: SourceRateLimitOptions) {
    if (!(options.rate >= 0)) throw new RangeError(`source rate limit: rate ${options.rate}; expected >= 0 (0: no limit)`);
    this.rate = options.rate;
    this.burst = options.burst ?? Math.max(1, 2 * options.rate);
    this.maxSources = options.maxSources ?? 65_536;
    if (!Number.isInteger(this.maxSources) || this.maxSources < 1) throw new RangeError(`source rate limit: maxSources ${this.maxSources}; expected an integer >= 1`);
    this.#now = options.now ?? (() => performance.now());
  }

  /** Sources remembered now. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Whether a request from `source` may be answered now (and if so, it is counted). */
  allow(source: string): boolean {
    if (this.rate === 0) return true;
    let bucket = this.#buckets.get(source);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.maxSources) this.#buckets.delete(this.#buckets.keys().next().value!);
      bucket = new TokenBucket(this.rate, this.burst, this.#now);
      this.#buckets.set(source, bucket);
    }
    return bucket.take();
  }
}
