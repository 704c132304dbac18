/**
 * One `natpunch connect` in the sim, as far as choosing a path goes: which path (direct-udp,
 * direct-tcp, relay) and technique each side ends on, and when. Client a1 connects (the
 * initiator: controlling), b1 listens, as `transfer(lab, 'b1', 'a1')` sets up the lab tests
 * (or any two clients, `between`).
 *
 * Real code, on sim sockets and the virtual clock:
 * - the server: natpunch's StunServer on both addresses, UDP and TCP;
 * - each peer's registration: its UDP srflx (StunUdpClient), its kept TCP connection to the STUN
 *   server and the mapping that connection got (StunTcpClient: L and XOR-MAPPED-ADDRESS), its
 *   reversal listener (ReversalListener), the server's dial-back to it (dialBackUdp from the
 *   alternate address to the srflx, dialBackTcp to its public IP and listener port, with
 *   dialBackTimeout) answered by the peer's DialBackResponder, whose verdict is the reachability
 *   the peer signs;
 * - what the rendezvous hands each side (src/rendezvous/client.ts): candidates typed and
 *   prioritised by `prioritise`, listener endpoints only beside a TCP reachability claim, one
 *   session key, one start time;
 * - establishing (src/peer/establish.ts): `planPaths`, the UDP checks (UdpCheckSession, and
 *   `udpTechnique`) with birthday probing beside them (`birthdaySide`, src/peer/birthday-punch.ts,
 *   each peer's BirthdayGate), TCP simultaneous open (tcpSimultaneousOpen from L), connection reversal
 *   (dialReversal / ReversalListener.accept), the relay's head start (`relayHeadStart`) and the
 *   controlling side's `race`. The controlled side takes the path the controlling side's first
 *   bytes arrive on, as its handshake does.
 *
 * Modelled, not run (docs/sim.md): the rendezvous server and its WebSocket (candidates and the
 * start time are handed over directly), the Noise handshake and path manager (the controlling
 * side writes a few bytes on the chosen path instead; a connection that starts on the relay moves
 * to the first direct path that completes within UPGRADE_WAIT_MS, as the path manager does and
 * `natpunch lab matrix` waits for), and the relay: whenever planned it is ready
 * RELAY_SERVER_ROUND_TRIPS server round trips after its head start, as 'turn-udp' when both
 * peers reach the server over UDP, else 'turn-tcp'. Low-TTL priming runs the real punching
 * code on the sim's port of the addon (src/sim/tcp-ttl.ts), whose hop trace is read from the
 * topology.
 */
import type net from 'node:net';
import { randomBytes } from 'node:crypto';
import type { NatKind } from '../lab/nat-kind.js';
import { SERVER_ADDRESSES } from '../lab/topology.js';
import { type CandidateType, type SignalledCandidate, type LocalCandidate, prioritise } from '../punch/candidate.js';
import { type PunchResult, UdpCheckSession } from '../punch/udp-checks.js';
import { tcpSimultaneousOpen } from '../punch/tcp-simultaneous-open.js';
import type { TtlPriming } from '../punch/tcp-ttl.js';
import { StunTcpClient } from '../stun/tcp-client.js';
import { StunServer } from '../stun/server.js';
import { dialBackTcp, dialBackTimeout, dialBackUdp } from '../rendezvous/dial-back.js';
import type { PunchInstruction, Transport } from '../rendezvous/client.js';
import type { NatMapping, Reachability } from '../rendezvous/messages.js';
import { DialBackResponder } from '../peer/reachability.js';
import { DEFAULT_REVERSAL_BUDGET_MS, ReversalListener, dialReversal } from '../peer/reversal-listener.js';
import { type Attempt, type AttemptKind, type PathPlan, type ReadyPath, AUTO_UDP_GRACE_MS, planPaths, race } from '../peer/path-choice.js';
import { birthdaySide, relayHeadStart, tcpPunchTargets, tcpPunchTechnique, udpCheckTargets, udpTechnique } from '../peer/establish.js';
import { birthdayHard, sprayBeside, sprayOpened } from '../peer/birthday-punch.js';
import { BirthdayGate } from '../punch/birthday.js';
import { UdpMux } from '../punch/udp-mux.js';
import { UPGRADE_WAIT_MS } from '../lab/matrix.js';
import { PortPredictor } from '../peer/port-predictor.js';
import { type TransportAddress, formatAddress, reflexiveAddress } from '../wire/index.js';
import { sleep } from '../clock.js';
import { SimError } from '../errors.js';
import { Prng } from './prng.js';
import { type SimPeer, openPeer, routerOptions } from './punch-scenario.js';
import { type SimLab, type SimRouterOptions, STUN_PORT, createSimLab } from './topology.js';
import type { VirtualClock } from './virtual-clock.js';
import { simTtlPriming } from './tcp-ttl.js';
import type { TraceEvent } from './network.js';

/** The STUN server the rendezvous names (its primary address and port). */
const STUN_SERVER: TransportAddress = { family: 4, address: SERVER_ADDRESSES[0], port: STUN_PORT };
/** How far ahead the rendezvous schedules the start (any value works in the sim). */
const START_IN_MS = 100;
/** The modelled relay: Allocate (401, then success) and ChannelBind, one server round trip each. */
export const RELAY_SERVER_ROUND_TRIPS = 3;

export type PathKind = 'direct-udp' | 'direct-tcp' | 'relay';

export interface ConnectScenario {
  /** The connecting peer's router (a1 runs `natpunch connect`): its kind, or its full options. */
  a: NatKind | SimRouterOptions;
  /** The listening peer's router (b1 runs `natpunch listen`). */
  b: NatKind | SimRouterOptions;
  /** `--transport` (default 'auto'). */
  transport?: Transport;
  seed?: number | string;
  /** Round trip between a1 and b1 (each client to the server: half of it). Default 0. */
  rttMs?: number;
  /**
   * How much later than the connector the listener starts punching (default 0). Each side's
   * start is its own receipt of the punch message plus the same delay (rendezvous/client.ts), so
   * in the lab the two differ by scheduling noise, which decides whether two first SYNs cross.
   */
  startSkewMs?: number;
  /** Sides that cannot prime, as with NATPUNCH_NO_NATIVE=1 (default: both can). */
  noNative?: 'connector' | 'listener' | 'both';
  /** The connecting and the listening host (default a1 and b1; a1 and a2 with `a: { clients: 2 }`). */
  between?: readonly [string, string];
  /** Every hop of every packet (Network.trace), from the start. */
  trace?: (event: TraceEvent) => void;
  /**
   * Close each peer's STUN/TCP connection once its offer is signed, so both punch from L after
   * their connection to the server has closed (what the lab's connect-tcp-short-mapping ends
   * up doing; learning the short connection's mapping itself is not modelled).
   */
  closeKept?: boolean;
}

/**
 * One side's "connected" event, or its error. `path`, `technique` and `remote` are the path it
 * ended on, as `natpunch lab matrix` reports a pair (src/lab/matrix.ts PairResult): a connection
 * that started on the relay and moved to a direct path says so in `startPath`.
 */
export type ConnectSide =
  | {
    path: PathKind; technique: string; remote: string;
    /** Virtual ms from the agreed start to the first path. */
    ms: number;
    /** 'relay' when it started there and moved to `path` later. */
    startPath?: PathKind;
    /** Virtual ms from the agreed start to a direct path: `ms` when it started direct; absent when it stayed on the relay. */
    directMs?: number;
  }
  | { error: string };

export interface ConnectOutcome {
  connector: ConnectSide;
  listener: ConnectSide;
  /** Virtual ms from the agreed start until both sides had their path; null when either failed. */
  timeToPathMs: number | null;
  /** What each side signed about itself (the server's dial-back, confirmed by the peer). */
  reachable: { connector: Reachability; listener: Reachability };
  /** What planPaths gave each side. */
  plan: { connector: PathPlan; listener: PathPlan };
  wallMs: number;
}

interface Registered {
  name: string;
  udp: SimPeer;
  srflx: TransportAddress | undefined;
  /** The kept STUN/TCP connection from L, and the mapping it got. */
  kept: StunTcpClient;
  mapped: TransportAddress;
  listener: ReversalListener;
  responder: DialBackResponder;
  predictor: PortPredictor;
  /** One birthday punch at a time for the peer (establish.ts's Establisher keeps one per peer). */
  birthdays: BirthdayGate;
  reachable: Reachability;
  tcpListen: TransportAddress[];
}

/** What a peer signs in its intent or accept. */
interface Offer {
  udp: SignalledCandidate[];
  tcp: SignalledCandidate[];
  /** Its NAT maps each destination to a random port (PortPredictor.randomPerDestination): birthday probing. */
  natMapping: NatMapping | undefined;
}

/** Runs one connect; never throws for a failed connection (that is an outcome), only for a broken setup. */
export async function runConnect(scenario: ConnectScenario): Promise<ConnectOutcome> {
  const started = performance.now();
  const rttMs = scenario.rttMs ?? 0;
  const seed = scenario.seed ?? 1;
  const lab = createSimLab({ a: routerOptions(scenario.a, rttMs), b: routerOptions(scenario.b, rttMs), seed });
  const { clock } = lab;
  lab.network.trace = scenario.trace;
  const server = await clock.run(StunServer.listen({
    address: SERVER_ADDRESSES[0], altAddress: SERVER_ADDRESSES[1], port: STUN_PORT,
    createUdpSocket: lab.socketFactory('server'), net: lab.tcpNet('server'),
  }));
  const [a, b] = await clock.run(Promise.all((scenario.between ?? ['a1', 'b1']).map((name) => register(lab, name, rttMs / 2)))) as [Registered, Registered];
  // The intent, then the accept: each samples its NAT's counter when it is signed.
  const offers = new Map<Registered, Offer>();
  for (const peer of [a, b]) offers.set(peer, await clock.run(offer(lab, peer)));
  if (scenario.closeKept) for (const peer of [a, b]) peer.kept.close();
  const transport = scenario.transport ?? 'auto';
  const prng = new Prng(seed);
  const keyPrng = prng.derive('session-key');
  const key = new Uint8Array(32).map(() => keyPrng.int(0, 255));
  const session = `sim-${randomBytes(8).toString('hex')}`;
  const startAt = clock.wallNow() + START_IN_MS;
  const startedAt = clock.now() + START_IN_MS;
  const instruction = (self: Registered, other: Registered, role: 'controlling' | 'controlled'): PunchInstruction => ({
    session, peer: other.name, role, transport, key, startAt: startAt + (role === 'controlled' ? scenario.startSkewMs ?? 0 : 0),
    remoteCandidates: offers.get(other)!.udp, localCandidates: offers.get(self)!.udp,
    remoteTcpCandidates: offers.get(other)!.tcp, localTcpCandidates: offers.get(self)!.tcp,
    remoteCapabilities: [], remoteReachable: other.reachable, localReachable: self.reachable,
    ...(offers.get(other)!.natMapping ? { remoteNatMapping: offers.get(other)!.natMapping } : {}),
    ...(offers.get(self)!.natMapping ? { localNatMapping: offers.get(self)!.natMapping } : {}),
    // Listener endpoints count only with a claim of TCP reachability beside them (rendezvous/client.ts).
    remoteTcpListen: other.reachable.tcp ? other.tcpListen : [],
  });
  const relayTechnique = a.srflx && b.srflx ? 'turn-udp' : 'turn-tcp';
  const stop = new AbortController();
  const native = (side: 'connector' | 'listener'): boolean => scenario.noNative !== side && scenario.noNative !== 'both';
  const connector = establishing(lab, a, instruction(a, b, 'controlling'), stop.signal, prng.derive(a.name), relayTechnique, rttMs / 2, native('connector'));
  const listener = establishing(lab, b, instruction(b, a, 'controlled'), stop.signal, prng.derive(b.name), relayTechnique, rttMs / 2, native('listener'));

  const sides: ConnectSide[] = [];
  const settle = (i: number, path: Promise<SimReadyPath>): Promise<void> => path.then(
    (p) => {
      const ms = clock.now() - startedAt;
      sides[i] = { path: pathKind(p.kind), technique: p.technique, remote: p.remote, ms, ...(p.kind === 'relay' ? {} : { directMs: ms }) };
    },
    (error: Error) => { sides[i] = { error: error.message }; },
  );
  // Direct paths that complete after the race chose: a connection on the relay moves to the first
  // (the path manager prefers direct over relay); beside a direct path they are closed. (A direct
  // path passed while the race settles lost to a better direct one: the relay wins only when no
  // direct path is ready.)
  const late: SimReadyPath[] = [];
  let winnerKind: AttemptKind | undefined;
  let onLateDirect: ((path: SimReadyPath) => void) | undefined;
  const onLatePath = (path: ReadyPath): void => {
    const p = path as SimReadyPath;
    if (winnerKind !== 'relay' || p.kind === 'relay') return p.close();
    late.push(p);
    onLateDirect?.(p);
  };
  const raced = race(connector.attempts, AUTO_UDP_GRACE_MS, { clock, onLatePath }) as Promise<SimReadyPath>;
  raced.then((winner) => { winnerKind = winner.kind; }, () => undefined);
  const chosen = raced
    .then((winner) => {
      // The controlling side's first bytes (its handshake message 0) go on the chosen path only.
      winner.send();
      return winner;
    });
  /** The controlled side answers on whichever path those bytes arrive: its attempt of the same kind. */
  const listenerPath = (kind: AttemptKind): Promise<SimReadyPath> => {
    const same = listener.attempts.find((x) => x.kind === kind);
    return same ? same.ready : Promise.reject(new SimError(`the listener ran no ${kind} attempt, but the connector chose one`));
  };
  const followed = chosen.then((winner) => listenerPath(winner.kind));
  await clock.run(Promise.all([
    settle(0, chosen),
    settle(1, followed),
  ]));
  const first = sides[0]!;
  if ('path' in first && first.path === 'relay') {
    const moved = late[0] ?? await clock.run(upgrade(connector.attempts, (listen) => { onLateDirect = listen; }, clock));
    if (moved) {
      moved.send();
      const movedAt = clock.now() - startedAt;
      sides[0] = { ...first, path: pathKind(moved.kind), technique: moved.technique, remote: moved.remote, startPath: 'relay', directMs: movedAt };
      const there = await clock.run(listenerPath(moved.kind).then((p) => p, () => undefined));
      const followedFirst = sides[1]!;
      if (there && 'path' in followedFirst) {
        sides[1] = { ...followedFirst, path: pathKind(there.kind), technique: there.technique, remote: there.remote, startPath: 'relay', directMs: clock.now() - startedAt };
      }
    }
  }

  stop.abort();
  for (const attempt of [...connector.attempts, ...listener.attempts]) attempt.ready.then((p) => p.close(), () => undefined);
  await clock.advance(1);
  for (const peer of [a, b]) close(peer);
  await clock.run(server.close());
  const [c, l] = sides as [ConnectSide, ConnectSide];
  return {
    connector: c, listener: l,
    timeToPathMs: 'error' in c || 'error' in l ? null : Math.max(c.ms, l.ms),
    reachable: { connector: a.reachable, listener: b.reachable },
    plan: { connector: connector.plan, listener: listener.plan },
    wallMs: performance.now() - started,
  };
}

/**
 * For a connection that started on the relay: the first direct path that completes within
 * UPGRADE_WAIT_MS (as `natpunch lab matrix` holds such a pair open), or undefined when every
 * direct attempt failed first, or the wait ran out. Direct paths that completed late are
 * passed to `listen` (race's onLatePath).
 */
async function upgrade(attempts: readonly SimAttempt[], listen: (resolve: (path: SimReadyPath) => void) => void, clock: VirtualClock): Promise<SimReadyPath | undefined> {
  const direct = attempts.filter((a) => a.kind !== 'relay');
  if (direct.length === 0) return undefined;
  const waited = new AbortController();
  try {
    return await Promise.race([
      new Promise<SimReadyPath>((resolve) => listen(resolve)),
      // A success reaches `listen` (race's handler was attached first) before this settles.
      Promise.allSettled(direct.map((a) => a.ready)).then(() => new Promise<undefined>((resolve) => clock.setTimeout(() => resolve(undefined), 0))),
      sleep(clock, UPGRADE_WAIT_MS, waited.signal).then(() => undefined),
    ]);
  } finally {
    waited.abort();
  }
}

function pathKind(kind: AttemptKind): PathKind {
  return kind === 'udp' ? 'direct-udp' : kind === 'tcp' ? 'direct-tcp' : 'relay';
}

/** A peer's registration: its sockets, mappings and the server's dial-back, and what it signs. */
async function register(lab: SimLab, name: string, serverRttMs: number): Promise<Registered> {
  const { clock } = lab;
  const udp = await openPeer(lab, name);
  const srflx = udp.srflx;
  const net = lab.tcpNet(name);
  const kept = await StunTcpClient.connect(STUN_SERVER, { net, clock });
  const mapped = reflexiveAddress(await kept.request());
  if (mapped === undefined) throw new SimError(`sim connect: ${name}'s STUN over TCP answer carried no mapped address`);
  const responder = new DialBackResponder(udp.mux);
  const listener = await ReversalListener.listen(responder, undefined, { net, clock });
  // The server's dial-back (src/rendezvous/server.ts #dialBackPeer): from its alternate address,
  // UDP to the proven srflx, TCP to the IP the peer's connection came from and its listener port.
  const token = randomBytes(16).toString('base64url');
  responder.expect(token);
  const options = { localAddress: SERVER_ADDRESSES[1], timeoutMs: dialBackTimeout(serverRttMs), createSocket: lab.socketFactory('server'), net: lab.tcpNet('server'), clock };
  const [udpReached, tcpReached] = await Promise.all([
    srflx ? dialBackUdp(srflx, token, options) : false,
    dialBackTcp({ family: 4, address: mapped.address, port: listener.port }, token, options),
  ]);
  const reachable = responder.reachability({ udp: udpReached, tcp: tcpReached });
  // After registering, in the background (peer.ts): does this NAT count its ports?
  const predictor = new PortPredictor({ createSocket: lab.socketFactory(name), clock });
  void predictor.classify(STUN_SERVER);
  const publicIps = [...new Set([srflx?.address, mapped.address].filter((x): x is string => x !== undefined))];
  const onListener = onHost(lab, name, listener.port);
  return {
    name, udp, srflx, kept, mapped, listener, responder, predictor, birthdays: new BirthdayGate(clock), reachable,
    tcpListen: reachable.tcp ? [...publicIps.map((address) => ({ family: 4 as const, address, port: listener.port })), ...onListener] : [],
  };
}

/** The host's addresses on `port` (what privateEndpoints gives peer.ts). */
function onHost(lab: SimLab, name: string, port: number): TransportAddress[] {
  return lab.hosts[name]!.interfaceAddresses().map((address) => ({ family: 4, address, port }));
}

/**
 * The candidates a peer signs (peer.ts, rendezvous/client.ts): host and srflx for UDP, host and
 * the kept mapping on L for TCP, each with the predicted window behind a counting NAT (one
 * sample answers both), typed and prioritised as the rendezvous client does.
 */
async function offer(lab: SimLab, peer: Registered): Promise<Offer> {
  const hostAddresses = lab.hosts[peer.name]!.interfaceAddresses();
  // A candidate on one of the host's own addresses is a host candidate (rendezvous/client.ts #typed).
  const typed = (addresses: TransportAddress[]): LocalCandidate[] => addresses.map((address) => ({ type: hostAddresses.includes(address.address) ? 'host' : 'srflx', address }));
  const udp: LocalCandidate[] = typed([...onHost(lab, peer.name, peer.udp.socket.address().port), ...(peer.srflx ? [peer.srflx] : [])]);
  const predictedUdp = peer.srflx ? await peer.predictor.candidate(STUN_SERVER, peer.srflx.address) : undefined;
  const tcp: LocalCandidate[] = typed([...onHost(lab, peer.name, peer.kept.socket.localPort!), peer.mapped]);
  const predictedTcp = await peer.predictor.candidate(STUN_SERVER, peer.mapped.address);
  return {
    udp: prioritise([...udp, ...(predictedUdp ? [predictedUdp] : [])], 'udp'),
    tcp: prioritise([...tcp, ...(predictedTcp ? [predictedTcp] : [])], 'tcp'),
    // Read once the candidates are in, as the rendezvous client reads the peer's reachability
    // (and with it natMapping) after gathering them: the classification has finished by then.
    natMapping: peer.predictor.randomPerDestination ? 'random-per-destination' : undefined,
  };
}

function close(peer: Registered): void {
  peer.predictor.close();
  peer.listener.close();
  peer.kept.socket.destroy();
  peer.responder.close();
  peer.udp.mux.close();
  peer.udp.socket.close();
}

/** A side without the addon (the lab's NATPUNCH_NO_NATIVE=1). */
const NO_NATIVE: TtlPriming = {
  available: () => ({ ok: false, reason: 'this sim peer runs without the native addon (as NATPUNCH_NO_NATIVE=1)' }),
  addon: () => undefined,
  measure: () => Promise.resolve({ ttl: null, reason: 'no addon' }),
  adopt: () => { throw new SimError('no addon: nothing to adopt'); },
};

/** A path as the sim reports it: its technique and remote, the first bytes' write, and what closes it. */
interface SimPath {
  technique: string;
  remote: string;
  send(): void;
  close(): void;
}
type SimReadyPath = ReadyPath & SimPath;
type SimAttempt = Attempt & { ready: Promise<SimReadyPath> };

/** The attempts establish() would start for `instruction` (src/peer/establish.ts), on sim sockets. */
function establishing(
  lab: SimLab, self: Registered, instruction: PunchInstruction, signal: AbortSignal, prng: Prng, relayTechnique: string, serverRttMs: number, native: boolean,
): { plan: PathPlan; attempts: SimAttempt[] } {
  const { clock } = lab;
  const net = lab.tcpNet(self.name);
  const plan = planPaths(instruction, true);
  const attempts: SimAttempt[] = [];
  const attempt = (kind: AttemptKind, run: (signal: AbortSignal) => Promise<SimPath>): SimAttempt => {
    const controller = new AbortController();
    // `path` (the RawPath a real attempt frames datagrams on) is never read here: race() only ranks and closes.
    const ready = run(AbortSignal.any([controller.signal, signal])).then((p) => ({ kind, path: undefined as never, ...p }));
    ready.catch(() => undefined);
    return { kind, ready, abort: () => controller.abort() };
  };
  const tcpPath = (socket: net.Socket, technique: string): SimPath => ({
    technique, remote: `${socket.remoteAddress}:${socket.remotePort}`,
    send: () => { socket.write('natpunch handshake 0'); },
    close: () => socket.destroy(),
  });
  if (plan.udp) {
    const mode = plan.udp;
    // Birthday probing beside the checks, as establish.ts's #udpAttempt runs it (the same code:
    // peer/birthday-punch.ts), on this host's sockets and the virtual clock, the spray's ports
    // from the seeded PRNG. On the easy side, a pair at a port the spray probed came from it.
    const side = mode === 'punch' ? birthdaySide(instruction) : undefined;
    const release = side ? self.birthdays.tryAcquire() : undefined;
    const birthday = release ? side : undefined;
    const sprayed = new Set<number>();
    const time = { clock, wallClock: clock.wallNow };
    const sprayPrng = prng.derive('birthday-spray');
    const label = (type: CandidateType, remote: TransportAddress): string =>
      birthday?.side === 'easy' && sprayOpened(birthday.to, sprayed, type, remote) ? 'udp-birthday' : udpTechnique(instruction, mode, type, remote);
    /** A path on a pair the checks found; what it closes is also closed when the connect is over (the sessions keep answering until then). */
    const udpPath = (punched: PunchResult, technique: string, closeAll: () => void): SimPath => {
      let closed = false;
      const close = (): void => {
        if (!closed) closeAll();
        closed = true;
      };
      signal.addEventListener('abort', close, { once: true });
      return { technique, remote: formatAddress(punched.remote), send: () => undefined, close };
    };
    attempts.push(attempt('udp', async (combined) => {
      const session = new UdpCheckSession({
        mux: self.udp.mux, session: instruction.session, key: instruction.key, role: instruction.role, startAt: instruction.startAt, signal: combined,
        remoteCandidates: udpCheckTargets(instruction, mode), ...time,
      });
      try {
        if (birthday?.side === 'hard') {
          return await birthdayHard<SimPath>({
            instruction, session, to: birthday.to, signal: combined, release: release!, createSocket: lab.socketFactory(self.name), ...time,
            ordinary: (punched) => udpPath(punched, label(punched.type, punched.remote), () => session.close()),
            onHit: (found) => {
              const mux = new UdpMux(found.socket, false);
              const own = new UdpCheckSession({
                mux, session: instruction.session, key: instruction.key, role: instruction.role, signal: combined,
                remoteCandidates: [{ type: 'prflx', address: found.from }], ...time,
              });
              const closeSocket = (): void => { mux.close(); found.socket.close(); };
              return { session: own, path: (punched) => udpPath(punched, 'udp-birthday', () => { own.close(); session.close(); closeSocket(); }), close: closeSocket };
            },
          });
        }
        if (birthday?.side === 'easy') {
          sprayBeside({
            instruction, session, to: birthday.to, send: (data, to) => self.udp.mux.send(data, to), sprayed, signal: combined, release: release!,
            ...time, random: () => sprayPrng.next(),
          });
        }
        const punched = await session.result;
        return udpPath(punched, label(punched.type, punched.remote), () => session.close());
      } catch (error) {
        session.close();
        throw error;
      }
    }));
  }
  if (plan.tcp) {
    const mode = plan.tcp;
    attempts.push(attempt('tcp', async (combined) => {
      if (mode === 'simultaneous-open') {
        const targets = tcpPunchTargets(instruction);
        const punched = await tcpSimultaneousOpen({
          localPort: self.kept.socket.localPort!, remoteCandidates: targets.map((c) => c.address),
          role: instruction.role, startAt: instruction.startAt, signal: combined,
          net, clock, wallClock: clock.wallNow, random: () => prng.next(),
          // As establish.ts: low-TTL priming where the addon is there, measured once per mapping.
          primeTtl: 'auto', publicAddress: self.mapped.address, ttlPriming: native ? simTtlPriming(lab.hosts[self.name]!) : NO_NATIVE,
        });
        return tcpPath(punched.socket, tcpPunchTechnique(instruction, targets, punched.remote, punched.primed));
      }
      if (mode === 'dial') {
        const dialed = await dialReversal({
          remoteCandidates: instruction.remoteTcpListen, session: instruction.session, startAt: instruction.startAt, signal: combined, net, clock, wallClock: clock.wallNow,
        });
        return tcpPath(dialed.socket, 'tcp-reversal');
      }
      const timeoutMs = Math.max(0, instruction.startAt - clock.wallNow()) + DEFAULT_REVERSAL_BUDGET_MS;
      return tcpPath(await self.listener.accept(instruction.session, { timeoutMs, signal: combined }), 'tcp-reversal');
    }));
  }
  if (plan.relay) {
    const headStart = relayHeadStart(attempts, clock);
    attempts.push(attempt('relay', async (combined) => {
      if (headStart) await headStart;
      await sleep(clock, RELAY_SERVER_ROUND_TRIPS * serverRttMs, combined);
      return { technique: relayTechnique, remote: 'relay', send: () => undefined, close: () => undefined };
    }));
  }
  return { plan, attempts };
}
