import { randomBytes } from 'node:crypto';
import { NatpunchError, AbortedError } from '../errors.js';
import { type Clock, type WallClock, realClock, realWallClock } from '../clock.js';
import {
  type Attribute, type StunMessage, type TransportAddress, AttrType, Method, MessageClass, decodeMessage, encodeMessage,
  formatAddress, getAttribute, isStunMessage, username as usernameCodec, verifyIntegrity, xorMappedAddress,
} from '../wire/index.js';
import type { UdpMux } from './udp-mux.js';
import { type Candidate, type CandidateType, TYPE_PREFERENCE } from './candidate.js';

/**
 * Probing budget. Checks to one pair go out every CHECK_INTERVAL_MS (holes need a packet from
 * each side while the other side's is in flight, so the interval is kept constant rather than
 * backed off). The first FIRST_ROUND_BURST pairs' first checks leave together: a peer usually
 * has a host and a server-reflexive candidate, the host one (checked first, by priority) is
 * often a private address of another network that never answers, and every ms the working
 * pair's check waits behind it is a ms on the time to connect. A nomination's first check (once
 * per session) is not paced either. Every other pair's first check goes out
 * FIRST_CHECK_PACING_MS after the previous transmission, RFC 8445 §14.2's floor for Ta, so the
 * first round still reaches every candidate within a few dozen ms instead of queueing behind
 * one that will never answer. Every other transmission is paced PACING_MS apart overall (a few
 * dozen packets per second at most), and punching gives up after timeoutMs. With 16 candidates
 * at most (the rendezvous limit) plus MAX_PEER_REFLEXIVE, that bounds one session to one first
 * round of 20 checks within 100 ms, then ~50 packets per second and ~500 in all: never a packet
 * cannon. A predicted window (candidate.ts checkCandidates: one pair per port, 16 as signed by
 * natpunch, at most 4 × 64 by the signed budget) adds pairs but not rate: every transmission
 * still waits its PACING_MS, so the whole session stays at ~50 packets per second.
 */
export const PACING_MS = 20;
export const FIRST_CHECK_PACING_MS = 5;
/** First checks sent back to back before Ta pacing starts: a handful of packets, no burst to speak of. */
export const FIRST_ROUND_BURST = 3;
export const CHECK_INTERVAL_MS = 200;
export const DEFAULT_PUNCH_TIMEOUT_MS = 10_000;
export const MAX_PEER_REFLEXIVE = 4;
/**
 * When the controlling side nominates (RFC 8445 §8.1.1 leaves the moment to the agent): as soon
 * as no pair still waiting can beat the best one that succeeded. Only a pair of a higher type
 * preference can (a host pair: a LAN path beside a path through the NATs), and only if its
 * check might still come back: once its first check has been out `rtts` round trips of the
 * succeeded pair, it has lost — a working LAN path is no longer than the path through the NATs,
 * and checks go out in priority order, so its check left first. So a best-possible first
 * success (nothing better waiting) is nominated at once. `max` bounds the wait after the first
 * success whatever happens (a lost check is retried only after CHECK_INTERVAL_MS).
 *
 * That "no longer" holds within one address family only. A waiting pair of the other family
 * (the IPv6 host pair beside an IPv4 server-reflexive one, the pair RFC 8421 §4 and RFC 8305 §4
 * prefer) runs on another path: its own routes, its own neighbour discovery before the first
 * packet leaves (RFC 4861 §7.2.2, while the IPv4 gateway's ARP entry is warm from registration),
 * and a stateful firewall that opens only once the other side's check has left. The IPv4 pair's
 * round trip says nothing about it, so it is given `max` from its own first check (seen in
 * the lab under load: the IPv4 pair nominated while the IPv6 pair's answer was still on its way).
 * Once the first success comes `max` after that check, nothing more is waited for.
 */
export const NOMINATION_WAIT_MS = { rtts: 1, max: 150 };

/** A Binding message in `data`, or undefined (not STUN, malformed, or another method). */
export function decodeBinding(data: Buffer): StunMessage | undefined {
  if (!isStunMessage(data)) return undefined;
  let message: StunMessage;
  try {
    message = decodeMessage(data);
  } catch {
    return undefined;
  }
  return message.method === Method.Binding ? message : undefined;
}

/** The success response to a verified check from `from`: XOR-MAPPED-ADDRESS, then `extra`, with MESSAGE-INTEGRITY-SHA256 under `key`. @see RFC 8445 §7.3.1.4 */
export function checkResponse(request: StunMessage, from: TransportAddress, key: Uint8Array, extra: Attribute[] = []): Uint8Array {
  return encodeMessage({
    method: Method.Binding, messageClass: MessageClass.SuccessResponse, transactionId: request.transactionId,
    attributes: [{ type: AttrType.XorMappedAddress, value: xorMappedAddress.encode(from, request.transactionId) }, ...extra],
  }, { integrity: { key, algorithm: 'sha256' }, fingerprint: true });
}

export interface UdpPunchOptions {
  mux: UdpMux;
  /** Session id from the rendezvous; it is the checks' USERNAME, so the mux can route them. */
  session: string;
  /** Session key for MESSAGE-INTEGRITY on every check. */
  key: Uint8Array;
  role: 'controlling' | 'controlled';
  /** The other peer's candidates — only those from its verified, signed offer. */
  remoteCandidates: Candidate[];
  /** Local ms epoch (Date.now()) at which both sides start, synchronised by the rendezvous. */
  startAt?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Pacing, check intervals, RTTs and the deadline run on this (default: the real timers). */
  /**
   * Controlling side: called once, when it starts nominating a pair (before the nomination's
   * answer), so the caller may send its first message on that pair at the same time instead of
   * one round trip later. Nomination only fails if that pair stops answering.
   */
  onNominating?: (remote: TransportAddress, type: CandidateType) => void;
  clock?: Clock;
  /**
   * Whether a verified check from an unknown source is answered and may become a peer-reflexive
   * pair (default: any, up to MAX_PEER_REFLEXIVE). Serverless punching, whose check key is no
   * secret, admits only the IP of the address the user gave.
   */
  acceptPeerReflexive?: (from: TransportAddress) => boolean;
  /** What `startAt` is measured against (default `Date.now`). */
  wallClock?: WallClock;
}

export interface PunchResult {
  remote: TransportAddress;
  type: CandidateType;
  rttMs: number;
  /** Check packets this side sent. */
  checksSent: number;
}

type PairState = 'waiting' | 'succeeded';

interface Pair {
  candidate: Candidate;
  state: PairState;
  nextSendAt: number;
  /** Outstanding checks: transaction id -> when sent, and whether it carried USE-CANDIDATE. */
  transactions: Map<string, { sentAt: number; nominate: boolean }>;
  rttMs: number;
  nominated: boolean;
  /** When this pair's first check went out (undefined: not yet). */
  firstSentAt: number | undefined;
}

/**
 * ICE-style connectivity checks from one UDP socket (RFC 8445 §7, simplified for one local
 * candidate and roles fixed by the rendezvous): Binding requests with MESSAGE-INTEGRITY to every
 * remote candidate, triggered checks toward peer-reflexive sources, and nomination by the
 * controlling side with USE-CANDIDATE (regular nomination, §8.1.1).
 *
 * The session keeps answering the other side's checks until closed, because its last
 * nomination retransmissions may arrive after this side has already chosen.
 */
export class UdpCheckSession {
  readonly #o: UdpPunchOptions;
  readonly #pairs = new Map<string, Pair>();
  readonly #username: Uint8Array;
  readonly #clock: Clock;
  #checksSent = 0;
  /** onNominating has been called. */
  #announced = false;
  #prflx = 0;
  #timer: unknown;
  #deadline: unknown;
  #firstSuccessAt: number | undefined;
  /** Clock time of the agreed start, and of the last check sent (pacing). */
  readonly #startsAt: number;
  #lastSentAt = -Infinity;
  /** Pairs whose first check has gone out (the first FIRST_ROUND_BURST of them go back to back). */
  #firstChecksSent = 0;
  #selected: Pair | undefined;
  #nominating: Pair | undefined;
  #done = false;
  #resolve!: (r: PunchResult) => void;
  #reject!: (e: Error) => void;
  readonly result: Promise<PunchResult>;
  #unsubscribe: () => void;

  constructor(options: UdpPunchOptions) {
    this.#o = options;
    this.#clock = options.clock ?? realClock;
    this.#username = usernameCodec.encode(options.session);
    // A pair needs a local base of the remote candidate's family (RFC 8445 §6.1.2.2): a peer
    // without IPv6 does not check the other side's IPv6 candidates.
    for (const candidate of options.remoteCandidates) if (options.mux.hasFamily(candidate.address.family)) this.#addPair(candidate);
    this.result = new Promise((resolve, reject) => { this.#resolve = resolve; this.#reject = reject; });
    this.result.catch(() => undefined);
    this.#unsubscribe = options.mux.onStun((data, from) => this.#onStun(data, from));
    const wallNow = (options.wallClock ?? realWallClock)();
    const start = Math.max(0, (options.startAt ?? wallNow) - wallNow);
    this.#startsAt = this.#clock.now() + start;
    this.#timer = this.#clock.setTimeout(() => this.#tick(), start);
    this.#deadline = this.#clock.setTimeout(() => this.#fail(new NatpunchError('ERR_TRANSPORT',
      `UDP punching: no working path to ${[...this.#pairs.values()].map((p) => formatAddress(p.candidate.address)).join(', ') || 'no candidates'} within ${options.timeoutMs ?? DEFAULT_PUNCH_TIMEOUT_MS} ms`)),
      start + (options.timeoutMs ?? DEFAULT_PUNCH_TIMEOUT_MS));
    options.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** Stop answering checks and release the socket handler. */
  close(): void {
    this.#stopProbing();
    this.#unsubscribe();
    if (!this.#done) this.#fail(new AbortedError('UDP punching closed'));
  }

  #onAbort = (): void => this.#fail(new AbortedError('UDP punching aborted', { cause: this.#o.signal?.reason }));

  #addPair(candidate: Candidate): Pair {
    const key = formatAddress(candidate.address);
    let pair = this.#pairs.get(key);
    if (!pair) {
      pair = { candidate, state: 'waiting', nextSendAt: 0, transactions: new Map(), rttMs: 0, nominated: false, firstSentAt: undefined };
      this.#pairs.set(key, pair);
    }
    return pair;
  }

  /** One paced transmission: the pair whose check is most overdue; then the next tick is armed. */
  #tick(): void {
    this.#timer = undefined;
    if (this.#done && !this.#nominating) return;
    const now = this.#clock.now();
    const nominateAt = this.#nominationAt();
    if (nominateAt !== undefined && nominateAt <= now) {
      this.#nominating = this.#best();
      this.#nominating.nextSendAt = 0;
    }
    const due = this.#due();
    if (due && due.at <= now) this.#sendCheck(due.pair, due.pair === this.#nominating);
    this.#schedule();
  }

  /** Arms the tick for the next transmission or nomination, whichever comes first (never before the start). */
  #schedule(): void {
    if (this.#done && !this.#nominating) return;
    const next = Math.min(this.#due()?.at ?? Infinity, this.#nominationAt() ?? Infinity);
    if (next === Infinity) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => this.#tick(), Math.max(0, Math.max(next, this.#startsAt) - this.#clock.now()));
  }

  /** The pair to send to next, and when pacing lets it go: a pair's first check (or a nomination's) after Ta, any other after PACING_MS. */
  #due(): { pair: Pair; at: number } | undefined {
    const pairs = this.#nominating ? [this.#nominating] : [...this.#pairs.values()].filter((p) => p.state === 'waiting');
    let due: { pair: Pair; at: number } | undefined;
    for (const pair of pairs) {
      const first = pair.firstSentAt === undefined || (pair === this.#nominating && ![...pair.transactions.values()].some((t) => t.nominate));
      // A nomination goes at once: it happens once per session, and the connection waits for it.
      const gap = !first ? PACING_MS : pair === this.#nominating || this.#firstChecksSent < FIRST_ROUND_BURST ? 0 : FIRST_CHECK_PACING_MS;
      const at = Math.max(pair.nextSendAt, this.#lastSentAt + gap);
      if (!due || at < due.at || (at === due.at && pair.nextSendAt < due.pair.nextSendAt)) due = { pair, at };
    }
    return due;
  }

  /** Controlling side: when to nominate the best succeeded pair (NOMINATION_WAIT_MS); undefined before a success or once nominating. */
  #nominationAt(): number | undefined {
    if (this.#o.role !== 'controlling' || this.#nominating || this.#done || this.#firstSuccessAt === undefined) return undefined;
    const best = this.#best();
    const latest = this.#firstSuccessAt + NOMINATION_WAIT_MS.max;
    let at = this.#firstSuccessAt;
    for (const pair of this.#pairs.values()) {
      if (pair.state !== 'waiting' || TYPE_PREFERENCE[pair.candidate.type] <= TYPE_PREFERENCE[best.candidate.type]) continue;
      if (pair.firstSentAt === undefined) return latest;
      const sameFamily = pair.candidate.address.family === best.candidate.address.family;
      at = Math.max(at, pair.firstSentAt + (sameFamily ? NOMINATION_WAIT_MS.rtts * best.rttMs : NOMINATION_WAIT_MS.max));
    }
    return Math.min(at, latest);
  }

  #sendCheck(pair: Pair, useCandidate: boolean): void {
    const transactionId = randomBytes(12);
    const now = this.#clock.now();
    pair.transactions.set(transactionId.toString('hex'), { sentAt: now, nominate: useCandidate });
    pair.nextSendAt = now + CHECK_INTERVAL_MS;
    if (pair.firstSentAt === undefined) {
      pair.firstSentAt = now;
      this.#firstChecksSent++;
    }
    this.#lastSentAt = now;
    const attributes: Attribute[] = [{ type: AttrType.Username, value: this.#username }];
    if (useCandidate) attributes.push({ type: AttrType.UseCandidate, value: new Uint8Array(0) });
    this.#checksSent++;
    this.#o.mux.send(encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId, attributes },
      { integrity: { key: this.#o.key, algorithm: 'sha256' }, fingerprint: true }), pair.candidate.address);
    // After the first nominating check has left, so what the caller sends arrives behind it.
    if (useCandidate && !this.#announced) {
      this.#announced = true;
      this.#o.onNominating?.(pair.candidate.address, pair.candidate.type);
    }
  }

  #best(): Pair {
    return [...this.#pairs.values()].filter((p) => p.state === 'succeeded')
      .sort((a, b) => TYPE_PREFERENCE[b.candidate.type] - TYPE_PREFERENCE[a.candidate.type] || a.rttMs - b.rttMs)[0]!;
  }

  #onStun(data: Buffer, from: TransportAddress): boolean {
    const message = decodeBinding(data);
    if (message?.messageClass === MessageClass.Request) return this.#onRequest(message, from);
    if (message?.messageClass === MessageClass.SuccessResponse) return this.#onResponse(message, from);
    return false;
  }

  #onRequest(message: StunMessage, from: TransportAddress): boolean {
    const user = getAttribute(message, AttrType.Username);
    if (!user || !Buffer.from(user).equals(this.#username)) return false;
    // Unverified checks are dropped and teach us nothing: only the session key holder may
    // make us respond or add a peer-reflexive candidate (RFC 8445 §7.3).
    if (!verifyIntegrity(message, this.#o.key)) return true;
    // A source the caller does not admit is not answered either (a key anyone may know).
    const admitted = this.#o.acceptPeerReflexive?.(from) ?? true;
    if (!admitted && !this.#pairs.has(formatAddress(from))) return true;
    this.#o.mux.send(checkResponse(message, from, this.#o.key), from);
    if (this.#done) return true;
    let pair = this.#pairs.get(formatAddress(from));
    if (!pair && this.#prflx < MAX_PEER_REFLEXIVE && admitted) {
      this.#prflx++;
      pair = this.#addPair({ type: 'prflx', address: from });
    }
    if (!pair) return true;
    // Triggered check (RFC 8445 §7.3.1.4): answer a working inbound path with our own check now.
    if (pair.state === 'waiting') {
      pair.nextSendAt = 0;
      this.#schedule();
    }
    if (getAttribute(message, AttrType.UseCandidate) !== undefined && this.#o.role === 'controlled') {
      pair.nominated = true;
      if (pair.state === 'succeeded') this.#select(pair);
    }
    return true;
  }

  #onResponse(message: StunMessage, from: TransportAddress): boolean {
    const id = Buffer.from(message.transactionId).toString('hex');
    const pair = [...this.#pairs.values()].find((p) => p.transactions.has(id));
    if (!pair) return false;
    // RFC 8445 §7.2.5.2.1: the response must come from where the request went.
    if (formatAddress(from) !== formatAddress(pair.candidate.address) || !verifyIntegrity(message, this.#o.key)) return true;
    const { sentAt, nominate } = pair.transactions.get(id)!;
    pair.rttMs = this.#clock.now() - sentAt;
    if (pair.state === 'waiting') {
      pair.state = 'succeeded';
      this.#firstSuccessAt ??= this.#clock.now();
    }
    if (nominate && this.#nominating === pair) this.#select(pair);
    else if (pair.nominated && this.#o.role === 'controlled') this.#select(pair);
    else this.#schedule();
    return true;
  }

  #select(pair: Pair): void {
    if (this.#done) return;
    this.#selected = pair;
    this.#done = true;
    this.#stopProbing();
    this.#resolve({ remote: pair.candidate.address, type: pair.candidate.type, rttMs: Math.round(pair.rttMs * 10) / 10, checksSent: this.#checksSent });
  }

  #stopProbing(): void {
    this.#nominating = undefined;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    if (this.#deadline !== undefined) this.#clock.clearTimeout(this.#deadline);
    this.#timer = this.#deadline = undefined;
    this.#o.signal?.removeEventListener('abort', this.#onAbort);
  }

  #fail(error: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#stopProbing();
    this.#reject(error);
  }

  /** Some pair's check has been answered (a path works), whether or not one was selected yet. */
  get succeeded(): boolean {
    return this.#firstSuccessAt !== undefined;
  }

  get selected(): TransportAddress | undefined {
    return this.#selected?.candidate.address;
  }
}
