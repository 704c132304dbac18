/**
 * Birthday probing: a direct UDP path between a NAT that maps each destination to a new random
 * port (symmetric-random: RFC 4787 §4.1 address-and-port-dependent mapping, random allocation)
 * and one with an endpoint-independent mapping (cone, eim-random-port). Nobody can learn or
 * predict the hard side's port toward the easy side, so both sides make many guesses and count
 * on two of them meeting, as in the birthday paradox:
 * - the hard side opens HARD_SOCKETS sockets and sends from each to the easy side's srflx: its
 *   NAT now holds that many mappings toward the easy side, on random ports, each of which admits
 *   what the easy side sends back (`BirthdaySockets`);
 * - the easy side sends checks to random ports of the hard side's address, each a different
 *   one (`BirthdaySpray`). Its own NAT, mapping everything to one port, now lets in whatever
 *   comes back from each port it probed.
 * A probe that hits one of the hard side's mappings reaches that socket; the hard side answers
 * and checks back from it, the easy side's check session sees a peer-reflexive candidate, and
 * the usual checks and nomination finish the job on that pair.
 *
 * The odds: with n mappings among the P = 64,512 ports a Linux NAT allocates from (1024–65535),
 * k probes to distinct ports all miss with probability ≈ (1 − n/P)^k. n = 256, k = 2,048 gives
 * (1 − 256/64512)^2048 ≈ e^−8.1 ≈ 0.0003; the median hit comes after ≈ P·ln 2 / n ≈ 175 probes.
 * hyperdht uses the same n = 256 (and 20 ms pacing, which is why it takes ~35 s).
 *
 * Budgets (ARCHITECTURE non-negotiables: never a packet cannon, never a port scan): the spray
 * sends at most SPRAY_PROBES datagrams, SPRAY_PACING_MS apart (250 per second, ~8 s at most), only
 * to the address the other peer signed as its own; the hard side sends HARD_SOCKETS datagrams
 * and the same again twice (HARD_RESEND_MS), each to the one srflx the easy side signed. A
 * peer runs one birthday punch at a time, BIRTHDAY_MIN_INTERVAL_MS apart at least (BirthdayGate);
 * everything stops when the attempt settles or is aborted.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { randomBytes, randomInt } from 'node:crypto';
import { AbortedError, NatpunchError } from '../errors.js';
import { type Clock, realClock } from '../clock.js';
import {
  type TransportAddress, AttrType, Method, MessageClass, decodeMessage, encodeMessage, getAttribute, isStunMessage,
  username as usernameCodec, verifyIntegrity, xorMappedAddress,
} from '../wire/index.js';

/** Sockets (mappings) the hard side opens. */
export const HARD_SOCKETS = 256;
/** When the hard side sends its datagrams again (ms after the first), in case some were lost. */
export const HARD_RESEND_MS = [1_000, 3_000] as const;
/** Probes the easy side sends at most, and their pacing. */
export const SPRAY_PROBES = 2_048;
export const SPRAY_PACING_MS = 4;
/**
 * How long the hard side keeps its sockets open for a probe: the whole spray (SPRAY_PROBES ×
 * SPRAY_PACING_MS ≈ 8.2 s, since the two sides start together, at the rendezvous's startAt)
 * and 2 s for a late start and the round trip. Then it gives up: 256 sockets are not held open
 * on the chance that something still comes.
 */
export const HARD_LIFETIME_MS = SPRAY_PROBES * SPRAY_PACING_MS + 2_000;
/**
 * How long after the punch starts (the rendezvous's `startAt`) birthday probing waits for the
 * ordinary checks: two of their 200 ms rounds and a round trip. Against a NAT that filters by
 * address only (restricted cone) plain punching succeeds, and 256 sockets or 2,048 probes would
 * be spent for nothing (measured in the lab: ordinary checks complete in 80–150 ms there); the
 * probing is only for the pairs where nothing cheaper works.
 */
export const BIRTHDAY_AFTER_MS = 500;

/**
 * The least time between the starts of two birthday punches of one peer. A punch is a burst
 * (≤ 8 s of spray, or 768 datagrams from the hard side); repeated back to back, as recovery's
 * re-punches would (src/peer/recovery.ts: every 5 s at first), it would be a standing port scan.
 * 30 s keeps a peer's long-run average under 70 probes per second even if something asked for
 * birthday punches without end; a punch refused by it runs the ordinary checks alone.
 */
export const BIRTHDAY_MIN_INTERVAL_MS = 30_000;

/**
 * One birthday punch at a time per peer, and starts at least BIRTHDAY_MIN_INTERVAL_MS apart
 * (issue 9: "never look like a port scan").
 */
export class BirthdayGate {
  readonly #clock: Clock;
  #busy = false;
  #lastStart = -Infinity;

  constructor(clock: Clock = realClock) {
    this.#clock = clock;
  }

  /** A release function when a punch may start now, else undefined (one is running, or one started too recently). */
  tryAcquire(): (() => void) | undefined {
    const now = this.#clock.now();
    if (this.#busy || now - this.#lastStart < BIRTHDAY_MIN_INTERVAL_MS) return undefined;
    this.#busy = true;
    this.#lastStart = now;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#busy = false;
    };
  }
}

/** Ports a NAT allocates from (Linux: 1024–65535). */
const FIRST_PORT = 1024;
const LAST_PORT = 65_535;

/** A Binding request carrying the session's USERNAME and MESSAGE-INTEGRITY: a check the other side's session answers. */
function check(session: Uint8Array, key: Uint8Array): Uint8Array {
  return encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId: randomBytes(12), attributes: [{ type: AttrType.Username, value: session }] },
    { integrity: { key, algorithm: 'sha256' }, fingerprint: true });
}

export interface SprayOptions {
  /** Sends one datagram (the peer's punching socket). */
  send(data: Uint8Array, to: TransportAddress): void;
  session: string;
  key: Uint8Array;
  /** The hard side's address (from its signed srflx candidate). */
  address: string;
  family: 4 | 6;
  signal: AbortSignal;
  probes?: number;
  /** Filled with every port probed (so the caller can tell a pair the spray opened). */
  sprayed?: Set<number>;
  /** The pacing's timers (default: the real ones). */
  clock?: Clock;
  /** Picks the ports: a float in [0, 1) (default node:crypto's randomInt; the sim passes a seeded one). */
  random?: () => number;
}

/**
 * The easy side: checks to distinct random ports of `address`, paced, until `probes` are out or
 * `signal` aborts. Resolves with the number sent. Answers are left to the peer's check session.
 */
export async function birthdaySpray(options: SprayOptions): Promise<number> {
  const username = usernameCodec.encode(options.session);
  const probes = Math.min(options.probes ?? SPRAY_PROBES, LAST_PORT - FIRST_PORT + 1 - (options.sprayed?.size ?? 0));
  const tried = options.sprayed ?? new Set<number>();
  const clock = options.clock ?? realClock;
  const random = options.random;
  const pick = random ? (): number => FIRST_PORT + Math.floor(random() * (LAST_PORT - FIRST_PORT + 1)) : (): number => randomInt(FIRST_PORT, LAST_PORT + 1);
  let sent = 0;
  while (sent < probes && !options.signal.aborted) {
    let port: number;
    do port = pick();
    while (tried.has(port));
    tried.add(port);
    options.send(check(username, options.key), { family: options.family, address: options.address, port });
    sent++;
    // One listener per pause, removed when the pause ends: 2,048 left on the signal would leak
    // (and trip Node's MaxListenersExceededWarning after the tenth).
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clock.clearTimeout(timer);
        options.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = clock.setTimeout(done, SPRAY_PACING_MS);
      options.signal.addEventListener('abort', done, { once: true });
    });
  }
  return sent;
}

export interface HardSideOptions {
  session: string;
  key: Uint8Array;
  /** The easy side's srflx (its one mapping): where every socket sends, and the only source accepted. */
  to: TransportAddress;
  bindAddress?: string;
  signal: AbortSignal;
  sockets?: number;
  /** Default HARD_LIFETIME_MS. */
  lifetimeMs?: number;
  /** Makes each socket (default node:dgram's createSocket; the sim passes its own). */
  createSocket?: (type: 'udp4' | 'udp6') => dgram.Socket;
  /** The resends' and the lifetime's timers (default: the real ones). */
  clock?: Clock;
}

/** The socket the easy side's probe reached, still open and unread, and where the probe came from. */
export interface BirthdayHit {
  socket: dgram.Socket;
  from: TransportAddress;
  /** Sockets opened. */
  opened: number;
}

/**
 * The hard side: opens `sockets` sockets, sends a check from each to `to` (again at
 * HARD_RESEND_MS), and resolves with the first socket on which a verified check of this session
 * arrives from `to` (answered, and its 'message' listener removed, so the caller can hand it to
 * a UdpMux). Every other socket is closed. Rejects when `signal` aborts, or when nothing came
 * within `lifetimeMs`.
 */
export async function birthdaySockets(options: HardSideOptions): Promise<BirthdayHit> {
  const username = usernameCodec.encode(options.session);
  const count = options.sockets ?? HARD_SOCKETS;
  const createSocket = options.createSocket ?? ((type: 'udp4' | 'udp6') => dgram.createSocket(type));
  const clock = options.clock ?? realClock;
  const sockets: dgram.Socket[] = [];
  const timers: unknown[] = [];
  const closeAll = (except?: dgram.Socket): void => {
    for (const timer of timers) clock.clearTimeout(timer);
    for (const socket of sockets) {
      if (socket === except) continue;
      socket.removeAllListeners('message');
      try { socket.close(); } catch { /* already closed */ }
    }
  };
  try {
    for (let i = 0; i < count; i++) {
      const socket = createSocket(options.to.family === 6 ? 'udp6' : 'udp4');
      socket.on('error', () => {});
      sockets.push(socket);
      socket.bind(0, options.bindAddress);
    }
    await Promise.all(sockets.map((socket) => once(socket, 'listening')));
  } catch (error) {
    closeAll();
    throw new NatpunchError('ERR_TRANSPORT', `birthday probing: could not open ${count} UDP sockets: ${(error as Error).message}`);
  }
  if (options.signal.aborted) {
    closeAll();
    throw new AbortedError('birthday probing aborted', { cause: options.signal.reason });
  }
  return new Promise<BirthdayHit>((resolve, reject) => {
    let done = false;
    const onAbort = (): void => {
      if (done) return;
      done = true;
      closeAll();
      reject(new AbortedError('birthday probing aborted', { cause: options.signal.reason }));
    };
    options.signal.addEventListener('abort', onAbort, { once: true });
    const sendAll = (): void => {
      for (const socket of sockets) if (!done) socket.send(check(username, options.key), options.to.port, options.to.address);
    };
    for (const socket of sockets) {
      socket.on('message', (data, rinfo) => {
        if (done || rinfo.port !== options.to.port || rinfo.address !== options.to.address || !isStunMessage(data)) return;
        let message;
        try {
          message = decodeMessage(data);
        } catch {
          return;
        }
        if (message.method !== Method.Binding || message.messageClass !== MessageClass.Request) return;
        const user = getAttribute(message, AttrType.Username);
        if (!user || !Buffer.from(user).equals(username) || !verifyIntegrity(message, options.key)) return;
        done = true;
        options.signal.removeEventListener('abort', onAbort);
        const from: TransportAddress = { family: rinfo.family === 'IPv6' ? 6 : 4, address: rinfo.address, port: rinfo.port };
        // Answer the probe as a check session would (RFC 8445 §7.3), then hand the socket over.
        socket.send(encodeMessage({
          method: Method.Binding, messageClass: MessageClass.SuccessResponse, transactionId: message.transactionId,
          attributes: [{ type: AttrType.XorMappedAddress, value: xorMappedAddress.encode(from, message.transactionId) }],
        }, { integrity: { key: options.key, algorithm: 'sha256' }, fingerprint: true }), from.port, from.address);
        socket.removeAllListeners('message');
        closeAll(socket);
        resolve({ socket, from, opened: sockets.length });
      });
    }
    sendAll();
    for (const at of HARD_RESEND_MS) timers.push(clock.setTimeout(sendAll, at));
    timers.push(clock.setTimeout(() => {
      if (done) return;
      done = true;
      options.signal.removeEventListener('abort', onAbort);
      closeAll();
      reject(new NatpunchError('ERR_TRANSPORT', `birthday probing: no probe reached any of ${count} sockets in ${HARD_LIFETIME_MS} ms`));
    }, options.lifetimeMs ?? HARD_LIFETIME_MS));
  });
}
