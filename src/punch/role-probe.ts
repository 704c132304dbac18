import { randomBytes } from 'node:crypto';
import { AbortedError, NatpunchError } from '../errors.js';
import { type Clock, realClock } from '../clock.js';
import {
  type TransportAddress, AttrType, Method, MessageClass, encodeMessage, formatAddress, getAttribute, username as usernameCodec, verifyIntegrity,
} from '../wire/index.js';
import type { UdpMux } from './udp-mux.js';
import { CHECK_INTERVAL_MS, checkResponse, decodeBinding } from './udp-checks.js';

/**
 * Role agreement for serverless punching (docs/decisions/013-serverless-punch.md): with no
 * rendezvous to assign controlling/controlled, each side draws a random 64-bit tie-breaker and
 * sends it in ICE-CONTROLLING on authenticated Binding requests to the one address it was given,
 * every CHECK_INTERVAL_MS, until it has learnt the other's (from its request or from the answer
 * to ours). Both then hold the same two numbers, and the larger one controls — RFC 8445
 * §7.3.1.1's role-conflict rule, applied once up front. The probes are connectivity checks too:
 * they open both NATs' filters for the checks that follow. The session keeps answering the other
 * side's probes (with its own tie-breaker) until closed, since the other side may still wait for
 * it.
 */

/** Probes go out one per CHECK_INTERVAL_MS until the answer or timeoutMs (30 s: 150 at most). */
export interface RoleProbeOptions {
  mux: UdpMux;
  /** USERNAME of the probes: differs from the checks' so each session routes its own. */
  username: string;
  key: Uint8Array;
  /** The one address probes go to (given by the user). */
  remote: TransportAddress;
  /** Whether a probe from `from` is answered and learnt from (default: from `remote` only). */
  accept?: (from: TransportAddress) => boolean;
  timeoutMs: number;
  signal?: AbortSignal;
  clock?: Clock;
  /** Default: 8 random bytes. */
  tieBreaker?: Uint8Array;
}

export interface RoleAgreement {
  role: 'controlling' | 'controlled';
  /** The controlling side's tie-breaker, then the controlled side's: the same bytes on both sides. */
  tieBreakers: [Uint8Array, Uint8Array];
  /** Probes this side sent. */
  probesSent: number;
}

export class RoleProbe {
  readonly result: Promise<RoleAgreement>;
  readonly #o: RoleProbeOptions;
  readonly #clock: Clock;
  readonly #username: Uint8Array;
  readonly #tieBreaker: Uint8Array;
  readonly #transactions = new Set<string>();
  readonly #unsubscribe: () => void;
  #timer: unknown;
  #deadline: unknown;
  #sent = 0;
  #done = false;
  #resolve!: (agreement: RoleAgreement) => void;
  #reject!: (error: Error) => void;
  readonly #onAbort = (): void => this.#fail(new AbortedError('role agreement aborted', { cause: this.#o.signal?.reason }));

  constructor(options: RoleProbeOptions) {
    this.#o = options;
    this.#clock = options.clock ?? realClock;
    this.#username = usernameCodec.encode(options.username);
    this.#tieBreaker = options.tieBreaker ?? randomBytes(8);
    this.result = new Promise((resolve, reject) => { this.#resolve = resolve; this.#reject = reject; });
    this.result.catch(() => undefined);
    this.#unsubscribe = options.mux.onStun((data, from) => this.#onStun(data, from));
    this.#deadline = this.#clock.setTimeout(() => this.#fail(new NatpunchError('ERR_UNREACHABLE',
      `no answer from ${formatAddress(options.remote)} within ${options.timeoutMs} ms`)), options.timeoutMs);
    if (options.signal?.aborted) queueMicrotask(this.#onAbort);
    else options.signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#probe();
  }

  /** Stops probing and answering. */
  close(): void {
    this.#fail(new AbortedError('role agreement closed'));
    this.#unsubscribe();
  }

  #probe(): void {
    if (this.#done) return;
    const transactionId = randomBytes(12);
    this.#transactions.add(transactionId.toString('hex'));
    this.#sent++;
    this.#o.mux.send(encodeMessage({
      method: Method.Binding, messageClass: MessageClass.Request, transactionId,
      attributes: [{ type: AttrType.Username, value: this.#username }, { type: AttrType.IceControlling, value: this.#tieBreaker }],
    }, { integrity: { key: this.#o.key, algorithm: 'sha256' }, fingerprint: true }), this.#o.remote);
    this.#timer = this.#clock.setTimeout(() => this.#probe(), CHECK_INTERVAL_MS);
  }

  #accepts(from: TransportAddress): boolean {
    return this.#o.accept ? this.#o.accept(from) : formatAddress(from) === formatAddress(this.#o.remote);
  }

  #onStun(data: Buffer, from: TransportAddress): boolean {
    const message = decodeBinding(data);
    if (!message) return false;
    if (message.messageClass === MessageClass.Request) {
      const user = getAttribute(message, AttrType.Username);
      if (!user || !Buffer.from(user).equals(this.#username)) return false;
      if (!this.#accepts(from) || !verifyIntegrity(message, this.#o.key)) return true;
      this.#o.mux.send(checkResponse(message, from, this.#o.key, [{ type: AttrType.IceControlling, value: this.#tieBreaker }]), from);
      this.#learn(getAttribute(message, AttrType.IceControlling));
      return true;
    }
    if (message.messageClass === MessageClass.SuccessResponse) {
      if (!this.#transactions.has(Buffer.from(message.transactionId).toString('hex'))) return false;
      if (formatAddress(from) !== formatAddress(this.#o.remote) || !verifyIntegrity(message, this.#o.key)) return true;
      this.#learn(getAttribute(message, AttrType.IceControlling));
      return true;
    }
    return false;
  }

  #learn(remote: Uint8Array | undefined): void {
    if (this.#done || !remote || remote.length !== 8) return;
    const order = Buffer.compare(this.#tieBreaker, remote);
    // Equal draws (2^-64): both sides would take the same role; fail loudly rather than hang.
    if (order === 0) {
      this.#fail(new NatpunchError('ERR_TRANSPORT', 'both sides drew the same tie-breaker; run natpunch punch again'));
      return;
    }
    this.#done = true;
    this.#stop();
    const local = Uint8Array.from(this.#tieBreaker);
    const theirs = Uint8Array.from(remote);
    this.#resolve(order > 0
      ? { role: 'controlling', tieBreakers: [local, theirs], probesSent: this.#sent }
      : { role: 'controlled', tieBreakers: [theirs, local], probesSent: this.#sent });
  }

  #stop(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#clock.clearTimeout(this.#deadline);
    this.#o.signal?.removeEventListener('abort', this.#onAbort);
  }

  #fail(error: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#stop();
    this.#reject(error);
  }
}
