/**
 * The relay as one more technique: allocate on a TURN server the rendezvous offered, tell the
 * other peer the relayed address (a signed, trickled 'relay' candidate), wait for the other
 * peer's, then install a permission and a channel for it. Both peers do the same, so the path is
 * relay-to-relay and works whatever NATs or firewalls sit on either side, as long as each peer
 * reaches its relay at all (UDP, else TCP, else TLS).
 * @see RFC 8656, RFC 8445 §5.1.1.2 (relayed candidates), docs/decisions/008-relay.md
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { debuglog } from 'node:util';
import { deadline } from '../deadline.js';
import { AbortedError, NatpunchError } from '../errors.js';
import type { SignalledCandidate } from '../punch/candidate.js';
import type { RelayOffer } from '../rendezvous/messages.js';
import { TurnClient } from '../turn/client.js';
import { connectTcpTransport, connectTlsTransport, openUdpTransport } from '../turn/client-transport.js';
import { formatAddress, type TransportAddress } from '../wire/index.js';
import { RelayRawPath } from '../path/relay-path.js';

const debug = debuglog('natpunch:relay');

/**
 * How long an Allocate over UDP may go unanswered before TCP is tried: two transmissions
 * (RFC 8489 §6.2.1: 0 and 500 ms) and their answers on any network a relay is any good on.
 */
export const RELAY_UDP_TIMEOUT_MS = 1_500;
/**
 * How long a TCP or TLS connection and its Allocate may take: a firewall that drops SYNs would
 * otherwise hold the attempt for the kernel's whole SYN retry budget (about two minutes).
 * Three SYN transmissions (RFC 6298 §2: 1 s, then 2 s) and a TLS handshake fit in it.
 */
export const RELAY_STREAM_TIMEOUT_MS = 5_000;
/** How long to wait for the other peer's relayed address once ours is sent (its Allocate, plus the trickle). */
export const RELAY_CANDIDATE_TIMEOUT_MS = 10_000;

interface RelayUrl {
  secure: boolean;
  host: string;
  port: number;
  transport: 'udp' | 'tcp';
}

/** Reads a turn:/turns: URL (RFC 7065 §3); undefined for one this client cannot use. */
export function parseTurnUrl(url: string): RelayUrl | undefined {
  const match = /^(turns?):(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?(?:\?transport=(udp|tcp))?$/.exec(url);
  if (!match) return undefined;
  const secure = match[1] === 'turns';
  const host = match[2]!.replace(/^\[|\]$/g, '');
  const port = match[3] ? Number(match[3]) : secure ? 5349 : 3478;
  const transport = secure ? 'tcp' : ((match[4] as 'udp' | 'tcp' | undefined) ?? 'udp');
  if (port < 1 || port > 65535 || (secure && match[4] === 'udp')) return undefined;
  return { secure, host, port, transport };
}

export interface OpenedRelay {
  client: TurnClient;
  relayed: TransportAddress;
  technique: 'turn-udp' | 'turn-tcp' | 'turn-tls';
}

/**
 * A TURN allocation on the first offer that answers, trying each offer's URLs in the order
 * UDP, TCP, TLS: UDP is the relay's fast path; TCP and TLS reach it from networks that block
 * UDP (TLS also from those that pass only TLS on 443-like ports).
 */
export async function allocateRelay(offers: readonly RelayOffer[], options: { signal?: AbortSignal; localAddress?: string } = {}): Promise<OpenedRelay> {
  const failures: string[] = [];
  debug('allocating: %d offer(s): %s', offers.length, offers.map((o) => o.urls.join(' ')).join('; '));
  for (const offer of offers) {
    const urls = offer.urls.map(parseTurnUrl).filter((u): u is RelayUrl => u !== undefined);
    const order = [...urls.filter((u) => !u.secure && u.transport === 'udp'), ...urls.filter((u) => !u.secure && u.transport === 'tcp'), ...urls.filter((u) => u.secure)];
    for (const url of order) {
      if (options.signal?.aborted) throw new AbortedError('relay allocation aborted', { cause: options.signal.reason });
      const technique = url.secure ? 'turn-tls' : url.transport === 'udp' ? 'turn-udp' : 'turn-tcp';
      const where = `${url.secure ? 'turns' : 'turn'}:${url.host}:${url.port} over ${technique.slice(5).toUpperCase()}`;
      let client: TurnClient | undefined;
      const budgetMs = url.transport === 'udp' ? RELAY_UDP_TIMEOUT_MS : RELAY_STREAM_TIMEOUT_MS;
      const limit = deadline(budgetMs, options.signal);
      const attempt = limit.signal;
      try {
        const server = await resolve(url.host, url.port);
        const transport = url.transport === 'udp' ? await openUdpTransport(server, { localAddress: options.localAddress })
          : url.secure ? await connectTlsTransport(server, { signal: attempt, localAddress: options.localAddress, tls: { servername: isIP(url.host) ? undefined : url.host, rejectUnauthorized: false } })
            : await connectTcpTransport(server, { signal: attempt, localAddress: options.localAddress });
        client = new TurnClient(transport);
        const allocation = await client.allocate({ username: offer.username, password: offer.password, signal: attempt });
        debug('allocated %s on %s', formatAddress(allocation.relayed), where);
        return { client, relayed: allocation.relayed, technique };
      } catch (error) {
        void client?.close().catch(() => undefined);
        if (options.signal?.aborted) throw new AbortedError('relay allocation aborted', { cause: options.signal.reason });
        const reason = (error as Error).name === 'AbortError' || (error as Error).name === 'TimeoutError' || (error as { code?: string }).code === 'ERR_ABORTED'
          ? `no answer within ${budgetMs} ms` : (error as Error).message;
        debug('relay %s: %s', where, reason);
        failures.push(`${where}: ${reason}`);
      } finally {
        limit.clear();
      }
    }
  }
  if (failures.length === 0) throw new NatpunchError('ERR_TRANSPORT', 'no relay: the rendezvous server offered no TURN relay (natpunch serve runs one unless --no-relay; --relay turn:HOST offers another)');
  throw new NatpunchError('ERR_TRANSPORT', `no relay: ${failures.join('; ')}`);
}

async function resolve(host: string, port: number): Promise<TransportAddress> {
  const family = isIP(host);
  if (family === 4 || family === 6) return { family, address: host, port };
  const found = await lookup(host);
  return { family: found.family === 6 ? 6 : 4, address: found.address, port };
}

export interface RelayPathOptions {
  offers: readonly RelayOffer[];
  session: string;
  localAddress?: string;
  /** Sends our relayed address to the other peer (signed, trickled). */
  announce(relayed: TransportAddress): Promise<void>;
  /** The other peer's relay candidates: those it signed already, then each one it trickles. */
  remoteRelays(listener: (candidate: SignalledCandidate) => void): () => void;
  signal: AbortSignal;
}

/** Allocate, announce, wait for the other relayed address, permission + channel: a relay path. */
export async function openRelayPath(options: RelayPathOptions): Promise<RelayRawPath> {
  const { signal } = options;
  const opened = await allocateRelay(options.offers, { signal, ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
  try {
    const announced = options.announce(opened.relayed);
    // Awaited below, after the other side's address; until then a failure (the rendezvous going
    // away) must not surface as an unhandled rejection.
    announced.catch(() => undefined);
    const remote = await new Promise<TransportAddress>((resolve, reject) => {
      const timer = setTimeout(() => done(new NatpunchError('ERR_TRANSPORT', `relay: the other peer sent no relayed address within ${RELAY_CANDIDATE_TIMEOUT_MS} ms of ours (it may have no relay: an older natpunch, or a server with --no-relay)`)), RELAY_CANDIDATE_TIMEOUT_MS);
      const onAbort = (): void => done(new AbortedError('relay aborted', { cause: signal.reason }));
      // remoteRelays() replays candidates already signed synchronously, so done() may run
      // before it returns the unsubscribe function: remember that and unsubscribe after.
      let settled = false;
      let stop: (() => void) | undefined;
      function done(error?: Error, address?: TransportAddress): void {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        stop?.();
        if (error) reject(error);
        else resolve(address!);
      }
      stop = options.remoteRelays((candidate) => done(undefined, candidate.address));
      if (settled) return stop();
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
    });
    await announced;
    // The permission and the channel for the other relayed address (RFC 8656 §9, §11); a
    // channel saves the 36-byte Send/Data header on every datagram.
    await opened.client.createPermission([remote.address], { signal });
    await opened.client.bindChannel(remote, { signal });
    debug('relay path %s -> %s (%s)', formatAddress(opened.relayed), formatAddress(remote), opened.technique);
    return new RelayRawPath(opened.client, remote, { technique: opened.technique, relayed: opened.relayed });
  } catch (error) {
    void opened.client.close().catch(() => undefined);
    throw error;
  }
}
