/**
 * Ephemeral TURN credentials in the "TURN REST API" scheme coturn implements
 * (`--use-auth-secret`): the username is `EXPIRY:USER` (EXPIRY in Unix seconds) and the password
 * is base64(HMAC-SHA1(secret, username)). Whoever knows the shared secret (the rendezvous) mints
 * credentials; the TURN server checks them with no per-user state.
 * @see draft-uberti-behave-turn-rest-00 §2.2
 */

import { createHmac, timingSafeEqual } from 'node:crypto';

export interface RestCredentials {
  username: string;
  password: string;
}

/** Mints credentials for `user` valid `ttlSeconds` from `now` (Unix ms, default Date.now()). */
export function restCredentials(secret: string, user: string, ttlSeconds: number, now = Date.now()): RestCredentials {
  const expiry = Math.floor(now / 1000) + Math.max(0, Math.floor(ttlSeconds));
  const username = user ? `${expiry}:${user}` : String(expiry);
  return { username, password: restPassword(secret, username) };
}

/** The password the scheme gives `username`. */
export function restPassword(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username, 'utf8').digest('base64');
}

/**
 * The expiry of a REST username (the part before the first ':', Unix seconds), or undefined when
 * it has none. coturn accepts a bare timestamp too.
 */
export function restExpiry(username: string): number | undefined {
  const head = username.split(':', 1)[0]!;
  if (!/^\d{1,12}$/.test(head)) return undefined;
  return Number(head);
}

/** Constant-time comparison of two passwords (for callers that compare instead of deriving keys). */
export function samePassword(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
