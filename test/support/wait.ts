/**
 * Bounded waits for tests. Every wait in test/ has a deadline, and when it passes the wait fails
 * saying what it waited for and what it had seen, so a regression fails in seconds with a
 * readable message instead of stalling until the runner's per-test timeout (package.json's
 * `test` script, README "Tests") cancels the whole file. The deadlines are safety nets sized
 * far above what the awaited thing takes when it works, never synchronisation.
 */

import { once as onceEvent } from 'node:events';
import type { ChildProcess } from 'node:child_process';

/** Default deadline: a loopback event or a lab daemon's start-up takes well under a second. */
export const WAIT_MS = 20_000;

export interface WaitOptions {
  /** How long to wait at most (default WAIT_MS). */
  timeoutMs?: number;
  /** Put into the failure message: what had been seen by then (a child's output, a state). */
  seen?: () => string;
}

function seenText(seen: (() => string) | undefined): string {
  if (seen === undefined) return '';
  const text = seen();
  return `; seen: ${text === '' ? '(nothing)' : text}`;
}

/** A name for an emitter in failure messages: its class ('Socket', 'UdpMux', 'ChildProcess 1234'). */
function describe(emitter: object): string {
  const name = emitter.constructor?.name ?? 'emitter';
  const pid = (emitter as { pid?: unknown }).pid;
  return typeof pid === 'number' ? `${name} ${pid}` : name;
}

/**
 * `once` from node:events, bounded: resolves with the event's arguments, rejects on 'error' as
 * `events.once` does, and rejects naming the event and the emitter when the deadline passes.
 */
export async function once(emitter: NodeJS.EventEmitter, event: string, options: WaitOptions & { signal?: AbortSignal } = {}): Promise<any[]> {
  const timeoutMs = options.timeoutMs ?? WAIT_MS;
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = options.signal === undefined ? deadline : AbortSignal.any([deadline, options.signal]);
  try {
    return await onceEvent(emitter, event, { signal });
  } catch (error) {
    if (!deadline.aborted) throw error;
    throw new Error(`no '${event}' event from ${describe(emitter)} within ${timeoutMs} ms${seenText(options.seen)}`, { cause: error });
  }
}

/**
 * Resolves when `socket` has closed, gracefully or by a reset: a peer still writing when the
 * other end closes gets ECONNRESET before 'close', on which `once` would reject. Bounded as `once`.
 */
export async function closed(socket: NodeJS.EventEmitter, options: WaitOptions = {}): Promise<void> {
  await onceMatching(socket, 'close', () => true, options);
}

/** The first `event` whose first argument satisfies `match` (earlier ones are passed over), bounded as `once`. */
export async function onceMatching<T>(emitter: NodeJS.EventEmitter, event: string, match: (value: T) => boolean, options: WaitOptions = {}): Promise<T> {
  let listener: ((value: T) => void) | undefined;
  const found = new Promise<T>((resolve) => {
    listener = (value: T): void => { if (match(value)) resolve(value); };
    emitter.on(event, listener);
  });
  try {
    return await within(found, `no matching '${event}' event from ${describe(emitter)}`, options);
  } finally {
    emitter.off(event, listener!);
  }
}

/** Settle as `promise` does, or reject naming `what` once `timeoutMs` has passed. */
export async function within<T>(promise: Promise<T>, what: string, options: WaitOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? WAIT_MS;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${timeoutMs} ms${seenText(options.seen)}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Resolve once `condition()` holds, asked again every `intervalMs` (0: after every turn of the
 * event loop, for tests whose progress is itself driven by setImmediate); reject naming `what`
 * after `timeoutMs`.
 */
export async function until(condition: () => boolean, what: string, options: WaitOptions & { intervalMs?: number } = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? WAIT_MS;
  const intervalMs = options.intervalMs ?? 5;
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: did not hold within ${timeoutMs} ms${seenText(options.seen)}`);
    await new Promise((resolve) => (intervalMs === 0 ? setImmediate(resolve) : setTimeout(resolve, intervalMs)));
  }
}

/** A child's exit code (null when a signal ended it), at once if it has already exited. */
export async function exited(child: ChildProcess, options: WaitOptions = {}): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const [code] = await once(child, 'exit', options);
  return code as number | null;
}
