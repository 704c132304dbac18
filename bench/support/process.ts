/**
 * Child processes for benchmarks: compile a C reference, start a server pinned to a core, wait
 * for its ready line, run a bounded command, and stop what was started. Every wait has a
 * deadline and every start has a matching stop, so a benchmark always ends by itself.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import dgram from 'node:dgram';
import net from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';

/** Servers under test run pinned to this core, their load generators to the other (2-core VMs). */
export const SERVER_CORE = 0;
export const LOAD_CORE = 1;
export const LOOPBACK = '127.0.0.1';

/** A benchmark could not set up or finish a measurement (not a natpunch library error). */
export class BenchError extends Error {
  readonly code = 'ERR_BENCH';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BenchError';
  }
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command` to completion and collects its output; kills it after `timeoutMs` or when
 * `signal` aborts. Rejects with BenchError when it exits non-zero.
 */
export async function runToEnd(command: string, args: string[], options: { timeoutMs: number; signal?: AbortSignal }): Promise<Finished> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  const kill = (): void => { child.kill('SIGKILL'); };
  const timer = setTimeout(kill, options.timeoutMs);
  options.signal?.addEventListener('abort', kill, { once: true });
  try {
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    if (code !== 0) {
      throw new BenchError(`${command} ${args.join(' ')}: exited with ${code ?? signal}, expected 0; stderr:\n${stderr.trim()}`);
    }
    return { code, signal, stdout, stderr };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', kill);
  }
}

/** Compiles one C file with `gcc -O2` into `output`. */
export async function compileC(source: string, output: string, signal?: AbortSignal): Promise<void> {
  await runToEnd('gcc', ['-O2', '-Wall', '-o', output, source], { timeoutMs: 60_000, signal });
}

/** A long-running process started by a benchmark; `stop()` ends it (idempotent). */
export class Server {
  readonly child: ChildProcess;
  readonly name: string;
  #output = '';
  #exited: Promise<void>;

  constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.child = child;
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { this.#output = (this.#output + chunk).slice(-8192); });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { this.#output = (this.#output + chunk).slice(-8192); });
    this.#exited = once(child, 'exit').then(() => undefined);
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last 8 KiB the process printed, for error messages. */
  get output(): string {
    return this.#output;
  }

  /** Resolves with the first output line matching `pattern`; rejects if the process exits first or after `timeoutMs`. */
  async lineMatching(pattern: RegExp, timeoutMs: number): Promise<string> {
    const streams = [this.child.stdout, this.child.stderr].filter((s) => s !== null);
    const readers = streams.map((s) => createInterface({ input: s }));
    const controller = new AbortController();
    try {
      const found = new Promise<string>((resolve) => {
        for (const reader of readers) reader.on('line', (line) => { if (pattern.test(line)) resolve(line); });
      });
      const exited = this.#exited.then(() => {
        throw new BenchError(`${this.name}: exited (${this.child.exitCode ?? this.child.signalCode}) before printing ${pattern}; output:\n${this.#output}`);
      });
      const late = delay(timeoutMs, controller.signal).then(() => {
        throw new BenchError(`${this.name}: no line matching ${pattern} within ${timeoutMs} ms; output:\n${this.#output}`);
      });
      return await Promise.race([found, exited, late]);
    } finally {
      controller.abort();
      for (const reader of readers) reader.close();
    }
  }

  /** SIGTERM, then SIGKILL if it is still there after `graceMs`. Resolves once it has exited. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return this.#exited;
    this.child.kill('SIGTERM');
    const controller = new AbortController();
    const forced = delay(graceMs, controller.signal).then(() => { this.child.kill('SIGKILL'); });
    await this.#exited;
    controller.abort();
    await forced;
  }
}

/** Runs `work` for a server just started; if it fails, stops the server before rethrowing. */
export async function stopOnFailure<T>(server: Server, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/**
 * The argv that runs `command` pinned to CPU `core` (taskset) at raised priority (nice -10), so
 * that builds other people run on the machine disturb the measurement less. Both tools exec the
 * command, so the process id is the command's. Without root, nice warns and runs it unchanged.
 */
export function pinned(core: number, command: string, args: string[]): [string, string[]] {
  return ['nice', ['-n', '-10', 'taskset', '-c', String(core), command, ...args]];
}

/** Starts `command` as `pinned` describes. */
export function startPinned(name: string, core: number, command: string, args: string[]): Server {
  const child = spawn(...pinned(core, command, args), { stdio: ['ignore', 'pipe', 'pipe'] });
  child.on('error', () => undefined); // reported through 'exit' and the readiness wait
  return new Server(name, child);
}

/** Resolves after `ms`, or at once (without rejecting) when `signal` aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * A loopback port free for both UDP and TCP at the time of asking (servers bind both). Another
 * process could take it before the server does; the readiness check would then fail loudly.
 */
export async function freePort(address = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = dgram.createSocket('udp4');
    udp.bind(0, address);
    await once(udp, 'listening');
    const { port } = udp.address();
    const tcp = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, address, () => resolve(true));
    });
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (ok) {
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
      return port;
    }
  }
  throw new BenchError(`no port on ${address} free for both UDP and TCP after 20 attempts`);
}

/**
 * Context switches of a process, all its threads: `involuntary` (switched out while it could run)
 * and `voluntary` (it waited), from /proc/PID/task/TID/status (proc(5)).
 */
export function processSwitches(pid: number): { voluntary: number; involuntary: number } {
  const total = { voluntary: 0, involuntary: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    total.voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(text)?.[1] ?? 0);
    total.involuntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(text)?.[1] ?? 0);
  }
  return total;
}

/** CPU seconds a process (all its threads) spent in user and in system mode: /proc/PID/stat fields 14 and 15 (proc(5)), in clock ticks of 1/100 s. */
export function processCpu(pid: number): { user: number; system: number } {
  // The command name (field 2) may hold spaces and parentheses: count fields from its last ')'.
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}
