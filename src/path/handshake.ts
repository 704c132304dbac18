/**
 * The Noise XX handshake (src/secure/natpunch-handshake.ts) as datagrams on a raw path, so that
 * everything after it can be sealed datagram by datagram (frame.ts) on any path.
 *
 *   initiator (controlling)                          responder (controlled)
 *   HANDSHAKE 0: e                     ──────────▶   (first path it arrives on is the path)
 *                                      ◀──────────   HANDSHAKE 1: e, ee, s, es, identity
 *   HANDSHAKE 2: s, se, identity       ──────────▶   complete
 *   complete: SEALED frames may follow at once
 *
 * Datagrams get lost, so each side repeats its last message until it hears the next one, with
 * an exponential back-off (RFC 8489 §6.2.1's shape, from a shorter start: the path has just
 * answered connectivity checks, so its RTT is known to be small), and the initiator answers a
 * repeated message 1 with message 2 again: its SEALED data may already be flowing, and the
 * responder cannot open it until message 2 arrives. A TCP path loses nothing, and the same code
 * simply never repeats.
 *
 * A message that does not decrypt or verify is dropped, not fatal (anyone who sees the path can
 * send one); the Noise state its read spoilt is rebuilt by replaying this side's transcript with
 * the same key pairs. Only after MAX_DROPPED_MESSAGES such messages does the handshake give up.
 *
 * Message 0 (a bare ephemeral key) proves nothing, so the responder cannot tell a forged one
 * from the initiator's. When a second, different message 0 comes, it answers that one too, from
 * a fresh ephemeral key, and keeps up to MAX_EXCHANGES such exchanges open: whichever gets a
 * message 2 that verifies is the handshake. A forger who is first (on the path, or spoofing the
 * initiator's address) then costs the genuine initiator one more round trip, not the whole
 * handshake timeout. Each extra exchange counts as a dropped message, so the DH work a forger
 * can cause stays bounded.
 */
import { AbortedError, NatpunchError } from '../errors.js';
import type { Identity } from '../identity/index.js';
import { NatpunchHandshake, type SecureSession, generateKeyPair, type KeyPair } from '../secure/index.js';
import { type Clock, systemClock } from '../transport/clock.js';
import { FrameKind, HANDSHAKE_HEADER_LENGTH, encodeHandshakeFrame } from './frame.js';
import type { RawPath } from './raw-path.js';

export const HANDSHAKE_INITIAL_RTO_MS = 200;
export const HANDSHAKE_MAX_RTO_MS = 2_000;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 15_000;
/** Handshake messages that fail to decrypt or verify, dropped before the handshake gives up. */
export const MAX_DROPPED_MESSAGES = 16;
/** Responder: exchanges (one per distinct message 0) open at once; the oldest goes first. */
export const MAX_EXCHANGES = 4;
/** Times a completed initiator answers a repeated message 1 with message 2 again. */
const MAX_LATE_ANSWERS = 8;
/** Replay window of the session's datagram cipher: the stream may have this many packets in flight and reordered. */
export const DATAGRAM_REPLAY_WINDOW = 8192;

export interface PathHandshakeOptions {
  identity: Identity;
  initiator: boolean;
  /** The peer we mean to reach (required for the initiator, unless `anyPeer`). */
  expectedPeerId?: string;
  /** An initiator that accepts whoever answers (see NatpunchHandshakeOptions.anyPeer). */
  anyPeer?: boolean;
  /** Session context bound into the handshake (the rendezvous session id). */
  context: Uint8Array;
  clock?: Clock;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface HandshakeResult {
  session: SecureSession;
  /** The path the handshake completed on: the connection's first path. */
  path: RawPath;
  /** Round trip of the exchange's last message pair, ms (undefined if it was repeated). */
  rttMs: number | undefined;
}

/**
 * One run of the Noise pattern on one path: its state, what this side wrote and read (replayed to
 * rebuild the state after a forgery), and our last message, repeated until the answer comes.
 */
interface Exchange {
  noise: NatpunchHandshake;
  readonly keys: { s: KeyPair; e: KeyPair };
  readonly transcript: Array<{ read: Uint8Array } | { wrote: Uint8Array }>;
  path: RawPath | undefined;
  /** Responder: the message 0 that started it, to know a repetition from another message 0. */
  first?: Uint8Array;
  last: Uint8Array | undefined;
}

export class PathHandshake {
  readonly result: Promise<HandshakeResult>;
  readonly #options: PathHandshakeOptions;
  readonly #static: KeyPair;
  /** The exchange our repetitions serve: the initiator's only one, the responder's newest. */
  #current: Exchange;
  /** Responder: the older exchanges still open (a forged message 0 may have come first). */
  #others: Exchange[] = [];
  #dropped = 0;
  /** Paths offered so far: offering one twice (early, then as the race's winner) is harmless. */
  readonly #offered = new Set<RawPath>();
  #lastRefused: Error | undefined;
  readonly #clock: Clock;
  readonly #initiator: boolean;
  #lastSentAt = 0;
  #repeated = false;
  #rto = HANDSHAKE_INITIAL_RTO_MS;
  #timer: unknown;
  #deadline: unknown;
  #done = false;
  #lateAnswers = 0;
  #resolve!: (result: HandshakeResult) => void;
  #reject!: (error: Error) => void;
  readonly #onAbort = (): void => this.#fail(new AbortedError('handshake aborted'));
  readonly #signal: AbortSignal | undefined;

  constructor(options: PathHandshakeOptions) {
    this.#options = options;
    this.#static = generateKeyPair();
    this.#current = this.#exchange();
    this.#clock = options.clock ?? systemClock;
    this.#initiator = options.initiator;
    this.result = new Promise((resolve, reject) => { this.#resolve = resolve; this.#reject = reject; });
    this.result.catch(() => undefined);
    const timeoutMs = options.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.#deadline = this.#clock.setTimeout(() => {
      const refused = this.#lastRefused;
      // A genuine peer with the wrong identity looks like a forgery until the time is up: say so then.
      this.#fail(refused
        ? new NatpunchError('ERR_NOISE', `handshake: no valid answer within ${timeoutMs} ms; the last message was refused: ${refused.message}`, { cause: refused })
        : new NatpunchError('ERR_NOISE', `handshake: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    this.#signal = options.signal;
    if (options.signal?.aborted) queueMicrotask(this.#onAbort);
    else options.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** A new exchange: our static key, a fresh ephemeral one (never reused across exchanges). */
  #exchange(): Exchange {
    const keys = { s: this.#static, e: generateKeyPair() };
    return { noise: this.#fresh(keys), keys, transcript: [], path: undefined, last: undefined };
  }

  #fresh(keys: { s: KeyPair; e: KeyPair }): NatpunchHandshake {
    const options = this.#options;
    return new NatpunchHandshake({
      identity: options.identity, initiator: options.initiator, expectedPeerId: options.expectedPeerId, anyPeer: options.anyPeer,
      prologue: options.context, datagram: { replayWindow: DATAGRAM_REPLAY_WINDOW }, keys,
    });
  }

  /** A Noise state equal to the one before the failed read: the same keys, the same messages again. */
  #replay(exchange: Exchange): NatpunchHandshake {
    const noise = this.#fresh(exchange.keys);
    for (const step of exchange.transcript) {
      if ('read' in step) noise.read(step.read);
      else noise.write();
    }
    return noise;
  }

  /**
   * A path to the peer. The initiator starts on the first path offered; the responder listens on
   * every path offered and answers on each that brings a message 0.
   */
  offer(path: RawPath): void {
    if (this.#offered.has(path)) return;
    this.#offered.add(path);
    path.onDatagram((frame) => this.#onFrame(frame, path));
    if (this.#initiator && !this.#current.path && !this.#done) {
      this.#current.path = path;
      let message: Uint8Array | null;
      try {
        message = this.#current.noise.write();
      } catch (error) {
        this.#fail(error as Error);
        return;
      }
      if (message) this.#send(this.#current, message);
    }
  }

  #onFrame(frame: Uint8Array, path: RawPath): void {
    if (frame[0] !== FrameKind.Handshake || frame.length < HANDSHAKE_HEADER_LENGTH) return;
    const index = frame[1]!;
    // A copy: the frame may be a view of a receive batch (src/punch/udp-receive.ts), and the
    // message is kept (the transcript, and the Noise state's view of the peer's keys).
    const message = frame.slice(HANDSHAKE_HEADER_LENGTH);
    if (this.#done) {
      // Message 1 again: our message 2 was lost, and the responder cannot open our data without it.
      const { path: ours, last } = this.#current;
      if (this.#initiator && index === 1 && path === ours && last && this.#lateAnswers++ < MAX_LATE_ANSWERS) path.send(last);
      return;
    }
    if (this.#initiator) {
      if (path === this.#current.path && index === 1) this.#read(this.#current, message);
    } else if (index === 0) {
      this.#onFirst(path, message);
    } else if (index === 2) {
      // Message 2 belongs to an exchange answered on its path; try the newest first.
      for (const exchange of [this.#current, ...[...this.#others].reverse()]) {
        if (exchange.path !== path || !exchange.last) continue;
        if (this.#read(exchange, message) || this.#done) return;
      }
    }
  }

  /** Responder: a message 0. A repetition is answered again; a different one opens an exchange. */
  #onFirst(path: RawPath, message: Uint8Array): void {
    for (const exchange of [this.#current, ...this.#others]) {
      if (exchange.first && Buffer.compare(exchange.first, message) === 0) {
        // The initiator did not get our message 1: answer again at once.
        if (exchange.path === path && exchange.last) path.send(exchange.last);
        return;
      }
    }
    const another = this.#current.first !== undefined;
    // Another message 0 while one is answered: either may be the forgery, so both stay open.
    if (another && ++this.#dropped >= MAX_DROPPED_MESSAGES) {
      this.#fail(new NatpunchError('ERR_NOISE', `handshake: ${this.#dropped} messages refused or superseded; the last: another message 0`));
      return;
    }
    const exchange = another ? this.#exchange() : this.#current;
    exchange.path = path;
    exchange.first = message.slice();
    if (!this.#read(exchange, message)) exchange.path = exchange.first = undefined;
  }

  /**
   * Reads the other side's next message into `exchange`, writes our answer and sends it; false
   * if either step refused it (a forgery, or a key no honest peer sends, such as a low-order
   * point), leaving the exchange as it was.
   */
  #read(exchange: Exchange, message: Uint8Array): boolean {
    const sentAt = this.#lastSentAt;
    let answer: Uint8Array | null;
    try {
      exchange.noise.read(message);
      answer = exchange.noise.write();
    } catch (error) {
      // A message that does not decrypt or verify proves nothing about the peer: anyone who sees
      // the path could have sent it. Drop it and keep waiting for the genuine one, as WireGuard
      // drops an invalid handshake message; the failed step left the Noise state unusable, so
      // rebuild it by replaying this side's transcript. Bounded, so forgeries cannot make the
      // side spend its time on DH.
      // A genuine peer with another id says more than a later message that fails to decrypt.
      if ((this.#lastRefused as { reason?: string } | undefined)?.reason !== 'peer-mismatch') this.#lastRefused = error as Error;
      if (++this.#dropped >= MAX_DROPPED_MESSAGES) {
        this.#fail(new NatpunchError('ERR_NOISE', `handshake: ${this.#dropped} messages refused; the last: ${(error as Error).message}`, { cause: error }));
        return false;
      }
      exchange.noise = this.#replay(exchange);
      return false;
    }
    exchange.transcript.push({ read: message.slice() });
    const rttMs = this.#repeated || !exchange.last ? undefined : this.#clock.now() - sentAt;
    if (exchange !== this.#current) {
      // A new exchange (another message 0), or an older one that won (the newer message 0 was
      // the forgery): our repetitions serve it now.
      this.#others = this.#others.filter((e) => e !== exchange);
      if (this.#current.first) {
        this.#others.push(this.#current);
        if (this.#others.length >= MAX_EXCHANGES) this.#others.shift();
      }
      this.#current = exchange;
    }
    if (answer) this.#send(exchange, answer);
    else this.#clock.clearTimeout(this.#timer);
    if (exchange.noise.complete) this.#complete(rttMs);
    return true;
  }

  /** Sends our next message of `exchange` (now the current one) and arms its repetition. */
  #send(exchange: Exchange, message: Uint8Array): void {
    this.#clock.clearTimeout(this.#timer);
    exchange.transcript.push({ wrote: message });
    const index = this.#initiator ? (exchange.last ? 2 : 0) : 1;
    exchange.last = encodeHandshakeFrame(index, message);
    this.#repeated = false;
    this.#rto = HANDSHAKE_INITIAL_RTO_MS;
    this.#transmit();
  }

  #transmit(): void {
    const { path, last, noise } = this.#current;
    this.#lastSentAt = this.#clock.now();
    path!.send(last!);
    // The initiator's message 2 ends its part; it is repeated only on request (a repeated message 1).
    if (noise.complete) return;
    this.#timer = this.#clock.setTimeout(() => {
      if (this.#done) return;
      this.#repeated = true;
      this.#rto = Math.min(this.#rto * 2, HANDSHAKE_MAX_RTO_MS);
      this.#transmit();
    }, this.#rto);
  }

  #complete(rttMs: number | undefined): void {
    this.#done = true;
    this.#others = [];
    this.#cleanUp();
    let session: SecureSession;
    try {
      session = this.#current.noise.session();
    } catch (error) {
      this.#reject(error as Error);
      return;
    }
    this.#resolve({ session, path: this.#current.path!, rttMs });
  }

  #fail(error: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#current.last = undefined;
    this.#others = [];
    this.#cleanUp();
    this.#reject(error);
  }

  #cleanUp(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#clock.clearTimeout(this.#deadline);
    this.#signal?.removeEventListener('abort', this.#onAbort);
  }

  /** Stops repeating and answering; a handshake still running fails with `error` (default AbortedError). */
  close(error: Error = new AbortedError('handshake closed')): void {
    this.#fail(error);
    this.#current.last = undefined;
  }
}
