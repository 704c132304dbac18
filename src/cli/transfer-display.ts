/**
 * How send/receive show a transfer: on a terminal a one-line bar redrawn in place (bytes, rate,
 * ETA, the path in use, the file); under --json `progress` events, at most four a second plus a
 * final one; in both a last line (or a `done` event) with the count, bytes and time.
 */
import { performance } from 'node:perf_hooks';
import type { PathInfo, PathKind } from '../peer/connection.js';
import type { TransferProgress, TransferSummary } from '../transfer/index.js';

/** --json progress events: at most this often (plus the final one). */
const JSON_INTERVAL_MS = 250;
/** Terminal redraws: at most this often. */
const BAR_INTERVAL_MS = 100;
/** Checks of bytes already at the receiver are shown from this size up. */
const CHECK_SHOWN_FROM = 1024 * 1024;
/** The rate is measured over this much recent time. */
const RATE_WINDOW_MS = 2000;

export interface DisplayOptions {
  json: boolean;
  /** Draw a bar (stderr is a terminal, and not --json). */
  tty: boolean;
  write?: (text: string) => void;
  /** Milliseconds, monotonic (default performance.now): injected by tests. */
  now?: () => number;
}

export class TransferDisplay {
  readonly #options: DisplayOptions;
  readonly #write: (text: string) => void;
  readonly #now: () => number;
  readonly #started: number;
  /** (time, bytes moved) samples within the rate window. */
  readonly #samples: Array<[number, number]> = [];
  #last: TransferProgress | undefined;
  #shownAt = -Infinity;
  #path = '';
  #barShown = false;

  constructor(options: DisplayOptions) {
    this.#options = options;
    this.#write = options.write ?? ((text) => process.stderr.write(text));
    this.#now = options.now ?? (() => performance.now());
    this.#started = this.#now();
  }

  /**
   * Follow the connection's path for the bar. Call before the event sink's own `connected`, so a
   * 'path' event clears the bar before the sink prints its line about it.
   */
  attach(connection: { readonly path: PathKind; on(event: 'path', listener: (info: PathInfo) => void): unknown }): void {
    this.#path = connection.path;
    connection.on('path', (info: PathInfo) => {
      this.#path = info.path;
      this.#clear();
    });
  }

  progress(progress: TransferProgress): void {
    const now = this.#now();
    this.#last = progress;
    this.#samples.push([now, progress.transferred]);
    while (this.#samples.length > 2 && now - this.#samples[0]![0] > RATE_WINDOW_MS) this.#samples.shift();
    const final = progress.bytes === progress.total && progress.file === null;
    if (!final && now - this.#shownAt < (this.#options.json ? JSON_INTERVAL_MS : BAR_INTERVAL_MS)) return;
    this.#shownAt = now;
    if (this.#options.json) this.#emit({ event: 'progress', bytes: progress.bytes, total: progress.total, file: progress.file, rate: Math.round(this.#rate()), transferred: progress.transferred, resumed: progress.resumed, files: progress.files });
    else if (this.#options.tty) this.#drawBar(progress);
  }

  /** The last line: what moved, in how long. `verb` 'sent' or 'received'; `where` e.g. "to PEER". */
  done(summary: TransferSummary, verb: 'sent' | 'received', where: string, extra: Record<string, unknown> = {}): void {
    const ms = Math.round(this.#now() - this.#started);
    if (this.#options.json) {
      if (this.#last && !(this.#last.bytes === this.#last.total && this.#last.file === null)) this.#emit({ event: 'progress', bytes: summary.bytes, total: summary.bytes, file: null, rate: Math.round(this.#rate()), transferred: summary.transferred, resumed: summary.resumed, files: summary.files });
      this.#emit({ event: 'done', files: summary.files, directories: summary.directories, bytes: summary.bytes, transferred: summary.transferred, resumed: summary.resumed, ms, ...extra });
      return;
    }
    this.#clear();
    const files = `${summary.files} file${summary.files === 1 ? '' : 's'}`;
    const resumed = summary.resumed > 0 ? `, ${formatBytes(summary.resumed)} of it already there from an earlier run` : '';
    const rate = ms > 0 ? ` (${formatBytes((summary.transferred * 1000) / ms)}/s)` : '';
    this.#write(`natpunch: ${verb} ${files}, ${formatBytes(summary.bytes)}${resumed}, ${where} in ${(ms / 1000).toFixed(1)} s${rate}\n`);
  }

  /**
   * A side is about to hash bytes already at the receiver, to resume (croc's users waited minutes
   * on such checks with nothing on screen: croc issues #1026, #1029). Shown from 1 MiB up: below
   * that the check takes no time worth a line.
   */
  checking(path: string, bytes: number, whose: string): void {
    if (bytes < CHECK_SHOWN_FROM) return;
    if (this.#options.json) {
      this.#emit({ event: 'checking', file: path, bytes });
      return;
    }
    this.#clear();
    this.#write(`natpunch: checking the ${formatBytes(bytes)} of ${path} ${whose} (to resume)\n`);
  }

  /** Take the bar off the line (before an error or another message is printed). */
  clear(): void {
    this.#clear();
  }

  #rate(): number {
    const first = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    if (!first || !last || last[0] - first[0] <= 0) return 0;
    return ((last[1] - first[1]) * 1000) / (last[0] - first[0]);
  }

  #drawBar(p: TransferProgress): void {
    const width = 20;
    const fraction = p.total > 0 ? p.bytes / p.total : 1;
    const filled = Math.round(fraction * width);
    const rate = this.#rate();
    const eta = rate > 0 ? formatDuration((p.total - p.bytes) / rate) : '--:--';
    const file = p.file === null ? '' : ` ${p.file.length > 40 ? '…' + p.file.slice(-39) : p.file}`;
    const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${formatBytes(p.bytes)}/${formatBytes(p.total)} ${formatBytes(rate)}/s ETA ${eta} ${this.#path}${file}`;
    this.#write(`\r\x1b[K${line}`);
    this.#barShown = true;
  }

  #clear(): void {
    if (!this.#barShown) return;
    this.#write('\r\x1b[K');
    this.#barShown = false;
  }

  #emit(event: Record<string, unknown>): void {
    this.#write(JSON.stringify(event) + '\n');
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (v: number): string => String(v).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}
