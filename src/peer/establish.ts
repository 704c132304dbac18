/**
 * Establishing a connection from a punch instruction: the techniques the plan names (UDP checks,
 * TCP simultaneous open, connection reversal; both raced for 'auto'), the Noise handshake as
 * datagrams on the path chosen, and the path manager that owns the connection from then on. The
 * race's loser is kept as a standby path when it completes. @see path-choice.ts, src/path/
 */
import type { Socket } from 'node:net';
import { debuglog } from 'node:util';
import { AbortedError, NatpunchError } from '../errors.js';
import { type Identity, normalizePeerId } from '../identity/index.js';
import { formatAddress, type TransportAddress } from '../wire/index.js';
import { UdpCheckSession, type PunchResult } from '../punch/udp-checks.js';
import { type Candidate, type CandidateType, type SignalledCandidate, candidateTypeOf, checkCandidates, punchTargets } from '../punch/candidate.js';
import type { RelayOffer } from '../rendezvous/messages.js';
import type { TrickleCandidate, TrickledCandidates } from '../rendezvous/trickle.js';
import { openRelayPath } from './relay.js';
import { tcpSimultaneousOpen } from '../punch/tcp-simultaneous-open.js';
import { BIRTHDAY_MIN_INTERVAL_MS, BirthdayGate } from '../punch/birthday.js';
import { birthdayHard, sprayBeside, sprayOpened } from './birthday-punch.js';
import { UdpMux } from '../punch/udp-mux.js';
import type { PunchInstruction } from '../rendezvous/client.js';
import { type HandshakeResult, PathHandshake } from '../path/handshake.js';
import { PathManager } from '../path/path-manager.js';
import { TcpRawPath } from '../path/tcp-path.js';
import { UdpEndpoint, type UdpRawPath } from '../path/udp-endpoint.js';
import { Connection } from './connection.js';
import { DEFAULT_REVERSAL_BUDGET_MS, type ReversalListener, dialReversal } from './reversal-listener.js';
import {
  type Attempt, type ReadyPath, type TcpMode, type UdpMode, AUTO_UDP_GRACE_MS, noDirectPath, planPaths, race, reachableFamilies, unprovenFamilyCandidates,
} from './path-choice.js';
import { type Clock, realClock } from '../clock.js';

const debug = debuglog('natpunch:peer');

/**
 * How long the relay waits beside direct techniques that have neither succeeded nor failed: a
 * few round trips, enough for a direct UDP path on most pairs. A pair that ends on the relay
 * waits AUTO_UDP_GRACE_MS for UDP anyway once the relay is ready, so this costs it little.
 */
export const RELAY_HEAD_START_MS = 250;

/**
 * When the relay starts beside the direct `attempts` (see establish()): once UDP is ready (when
 * it runs: the path the race prefers), or every direct attempt has settled, or after
 * RELAY_HEAD_START_MS; undefined when there is no direct attempt to wait for.
 */
export function relayHeadStart(attempts: readonly Attempt[], clock: Clock = realClock): Promise<unknown> | undefined {
  const direct = attempts.map((a) => a.ready);
  if (direct.length === 0) return undefined;
  return Promise.race([
    attempts.find((a) => a.kind === 'udp')?.ready ?? Promise.any(direct), Promise.allSettled(direct),
    new Promise<void>((resolve) => {
      const timer = clock.setTimeout(resolve, RELAY_HEAD_START_MS);
      (timer as { unref?: () => void }).unref?.();
    }),
  ]).catch(() => undefined);
}

/**
 * The technique a UDP path is reported with: a LAN path when both ends are private host
 * candidates (a peer with no NAT signs its public address as host); prediction when the pair
 * came from the other side's predicted window, or this side signed one (its NAT maps per
 * destination: the other side reached it through that window); else punching or reversal as
 * the plan said.
 */
export function udpTechnique(instruction: PunchInstruction, mode: UdpMode, type: CandidateType, remote: TransportAddress): string {
  const predicted = instruction.localCandidates.some((c) => c.type === 'predicted');
  // A pair on the other side's port mapping went through a hole its NAT was asked to open.
  return type === 'host' && candidateTypeOf(remote) === 'host' ? 'udp-lan'
    : type === 'mapped' ? 'udp-port-mapping'
      : type === 'predicted' || (predicted && type !== 'host') ? 'udp-prediction'
        : mode === 'punch' || !reversed(instruction, mode, remote) ? 'udp-hole-punch' : 'udp-reversal';
}

/** Whether a pair to `remote` is in the family the reachable side's reversal was proven for (else both sides punched it). */
function reversed(instruction: PunchInstruction, mode: UdpMode, remote: TransportAddress): boolean {
  return reachableFamilies(mode === 'answer' ? instruction.localCandidates : instruction.remoteCandidates).has(remote.family);
}

/** What the UDP checks go to: none when answering; both sides predicting, the controlled one walks the other's window two ports per flow (candidate.ts). */
export function udpCheckTargets(instruction: PunchInstruction, mode: UdpMode): Candidate[] {
  // Answering still punches in a family reachability was not proven for (IPv6 beside IPv4).
  if (mode === 'answer') return checkCandidates(unprovenFamilyCandidates(instruction));
  const predicted = instruction.localCandidates.some((c) => c.type === 'predicted');
  return checkCandidates(instruction.remoteCandidates, {
    stride: predicted && instruction.role === 'controlled' && instruction.remoteCandidates.some((c) => c.type === 'predicted') ? 2 : 1,
  });
}

/** What TCP punching connects to: a predicted window is one target per port (candidate.ts punchTargets), as for UDP checks. */
export function tcpPunchTargets(instruction: PunchInstruction): Candidate[] {
  const bothPredict = instruction.localTcpCandidates.some((c) => c.type === 'predicted') && instruction.remoteTcpCandidates.some((c) => c.type === 'predicted');
  return punchTargets(instruction.remoteTcpCandidates, 'tcp', { stride: bothPredict && instruction.role === 'controlled' ? 2 : 1 });
}

/**
 * The technique of a punched TCP connection to `remote`: as for UDP, prediction when it came
 * through the other side's window, or this side signed one the other came through; else primed
 * or plain simultaneous open.
 */
export function tcpPunchTechnique(instruction: PunchInstruction, targets: readonly Candidate[], remote: TransportAddress, primed: boolean): string {
  const winner = targets.find((c) => c.address.port === remote.port && c.address.address === remote.address);
  const predicted = winner?.type === 'predicted' || (instruction.localTcpCandidates.some((c) => c.type === 'predicted') && winner?.type !== 'host');
  return predicted ? 'tcp-prediction' : primed ? 'tcp-ttl-primed' : 'tcp-simultaneous-open';
}

/**
 * The connection over a completed handshake: the path manager that owns its paths from now on,
 * starting with the one the handshake ran on, and the stream on it. Shared by establishing through
 * the rendezvous and serverless punching (serverless.ts). `keepaliveInterval`: the stream's PING
 * interval (undefined: its default).
 */
export function openConnection(result: HandshakeResult, udp: UdpEndpoint, keepaliveInterval: number | undefined): { connection: Connection; manager: PathManager } {
  let created: Connection | undefined;
  const manager = new PathManager({
    session: result.session, first: result.path, firstRttMs: result.rttMs, udp,
    createStream: (sealed) => (created = new Connection(sealed, result.session, { keepaliveInterval })),
  });
  const connection = created!;
  connection.bindManager(manager);
  return { connection, manager };
}

/** What establishing needs from the peer. */
export interface EstablishContext {
  readonly identity: Identity;
  readonly mux: UdpMux;
  readonly bindAddress: string | undefined;
  readonly listener: ReversalListener | undefined;
  /** Aborted when the peer closes. */
  readonly closing: AbortSignal;
  /** Every live check session of the peer (closed with it). */
  readonly sessions: Set<UdpCheckSession>;
  /** The TCP mapping whose mapped address is among `signed` (kept or short), else the kept one if alive. */
  tcpMappingFor(signed: ReadonlySet<string>): { localPort: number; mapped: TransportAddress } | undefined;
  /** The stream's keepalive interval: the direct path crosses the same NAT as the STUN keepalive. */
  streamKeepaliveMs(): number | undefined;
  /** The relays the rendezvous offered this peer (empty: none). */
  relays(): readonly RelayOffer[];
  /** Sends candidates found after the intent/accept to the session's other peer (signed, trickled). */
  trickle(session: string, candidates: readonly TrickleCandidate[]): Promise<void>;
  /** The other peer's trickled candidates for a session: those received so far, then each new batch. */
  onCandidates(session: string, listener: (batch: TrickledCandidates) => void): () => void;
}

/** A connection just established, with what the peer releases once it has settled. */
export interface Established {
  connection: Connection;
  manager: PathManager;
  udp: UdpEndpoint;
  release(): void;
}

export class Establisher {
  readonly #c: EstablishContext;
  /** One birthday punch at a time for the whole peer, spaced out (punch/birthday.ts). */
  readonly #birthdays = new BirthdayGate();

  constructor(context: EstablishContext) {
    this.#c = context;
  }

  /**
   * Follows the transport the initiator's signed intent asked for: runs the planned techniques
   * (punching or connection reversal, one per transport; both raced for 'auto'), then the Noise
   * handshake as datagrams over the chosen path (src/path/handshake.ts). The connection's path
   * manager then owns every path: the one the handshake ran on, and the race's loser when it
   * completes, as a standby.
   */
  async establish(instruction: PunchInstruction, signal?: AbortSignal): Promise<Established> {
    const plan = planPaths(instruction, this.#c.relays().length > 0);
    debug('session %s: transport %s, plan %o, start in %d ms', instruction.session.slice(0, 8), instruction.transport, plan, (instruction.startAt ?? Date.now()) - Date.now());
    const attempts: Attempt[] = [];
    // Every connection gets its share of the UDP socket, even one that starts on TCP: a re-punch
    // may add a UDP path later, and the peer may rebind to it.
    const udp = new UdpEndpoint(this.#c.mux, instruction.session);
    const checks: UdpCheckSession[] = [];
    const initiator = instruction.role === 'controlling';
    // With UDP the only technique, the initiator sends handshake message 0 together with its
    // nominating check, not a round trip later: the nominated pair is the path whatever happens.
    // (When TCP races too, the race decides the path, and the handshake waits for it.)
    const early = initiator && !plan.tcp ? (path: UdpRawPath): void => handshake.offer(path) : undefined;
    if (plan.udp) attempts.push(this.#udpAttempt(instruction, plan.udp, udp, checks, signal, early));
    if (plan.tcp) attempts.push(this.#tcpAttempt(instruction, plan.tcp, signal));
    if (plan.relay) {
      // Beside direct techniques, the relay waits for their head start: allocating, trickling and
      // binding a channel on the same event loop would delay the direct path most connections
      // take (measured in the lab: ~30 ms on a cone pair's ~50). It starts once a direct path is
      // ready (UDP when it runs: the path the race prefers), to become its standby, or all
      // failed, or after RELAY_HEAD_START_MS.
      attempts.push(this.#relayAttempt(instruction, signal, relayHeadStart(attempts)));
    }
    if (attempts.length === 0) {
      throw new NatpunchError('ERR_TRANSPORT', `--transport ${instruction.transport}: no TCP technique: neither side is reachable over TCP, and ${instruction.localTcpCandidates.length ? 'the other peer' : 'this peer'} signed no TCP candidates to punch with`);
    }
    const handshake = new PathHandshake({
      // Both sides name the peer the rendezvous announced: a message 2 from anyone else is refused
      // like a forgery, not accepted and failed afterwards.
      identity: this.#c.identity, initiator, expectedPeerId: instruction.peer,
      context: new TextEncoder().encode(instruction.session), signal: signal ? AbortSignal.any([signal, this.#c.closing]) : this.#c.closing,
    });
    // Paths that complete after the first: standby paths, once there is a manager to hold them.
    const ready: ReadyPath[] = [];
    let manager: PathManager | undefined;
    const onLatePath = (path: ReadyPath): void => {
      ready.push(path);
      if (manager) manager.add(path.path);
      else if (!initiator) handshake.offer(path.path);
    };
    const release = (): void => {
      handshake.close();
      for (const attempt of attempts) attempt.abort();
      for (const path of ready) path.close();
      for (const check of checks) { check.close(); this.#c.sessions.delete(check); }
      udp.close();
    };
    let connection: Connection;
    try {
      if (initiator) {
        const first = await race(attempts, AUTO_UDP_GRACE_MS, { signal, onLatePath });
        ready.push(first);
        handshake.offer(first.path);
      } else {
        // The controlled side answers the handshake on whichever path the initiator chose; if
        // every technique fails first, that is the error to report.
        const failures = new Map<string, Error>();
        for (const attempt of attempts) {
          attempt.ready.then(onLatePath, (error: Error) => {
            failures.set(attempt.kind, error);
            if (failures.size === attempts.length) handshake.close(attempts.length === 1 ? error : noDirectPath(failures));
          });
        }
      }
      const result = await handshake.result;
      if (result.session.remotePeerId !== normalizePeerId(instruction.peer)) {
        throw new NatpunchError('ERR_NOISE', `the peer proved to be ${result.session.remotePeerId}, not ${instruction.peer} as the rendezvous said`);
      }
      // The direct path crosses the same NAT: PING within the mapping lifetime too.
      ({ connection, manager } = openConnection(result, udp, this.#c.streamKeepaliveMs()));
      for (const path of ready) if (path.path !== result.path) manager.add(path.path);
    } catch (error) {
      release();
      throw error;
    }
    return { connection, manager, udp, release };
  }

  /** A cancellable attempt: its own abort, plus the caller's signal and close(). */
  #attempt(kind: Attempt['kind'], signal: AbortSignal | undefined, run: (signal: AbortSignal) => Promise<ReadyPath>): Attempt {
    const controller = new AbortController();
    const combined = AbortSignal.any([controller.signal, this.#c.closing, ...(signal ? [signal] : [])]);
    const ready = run(combined);
    ready.catch(() => undefined);
    return { kind, ready, abort: () => controller.abort() };
  }

  /**
   * The relay: allocate, trickle our relayed address, meet the other peer's (peer/relay.ts). Both
   * sides run it whenever it is planned, so each finds the other's address.
   */
  #relayAttempt(instruction: PunchInstruction, signal?: AbortSignal, notBefore?: Promise<unknown>): Attempt {
    return this.#attempt('relay', signal, async (combined) => {
      if (notBefore) await notBefore;
      if (combined.aborted) throw new AbortedError('relay aborted', { cause: combined.reason });
      const path = await openRelayPath({
        offers: this.#c.relays(), session: instruction.session, signal: combined,
        ...(this.#c.bindAddress ? { localAddress: this.#c.bindAddress } : {}),
        announce: (relayed) => this.#c.trickle(instruction.session, [{ type: 'relay', transport: 'udp', address: relayed }]),
        remoteRelays: (listener) => {
          const isRelay = (c: SignalledCandidate): boolean => c.type === 'relay' && c.transport === 'udp';
          for (const c of instruction.remoteCandidates) if (isRelay(c)) listener(c);
          return this.#c.onCandidates(instruction.session, (batch) => {
            for (const c of batch.candidates) if (isRelay(c)) listener(c);
          });
        },
      });
      return { kind: 'relay', path, close: () => path.close() };
    });
  }

  /** TCP: simultaneous open from L, or reversal (dial the other peer's listener / wait for it on ours). */
  #tcpAttempt(instruction: PunchInstruction, mode: TcpMode, signal?: AbortSignal): Attempt {
    return this.#attempt('tcp', signal, async (combined) => {
      let socket: Socket;
      let technique: string;
      if (mode === 'simultaneous-open') {
        ({ socket, technique } = await this.#punchTcp(instruction, combined));
      } else if (mode === 'dial') {
        const dialed = await dialReversal({
          remoteCandidates: instruction.remoteTcpListen, session: instruction.session, localAddress: this.#c.bindAddress, startAt: instruction.startAt, signal: combined,
        });
        debug('TCP reversal: dialed %s', formatAddress(dialed.remote));
        socket = dialed.socket;
        technique = 'tcp-reversal';
      } else {
        if (!this.#c.listener) throw new NatpunchError('ERR_TRANSPORT', 'TCP reversal: this peer has no listener');
        const timeoutMs = Math.max(0, instruction.startAt - Date.now()) + DEFAULT_REVERSAL_BUDGET_MS;
        socket = await this.#c.listener.accept(instruction.session, { timeoutMs, signal: combined });
        debug('TCP reversal: accepted %s:%d', socket.remoteAddress, socket.remotePort);
        technique = 'tcp-reversal';
      }
      const path = new TcpRawPath(socket, { technique });
      return { kind: 'tcp', path, close: () => { path.close(); socket.destroy(); } };
    });
  }

  /** TCP simultaneous open from L. */
  async #punchTcp(instruction: PunchInstruction, signal: AbortSignal): Promise<{ socket: Socket; technique: string }> {
    // Punch from the L whose mapping was signed (kept or short), even if its connection has closed since.
    const tcp = this.#c.tcpMappingFor(new Set(instruction.localTcpCandidates.map((c) => formatAddress(c.address))));
    if (!tcp) throw new NatpunchError('ERR_TRANSPORT', 'TCP punching: this peer has no TCP mapping to punch from (no kept TCP connection, and no short one learnt for this session)');
    const targets = tcpPunchTargets(instruction);
    const punched = await tcpSimultaneousOpen({
      localPort: tcp.localPort, localAddress: this.#c.bindAddress, remoteCandidates: targets.map((c) => c.address),
      role: instruction.role, startAt: instruction.startAt, signal,
      // Low-TTL priming where the native addon is there (measured once per mapping, cached).
      primeTtl: 'auto', publicAddress: tcp.mapped.address,
    });
    debug('TCP punched to %s after %d connects, priming %j', formatAddress(punched.remote), punched.attempts, punched.priming);
    return { socket: punched.socket, technique: tcpPunchTechnique(instruction, targets, punched.remote, punched.primed) };
  }

  /**
   * UDP connectivity checks. 'answer' (this side is reachable, the other is not): no checks of
   * our own, only answers and the triggered checks they cause — an empty candidate list does
   * exactly that, since the other side's checks become peer-reflexive pairs (RFC 8445 §7.3.1.3).
   * The check session stays open (answering late checks) until the connection has settled.
   */
  #udpAttempt(instruction: PunchInstruction, mode: UdpMode, udp: UdpEndpoint, checks: UdpCheckSession[], signal?: AbortSignal, early?: (path: UdpRawPath) => void): Attempt {
    const techniqueOf = (type: CandidateType, remote: TransportAddress): string => udpTechnique(instruction, mode, type, remote);
    // Birthday probing beside the checks, when exactly one side's NAT maps every destination to a
    // random port. On the easy side, a pair at a port the spray probed came from it.
    const side = mode === 'punch' ? birthdaySide(instruction) : undefined;
    const release = side ? this.#birthdays.tryAcquire() : undefined;
    if (side && !release) debug('birthday probing skipped: this peer ran one less than %d ms ago, or runs one now', BIRTHDAY_MIN_INTERVAL_MS);
    const birthday = release ? side : undefined;
    const sprayed = new Set<number>();
    const label = (type: CandidateType, remote: TransportAddress): string =>
      birthday?.side === 'easy' && sprayOpened(birthday.to, sprayed, type, remote) ? 'udp-birthday' : techniqueOf(type, remote);
    return this.#attempt('udp', signal, async (combined) => {
      const session = new UdpCheckSession({
        mux: this.#c.mux, session: instruction.session, key: instruction.key, role: instruction.role, startAt: instruction.startAt, signal: combined,
        remoteCandidates: udpCheckTargets(instruction, mode),
        onNominating: early && ((remote, type) => early(udp.pathTo(remote, label(type, remote)))),
      });
      this.#c.sessions.add(session);
      checks.push(session);
      if (birthday?.side === 'hard') return this.#birthdayHard(instruction, session, birthday.to, checks, combined, release!, (punched) => udp.pathTo(punched.remote, techniqueOf(punched.type, punched.remote)));
      // Spray while the checks run, once they had their chance alone; a hit shows up in them as
      // a peer-reflexive pair.
      if (birthday?.side === 'easy') sprayBeside({ instruction, session, to: birthday.to, send: (data, to) => this.#c.mux.send(data, to), sprayed, signal: combined, release: release! });
      const punched: PunchResult = await session.result;
      const path = udp.pathTo(punched.remote, label(punched.type, punched.remote));
      return { kind: 'udp', path, close: () => path.close() };
    });
  }

  /**
   * The hard side of birthday probing (birthday-punch.ts): the socket a probe reaches gets a mux,
   * an endpoint and a check session of its own, and the path on it lives, and closes, with the
   * connection.
   */
  #birthdayHard(
    instruction: PunchInstruction, session: UdpCheckSession, to: TransportAddress, checks: UdpCheckSession[], signal: AbortSignal,
    release: () => void, ordinary: (punched: PunchResult) => UdpRawPath,
  ): Promise<ReadyPath> {
    const ready = (path: UdpRawPath): ReadyPath => ({ kind: 'udp', path, close: () => path.close() });
    return birthdayHard({
      instruction, session, to, signal, release, bindAddress: this.#c.bindAddress,
      ordinary: (punched) => ready(ordinary(punched)),
      onHit: (found) => {
        const mux = new UdpMux(found.socket);
        const endpoint = new UdpEndpoint(mux, instruction.session, { onIdle: () => { mux.close(); found.socket.close(); } });
        const own = new UdpCheckSession({
          mux, session: instruction.session, key: instruction.key, role: instruction.role, signal,
          remoteCandidates: [{ type: 'prflx', address: found.from }],
        });
        this.#c.sessions.add(own);
        checks.push(own);
        return { session: own, path: (punched) => ready(endpoint.pathTo(punched.remote, 'udp-birthday')), close: () => endpoint.close() };
      },
    });
  }
}

/**
 * Which side of birthday probing this peer takes, if any: exactly one side signed a NAT that
 * maps every destination to a random port (IntentBody.natMapping), and the other side signed a
 * public address to aim at: its server-reflexive candidate, or, for a host with no NAT (a
 * stateful firewall in front of a public address), its host candidate on a public address —
 * such a host filters like a port-restricted NAT and its port never changes, which is all the
 * probing needs. Both random: no probing (physics: the relay).
 */
export function birthdaySide(instruction: PunchInstruction): { side: 'hard' | 'easy'; to: TransportAddress } | undefined {
  const local = instruction.localNatMapping === 'random-per-destination';
  const remote = instruction.remoteNatMapping === 'random-per-destination';
  if (local === remote) return undefined;
  // The side that aims needs the other's public address: the easy side sprays the hard side's
  // srflx address; the hard side opens its sockets toward the easy side's public endpoint.
  const target = instruction.remoteCandidates.find((c) => c.type === 'srflx')
    ?? instruction.remoteCandidates.find((c) => c.type === 'host' && candidateTypeOf(c.address) === 'srflx');
  return target ? { side: local ? 'hard' : 'easy', to: target.address } : undefined;
}
