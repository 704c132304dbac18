/**
 * How `natpunch serve` sets up relaying: its own TURN server (on by default, sharing the STUN
 * ports) and/or an external one such as coturn (`--relay turn:HOST[:PORT]` with the shared REST
 * secret), and what the rendezvous hands each registered peer.
 */

import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { RelayOffer } from '../rendezvous/messages.js';
import { restCredentials } from '../turn/rest-credentials.js';
import { UsageError } from '../errors.js';

/** How long credentials handed to a peer stay good: a day, as coturn's examples use; a peer re-registers long before. */
export const RELAY_CREDENTIAL_TTL_S = 24 * 3600;

/** Relaying (TURN, RFC 8656) for `natpunch serve`: the built-in relay, its users and limits, and external relays to offer. */
export interface RelayConfig {
  /** Run the built-in TURN server (default true). */
  builtIn?: boolean;
  /** Static users, `--turn-user USER:PASSWORD`. */
  users?: ReadonlyMap<string, string>;
  /**
   * The REST shared secret (`--turn-secret`). The built-in relay mints peer credentials with it;
   * without one it makes up a random secret of its own, so peers still get credentials.
   */
  secret?: string;
  /** External TURN servers the rendezvous points peers to (`--relay turn:HOST[:PORT]`); they must share `secret`. */
  external?: string[];
  /** The IP relayed sockets bind to and report; default --address, or the host's first public-looking address when that is a wildcard. */
  relayAddress?: string;
  /** Peer addresses a relay may send to (`--relay-allow CIDR`), opening ranges closed by default; the most specific rule wins (see PeerAddressPolicy). */
  allow?: string[];
  /** Peer addresses a relay may not send to (`--relay-deny CIDR`). */
  deny?: string[];
  /** The TURN realm (default "natpunch"). */
  realm?: string;
  /** Allocations one user may hold at once (`--relay-user-quota`, default 10). */
  userQuota?: number;
  /** Allocations the relay holds at once (`--relay-total-quota`, default 2000). */
  totalQuota?: number;
  /** Bytes per second per allocation (0: unlimited). */
  bandwidth?: number;
}

/** Parses `--turn-user USER:PASSWORD` values. */
export function parseTurnUsers(values: readonly string[]): Map<string, string> {
  const users = new Map<string, string>();
  for (const value of values) {
    const colon = value.indexOf(':');
    if (colon <= 0 || colon === value.length - 1) throw new UsageError(`natpunch serve: --turn-user ${JSON.stringify(value)}: expected USER:PASSWORD, both non-empty`);
    users.set(value.slice(0, colon), value.slice(colon + 1));
  }
  return users;
}

/** Checks a `--relay` URL: turn:HOST[:PORT] or turns:HOST[:PORT] (RFC 7065), optional ?transport=udp|tcp. */
export function parseRelayUrl(value: string): string {
  const match = /^(turns?):((?:\[[0-9a-fA-F:.]+\])|[A-Za-z0-9.-]+)(?::(\d{1,5}))?(\?transport=(?:udp|tcp))?$/.exec(value);
  if (!match || (match[3] !== undefined && (Number(match[3]) < 1 || Number(match[3]) > 65535))) {
    throw new UsageError(`natpunch serve: --relay ${JSON.stringify(value)}: expected turn:HOST[:PORT] or turns:HOST[:PORT] (e.g. turn:relay.example.net:3478)`);
  }
  return value;
}

/** The relay IP when --address is a wildcard: the first non-internal IPv4 of the host, else loopback. */
export function defaultRelayAddress(address: string): string {
  if (address !== '0.0.0.0' && address !== '::') return address;
  for (const list of Object.values(os.networkInterfaces())) {
    for (const entry of list ?? []) if (entry.family === 'IPv4' && !entry.internal) return entry.address;
  }
  return '127.0.0.1';
}

/** Every IP the server listens on (a wildcard stands for all of the host's): the relay never sends to them. */
export function serverAddresses(addresses: readonly string[]): string[] {
  const out = new Set<string>();
  for (const address of addresses) {
    if (address === '0.0.0.0' || address === '::') {
      for (const list of Object.values(os.networkInterfaces())) for (const entry of list ?? []) out.add(entry.address.split('%')[0]!);
    } else if (isIP(address)) out.add(address);
  }
  return [...out];
}

/** The secret the built-in relay checks and mints with. */
export function relaySecret(config: RelayConfig): string {
  return config.secret ?? randomBytes(24).toString('base64');
}

/**
 * What `registered` offers a peer: the built-in relay's URLs (UDP, TCP, and TLS when on) and the
 * external ones, each with REST credentials for that peer (the user part is its peer id, so an
 * operator's logs name who relayed).
 */
export function relayOffers(options: { builtIn?: { host: string; port: number; tlsPort?: number }; external: readonly string[]; secret: string }): (peerId: string) => RelayOffer[] {
  const urls: string[][] = [];
  if (options.builtIn) {
    const host = options.builtIn.host.includes(':') ? `[${options.builtIn.host}]` : options.builtIn.host;
    const own = [`turn:${host}:${options.builtIn.port}?transport=udp`, `turn:${host}:${options.builtIn.port}?transport=tcp`];
    if (options.builtIn.tlsPort) own.push(`turns:${host}:${options.builtIn.tlsPort}?transport=tcp`);
    urls.push(own);
  }
  for (const url of options.external) urls.push([url]);
  return (peerId) => urls.map((list) => ({ urls: list, ...restCredentials(options.secret, peerId.slice(0, 64), RELAY_CREDENTIAL_TTL_S) }));
}
