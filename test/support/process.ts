import { spawn, type ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';
import { findExecutable } from '../../src/lab/netns.js';
import { exited } from './wait.js';

/** Kept output per process: enough for any start-up banner and a useful failure message. */
const MAX_KEPT_CHARS = 256 * 1024;

/**
 * Everything a long-running child prints on stdout and stderr, read from the moment it is
 * spawned. Reading continuously matters twice: a daemon that fills an unread pipe blocks, and a
 * readiness line printed before anyone waits for it must still count.
 */
export class ProcessOutput {
  readonly child: ChildProcess;
  readonly label: string;
  #text = '';
  #exit: string | null = null;
  readonly #listeners = new Set<() => void>();

  constructor(child: ChildProcess, label: string) {
    this.child = child;
    this.label = label;
    const onData = (chunk: Buffer): void => {
      this.#text += chunk.toString('utf8');
      if (this.#text.length > MAX_KEPT_CHARS) this.#text = this.#text.slice(-MAX_KEPT_CHARS);
      this.#notify();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    // 'close', not 'exit': only then has the last of its output been read.
    child.once('close', (code, signal) => {
      this.#exit = code === null ? `signal ${signal ?? '?'}` : `exit ${code}`;
      this.#notify();
    });
    child.once('error', (error) => {
      this.#exit ??= `failed to start: ${error.message}`;
      this.#notify();
    });
  }

  get text(): string {
    return this.#text;
  }

  /** How the process ended ('exit 0', 'signal SIGKILL'), or null while it runs (or its output is still being read). */
  get exit(): string | null {
    return this.#exit;
  }

  /**
   * Resolve with the first line matching each pattern, once every pattern has matched (lines
   * already printed count). Rejects if the process exits first or the time limit passes; the
   * limit is a safety net for a hung daemon, not a synchronisation.
   */
  waitFor(patterns: readonly RegExp[], timeoutMs = 20_000): Promise<string[]> {
    return this.#until(`print ${patterns.join(', ')}`, timeoutMs, () => {
      const lines = this.#text.split('\n');
      const found = patterns.map((pattern) => lines.find((line) => pattern.test(line)));
      if (found.every((line) => line !== undefined)) return found as string[];
      if (this.#exit !== null) {
        const missing = patterns.filter((_, i) => found[i] === undefined).join(', ');
        return new Error(`${this.label}: ended (${this.#exit}) before printing ${missing}; its output:\n${this.#text}`);
      }
      return undefined;
    });
  }

  /** Resolve with the whole output once the process has ended. */
  ended(timeoutMs = 20_000): Promise<string> {
    return this.#until('end', timeoutMs, () => (this.#exit === null ? undefined : this.#text));
  }

  /**
   * SIGINT (on which tcpdump flushes what it captured and exits), then resolve with the whole
   * output once it has ended and its last lines are read; at once if it already has.
   */
  interrupt(timeoutMs = 10_000): Promise<string> {
    if (this.#exit === null) this.child.kill('SIGINT');
    return this.#until('end after SIGINT', timeoutMs, () => (this.#exit === null ? undefined : this.#text));
  }

  /** Settle when `probe` returns a value (an Error rejects), re-asked on every output chunk and at exit. */
  #until<T>(what: string, timeoutMs: number, probe: () => T | Error | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const outcome = probe();
        if (outcome === undefined) return;
        finish();
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${this.label}: did not ${what} within ${timeoutMs} ms; its output:\n${this.#text}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      this.#listeners.add(check);
      check();
    });
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}

/**
 * Stop a child (its whole process group when it leads one): SIGTERM, then SIGKILL if it is
 * still there after `graceMs`. Resolves once it has exited; harmless if it already has. Rejects
 * if even SIGKILL has not ended it `graceMs` later (stuck in the kernel), rather than wait forever.
 */
export async function stopProcess(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const ended = exited(child, { timeoutMs: 2 * graceMs });
  signalGroup(child, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
  try {
    await ended;
  } finally {
    clearTimeout(timer);
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Something that can start a process: a lab host, or `localHost`. */
export interface Spawner {
  spawn(argv: string[]): ChildProcess;
}

/** Start processes on this machine the way lab hosts do: own process group, piped output. */
export const localHost: Spawner = {
  spawn(argv: string[]): ChildProcess {
    const [file, ...args] = argv;
    return spawn(file!, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  },
};

/** Skip a test with a printed reason when a program it drives is not installed (CI installs them all). */
export function skipUnlessInstalled(t: TestContext, commands: readonly string[], hint: string): boolean {
  const missing = commands.filter((command) => findExecutable(command) === null);
  if (missing.length === 0) return false;
  const reason = `${missing.join(', ')} not installed (${hint})`;
  console.log(`# SKIP ${t.name}: ${reason}`);
  t.skip(reason);
  return true;
}
