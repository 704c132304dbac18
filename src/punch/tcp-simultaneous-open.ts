/**
 * TCP hole punching by simultaneous open ("P2P-NAT").
 *
 * Each peer keeps a TCP connection to the rendezvous server's STUN endpoint open from local
 * port L (so its NAT keeps the mapping the peer signed), and at the agreed time connects from
 * the same L to every TCP candidate of the other peer. Its outgoing SYN opens its own NAT for
 * the other peer's endpoint; when the other peer's SYN arrives through that hole the two
 * connect() calls meet in a simultaneous open (RFC 9293 §3.5, figure 8), or one side sees an
 * ordinary SYN-ACK. Nobody ever listen()s on L: a listening socket on L makes the connects
 * fail with EADDRINUSE, and libuv's SO_REUSEADDR (set before bind) already allows several
 * connections from L to *different* remote endpoints.
 *
 * @see Ford, Srisuresh, Kegel, "Peer-to-Peer Communication Across Network Address Translators",
 *   USENIX 2005, §4 "TCP hole punching" (both peers connect from the port they registered from,
 *   retrying on failure, and take whichever connection completes)
 * @see Guha, Francis, "Characterization and Measurement of TCP Traversal through NATs and
 *   Firewalls", IMC 2005 (NATs that answer an early SYN with RST; why retries must be bounded)
 */
import net from 'node:net';
import { NatpunchError, AbortedError } from '../errors.js';
import { type TransportAddress, formatAddress } from '../wire/index.js';

/**
 * Retry budget. A NAT that answers an unsolicited SYN with RST (or an ICMP error) fails the
 * connect at once, and the hole exists only after the other side's SYN has gone out, so failed
 * connects are retried after a short random delay: jitter keeps the two sides from retrying in
 * lock step, and 50-250 ms is a few WAN round trips, short enough to catch the other side's
 * SYN, long enough that one session sends at most ~20 SYNs per candidate per second budget
 * (16 candidates at most: never a SYN flood). A NAT that silently drops the early SYN needs no
 * retry: the kernel retransmits it (1 s, 3 s, ...) and the socket stays in SYN-SENT to meet the
 * other side's SYN. The whole punch gives up after DEFAULT_TCP_PUNCH_BUDGET_MS, like UDP checks.
 */
export const RETRY_DELAY_MS = { min: 50, max: 250 } as const;
export const DEFAULT_TCP_PUNCH_BUDGET_MS = 10_000;

/** Errors that mean "no hole yet" rather than "impossible": worth another SYN. */
const RETRYABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EADDRINUSE', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

export interface TcpSimultaneousOpenOptions {
  /** L: the local port of the kept STUN/TCP connection, whose NAT mapping the peer signed. */
  localPort: number;
  /** The address the kept connection is bound to (default '0.0.0.0'). */
  localAddress?: string;
  /** ONLY the other peer's verified, signed TCP candidates. */
  remoteCandidates: readonly TransportAddress[];
  /**
   * 'controlling' takes the first socket that connects; 'controlled' takes the first connected
   * socket on which the controlling side's first bytes (its Noise message) arrive, so both ends
   * agree on one connection even when several candidate pairs complete.
   */
  role: 'controlling' | 'controlled';
  /** Local ms epoch (Date.now) at which to send the first SYNs (default: now). */
  startAt?: number;
  /** Give up after this many ms from startAt (default DEFAULT_TCP_PUNCH_BUDGET_MS). */
  budgetMs?: number;
  signal?: AbortSignal;
}

export interface TcpSimultaneousOpenResult {
  /** Connected (and, for 'controlled', readable) socket; the caller owns it. */
  socket: net.Socket;
  remote: TransportAddress;
  /** connect() calls made in all, across candidates. */
  attempts: number;
}

/**
 * Punches a TCP connection: connects from L to every remote candidate at startAt, retrying
 * within the budget, and resolves with the one connection both sides use; every other socket
 * is destroyed.
 * @throws NatpunchError ERR_TRANSPORT (no connection within the budget, or nothing to try),
 *   AbortedError
 */
export function tcpSimultaneousOpen(options: TcpSimultaneousOpenOptions): Promise<TcpSimultaneousOpenResult> {
  const { localPort, role, signal } = options;
  const localAddress = options.localAddress ?? '0.0.0.0';
  const budgetMs = options.budgetMs ?? DEFAULT_TCP_PUNCH_BUDGET_MS;
  const remotes = [...new Map(options.remoteCandidates.map((c) => [formatAddress(c), c])).values()];
  if (signal?.aborted) return Promise.reject(new AbortedError('TCP punching aborted', { cause: signal.reason }));
  if (remotes.length === 0) {
    return Promise.reject(new NatpunchError('ERR_TRANSPORT', 'TCP punching: the other peer signed no TCP candidates (it cannot punch TCP)'));
  }
  return new Promise((resolve, reject) => {
    const sockets = new Set<net.Socket>();
    const timers = new Set<NodeJS.Timeout>();
    const lastErrors = new Map<string, string>();
    let attempts = 0;
    let done = false;
    const startDelay = Math.max(0, (options.startAt ?? Date.now()) - Date.now());
    const deadline = Date.now() + startDelay + budgetMs;

    const later = (fn: () => void, ms: number): void => {
      const timer = setTimeout(() => { timers.delete(timer); fn(); }, ms);
      timers.add(timer);
    };
    const finish = (error: Error | undefined, winner?: { socket: net.Socket; remote: TransportAddress }): void => {
      if (done) return;
      done = true;
      signal?.removeEventListener('abort', onAbort);
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) if (socket !== winner?.socket) socket.destroy();
      if (winner) {
        winner.socket.removeAllListeners('readable');
        winner.socket.setTimeout(0);
        resolve({ socket: winner.socket, remote: winner.remote, attempts });
      } else reject(error);
    };
    const onAbort = (): void => finish(new AbortedError('TCP punching aborted', { cause: signal?.reason }));
    signal?.addEventListener('abort', onAbort, { once: true });

    const attempt = (remote: TransportAddress): void => {
      if (done) return;
      attempts++;
      // allowHalfOpen: the secure stream above ends each direction on its own (a peer that has
      // sent everything half-closes while still receiving), so a FIN must not end our side too.
      const socket = net.connect({ host: remote.address, port: remote.port, localAddress, localPort, family: remote.family, allowHalfOpen: true });
      sockets.add(socket);
      let connected = false;
      socket.once('connect', () => {
        connected = true;
        if (done) return;
        socket.setNoDelay(true);
        if (role === 'controlling') return finish(undefined, { socket, remote });
        // Wait for the controlling side's first bytes without consuming them: 'readable'
        // leaves them buffered for whoever reads the socket next.
        // 'readable' also fires at EOF: a connection the controlling side dropped is not chosen.
        const onReadable = (): void => {
          if (socket.readableLength > 0) finish(undefined, { socket, remote });
          else if (!socket.readableEnded) socket.once('readable', onReadable);
        };
        socket.once('readable', onReadable);
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        sockets.delete(socket);
        socket.destroy();
        // After connect, an error only ends a connection the other side did not choose.
        if (done || connected) return;
        lastErrors.set(formatAddress(remote), error.code ?? error.message);
        const delay = RETRY_DELAY_MS.min + Math.random() * (RETRY_DELAY_MS.max - RETRY_DELAY_MS.min);
        if (RETRYABLE.has(error.code ?? '') && Date.now() + delay < deadline) later(() => attempt(remote), delay);
      });
      // A connection the other side chose not to use ends here; only the deadline fails the punch.
      socket.once('close', () => sockets.delete(socket));
    };

    later(() => { for (const remote of remotes) attempt(remote); }, startDelay);
    later(() => {
      const tried = remotes.map((r) => `${formatAddress(r)} (${lastErrors.get(formatAddress(r)) ?? 'no answer'})`).join(', ');
      finish(new NatpunchError('ERR_TRANSPORT', `TCP punching from port ${localPort}: no connection within ${budgetMs} ms after ${attempts} connects to ${tried}`));
    }, startDelay + budgetMs);
  });
}
