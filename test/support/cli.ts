import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

/** Absolute path of the built CLI (tests run from dist/test/..., the CLI is dist/src/cli/main.js). */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** argv that runs the natpunch CLI with this same node binary. */
export function natpunch(...args: string[]): string[] {
  return [process.execPath, CLI, ...args];
}

export { waitForLine } from '../../src/cli/wait-for-line.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the CLI to its end (bounded: 60 s) and return its exit code and output. */
export async function runCli(...args: string[]): Promise<CliResult> {
  const [node, ...rest] = natpunch(...args);
  try {
    const { stdout, stderr } = await promisify(execFile)(node!, rest, { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
