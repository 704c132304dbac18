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
 *   Firewalls", IMC 2005 (NATs that answer an early SYN with RST; why retries must be bounded;
 *   §4 STUNT: a first SYN with a low TTL opens the own NAT without reaching the far one)
 *
 * When both NATs answer an early SYN with RST, retrying never succeeds: each side's SYN reaches
 * the other NAT before that side's SYN has opened it, and the RST that comes back closes the
 * sender's own conntrack entry, so the other side's SYN is refused in turn. With `primeTtl`,
 * the connect to each public candidate is a primed one (native/tcp-ttl, primedConnect): its
 * first SYN carries a TTL that passes our NAT(s) but expires before the far NAT, so it opens
 * our NAT for the peer and provokes no RST; the socket then stays in SYN-SENT, and its
 * retransmitted SYN (full TTL, after the kernel's initial RTO of 1 s) or the peer's SYN
 * completes the connection, as a simultaneous open or an ordinary one. Node adopts the socket
 * once it is connected. Details: docs/decisions/005-tcp-ttl-priming.md.
 */
import net from 'node:net';
import { NatpunchError, AbortedError } from '../errors.js';
import { type TransportAddress, formatAddress } from '../wire/index.js';
import { candidateTypeOf } from './candidate.js';
import { type PrimingTtl, type TcpTtlAddon, type TtlPriming, nativeTtlPriming } from './tcp-ttl.js';
import { type Clock, type WallClock, realClock, realWallClock } from '../clock.js';
import { type TcpNet, realTcpNet } from '../tcp-net.js';

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

/**
 * A primed socket ignores ICMP errors and inbound segments for this long after its low-TTL
 * SYN (IP_MINTTL 255): the "time exceeded" of that SYN comes back from the hop just beyond our
 * NAT within a few round trips, and would otherwise abort the connect (Linux aborts SYN-SENT on
 * ICMP errors). 250 ms is well above a first-hops round trip and well below the 1 s initial
 * RTO (RFC 6298 §2.1), so the socket listens again before anyone's full-TTL SYN is due.
 */
export const PRIME_QUIET_MS = 250;
/** How often a primed socket's connect state is polled until Node can adopt it. */
const PRIMED_POLL_MS = 10;

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
  /**
   * Prime the connects to public (server-reflexive) candidates with a SYN of this IP TTL;
   * 'auto' measures it once per public address (measurePrimingTtl, needs `publicAddress`).
   * Without it, or where the native addon is unavailable, connects are plain (P2P-NAT).
   */
  primeTtl?: number | 'auto';
  /**
   * 'refused' (default): the first connect to a candidate is plain, and priming starts once a
   * connect to it was refused (an RST: a NAT that refuses early SYNs is on the path), so
   * punching through NATs that drop early SYNs costs nothing extra (a primed connect completes
   * only with the kernel's first retransmission, ~1 s). 'always': every connect is primed.
   */
  primeWhen?: 'refused' | 'always';
  /** The own TCP mapping's public address (the kept connection's XOR-MAPPED-ADDRESS), for 'auto'. */
  publicAddress?: string;
  /** Where plain connects are made (default node:net; the sim passes its own, src/sim). Primed connects go through `ttlPriming`'s addon. */
  net?: TcpNet;
  /** Retry and budget timers (default the real clock). */
  clock?: Clock;
  /** Reads `startAt` against this (default Date.now). */
  wallClock?: WallClock;
  /** Retry jitter in [0, 1) (default Math.random; the sim passes a seeded one). */
  random?: () => number;
  /** Priming's addon, measurement and fd adoption (default native/tcp-ttl and node:net). */
  ttlPriming?: TtlPriming;
}

/** Whether connects were primed, with which TTL, or why not. */
export type PrimingReport = { used: true; ttl: number } | { used: false; reason: string };

export interface TcpSimultaneousOpenResult {
  /** Connected (and, for 'controlled', readable) socket; the caller owns it. */
  socket: net.Socket;
  remote: TransportAddress;
  /** connect() calls made in all, across candidates. */
  attempts: number;
  /** The chosen connection came from a primed connect (a low-TTL first SYN). */
  primed: boolean;
  /** What priming did in this punch (undefined when it was not asked for). */
  priming?: PrimingReport;
}

/** The TTL to prime with, or why not: a number is used as given, 'auto' is measured. */
async function resolvePriming(options: TcpSimultaneousOpenOptions): Promise<{ report: PrimingReport; addon?: TcpTtlAddon } | undefined> {
  const { primeTtl } = options;
  if (primeTtl === undefined) return undefined;
  const priming = options.ttlPriming ?? nativeTtlPriming;
  const available = priming.available();
  const addon = priming.addon();
  if (!available.ok || !addon) return { report: { used: false, reason: available.ok ? 'the native addon did not load' : available.reason } };
  let measured: PrimingTtl;
  if (primeTtl === 'auto') {
    if (options.publicAddress === undefined) return { report: { used: false, reason: 'no public address of the TCP mapping to measure the hops to' } };
    // The addon sets IP_TTL on IPv4 sockets; IPv6 has no NAT to prime (a firewall keeps state from the SYN).
    if (net.isIPv6(options.publicAddress)) return { report: { used: false, reason: 'priming is for IPv4 NATs; the TCP mapping is IPv6' } };
    measured = await priming.measure(options.publicAddress, options.localAddress ?? '0.0.0.0');
  } else measured = { ttl: primeTtl, hops: primeTtl - 1 };
  return measured.ttl === null ? { report: { used: false, reason: measured.reason } } : { report: { used: true, ttl: measured.ttl }, addon };
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
  const tcpNet = options.net ?? realTcpNet;
  const clock = options.clock ?? realClock;
  const wallNow = options.wallClock ?? realWallClock;
  const random = options.random ?? Math.random;
  const localAddress = options.localAddress ?? '0.0.0.0';
  const budgetMs = options.budgetMs ?? DEFAULT_TCP_PUNCH_BUDGET_MS;
  const remotes = [...new Map(options.remoteCandidates.map((c) => [formatAddress(c), c])).values()];
  if (signal?.aborted) return Promise.reject(new AbortedError('TCP punching aborted', { cause: signal.reason }));
  if (remotes.length === 0) {
    return Promise.reject(new NatpunchError('ERR_TRANSPORT', 'TCP punching: the other peer signed no TCP candidates (it cannot punch TCP)'));
  }
  const priming = resolvePriming(options);
  return new Promise((resolve, reject) => {
    const sockets = new Set<net.Socket>();
    const primedSockets = new WeakSet<net.Socket>();
    /** Primed connects still in SYN-SENT, not yet adopted by Node: closed when punching ends. */
    const pendingFds = new Set<number>();
    let prime: { report: PrimingReport; addon?: TcpTtlAddon } | undefined;
    void priming.then((resolved) => { prime = resolved; });
    /** Public candidates whose connects are primed from now on. */
    const primeTo = new Set<string>();
    const isPublic = (remote: TransportAddress): boolean => remote.family === 4 && candidateTypeOf(remote) === 'srflx';
    if (options.primeWhen === 'always') for (const remote of remotes) if (isPublic(remote)) primeTo.add(formatAddress(remote));
    const timers = new Set<unknown>();
    const lastErrors = new Map<string, string>();
    let attempts = 0;
    let done = false;
    const startDelay = Math.max(0, (options.startAt ?? wallNow()) - wallNow());
    const deadline = wallNow() + startDelay + budgetMs;

    const later = (fn: () => void, ms: number): void => {
      const timer = clock.setTimeout(() => { timers.delete(timer); fn(); }, ms);
      timers.add(timer);
    };
    const finish = (error: Error | undefined, winner?: { socket: net.Socket; remote: TransportAddress }): void => {
      if (done) return;
      done = true;
      signal?.removeEventListener('abort', onAbort);
      for (const timer of timers) clock.clearTimeout(timer);
      for (const fd of pendingFds) prime?.addon?.closeFd(fd);
      for (const socket of sockets) if (socket !== winner?.socket) socket.destroy();
      if (winner) {
        winner.socket.removeAllListeners('readable');
        winner.socket.setTimeout(0);
        resolve({ socket: winner.socket, remote: winner.remote, attempts, primed: primedSockets.has(winner.socket), ...(prime ? { priming: prime.report } : {}) });
      } else reject(error);
    };
    const onAbort = (): void => finish(new AbortedError('TCP punching aborted', { cause: signal?.reason }));
    signal?.addEventListener('abort', onAbort, { once: true });

    const retryLater = (remote: TransportAddress, code: string): void => {
      lastErrors.set(formatAddress(remote), code);
      if (options.primeTtl !== undefined && isPublic(remote) && (code === 'ECONNREFUSED' || code === 'ECONNRESET')) primeTo.add(formatAddress(remote));
      const delay = RETRY_DELAY_MS.min + random() * (RETRY_DELAY_MS.max - RETRY_DELAY_MS.min);
      if (RETRYABLE.has(code) && wallNow() + delay < deadline) later(() => attempt(remote), delay);
    };

    /** A connected socket: the controlling side takes it, the controlled side waits for the first bytes. */
    const onConnected = (socket: net.Socket, remote: TransportAddress): void => {
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
    };

    /**
     * A primed connect: the low-TTL SYN leaves now, the socket stays quiet for PRIME_QUIET_MS,
     * and is polled until it connects (Node adopts it) or fails (retried like a plain connect).
     */
    const attemptPrimed = (remote: TransportAddress, ttl: number, addon: TcpTtlAddon): void => {
      let fd: number;
      try {
        fd = addon.primedConnect(localAddress, localPort, remote.address, remote.port, ttl);
      } catch (error) {
        return retryLater(remote, (error as NodeJS.ErrnoException).code ?? (error as Error).message);
      }
      pendingFds.add(fd);
      const primedAt = wallNow();
      let quiet = true;
      const poll = (): void => {
        if (done) return;
        let state: string;
        try {
          if (quiet && wallNow() - primedAt >= PRIME_QUIET_MS) {
            addon.endQuiet(fd);
            quiet = false;
          }
          state = addon.connectState(fd);
        } catch (error) {
          state = (error as NodeJS.ErrnoException).code ?? 'EBADF';
        }
        if (state === 'connecting') return later(poll, PRIMED_POLL_MS);
        pendingFds.delete(fd);
        if (state !== 'connected') {
          addon.closeFd(fd);
          return retryLater(remote, state);
        }
        if (quiet) addon.endQuiet(fd);
        const socket = (options.ttlPriming ?? nativeTtlPriming).adopt(fd, { allowHalfOpen: true });
        sockets.add(socket);
        primedSockets.add(socket);
        socket.once('error', () => { sockets.delete(socket); socket.destroy(); });
        socket.once('close', () => sockets.delete(socket));
        onConnected(socket, remote);
      };
      later(poll, PRIMED_POLL_MS);
    };

    const attempt = (remote: TransportAddress): void => {
      if (done) return;
      // Only a connect to a public candidate crosses the far NAT; a LAN candidate needs no priming.
      const wantPrimed = primeTo.has(formatAddress(remote));
      if (wantPrimed && prime === undefined) {
        // Still measuring the priming TTL (once per peer, TRACE_WAIT_MS at most).
        void priming.then((resolved) => { prime = resolved; attempt(remote); });
        return;
      }
      attempts++;
      if (wantPrimed && prime?.addon && prime.report.used) return attemptPrimed(remote, prime.report.ttl, prime.addon);
      // allowHalfOpen: the secure stream above ends each direction on its own (a peer that has
      // sent everything half-closes while still receiving), so a FIN must not end our side too.
      // An IPv6 candidate is dialled from the IPv6 wildcard (0.0.0.0 cannot reach it: EINVAL).
      const from = options.localAddress ?? (remote.family === 6 ? '::' : localAddress);
      const socket = tcpNet.connect({ host: remote.address, port: remote.port, localAddress: from, localPort, family: remote.family, allowHalfOpen: true });
      sockets.add(socket);
      let connected = false;
      socket.once('connect', () => {
        connected = true;
        onConnected(socket, remote);
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        sockets.delete(socket);
        socket.destroy();
        // After connect, an error only ends a connection the other side did not choose.
        if (done || connected) return;
        retryLater(remote, error.code ?? error.message);
      });
      // A connection the other side chose not to use ends here; only the deadline fails the punch.
      socket.once('close', () => sockets.delete(socket));
    };

    later(() => { for (const remote of remotes) attempt(remote); }, startDelay);
    later(() => {
      const tried = remotes.map((r) => `${formatAddress(r)} (${lastErrors.get(formatAddress(r)) ?? 'no answer'})`).join(', ');
      // A refused candidate called for priming: say whether it ran, or why not (NATs refusing on both sides need it).
      const report = prime?.report;
      const primingNote = primeTo.size === 0 || !report ? '' : report.used ? `; primed with IP TTL ${report.ttl}` : `; not primed: ${report.reason}`;
      finish(new NatpunchError('ERR_TRANSPORT', `TCP punching from port ${localPort}: no connection within ${budgetMs} ms after ${attempts} connects to ${tried}${primingNote}`));
    }, startDelay + budgetMs);
  });
}
