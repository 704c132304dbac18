import type { ChildProcess } from 'node:child_process';

/**
 * Resolve with the first line of the child's stdout or stderr that matches; reject if the child
 * exits first or nothing matches in time (the time limit is a safety net, not a synchronisation).
 * Each stream is split into lines on its own: a child that pipes binary data to stdout while it
 * reports on stderr must not have the two glued into one "line".
 */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    // Per stream: the line not yet ended, and the last 8 KiB seen (for the error message).
    const partial = { stdout: '', stderr: '' };
    const seen = { stdout: '', stderr: '' };
    const watch = (stream: 'stdout' | 'stderr') => (chunk: Buffer): void => {
      const text = chunk.toString();
      seen[stream] = (seen[stream] + text).slice(-8192);
      const lines = (partial[stream] + text).split('\n');
      partial[stream] = lines.at(-1)!;
      // The unfinished last line counts too: a prompt may never end its line.
      const line = lines.find((l) => pattern.test(l));
      if (line !== undefined) finish(undefined, line);
    };
    const onStdout = watch('stdout');
    const onStderr = watch('stderr');
    const output = (): string => [seen.stdout, seen.stderr].filter(Boolean).join('\n');
    const onExit = (code: number | null): void => finish(new Error(`process exited (${code}) before printing ${pattern}; output:\n${output()}`));
    const timer = setTimeout(() => finish(new Error(`no line matching ${pattern} within ${timeoutMs} ms; output:\n${output()}`)), timeoutMs);
    const finish = (error?: Error, line?: string): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onStdout);
      child.stderr?.off('data', onStderr);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(line!);
    };
    child.stdout?.on('data', onStdout);
    child.stderr?.on('data', onStderr);
    child.once('exit', onExit);
  });
}
