/**
 * Receiver-side goodput with a warm-up, as iperf3 --omit measures it: bytes count from the first
 * one that arrives `warmupMs` after the first byte to the last one, and the process's CPU (user,
 * system, in cores) and event-loop utilisation over that same span tell whether this side was
 * the limit.
 */
import { performance } from 'node:perf_hooks';

export interface GoodputReport {
  /** Every byte received, warm-up included. */
  bytes: number;
  measuredBytes: number;
  measuredMs: number;
  firstToLastMs: number;
  /** Bytes per second after the warm-up; null when the transfer ended within it. */
  goodput: number | null;
  load: Record<string, number>;
}

/** A CPU and event-loop mark to measure load from. */
export class LoadMark {
  readonly #cpu = process.cpuUsage();
  readonly #usage = process.resourceUsage();
  readonly #elu = performance.eventLoopUtilization();
  readonly #at = performance.now();

  /**
   * Cores' worth of user and system CPU, event-loop utilisation, and context switches per second
   * since the mark: `preemptedPerSecond` (involuntary: the kernel switched this process out
   * while it could run, for another on its core) and `sleptPerSecond` (voluntary: it waited).
   */
  load(until = performance.now()): Record<string, number> {
    const cpu = process.cpuUsage(this.#cpu);
    const usage = process.resourceUsage();
    const seconds = Math.max(1e-6, (until - this.#at) / 1000);
    return {
      cpuUser: Number((cpu.user / 1e6 / seconds).toFixed(3)),
      cpuSystem: Number((cpu.system / 1e6 / seconds).toFixed(3)),
      eventLoopUtilization: Number(performance.eventLoopUtilization(this.#elu).utilization.toFixed(3)),
      preemptedPerSecond: Math.round((usage.involuntaryContextSwitches - this.#usage.involuntaryContextSwitches) / seconds),
      sleptPerSecond: Math.round((usage.voluntaryContextSwitches - this.#usage.voluntaryContextSwitches) / seconds),
    };
  }
}

export class GoodputMeter {
  readonly #warmupMs: number;
  #bytes = 0;
  #first = 0;
  #last = 0;
  #measuredFrom = 0;
  #measuredBytes = 0;
  #mark: LoadMark | undefined;
  #endLoad: Record<string, number> | undefined;

  constructor(warmupMs: number) {
    this.#warmupMs = warmupMs;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Milliseconds since the last byte (Infinity before the first one). */
  get idleMs(): number {
    return this.#bytes === 0 ? Infinity : performance.now() - this.#last;
  }

  add(length: number): void {
    const now = performance.now();
    this.#last = now;
    if (this.#bytes === 0) this.#first = now;
    this.#bytes += length;
    if (this.#measuredFrom === 0) {
      if (now - this.#first >= this.#warmupMs) {
        this.#measuredFrom = now;
        this.#mark = new LoadMark();
      }
    } else {
      this.#measuredBytes += length;
    }
  }

  /** Freeze the load figures now (call when the transfer ends, before any cleanup work). */
  stop(): void {
    this.#endLoad ??= this.#mark?.load(this.#last) ?? {};
  }

  report(): GoodputReport {
    this.stop();
    const measuredMs = this.#last - this.#measuredFrom;
    return {
      bytes: this.#bytes,
      measuredBytes: this.#measuredBytes,
      measuredMs,
      firstToLastMs: this.#last - this.#first,
      goodput: this.#measuredFrom !== 0 && measuredMs > 0 ? (this.#measuredBytes * 1000) / measuredMs : null,
      load: this.#endLoad!,
    };
  }
}
