/**
 * A manual clock for timer tests: time moves only when the test calls `advance`, and timers
 * due by then fire in deadline order, synchronously.
 */
import type { Clock } from '../../src/transport/clock.js';

interface Timer {
  at: number;
  seq: number;
  callback: () => void;
}

export class FakeClock implements Clock {
  #now = 0;
  #seq = 0;
  #timers = new Set<Timer>();

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const timer: Timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, callback };
    this.#timers.add(timer);
    return timer;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as Timer);
  }

  /** Deadline of the earliest pending timer, or undefined. */
  nextTimerAt(): number | undefined {
    let next: number | undefined;
    for (const timer of this.#timers) if (next === undefined || timer.at < next) next = timer.at;
    return next;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let due: Timer | undefined;
      for (const timer of this.#timers) {
        if (timer.at <= target && (due === undefined || timer.at < due.at || (timer.at === due.at && timer.seq < due.seq))) {
          due = timer;
        }
      }
      if (due === undefined) break;
      this.#timers.delete(due);
      this.#now = Math.max(this.#now, due.at);
      due.callback();
    }
    this.#now = target;
  }
}
