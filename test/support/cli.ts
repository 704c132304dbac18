import { fileURLToPath } from 'node:url';

/** Absolute path of the built CLI (tests run from dist/test/..., the CLI is dist/src/cli/main.js). */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** argv that runs the natpunch CLI with this same node binary. */
export function natpunch(...args: string[]): string[] {
  return [process.execPath, CLI, ...args];
}

export { waitForLine } from '../../src/cli/wait-for-line.js';
