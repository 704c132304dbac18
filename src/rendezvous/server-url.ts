/**
 * The rendezvous server's URL as users type it, and what went wrong reaching it, in words that
 * name the URL and the cause (a refused port, a name that does not resolve, TLS against a plain
 * server, a wrong path) instead of the WebSocket's bare close code 1006.
 */
import { UsageError } from '../errors.js';
import { RendezvousError } from './errors.js';

const EXAMPLE = 'ws://HOST:8080/, or wss://HOST/ behind TLS';

/**
 * `url` parsed, or a UsageError saying what a rendezvous URL looks like. Checked before any
 * socket opens: `127.0.0.1:8080` (no scheme) and `udp://…` are typing mistakes, not failures.
 */
export function parseServerUrl(url: string): URL {
  // `127.0.0.1:8080` would parse with "127.0.0.1:" as its scheme: say what is missing instead.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new UsageError(`--server ${JSON.stringify(url)} has no scheme; use ws://${url.replace(/\/*$/, '')}/`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--server ${JSON.stringify(url)} is not a URL; expected ${EXAMPLE}`);
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    const hint = /^https?:$/.test(parsed.protocol) ? `; use ${parsed.protocol === 'https:' ? 'wss' : 'ws'}://${parsed.host}${parsed.pathname}` : '';
    throw new UsageError(`--server ${JSON.stringify(url)}: the rendezvous server speaks WebSocket, expected ${EXAMPLE}${hint}`);
  }
  return parsed;
}

/**
 * Why the WebSocket to `url` failed, from the error `ws` reported: one line naming the URL, the
 * cause and what to check. `opened` tells a failure to connect from a connection that broke.
 */
export function connectFailure(url: string, error: Error & { code?: string }, opened: boolean): RendezvousError {
  const cause = describeCause(url, error);
  const message = opened
    ? `the connection to the rendezvous server ${url} failed: ${cause}`
    : `cannot reach the rendezvous server ${url}: ${cause}`;
  // A connection that broke after the upgrade is 'closed', as when the server just goes away.
  return new RendezvousError(opened ? 'closed' : 'unreachable', message, { cause: error });
}

function describeCause(url: string, error: Error & { code?: string }): string {
  const secure = url.startsWith('wss:');
  const status = /Unexpected server response: (\d+)/.exec(error.message)?.[1];
  if (status !== undefined) {
    return `it answered HTTP ${status} instead of a WebSocket upgrade; check the URL's path (natpunch serve takes WebSocket connections at /)`;
  }
  switch (error.code) {
    case 'ECONNREFUSED':
      return 'connection refused; check the host and port, and that natpunch serve runs there';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the host name does not resolve (${error.code}); check the spelling, or use an IP address`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `no route to the host (${error.code}); check the address and this machine's network`;
    case 'ECONNRESET':
      return 'the server reset the connection';
    case 'ETIMEDOUT':
      return 'the TCP connection timed out; check the address, and for a firewall in the way';
    default:
      break;
  }
  if (/wrong version number|packet length too long|unknown protocol/i.test(error.message)) {
    return secure
      ? 'the TLS handshake failed: the server does not speak TLS on that port (use ws:// for a plain server)'
      : `the TLS handshake failed (${error.message.split('\n')[0]})`;
  }
  if (/handshake has timed out/i.test(error.message)) {
    return `no WebSocket answer in time: something listens there but it is not a rendezvous server${secure ? '' : ' (or it expects TLS: try wss://)'}`;
  }
  const first = error.message.split('\n')[0]!.replace(/:[^:]*openssl[^:]*:\d+:$/, '');
  return error.code ? `${first} (${error.code})` : first;
}
