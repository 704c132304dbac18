/**
 * How much a listening peer lets initiators make it do. Each accepted intent costs a punch: up
 * to ~10 s of connectivity checks, port probing and a Noise handshake. Issue 11 measured a
 * listener accepting 691 intents from a few registered attackers in 30 s, each such a punch. So
 * the accept policy, after the allow-list (which still comes first) and before the user's own
 * `accept`, refuses:
 * - `busy`: when `maxConcurrent` incoming connections are already being set up (decided,
 *   waiting for their punch, or punching);
 * - `rate-limited`: an initiator beyond `perMinute` attempts (token bucket per initiator id,
 *   burst `burst`, in a table of at most `maxInitiators` ids; a full table refuses new ids as
 *   busy rather than forget one early).
 * The refusal travels as the protocol's `refuse`, whose reason starts with the code, and the
 * initiator's `connect()` rejects with RefusedError (`kind` busy or rate-limited) saying when to
 * try again. The server limits intents too (docs/decisions/015-rendezvous-limits.md); this
 * bound holds whatever server the peer uses.
 */
import { RateTable } from '../rate-table.js';

/** How many incoming connection attempts a listening peer takes on, in all and from one initiator (`PeerOptions.incoming`). */
export interface IncomingLimits {
  /** Incoming connections being set up at once: deciding, awaiting the punch, punching (default 8). */
  maxConcurrent: number;
  /** Attempts one initiator may start per minute, sustained (default 12) ... */
  perMinute: number;
  /** ... and in a burst (default 4). */
  burst: number;
  /** Initiator ids whose rate is tracked at once (default 1024). */
  maxInitiators: number;
}

export const DEFAULT_INCOMING_LIMITS: Readonly<IncomingLimits> = Object.freeze({
  maxConcurrent: 8,
  perMinute: 12,
  burst: 4,
  maxInitiators: 1024,
});

export class IncomingGate {
  readonly limits: Readonly<IncomingLimits>;
  readonly #rates: RateTable;
  readonly #inProgress: () => number;

  /** `inProgress`: incoming connections being set up now, not counting the one being asked about. */
  constructor(limits: Partial<IncomingLimits> | undefined, inProgress: () => number, now?: () => number) {
    this.limits = { ...DEFAULT_INCOMING_LIMITS, ...limits };
    const { perMinute, burst, maxInitiators } = this.limits;
    this.#rates = new RateTable({ rate: perMinute / 60, burst, maxEntries: maxInitiators, ...(now ? { now } : {}) });
    this.#inProgress = inProgress;
  }

  /** Undefined to go on, or the refusal's reason (starting with its code) for the initiator. */
  check(peerId: string): string | undefined {
    const { maxConcurrent, perMinute, burst } = this.limits;
    const running = this.#inProgress();
    if (running >= maxConcurrent) {
      return `busy: ${running} incoming connections are being set up (at most ${maxConcurrent}); try again in a few seconds`;
    }
    const taken = this.#rates.take(peerId);
    if (taken === 'full') return 'busy: too many peers are connecting to this one; try again in a minute';
    if (taken === 'limited') {
      const waitS = Math.ceil(this.#rates.waitMs(peerId) / 1000);
      return `rate-limited: more than ${perMinute} connection attempts per minute (burst ${burst}) from this peer; try again in ${waitS} s`;
    }
    return undefined;
  }

  close(): void {
    this.#rates.clear();
  }
}
