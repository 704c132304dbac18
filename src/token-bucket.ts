/**
 * A token bucket: `burst` tokens, refilled at `rate` per second. Rate-limits each rendezvous
 * socket's messages (and counts its protocol errors, so one that keeps misbehaving is closed),
 * and each TURN allocation's bytes.
 */
import { performance } from 'node:perf_hooks';

export class TokenBucket {
  readonly rate: number;
  readonly burst: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  constructor(rate: number, burst: number, now: () => number = () => performance.now()) {
    if (!(rate >= 0) || !(burst >= 1)) throw new RangeError(`token bucket: rate ${rate}, burst ${burst}; expected rate >= 0, burst >= 1`);
    this.rate = rate;
    this.burst = burst;
    this.#now = now;
    this.#tokens = burst;
    this.#at = now();
  }

  /** Takes `n` tokens (default one) if there are that many; otherwise takes none. */
  take(n = 1): boolean {
    const now = this.#now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.rate);
    this.#at = now;
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }
}
