/**
 * Stateless NONCEs for the long-term credential mechanism: the nonce carries its own expiry and
 * an HMAC over it and the client's IP, so the server keeps nothing for a client that has not
 * authenticated yet (a flood of Allocate requests from spoofed sources costs no memory), and a
 * nonce taken to another address is stale there.
 * @see RFC 8489 §9.2 (the server "MAY" choose any nonce scheme), §9.2.4 (438 Stale Nonce)
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** How long a nonce stays good (RFC 8656 §7.1 suggests about an hour for TURN's long-lived allocations). */
export const NONCE_LIFETIME_MS = 3600_000;

export class NonceIssuer {
  readonly #key: Buffer;
  readonly #now: () => number;
  readonly #lifetimeMs: number;

  constructor(options: { now?: () => number; lifetimeMs?: number } = {}) {
    this.#key = randomBytes(32);
    this.#now = options.now ?? Date.now;
    this.#lifetimeMs = options.lifetimeMs ?? NONCE_LIFETIME_MS;
  }

  /** A fresh nonce for a client at `ip`: 8 hex digits of expiry (seconds) then 16 of MAC. */
  issue(ip: string): string {
    const expiry = Math.floor((this.#now() + this.#lifetimeMs) / 1000).toString(16).padStart(8, '0');
    return expiry + this.#mac(expiry, ip);
  }

  /** 'valid', 'stale' (well-formed, ours, but expired) or 'invalid'. */
  check(nonce: string, ip: string): 'valid' | 'stale' | 'invalid' {
    if (nonce.length !== 24 || !/^[0-9a-f]+$/.test(nonce)) return 'invalid';
    const expiry = nonce.slice(0, 8);
    const mac = Buffer.from(nonce.slice(8), 'utf8');
    const expected = Buffer.from(this.#mac(expiry, ip), 'utf8');
    if (!timingSafeEqual(mac, expected)) return 'invalid';
    return parseInt(expiry, 16) * 1000 > this.#now() ? 'valid' : 'stale';
  }

  #mac(expiry: string, ip: string): string {
    return createHmac('sha256', this.#key).update(`${expiry}|${ip}`).digest('hex').slice(0, 16);
  }
}
