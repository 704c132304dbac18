/**
 * Cryptographically random bytes for the hot paths that draw a few at a time (a session key per
 * brokered connect, a nonce per message).
 *
 * Why a pool: each call into node:crypto's CSPRNG has a fixed cost, ~4-5 µs on the 2-core
 * benchmark machine whether it fills 32 bytes or 4 KiB (7 µs). A rendezvous server brokering
 * thousands of connects a second spent 3% of its time there. So the pool is refilled 4 KiB at
 * a time and hands each range out once, copied: no two callers ever get the same bytes, and
 * none keeps a view into the pool. Node's own `crypto.randomUUID` buffers the same way.
 */
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 4096;

const pool = new Uint8Array(POOL_SIZE);
let offset = POOL_SIZE;

/** `size` fresh random bytes (a new array, never shared). Sizes above the pool's go straight to the CSPRNG. */
export function randomBytes(size: number): Uint8Array {
  if (!Number.isInteger(size) || size < 0) throw new RangeError(`randomBytes: size must be a non-negative integer, got ${size}`);
  if (size > POOL_SIZE) return randomFillSync(new Uint8Array(size));
  if (offset + size > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = pool.slice(offset, offset + size);
  // Wiped as handed out, so the pool never holds bytes someone else already has.
  pool.fill(0, offset, offset + size);
  offset += size;
  return out;
}

/** `size` random bytes as base64url text: nonces, session ids. */
export function randomToken(size = 16): string {
  return Buffer.from(randomBytes(size).buffer).toString('base64url');
}
