/**
 * Ephemeral TURN credentials of the "TURN REST API" scheme that coturn (`--use-auth-secret`),
 * pion/turn and most WebRTC deployments share: the server and whoever hands out credentials
 * know one secret; the username carries its own expiry, so the TURN server keeps no user list.
 *
 *   username = "<expiry, Unix seconds>:<user>"
 *   password = base64(HMAC-SHA1(secret, username))
 *
 * The result is an ordinary long-term credential (RFC 8489 §9.2): the client uses it as it would
 * any username and password.
 * @see draft-uberti-behave-turn-rest-00 §2.2; RFC 8489 §9.2
 */

import { createHmac } from 'node:crypto';
import { UsageError } from '../errors.js';

export interface RestCredentials {
  username: string;
  password: string;
}

/**
 * Credentials for `user` valid for `ttlSeconds` from `now` (milliseconds since the Unix epoch,
 * default `Date.now()`), signed with `secret`.
 * An empty `user` gives the bare expiry, which servers accept too.
 * @throws UsageError when `ttlSeconds` is not a positive number
 */
export function restCredentials(secret: string, user: string, ttlSeconds: number, now: number = Date.now()): RestCredentials {
  if (!(Number.isFinite(ttlSeconds) && ttlSeconds > 0)) throw new UsageError(`REST credentials: ttlSeconds ${ttlSeconds}, expected a positive number of seconds`);
  const expiry = Math.floor(now / 1000 + ttlSeconds);
  const username = user === '' ? String(expiry) : `${expiry}:${user}`;
  return { username, password: restPassword(secret, username) };
}

/** The password the scheme gives `username` (what a TURN server checks against). */
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
