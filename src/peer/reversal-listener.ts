/**
 * TCP connection reversal: a peer that is directly reachable over TCP (no NAT, or a port
 * mapping: the server's dial-back connected) does not punch. It keeps a listener on an
 * ephemeral port (never L: a listening socket on L would make the simultaneous-open connects
 * from L fail with EADDRINUSE) and the other side simply connects to it (Ford, Srisuresh,
 * Kegel 2005, §2.3 "connection reversal").
 *
 * Every connection to the listener starts with a 20-byte preamble, so one port serves both:
 * - DIAL_BACK_MAGIC + hello token: the server's dial-back; answered with DIAL_BACK_OK.
 * - REVERSAL_MAGIC + reversalTag(session): a peer's reversal connection for that session,
 *   handed to whoever waits for it. The Noise handshake that follows authenticates the peer;
 *   the tag only routes.
 * Unidentified sockets are bounded in number and time.
 */
import net from 'node:net';
import { createHash } from 'node:crypto';
import { debuglog } from 'node:util';
import { type Clock, type WallClock, realClock, realWallClock, sleep } from '../clock.js';
import { deadlineOn } from '../deadline.js';
import { type TcpNet, realTcpNet } from '../tcp-net.js';
import { AbortedError, NatpunchError } from '../errors.js';
import { DIAL_BACK_MAGIC, DIAL_BACK_OK, PREAMBLE_LENGTH, REVERSAL_MAGIC } from '../rendezvous/dial-back.js';
import { type TransportAddress, formatAddress } from '../wire/index.js';
import type { DialBackResponder } from './reachability.js';

const debug = debuglog('natpunch:reversal');

/** How long a new connection may take to send its preamble, and an early one may wait for its session. */
export const PREAMBLE_TIMEOUT_MS = 5_000;
/** Connections without a taker yet (no preamble, or a session not yet known): beyond it, new ones are dropped. */
export const MAX_UNCLAIMED = 32;
/** A reversal dial gives up after this long from startAt, like a punch. */
export const DEFAULT_REVERSAL_BUDGET_MS = 10_000;

/** The 16 bytes after REVERSAL_MAGIC: derived from the session id both peers got. */
export function reversalTag(session: string): Buffer {
  return createHash('sha256').update(`natpunch reversal ${session}`).digest().subarray(0, 16);
}

interface Waiter {
  resolve(socket: net.Socket): void;
}

/** The world a listener runs in (default: node:net and real timers; the sim passes its own). */
export interface ReversalListenerOptions {
  net?: TcpNet;
  clock?: Clock;
}

export class ReversalListener {
  readonly #server: net.Server;
  readonly #responder: DialBackResponder;
  readonly #clock: Clock;
  readonly #waiters = new Map<string, Waiter>();
  /** Reversal connections that arrived before their session's punch message did. */
  readonly #early = new Map<string, net.Socket>();
  #unclaimed = 0;

  private constructor(server: net.Server, responder: DialBackResponder, clock: Clock) {
    this.#server = server;
    this.#responder = responder;
    this.#clock = clock;
    server.on('connection', (socket) => this.#onConnection(socket));
    server.on('error', (error) => debug('listener: %s', error.message));
  }

  static async listen(responder: DialBackResponder, bindAddress?: string, options: ReversalListenerOptions = {}): Promise<ReversalListener> {
    // allowHalfOpen: as for punched sockets, the secure stream ends each direction on its own.
    const server = (options.net ?? realTcpNet).createServer({ allowHalfOpen: true, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, bindAddress ?? '0.0.0.0', () => { server.off('error', reject); resolve(); });
    });
    return new ReversalListener(server, responder, options.clock ?? realClock);
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /**
   * The connection the other peer makes for `session` (preamble consumed; the rest left
   * unread). Rejects with ERR_TRANSPORT if none came within `timeoutMs`.
   */
  accept(session: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<net.Socket> {
    const { signal, timeoutMs } = options;
    const tag = reversalTag(session).toString('hex');
    if (signal?.aborted) return Promise.reject(new AbortedError('TCP reversal aborted', { cause: signal.reason }));
    const early = this.#early.get(tag);
    if (early) {
      this.#early.delete(tag);
      this.#unclaimed--;
      return Promise.resolve(handOver(early));
    }
    return new Promise((resolve, reject) => {
      const stop = (): void => {
        this.#clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#waiters.delete(tag);
      };
      const onAbort = (): void => { stop(); reject(new AbortedError('TCP reversal aborted', { cause: signal?.reason })); };
      const timer = this.#clock.setTimeout(() => {
        stop();
        reject(new NatpunchError('ERR_TRANSPORT', `TCP reversal: the other peer did not connect to port ${this.port} within ${timeoutMs} ms`));
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.set(tag, { resolve: (socket) => { stop(); resolve(handOver(socket)); } });
    });
  }

  close(): void {
    this.#server.close();
    for (const socket of this.#early.values()) socket.destroy();
    this.#early.clear();
  }

  #onConnection(socket: net.Socket): void {
    if (this.#unclaimed >= MAX_UNCLAIMED) {
      socket.destroy();
      return;
    }
    this.#unclaimed++;
    let claimed = false;
    const release = (): void => { if (!claimed) { claimed = true; this.#unclaimed--; } };
    socket.on('error', (error) => debug('connection from %s: %s', socket.remoteAddress, error.message));
    socket.once('close', release);
    socket.setTimeout(PREAMBLE_TIMEOUT_MS, () => socket.destroy());
    const onReadable = (): void => {
      const preamble = socket.read(PREAMBLE_LENGTH) as Buffer | null;
      if (preamble === null) return;
      socket.off('readable', onReadable);
      const magic = preamble.subarray(0, 4);
      const id = preamble.subarray(4);
      if (magic.equals(DIAL_BACK_MAGIC) && this.#responder.tcpProbe(id)) {
        socket.end(DIAL_BACK_OK);
        return;
      }
      if (!magic.equals(REVERSAL_MAGIC)) {
        socket.destroy();
        return;
      }
      const tag = id.toString('hex');
      const waiter = this.#waiters.get(tag);
      if (waiter) {
        release();
        socket.off('close', release);
        waiter.resolve(socket);
      } else if (!this.#early.has(tag)) {
        // Kept (still counted as unclaimed) until its session's punch message arrives, or the timeout.
        this.#early.set(tag, socket);
        socket.once('close', () => { if (this.#early.get(tag) === socket) this.#early.delete(tag); });
      } else {
        socket.destroy();
      }
    };
    socket.on('readable', onReadable);
  }
}

/** A listener's socket, ready for its new owner: no timeout, no listeners of ours. */
function handOver(socket: net.Socket): net.Socket {
  socket.setTimeout(0);
  socket.removeAllListeners('timeout');
  socket.removeAllListeners('close');
  socket.removeAllListeners('error');
  socket.removeAllListeners('readable');
  // Until the new owner listens, an error must not be unhandled (the owner sees it as a close).
  socket.on('error', (error) => debug('reversal connection: %s', error.message));
  return socket;
}

export interface DialReversalOptions {
  /** ONLY the other peer's verified, signed reversal listener endpoints. */
  remoteCandidates: readonly TransportAddress[];
  session: string;
  localAddress?: string;
  /** Local ms epoch at which to connect (default: now). */
  startAt?: number;
  budgetMs?: number;
  signal?: AbortSignal;
  /** Where the connects are made (default node:net; the sim passes its own). */
  net?: TcpNet;
  /** Start and budget timers (default the real clock). */
  clock?: Clock;
  /** Reads `startAt` against this (default Date.now). */
  wallClock?: WallClock;
}

/**
 * The unreachable side of TCP reversal: connects to every listener endpoint of the other peer
 * at startAt, keeps the first that connects, sends the preamble on it and closes the rest. No
 * retries of its own: the listener is reachable, and the kernel retransmits a lost SYN.
 * @throws NatpunchError ERR_TRANSPORT (nothing connected within the budget), AbortedError
 */
export async function dialReversal(options: DialReversalOptions): Promise<{ socket: net.Socket; remote: TransportAddress }> {
  const { signal } = options;
  const remotes = [...new Map(options.remoteCandidates.map((c) => [formatAddress(c), c])).values()];
  if (remotes.length === 0) throw new NatpunchError('ERR_TRANSPORT', 'TCP reversal: the other peer signed no listener endpoints');
  const budgetMs = options.budgetMs ?? DEFAULT_REVERSAL_BUDGET_MS;
  const clock = options.clock ?? realClock;
  const wallNow = options.wallClock ?? realWallClock;
  try {
    await sleep(clock, Math.max(0, (options.startAt ?? wallNow()) - wallNow()), signal);
  } catch {
    throw new AbortedError('TCP reversal aborted', { cause: signal?.reason });
  }
  const stop = new AbortController();
  const limit = deadlineOn(clock, budgetMs, stop.signal, signal);
  const combined = limit.signal;
  const sockets: net.Socket[] = [];
  const connectTo = (remote: TransportAddress): Promise<{ socket: net.Socket; remote: TransportAddress }> => new Promise((resolve, reject) => {
    const socket = (options.net ?? realTcpNet).connect({ host: remote.address, port: remote.port, localAddress: options.localAddress, family: remote.family, allowHalfOpen: true });
    sockets.push(socket);
    const onAbort = (): void => { socket.destroy(); reject(new Error(`${formatAddress(remote)}: no answer`)); };
    combined.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => { combined.removeEventListener('abort', onAbort); resolve({ socket, remote }); });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      combined.removeEventListener('abort', onAbort);
      reject(new Error(`${formatAddress(remote)}: ${error.code ?? error.message}`));
    });
  });
  let winner: { socket: net.Socket; remote: TransportAddress };
  try {
    winner = await Promise.any(remotes.map(connectTo));
  } catch (error) {
    if (signal?.aborted) throw new AbortedError('TCP reversal aborted', { cause: signal.reason });
    const tried = (error as AggregateError).errors.map((e: Error) => e.message).join(', ');
    throw new NatpunchError('ERR_TRANSPORT', `TCP reversal: no connection within ${budgetMs} ms to ${tried}`);
  } finally {
    stop.abort();
  }
  for (const socket of sockets) if (socket !== winner.socket) socket.destroy();
  const { socket } = winner;
  socket.setNoDelay(true);
  socket.removeAllListeners('error');
  socket.on('error', (error) => debug('reversal connection: %s', error.message));
  socket.write(Buffer.concat([REVERSAL_MAGIC, reversalTag(options.session)]));
  return winner;
}
