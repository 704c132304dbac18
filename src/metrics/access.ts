/**
 * Who may read what the server knows about itself (/metrics, the dashboard, /healthz's
 * details): clients on this host (loopback), and requests carrying the configured token
 * (`natpunch serve --metrics-token TOKEN`, sent as `Authorization: Bearer TOKEN`, as
 * Prometheus' `authorization` scrape setting does). Everyone else learns only that the server
 * is up. Peer counts, error codes and relay volumes are no secret of any one peer, but they
 * tell an attacker which limits to lean on and when an attack works; they stay private by
 * default (docs/metrics.md).
 */
import { BlockList } from 'node:net';
import { timingSafeEqual, createHash } from 'node:crypto';
import { unmappedIp } from '../wire/index.js';

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/**
 * Whether `ip` (a socket's remote address) is on this host's loopback: all of 127/8, ::1, and
 * either as IPv4-mapped IPv6 (a dual-stack listener's view of 127.0.0.1). Judged from the
 * parsed bytes (STYLE rule 7), never from the text.
 */
export function isLoopback(ip: string | undefined): boolean {
  if (ip === undefined) return false;
  const plain = unmappedIp(ip);
  if (plain === undefined) return false;
  return loopback.check(plain, plain.includes(':') ? 'ipv6' : 'ipv4');
}

export type Access =
  | { allowed: true }
  /** 401 (with WWW-Authenticate) when a token is configured, 403 when none is: only loopback may read. */
  | { allowed: false; status: 401 | 403; message: string };

/**
 * The verdict for one request: its source address and its Authorization header. A token
 * compared in constant time (over SHA-256 digests, so lengths leak nothing either).
 */
export function checkAccess(remoteAddress: string | undefined, authorization: string | undefined, token: string | undefined): Access {
  if (isLoopback(remoteAddress)) return { allowed: true };
  if (token === undefined) {
    return { allowed: false, status: 403, message: 'natpunch serve: metrics and the dashboard are served to loopback clients only; start serve with --metrics-token TOKEN and send Authorization: Bearer TOKEN, or reach it through an SSH tunnel' };
  }
  const offered = /^Bearer +(\S+)\s*$/i.exec(authorization ?? '')?.[1];
  if (offered !== undefined && sameSecret(offered, token)) return { allowed: true };
  return {
    allowed: false, status: 401,
    message: offered === undefined
      ? 'natpunch serve: send the token given to --metrics-token as Authorization: Bearer TOKEN'
      : 'natpunch serve: wrong bearer token; send the one given to --metrics-token',
  };
}

function sameSecret(a: string, b: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}
