/**
 * Virtual time for the in-process network: a `Clock` (src/clock.ts, src/transport/clock.ts)
 * whose time moves only when the scheduler runs the next event, so a scenario with 200 ms
 * round trips and a 10 s punching deadline runs in milliseconds of wall time, and runs the
 * same way every time.
 *
 * Between two events the scheduler lets Node drain every microtask and `process.nextTick`
 * callback (one `setImmediate` turn), as Node's own event loop does between timers: an `await`
 * chain started by one event finishes before time moves on. Only timers made by this clock
 * and packets in flight in the sim (which are such timers) are events; code under test must
 * not wait on real I/O or real timers, or it will see virtual time stand still.
 */
import { SimError } from '../errors.js';
import type { Clock, WallClock } from '../clock.js';

/** A timer handle. `unref`/`ref` exist because callers treat handles as Node timers; they change nothing here. */
export class VirtualTimer {
  /** @internal */ cancelled = false;
  constructor(readonly at: number, readonly seq: number, readonly callback: () => void) {}
  unref(): this { return this; }
  ref(): this { return this; }
  hasRef(): boolean { return false; }
}

export interface VirtualClockOptions {
  /** Wall time (ms since the epoch) at virtual time 0. Default 2024-01-01T00:00:00Z: fixed, so runs repeat. */
  epochMs?: number;
}

export interface RunOptions {
  /** Virtual ms the run may take before it fails (default 600 000: ten virtual minutes). */
  maxMs?: number;
  /** Events the run may process before it fails (default 2 000 000): a guard against a zero-delay loop. */
  maxEvents?: number;
}

const DEFAULT_EPOCH_MS = Date.UTC(2024, 0, 1);

export class VirtualClock implements Clock {
  readonly epochMs: number;
  #now = 0;
  #seq = 0;
  #events = 0;
  readonly #queue: VirtualTimer[] = [];

  constructor(options: VirtualClockOptions = {}) {
    this.epochMs = options.epochMs ?? DEFAULT_EPOCH_MS;
  }

  now(): number {
    return this.#now;
  }

  /** `Date.now()` on this clock, for code that agrees on epochs (a punch's `startAt`). Bound: pass it as is. */
  readonly wallNow: WallClock = () => this.epochMs + this.#now;

  setTimeout(callback: () => void, ms: number): VirtualTimer {
    // Node runs a timer of NaN, negative or < 1 ms after 1 ms; the sim allows 0, which only
    // orders the callback after everything already due now.
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const timer = new VirtualTimer(this.#now + delay, this.#seq++, callback);
    this.#push(timer);
    return timer;
  }

  clearTimeout(handle: unknown): void {
    if (handle instanceof VirtualTimer) handle.cancelled = true;
  }

  /** Timers still waiting to fire (cancelled ones excluded). */
  get pending(): number {
    return this.#queue.filter((t) => !t.cancelled).length;
  }

  /** Events processed since the clock was made (a cost measure for benchmarks). */
  get events(): number {
    return this.#events;
  }

  /**
   * Runs events until `work` settles and returns its outcome. Fails with SimError when nothing
   * is left to run while `work` is pending (it waits on something outside the sim), or when
   * the run exceeds `maxMs` of virtual time or `maxEvents`.
   */
  async run<T>(work: Promise<T>, options: RunOptions = {}): Promise<T> {
    let settled = false;
    work.then(() => { settled = true; }, () => { settled = true; });
    const limit = this.#now + (options.maxMs ?? 600_000);
    const maxEvents = options.maxEvents ?? 2_000_000;
    for (let n = 0; ; n++) {
      await drain();
      if (settled) return work;
      const next = this.#peek();
      if (next === undefined) throw new SimError(`virtual clock: nothing is scheduled at ${this.#now} ms but the awaited work has not settled (is it waiting on real I/O or real timers?)`);
      if (next.at > limit) throw new SimError(`virtual clock: the awaited work did not settle within ${options.maxMs ?? 600_000} virtual ms`);
      if (n >= maxEvents) throw new SimError(`virtual clock: the awaited work did not settle within ${maxEvents} events`);
      this.#fire(this.#pop()!);
    }
  }

  /** Runs every event due in the next `ms` virtual milliseconds, then stands at now + ms. */
  async advance(ms: number): Promise<void> {
    const until = this.#now + Math.max(0, ms);
    for (;;) {
      await drain();
      const next = this.#peek();
      if (next === undefined || next.at > until) break;
      this.#fire(this.#pop()!);
    }
    this.#now = until;
  }

  #fire(timer: VirtualTimer): void {
    this.#now = Math.max(this.#now, timer.at);
    this.#events++;
    timer.callback();
  }

  /** The earliest live timer, dropping cancelled ones from the top. */
  #peek(): VirtualTimer | undefined {
    while (this.#queue.length > 0 && this.#queue[0]!.cancelled) this.#pop();
    return this.#queue[0];
  }

  // A binary min-heap on (at, seq): equal times fire in the order they were set, as Node's do.
  #push(timer: VirtualTimer): void {
    const q = this.#queue;
    q.push(timer);
    let i = q.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(q[i]!, q[parent]!)) break;
      [q[i], q[parent]] = [q[parent]!, q[i]!];
      i = parent;
    }
  }

  #pop(): VirtualTimer | undefined {
    const q = this.#queue;
    const top = q[0];
    const last = q.pop();
    if (q.length > 0 && last !== undefined) {
      q[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < q.length && before(q[l]!, q[m]!)) m = l;
        if (r < q.length && before(q[r]!, q[m]!)) m = r;
        if (m === i) break;
        [q[i], q[m]] = [q[m]!, q[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: VirtualTimer, b: VirtualTimer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** One turn of the event loop: every pending microtask and nextTick callback has run after it. */
function drain(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
