/**
 * Which techniques a session runs, and how `--transport auto` picks one path.
 *
 * Plan (both sides compute it from the same signed intent and accept, so they agree):
 * - Connection reversal: if exactly one side signed that it is directly reachable over a
 *   transport, the other side dials it and the reachable side sends nothing first (Ford,
 *   Srisuresh, Kegel 2005, §2.3). UDP: only the unreachable side sends connectivity checks; the
 *   reachable side answers them (and, as ICE does, sends triggered checks back to where they
 *   came from, RFC 8445 §7.3.1.4). TCP: the unreachable side connects to the reachable side's
 *   signed listener endpoints.
 *   When both sides are reachable over TCP, the controlling side dials the controlled side's
 *   listener (no simultaneous open between two hosts that take connections anyway).
 * - Otherwise punching: UDP checks from both sides, TCP simultaneous open from both L ports
 *   (when both signed TCP candidates).
 *
 * Race (`auto`): both techniques start at once. The controlling side decides, like ICE
 * nomination: it takes UDP as soon as UDP is ready; if TCP is ready first it waits
 * AUTO_UDP_GRACE_MS for UDP and takes TCP only if UDP is still not ready (UDP is preferred: no
 * head-of-line blocking under the stream, and it is what the relay and prediction build on). It
 * starts the Noise handshake on the chosen path only. The controlled side answers the handshake
 * on whichever path it arrives — never its own guess — so both ends always agree. The loser is
 * not thrown away: when it completes, the path manager keeps it as a standby path, validated
 * and ready for a failover (TCP) or an upgrade (UDP) (src/path/path-manager.ts).
 */
import type { RawPath } from '../path/raw-path.js';
import { AbortedError, NatpunchError } from '../errors.js';
import type { PunchInstruction } from '../rendezvous/client.js';
import { type Clock, realClock } from '../clock.js';

/**
 * How long a controlling peer that has a TCP path waits for UDP to complete too. UDP checks
 * that work complete within a few check intervals (200 ms each) of the first packet; one second
 * also covers a lost check or two, and equals TCP's initial SYN retransmission timeout
 * (RFC 6298 §2.1), the granularity at which the TCP side would have retried anyway.
 */
export const AUTO_UDP_GRACE_MS = 1_000;

export type UdpMode = 'punch' | 'dial' | 'answer';
export type TcpMode = 'simultaneous-open' | 'dial' | 'accept';

export interface PathPlan {
  udp?: UdpMode;
  tcp?: TcpMode;
  /** Allocate on a relay and meet the other peer's relayed address (peer/relay.ts). */
  relay?: boolean;
}

/**
 * The techniques to run for `instruction`, from the signed claims alone. `relays`: whether this
 * peer was offered a relay (with 'auto' the relay runs beside the direct techniques, as the
 * fallback the race takes only when nothing direct is ready: see `race`).
 */
export function planPaths(instruction: PunchInstruction, relays = false): PathPlan {
  const local = instruction.localReachable;
  const remote = instruction.remoteReachable;
  const udp: UdpMode = local.udp && !remote.udp ? 'answer' : remote.udp && !local.udp ? 'dial' : 'punch';
  let tcp: TcpMode | undefined;
  if (remote.tcp && !local.tcp && instruction.remoteTcpListen.length > 0) tcp = 'dial';
  else if (local.tcp && !remote.tcp) tcp = 'accept';
  // Both reachable (open hosts, one LAN, loopback): a plain connect to a listener needs no
  // punching, where simultaneous open between two reachable hosts mostly meets RSTs until two
  // SYNs happen to cross (measured on loopback: 89 connects, 6.8 s). The controlling side dials.
  else if (local.tcp && remote.tcp && instruction.role === 'controlling' && instruction.remoteTcpListen.length > 0) tcp = 'dial';
  else if (local.tcp && remote.tcp && instruction.role === 'controlled') tcp = 'accept';
  else if (instruction.localTcpCandidates.length > 0 && instruction.remoteTcpCandidates.length > 0) tcp = 'simultaneous-open';
  switch (instruction.transport) {
    case 'udp':
      return { udp };
    case 'tcp':
      return tcp ? { tcp } : {};
    case 'auto':
      return { udp, ...(tcp ? { tcp } : {}), ...(relays ? { relay: true } : {}) };
    case 'relay':
      return { relay: true };
  }
}

/**
 * The other side's UDP candidates that a side answering by reversal ('answer') still checks
 * itself: those of an address family its reachability was not proven for. The server's dial-back
 * reached this side's server-reflexive address only, so "reachable" holds for that family alone;
 * a dual-stack peer behind a full-cone IPv4 NAT is as unreachable as any over IPv6 behind its
 * router's stateful firewall (RFC 6092), which only its own outbound check opens.
 */
export function unprovenFamilyCandidates(instruction: PunchInstruction): PunchInstruction['remoteCandidates'] {
  const proven = reachableFamilies(instruction.localCandidates);
  return instruction.remoteCandidates.filter((c) => !proven.has(c.address.family));
}

/**
 * The address families a reachable peer's signed reachability holds for: those of its srflx
 * candidates, where the dial-back went. No srflx signed: the peer has no NAT and signed that
 * address as host (prioritise keeps one type per address); the dial-back went to its IPv4 one,
 * as to every peer registered over IPv4.
 */
export function reachableFamilies(candidates: PunchInstruction['localCandidates']): Set<4 | 6> {
  const srflx = candidates.filter((c) => c.type === 'srflx').map((c) => c.address.family);
  return new Set<4 | 6>(srflx.length > 0 ? srflx : [4]);
}

/** A path one technique produced: frames both ways, not yet secured (src/path). */
export type AttemptKind = 'udp' | 'tcp' | 'relay';

export interface ReadyPath {
  kind: AttemptKind;
  path: RawPath;
  /** Releases everything the attempt holds (for a loser nobody wants, or when the handshake fails). */
  close(): void;
}

/** One technique in flight. `abort` cancels it; a path it already produced is closed by the race. */
export interface Attempt {
  kind: AttemptKind;
  ready: Promise<ReadyPath>;
  abort(): void;
}

export interface RaceOptions {
  signal?: AbortSignal;
  /**
   * Paths that lose the race but complete anyway (or were held during the grace period) go here
   * instead of being closed, and their attempts are not aborted: the path manager keeps them as
   * standby paths (a TCP path to fail over to, a UDP path to upgrade to).
   */
  onLatePath?: (path: ReadyPath) => void;
  /** The grace timer's clock (default the real one; the sim passes its virtual clock). */
  clock?: Clock;
}

/** Preference among ready paths: UDP, then TCP, then the relay. */
const RANK: Record<AttemptKind, number> = { udp: 0, tcp: 1, relay: 2 };

/**
 * Runs the race described above. `graceMs` is AUTO_UDP_GRACE_MS for the controlling side and 0
 * for the controlled side (whose attempts resolve only when the controlling side's bytes came).
 * UDP wins as soon as it is ready. A TCP or relay path that is ready first is held for `graceMs`
 * while the attempts it would beat go on (UDP for TCP; UDP and TCP for the relay), then the best
 * held path wins; the others become late paths.
 * @throws the only attempt's error, or ERR_TRANSPORT naming each attempt's failure
 */
export function race(attempts: Attempt[], graceMs: number, options: RaceOptions = {}): Promise<ReadyPath> {
  if (attempts.length === 1) return attempts[0]!.ready;
  const { signal, onLatePath } = options;
  const clock = options.clock ?? realClock;
  return new Promise((resolve, reject) => {
    const failures = new Map<string, Error>();
    let done = false;
    let winnerChosen = false;
    const held: Array<{ attempt: Attempt; path: ReadyPath }> = [];
    let graceTimer: unknown;
    const best = (): { attempt: Attempt; path: ReadyPath } | undefined => [...held].sort((a, b) => RANK[a.attempt.kind] - RANK[b.attempt.kind])[0];
    const settle = (winner: { attempt: Attempt; path: ReadyPath } | undefined, error?: Error): void => {
      if (done) return;
      done = true;
      winnerChosen = winner !== undefined;
      clock.clearTimeout(graceTimer);
      signal?.removeEventListener('abort', onAbort);
      if (!(winner && onLatePath)) for (const attempt of attempts) if (attempt !== winner?.attempt) attempt.abort();
      for (const other of held) {
        if (other === winner) continue;
        if (winner && onLatePath) onLatePath(other.path);
        else other.path.close();
      }
      if (winner) resolve(winner.path);
      else reject(error);
    };
    const onAbort = (): void => settle(undefined, new AbortedError('connecting aborted', { cause: signal?.reason }));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    /** Attempts still running that would beat the best held path. */
    const better = (): Attempt[] => {
      const top = best();
      return attempts.filter((a) => !failures.has(a.kind) && !held.some((h) => h.attempt === a) && (!top || RANK[a.kind] < RANK[top.attempt.kind]));
    };
    for (const attempt of attempts) {
      attempt.ready.then((path) => {
        if (done) return onLatePath && winnerChosen ? onLatePath(path) : path.close();
        held.push({ attempt, path });
        if (attempt.kind === 'udp' || graceMs <= 0 || better().length === 0) return settle(best());
        graceTimer ??= clock.setTimeout(() => settle(best()), graceMs);
      }, (error: Error) => {
        if (done) return;
        failures.set(attempt.kind, error);
        if (held.length > 0 && better().length === 0) return settle(best());
        if (failures.size === attempts.length) {
          settle(undefined, noDirectPath(failures));
        }
      });
    }
  });
}

/** The error when every technique failed, naming each one's failure. */
export function noDirectPath(failures: ReadonlyMap<string, Error>): NatpunchError {
  return new NatpunchError('ERR_TRANSPORT',
    `no ${failures.has('relay') ? 'path' : 'direct path'}: ${[...failures].map(([kind, e]) => `${kind.toUpperCase()}: ${e.message}`).join('; ')}`, { cause: failures.get('udp') ?? failures.values().next().value });
}
