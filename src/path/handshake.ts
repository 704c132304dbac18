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
/** Times a completed initiator answers a repeated message 1 with message 2 again. */
const MAX_LATE_ANSWERS = 8;
/** Replay window of the session's datagram cipher: the stream may have this many packets in flight and reordered. */
export const DATAGRAM_REPLAY_WINDOW = 8192;

export interface PathHandshakeOptions {
  identity: Identity;
  initiator: boolean;
  /** The peer we mean to reach (required for the initiator). */
  expectedPeerId?: string;
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

export class PathHandshake {
  readonly result: Promise<HandshakeResult>;
  #noise: NatpunchHandshake;
  readonly #options: PathHandshakeOptions;
  readonly #keys: { s: KeyPair; e: KeyPair };
  /** What this side wrote and read so far, in order: replayed to rebuild the state after a forgery. */
  readonly #transcript: Array<{ read: Uint8Array } | { wrote: Uint8Array }> = [];
  #dropped = 0;
  /** Paths offered so far: offering one twice (early, then as the race's winner) is harmless. */
  readonly #offered = new Set<RawPath>();
  #lastRefused: Error | undefined;
  readonly #clock: Clock;
  readonly #initiator: boolean;
  #path: RawPath | undefined;
  /** Our last message, repeated until the answer comes. */
  #last: Uint8Array | undefined;
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
    this.#keys = { s: generateKeyPair(), e: generateKeyPair() };
    this.#noise = this.#fresh();
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

  #fresh(): NatpunchHandshake {
    const options = this.#options;
    return new NatpunchHandshake({
      identity: options.identity, initiator: options.initiator, expectedPeerId: options.expectedPeerId,
      prologue: options.context, datagram: { replayWindow: DATAGRAM_REPLAY_WINDOW }, keys: this.#keys,
    });
  }

  /** A Noise state equal to the one before the failed read: the same keys, the same messages again. */
  #replay(): NatpunchHandshake {
    const noise = this.#fresh();
    for (const step of this.#transcript) {
      if ('read' in step) noise.read(step.read);
      else noise.write();
    }
    return noise;
  }

  /**
   * A path to the peer. The initiator starts on the first path offered; the responder listens on
   * every path offered and answers on the first that brings message 1.
   */
  offer(path: RawPath): void {
    if (this.#offered.has(path)) return;
    this.#offered.add(path);
    path.onDatagram((frame) => this.#onFrame(frame, path));
    if (this.#initiator && !this.#path && !this.#done) {
      this.#path = path;
      this.#sendNext();
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
      if (this.#initiator && index === 1 && path === this.#path && this.#last && this.#lateAnswers++ < MAX_LATE_ANSWERS) path.send(this.#last);
      return;
    }
    if (this.#initiator) {
      if (path !== this.#path || index !== 1) return;
    } else if (index === 0) {
      if (this.#path) {
        // The initiator did not get our message 1: answer again at once.
        if (path === this.#path && this.#last) path.send(this.#last);
        return;
      }
      this.#path = path;
    } else if (index !== 2 || path !== this.#path) return;
    const sentAt = this.#lastSentAt;
    try {
      this.#noise.read(message);
    } catch (error) {
      // A message that does not decrypt or verify proves nothing about the peer: anyone who sees
      // the path could have sent it. Drop it and keep waiting for the genuine one, as WireGuard
      // drops an invalid handshake message; the failed read left the Noise state unusable, so
      // rebuild it by replaying this side's transcript. Bounded, so forgeries cannot make the
      // side spend its time on DH.
      this.#lastRefused = error as Error;
      if (++this.#dropped >= MAX_DROPPED_MESSAGES) {
        this.#fail(new NatpunchError('ERR_NOISE', `handshake: ${this.#dropped} messages refused; the last: ${(error as Error).message}`, { cause: error }));
        return;
      }
      if (!this.#initiator && index === 0) this.#path = undefined;
      this.#noise = this.#replay();
      return;
    }
    this.#transcript.push({ read: message });
    const rttMs = this.#repeated || !this.#last ? undefined : this.#clock.now() - sentAt;
    this.#sendNext();
    if (this.#noise.complete) this.#complete(rttMs);
  }

  /** Writes and sends our next message, if it is our turn, and arms its repetition. */
  #sendNext(): void {
    this.#clock.clearTimeout(this.#timer);
    let message: Uint8Array | null;
    try {
      message = this.#noise.write();
    } catch (error) {
      this.#fail(error as Error);
      return;
    }
    if (!message) return;
    this.#transcript.push({ wrote: message });
    const index = this.#initiator ? (this.#last ? 2 : 0) : 1;
    this.#last = encodeHandshakeFrame(index, message);
    this.#repeated = false;
    this.#rto = HANDSHAKE_INITIAL_RTO_MS;
    this.#transmit();
  }

  #transmit(): void {
    const path = this.#path!;
    this.#lastSentAt = this.#clock.now();
    path.send(this.#last!);
    // The initiator's message 3 ends its part; it is repeated only on request (a repeated message 2).
    if (this.#noise.complete) return;
    this.#timer = this.#clock.setTimeout(() => {
      if (this.#done) return;
      this.#repeated = true;
      this.#rto = Math.min(this.#rto * 2, HANDSHAKE_MAX_RTO_MS);
      this.#transmit();
    }, this.#rto);
  }

  #complete(rttMs: number | undefined): void {
    this.#done = true;
    this.#cleanUp();
    let session: SecureSession;
    try {
      session = this.#noise.session();
    } catch (error) {
      this.#reject(error as Error);
      return;
    }
    this.#resolve({ session, path: this.#path!, rttMs });
  }

  #fail(error: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#last = undefined;
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
    this.#last = undefined;
  }
}
