/**
 * Running commands inside network namespaces, and making sure namespaces and the processes in
 * them go away: on `down()`, at the start of the next run (by prefix), and when this process
 * exits or is told to stop.
 */

import { spawn, execFileSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { LabError } from '../errors.js';

export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Kill the command's process group after this long; the result then has signal 'SIGKILL'. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. Without it stdin is /dev/null. */
  input?: string;
  env?: NodeJS.ProcessEnv;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  stdio?: StdioOptions;
}

const NETNS_DIR = '/run/netns';

/** argv that runs `argv` inside `netns`. `ip netns exec` execs in place: the pid is the command's. */
export function inNetns(netns: string, argv: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', netns, ...argv];
}

/** Processes started for one lab, so they can be killed as groups. */
export class ProcessSet {
  readonly #children = new Set<ChildProcess>();

  get size(): number {
    return this.#children.size;
  }

  /** Start `argv` in its own process group (detached), tracked until it exits. */
  spawn(argv: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const [file, ...args] = argv;
    if (file === undefined) throw new LabError('lab: cannot run an empty command line');
    const child = spawn(file, args, { detached: true, env: options.env ?? process.env, stdio: options.stdio ?? 'pipe' });
    this.#children.add(child);
    const forget = (): void => {
      this.#children.delete(child);
    };
    child.once('exit', forget);
    child.once('error', forget);
    return child;
  }

  /** Run to completion, collecting output. Rejects only when the command cannot start. */
  run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      const child = this.spawn(argv, { env: options.env, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
      let timer: NodeJS.Timeout | undefined;
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => killGroup(child, 'SIGKILL'), options.timeoutMs);
      }
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(new LabError(`lab: could not start ${argv.join(' ')}: ${error.message}`, { cause: error }));
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
      });
      if (options.input !== undefined && child.stdin !== null) {
        child.stdin.on('error', () => {}); // the command may exit without reading its input
        child.stdin.end(options.input);
      }
    });
  }

  /** SIGKILL every process group and wait (bounded) until each has exited. */
  async killAll(waitMs = 3000): Promise<void> {
    const exits = [...this.#children].map((child) => {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      const exited = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      killGroup(child, 'SIGKILL');
      return exited;
    });
    await Promise.all(exits);
  }

  killAllSync(): void {
    for (const child of this.#children) killGroup(child, 'SIGKILL');
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Run an internal lab command; a non-zero exit becomes a LabError saying where and what. */
export async function mustRun(processes: ProcessSet, where: string, argv: readonly string[], options: ExecOptions = {}): Promise<string> {
  const result = await processes.run(argv, { timeoutMs: 20_000, ...options });
  if (result.code !== 0) {
    const why = result.code === null ? `killed by ${result.signal ?? 'a signal'}` : `exit ${result.code}`;
    throw new LabError(`${where}: \`${argv.join(' ')}\` failed (${why}): ${result.stderr.trim() || result.stdout.trim() || 'no output'}`);
  }
  return result.stdout;
}

/** Names of every network namespace on the machine (from /run/netns, like `ip netns list`). */
export function listNamespaces(): string[] {
  try {
    return readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
}

export function namespacesOfPrefix(prefix: string): string[] {
  return listNamespaces().filter((name) => name.startsWith(`${prefix}-`));
}

/** Pids of processes whose network namespace is one of `namespaces` (what `ip netns pids` does). */
function pidsIn(namespaces: readonly string[]): number[] {
  const wanted = new Set<string>();
  for (const name of namespaces) {
    try {
      const st = statSync(join(NETNS_DIR, name));
      wanted.add(`${st.dev}:${st.ino}`);
    } catch {
      // already deleted
    }
  }
  if (wanted.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const st = statSync(`/proc/${entry}/ns/net`);
      if (wanted.has(`${st.dev}:${st.ino}`)) pids.push(Number(entry));
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  return pids;
}

function deleteSync(namespaces: readonly string[]): void {
  if (namespaces.length === 0) return;
  for (const pid of pidsIn(namespaces)) {
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  try {
    // -force: keep going past a namespace that is already gone.
    execFileSync('ip', ['-force', '-batch', '-'], { input: namespaces.map((n) => `netns delete ${n}\n`).join(''), stdio: ['pipe', 'ignore', 'ignore'] });
  } catch {
    // reported by the caller's check of what is left
  }
}

/**
 * Delete every namespace named `${prefix}-…`, first killing any process still inside one
 * (left behind by a run that died). Throws LabError if some namespace could not be deleted.
 */
export async function destroyPrefix(prefix: string): Promise<void> {
  const namespaces = namespacesOfPrefix(prefix);
  if (namespaces.length === 0) return;
  deleteSync(namespaces);
  const left = namespacesOfPrefix(prefix);
  if (left.length > 0) throw new LabError(`lab: could not delete namespaces ${left.join(', ')} (try \`ip netns delete NAME\` as root)`);
}

/** Default lab prefixes carry the creating process's pid: `np<pid>n<counter>`. */
export const PID_PREFIX_PATTERN = /^np(\d+)n\d+$/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Delete the labs of processes that are gone (killed before they could clean up): namespaces
 * whose prefix has the default `np<pid>n<counter>` form with a pid no longer running.
 * Returns the prefixes it removed.
 */
export async function destroyStaleLabs(): Promise<string[]> {
  const stale = new Set<string>();
  for (const name of listNamespaces()) {
    const dash = name.indexOf('-');
    if (dash <= 0) continue;
    const prefix = name.slice(0, dash);
    const match = PID_PREFIX_PATTERN.exec(prefix);
    if (match !== null && Number(match[1]) !== process.pid && !alive(Number(match[1]))) stale.add(prefix);
  }
  for (const prefix of stale) await destroyPrefix(prefix);
  return [...stale];
}

/** Labs that must be torn down if this process ends before their `down()`. */
const live = new Map<string, ProcessSet>();
let handlersInstalled = false;

function cleanupAllSync(): void {
  for (const [prefix, processes] of live) {
    processes.killAllSync();
    deleteSync(namespacesOfPrefix(prefix));
  }
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  cleanupAllSync();
  // If nobody else handles the signal, do what Node would have done without us: die by it.
  if (process.listenerCount(signal) === 1) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
}

/** Tear this prefix down synchronously on process exit, SIGINT or SIGTERM, unless released first. */
export function registerForExitCleanup(prefix: string, processes: ProcessSet): void {
  live.set(prefix, processes);
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', cleanupAllSync);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

export function releaseFromExitCleanup(prefix: string): void {
  live.delete(prefix);
}

/** Whether `command` is an executable file in PATH (or in the sbin directories root uses). */
export function findExecutable(command: string): string | null {
  const dirs = new Set([...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return null;
}
