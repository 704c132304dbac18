/**
 * The time source the transport reads and the timers it arms, injected so that timer logic
 * (RTO back-off, delayed ACKs, keepalives, idle timeouts) can be driven by a fake clock in tests
 * (STYLE §8).
 */
import { type Clock, realClock } from '../clock.js';

export type { Clock };
/** The real clock: `performance.now()` and the global timers (src/clock.ts). */
export const systemClock: Clock = realClock;
const EARLY_FIRE_TOLERANCE_MS = 0.5;

/**
 * A one-shot timer that is re-armed far more often than it fires (the RTO is restarted on
 * every ACK). Moving the deadline later does not touch the underlying timer: when it fires
 * early it simply re-arms for the rest, which keeps the per-ACK cost to a comparison.
 */
export class DeadlineTimer {
  readonly #clock: Clock;
  readonly #onExpire: () => void;
  readonly #unref: boolean;
  #deadline = Infinity;
  #handle: unknown = undefined;
  #scheduledFor = Infinity;

  constructor(clock: Clock, onExpire: () => void, options: { unref?: boolean } = {}) {
    this.#clock = clock;
    this.#onExpire = onExpire;
    this.#unref = options.unref ?? false;
  }

  get deadline(): number {
    return this.#deadline;
  }

  get armed(): boolean {
    return this.#deadline !== Infinity;
  }

  /** Fire at absolute time `at` (clock milliseconds), replacing any earlier setting. */
  set(at: number): void {
    this.#deadline = at;
    if (at < this.#scheduledFor) this.#schedule(at);
  }

  cancel(): void {
    this.#deadline = Infinity;
    // The underlying timer is left to fire and find nothing to do, unless it is far away.
    if (this.#handle !== undefined && this.#scheduledFor - this.#clock.now() > 1000) this.#clearHandle();
  }

  /** Cancel and release the underlying timer at once (the owner is going away). */
  dispose(): void {
    this.#deadline = Infinity;
    this.#clearHandle();
  }

  #schedule(at: number): void {
    this.#clearHandle();
    this.#scheduledFor = at;
    const handle = this.#clock.setTimeout(() => this.#fire(), Math.max(0, at - this.#clock.now()));
    if (this.#unref) (handle as { unref?: () => void } | undefined)?.unref?.();
    this.#handle = handle;
  }

  #clearHandle(): void {
    if (this.#handle !== undefined) this.#clock.clearTimeout(this.#handle);
    this.#handle = undefined;
    this.#scheduledFor = Infinity;
  }

  #fire(): void {
    this.#handle = undefined;
    this.#scheduledFor = Infinity;
    if (this.#deadline === Infinity) return;
    // Node timers run off a loop time cached at the start of each tick, so they can fire a
    // fraction of a millisecond before the deadline; re-arming for that would cost a whole tick.
    if (this.#clock.now() + EARLY_FIRE_TOLERANCE_MS < this.#deadline) {
      this.#schedule(this.#deadline);
      return;
    }
    this.#deadline = Infinity;
    this.#onExpire();
  }
}
