/**
 * Birthday probing beside a connection's ordinary UDP checks (src/punch/birthday.ts), as
 * establish.ts runs it: the ordinary checks go alone for BIRTHDAY_AFTER_MS, then the easy side
 * sprays while they run, and the hard side opens its sockets and, when a probe reaches one, runs
 * a check session of its own on it. Out of establish.ts so that the in-process network
 * (src/sim/connect-scenario.ts) runs this same logic on its sockets and virtual clock: every
 * option for that is optional, and the defaults are node:dgram and real time.
 */
import type dgram from 'node:dgram';
import { debuglog } from 'node:util';
import { AbortedError } from '../errors.js';
import { formatAddress, type TransportAddress } from '../wire/index.js';
import type { PunchResult, UdpCheckSession } from '../punch/udp-checks.js';
import type { CandidateType } from '../punch/candidate.js';
import { BIRTHDAY_AFTER_MS, type BirthdayHit, birthdaySockets, birthdaySpray } from '../punch/birthday.js';
import type { PunchInstruction } from '../rendezvous/client.js';
import { type Clock, type WallClock, realClock, realWallClock } from '../clock.js';

const debug = debuglog('natpunch:peer');

/** Time as birthday probing reads it: `clock` for its timers, `wallClock` against the punch's `startAt`. */
export interface BirthdayTime {
  clock?: Clock;
  wallClock?: WallClock;
}

/** Resolves BIRTHDAY_AFTER_MS after the punch's start (now, when it has none), or when `signal` aborts. */
export function birthdayDue(instruction: PunchInstruction, signal: AbortSignal, time: BirthdayTime = {}): Promise<void> {
  const clock = time.clock ?? realClock;
  const wallNow = time.wallClock ?? realWallClock;
  const ms = (instruction.startAt ?? wallNow()) + BIRTHDAY_AFTER_MS - wallNow();
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const timer = clock.setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clock.clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** Whether the easy side's pair to `remote` is one its spray opened: the hard side's address, at a port it probed. */
export function sprayOpened(to: TransportAddress, sprayed: ReadonlySet<number>, type: CandidateType, remote: TransportAddress): boolean {
  return type !== 'host' && remote.address === to.address && sprayed.has(remote.port);
}

export interface SprayBesideOptions extends BirthdayTime {
  instruction: PunchInstruction;
  /** The ordinary check session: a hit shows up in it as a peer-reflexive pair; its result ends the spray. */
  session: UdpCheckSession;
  /** The hard side's public address (birthdaySide). */
  to: TransportAddress;
  /** Sends one datagram from the punching socket. */
  send(data: Uint8Array, to: TransportAddress): void;
  sprayed: Set<number>;
  signal: AbortSignal;
  /** Called once the spray is over (the BirthdayGate's release). */
  release(): void;
  /** The spray's ports (default node:crypto). */
  random?: () => number;
}

/** The easy side: sprays while the checks run, once they had their chance alone; stops when they settle. */
export function sprayBeside(options: SprayBesideOptions): void {
  const { instruction, session, to } = options;
  const stop = new AbortController();
  const spraying = AbortSignal.any([options.signal, stop.signal]);
  session.result.then(() => stop.abort(), () => stop.abort());
  void birthdayDue(instruction, spraying, options)
    .then(() => (spraying.aborted ? 0 : birthdaySpray({
      send: options.send, session: instruction.session, key: instruction.key, sprayed: options.sprayed,
      address: to.address, family: to.family, signal: spraying,
      ...(options.clock ? { clock: options.clock } : {}), ...(options.random ? { random: options.random } : {}),
    })))
    .then((sent) => debug('birthday spray: %d probes', sent)).finally(options.release);
}

/** What the hard side makes of a socket a probe reached: a check session of its own on it, and the path it gives. */
export interface BirthdayHitSession<P> {
  session: UdpCheckSession;
  path(punched: PunchResult): P;
  /** Closes what was made for the socket (the socket with it). */
  close(): void;
}

export interface BirthdayHardOptions<P> extends BirthdayTime {
  instruction: PunchInstruction;
  /** The ordinary check session. */
  session: UdpCheckSession;
  /** The easy side's public endpoint (birthdaySide). */
  to: TransportAddress;
  signal: AbortSignal;
  /** Called once the sockets are closed or handed over (the BirthdayGate's release). */
  release(): void;
  /** The path the ordinary checks found. */
  ordinary(punched: PunchResult): P;
  /** A check session on the socket a probe reached, toward the prflx `found.from`. */
  onHit(found: BirthdayHit): BirthdayHitSession<P>;
  bindAddress?: string | undefined;
  /** Makes the hard side's sockets (default node:dgram). */
  createSocket?: (type: 'udp4' | 'udp6') => dgram.Socket;
}

/**
 * The hard side of birthday probing (punch/birthday.ts): many sockets toward the easy side
 * beside the ordinary checks; the socket a probe reaches gets a check session of its own
 * (`onHit`), and the path on it is the connection's.
 */
export async function birthdayHard<P>(options: BirthdayHardOptions<P>): Promise<P> {
  const { instruction, session, signal, release, ordinary } = options;
  // The ordinary checks go first, alone (BIRTHDAY_AFTER_MS): no sockets if they are enough.
  const early = await Promise.race([
    session.result.then((punched) => ({ punched }), () => ({ checksFailed: true })),
    birthdayDue(instruction, signal, options).then(() => ({ due: true })),
  ]);
  if ('punched' in early || signal.aborted) {
    release();
    if (!('punched' in early)) throw new AbortedError('birthday probing aborted', { cause: signal.reason });
    return ordinary(early.punched);
  }
  const stop = new AbortController();
  const hit = birthdaySockets({
    session: instruction.session, key: instruction.key, to: options.to, signal: AbortSignal.any([signal, stop.signal]),
    ...(options.bindAddress ? { bindAddress: options.bindAddress } : {}),
    ...(options.createSocket ? { createSocket: options.createSocket } : {}), ...(options.clock ? { clock: options.clock } : {}),
  });
  hit.then(release, release);
  const first = await Promise.race([
    session.result.then((punched) => ({ punched }), () => ({ checksFailed: true })),
    hit.then((found) => ({ found }), () => ({ probingFailed: true })),
  ]);
  if ('probingFailed' in first || 'punched' in first) {
    stop.abort();
    return ordinary('punched' in first ? first.punched : await session.result);
  }
  // A socket was hit, or the ordinary checks gave up (their deadline) while the sockets may still be.
  const found = 'found' in first ? first.found : await hit;
  debug('birthday: a probe reached one of %d sockets, from %s', found.opened, formatAddress(found.from));
  // Two check sessions must never nominate two pairs. Controlling: the ordinary one keeps the
  // say if it already has a working pair (the other side's NAT let plain punching through);
  // otherwise it stops, and the birthday pair is the one nominated. Controlled: both keep
  // answering, and whichever pair the other side nominates is the one (its one session sees both).
  if (instruction.role === 'controlling') {
    if (session.succeeded) {
      found.socket.close();
      return ordinary(await session.result);
    }
    session.close();
  }
  const own = options.onHit(found);
  const chosen = await Promise.race([
    own.session.result.then((punched) => ({ birthday: punched })),
    session.result.then((punched) => ({ punched }), () => own.session.result.then((birthday) => ({ birthday }))),
  ]).catch((error: Error) => {
    own.session.close();
    own.close();
    throw error;
  });
  if ('punched' in chosen) {
    own.session.close();
    own.close();
    return ordinary(chosen.punched);
  }
  return own.path(chosen.birthday);
}
