import type { ChildProcess } from 'node:child_process';

/**
 * Resolve with the first line of the child's stdout or stderr that matches; reject if the child
 * exits first or nothing matches in time (the time limit is a safety net, not a synchronisation).
 */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      const line = seen.split('\n').find((l) => pattern.test(l));
      if (line !== undefined) finish(undefined, line);
    };
    const onExit = (code: number | null): void => finish(new Error(`process exited (${code}) before printing ${pattern}; output:\n${seen}`));
    const timer = setTimeout(() => finish(new Error(`no line matching ${pattern} within ${timeoutMs} ms; output:\n${seen}`)), timeoutMs);
    const finish = (error?: Error, line?: string): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(line!);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}
