/**
 * A natpunch process started with --json, seen through its events: every JSON line of its
 * stderr parsed as it comes, waits for an event that are bounded and say what they saw, and a
 * bounded wait for its exit.
 */
import type { ChildProcess } from 'node:child_process';

export type JsonEvent = Record<string, unknown>;

export interface EventChild {
  child: ChildProcess;
  /** Every --json event so far. */
  events: JsonEvent[];
  /** Resolves with the first event (already seen or to come) that matches; rejects on exit or after timeoutMs. */
  until(match: (event: JsonEvent) => boolean, what: string, timeoutMs?: number): Promise<JsonEvent>;
  /** Resolves with the exit code; rejects after timeoutMs with the stderr so far. */
  exited(timeoutMs: number): Promise<number | null>;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
}

export function eventChild(child: ChildProcess, name: string): EventChild {
  const events: JsonEvent[] = [];
  const waiters = new Set<() => void>();
  let text = '';
  let partial = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        events.push(JSON.parse(line) as JsonEvent);
      } catch { /* not an event */ }
    }
    for (const wake of [...waiters]) wake();
  });
  const until: EventChild['until'] = (match, what, timeoutMs = 60_000) => new Promise((resolve, reject) => {
    const check = (): void => {
      const found = events.find(match);
      if (found) { done(); resolve(found); }
    };
    const onExit = (): void => { done(); reject(new Error(`${name} exited before ${what}; its stderr:\n${text}`)); };
    // A safety net, not a synchronisation: the events come from the process's own progress.
    const timer = setTimeout(() => { done(); reject(new Error(`no ${what} from ${name} within ${timeoutMs} ms; its stderr:\n${text}`)); }, timeoutMs);
    const done = (): void => { clearTimeout(timer); waiters.delete(check); child.off('exit', onExit); };
    waiters.add(check);
    child.once('exit', onExit);
    check();
  });
  const exited = (timeoutMs: number): Promise<number | null> => new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => reject(new Error(`${name} still running after ${timeoutMs} ms; its stderr:\n${text}`)), timeoutMs);
    child.once('exit', (code) => { clearTimeout(timer); resolve(code); });
  });
  return { child, events, until, exited, stderr: () => text };
}
