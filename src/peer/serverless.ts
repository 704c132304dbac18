/**
 * Serverless punching (`natpunch punch`): both sides know each other's public endpoint, bind the
 * UDP port that endpoint maps to, and run the same code. No rendezvous: roles come from a
 * tie-breaker exchange (punch/role-probe.ts), connectivity checks go to the one address the user
 * gave, then the Noise handshake and the same Connection and PathManager as a rendezvous
 * connection (establish.ts openConnection). See docs/decisions/013-serverless-punch.md.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { debuglog } from 'node:util';
import { AbortedError, NatpunchError } from '../errors.js';
import { type Identity, normalizePeerId } from '../identity/index.js';
import { type TransportAddress, formatAddress } from '../wire/index.js';
import { UdpMux } from '../punch/udp-mux.js';
import { RoleProbe } from '../punch/role-probe.js';
import { UdpCheckSession } from '../punch/udp-checks.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, PathHandshake } from '../path/handshake.js';
import { UdpEndpoint } from '../path/udp-endpoint.js';
import type { PathManager } from '../path/path-manager.js';
import type { Connection } from './connection.js';
import { openConnection } from './establish.js';
import { ipLiteralLookup } from '../punch/ip-literal-lookup.js';

const debug = debuglog('natpunch:punch');

/**
 * How long punching (role agreement and checks) waits for the other side: both sides are
 * started by hand, so the budget covers starting the second one a while after the first. At
 * one probe or check per CHECK_INTERVAL_MS (RFC 8445 Ta pacing in between), that is at most
 * ~150 probes and the check session's own bound (udp-checks.ts) to one address.
 */
export const SERVERLESS_PUNCH_TIMEOUT_MS = 30_000;

/** The protocol label: the check key, USERNAMEs and the Noise context all derive from it. */
const LABEL = 'natpunch punch/1';

/**
 * The check integrity key. Nothing secret is shared without a server (peer ids are public keys,
 * the endpoints are seen by anyone on the path), so the key only keeps natpunch's checks apart
 * from other traffic; the Noise handshake is what authenticates (decision 013).
 */
export const SERVERLESS_CHECK_KEY: Uint8Array = createHash('sha256').update(LABEL).digest();

/** Options of {@link punchServerless}: both sides know each other's public endpoint, no server. */
export interface ServerlessPunchOptions {
  /** This peer's Ed25519 identity (the Noise static key; its peer id is what the other side checks). */
  identity: Identity;
  /** The local UDP port whose NAT mapping the other side was told. */
  localPort: number;
  /** The other side's public endpoint (given by the user: the only address anything is sent to). */
  remote: TransportAddress;
  /** The other side's peer id: the handshake refuses anyone else. Without it: any peer, shown to the user. */
  peerId?: string;
  /** Local address to bind (default: all). */
  bindAddress?: string;
  /** Punching's budget, ms (default SERVERLESS_PUNCH_TIMEOUT_MS); the handshake gets at most DEFAULT_HANDSHAKE_TIMEOUT_MS more. */
  timeoutMs?: number;
  /** Aborting stops the punch or the handshake (AbortedError); an established connection is not affected. */
  signal?: AbortSignal;
  /** Called once the socket is bound, before the first packet (the CLI's ready event). */
  onBound?: () => void;
}

/** What {@link punchServerless} gives: the connection, and whether the other side's identity was checked. */
export interface ServerlessConnection {
  /** The secured stream to the peer, with its path manager, as from `Peer.connect()`. */
  connection: Connection;
  /** Whether the peer's id was checked against --peer-id (false: encrypted, but whoever answered). */
  authenticated: boolean;
  /** Waits for the connection to settle (its last ACKs repeated), then releases the socket. */
  close(): Promise<void>;
}

/** The message for a punch that heard nothing: what to check, on this side and the other. */
function noAnswer(remote: TransportAddress, ms: number, cause: unknown): NatpunchError {
  return new NatpunchError('ERR_UNREACHABLE', `no answer from ${formatAddress(remote)} within ${Math.round(ms / 1000)} s: check the address, `
    + 'and that the other side runs natpunch punch with --peer pointing here (its --local-port mapped to the address it was given)', { cause });
}

/**
 * A handshake that failed with no message refused on this side: the responder never learns an
 * initiator's id that the initiator, refusing ours, does not send. Say which ids were in play.
 */
function refusedHere(error: unknown, options: ServerlessPunchOptions, expected: string | undefined): unknown {
  if (!NatpunchError.is(error) || error.code !== 'ERR_NOISE' || /refused/.test(error.message)) return error;
  const remote = formatAddress(options.remote);
  return new NatpunchError('ERR_NOISE', `the peer at ${remote} did not complete the handshake (${error.message}): `
    + `it may expect another peer id than ours (${options.identity.peerId})${expected ? `, or ${expected} (--peer-id) is not who runs there` : ''}; `
    + `check the ids on both sides (natpunch id)`, { cause: error });
}

/** How often the initiator looks for the responder's confirmation (a bounded wait, not a busy one). */
const CONFIRM_POLL_MS = 10;

/** Resolves once `connection` has received a sealed packet; ERR_NOISE after `timeoutMs`, AbortedError on abort. */
function confirmed(connection: Connection, timeoutMs: number, options: ServerlessPunchOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const done = (error?: Error): void => {
      clearInterval(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve();
    };
    const onAbort = (): void => done(new AbortedError('punch aborted', { cause: options.signal?.reason }));
    const timer = setInterval(() => {
      if (connection.stats.packetsReceived > 0) done();
      else if (connection.destroyed) done(new NatpunchError('ERR_TRANSPORT', `the connection to ${formatAddress(options.remote)} closed before the peer confirmed it`));
      else if (performance.now() - startedAt > timeoutMs) {
        done(new NatpunchError('ERR_NOISE', `the peer at ${formatAddress(options.remote)} (${connection.remotePeerId}) never confirmed the handshake within ${timeoutMs} ms: `
          + `it probably refused our id (${options.identity.peerId}); check --peer-id on its side (natpunch id here prints ours)`));
      }
    }, CONFIRM_POLL_MS);
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Binds the UDP socket on `port`, or a one-line ERR_LISTEN saying why not. */
async function bindSocket(port: number, address: string | undefined): Promise<dgram.Socket> {
  const socket = dgram.createSocket({
    type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20,
    lookup: ipLiteralLookup(4),
  });
  try {
    const listening = once(socket, 'listening');
    socket.bind(port, address);
    await listening;
  } catch (error) {
    socket.close();
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'the port is in use (another natpunch?); choose another --local-port and tell the other side its mapping'
      : code === 'EACCES' ? 'permission denied (ports below 1024 need root); choose a port from 1024 up'
        : (error as Error).message;
    throw new NatpunchError('ERR_LISTEN', `natpunch punch: cannot bind UDP port ${port}: ${why}`, { cause: error });
  }
  socket.on('error', (error) => debug('udp socket: %s', error.message));
  return socket;
}

/**
 * Punches a UDP path to `remote` from `localPort` and runs the Noise handshake on it: resolves
 * to the connection, end-to-end encrypted; with `peerId`, authenticated (a wrong peer fails
 * with ERR_NOISE naming both ids). Fails with ERR_UNREACHABLE when nothing answers in time.
 */
export async function punchServerless(options: ServerlessPunchOptions): Promise<ServerlessConnection> {
  const started = performance.now();
  const timeoutMs = options.timeoutMs ?? SERVERLESS_PUNCH_TIMEOUT_MS;
  const remaining = (): number => Math.max(1, timeoutMs - (performance.now() - started));
  const expected = options.peerId === undefined ? undefined : normalizePeerId(options.peerId);
  const socket = await bindSocket(options.localPort, options.bindAddress);
  const mux = new UdpMux(socket);
  options.onBound?.();
  // Only the address the user gave, and (for a NAT that moved the port) other ports of its IP.
  const sameIp = (from: TransportAddress): boolean => from.address === options.remote.address;
  const probe = new RoleProbe({
    mux, username: `${LABEL} role`, key: SERVERLESS_CHECK_KEY, remote: options.remote, accept: sameIp, timeoutMs, signal: options.signal,
  });
  let checks: UdpCheckSession | undefined;
  let udp: UdpEndpoint | undefined;
  let handshake: PathHandshake | undefined;
  let opened: { connection: Connection; manager: PathManager } | undefined;
  const release = (): void => {
    opened?.manager.close();
    handshake?.close();
    checks?.close();
    probe.close();
    udp?.close();
    mux.close();
    socket.close();
  };
  try {
    let agreement;
    try {
      agreement = await probe.result;
    } catch (error) {
      throw error instanceof AbortedError ? error : noAnswer(options.remote, timeoutMs, error);
    }
    const [controlling, controlled] = agreement.tieBreakers;
    // Both sides hold the same two tie-breakers: the run's name, bound into checks and handshake.
    const session = createHash('sha256').update(LABEL).update(controlling).update(controlled).digest('hex');
    debug('role %s after %d probes; session %s', agreement.role, agreement.probesSent, session.slice(0, 8));
    udp = new UdpEndpoint(mux, session);
    const endpoint = udp;
    const initiator = agreement.role === 'controlling';
    handshake = new PathHandshake({
      identity: options.identity, initiator, ...(expected ? { expectedPeerId: expected } : { anyPeer: true }),
      context: new TextEncoder().encode(`${LABEL} ${session}`), signal: options.signal,
      // The checks' budget, then a handshake's (no more than the whole budget: a test's short one stays short).
      timeoutMs: Math.round(remaining() + Math.min(DEFAULT_HANDSHAKE_TIMEOUT_MS, timeoutMs)),
    });
    const shake = handshake;
    checks = new UdpCheckSession({
      mux, session, key: SERVERLESS_CHECK_KEY, role: agreement.role, signal: options.signal, timeoutMs: remaining(),
      remoteCandidates: [{ type: 'srflx', address: options.remote }], acceptPeerReflexive: sameIp,
      // As establish.ts does with UDP alone: message 0 leaves with the nominating check.
      onNominating: initiator ? (remote) => shake.offer(endpoint.pathTo(remote, 'udp-hole-punch')) : undefined,
    });
    let punched;
    try {
      punched = await checks.result;
    } catch (error) {
      throw error instanceof AbortedError ? error : noAnswer(options.remote, timeoutMs, error);
    }
    debug('punched %s in %d checks', formatAddress(punched.remote), punched.checksSent);
    handshake.offer(udp.pathTo(punched.remote, 'udp-hole-punch'));
    let result;
    try {
      result = await handshake.result;
    } catch (error) {
      throw refusedHere(error, options, expected);
    }
    opened = openConnection(result, udp, undefined);
    const { connection } = opened;
    // Key confirmation: Noise XX's responder checks the initiator's id last (message 2), so an
    // initiator it refuses would otherwise believe itself connected. The responder's first
    // sealed packet says it accepted; the initiator waits for it.
    if (initiator) await confirmed(connection, Math.min(DEFAULT_HANDSHAKE_TIMEOUT_MS, timeoutMs), options);
    else connection.ping();
    connection.ms = Math.round(performance.now() - started);
    // The checks stay answered until the connection has settled (the other side's last
    // nomination may still come); then everything goes with the socket.
    const settled = new Promise<void>((resolve) => connection.once('close', () => { connection.settle().finally(resolve); }));
    return {
      connection,
      authenticated: expected !== undefined,
      close: async () => {
        if (!connection.destroyed) connection.destroy();
        await settled;
        release();
      },
    };
  } catch (error) {
    opened?.connection.destroy();
    release();
    throw error;
  }
}
