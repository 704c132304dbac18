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
/** Characters in a nonce (12 bytes, base64url). */
export const NONCE_LENGTH = 16;

export class NonceIssuer {
  readonly #key: Buffer;
  readonly #now: () => number;
  readonly #lifetimeMs: number;

  constructor(options: { now?: () => number; lifetimeMs?: number } = {}) {
    this.#key = randomBytes(32);
    this.#now = options.now ?? Date.now;
    this.#lifetimeMs = options.lifetimeMs ?? NONCE_LIFETIME_MS;
  }

  /**
   * A fresh nonce for a client at `ip`: base64url of 4 bytes of expiry (Unix seconds) and 8 of
   * MAC, 16 characters. Short on purpose: it rides in every 401 to an unauthenticated (and so
   * spoofable) UDP request, where each byte is amplification (docs/decisions/008-relay.md).
   */
  issue(ip: string): string {
    const expiry = Buffer.alloc(4);
    expiry.writeUInt32BE(Math.floor((this.#now() + this.#lifetimeMs) / 1000));
    return Buffer.concat([expiry, this.#mac(expiry, ip)]).toString('base64url');
  }

  /** 'valid', 'stale' (well-formed, ours, but expired) or 'invalid'. */
  check(nonce: string, ip: string): 'valid' | 'stale' | 'invalid' {
    if (nonce.length !== NONCE_LENGTH || !/^[A-Za-z0-9_-]+$/.test(nonce)) return 'invalid';
    const bytes = Buffer.from(nonce, 'base64url');
    const expiry = bytes.subarray(0, 4);
    if (!timingSafeEqual(bytes.subarray(4), this.#mac(expiry, ip))) return 'invalid';
    return expiry.readUInt32BE() * 1000 > this.#now() ? 'valid' : 'stale';
  }

  #mac(expiry: Uint8Array, ip: string): Buffer {
    return createHmac('sha256', this.#key).update(expiry).update(ip).digest().subarray(0, 8);
  }
}
