/**
 * Keeps one piece of TURN state alive by refreshing it before it expires: the allocation
 * (Refresh), the permissions (CreatePermission) or one channel (ChannelBind). A refresh that
 * fails is retried every few seconds while the state still lives; once it would have expired,
 * or the server says it is gone, the schedule gives up and says so.
 * @see RFC 8656 §8 (Refresh), §9.1 (permission lifetime 300 s), §12 (channel lifetime 600 s)
 */

import type { Clock } from '../clock.js';

/** How often a failed refresh is retried while the state has not expired yet. */
export const REFRESH_RETRY_MS = 5_000;

export interface RefreshScheduleOptions {
  clock: Clock;
  /**
   * Refresh now; resolves with the lifetime the server granted in seconds (the next refresh is
   * planned from it), rejects when it failed.
   */
  run(): Promise<number>;
  /** When to refresh state that lives `lifetimeSeconds`, in ms from now. */
  delayMs(lifetimeSeconds: number): number;
  /** A refresh failed; `final` when the schedule gave up (the state is, or is about to be, gone). */
  onError(error: Error, final: boolean): void;
  /** Whether an error means the state is certainly gone (retrying is pointless). */
  isFatal?(error: Error): boolean;
}

export class RefreshSchedule {
  readonly #options: RefreshScheduleOptions;
  #timer: unknown;
  /** `clock.now()` at which the state expires without a refresh. */
  #expiresAt = 0;
  #stopped = false;

  constructor(options: RefreshScheduleOptions) {
    this.#options = options;
  }

  /** (Re)start the schedule for state just created or refreshed with `lifetimeSeconds`. */
  restart(lifetimeSeconds: number): void {
    if (this.#stopped) return;
    this.#clear();
    const { clock } = this.#options;
    this.#expiresAt = clock.now() + lifetimeSeconds * 1000;
    this.#timer = clock.setTimeout(() => this.#fire(), this.#options.delayMs(lifetimeSeconds));
  }

  stop(): void {
    this.#stopped = true;
    this.#clear();
  }

  #clear(): void {
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#options.run().then(
      (lifetimeSeconds) => this.restart(lifetimeSeconds),
      (error: Error) => {
        if (this.#stopped) return;
        const { clock } = this.#options;
        const left = this.#expiresAt - clock.now();
        const final = this.#options.isFatal?.(error) === true || left <= REFRESH_RETRY_MS;
        if (!final) this.#timer = clock.setTimeout(() => this.#fire(), REFRESH_RETRY_MS);
        else this.#stopped = true;
        this.#options.onError(error, final);
      },
    );
  }
}
