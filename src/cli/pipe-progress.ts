/**
 * `--progress` for the commands that pipe stdin/stdout through a connection (connect, listen):
 * what `pv` shows for a pipe. On a terminal one line redrawn in place (bytes and rate each way,
 * the path in use); under --json a `progress` event a second; otherwise a line every ten seconds
 * (a log, not a terminal). The closed summary still ends every connection.
 */
import { performance } from 'node:perf_hooks';
import type { Connection } from '../peer/peer.js';
import { formatBytes } from './transfer-display.js';

/** How often each form reports. */
export const PROGRESS_INTERVAL_MS = { tty: 250, json: 1000, log: 10_000 } as const;
/** Rates are measured over this much recent time. */
const RATE_WINDOW_MS = 2000;

export type ProgressForm = keyof typeof PROGRESS_INTERVAL_MS;

export interface PipeProgressOptions {
  form: ProgressForm;
  write?: (text: string) => void;
  /** Milliseconds, monotonic (default performance.now): injected by tests. */
  now?: () => number;
}

/** What one report says: bytes so far and bytes per second over the last two seconds, each way. */
export interface PipeProgressReport {
  peer: string;
  sent: number;
  received: number;
  sentRate: number;
  receivedRate: number;
  path: string;
}

type Counters = Pick<Connection, 'remotePeerId' | 'stats' | 'path'>;

export class PipeProgress {
  readonly #connection: Counters;
  readonly #form: ProgressForm;
  readonly #write: (text: string) => void;
  readonly #now: () => number;
  /** (time, sent, received) samples within the rate window. */
  readonly #samples: Array<[number, number, number]> = [];
  #timer: NodeJS.Timeout | undefined;
  #lineShown = false;

  constructor(connection: Counters, options: PipeProgressOptions) {
    this.#connection = connection;
    this.#form = options.form;
    this.#write = options.write ?? ((text) => process.stderr.write(text));
    this.#now = options.now ?? (() => performance.now());
    this.#sample();
  }

  /** Report every PROGRESS_INTERVAL_MS[form] until stop(). */
  start(): this {
    this.#timer = setInterval(() => this.report(), PROGRESS_INTERVAL_MS[this.#form]);
    this.#timer.unref();
    return this;
  }

  /** One report now (the timer calls this; tests call it directly). */
  report(): PipeProgressReport {
    const r = this.#sample();
    if (this.#form === 'json') {
      this.#write(JSON.stringify({ event: 'progress', ...r, sentRate: Math.round(r.sentRate), receivedRate: Math.round(r.receivedRate) }) + '\n');
    } else {
      const line = `sent ${formatBytes(r.sent)} (${formatBytes(r.sentRate)}/s), received ${formatBytes(r.received)} (${formatBytes(r.receivedRate)}/s) over ${r.path}`;
      if (this.#form === 'tty') {
        this.#write(`\r\x1b[K${line}`);
        this.#lineShown = true;
      } else {
        this.#write(`natpunch: ${line}\n`);
      }
    }
    return r;
  }

  /** Stop reporting and take the terminal line off (the closed summary follows). */
  stop(): void {
    clearInterval(this.#timer);
    if (this.#lineShown) this.#write('\r\x1b[K');
    this.#lineShown = false;
  }

  #sample(): PipeProgressReport {
    const now = this.#now();
    const { bytesSent, bytesReceived } = this.#connection.stats;
    this.#samples.push([now, bytesSent, bytesReceived]);
    while (this.#samples.length > 2 && now - this.#samples[0]![0] > RATE_WINDOW_MS) this.#samples.shift();
    const [t0, s0, r0] = this.#samples[0]!;
    const seconds = (now - t0) / 1000;
    let path: string;
    try {
      path = this.#connection.path;
    } catch {
      path = 'closed';
    }
    return {
      peer: this.#connection.remotePeerId, sent: bytesSent, received: bytesReceived, path,
      sentRate: seconds > 0 ? (bytesSent - s0) / seconds : 0, receivedRate: seconds > 0 ? (bytesReceived - r0) / seconds : 0,
    };
  }
}
