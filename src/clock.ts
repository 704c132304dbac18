/**
 * Time as the lower layers (stun/, nat/, punch/) read it, injected so the in-process network
 * (src/sim/) can run them on virtual time (STYLE §8, §9).
 *
 * It is the shape of src/transport's `Clock`, declared here because layers below transport
 * may not import it; the two are structurally one type, so a clock made for one serves both.
 */
export interface Clock {
  /** Milliseconds from an arbitrary origin; fractions allowed, never decreasing. */
  now(): number;
  /** Run `callback` after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancel a `setTimeout`. */
  clearTimeout(handle: unknown): void;
}

/**
 * Milliseconds since the Unix epoch, as `Date.now()`: the time two hosts agree on (a punch's
 * `startAt` from the rendezvous), where `Clock.now()` has an arbitrary origin.
 */
export type WallClock = () => number;

/** `performance.now()` and the global timers: what every layer uses unless told otherwise. */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export const realWallClock: WallClock = () => Date.now();

/**
 * Resolves after `ms` on `clock`, like `timers/promises` `setTimeout`; rejects with the signal's
 * reason when `signal` aborts first.
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(signal!.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
