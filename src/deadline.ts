/**
 * A signal that aborts after `ms` or when any of `signals` does, with a timer this module owns.
 *
 * Not `AbortSignal.any([AbortSignal.timeout(ms), ...])`: Node holds a timeout signal only weakly,
 * so one reachable only through `AbortSignal.any()` can be garbage-collected before it fires,
 * and the deadline silently never comes (nodejs/node#57736; seen here as a TURN Allocate over a
 * blocked UDP that waited out the whole RFC 8489 retransmission budget). `clear()` stops the
 * timer once the guarded work is done, so nothing lingers either.
 */
import { type Clock, realClock } from './clock.js';

export interface Deadline {
  readonly signal: AbortSignal;
  clear(): void;
}

export function deadline(ms: number, ...signals: (AbortSignal | undefined)[]): Deadline {
  return deadlineOn(realClock, ms, ...signals);
}

/** `deadline` with its timer on `clock` (the sim's virtual clock, src/sim). */
export function deadlineOn(clock: Clock, ms: number, ...signals: (AbortSignal | undefined)[]): Deadline {
  const controller = new AbortController();
  const timer = clock.setTimeout(() => controller.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError')), ms);
  const signal = AbortSignal.any([controller.signal, ...signals.filter((s): s is AbortSignal => s !== undefined)]);
  signal.addEventListener('abort', () => clock.clearTimeout(timer), { once: true });
  return { signal, clear: () => clock.clearTimeout(timer) };
}
